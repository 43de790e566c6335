"""Harvests from remote archives on loopback: a fault-injecting ObsCore/DataLink/SSA fixture
archive and a second instance of this service. Every reachable spectrum must end up ingested
exactly once, byte-identical, with provenance; the unreachable ones listed with reasons."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from escape_vo.db.migrate import migrate
from escape_vo.filestore import FileStore
from escape_vo.harvest import HarvestOptions, HarvestSpec, Target, run_harvest
from escape_vo.settings import Settings
from escape_vo_client.download import run_coroutine
from tests.conftest import LiveServer, default_sigint, free_port
from tests.fixtures.archive import UNREACHABLE, FixtureArchive, serve_fixture_archive

warnings.filterwarnings("ignore", module="astropy")
FAILING = UNREACHABLE


@pytest.fixture
def remote(fresh_db, tmp_path: Path):
    """The fixture archive with 30 demo spectra and four unreachable ones, on loopback."""
    with serve_fixture_archive(fresh_db(), tmp_path) as archive:
        yield archive


def _plan_faults(remote: FixtureArchive) -> dict[str, list[str]]:
    """Transient faults on six of the files; 'drop' on one that supports Range."""
    names = sorted(n for n in remote.files if n != "garbage.fits")
    ranged = [n for n in names if remote.files[n].ranges]
    plan = {
        ranged[0]: ["503", "drop"],
        names[1]: ["500"],
        names[2]: ["slow"],
        names[3]: ["short"],
        names[4]: ["long"],
        names[5]: ["429"],
    }
    remote.faults.plan = {k: list(v) for k, v in plan.items()}
    return plan


def _harvest_db(fresh_db, tmp_path: Path, port: int | None = None) -> Settings:
    url = fresh_db()
    port = port or free_port()
    migrate(url, base_url=f"http://127.0.0.1:{port}")
    return Settings(
        data_dir=tmp_path / "here", database_url=url, ivo_authority="here.example", port=port
    )


def _target(settings: Settings) -> Target:
    return Target(
        settings.database_url,
        settings.files_url,
        settings.ivo_authority,
        settings.data_dir / "harvest",
    )


def _check_archive(settings: Settings, remote: FixtureArchive, origin: str) -> None:
    """Every reachable remote spectrum exactly once, byte-identical, with its provenance."""
    reachable = {r["obs_publisher_did"] for r in remote.rows} - set(FAILING)
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(
            "SELECT origin_id, origin_archive, file_sha256, file_path FROM archive.spectra"
        ).fetchall()
    assert Counter(r[0] for r in rows) == Counter(reachable)
    store = FileStore(settings.files_url)
    for origin_id, archive_url, sha, key in rows:
        assert archive_url == origin
        assert sha == remote.files[remote.file_of[origin_id]].sha256
        with store.open(key) as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == sha


def _bodies_within_limits(remote: FixtureArchive, plan: dict[str, list[str]]) -> None:
    """No file that supports Range was sent whole more often than rows point at it (plus its
    'long' fault): interrupted transfers resumed instead of starting again. (Files without
    Range support restart by design; the unreadable file is fetched again by its content
    retries, in every run in which it is still pending.)"""
    per_file = Counter(remote.file_of[r["obs_publisher_did"]] for r in remote.rows)
    for name, count in remote.faults.full_bodies.items():
        if name != "garbage.fits" and remote.files[name].ranges:
            assert count <= per_file[name] + plan.get(name, []).count("long"), name


def test_harvest_with_faults_is_complete_and_incremental(remote, fresh_db, tmp_path) -> None:
    from escape_vo.demo.generate import generate_demo

    plan = _plan_faults(remote)
    settings = _harvest_db(fresh_db, tmp_path)
    tap = f"{remote.base_url}/tap"
    spec = HarvestSpec.tap(tap, "dataproduct_type = 'spectrum'", "harvested")
    options = HarvestOptions(parallel=6, per_host=3, timeout=1.5, backoff=0.05, ingest_batch=5)
    summary = run_coroutine(run_harvest(spec, _target(settings), options))

    assert summary.status == "failed"  # the four unreachable spectra
    failed = {rid: (reason, permanent) for rid, reason, permanent in summary.failures}
    assert set(failed) == set(FAILING), summary.summary()
    for rid, words in FAILING.items():
        assert words in failed[rid][0] and failed[rid][1], failed[rid]
    assert summary.discovered == len(remote.rows)
    _check_archive(settings, remote, tap)
    _bodies_within_limits(remote, plan)
    assert remote.faults.range_requests, "a dropped body should resume with Range"
    assert all(not q for q in remote.faults.plan.values()), "every fault was exercised"

    # the same harvest again: nothing new, nothing fetched, permanent failures not retried
    before = dict(remote.faults.requests)
    again = run_coroutine(run_harvest(spec, _target(settings), options))
    assert (again.new_items, again.todo, again.ingested, again.status) == (0, 0, 0, "completed")
    assert dict(remote.faults.requests) == before

    # new spectra at the remote: only they are fetched
    generate_demo(tmp_path / "more", n_spectra=6, seed=77)
    remote.load(tmp_path / "more", tmp_path / "remote-store")
    new_rows = len(remote.rows) - summary.discovered
    later = run_coroutine(run_harvest(spec, _target(settings), options))
    assert later.new_items == new_rows and later.ingested == new_rows, later.summary()
    assert all(remote.faults.requests[n] == c for n, c in before.items())
    _check_archive(settings, remote, tap)

    # an SSA harvest of the same archive finds the spectra already here: nothing duplicated
    ssa = HarvestSpec.ssa(f"{remote.base_url}/ssa", band="1e-7/3e-6", collection="harvested")
    by_ssa = run_coroutine(run_harvest(ssa, _target(settings), options))
    assert by_ssa.discovered == by_ssa.ingested == len(remote.rows) - len(FAILING)  # no band
    _check_archive(settings, remote, tap)


def _escape_vo() -> str:
    return str(Path(sys.executable).parent / "escape-vo")


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchone()[0]


def _wait(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_harvest_interrupted_by_sigint_and_sigkill_then_resumed(remote, fresh_db, tmp_path) -> None:
    plan = _plan_faults(remote)
    settings = _harvest_db(fresh_db, tmp_path)
    url = settings.database_url
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": str(settings.data_dir),
        "IVO_AUTHORITY": "here.example",
        "LC_ALL": "C.UTF-8",
    }
    tap = f"{remote.base_url}/tap"
    cmd = [
        _escape_vo(),
        "harvest",
        "--tap",
        tap,
        "--adql",
        "dataproduct_type = 'spectrum'",
        "--collection",
        "harvested",
        "--parallel",
        "4",
        "--per-host",
        "4",
        "--timeout",
        "1.5",
        "--ingest-batch",
        "3",
    ]
    ingested = "SELECT count(*) FROM escape.harvest_items WHERE state = 'ingested'"

    def start() -> subprocess.Popen:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                preexec_fn=default_sigint)  # fmt: skip

    # 1. Ctrl-C with transfers held half-way
    remote.faults.gate(6)
    proc = start()
    _wait(lambda: _count(url, ingested) >= 3 and remote.faults.held(), "a first batch")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 130, out
    assert "resume" in out
    assert _count(url, "SELECT count(*) FROM escape.harvest_runs WHERE status = 'interrupted'") == 1
    first = _count(url, ingested)
    assert list(settings.data_dir.glob("harvest/*/*/*.part")), "partial files kept for Range"

    # 2. kill -9 later on
    remote.faults.gate(remote.faults.completed_files + 6)
    proc = start()
    _wait(lambda: _count(url, ingested) >= first + 3 and remote.faults.held(), "more batches")
    time.sleep(0.3)
    proc.kill()
    proc.communicate(timeout=30)
    second = _count(url, ingested)
    assert second > first

    # 3. resume to the end
    remote.faults.gate(None)
    proc = start()
    out = proc.communicate(timeout=180)[0].decode()
    assert proc.returncode == 1, out  # the unreachable spectra are failures
    for rid in FAILING:
        assert rid in out
    statuses = Counter(
        r[0] for r in psycopg.connect(url).execute("SELECT status FROM escape.harvest_runs")
    )
    assert statuses["interrupted"] == statuses["crashed"] == 1 and statuses.total() == 3
    _check_archive(settings, remote, tap)
    _bodies_within_limits(remote, plan)
    assert sum(remote.faults.range_requests.values()) >= 2
    assert not list(settings.data_dir.glob("harvest/*/*/*")), "the spool is emptied"

    status = subprocess.run(
        [_escape_vo(), "harvest", "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stderr
    assert "interrupted" in status.stdout and "crashed" in status.stdout
    assert "ingested" in status.stdout and "gone (410)" in status.stdout


def test_harvest_from_another_instance_then_served_here(
    live_server, demo_archive, fresh_db, tmp_path
) -> None:
    import pyvo

    from escape_vo.web.app import create_app
    from escape_vo_client import Archive

    remote_settings, _ = demo_archive
    instruments = ("AAOMEGA-2DF", "HECTOSPEC", "UVES", "GMOS-S")
    listed = ", ".join(f"'{i}'" for i in instruments)
    settings = _harvest_db(fresh_db, tmp_path)
    tap = f"{live_server.url}/tap"
    spec = HarvestSpec.tap(tap, f"instrument_name IN ({listed})", "harvested")
    options = HarvestOptions(parallel=8, per_host=8, ingest_batch=20)
    summary = run_coroutine(run_harvest(spec, _target(settings), options))
    assert summary.status == "completed", summary.summary()

    with psycopg.connect(remote_settings.database_url) as conn:
        theirs = dict(
            conn.execute(
                "SELECT publisher_did, file_sha256 FROM archive.spectra WHERE instrument = ANY(%s)",
                (list(instruments),),
            ).fetchall()
        )
    with psycopg.connect(settings.database_url) as conn:
        ours = conn.execute(
            "SELECT publisher_did, origin_id, origin_archive, file_sha256, collection "
            "FROM archive.spectra"
        ).fetchall()
    assert sorted(r[1] for r in ours) == sorted(theirs)
    for did, origin_id, origin, sha, collection in ours:
        assert (origin, sha, collection) == (tap, theirs[origin_id], "harvested")
        # same bytes and index: multi-spectrum files got each spectrum's own remote DID
        assert did.split("?")[1] == origin_id.split("?")[1]
    assert len(theirs) > len({sha for sha in theirs.values()})  # multi-spectrum files were in

    again = run_coroutine(run_harvest(spec, _target(settings), options))
    assert (again.new_items, again.bytes, again.status) == (0, 0, "completed")

    with LiveServer(create_app(settings), settings.port) as here:
        found = (
            pyvo.dal.TAPService(f"{here.url}/tap")
            .run_sync(
                "SELECT obs_publisher_did, access_url, s_ra, s_dec FROM ivoa.obscore "
                "WHERE obs_collection = 'harvested'"
            )
            .to_table()
        )
        assert len(found) == len(theirs)
        report = Archive(here.url).download(found[:6], tmp_path / "from-here", progress=False)
        assert report.ok and len(report.succeeded) == 6, report.summary()
        mine = {r[0]: r[3] for r in ours}
        for did, path in report.succeeded:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == mine[did]
        row = found[0]
        ssa = pyvo.dal.SSAService(f"{here.url}/ssa").search(
            pos=(float(row["s_ra"]), float(row["s_dec"])), diameter=0.01
        )
        assert str(row["obs_publisher_did"]) in {
            str(r.getbyutype("ssa:Curation.PublisherDID")) for r in ssa
        }


def test_ssa_harvest_from_another_instance(live_server, demo_archive, fresh_db, tmp_path) -> None:
    _, truth = demo_archive
    t = next(x for x in truth if x.instrument == "HARPS")
    settings = _harvest_db(fresh_db, tmp_path)
    spec = HarvestSpec.ssa(f"{live_server.url}/ssa", pos=f"{t.ra},{t.dec}", size=0.01)
    summary = run_coroutine(run_harvest(spec, _target(settings), HarvestOptions()))
    assert summary.status == "completed" and summary.ingested >= 1, summary.summary()
    with psycopg.connect(settings.database_url) as conn:
        names = {r[0] for r in conn.execute("SELECT target_name FROM archive.spectra")}
        origins = {r[0] for r in conn.execute("SELECT origin_archive FROM archive.spectra")}
    assert t.target_name in names
    assert origins == {f"{live_server.url}/ssa"}


def test_harvest_sends_its_headers_to_an_archive_with_proprietary_data(
    remote, fresh_db, tmp_path
) -> None:
    """--header goes with the discovery query and every DataLink and file request; a '$VAR'
    value comes from the environment, and no header is stored or printed."""
    settings = _harvest_db(fresh_db, tmp_path)
    remote.require = lambda request: (
        request.headers.get("x-archive-token") == "s3cret"
        and request.headers.get("x-other") == "a $"
    )
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "DATA_DIR": str(settings.data_dir),
        "IVO_AUTHORITY": "here.example",
        "LC_ALL": "C.UTF-8",
        "ARCHIVE_TOKEN": "s3cret",
    }
    tap = f"{remote.base_url}/tap"
    cmd = [_escape_vo(), "harvest", "--tap", tap, "--adql", "dataproduct_type = 'spectrum'"]

    refused = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert "HTTP 401" in refused.stderr and "--header" in refused.stderr

    for wrong, says in (("X-Archive-Token", "'Name: value'"), ("X-Archive-Token: $NOPE", "NOPE")):
        bad = subprocess.run([*cmd, "--header", wrong], env=env, capture_output=True, text=True)
        assert bad.returncode == 2 and says in bad.stderr, bad.stderr

    done = subprocess.run(
        [*cmd, "--header", "X-Archive-Token: ${ARCHIVE_TOKEN}", "--header", "X-Other: a $$"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # the unreachable spectra
    _check_archive(settings, remote, tap)
    assert "s3cret" not in done.stdout + done.stderr
    with psycopg.connect(settings.database_url) as conn:
        stored = conn.execute(
            "SELECT string_agg(t::text, ' ') FROM escape.harvests AS t"
        ).fetchone()[0]
    assert "s3cret" not in (stored or "")
