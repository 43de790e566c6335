"""SSA 1.1 queryData parameters -> one ADQL query over ssa.ssa.

Every supported parameter is declared once in PARAMETERS (name, type, unit, UCD, description):
the FORMAT=METADATA response and the error messages are generated from it. Values are
validated here with messages that show the expected syntax; literals are written into ADQL
only after conversion to numbers (strings are quoted), so no text of the request reaches SQL
unescaped, and the ADQL translator then resolves every name against the schema.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from escape_vo.ssa.rangelist import Range, RangeListError, parse_range_list

DEFAULT_SIZE = 0.1  # degrees: SSA 1.1 lets the service choose the diameter when POS has none
MAX_SIZE = 360.0
MAXREC_DEFAULT = 1000
MAXREC_HARD = 100_000
VERSIONS = ("1.1", "1.0", "1.04", "1.03", "1.02", "1.01")

# FORMAT values: what each row of a spectrum is (None: the original file).
FORMATS = {
    "native": ("native", "application/fits"),
    "original": ("native", "application/fits"),
    "application/fits": ("native", "application/fits"),
    "image/fits": ("native", "application/fits"),
    "compliant": ("votable", "application/x-votable+xml"),
    "votable": ("votable", "application/x-votable+xml"),
    "application/x-votable+xml": ("votable", "application/x-votable+xml"),
    "text/xml": ("votable", "application/x-votable+xml"),
    "fits": ("fits", "application/fits"),
    "csv": ("csv", "text/csv"),
    "text/csv": ("csv", "text/csv"),
    "graphic": ("graphic", "image/png"),
    "image/png": ("graphic", "image/png"),
}
FORMAT_NAMES = (
    "all, native, compliant, votable, fits, csv, graphic, metadata (or their media types)"
)

# Named bands (SSA 1.1 allows bandpass names), as wavelength intervals in metres.
BAND_NAMES = {
    "gamma-ray": (None, 1e-11),
    "x-ray": (1e-11, 1e-8),
    "euv": (1e-8, 1e-7),
    "uv": (1e-8, 3.2e-7),
    "optical": (3.2e-7, 1e-6),
    "infrared": (1e-6, 1e-3),
    "ir": (1e-6, 1e-3),
    "millimeter": (1e-3, 1e-2),
    "radio": (1e-2, None),
}


@dataclass(frozen=True)
class ParamDoc:
    name: str
    datatype: str
    description: str
    unit: str | None = None
    ucd: str | None = None
    arraysize: str | None = "*"


PARAMETERS = [
    ParamDoc("REQUEST", "char", "queryData (also getCapabilities, getAvailability)"),
    ParamDoc("VERSION", "char", "SSA version the client speaks: 1.1 (1.0x accepted)"),
    ParamDoc("POS", "char", "Centre of the search cone, 'ra,dec' in ICRS degrees, "
             "optionally followed by ';ICRS'", "deg", "pos.eq"),
    ParamDoc("SIZE", "double", f"Diameter of the search cone (default {DEFAULT_SIZE})", "deg",
             "instr.fov", None),
    ParamDoc("BAND", "char", "Range-list of wavelengths in metres that the spectrum must cover "
             "(e.g. 4e-7/5e-7,6.563e-7; open ranges /5e-7), or a band name (optical, "
             "infrared, uv, x-ray, radio...); ';source' matches in the rest frame", "m",
             "em.wl"),
    ParamDoc("TIME", "char", "Range-list of times the exposure must overlap: ISO 8601 "
             "(2008-01-01/2009-06-30) or MJD numbers", None, "time.epoch"),
    ParamDoc("FORMAT", "char", f"Formats to list each spectrum in: {FORMAT_NAMES}"),
    ParamDoc("TARGETNAME", "char", "Target name, case-insensitive; * is a wildcard", None,
             "meta.id;src"),
    ParamDoc("TARGETCLASS", "char", "List of target classes (star, qso, galaxy, ...)", None,
             "src.class"),
    ParamDoc("COLLECTION", "char", "List of collections (case-insensitive)", None, "meta.id"),
    ParamDoc("SPECRP", "double", "Minimum spectral resolving power lambda/dlambda", None,
             "spect.resolution", None),
    ParamDoc("SNR", "char", "Minimum signal-to-noise ratio, or a range-list of it", None,
             "stat.snr"),
    ParamDoc("REDSHIFT", "char", "Range-list of target redshifts", None, "src.redshift"),
    ParamDoc("FLUXCALIB", "char", "Minimum flux calibration: absolute, relative, normalized or "
             "any", None, "meta.code.qual"),
    ParamDoc("PUBDID", "char", "List of publisher DIDs", None, "meta.ref.ivoid"),
    ParamDoc("CREATORDID", "char", "List of creator DIDs", None, "meta.id"),
    ParamDoc("MTIME", "char", "Range-list of ISO 8601 times the spectrum was published "
             "(ingested) here", None, "time.processing"),
    ParamDoc("MAXREC", "int", f"Maximum number of rows (default {MAXREC_DEFAULT}, at most "
             f"{MAXREC_HARD})", None, None, None),
    ParamDoc("TOP", "int", "Return only the best-scoring rows", None, None, None),
    ParamDoc("RUNID", "char", "Identifier echoed in the response"),
]  # fmt: skip
# SSA parameters we recognise but do not apply; the response says so in an INFO.
NOT_APPLIED = ("APERTURE", "SPATRES", "TIMERES", "VARAMPL", "WAVECALIB", "COMPRESS")


class SsaError(ValueError):
    """A request error; the message says what is wrong and what is valid."""


@dataclass
class SsaQuery:
    adql: str
    formats: list[tuple[str, str]]
    maxrec: int
    runid: str | None
    metadata: bool = False
    ignored: list[str] = field(default_factory=list)
    pos: tuple[float, float] | None = None


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = [v for v in params.get(name.lower(), []) if v.strip()]
    if not values:
        return None
    if len(set(values)) > 1:
        raise SsaError(f"{name} was given {len(values)} times with different values; give it once")
    return values[0].strip()


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _mjd(text: str) -> float:
    try:
        return _float(text)
    except ValueError:
        pass
    from astropy.time import Time

    try:
        return float(Time(text.strip(), scale="utc").mjd)
    except ValueError:
        raise ValueError(text) from None


def _iso(text: str) -> str:
    from astropy.time import Time

    try:
        return Time(text.strip(), scale="utc").isot
    except ValueError:
        raise ValueError(text) from None


def _lit(value: float) -> str:
    return repr(float(value))


def _str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ranges(params, name: str, convert, syntax: str):
    text = _one(params, name)
    if text is None:
        return None, None
    try:
        return parse_range_list(text, name, convert, syntax)
    except RangeListError as exc:
        raise SsaError(str(exc)) from None


def _overlap(lo_col: str, hi_col: str, r: Range, lit=_lit) -> str:
    """The spectrum's [lo_col, hi_col] overlaps r (contains it, for a single value)."""
    parts = []
    if r.lo is not None:
        parts.append(f"{hi_col} >= {lit(r.lo)}")
    if r.hi is not None:
        parts.append(f"{lo_col} <= {lit(r.hi)}")
    return "(" + " AND ".join(parts) + ")" if parts else f"({lo_col} IS NOT NULL)"


