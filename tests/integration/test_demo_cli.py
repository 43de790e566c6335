"""`escape-vo demo`, `serve` and `ingest` as a user runs them: real processes, real HTTP.

Covers the foundation's promises: demo data on first run only, Ctrl-C and SIGTERM (`docker stop`,
`kill`) stop everything cleanly, and `escape-vo ingest` works on the same DATA_DIR while the demo
is serving.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from astropy.io.votable import parse_single_table

from escape_vo.db.embedded import EmbeddedPostgres
from escape_vo.demo.generate import generate_demo, write_bad_files
from tests.conftest import default_sigint, free_port

ESCAPE_VO = [sys.executable, "-m", "escape_vo.cli"]


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DATA_DIR=str(data_dir), PORT=str(port), LC_ALL="C.UTF-8")
    return env


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early with {proc.returncode}")
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def _stop(proc: subprocess.Popen, sig: int = signal.SIGINT) -> str:
    """Stop as Ctrl-C does (SIGINT), or as `docker stop` and `kill` do (SIGTERM)."""
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, err[-3000:]
    return err


@pytest.mark.slow
def test_demo_first_run_ingest_while_serving_ctrl_c_and_second_run(run_dir: Path) -> None:
    data_dir = run_dir / "demo-cli"
    port = free_port()
    env = _env(data_dir, port)
    demo = subprocess.Popen(
        [*ESCAPE_VO, "demo", "--count", "40"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        stats = _wait_http(f"http://127.0.0.1:{port}/stats", demo)
        truth = json.loads((data_dir / "demo-files" / "truth.json").read_text())
        assert stats["spectra"] == len(truth)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "escape-vo" in page.text
        # The demo comes with embeddings (the masked PCA): similar spectra answer at once.
        did = httpx.get(
            f"http://127.0.0.1:{port}/tap/sync",
            params={"LANG": "ADQL", "FORMAT": "csv",
                    "QUERY": "SELECT TOP 1 publisher_did FROM archive.spectra"},
            timeout=10,
        ).text.splitlines()[1]  # fmt: skip
        similar = httpx.get(
            f"http://127.0.0.1:{port}/embeddings/similar", params={"ID": did, "k": 3}, timeout=10
        )
        assert similar.status_code == 200, similar.text
        rows = parse_single_table(io.BytesIO(similar.content)).to_table()
        assert len(rows) == 3 and set(rows["model"]) == {"pca"}

        # While the demo serves: ingest more files (some bad) into the same DATA_DIR.
        extra = run_dir / "demo-cli-extra"
        generate_demo(extra / "good", n_spectra=12, seed=99, workers=1)
        bad = write_bad_files(extra / "bad")
        ingest = subprocess.run(
            [*ESCAPE_VO, "ingest", str(extra), "--collection", "extra"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert ingest.returncode == 1, ingest.stderr  # some files failed ...
        for name in bad:
            assert name in ingest.stdout
        extra_truth = json.loads((extra / "good" / "truth.json").read_text())
        after = httpx.get(f"http://127.0.0.1:{port}/stats", timeout=5).json()
        assert after["spectra"] == len(truth) + len(extra_truth)  # ... and the good ones landed
        assert {"collection": "extra", "spectra": len(extra_truth)} in after["collections"]
        assert EmbeddedPostgres(data_dir).is_running(), "ingest must not stop the demo's database"
    finally:
        err = _stop(demo)
    assert not EmbeddedPostgres(data_dir).is_running(), "Ctrl-C stops the database too"

    # Second run: same data, no new ingest.
    demo2 = subprocess.Popen(
        [*ESCAPE_VO, "demo", "--count", "40"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        stats2 = _wait_http(f"http://127.0.0.1:{port}/stats", demo2)
        assert stats2["spectra"] == after["spectra"]
    finally:
        err2 = _stop(demo2, signal.SIGTERM)
    assert not EmbeddedPostgres(data_dir).is_running(), "SIGTERM stops the database too"
    assert not list(EmbeddedPostgres(data_dir).leases.glob("*")), "nor a lease behind"
    assert "already loaded" in err2
    assert "generating" in err and "generating" not in err2


def test_ingest_cli_without_a_running_server_starts_and_stops_the_database(
    run_dir: Path, tmp_path: Path
) -> None:
    data_dir = run_dir / "ingest-cli"
    generate_demo(tmp_path / "files", n_spectra=10, seed=5, workers=1)
    env = _env(data_dir, free_port())
    run = subprocess.run(
        [*ESCAPE_VO, "ingest", str(tmp_path / "files")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "ingested" in run.stdout and "0 files failed" in run.stdout
    assert not EmbeddedPostgres(data_dir).is_running()
    status = subprocess.run(
        [*ESCAPE_VO, "db", "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "running:  no" in status.stdout


@pytest.mark.slow
def test_sigterm_stops_a_command_that_started_the_database(run_dir: Path, tmp_path: Path) -> None:
    """`kill` of `embed train` mid-training: the command aborts as on Ctrl-C, stops the
    embedded PostgreSQL it started, leaves no lease and no half-trained model version."""
    data_dir = run_dir / "sigterm-cli"
    generate_demo(tmp_path / "files", n_spectra=300, seed=5, workers=1)
    env = _env(data_dir, free_port())
    ingest = [*ESCAPE_VO, "ingest", str(tmp_path / "files")]
    assert subprocess.run(ingest, env=env, capture_output=True, timeout=300).returncode == 0
    train = subprocess.Popen(
        [*ESCAPE_VO, "embed", "train", "--model", "autoencoder"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert train.stderr is not None
        for line in train.stderr:  # the resampling bar is written when it ends: training starts
            if line.startswith("resampling spectra"):
                break
        else:
            raise AssertionError(f"train ended early with {train.wait()}")
        train.send_signal(signal.SIGTERM)
        _, err = train.communicate(timeout=60)
    finally:
        train.kill()
    assert train.returncode == 1 and "Aborted!" in err, err[-3000:]
    assert not EmbeddedPostgres(data_dir).is_running(), "SIGTERM stops the database it started"
    assert not list(EmbeddedPostgres(data_dir).leases.glob("*")), "nor a lease behind"
    models = subprocess.run(
        [*ESCAPE_VO, "embed", "models"], env=env, capture_output=True, text=True, timeout=120
    )
    assert models.returncode == 0, models.stderr
    assert "autoencoder" not in models.stdout
