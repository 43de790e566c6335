"""Harvest spectra from other VO archives: discover (TAP/ObsCore or SSA), resolve (DataLink
#this), download in parallel (resumable, verified), ingest with provenance; state in PostgreSQL.

Public surface: HarvestSpec (what), HarvestOptions (how), run_harvest (one run), the CLI group
`escape_vo.harvest.cli.harvest`.
"""

from escape_vo.harvest.runner import (
    HarvestBusy,
    HarvestOptions,
    RunSummary,
    Target,
    readable_spectrum,
    run_harvest,
)
from escape_vo.harvest.spec import HarvestSpec

__all__ = [
    "HarvestBusy",
    "HarvestOptions",
    "HarvestSpec",
    "RunSummary",
    "Target",
    "readable_spectrum",
    "run_harvest",
]
