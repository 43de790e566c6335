"""PNG previews of spectra: plotted once with matplotlib (Agg), then served from a cache.

The cache is a directory (DATA_DIR/previews) keyed by the file checksum and the spectrum's
index in the file, so a re-ingest or a second archive holding the same bytes reuses it. Files
are written to a temporary name and renamed, so concurrent workers never serve half a PNG.
matplotlib's object API (Figure + FigureCanvasAgg) is used instead of pyplot: no global state,
safe in the threads the web server runs blocking work in.
"""

from __future__ import annotations

import io
import itertools
import os
import tempfile
from pathlib import Path

import numpy as np

from escape_vo.spectra.convert import SpectrumData, vounit
from escape_vo.spectra.lookup import SpectrumRow

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 3.2, 100
_MAX_POINTS = 4000  # more points than pixels across the plot only cost time


def preview_path(cache_dir: Path, row: SpectrumRow) -> Path:
    return cache_dir / row.file_sha256[:2] / f"{row.file_sha256}-{row.file_index}.png"


def _decimate(wave: np.ndarray, flux: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min/max per bin keeps narrow lines visible while drawing a few thousand points."""
    n = wave.size
    if n <= _MAX_POINTS:
        return wave, flux
    bins = _MAX_POINTS // 2
    edges = np.linspace(0, n, bins + 1).astype(int)
    w_out, f_out = [], []
    for a, b in itertools.pairwise(edges):
        seg = flux[a:b]
        finite = np.isfinite(seg)
        if not finite.any():
            continue
        i_min = a + int(np.nanargmin(seg))
        i_max = a + int(np.nanargmax(seg))
        for i in sorted((i_min, i_max)):
            w_out.append(wave[i])
            f_out.append(flux[i])
    return np.asarray(w_out), np.asarray(f_out)


def render_png(data: SpectrumData) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    good = np.isfinite(data.flux) & np.isfinite(data.wave)
    if data.quality is not None:
        good &= data.quality == 0
    if not good.any():
        good = np.isfinite(data.flux) & np.isfinite(data.wave)
    order = np.argsort(data.wave[good], kind="stable")
    wave_nm = data.wave[good][order] * 1e9
    flux = data.flux[good][order]
    wave_nm, flux = _decimate(wave_nm, flux)

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(wave_nm, flux, lw=0.6, color="#1f4e79")
    if flux.size:
        lo, hi = np.nanpercentile(flux, [0.5, 99.5])
        pad = 0.08 * (hi - lo) if hi > lo else abs(hi) * 0.1 + 1e-30
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("wavelength [nm]")
    unit = vounit(data.flux_unit) or ("counts" if data.row.calib_level < 2 else "arbitrary units")
    ax.set_ylabel(f"flux [{unit}]", fontsize=8)
    ax.set_title(data.row.title, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.25, lw=0.5)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Title": data.row.publisher_did})
    return buf.getvalue()


def cached_preview(cache_dir: Path, row: SpectrumRow, make_data) -> Path:
    """The PNG of `row`, rendering it (with `make_data()`) only if it is not cached yet."""
    path = preview_path(cache_dir, row)
    if path.exists():
        return path
    png = render_png(make_data())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(png)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
