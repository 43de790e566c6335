"""What a format reader hands to the ingest pipeline.

Readers are pure: bytes in, records out. They know nothing of the database or the file store,
so every format can be tested on files made in memory. Positions stay in the frame the file
declares; the pipeline converts whole batches to ICRS at once (one SkyCoord per batch instead of
one per file keeps ingest fast).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class NotASpectrum(Exception):
    """The file is readable but holds no 1-D spectrum (a 2-D image, a model table, ...).

    The message is the one-line reason shown in the ingest summary, e.g.
    "2-D image (4096 x 72 pixels) without a spectral axis: looks like an echelle frame".
    """


class UnreadableFile(Exception):
    """The file cannot be parsed at all (not FITS, truncated, corrupt)."""


@dataclass(slots=True)
class RawPosition:
    """A sky position as the file declares it, before conversion to ICRS.

    frame is an astropy frame name ('icrs', 'fk5', 'fk4', 'galactic', ...); equinox is the
    equinox string astropy accepts ('J2000', 'B1950') or None for frames without one.
    """

    lon_deg: float
    lat_deg: float
    frame: str = "icrs"
    equinox: str | None = None


@dataclass(slots=True)
class SpectrumRecord:
    """One spectrum found in a file, with everything the spectra table needs.

    Spectral values are in metres (vacuum or air as the file says; not converted). Times are MJD.
    Any field may be None when the file does not say; the pipeline adds file checksum, size, store
    path, publisher DID and provenance.
    """

    file_format: str  # 'eso-phase3', 'sdss', 'image1d', 'bintable'
    file_index: int = 0  # position of this spectrum inside its file (0 for single-spectrum files)
    n_pix: int = 0
    wave_min: float | None = None  # metres
    wave_max: float | None = None  # metres
    position: RawPosition | None = None
    obs_id: str | None = None
    target_name: str | None = None
    target_class: str | None = None
    aperture: float | None = None  # degrees (diameter of fibre or slit length)
    resolving_power: float | None = None
    snr: float | None = None
    redshift: float | None = None
    exptime: float | None = None  # seconds
    t_min: float | None = None  # MJD
    t_max: float | None = None  # MJD
    instrument: str | None = None
    facility: str | None = None
    collection: str | None = None
    calib_level: int | None = None
    flux_unit: str | None = None  # VOUnit string, as astropy writes it ('erg / (Angstrom s cm2)')
    release_date: str | None = None  # ISO 8601
    origin_id: str | None = None  # the identifier the file carries from its archive (ARCFILE, ...)
    warnings: list[str] = field(default_factory=list)
    # The sampled spectrum itself, for SNR estimates, previews and embeddings. wave in metres.
    wave: np.ndarray | None = None
    flux: np.ndarray | None = None
    error: np.ndarray | None = None
    quality: np.ndarray | None = None
