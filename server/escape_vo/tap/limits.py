"""Limits of the TAP service, declared once: enforced by the executor and published in
the TAPRegExt capabilities."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TapLimits:
    maxrec_default: int = 100_000  # rows returned when MAXREC is not given
    maxrec_hard: int = 20_000_000  # rows a query can ever return
    sync_timeout: int = 300  # seconds a synchronous query may run (statement_timeout)
    retention_default: int = 7 * 86400  # seconds async results are kept (used by async jobs)
    retention_hard: int = 30 * 86400


LIMITS = TapLimits()
