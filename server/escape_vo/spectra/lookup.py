"""Find spectra in archive.spectra by internal id or publisher DID (async and sync forms).

The HTTP handlers use the service's async pool; the SODA job runner and the benchmarks use a
plain psycopg connection. Both read the same columns into the same frozen record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

import psycopg
from psycopg_pool import AsyncConnectionPool


@dataclass(frozen=True, slots=True)
class SpectrumRow:
    """What delivery, DataLink and SODA need to know about one spectrum."""

    spectrum_id: int
    publisher_did: str
    obs_id: str | None
    target_name: str | None
    target_class: str | None
    ra: float | None
    dec: float | None
    aperture: float | None
    wave_min: float | None
    wave_max: float | None
    resolving_power: float | None
    snr: float | None
    redshift: float | None
    exptime: float | None
    t_min: float | None
    t_max: float | None
    instrument: str | None
    facility: str | None
    collection: str | None
    calib_level: int
    flux_unit: str | None
    n_pix: int
    file_format: str
    file_index: int
    file_sha256: str
    file_size: int
    file_path: str
    original_name: str | None
    origin_id: str | None

    @property
    def file_name(self) -> str:
        """The name the original file is delivered under."""
        return self.original_name or self.file_path.rsplit("/", 1)[-1]

    @property
    def title(self) -> str:
        target = self.target_name or self.obs_id or "spectrum"
        instrument = self.instrument or "unknown instrument"
        if self.wave_min is not None and self.wave_max is not None:
            return (
                f"{target} ({instrument}, {self.wave_min * 1e9:.0f}-{self.wave_max * 1e9:.0f} nm)"
            )
        return f"{target} ({instrument})"


_COLUMNS = [f.name for f in fields(SpectrumRow)]
_SELECT = "SELECT " + ", ".join(f'"{c}"' for c in _COLUMNS) + " FROM archive.spectra "
BY_ID = _SELECT + "WHERE spectrum_id = %s"
BY_DIDS = _SELECT + "WHERE publisher_did = ANY(%s)"


def _rows(records: Iterable[Sequence]) -> dict[str, SpectrumRow]:
    out = {}
    for rec in records:
        row = SpectrumRow(*rec)
        out[row.publisher_did] = row
    return out


async def spectrum_by_id(pool: AsyncConnectionPool, spectrum_id: int) -> SpectrumRow | None:
    async with pool.connection() as conn:
        cur = await conn.execute(BY_ID, (spectrum_id,))
        rec = await cur.fetchone()
    return SpectrumRow(*rec) if rec else None


async def spectra_by_did(pool: AsyncConnectionPool, dids: Sequence[str]) -> dict[str, SpectrumRow]:
    """The known spectra among `dids`, keyed by DID (unknown ones are simply missing)."""
    if not dids:
        return {}
    async with pool.connection() as conn:
        cur = await conn.execute(BY_DIDS, (list(dict.fromkeys(dids)),))
        return _rows(await cur.fetchall())


def spectra_by_did_sync(conn: psycopg.Connection, dids: Sequence[str]) -> dict[str, SpectrumRow]:
    if not dids:
        return {}
    return _rows(conn.execute(BY_DIDS, (list(dict.fromkeys(dids)),)).fetchall())