def _within(col: str, r: Range, lit=_lit) -> str:
    parts = []
    if r.lo is not None:
        parts.append(f"{col} >= {lit(r.lo)}")
    if r.hi is not None:
        parts.append(f"{col} <= {lit(r.hi)}")
    return "(" + " AND ".join(parts) + ")" if parts else f"({col} IS NOT NULL)"


def _any(conditions: list[str]) -> str:
    return conditions[0] if len(conditions) == 1 else "(" + " OR ".join(conditions) + ")"


def _list(params, name: str) -> list[str]:
    text = _one(params, name)
    if text is None:
        return []
    return [v.strip() for v in text.split(",") if v.strip()]


def _pos(text: str) -> tuple[float, float]:
    coords, _, frame = text.partition(";")
    frame = frame.strip().upper()
    if frame and frame not in ("ICRS", "FK5", "J2000", "ICRS-J2000"):
        raise SsaError(
            f"POS frame {frame} is not supported; positions are ICRS (append ;ICRS or nothing)"
        )
    parts = coords.replace(" ", ",").split(",")
    parts = [p for p in parts if p]
    try:
        ra, dec = (_float(p) for p in parts)
    except ValueError:
        raise SsaError(
            f"POS={text!r} must be 'ra,dec' in decimal degrees, e.g. POS=10.5,-30.2"
        ) from None
    if not -90 <= dec <= 90:
        raise SsaError(f"POS declination {dec} is outside [-90, 90]")
    return ra % 360.0, dec


