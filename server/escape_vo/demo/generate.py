"""Seeded generator of realistic demo spectra, written as FITS files in real archive formats.

generate_demo() plans every file from the seed (plan.py), synthesises the spectra (physics.py)
and writes them (formats.py), in parallel processes if asked. Each file draws its noise from its
own generator spawned from the seed, so the bytes do not depend on the number of workers.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from escape_vo.demo.badfiles import write_bad_files
from escape_vo.demo.formats import WRITERS
from escape_vo.demo.instruments import FILE_FORMAT
from escape_vo.demo.plan import FileJob, make_plan
from escape_vo.stopping import stopping_worker

__all__ = ["DemoTruth", "generate_demo", "write_bad_files"]


@dataclass(slots=True)
class DemoTruth:
    """What is really in one demo spectrum: the answer key for ingest, search and ML tests."""

    path: str  # relative to the demo folder, posix
    file_index: int  # index inside the file (program fibres / table rows in order), else 0
    file_format: str  # 'eso-phase3', 'sdss', 'image1d', 'bintable'
    ra: float | None  # ICRS degrees, None when the file gives no usable position
    dec: float | None
    wave_min: float  # metres, first pixel centre as written (air/vacuum untouched)
    wave_max: float  # metres, last pixel centre as written
    n_pix: int
    obj_class: str  # 'star', 'qso', 'galaxy'
    subclass: str
    redshift: float  # v/c for stars
    instrument: str  # INSTRUME as written
    facility: str  # TELESCOP as written
    target_name: str | None  # OBJECT / NAME as written; None where the format has none (SDSS)
    snr: float  # median S/N of the noise model
    anomalous: bool
    anomaly_kind: str | None = None  # 'spike', 'trough', 'white_dwarf', 'sky_residual'


def _gzip(data: bytes) -> bytes:
    """gzip with no timestamp and no embedded name, so equal input gives equal bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def _build(dest: Path, job: FileJob, seed: np.random.SeedSequence) -> list[DemoTruth]:
    """Write one planned file and return the truth of each spectrum in it."""
    rng = np.random.default_rng(seed)
    data, written = WRITERS[job.inst.fmt](job, rng)
    path = dest / job.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_gzip(data) if job.gzip else data)
    truths = []
    for w, t in zip(written, job.targets, strict=True):
        src = t.source
        truths.append(
            DemoTruth(
                path=job.relpath,
                file_index=w.file_index,
                file_format=FILE_FORMAT[job.inst.fmt],
                ra=t.ra,
                dec=t.dec,
                wave_min=w.wave_min,
                wave_max=w.wave_max,
                n_pix=w.n_pix,
                obj_class=src.obj_class,
                subclass=src.subclass,
                redshift=src.redshift,
                instrument=job.inst.instrume,
                facility=job.inst.telescop,
                target_name=t.name,
                snr=w.snr,
                anomalous=src.anomaly is not None,
                anomaly_kind=src.anomaly,
            )
        )
    return truths


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def generate_demo(
    dest: Path,
    n_spectra: int = 2400,
    seed: int = 42,
    n_pix: int | None = None,
    workers: int | None = None,
) -> list[DemoTruth]:
    """Write n_spectra demo spectra under dest plus dest/truth.json; return their truth.

    n_pix forces the pixel count of every spectrum (benchmarks); by default pixel counts are
    modest and wavelength ranges realistic. Same seed, same bytes, whatever `workers` is.
    """
    if n_spectra < 1:
        raise ValueError("n_spectra must be at least 1")
    if n_pix is not None and n_pix < 16:
        raise ValueError("n_pix must be at least 16")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    plan_seed, files_seed = np.random.SeedSequence(seed).spawn(2)
    jobs = make_plan(n_spectra, plan_seed, n_pix)
    seeds = files_seed.spawn(len(jobs))
    n_workers = min(workers or _default_workers(), len(jobs))
    if n_workers <= 1:
        results = [_build(dest, job, s) for job, s in zip(jobs, seeds, strict=True)]
    else:
        chunk = max(1, len(jobs) // (n_workers * 16))
        with ProcessPoolExecutor(max_workers=n_workers, initializer=stopping_worker) as pool:
            results = list(pool.map(_build, [dest] * len(jobs), jobs, seeds, chunksize=chunk))
    truths = [t for file_truths in results for t in file_truths]
    text = json.dumps([asdict(t) for t in truths], indent=1)
    (dest / "truth.json").write_text(text + "\n", encoding="utf-8")
    return truths
