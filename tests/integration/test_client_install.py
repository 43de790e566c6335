"""The client installed alone in a fresh virtualenv (only PyPI packages, nothing of the server):
it finds and downloads a few hundred spectra in parallel, resumes after Ctrl-C, and reports the
failures of an unreliable archive without raising on the first one."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, default_sigint
from tests.fixtures.archive import UNREACHABLE, serve_fixture_archive

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from escape_vo_client import Archive
    try:
        import escape_vo  # noqa: F401
        sys.exit("the server package must not be installed here")
    except ImportError:
        pass
    url, dest, mode = sys.argv[1:4]
    archive = Archive(url)
    if mode == "search":
        found = archive.search_spectra()
    else:
        found = archive.query("SELECT * FROM ivoa.obscore")
    report = archive.download(found, dest, parallel=8, progress=False)
    print(json.dumps({"found": len(found), "downloaded": len(report.succeeded),
                      "skipped": len(report.skipped), "failed": dict(report.failed)}))
    """
)


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("client-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(REPO / "client")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if pip.returncode != 0 and "Could not find a version" in pip.stderr + pip.stdout:
        pytest.skip(f"PyPI is not reachable: {pip.stderr.strip()[-300:]}")
    assert pip.returncode == 0, pip.stderr
    return venv / "bin" / "python"


def _client(python: Path, url: str, dest: Path, mode: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.Popen(
        [str(python), "-c", SCRIPT, url, str(dest), mode],
        env=env,
        cwd=dest.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )


def _partial_with_bytes(dest: Path) -> bool:
    for part in dest.glob("*.part"):
        with contextlib.suppress(FileNotFoundError):  # renamed into place meanwhile
            if part.stat().st_size:
                return True
    return False


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_client_alone_downloads_resumes_and_reports(
    client_venv: Path, live_server, demo_archive, fresh_db, tmp_path: Path
) -> None:
    _, truth = demo_archive
    result = _result(_client(client_venv, live_server.url, tmp_path / "demo", "search"))
    assert result == {"found": len(truth), "downloaded": len(truth), "skipped": 0, "failed": {}}

    with serve_fixture_archive(fresh_db(), tmp_path / "remote") as remote:
        n_good = len(remote.rows) - len(UNREACHABLE)
        remote.faults.gate(8)  # transfers hang half-way after eight files
        dest = tmp_path / "fixture"
        proc = _client(client_venv, remote.base_url, dest, "query")
        deadline = time.monotonic() + 120
        ids = dest / ".escape-vo-ids"
        # a file is renamed into place before its ID is recorded: wait for a recorded one too;
        # and for a partial file with bytes in it (a busy machine may open it well before the
        # first block arrives, and an empty one is fetched afresh, not resumed)
        while not (
            remote.faults.held()
            and _partial_with_bytes(dest)
            and list(dest.glob("*.fits"))
            and ids.is_file()
            and ids.stat().st_size
        ):
            assert time.monotonic() < deadline and proc.poll() is None, "no transfer got held"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        assert proc.returncode != 0
        complete = [p for p in dest.iterdir()
                    if not p.name.endswith((".part", ".part.json", ".escape-vo-ids"))]  # fmt: skip
        assert complete and len(complete) < n_good, sorted(p.name for p in dest.iterdir())
        # the folder records the IDs of complete files only (one finished as Ctrl-C came may
        # lack its line: it is then taken as this spectrum's, as before the record existed)
        recorded = {line.split("\t")[0] for line in ids.read_text().splitlines()}
        assert recorded and recorded <= {p.name for p in complete}

        remote.faults.gate(None)
        result = _result(_client(client_venv, remote.base_url, dest, "query"))
        assert result["skipped"] == len(complete)
        assert result["downloaded"] + result["skipped"] == n_good
        assert set(result["failed"]) == set(UNREACHABLE)
        for rid, words in UNREACHABLE.items():
            assert words in result["failed"][rid]
        assert sum(remote.faults.range_requests.values()) >= 1, "partial files were resumed"