def _band_conditions(params) -> list[str]:
    syntax = "values or lo/hi ranges in metres separated by commas, e.g. BAND=4e-7/5e-7,6.5e-7"
    text = _one(params, "BAND")
    if text is None:
        return []
    name = text.split(";")[0].strip().lower()
    if name in BAND_NAMES:
        lo, hi = BAND_NAMES[name]
        return [_overlap("spec_start", "spec_stop", Range(lo, hi))]
    try:
        ranges, qualifier = parse_range_list(text, "BAND", _float, syntax)
    except RangeListError as exc:
        raise SsaError(f"{exc}; band names: {', '.join(BAND_NAMES)}") from None
    frame = (qualifier or "observed").lower()
    if frame not in ("observed", "source"):
        raise SsaError(f"BAND qualifier ;{qualifier} is not known; use ;observed or ;source")
    lo_col, hi_col = "spec_start", "spec_stop"
    extra = []
    if frame == "source":
        lo_col, hi_col = "spec_start / (1 + redshift)", "spec_stop / (1 + redshift)"
        extra = ["redshift IS NOT NULL"]
    return [*extra, _any([_overlap(lo_col, hi_col, r) for r in ranges])]


def _formats(params) -> tuple[list[tuple[str, str]], bool]:
    text = _one(params, "FORMAT")
    if text is None:
        return [("native", "application/fits")], False
    wanted = [w.strip().lower() for w in text.split(",") if w.strip()]
    if "metadata" in wanted:
        if len(wanted) > 1:
            raise SsaError("FORMAT=METADATA cannot be combined with other formats")
        return [], True
    out: list[tuple[str, str]] = []
    for w in wanted:
        if w == "all":
            return [("native", "application/fits")], False
        found = FORMATS.get(w.split(";", 1)[0].strip())
        if found is None:
            raise SsaError(f"FORMAT={w} is not offered; use {FORMAT_NAMES}")
        if found not in out:
            out.append(found)
    return out, False


