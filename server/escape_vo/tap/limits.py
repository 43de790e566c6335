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
    async_execution_default: int = 3600  # seconds an async job may run (EXECUTIONDURATION)
    async_execution_hard: int = 4 * 3600
    upload_max_bytes: int = 100_000_000  # all uploaded tables of one request together
    upload_max_rows: int = 2_000_000  # rows of one uploaded table
    upload_max_tables: int = 10
    upload_max_columns: int = 1000
    upload_fetch_timeout: float = 60.0  # seconds to fetch an UPLOAD=name,http(s)://... table


LIMITS = TapLimits()
