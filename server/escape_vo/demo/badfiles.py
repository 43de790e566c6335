"""Files an ingest must refuse (or set aside) with a clear reason, as found in real archive dumps.

write_bad_files() returns, per file name, a lowercase fragment that the rejection reason must
contain, so ingest tests can check the message and not only that the file was skipped.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from astropy.io import fits

_SEED = 20_260_101


def _fits_bytes(hdus: list[fits.PrimaryHDU | fits.ImageHDU | fits.BinTableHDU]) -> bytes:
    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf)
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def _spectrum_1d(rng: np.random.Generator, n: int = 20000) -> bytes:
    """A valid 1-D spectrum; the truncated files are cut from it."""
    wave = 4000.0 + 0.1 * np.arange(n)
    flux = 1e-15 * (1 + 0.1 * np.sin(wave / 300)) + 1e-17 * rng.standard_normal(n)
    h = fits.Header()
    h["OBJECT"] = "HD 10700"
    h["CRVAL1"], h["CRPIX1"], h["CDELT1"] = 4000.0, 1.0, 0.1
    h["CTYPE1"], h["CUNIT1"], h["BUNIT"] = "WAVE", "Angstrom", "erg/cm2/s/Angstrom"
    return _fits_bytes([fits.PrimaryHDU(flux.astype(np.float32), header=h)])


def _png(width: int = 16, height: int = 16) -> bytes:
    """A small valid grey-scale PNG: what a mis-named preview image looks like."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + bytes((x * 16 + y) % 256 for x in range(width)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _raw_echelle(rng: np.random.Generator, size: int = 2048) -> bytes:
    """A raw echelle detector frame: curved orders, bias, noise, and no wavelength WCS."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    spacing = 28.0 + 30.0 * y / size  # orders spread out towards the red
    curve = 40.0 * ((x - size / 2) / size) ** 2 + 0.02 * x
    phase = (y - curve) / spacing
    frac = (phase - np.round(phase)) * spacing
    blaze = np.sin(np.pi * x / size) ** 2 + 0.05
    image = 200 + 4000 * blaze * np.exp(-0.5 * (frac / 2.2) ** 2)
    image += rng.normal(0, 5, image.shape).astype(np.float32)
    h = fits.Header()
    h["ORIGIN"], h["TELESCOP"], h["INSTRUME"] = "ESO", "MPG/ESO-2.2", "FEROS"
    h["OBJECT"], h["EXPTIME"] = "HD 128620", 120.0
    h["RA"], h["DEC"] = (219.902066, "[deg]"), (-60.833975, "[deg]")
    h["HIERARCH ESO DPR CATG"] = "SCIENCE"
    h["HIERARCH ESO DPR TYPE"] = "OBJECT"
    data = np.clip(image, 0, 65535).astype(np.uint16)
    return _fits_bytes([fits.PrimaryHDU(data, header=h)])


def _extracted_echelle(rng: np.random.Generator, n_orders: int = 30, n: int = 1024) -> bytes:
    """IRAF multispec output: one extracted order per image row, wavelengths in WAT2 cards."""
    rows = np.empty((n_orders, n), dtype=np.float32)
    h = fits.Header()
    h["OBJECT"], h["TELESCOP"], h["INSTRUME"] = "HR 5459", "ESO-1.52M", "ECHELEC"
    h["WCSDIM"] = 2
    h["CTYPE1"], h["CTYPE2"] = "MULTISPE", "MULTISPE"
    h["CDELT1"], h["CDELT2"], h["CD1_1"], h["CD2_2"] = 1.0, 1.0, 1.0, 1.0
    h["WAT0_001"] = "system=multispec"
    h["WAT1_001"] = "wtype=multispec label=Wavelength units=angstroms"
    specs = []
    for k in range(n_orders):
        w0, dw = 3900.0 + 95.0 * k, 0.1 + 0.002 * k
        x = np.arange(n)
        rows[k] = 1000 * np.sin(np.pi * (x + 0.5) / n) ** 2 + rng.normal(0, 10, n)
        specs.append(f'spec{k + 1} = "{k + 1} {120 - k} 0 {w0:.2f} {dw:.4f} {n} 0. 0. 0."')
    text = "wtype=multispec " + " ".join(specs)
    for i in range(0, len(text), 68):
        h[f"WAT2_{i // 68 + 1:03d}"] = text[i : i + 68]
    return _fits_bytes([fits.PrimaryHDU(rows, header=h)])


def _model_table() -> bytes:
    order = np.arange(60, 100, dtype=np.int32)
    cols = [fits.Column("ORDER", "J", array=order)]
    for c in range(6):
        cols.append(fits.Column(f"COEFF{c}", "D", array=(order + 1.0) * 10.0 ** (-3 * c)))
    return _fits_bytes([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="MODEL")])


def _mcmc_table(rng: np.random.Generator, n: int = 2000) -> bytes:
    cols = [
        fits.Column("TEFF", "E", unit="K", array=rng.normal(5780, 60, n)),
        fits.Column("LOGG", "E", unit="dex", array=rng.normal(4.44, 0.08, n)),
        fits.Column("FEH", "E", unit="dex", array=rng.normal(0.0, 0.05, n)),
        fits.Column("VSINI", "E", unit="km/s", array=np.abs(rng.normal(2.0, 0.5, n))),
    ]
    return _fits_bytes([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="SAMPLES")])


def _error_only(rng: np.random.Generator, n: int = 2000) -> bytes:
    """The error half of an ESO-style flux/error pair, downloaded without its flux."""
    h = fits.Header()
    h["EXTNAME"] = "ERROR"
    h["HDUCLASS"], h["HDUDOC"], h["HDUCLAS1"] = "ESO", "SDP", "IMAGE"
    h["HDUCLAS2"], h["HDUCLAS3"], h["SCIDATA"] = "ERROR", "RMSE", "FLUX"
    h["OBJECT"], h["INSTRUME"], h["TELESCOP"] = "NGC 1068", "EFOSC", "ESO-NTT"
    h["CRVAL1"], h["CRPIX1"], h["CDELT1"] = 3800.0, 1.0, 2.0
    h["CTYPE1"], h["CUNIT1"], h["BUNIT"] = "WAVE", "Angstrom", "erg/cm2/s/Angstrom"
    err = (1e-17 * (1 + 0.2 * rng.random(n))).astype(np.float32)
    return _fits_bytes([fits.PrimaryHDU(err, header=h)])


def write_bad_files(dest: Path) -> dict[str, str]:
    """Write the rejects into dest; returns {file name: lowercase fragment of the reason}."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(_SEED)
    good = _spectrum_1d(rng)
    header_len = 2880
    cut = header_len + (len(good) - header_len) * 9 // 20 + 7  # mid-data, not block aligned
    gz = _gzip(good)
    html = (
        b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n"
        b"<body><h1>Service Unavailable</h1><p>The archive is under maintenance.</p></body>"
        b"</html>\n"
    )
    files: dict[str, tuple[bytes, str]] = {
        "truncated.fits": (good[:cut], "truncated"),
        "truncated_stream.fits.gz": (gz[: len(gz) // 2], "truncated"),
        "truncated_content.fits.gz": (_gzip(good[:cut]), "truncated"),
        "not_fits_png.fits": (_png(), "not a fits"),
        "not_fits_html.fits": (html, "not a fits"),
        "echelle_raw_2d.fits": (_raw_echelle(rng), "2-d"),
        "echelle_extracted_2d.fits": (_extracted_echelle(rng), "echelle"),
        "model_coefficients.fits": (_model_table(), "no wavelength"),
        "mcmc_samples.fits": (_mcmc_table(rng), "no wavelength"),
        "error_only.fits": (_error_only(rng), "error array"),
    }
    for name, (data, _) in files.items():
        (dest / name).write_bytes(data)
    return {name: reason for name, (_, reason) in files.items()}
