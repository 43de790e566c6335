"""UWS 1.1 (Universal Worker Service): asynchronous jobs that survive restarts.

Generic over the service that runs the jobs: a kind ('tap', 'soda') registers a JobKind
(registry.py) with its runner; `router.uws_router(kind, prefix)` serves the UWS resources over
HTTP; `Worker` (worker.py, `escape-vo worker`) runs queued jobs; `maintain` (cleaner.py)
re-queues jobs of dead workers and destroys expired ones. Job state, queue and leases live in
PostgreSQL (store.py), results in DATA_DIR/results (files.py).
"""

from escape_vo.uws.model import (
    Job,
    JobContext,
    JobFailure,
    JobKind,
    ParameterProblem,
    ResultFile,
)
from escape_vo.uws.registry import get_kind, load_kinds, register

__all__ = [
    "Job",
    "JobContext",
    "JobFailure",
    "JobKind",
    "ParameterProblem",
    "ResultFile",
    "get_kind",
    "load_kinds",
    "register",
]
