"""Spectra like one the archive does not hold: the user's own file, embedded on the fly.

"Show me spectra like this one" is most often asked of a spectrum just observed, not yet in any
archive. POST /embeddings/similar takes it as a file (any 1-D spectrum FITS that ingest reads),
and this module does to it what `embed apply` does to an archived spectrum: read by the ingest
readers, resampled onto the model's grid (rest frame with the file's redshift or the one the
request gives), embedded by the model's current version. Its vector is then searched with the
same HNSW query as an archived spectrum's, so an archived spectrum uploaded as a file finds
itself at distance 0 and the neighbours the archive gives for its ID. The answer also says how
the model sees the spectrum: its anomaly score on the archive's scale (as a spectrum the model
never saw), its reconstruction error and its latent-sky position.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import psycopg

from escape_vo.embeddings import anomaly
from escape_vo.embeddings.grid import CLIP, GRIDS, resample
from escape_vo.embeddings.models import EmbeddingModel
from escape_vo.embeddings.preprocess import Dataset
from escape_vo.embeddings.search import AVAILABLE, default_model
from escape_vo.embeddings.store import (
    CURRENT_MODEL,
    ModelNotFound,
    ModelRecord,
    load_model,
    model_record,
    sky_position,
)
from escape_vo.filestore import FileStore
from escape_vo.ingest.model import SpectrumRecord

MAX_FILE_BYTES = 64_000_000  # one 1-D spectrum; the largest X-shooter or UVES files are ~20 MB
MAX_INFLATED_UPLOAD = 256_000_000  # what a gzip-compressed upload may inflate to
CACHED_MODELS = 4  # loaded model versions kept in memory (a few MB each)
# Fewer grid bins than this and a vector says little about the spectrum: the model reads a few
# values (a 3-pixel file, a narrow order; the narrowest demo settings cover ~90 bins).
FEW_BINS = 32


class ExampleError(ValueError):
    """The uploaded spectrum cannot be embedded; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Embedded:
    """An uploaded spectrum as the model sees it."""

    model: str
    version: int
    grid: str
    vector: np.ndarray  # float32 (latent_dim,)
    lon: float
    lat: float
    anomaly_score: float
    reconstruction_error: float
    z_model: float | None
    redshift: float | None  # the one used: rest frame when given
    coverage: float  # fraction of the grid the spectrum covers
    flux: np.ndarray  # float32 on the model's grid, normalised, NaN where it has no data
    model_flux: np.ndarray | None  # the model's rebuild of it (model_flux), when asked for
    warnings: tuple[str, ...] = ()  # what the reader guessed or the grid made of the file


def pick_spectrum(data: bytes, filename: str, index: int | None) -> SpectrumRecord:
    """The spectrum of the file to embed: its only one, or the one at `index`."""
    from escape_vo.ingest.readers import read_spectra

    try:
        found = read_spectra(data, filename, max_inflated=MAX_INFLATED_UPLOAD)
        records = [r for r in found if r.wave is not None and r.flux is not None]
    except Exception as exc:  # NotASpectrum, UnreadableFile, or a reader's own surprise
        raise ExampleError(
            f"{filename} is not a spectrum this service reads: {exc}. Upload a 1-D spectrum "
            "FITS file (ESO Phase 3, SDSS/BOSS, a 1-D image with a wavelength WCS, a binary "
            "table with wavelength and flux columns)"
        ) from exc
    if not records:
        raise ExampleError(f"{filename} holds no spectrum with wavelengths and fluxes")
    indices = sorted(r.file_index for r in records)
    held = ", ".join(map(str, indices)) if len(indices) <= 12 else f"{indices[0]}-{indices[-1]}"
    if index is None:
        if len(records) > 1:
            raise ExampleError(
                f"{filename} holds {len(records)} spectra; say which with INDEX "
                f"(its position in the file: {held})"
            )
        return records[0]
    found = [r for r in records if r.file_index == index]
    if not found:
        raise ExampleError(f"{filename} has no spectrum at INDEX={index}; it holds {held}")
    return found[0]


def _chosen(available: list[str], name: str | None) -> str:
    if not available:
        raise ExampleError("no embedding model has been applied yet (escape-vo embed apply)")
    name = name or default_model(available)
    if name not in available:
        offered = ", ".join(available)
        raise ExampleError(f"model {name!r} has no applied version; models available: {offered}")
    return name  # type: ignore[return-value]


def _current(row: tuple | None, name: str) -> ModelRecord:
    if row is None:  # replaced between the two queries by another `embed apply`
        raise ExampleError(f"model {name!r} is being replaced; try again in a moment")
    return model_record(row)


def current_record(conn: psycopg.Connection, name: str | None) -> ModelRecord:
    """The version of model `name` (default: the best applied one) the archive's vectors come
    from: the applied, current one."""
    name = _chosen([r[0] for r in conn.execute(AVAILABLE).fetchall()], name)
    return _current(conn.execute(CURRENT_MODEL, (name,)).fetchone(), name)


