"""Ingest: files -> file store + rows in archive.spectra.

Worker processes read, hash, check and parse files and copy them into the store (the expensive
part, parallel across cores); the parent converts positions in batches and loads rows with COPY
into a staging table, then `INSERT ... ON CONFLICT DO NOTHING`, so a re-run, a concurrent ingest
of the same files or a crash half-way never duplicates or loses anything.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg

from escape_vo.db.migrate import refresh_row_counts
from escape_vo.filestore import FileStore
from escape_vo.ingest.model import NotASpectrum, SpectrumRecord, UnreadableFile
from escape_vo.ingest.positions import healpix_index, to_icrs
from escape_vo.ingest.readers import read_spectra
from escape_vo.schema.model import find_table
from escape_vo.stopping import stopping_worker

SUFFIXES = (".fits", ".fits.gz", ".fit", ".fit.gz", ".fts", ".fts.gz")
BATCH_ROWS = 1000


@dataclass(slots=True)
class FileResult:
    path: str
    status: str  # 'new', 'known', 'failed'
    sha256: str = ""
    size: int = 0
    key: str = ""
    reason: str = ""
    records: list[SpectrumRecord] = field(default_factory=list)


@dataclass
class IngestReport:
    files_seen: int = 0
    files_ingested: int = 0
    spectra_ingested: int = 0
    files_skipped: int = 0
    warnings: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        lines = [
            f"ingested {self.spectra_ingested} spectra from {self.files_ingested} files; "
            f"skipped {self.files_skipped} files already present; "
            f"{len({p for p, _ in self.warnings})} files with warnings; "
            f"{len(self.failures)} files failed"
        ]
        for path, warning in self.warnings:
            lines.append(f"  warning  {path}: {warning}")
        for path, reason in self.failures:
            lines.append(f"  FAILED   {path}: {reason}")
        return "\n".join(lines)


def discover(paths: Iterable[str | Path]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files to ingest (directories searched recursively) and paths that do not exist."""
    files: list[str] = []
    missing: list[tuple[str, str]] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(
                str(f)
                for f in sorted(p.rglob("*"))
                if f.is_file() and f.name.lower().endswith(SUFFIXES)
            )
        elif p.is_file():
            files.append(str(p))
        else:
            missing.append((str(p), "no such file or directory"))
    return files, missing


# -- worker side -------------------------------------------------------------------------------


