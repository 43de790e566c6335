"""STILTS taplint, the IVOA validator TOPCAT's author maintains, against the live service."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

STAGES = "TMV TME TMS TMC CPV CAP AVV QGE QPO QAS UWS MDQ OBS UPL EXA"

pytestmark = pytest.mark.skipif(
    shutil.which("stilts") is None, reason="STILTS is not installed (apt-get install stilts)"
)


def test_taplint_reports_no_errors_and_no_warnings(live_server) -> None:
    run = subprocess.run(
        [
            "stilts", "taplint", f"tapurl={live_server.url}/tap", f"stages={STAGES}",
            "report=EWF", "maxrepeat=20", "truncate=400",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    out = run.stdout
    totals = re.search(r"Totals: Errors: (\d+); Warnings: (\d+)", out)
    assert totals, f"no totals in taplint output:\n{out[-3000:]}\n{run.stderr[-2000:]}"
    problems = [line for line in out.splitlines() if re.match(r"^[EWF]-", line)]
    assert (int(totals[1]), int(totals[2])) == (0, 0), "\n".join(problems[:80])
