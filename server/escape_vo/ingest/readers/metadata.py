"""Header keywords -> record metadata: positions, frames, times and the common descriptive fields.

Positions stay in the frame the header declares (the pipeline converts batches to ICRS) and are
never guessed: a missing or unreadable RA/DEC gives no position and a warning.
"""

from __future__ import annotations

import math
import re
from datetime import date

from escape_vo.ingest.model import RawPosition, SpectrumRecord
from escape_vo.ingest.readers.fitsio import Header

_MJD_ORDINAL_OFFSET = date(1858, 11, 17).toordinal()
_ISO_DATE = re.compile(
    r"\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?)?"
)
_OLD_DATE = re.compile(r"\s*(\d{1,2})/(\d{1,2})/(\d{2})\s*$")
_CLOCK = re.compile(r"\s*(\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?")
_NO_VALUE = {"", "N/A", "NA", "NONE", "UNKNOWN", "NULL", "-", "--", "NAN", "INDEF", "?"}
_SEXAGESIMAL_SEPARATORS = re.compile(r"[:hdmsHDM°'\"\s]+")
POSITION_KEYS = (
    ("RA", "DEC"),
    ("RA_OBJ", "DEC_OBJ"),
    ("OBJRA", "OBJDEC"),
    ("OBJCTRA", "OBJCTDEC"),
    ("RA_TARG", "DEC_TARG"),
    ("TARG_RA", "TARG_DEC"),
)


class Keys:
    """Keyword lookup over several headers, the first (most specific) header winning."""

    __slots__ = ("headers",)

    def __init__(self, *headers: Header | None) -> None:
        self.headers = [h for h in headers if h is not None]

    def get(self, *names: str) -> object:
        for name in names:
            for header in self.headers:
                value = header.get(name)
                if value is not None and value != "":
                    return value
        return None

    def text(self, *names: str) -> str | None:
        value = self.get(*names)
        if value is None or isinstance(value, bool):
            return None
        text = str(value).strip()
        return text or None

    def num(self, *names: str) -> float | None:
        for name in names:
            value = to_float(self.get(name))
            if value is not None:
                return value
        return None