def _int(params, name: str, default: int | None) -> int | None:
    text = _one(params, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SsaError(f"{name}={text} is not a whole number") from None
    if value < 0:
        raise SsaError(f"{name} must be 0 or more")
    return value


def build_query(params: dict[str, list[str]], columns: list[str]) -> SsaQuery:
    """Validate a queryData request (parameter names lower-case) and write its ADQL."""
    version = _one(params, "VERSION")
    if version is not None and version not in VERSIONS:
        raise SsaError(f"VERSION={version} is not supported; this service speaks SSA 1.1")
    formats, metadata = _formats(params)
    maxrec = min(_int(params, "MAXREC", MAXREC_DEFAULT) or 0, MAXREC_HARD)
    top = _int(params, "TOP", None)
    if top is not None:
        maxrec = min(maxrec, top)
    where: list[str] = []
    score = "1.0"
    pos_text = _one(params, "POS")
    size_text = _one(params, "SIZE")
    pos = None
    if pos_text is not None:
        pos = _pos(pos_text)
        try:
            size = _float(size_text) if size_text is not None else DEFAULT_SIZE
        except ValueError:
            raise SsaError(
                f"SIZE={size_text} must be a diameter in degrees, e.g. SIZE=0.05"
            ) from None
        if not 0 <= size <= MAX_SIZE:
            raise SsaError(f"SIZE={size_text}: the diameter must be between 0 and {MAX_SIZE} deg")
        radius = size / 2
        ra, dec = pos
        point = f"POINT('ICRS', {_lit(ra)}, {_lit(dec)})"
        where.append(
            f"1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {_lit(ra)}, {_lit(dec)}, "
            f"{_lit(radius)}))"
        )
        if radius > 0:
            score = f"1 - DISTANCE(POINT('ICRS', s_ra, s_dec), {point}) / {_lit(radius)}"
    elif size_text is not None:
        raise SsaError("SIZE was given without POS; give POS=ra,dec (ICRS degrees) as well")
    where += _band_conditions(params)
    times, _ = _ranges(
        params, "TIME", _mjd, "ISO 8601 times or MJD, e.g. TIME=2008-01-01/2009-06-30"
    )
    if times:
        where.append(_any([_overlap("t_start", "t_stop", r) for r in times]))
    mtimes, _ = _ranges(params, "MTIME", _iso, "ISO 8601 times, e.g. MTIME=2024-01-01/")
    if mtimes:
        where.append(_any([_within("published", r, _str) for r in mtimes]))
    name = _one(params, "TARGETNAME")
    if name is not None:
        pattern = name.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = pattern.replace("*", "%")
        where.append(f"LOWER(target_name) LIKE {_str(pattern)}")
    for pname, col in (("TARGETCLASS", "target_class"), ("COLLECTION", "collection")):
        values = _list(params, pname)
        if values:
            where.append(f"LOWER({col}) IN ({', '.join(_str(v.lower()) for v in values)})")
    for pname, col in (("PUBDID", "publisher_did"), ("CREATORDID", "creator_did")):
        values = _list(params, pname)
        if values:
            where.append(f"{col} IN ({', '.join(_str(v) for v in values)})")
    specrp = _one(params, "SPECRP")
    if specrp is not None:
        try:
            where.append(f"resolving_power >= {_lit(_float(specrp))}")
        except ValueError:
            raise SsaError(f"SPECRP={specrp} must be a number (minimum resolving power)") from None
    snr, _ = _ranges(params, "SNR", _float, "a minimum, e.g. SNR=20, or ranges like 10/50")
    if snr:
        where.append(_any([_within("snr", Range(r.lo, None) if r.single else r) for r in snr]))
    redshift, _ = _ranges(params, "REDSHIFT", _float, "ranges like REDSHIFT=0.5/2.5")
    if redshift:
        where.append(_any([_within("redshift", r) for r in redshift]))
    fluxcalib = _one(params, "FLUXCALIB")
    if fluxcalib is not None:
        level = fluxcalib.lower()
        if level not in ("absolute", "relative", "normalized", "any", "uncalibrated"):
            raise SsaError(
                f"FLUXCALIB={fluxcalib} is not valid; use absolute, relative, normalized or any"
            )
        if level == "absolute":
            where.append("flux_calibration = 'ABSOLUTE'")
    per_spectrum = max(1, len(formats))
    limit = maxrec // per_spectrum + 1
    order = "score DESC, publisher_did" if pos is not None else "publisher_did"
    adql = (
        f"SELECT TOP {limit} {score} AS score, {', '.join(columns)} FROM ssa.ssa"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY {order}"
    )
    ignored = [p for p in NOT_APPLIED if _one(params, p) is not None]
    return SsaQuery(
        adql=adql,
        formats=formats,
        maxrec=maxrec,
        runid=_one(params, "RUNID"),
        metadata=metadata,
        ignored=ignored,
        pos=pos,
    )
