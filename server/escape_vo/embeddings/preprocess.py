"""Resample every spectrum once onto a model grid and keep it in embeddings.preprocessed.

The database is the source of truth for what is done: a spectrum is pending for a grid while it
has no row there. Files are read from the file store in worker processes (one per core), each
file once for all its spectra; rows go back with COPY in batches, each batch committed, so an
interrupted run resumes where it stopped. Training and applying then read the arrays from the
database as Arrow (no file is read again).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import numpy as np
import psycopg

from escape_vo.embeddings.grid import GRIDS, Grid, NoCoverage, resample
from escape_vo.embeddings.progress import progress_bar
from escape_vo.stopping import stopping_worker

log = logging.getLogger(__name__)

_COLUMNS = ("grid", "spectrum_id", "flux", "rest_frame", "scale", "noise", "coverage",
            "negative_z", "problem", "done_at")  # fmt: skip


def pending_spectra(conn: psycopg.Connection, grid: Grid) -> list[tuple]:
    """(spectrum_id, file_path, original_name, file_index, redshift) not yet resampled, or
    resampled before negative_z was measured (redone once, after the upgrade that added it)."""
    return conn.execute(
        "SELECT s.spectrum_id, s.file_path, s.original_name, s.file_index, s.redshift "
        "FROM archive.spectra AS s WHERE NOT EXISTS (SELECT 1 FROM embeddings.preprocessed AS p "
        "WHERE p.grid = %s AND p.spectrum_id = s.spectrum_id "
        "AND (p.negative_z IS NOT NULL OR p.flux IS NULL)) ORDER BY s.file_path, s.file_index",
        (grid.name,),
    ).fetchall()


def _resample_file(job: tuple[str, str, str, str, list[tuple[int, int, float | None]]]) -> list:
    """Worker: read one stored file and resample the wanted spectra of it."""
    from escape_vo.filestore import FileStore
    from escape_vo.ingest.readers import read_spectra

    store_url, grid_name, file_path, name, wanted = job
    grid = GRIDS[grid_name]
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        with FileStore(store_url).open(file_path) as fh:
            data = fh.read()
        records = {r.file_index: r for r in read_spectra(data, name)}
    except Exception as exc:
        reason = f"cannot read {name}: {exc}"
        return [_problem_row(grid, sid, reason, now) for sid, _, _ in wanted]
    rows = []
    for sid, index, redshift in wanted:
        rec = records.get(index)
        if rec is None or rec.wave is None or rec.flux is None:
            rows.append(_problem_row(grid, sid, f"spectrum {index} not found in {name}", now))
            continue
        try:
            r = resample(grid, rec.wave, rec.flux, rec.error, rec.quality, redshift)
        except NoCoverage as exc:
            rows.append(_problem_row(grid, sid, str(exc), now))
            continue
        values = (r.flux.tolist(), r.rest_frame, r.scale, r.noise, r.coverage, r.negative_z)
        rows.append((grid.name, sid, *values, None, now))
    return rows


def _problem_row(grid: Grid, sid: int, reason: str, now: datetime) -> tuple:
    return (grid.name, sid, None, False, None, None, 0.0, None, reason, now)


def preprocess(
    db_url: str,
    store_url: str,
    grid: Grid,
    workers: int | None = None,
    progress: bool = False,
    batch_files: int = 64,
) -> int:
    """Resample the spectra that have no row for `grid` yet; returns how many were done."""
    with psycopg.connect(db_url) as conn:
        todo = pending_spectra(conn, grid)
    if not todo:
        return 0
    by_file: dict[str, list] = defaultdict(list)
    names: dict[str, str] = {}
    for sid, path, name, index, redshift in todo:
        by_file[path].append((sid, index, redshift))
        names[path] = name or path.rsplit("/", 1)[-1]
    jobs = [(store_url, grid.name, p, names[p], w) for p, w in by_file.items()]
    n_workers = max(1, min(workers or _cores(), len(jobs)))
    done = 0
    with (
        progress_bar("resampling spectra", len(todo), progress) as advance,
        psycopg.connect(db_url) as conn,
    ):
        for rows in _run(jobs, n_workers, batch_files):
            _copy_rows(conn, rows)
            conn.commit()
            done += len(rows)
            advance(len(rows))
    return done


def _run(jobs: list, n_workers: int, batch_files: int) -> Iterator[list]:
    """Rows in batches of `batch_files` files, in order."""
    if n_workers == 1:
        results = map(_resample_file, jobs)
        pool = None
    else:
        pool = ProcessPoolExecutor(n_workers, initializer=stopping_worker)
        results = pool.map(_resample_file, jobs, chunksize=max(1, min(16, len(jobs) // 64)))
    try:
        batch: list = []
        for k, rows in enumerate(results, 1):
            batch += rows
            if k % batch_files == 0:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _copy_rows(conn: psycopg.Connection, rows: list) -> None:
    """COPY into a staging table, then insert what is still missing (safe against a
    concurrent run of the same preprocessing) and fill in negative_z where it is NULL (rows
    resampled before it existed; their flux is left as it was)."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS preprocessed_stage "
        "(LIKE embeddings.preprocessed) ON COMMIT DELETE ROWS"
    )
    cols = ", ".join(_COLUMNS)
    with conn.cursor().copy(f"COPY preprocessed_stage ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    conn.execute(
        f"INSERT INTO embeddings.preprocessed ({cols}) SELECT {cols} FROM preprocessed_stage "
        "ON CONFLICT (grid, spectrum_id) DO UPDATE SET negative_z = excluded.negative_z "
        "WHERE embeddings.preprocessed.negative_z IS NULL"
    )


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass
class Dataset:
    """Preprocessed spectra as arrays: what models are fitted on and applied to."""

    spectrum_id: np.ndarray  # int64 (n,)
    flux: np.ndarray  # float32 (n, n_pix), NaN where masked
    rest_frame: np.ndarray  # bool (n,)
    noise: np.ndarray  # float32 (n,), NaN when unknown
    negative_z: np.ndarray | None = None  # float32 (n,): grid.negative_flux_z, 0 when unknown

    def __post_init__(self) -> None:
        if self.negative_z is None:
            self.negative_z = np.zeros(len(self.spectrum_id), np.float32)

    def __len__(self) -> int:
        return len(self.spectrum_id)

    @property
    def mask(self) -> np.ndarray:
        return np.isfinite(self.flux)

    def subset(self, index: np.ndarray) -> Dataset:
        return Dataset(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def concatenate(parts: list[Dataset]) -> Dataset:
        return Dataset(
            *(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Dataset))
        )