class _Worker:
    """Per-process state of a reader: its own database connection and store handle."""

    def __init__(self, db_url: str, store_url: str) -> None:
        self.conn = psycopg.connect(db_url, autocommit=True)
        self.store = FileStore(store_url)

    def close(self) -> None:
        self.conn.close()

    def process(self, path: str) -> FileResult:
        """Read, hash, skip if known, parse, store. Never raises: failures become results."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            return FileResult(path, "failed", reason=f"cannot read file: {exc.strerror or exc}")
        sha = hashlib.sha256(data).hexdigest()
        result = FileResult(path, "new", sha256=sha, size=len(data))
        known = self.conn.execute(
            "SELECT 1 FROM archive.spectra WHERE file_sha256 = %s LIMIT 1", (sha,)
        ).fetchone()
        if known:
            result.status = "known"
            return result
        try:
            records = read_spectra(data, Path(path).name)
        except (UnreadableFile, NotASpectrum) as exc:
            result.status, result.reason = "failed", str(exc)
            return result
        except Exception as exc:  # a reader bug must not stop the run or lose the other files
            result.status = "failed"
            result.reason = f"unexpected error while reading ({type(exc).__name__}: {exc})"
            return result
        if not records:
            result.status, result.reason = "failed", "no spectrum found in file"
            return result
        result.key = FileStore.key_for(sha, Path(path).name)
        try:
            self.store.put(result.key, data, durable=False)  # the parent syncs per batch
        except OSError as exc:
            result.status, result.reason = "failed", f"cannot write to file store: {exc}"
            return result
        for rec in records:  # arrays stay in the worker: only metadata crosses the process boundary
            rec.wave = rec.flux = rec.error = rec.quality = None
        result.records = records
        return result


_pool_worker: _Worker | None = None  # one per pool process


def _init_pool_worker(db_url: str, store_url: str) -> None:
    global _pool_worker
    stopping_worker()
    _pool_worker = _Worker(db_url, store_url)


def _process_in_pool(path: str) -> FileResult:
    assert _pool_worker is not None
    return _pool_worker.process(path)


# -- parent side -------------------------------------------------------------------------------


def _results(files: list[str], db_url: str, store_url: str, workers: int) -> Iterator[FileResult]:
    if workers <= 1:
        worker = _Worker(db_url, store_url)
        try:
            yield from map(worker.process, files)
        finally:
            worker.close()
        return
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_init_pool_worker, initargs=(db_url, store_url)
    ) as pool:
        yield from pool.map(_process_in_pool, files, chunksize=8)


def ingest(
    paths: Iterable[str | Path],
    *,
    db_url: str,
    store_url: str,
    authority: str,
    collection: str | None = None,
    origin_archive: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    origin_ids: Mapping[str, str] | None = None,
) -> IngestReport:
    """Ingest files and directories; returns what happened to each file.

    origin_ids maps a file path (as given) to the identifier of its spectra at their origin
    (e.g. the remote publisher DID of a harvested file); it overrides what the file says.
    """
    files, missing = discover(paths)
    report = IngestReport(files_seen=len(files), failures=list(missing))
    columns = [c.name for c in find_table("archive.spectra").columns if c.name != "spectrum_id"]
    workers = workers or min(len(files), os.cpu_count() or 1) or 1
    pending: list[tuple[FileResult, SpectrumRecord]] = []
    seen: set[str] = set()
    store = FileStore(store_url)
    with psycopg.connect(db_url) as conn:
        for n, res in enumerate(_results(files, db_url, store_url, workers), start=1):
            if progress:
                progress(n, len(files))
            if res.status == "failed":
                report.failures.append((res.path, res.reason))
            elif res.status == "known" or res.sha256 in seen:
                report.files_skipped += 1
            else:
                seen.add(res.sha256)
                pending.extend((res, rec) for rec in res.records)
                report.files_ingested += 1
            if len(pending) >= BATCH_ROWS:
                store.sync()  # files on disk before the rows that point at them commit
                report.spectra_ingested += _flush(
                    conn, pending, columns, authority, collection, origin_archive, report,
                    origin_ids,
                )  # fmt: skip
                pending = []
        store.sync()
        report.spectra_ingested += _flush(
            conn, pending, columns, authority, collection, origin_archive, report, origin_ids
        )
        if report.spectra_ingested:
            refresh_row_counts(conn)
            conn.commit()
    return report


def publisher_did(authority: str, sha256: str, file_index: int) -> str:
    """Stable identifier: the same bytes get the same DID on every archive using our software."""
    return f"ivo://{authority}/spectra?{sha256[:24]}-{file_index}"


def _flush(
    conn: psycopg.Connection,
    pending: list[tuple[FileResult, SpectrumRecord]],
    columns: list[str],
    authority: str,
    collection: str | None,
    origin_archive: str | None,
    report: IngestReport,
    origin_ids: Mapping[str, str] | None = None,
) -> int:
    if not pending:
        return 0
    icrs = to_icrs([rec.position for _, rec in pending])
    ra = np.array([p[0] if isinstance(p, tuple) else np.nan for p in icrs])
    dec = np.array([p[1] if isinstance(p, tuple) else np.nan for p in icrs])
    has_pos = np.isfinite(ra)
    hpx = np.zeros(len(pending), dtype=np.int64)
    hpx[has_pos] = healpix_index(ra[has_pos], dec[has_pos])
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for i, (res, rec) in enumerate(pending):
        warnings = list(rec.warnings)
        if isinstance(icrs[i], str):
            warnings.append(icrs[i])  # type: ignore[arg-type]
        elif icrs[i] is None and not any("position" in w for w in warnings):
            warnings.append("no position in file; stored without position")
        name = Path(res.path).name
        report.warnings.extend((res.path, w) for w in warnings)
        row = {
            "publisher_did": publisher_did(authority, res.sha256, rec.file_index),
            "obs_id": rec.obs_id,
            "target_name": rec.target_name,
            "target_class": rec.target_class,
            "ra": float(ra[i]) if has_pos[i] else None,
            "dec": float(dec[i]) if has_pos[i] else None,
            "healpix": int(hpx[i]) if has_pos[i] else None,
            "aperture": rec.aperture,
            "wave_min": rec.wave_min,
            "wave_max": rec.wave_max,
            "resolving_power": rec.resolving_power,
            "snr": rec.snr,
            "redshift": rec.redshift,
            "exptime": rec.exptime,
            "t_min": rec.t_min,
            "t_max": rec.t_max,
            "instrument": rec.instrument,
            "facility": rec.facility,
            "collection": collection or rec.collection or "local",
            "calib_level": rec.calib_level if rec.calib_level is not None else 2,
            "flux_unit": rec.flux_unit,
            "n_pix": rec.n_pix,
            "file_format": rec.file_format,
            "file_index": rec.file_index,
            "file_sha256": res.sha256,
            "file_size": res.size,
            "file_path": res.key,
            "original_name": name,
            "release_date": rec.release_date,
            "ingest_time": now,
            "origin_archive": origin_archive,
            "origin_id": (origin_ids or {}).get(res.path) or rec.origin_id,
            "warnings": "; ".join(warnings) or None,
        }
        rows.append([_finite(row[c]) for c in columns])
    col_list = ", ".join(f'"{c}"' for c in columns)
    with conn.transaction():
        conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS spectra_staging ON COMMIT DELETE ROWS AS "
            f"SELECT {col_list} FROM archive.spectra WITH NO DATA"
        )
        with conn.cursor().copy(f"COPY spectra_staging ({col_list}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur = conn.execute(
            f"INSERT INTO archive.spectra ({col_list}) SELECT {col_list} FROM spectra_staging "
            "ON CONFLICT DO NOTHING"
        )
        return cur.rowcount


def _finite(value: object) -> object:
    """NaN and inf from headers become NULL: unknown, not a number that poisons aggregates."""
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value


def progress_printer() -> Callable[[int, int], None] | None:
    """A rich progress bar on a terminal, nothing otherwise (logs stay clean)."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=False,
    )
    task = bar.add_task("ingesting files", total=None)
    bar.start()

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)
        if done == total:
            bar.stop()

    return update
