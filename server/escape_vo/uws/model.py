"""What a UWS job is, independently of which service runs it (TAP today, SODA later).

A job has a `kind` naming the service; each kind registers a `JobKind` (see registry.py) with the
runner the workers call and the error document its /error resource returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

PENDING, QUEUED, EXECUTING = "PENDING", "QUEUED", "EXECUTING"
COMPLETED, ERROR, ABORTED = "COMPLETED", "ERROR", "ABORTED"
HELD, SUSPENDED, UNKNOWN, ARCHIVED = "HELD", "SUSPENDED", "UNKNOWN", "ARCHIVED"

PHASES = (PENDING, QUEUED, EXECUTING, COMPLETED, ERROR, ABORTED, UNKNOWN, HELD, SUSPENDED, ARCHIVED)
ACTIVE = frozenset({PENDING, QUEUED, EXECUTING, HELD, SUSPENDED})
FINAL = frozenset({COMPLETED, ERROR, ABORTED, ARCHIVED})


@dataclass(frozen=True, slots=True)
class ResultFile:
    """One result of a job: a file in the job's directory of the results area."""

    result_id: str
    file_name: str
    mime_type: str
    size: int
    row_count: int | None = None


@dataclass(slots=True)
class Job:
    job_id: str
    kind: str
    phase: str
    creation_time: datetime
    execution_duration: int
    destruction: datetime
    owner_id: str | None = None
    run_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    error_message: str | None = None
    error_type: str | None = None
    attempts: int = 0
    parameters: list[tuple[str, str]] = field(default_factory=list)
    results: list[ResultFile] = field(default_factory=list)

    def params(self) -> dict[str, list[str]]:
        """Parameters keyed by lower-case name, as the TAP parameter parser expects them."""
        out: dict[str, list[str]] = {}
        for name, value in self.parameters:
            out.setdefault(name.lower(), []).append(value)
        return out


class JobFailure(Exception):
    """The job cannot complete for a reason the user can act on; becomes phase ERROR.

    `fatal` marks errors in the request itself (running it again gives the same error).
    """

    def __init__(self, message: str, fatal: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.fatal = fatal


class ParameterProblem(ValueError):
    """A parameter given at creation (or POSTed later) is not acceptable: HTTP 400."""


@dataclass
class JobContext:
    """What a runner gets: the job, where to write, the database, and how it is stopped.

    `tag` is the application_name the runner gives its database sessions, so that the worker
    can cancel the running statement from another connection (pg_cancel_backend). A runner
    checks `cancelled` between steps; a cancelled runner may raise anything.
    """

    job: Job
    work_dir: Path
    db_url: str
    settings: Any
    deadline: float  # time.monotonic() at which the execution duration is used up
    tag: str
    cancelled: threading.Event = field(default_factory=threading.Event)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


# A runner executes one job in a worker thread and returns its result files (in work_dir).
Runner = Callable[[JobContext], list[ResultFile]]
# Called at job creation (and on POST /parameters) with the non-UWS parameters and the files
# of a multipart request; returns the parameters to store (it may save files in job_dir).
Params = list[tuple[str, str]]
Preparer = Callable[[Params, Mapping[str, Any], Path], Awaitable[Params]]


@dataclass(frozen=True)
class JobKind:
    """A kind of job: its runner, its documents and its limits (seconds)."""

    name: str
    run: Runner
    error_document: Callable[[str], tuple[bytes, str]]  # message -> (body, media type)
    prepare: Preparer | None = None
    execution_default: int = 3600
    execution_hard: int = 4 * 3600
    retention_default: int = 7 * 86400
    retention_hard: int = 30 * 86400
    max_request_bytes: int = 10_000_000
    close: Callable[[], None] | None = None  # release per-process resources of the runner
    sweep: Callable[[Any], Awaitable[None]] | None = None  # housekeeping (an async connection)
    warm_up: Callable[[], None] | None = None  # run once per worker before it takes jobs
