"""Decide, from the seed alone, every demo file and every target in it.

All choices that span files (format mix, sky positions, anomalies, file names) are made here in
one process from one plan generator; the per-file writers only draw noise and line strengths from
their own spawned generator. That is what makes the output independent of the worker count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from escape_vo.demo import positions as pos
from escape_vo.demo.instruments import FORMAT_SHARE, INSTRUMENTS, Instrument, Setting, family
from escape_vo.demo.physics import C_KMS, GALAXY_SUBCLASSES, Source, draw_stellar_type

ANOMALY_KINDS = ("spike", "trough", "white_dwarf", "sky_residual")
ANOMALY_RATE = 0.005
_MJD0 = datetime(1858, 11, 17)


@dataclass(slots=True)
class Target:
    """One spectrum to synthesise, with its ICRS truth and the position as its file writes it."""

    source: Source
    snr: float
    ra: float | None = None
    dec: float | None = None
    style: str | None = None  # positions.STYLES, or None when the file gives no position
    written: tuple[Any, Any] | None = None
    name: str | None = None


@dataclass(slots=True)
class FileJob:
    """One file: which instrument and setting, its wavelength grid and its targets."""

    index: int
    inst: Instrument
    setting: Setting
    relpath: str
    gzip: bool
    n_pix: int
    forced_npix: bool
    wmin_aa: float
    wmax_aa: float
    resolving_power: float
    mjd: float
    exptime: float
    targets: list[Target]
    opts: dict[str, Any] = field(default_factory=dict)


def mjd_to_datetime(mjd: float) -> datetime:
    return _MJD0 + timedelta(days=mjd)


def mjd_to_iso(mjd: float, digits: int = 3) -> str:
    """ISO 8601 with `digits` decimals of seconds (0 for none)."""
    text = mjd_to_datetime(mjd).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[: len(text) - 6 + digits] if digits else text[:-7]


def _year_mjd(year: int) -> float:
    return float((datetime(year, 1, 1) - _MJD0).days)


def _split(total: int, shares: list[float], minimum: int = 0) -> list[int]:
    """Largest-remainder split of total by shares, giving each at least `minimum` if possible."""
    shares_arr = np.asarray(shares, dtype=float) / sum(shares)
    floor = np.floor(total * shares_arr).astype(int)
    order = np.argsort(-(total * shares_arr - floor), kind="stable")
    for i in order[: total - floor.sum()]:
        floor[i] += 1
    if minimum and total >= minimum * len(shares):
        for i in range(len(shares)):
            while floor[i] < minimum:
                floor[int(np.argmax(floor))] -= 1
                floor[i] += 1
    return floor.tolist()


def _chunks(rng: np.random.Generator, total: int, lo: int, hi: int) -> list[int]:
    """Split total into chunks of lo..hi (the last may be smaller only if total < lo)."""
    sizes: list[int] = []
    left = total
    while left > 0:
        size = int(rng.integers(lo, hi + 1))
        if left - size < lo:
            size = left if left <= hi else left - lo
        sizes.append(size)
        left -= size
    return sizes


def _draw_source(rng: np.random.Generator, inst: Instrument, obj_class: str) -> Source:
    lo, hi = inst.mag
    if obj_class == "star":
        subclass = draw_stellar_type(rng)
        rv = rng.normal(0, 35) if rng.random() < 0.9 else rng.uniform(-300, 300)
        z = round(float(np.clip(rv, -300, 300)) / C_KMS, 7)
        mag = rng.uniform(lo, hi)
    elif obj_class == "qso":
        subclass, z = "broadline", round(float(rng.uniform(0.1, 3.5)), 5)
        mag = rng.uniform(min(lo + 3, 19), min(hi + 2, 21))
    else:
        weights = np.array([0.45, 0.15, 0.15, 0.25])
        subclass = GALAXY_SUBCLASSES[int(rng.choice(4, p=weights))]
        zmax = 0.3 if inst.fmt == "fibres" else 0.4
        z = round(0.005 + (zmax - 0.005) * float(rng.beta(2, 6)), 5)
        mag = rng.uniform(min(lo + 1.5, 18), min(hi + 1.5, 21))
    return Source(obj_class, subclass, z, round(float(mag), 2))


def _star_name(rng: np.random.Generator, dec: float | None) -> str:
    kind = int(rng.integers(5))
    if kind == 0:
        return f"HD {int(rng.integers(1, 359084))}"
    if kind == 1:
        return f"HIP {int(rng.integers(1, 120417))}"
    if kind == 2:
        sign = "-" if (dec or 0) < 0 else "+"
        return f"BD{sign}{int(abs(dec or 0)):02d} {int(rng.integers(1, 5000))}"
    if kind == 3:
        return f"GJ {int(rng.integers(1, 1300))}"
    return f"TYC {int(rng.integers(1, 9538))}-{int(rng.integers(1, 1500))}-1"


def _target_name(rng: np.random.Generator, t: Target, inst: Instrument) -> str | None:
    cls, ra, dec = t.source.obj_class, t.ra, t.dec
    if inst.fmt == "sdss":
        return None  # SDSS spectra carry plate-MJD-fibre, not object names
    if t.source.anomaly == "white_dwarf":
        sign = "-" if (dec or 0) < 0 else "+"
        return f"WD {int(rng.integers(1, 2400)):04d}{sign}{int(rng.integers(0, 900)):03d}"
    if inst.fmt == "fibres":
        if cls == "galaxy":
            return f"TGS{int(rng.integers(100, 999))}Z{int(rng.integers(1, 400)):03d}"
        if cls == "qso" and ra is not None and dec is not None:
            return "2QZ " + pos.jname(ra, dec)[:15]
        return f"STAR{int(rng.integers(1, 99999)):05d}"
    if cls == "star" or ra is None or dec is None:
        return _star_name(rng, dec) if cls == "star" else f"NGC {int(rng.integers(1, 7841))}"
    if cls == "qso":
        return "QSO " + pos.jname(ra, dec, short=True) if rng.random() < 0.7 else pos.jname(ra, dec)
    kind = int(rng.integers(3))
    if kind == 0:
        return f"NGC {int(rng.integers(1, 7841))}"
    if kind == 1:
        return f"ESO {int(rng.integers(1, 600))}-G{int(rng.integers(1, 60)):02d}"
    return "2MASX " + pos.jname(ra, dec)


def make_plan(
    n_spectra: int, seed: np.random.SeedSequence, n_pix: int | None = None
) -> list[FileJob]:
    """Every file of the demo, in writing order, with all targets positioned and named."""
    rng = np.random.default_rng(seed)
    families = list(FORMAT_SHARE)
    fam_counts = dict(
        zip(families, _split(n_spectra, [FORMAT_SHARE[f] for f in families]), strict=True)
    )
    groups: list[tuple[Instrument, int]] = []  # (instrument, number of targets) per file
    for fam in families:
        insts = [i for i in INSTRUMENTS if family(i) == fam]
        counts = _split(fam_counts[fam], [i.share for i in insts], minimum=1)
        if fam == "table" and fam_counts[fam] >= 4:  # a multi-row table needs several rows
            rows = next(k for k, i in enumerate(insts) if i.fmt == "table-rows")
            while counts[rows] < 2:
                counts[int(np.argmax(counts))] -= 1
                counts[rows] += 1
        for inst, count in zip(insts, counts, strict=True):
            if count == 0:
                continue
            if inst.fmt == "fibres":
                n_files = max(1, round(count / 25))
                sizes = _split(count, list(rng.uniform(0.8, 1.2, n_files)))
            elif inst.fmt == "table-rows":
                sizes = _chunks(rng, count, 3, 8) if count >= 3 else [count]
            else:
                sizes = [1] * count
            groups += [(inst, s) for s in sizes if s > 0]

    jobs: list[FileJob] = []
    seen_setting: dict[str, int] = {}
    for k, (inst, size) in enumerate(groups):
        nth = seen_setting.get(inst.key, 0)
        seen_setting[inst.key] = nth + 1
        setting = (
            inst.settings[nth]
            if nth < len(inst.settings)
            else inst.settings[int(rng.integers(len(inst.settings)))]
        )
        r_lo, r_hi = setting.resolving_power
        jitter = rng.uniform(-0.002, 0.002, 2)
        npix_jitter = rng.uniform(0.92, 1.08)  # drawn even when n_pix is forced: same plan
        y0, y1 = inst.years
        mjd = _year_mjd(y0) + rng.uniform(0, _year_mjd(y1 + 1) - _year_mjd(y0))
        targets = []
        for _ in range(size):
            cls = ("star", "qso", "galaxy")[int(rng.choice(3, p=np.array(inst.classes)))]
            snr = float(np.exp(rng.uniform(np.log(inst.snr[0]), np.log(inst.snr[1]))))
            targets.append(Target(_draw_source(rng, inst, cls), round(snr, 2)))
        jobs.append(
            FileJob(
                index=k,
                inst=inst,
                setting=setting,
                relpath="",
                gzip=False,
                n_pix=n_pix or round(setting.npix * npix_jitter),
                forced_npix=bool(n_pix),
                wmin_aa=round(setting.wmin_aa * (1 + jitter[0]), 2),
                wmax_aa=round(setting.wmax_aa * (1 + jitter[1]), 2),
                resolving_power=float(round(rng.uniform(r_lo, r_hi), -2)),
                mjd=round(float(mjd), 6),
                exptime=round(float(np.exp(rng.uniform(np.log(30), np.log(3600)))), 1),
                targets=targets,
            )
        )
    _ensure_classes(rng, jobs)
    _assign_anomalies(rng, [t for j in jobs for t in j.targets], n_spectra)
    _assign_positions(rng, jobs)
    for job in jobs:
        _options(rng, job)
        for t in job.targets:
            t.name = _target_name(rng, t, job.inst)
    _cycle_image_variants(jobs)
    _name_files(rng, jobs)
    return jobs


def _ensure_classes(rng: np.random.Generator, jobs: list[FileJob]) -> None:
    """Small demos still get at least one star, one quasar and one galaxy."""
    targets = [(j, t) for j in jobs for t in j.targets]
    present = {t.source.obj_class for _, t in targets}
    for cls in ("star", "qso", "galaxy"):
        if cls in present or len(targets) < 3:
            continue
        counts = {
            c: sum(t.source.obj_class == c for _, t in targets)
            for c in ("star", "qso", "galaxy")
            if c in present
        }
        donor = max(counts, key=counts.__getitem__)
        for job, t in targets:
            if t.source.obj_class == donor:
                t.source = _draw_source(rng, job.inst, cls)
                break
        present.add(cls)


def _assign_anomalies(rng: np.random.Generator, targets: list[Target], n: int) -> None:
    n_anom = max(round(ANOMALY_RATE * n), 1 if n >= 50 else 0)
    if not n_anom:
        return
    chosen = rng.choice(len(targets), size=min(n_anom, len(targets)), replace=False)
    start = int(rng.integers(len(ANOMALY_KINDS)))
    for k, i in enumerate(sorted(chosen.tolist())):
        kind = ANOMALY_KINDS[(start + k) % len(ANOMALY_KINDS)]
        s = targets[i].source
        if kind == "white_dwarf":
            rv = rng.normal(0, 40)
            s = Source("star", "DA", round(rv / C_KMS, 7), s.mag, kind)
        elif kind == "spike":
            s = Source("star", "featureless", 0.0, s.mag, kind)
        else:
            s = Source(s.obj_class, s.subclass, s.redshift, s.mag, kind)
        targets[i].source = s


def _assign_positions(rng: np.random.Generator, jobs: list[FileJob]) -> None:
    """Uniform sky plus a dense clump, both poles and the RA=0/360 seam; fields for fibres."""
    free: list[Target] = []
    n_total = sum(len(j.targets) for j in jobs)
    image_k = 0
    for job in jobs:
        fmt = job.inst.fmt
        if fmt in ("fibres", "table-rows"):
            (ra0,), (dec0,) = pos.uniform_sphere(rng, 1)
            radius = 1.0 if fmt == "fibres" else 0.5
            ras, decs = pos.scatter_around(rng, ra0, dec0, radius, len(job.targets))
            for t, a, d in zip(job.targets, ras, decs, strict=True):
                t.ra, t.dec = float(a), float(d)
            job.opts["field_centre"] = (float(ra0), float(dec0))
            continue
        if fmt == "image1d":
            image_k += 1
            if image_k in (4, 5):  # "a couple" of old files without a usable position
                job.opts["position"] = "none" if image_k == 4 else "n/a"
                continue
        free += job.targets
    order = rng.permutation(len(free))
    n_clump = max(2, round(0.021 * n_total))
    n_pole = max(1, round(0.004 * n_total))
    specials: list[tuple[np.ndarray, np.ndarray]] = []
    (ra_c,), (dec_c,) = pos.uniform_sphere(rng, 1)
    specials.append(pos.scatter_around(rng, ra_c, dec_c, 0.5, n_clump))
    specials.append(pos.scatter_around(rng, 0.0, 90.0, 1.0, n_pole))
    specials.append(pos.scatter_around(rng, 0.0, -90.0, 1.0, n_pole))
    seam_dec = np.degrees(np.arcsin(rng.uniform(-0.95, 0.95, n_pole)))
    specials.append((rng.uniform(-0.5, 0.5, n_pole) % 360.0, seam_dec))
    ra_s = np.concatenate([s[0] for s in specials])
    dec_s = np.concatenate([s[1] for s in specials])
    ra_u, dec_u = pos.uniform_sphere(rng, len(free))
    ra_all = np.concatenate([ra_s, ra_u])[: len(free)]
    dec_all = np.concatenate([dec_s, dec_u])[: len(free)]
    for k, i in enumerate(order):
        free[i].ra, free[i].dec = float(ra_all[k]), float(dec_all[k])

    # How each file declares positions, then one coordinate transform per style.
    for job in jobs:
        fmt = job.inst.fmt
        if fmt == "eso":
            style = "fk5-deg" if rng.random() < 0.15 else "icrs-deg"
        elif fmt == "sdss":
            style = "fk5-deg"
        elif fmt == "image1d":
            style = "fk4-sexa" if rng.random() < 0.5 else "fk5-sexa"
        elif fmt == "fibres":
            style = "fk5-rad"
        else:
            style = "icrs-deg"
        if job.opts.get("position") in ("none", "n/a"):
            for t in job.targets:
                t.ra = t.dec = None
            continue
        for t in job.targets:
            t.style = style
    for style in pos.STYLES:
        batch = [t for j in jobs for t in j.targets if t.style == style]
        written, ra, dec = pos.declare(
            style, np.array([t.ra for t in batch]), np.array([t.dec for t in batch])
        )
        for t, w, a, d in zip(batch, written, ra, dec, strict=True):
            t.written, t.ra, t.dec = w, float(a), float(d)
    centres = [j for j in jobs if "field_centre" in j.opts]
    written, _, _ = pos.declare(
        "fk5-deg",
        np.array([j.opts["field_centre"][0] for j in centres]),
        np.array([j.opts["field_centre"][1] for j in centres]),
    )
    for j, w in zip(centres, written, strict=True):
        j.opts["field_centre"] = w


def _options(rng: np.random.Generator, job: FileJob) -> None:
    """Per-file header variants: the spread of conventions real archives show."""
    o = job.opts
    fmt, key = job.inst.fmt, job.inst.key
    if fmt == "eso":
        o["voclass"] = "SPECTRUM V2.0" if rng.random() < 0.25 else "SPECTRUM V1.0"
        o["extname"] = "PHASE3SPECTRA" if rng.random() < 0.15 else "SPECTRUM"
        o["wave_unit"] = "angstrom" if key == "HARPS" or rng.random() < 0.1 else "nm"
        p_uncal = {"HARPS": 0.8, "FEROS": 0.7, "UVES": 0.5}.get(key, 0.1)
        o["fluxcal"] = "UNCALIBRATED" if rng.random() < p_uncal else "ABSOLUTE"
        o["qual"] = bool(rng.random() < 0.9)
        o["specsys"] = "TOPOCENT" if key == "XSHOOTER" else "BARYCENT"
        o["release_days"] = float(rng.uniform(30, 1200))
        o["prog_id"] = (
            f"{int(rng.integers(60, 110)):03d}.{'ABCDEFH'[int(rng.integers(7))]}"
            f"-{int(rng.integers(1, 9999)):04d}({'ABC'[int(rng.integers(3))]})"
        )
        o["obid"] = int(rng.integers(100000, 3000000))
    elif fmt == "sdss":
        boss = key == "BOSS"
        o["plate"] = int(rng.integers(3500, 11000) if boss else rng.integers(266, 2975))
        o["fiber"] = int(rng.integers(1, 1001) if boss else rng.integers(1, 641))
        o["centre_offset"] = (float(rng.uniform(-1.0, 1.0)), float(rng.uniform(-1.0, 1.0)))
    elif fmt == "image1d":
        o.setdefault("position", "ok")
        o["wcs"] = ("cdelt", "cd", "log", "nocunit")[int(rng.integers(4))]
        o["crpix_centre"] = bool(rng.random() < 0.3)
        o["fluxcal"] = bool(rng.random() < 0.6)
        defects = ("lowercase", "illegal", "equinox-str", "ddmmyy")
        o["defects"] = [d for d in defects if rng.random() < 0.12]
    elif fmt == "fibres":
        o["n_sky"] = int(rng.integers(4, 9))
        o["n_guide"] = int(rng.integers(1, 4))
        o["n_rows"] = int(rng.integers(40, 61))
    elif fmt == "table":
        if key == "GMOS-S":
            o["wave_unit"] = "um" if rng.random() < 0.3 else "nm"
        else:
            o["wave_unit"] = "Angstrom"
        o["scaled_flux"] = bool(rng.random() < 0.5)
    o["gzip"] = bool(fmt in ("eso", "image1d", "table", "table-rows") and rng.random() < 0.1)
    o["airmass"] = round(float(rng.uniform(1.0, 2.0)), 3)


def _cycle_image_variants(jobs: list[FileJob]) -> None:
    """Make the first long-slit files show every WCS form and header defect, even in tiny demos."""
    image_jobs = [j for j in jobs if j.inst.fmt == "image1d"]
    cycle = [("cdelt", ["lowercase"]), ("cd", ["equinox-str"]), ("log", ["ddmmyy"]),
             ("nocunit", []), ("cdelt", ["illegal"]), ("log", [])]  # fmt: skip
    for j, (wcs, defects) in zip(image_jobs, cycle, strict=False):
        j.opts["wcs"], j.opts["defects"] = wcs, defects


def _name_files(rng: np.random.Generator, jobs: list[FileJob]) -> None:
    """Archive-style file names (ADP.*, spec-PLATE-MJD-FIBER, ...), unique within the demo."""
    used: set[str] = set()
    for job in jobs:
        key = job.inst.key
        when = mjd_to_datetime(job.mjd)
        fmt = job.inst.fmt
        if fmt == "eso":
            proc = mjd_to_datetime(job.mjd + job.opts["release_days"] * 0.5)
            stamp = proc.strftime("%Y-%m-%dT%H_%M_%S.%f")[:-3]
            name = f"eso/{key}/ADP.{stamp}.fits"
        elif fmt == "sdss":
            plate, fiber, mjd = job.opts["plate"], job.opts["fiber"], int(job.mjd)
            name = f"sdss/{plate:04d}/spec-{plate:04d}-{mjd:05d}-{fiber:04d}.fits"
        elif fmt == "image1d":
            name = f"longslit/{key}/{key.lower()}_{when:%Y%m%d}_{job.index:05d}.fits"
        elif fmt == "fibres":
            name = f"2df/{when:%y%m%d}/{when:%d}{when:%b}".lower() + f"{10001 + job.index}red.fits"
        elif fmt == "table-rows":
            name = f"tables/{key}/hecto_{when:%Y%m%d}_{job.index:05d}.fits"
        else:
            stem = "".join(c if c.isalnum() else "_" for c in (job.targets[0].name or "target"))
            name = f"tables/{key}/{stem}_{job.index:05d}.fits"
        # File names, not only paths, are unique: the archive keeps the original name.
        while name.rsplit("/", 1)[-1] in used:
            name = name.replace(".fits", f"_{int(rng.integers(10))}.fits", 1)
        used.add(name.rsplit("/", 1)[-1])
        job.gzip = job.opts.pop("gzip")
        job.relpath = name + (".gz" if job.gzip else "")
