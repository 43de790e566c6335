"""Which kinds of job exist: each service registers its JobKind when its module is imported.

Workers import the modules in KIND_MODULES so that one worker runs every kind of job (a worker
can also be restricted to some kinds with `escape-vo worker --kind`).
"""

from __future__ import annotations

import importlib

from escape_vo.uws.model import JobKind

KIND_MODULES = ("escape_vo.tap.async_", "escape_vo.soda.async_")

_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    _KINDS[kind.name] = kind
    return kind


def load_kinds() -> dict[str, JobKind]:
    """Every known kind (importing the modules that register them)."""
    for module in KIND_MODULES:
        importlib.import_module(module)
    return dict(_KINDS)


def get_kind(name: str) -> JobKind:
    if name not in _KINDS:
        load_kinds()
    return _KINDS[name]
