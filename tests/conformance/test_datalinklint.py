"""STILTS datalinklint and votlint on our DataLink documents (links, errors, descriptors)."""

from __future__ import annotations

import re
import shutil
import subprocess
from urllib.parse import quote

import psycopg
import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("stilts") is None, reason="STILTS is not installed (apt-get install stilts)"
)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["stilts", *args], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )


def test_datalinklint_reports_no_errors_and_no_warnings(live_server, demo_archive) -> None:
    settings, _ = demo_archive
    with psycopg.connect(settings.database_url) as conn:
        dids = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT ON (file_format, file_index > 0) publisher_did "
                "FROM archive.spectra ORDER BY file_format, file_index > 0, spectrum_id"
            ).fetchall()
        ]
    query = "&".join(f"ID={quote(d, safe='')}" for d in [*dids, "ivo://nowhere/unknown"])
    url = f"{live_server.url}/datalink/links?{query}"
    run = _run("datalinklint", f"votable={url}", "report=EWF")
    totals = re.search(r"Totals: Errors: (\d+); Warnings: (\d+)", run.stdout)
    assert totals, run.stdout[-3000:] + run.stderr[-2000:]
    assert (int(totals[1]), int(totals[2])) == (0, 0), run.stdout[-5000:]
    lint = _run("votlint", f"votable={url}")
    assert lint.stdout.strip() == "", lint.stdout
