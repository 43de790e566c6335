"""`escape-vo embed apply`: vectors for every spectrum that has none for a model version yet.

Incremental by construction: the spectra are those with a preprocessed row and no vector for
(model, version), so after an ingest only the new spectra are embedded. When a run completes,
the version becomes current (served by search and TAP) and older versions' vectors are dropped.
One apply per model at a time (an advisory lock); batches commit as they go, so an interrupted
run resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from escape_vo.embeddings.grid import GRIDS
from escape_vo.embeddings.preprocess import iter_dataset, preprocess
from escape_vo.embeddings.progress import progress_bar
from escape_vo.embeddings.store import (
    ensure_index,
    get_model,
    list_models,
    load_model,
    make_current,
    write_vectors,
)
from escape_vo.filestore import FileStore

_PENDING = (
    "NOT EXISTS (SELECT 1 FROM embeddings.vectors AS v WHERE v.model = $2 AND v.version = $3 "
    "AND v.spectrum_id = p.spectrum_id)"
)


class ApplyBusy(RuntimeError):
    """Another apply of the same model is running."""


@dataclass(frozen=True, slots=True)
class ApplyReport:
    model: str
    version: int
    embedded: int
    dropped: int  # vectors of older versions removed


def trained_names(db_url: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        return sorted({m.name for m in list_models(conn)})


def apply(
    db_url: str,
    store_url: str,
    name: str,
    version: int | None = None,
    *,
    batch_rows: int = 8192,
    progress: bool = False,
    workers: int | None = None,
) -> ApplyReport:
    store = FileStore(store_url)
    with psycopg.connect(db_url, autocommit=True) as lock_conn:
        record = get_model(lock_conn, name, version)
        grid = GRIDS[record.grid]
        (locked,) = lock_conn.execute(
            "SELECT pg_try_advisory_lock(hashtext('embeddings.apply:' || %s))", (name,)
        ).fetchone()
        if not locked:
            raise ApplyBusy(f"another `embed apply` of model {name} is running")
        preprocess(db_url, store_url, grid, workers=workers, progress=progress)
        model = load_model(store, record)
        (todo,) = lock_conn.execute(
            "SELECT count(*) FROM embeddings.preprocessed AS p WHERE p.grid = %s "
            "AND p.flux IS NOT NULL AND NOT EXISTS (SELECT 1 FROM embeddings.vectors AS v "
            "WHERE v.model = %s AND v.version = %s AND v.spectrum_id = p.spectrum_id)",
            (grid.name, name, record.version),
        ).fetchone()
        done = 0
        with (
            psycopg.connect(db_url) as conn,
            progress_bar(f"embedding with {name} v{record.version}", todo, progress) as advance,
        ):
            if todo:
                chunks = iter_dataset(
                    db_url, grid, _PENDING, (name, record.version), batch_rows=batch_rows
                )
                for chunk in chunks:
                    write_vectors(conn, record, chunk.spectrum_id, model.embed(chunk))
                    conn.commit()
                    done += len(chunk)
                    advance(len(chunk))
            ensure_index(conn, name)
            dropped = make_current(conn, record)
            conn.commit()
    return ApplyReport(name, record.version, done, dropped)
