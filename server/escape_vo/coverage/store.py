"""Coverage MOCs of the archive and of each collection, cached in DATA_DIR and kept fresh.

A collection's MOCs are recomputed only when its row count or its newest ingest_time (the
high-water mark) differs from the ones they were computed from; the archive's are the union of
its collections'. Freshness is checked at most every CHECK_INTERVAL seconds per process with
one grouped query on archive.spectra, so an ingest shows up in /coverage and in the registry
records within seconds, without any hook in the ingest pipeline. Files are replaced atomically,
so several server processes may share DATA_DIR.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
from mocpy import MOC, STMOC, TimeMOC

from escape_vo.coverage.compute import space_moc, space_time_moc, time_moc

CHECK_INTERVAL = 5.0  # seconds between two freshness checks in one process
KINDS = {"space": MOC, "time": TimeMOC, "space-time": STMOC}
_SIGNATURE_SQL = (
    "SELECT collection, count(*), max(ingest_time)::text FROM archive.spectra GROUP BY collection"
)
_ROWS_SQL = (
    "SELECT healpix, ra, dec, aperture, t_min, t_max, wave_min, wave_max FROM archive.spectra "
    "WHERE {where} AND healpix IS NOT NULL"
)
_FACTS_SQL = (
    "SELECT min(wave_min), max(wave_max), min(t_min), max(coalesce(t_max, t_min)), "
    "count(ra), array_remove(array_agg(DISTINCT instrument), NULL), "
    "array_remove(array_agg(DISTINCT facility), NULL) FROM archive.spectra WHERE {where}"
)


@dataclass(frozen=True)
class Summary:
    """What a set of spectra covers, beside its MOCs (wavelengths in metres, times in MJD)."""

    collection: str | None
    spectra: int
    positioned: int
    ingest_time: str | None  # newest ingest_time: the high-water mark the MOCs were made from
    space_order: int
    wave_min: float | None = None
    wave_max: float | None = None
    t_min: float | None = None
    t_max: float | None = None
    instruments: list[str] = field(default_factory=list)
    facilities: list[str] = field(default_factory=list)
    computed: str = ""


@dataclass(frozen=True)
class Coverage:
    """The cached MOC files of the archive or of one collection, with their summary."""

    summary: Summary
    directory: Path

    def path(self, kind: str) -> Path:
        return self.directory / f"{kind}.fits"

    def moc(self, kind: str) -> MOC | TimeMOC | STMOC:
        return KINDS[kind].load(self.path(kind), format="fits")

    def serialize(self, kind: str, fmt: str, order: int | None = None) -> bytes:
        """The MOC as MOC 2.0 FITS, JSON or ASCII, optionally degraded to a coarser order."""
        if fmt == "fits" and order is None:
            return self.path(kind).read_bytes()
        moc = self.moc(kind)
        if order is not None and order < moc.max_order:
            moc = moc.degrade_to_order(order)
        if fmt == "fits":
            buf = io.BytesIO()
            moc.serialize("fits").writeto(buf)
            return buf.getvalue()
        if fmt == "json":
            return json.dumps(moc.serialize("json")).encode()
        return (moc.to_string("ascii") + "\n").encode()


def _key(collection: str | None) -> str:
    raw = "null" if collection is None else "c:" + collection
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _fits(moc: MOC | TimeMOC | STMOC) -> bytes:
    buf = io.BytesIO()
    moc.serialize("fits").writeto(buf)
    return buf.getvalue()


class CoverageStore:
    """Lazily recomputed coverage of archive.spectra, under `directory` (DATA_DIR/coverage)."""

    def __init__(self, db_url: str, directory: Path, order: int = 9) -> None:
        if not 0 <= order <= 29:
            raise ValueError(f"COVERAGE_ORDER must be between 0 and 29, not {order}")
        self.db_url = db_url
        self.directory = Path(directory)
        self.order = order
        self._lock = threading.Lock()
        self._checked = 0.0

    # ---- reading ----------------------------------------------------------------------------

    def archive(self) -> Coverage:
        self.refresh()
        return self._load(self.directory / "archive")

    def collection(self, name: str) -> Coverage:
        """The coverage of one collection; KeyError if the archive has no such collection."""
        self.refresh()
        directory = self.directory / "collections" / _key(name)
        if not (directory / "summary.json").exists():
            raise KeyError(name)
        return self._load(directory)

    def collections(self) -> list[str]:
        self.refresh()
        names = []
        for summary in sorted((self.directory / "collections").glob("*/summary.json")):
            name = json.loads(summary.read_text())["collection"]
            if name is not None:
                names.append(name)
        return sorted(names)

    @staticmethod
    def _load(directory: Path) -> Coverage:
        summary = Summary(**json.loads((directory / "summary.json").read_text()))
        return Coverage(summary, directory)

    # ---- keeping fresh ----------------------------------------------------------------------

    def refresh(self, force: bool = False) -> bool:
        """Recompute what is stale; True if anything was. Cheap when called often."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._checked < CHECK_INTERVAL and self._has_archive():
                return False
            with psycopg.connect(self.db_url) as conn:
                signature = {c: (n, hwm) for c, n, hwm in conn.execute(_SIGNATURE_SQL)}
            changed = self._update(signature)
            self._checked = time.monotonic()
            return changed

    def _has_archive(self) -> bool:
        return (self.directory / "archive" / "summary.json").exists()

    def _update(self, signature: dict[str | None, tuple[int, str | None]]) -> bool:
        root = self.directory / "collections"
        root.mkdir(parents=True, exist_ok=True)
        changed = False
        wanted = {_key(c): c for c in signature}
        for directory in root.iterdir():
            if directory.is_dir() and directory.name not in wanted:  # collection emptied
                for f in directory.iterdir():
                    f.unlink()
                directory.rmdir()
                changed = True
        for key, name in wanted.items():
            count, hwm = signature[name]
            summary_file = root / key / "summary.json"
            if summary_file.exists():
                old = json.loads(summary_file.read_text())
                if (old["spectra"], old["ingest_time"], old["space_order"]) == (
                    count,
                    hwm,
                    self.order,
                ):
                    continue
            self._compute_collection(root / key, name, count, hwm)
            changed = True
        if changed or not self._has_archive():
            self._compute_archive([root / k for k in wanted])
            changed = True
        return changed

    def _compute_collection(
        self, directory: Path, name: str | None, count: int, hwm: str | None
    ) -> None:
        import adbc_driver_postgresql.dbapi as adbc

        where, params = ("collection IS NULL", ()) if name is None else ("collection = $1", (name,))
        with adbc.connect(self.db_url) as conn, conn.cursor() as cur:
            cur.execute(_ROWS_SQL.format(where=where), params)
            table = cur.fetch_arrow_table()
            cur.execute(_FACTS_SQL.format(where=where), params)
            facts = cur.fetchone()

        def col(name: str) -> np.ndarray:
            return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)

        healpix = table.column("healpix").to_numpy(zero_copy_only=False).astype(np.int64)
        mocs = {
            "space": space_moc(healpix, col("ra"), col("dec"), col("aperture"), self.order),
            "time": time_moc(col("t_min"), col("t_max")),
            "space-time": space_time_moc(healpix, col("t_min"), col("t_max"), self.order),
        }
        summary = Summary(
            collection=name,
            spectra=count,
            positioned=int(facts[4]),
            ingest_time=hwm,
            space_order=self.order,
            wave_min=facts[0],
            wave_max=facts[1],
            t_min=facts[2],
            t_max=facts[3],
            instruments=sorted(facts[5] or []),
            facilities=sorted(facts[6] or []),
            computed=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._save(directory, mocs, summary)

    def _compute_archive(self, parts: list[Path]) -> None:
        summaries = [self._load(p).summary for p in parts]
        mocs: dict[str, MOC | TimeMOC | STMOC] = {}
        for kind, cls in KINDS.items():
            loaded = [cls.load(p / f"{kind}.fits", format="fits") for p in parts]
            if kind == "space":
                empty = MOC.new_empty(self.order)
            elif kind == "time":
                empty = TimeMOC.new_empty(0)
            else:
                empty = STMOC.new_empty(0, self.order)
            mocs[kind] = loaded[0].union(*loaded[1:]) if len(loaded) > 1 else (loaded or [empty])[0]

        def pick(values: list, fn):
            present = [v for v in values if v is not None]
            return fn(present) if present else None

        hwms = [s.ingest_time for s in summaries]
        summary = Summary(
            collection=None,
            spectra=sum(s.spectra for s in summaries),
            positioned=sum(s.positioned for s in summaries),
            ingest_time=pick(hwms, max),
            space_order=self.order,
            wave_min=pick([s.wave_min for s in summaries], min),
            wave_max=pick([s.wave_max for s in summaries], max),
            t_min=pick([s.t_min for s in summaries], min),
            t_max=pick([s.t_max for s in summaries], max),
            instruments=sorted({i for s in summaries for i in s.instruments}),
            facilities=sorted({f for s in summaries for f in s.facilities}),
            computed=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._save(self.directory / "archive", mocs, summary)

    @staticmethod
    def _save(directory: Path, mocs: dict, summary: Summary) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for kind, moc in mocs.items():
            _write(directory / f"{kind}.fits", _fits(moc))
        _write(directory / "summary.json", json.dumps(asdict(summary)).encode())