def to_float(value: object) -> float | None:
    """A finite float from a number or numeric string, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().replace("D", "E"))
        except ValueError:
            return None
    if isinstance(value, (int, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    try:
        value = float(value)  # numpy scalars
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def clean_text(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return None if text.upper() in _NO_VALUE else text


def parse_angle(value: object, *, hours: bool) -> float | None:
    """Degrees from a number (degrees) or a sexagesimal string (hours for RA, degrees for DEC)."""
    number = to_float(value)
    if number is not None:
        return number
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.upper() in _NO_VALUE:
        return None
    sign = -1.0 if text.startswith("-") else 1.0
    parts = [p for p in _SEXAGESIMAL_SEPARATORS.split(text.lstrip("+-")) if p]
    if not 2 <= len(parts) <= 3:
        return None
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return None
    degrees = numbers[0] + numbers[1] / 60 + (numbers[2] / 3600 if len(numbers) == 3 else 0.0)
    return sign * degrees * (15.0 if hours else 1.0)


def _equinox(value: object, notes: list[str]) -> float | None:
    if isinstance(value, str):
        text = value.strip().upper().lstrip("JB")
        number = to_float(text)
        if number is not None:
            notes.append(f"EQUINOX given as the string {value.strip()!r}")
        return number
    return to_float(value)


def frame_from(keys: Keys, notes: list[str]) -> tuple[str, str | None] | None:
    """(astropy frame name, equinox) declared by RADESYS/RADECSYS and EQUINOX (or old EPOCH).

    Without RADESYS the FITS rules apply: EQUINOX before 1984 means FK4, later FK5, neither
    means ICRS. Returns None (with a note) for systems astropy positions cannot use.
    """
    system = (keys.text("RADESYS", "RADECSYS") or "").upper()
    raw_equinox = keys.get("EQUINOX")
    if raw_equinox is None and keys.get("EPOCH") is not None:
        raw_equinox = keys.get("EPOCH")
    equinox = _equinox(raw_equinox, notes)
    if system == "ICRS":
        return "icrs", None
    if system == "FK5":
        return "fk5", f"J{equinox or 2000.0:g}"
    if system == "FK4":
        return "fk4", f"B{equinox or 1950.0:g}"
    if system == "FK4-NO-E":
        return "fk4noeterms", f"B{equinox or 1950.0:g}"
    if system:
        notes.append(f"position frame RADESYS={system!r} not supported; position left out")
        return None
    if equinox is None:
        notes.append("no RADESYS or EQUINOX; ICRS assumed (FITS default)")
        return "icrs", None
    if equinox < 1984.0:
        return "fk4", f"B{equinox:g}"
    return "fk5", f"J{equinox:g}"


def make_position(
    ra: object, dec: object, frame: tuple[str, str | None] | None, notes: list[str]
) -> RawPosition | None:
    """A RawPosition from raw RA/DEC values (numbers in degrees or sexagesimal strings)."""
    if frame is None:
        return None
    lon = parse_angle(ra, hours=True)
    lat = parse_angle(dec, hours=False)
    if lon is None or lat is None:
        notes.append(f"no position in header (RA={ra!r}, DEC={dec!r} not understood)")
        return None
    if not -90.0 <= lat <= 90.0 or not -360.0 <= lon <= 720.0:
        notes.append(f"no position: RA={ra!r}, DEC={dec!r} out of range")
        return None
    return RawPosition(lon % 360.0, lat, frame[0], frame[1])


def position_from(
    keys: Keys, notes: list[str], pairs: tuple[tuple[str, str], ...] = POSITION_KEYS
) -> RawPosition | None:
    """The target position from the first RA/DEC keyword pair present."""
    for ra_key, dec_key in pairs:
        ra, dec = keys.get(ra_key), keys.get(dec_key)
        if ra is None and dec is None:
            continue
        if ra is None or dec is None or clean_text(ra) is None or clean_text(dec) is None:
            notes.append(f"no position in header ({ra_key}={ra!r}, {dec_key}={dec!r})")
            return None
        frame = frame_from(keys, notes)
        return make_position(ra, dec, frame, notes)
    notes.append("no position in header")
    return None


def _day_fraction(text: str) -> float | None:
    m = _CLOCK.match(text)
    if not m:
        return None
    h, mnt = int(m.group(1)), int(m.group(2))
    s = float(m.group(3)) if m.group(3) else 0.0
    return (h * 3600 + mnt * 60 + s) / 86400.0


def date_to_mjd(value: object, clock: object, notes: list[str]) -> float | None:
    """MJD from DATE-OBS ('YYYY-MM-DD[Thh:mm:ss]' or old 'DD/MM/YY') plus TIME-OBS/UT."""
    if not isinstance(value, str):
        return None
    m = _ISO_DATE.match(value)
    if m:
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
        has_time = m.group(4) is not None
        hours = int(m.group(4)) if has_time else 0
        minutes = int(m.group(5)) if has_time else 0
        seconds = float(m.group(6)) if m.group(6) else 0.0
        fraction = (hours * 3600 + minutes * 60 + seconds) / 86400.0
    else:
        m = _OLD_DATE.match(value)
        if not m:
            notes.append(f"DATE-OBS {value!r} not understood")
            return None
        day, month, year = int(m.group(1)), int(m.group(2)), 1900 + int(m.group(3))
        notes.append(f"old DATE-OBS format 'DD/MM/YY' ({value.strip()}) read as {year}")
        has_time, fraction = False, 0.0
    try:
        ordinal = date(year, month, day).toordinal()
    except ValueError:
        notes.append(f"DATE-OBS {value!r} is not a valid date")
        return None
    if not has_time and isinstance(clock, str):
        fraction = _day_fraction(clock) or 0.0
    return ordinal - _MJD_ORDINAL_OFFSET + fraction


def iso_date(value: object) -> str | None:
    """An ISO 8601 date(-time) string from a header date, else None."""
    if not isinstance(value, str):
        return None
    m = _ISO_DATE.match(value)
    if m:
        text = f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
        if m.group(4) is not None:
            seconds = m.group(6) or "00"
            text += f"T{int(m.group(4)):02d}:{int(m.group(5)):02d}:{seconds.zfill(2)}"
        return text
    m = _OLD_DATE.match(value)
    if m:
        return f"{1900 + int(m.group(3)):04d}-{int(m.group(2)):02d}-{int(m.group(1)):02d}"
    return None


def times_from(keys: Keys, exptime: float | None, notes: list[str]) -> tuple[float | None, ...]:
    """(t_min, t_max) in MJD: MJD-OBS/MJD-END, else DATE-OBS and t_min + exposure time."""
    t_min = keys.num("MJD-OBS", "MJD_OBS")
    if t_min is None:
        t_min = date_to_mjd(
            keys.get("DATE-OBS", "DATE_OBS"), keys.get("TIME-OBS", "UT", "UTSTART"), notes
        )
    t_max = keys.num("MJD-END", "MJD_END")
    if t_max is None and t_min is not None and exptime is not None:
        t_max = t_min + exptime / 86400.0
    if t_min is not None and t_max is not None and t_max < t_min:
        notes.append("end time before start time; end time left out")
        t_max = None
    return t_min, t_max


def fill_common(rec: SpectrumRecord, keys: Keys, notes: list[str]) -> SpectrumRecord:
    """The descriptive fields most archives write under the same keywords."""
    rec.target_name = clean_text(keys.get("OBJECT", "OBJNAME", "TARGNAME", "TARGET"))
    rec.instrument = clean_text(keys.get("INSTRUME"))
    rec.facility = clean_text(keys.get("TELESCOP"))
    rec.exptime = keys.num("EXPTIME", "TEXPTIME", "EXPOSURE", "EXPOSED")
    rec.t_min, rec.t_max = times_from(keys, rec.exptime, notes)
    resolving_power = keys.num("SPEC_RES", "R")
    rec.resolving_power = resolving_power if resolving_power and resolving_power > 1 else None
    rec.snr = keys.num("SNR", "SN_MEDIAN_ALL")
    rec.redshift = keys.num("REDSHIFT", "Z")
    rec.release_date = iso_date(keys.get("RELEASE", "DATE-REL", "DATE_REL", "RELDATE"))
    target_class = clean_text(keys.get("OBJTYPE"))
    rec.target_class = target_class.lower() if target_class else None
    return rec


def stem(name: str) -> str:
    """The file name without directories and FITS/compression suffixes."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    lowered = base.lower()
    for suffix in (".gz", ".fz", ".bz2"):
        if lowered.endswith(suffix):
            base, lowered = base[: -len(suffix)], lowered[: -len(suffix)]
    for suffix in (".fits", ".fit", ".fts"):
        if lowered.endswith(suffix):
            return base[: -len(suffix)]
    return base


def base_name(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def observation_ids(keys: Keys, name: str) -> tuple[str, str]:
    """(obs_id, origin_id): the ARCFILE an archive wrote for both, else OBS_ID and file name."""
    arcfile = clean_text(keys.get("ARCFILE"))
    if arcfile:
        return arcfile, arcfile
    return clean_text(keys.get("OBS_ID", "OBSID")) or stem(name), base_name(name)