def load_dataset(
    db_url: str, grid: Grid, where: str = "TRUE", params: tuple = (), keep: np.ndarray | None = None
) -> Dataset:
    """The usable preprocessed spectra of `grid` matching `where` (SQL on p and s =
    archive.spectra), ordered by spectrum_id; read as Arrow, no per-row Python. With `keep`
    (spectrum ids) only those are kept, batch by batch: a training sample of a large archive
    is held in memory without the rest of it."""
    batches = []
    for batch in iter_dataset(db_url, grid, where, params):
        if keep is not None:
            batch = batch.subset(np.flatnonzero(np.isin(batch.spectrum_id, keep)))
        batches.append(batch)
    if not batches:
        return _empty(grid)
    return Dataset.concatenate(batches)


def dataset_ids(db_url: str, grid: Grid, where: str = "TRUE", params: tuple = ()) -> np.ndarray:
    """The spectrum ids load_dataset would give, in its order (8 bytes a spectrum)."""
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(db_url) as conn, conn.cursor() as cur:
        cur.execute(_select("p.spectrum_id", where), (grid.name, *params))
        return cur.fetch_arrow_table().column(0).to_numpy().astype(np.int64)


def iter_dataset(
    db_url: str, grid: Grid, where: str = "TRUE", params: tuple = (), batch_rows: int = 8192
) -> Iterator[Dataset]:
    """The same as load_dataset, in chunks of about `batch_rows` spectra (apply on millions)."""
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow as pa

    sql = _select("p.spectrum_id, p.flux, p.rest_frame, p.noise, coalesce(p.negative_z, 0)", where)
    with adbc.connect(db_url) as conn, conn.cursor() as cur:
        cur.adbc_statement.set_options(
            **{"adbc.postgresql.batch_size_hint_bytes": str(batch_rows * grid.n_pix * 5)}
        )
        cur.execute(sql, (grid.name, *params))
        reader = cur.fetch_record_batch()
        for batch in reader:
            if batch.num_rows == 0:
                continue
            flux = batch.column(1)
            values = pa.compute.list_flatten(flux).to_numpy(zero_copy_only=False)
            yield Dataset(
                batch.column(0).to_numpy().astype(np.int64),
                values.astype(np.float32).reshape(batch.num_rows, grid.n_pix),
                batch.column(2).to_numpy(zero_copy_only=False).astype(bool),
                batch.column(3).to_numpy(zero_copy_only=False).astype(np.float32),
                batch.column(4).to_numpy(zero_copy_only=False).astype(np.float32),
            )


def _select(columns: str, where: str) -> str:
    """The usable preprocessed spectra of the grid $1 matching `where`, by spectrum_id."""
    return (
        f"SELECT {columns} FROM embeddings.preprocessed AS p "
        "JOIN archive.spectra AS s ON s.spectrum_id = p.spectrum_id "
        f"WHERE p.grid = $1 AND p.flux IS NOT NULL AND ({where}) ORDER BY p.spectrum_id"
    )


def _empty(grid: Grid) -> Dataset:
    return Dataset(
        np.zeros(0, np.int64),
        np.zeros((0, grid.n_pix), np.float32),
        np.zeros(0, bool),
        np.zeros(0, np.float32),
    )