async def current_record_async(conn: psycopg.AsyncConnection, name: str | None) -> ModelRecord:
    """The same on the web server's pool: no connection of its own per request."""
    cur = await conn.execute(AVAILABLE)
    name = _chosen([r[0] for r in await cur.fetchall()], name)
    cur = await conn.execute(CURRENT_MODEL, (name,))
    return _current(await cur.fetchone(), name)


def embed_file(
    store_url: str,
    record: ModelRecord,
    data: bytes,
    filename: str,
    index: int | None = None,
    redshift: float | None = None,
    rebuild: bool = False,
) -> Embedded:
    """The spectrum of a file as the model version `record` sees it; `redshift` None takes
    the file's own (as ingest records it, so as `embed apply` would use it)."""
    spectrum = pick_spectrum(data, filename, index)
    z = redshift if redshift is not None else spectrum.redshift
    return embed_example(cached_model(store_url, record), record, spectrum, z, rebuild)


_cache: dict[tuple[str, str], EmbeddingModel] = {}
_cache_lock = threading.Lock()


def cached_model(store_url: str, record: ModelRecord) -> EmbeddingModel:
    """The model of a version, loaded once. Keyed by its weights' path in the store (their
    SHA-256), not by name and version, which another database's model can share."""
    key = (store_url, record.state_path)
    with _cache_lock:
        model = _cache.get(key)
    if model is None:
        try:
            model = load_model(FileStore(store_url), record)
        except (ModelNotFound, OSError, ValueError) as exc:
            raise ExampleError(
                f"model {record.name} v{record.version} cannot be loaded ({exc}); retrain it, "
                "or restore the file store its weights were saved in"
            ) from exc
        with _cache_lock:
            while len(_cache) >= CACHED_MODELS:
                _cache.pop(next(iter(_cache)))
            _cache[key] = model
    return model


def embed_example(
    model: EmbeddingModel,
    record: ModelRecord,
    spectrum: SpectrumRecord,
    redshift: float | None,
    rebuild: bool = False,
) -> Embedded:
    """Resample `spectrum` onto the model's grid as `embed apply` would and embed it (and
    rebuild it, with `rebuild`: one more pass of the model)."""
    grid = GRIDS[record.grid]
    try:
        r = resample(grid, spectrum.wave, spectrum.flux, spectrum.error, spectrum.quality, redshift)
    except ValueError as exc:  # NoCoverage, or arrays that do not match
        raise ExampleError(
            "the spectrum cannot be put on the model's grid "
            f"({grid.wave_min * 1e10:.0f}-{grid.wave_max * 1e10:.0f} Angstrom"
            f"{' in the rest frame' if redshift is not None else ''}): {exc}"
        ) from exc
    data = Dataset(
        np.array([-1], np.int64),  # no archive ID: scored as a spectrum the model never saw
        r.flux[None],
        np.array([r.rest_frame]),
        np.array([np.nan if r.noise is None else r.noise], np.float32),
        np.array([r.negative_z], np.float32),
    )
    emb = model.embed(data)
    lon, lat = sky_position(emb.vectors)
    covered = int(np.isfinite(r.flux).sum())
    thin = f"the spectrum covers {covered} of the model grid's {grid.n_pix} bins: its vector, "
    thin += "neighbours and score rest on little of it"
    z = None if emb.z_model is None or not np.isfinite(emb.z_model[0]) else float(emb.z_model[0])
    return Embedded(
        model=record.name,
        version=record.version,
        grid=record.grid,
        vector=emb.vectors[0],
        lon=float(lon[0]),
        lat=float(lat[0]),
        anomaly_score=float(emb.anomaly[0]),
        reconstruction_error=float(emb.error[0]),
        z_model=z,
        redshift=redshift if r.rest_frame else None,
        coverage=r.coverage,
        flux=r.flux,
        model_flux=model_flux(model, r.flux, r.rest_frame) if rebuild else None,
        warnings=(*spectrum.warnings, *([thin] if covered < FEW_BINS else [])),
    )


def model_flux(model: EmbeddingModel, flux: np.ndarray, rest_frame: bool) -> np.ndarray:
    """The model's rebuild of one preprocessed spectrum (NaN where masked), times the smooth
    response the anomaly score allows it (anomaly.response_fit): what the spectrum is compared
    with, to be drawn under it. NaN where the spectrum has no data."""
    f = np.asarray(flux, dtype=np.float32)[None]
    data = Dataset(
        np.array([-1], np.int64), f, np.array([rest_frame]), np.full(1, np.nan, np.float32)
    )
    recon = model.reconstruct(data).astype(np.float64)
    mask = np.isfinite(f)
    clipped = np.where(mask, np.clip(f, *CLIP), 0.0).astype(np.float64)
    fitted = anomaly.response_fit(clipped, recon, mask)[0]
    return np.where(mask[0], fitted, np.nan)
