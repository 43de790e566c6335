"""RESPONSEFORMAT (and TAP 1.0 FORMAT) values: which writer, which Content-Type.

DALI 1.1 section 3.4.3 lists the media types and short forms; when a client names a media type
the response must carry that media type (text/xml stays text/xml), when it names a short form
or a bare media type we may add parameters that say more (VOTable serialization, CSV header).
Matching ignores case and blanks; unknown values raise ValueError listing what we accept.
"""

from __future__ import annotations

from dataclasses import dataclass

VOTABLE_MIME = "application/x-votable+xml"


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """A resolved output format.

    name: the short form ('votable', 'votable/td', 'csv', ...); mime_type: the Content-Type to
    send; extension: for file names; serialization: the VOTable DATA serialisation (BINARY2,
    TABLEDATA, BINARY) or None; header: whether CSV starts with the column names.
    """

    name: str
    mime_type: str
    extension: str
    serialization: str | None = None
    header: bool = True

    @property
    def writer(self) -> str:
        return "votable" if self.serialization else self.name


@dataclass(frozen=True, slots=True)
class FormatInfo:
    """One supported format as declared in the capabilities (TAPRegExt outputFormat)."""

    mime_type: str
    aliases: tuple[str, ...]
    format: OutputFormat


_VOTABLE = {
    "BINARY2": OutputFormat("votable", f"{VOTABLE_MIME};serialization=BINARY2", "vot", "BINARY2"),
    "TABLEDATA": OutputFormat(
        "votable/td", f"{VOTABLE_MIME};serialization=TABLEDATA", "vot", "TABLEDATA"
    ),
    "BINARY": OutputFormat("votable/b", f"{VOTABLE_MIME};serialization=BINARY", "vot", "BINARY"),
}
_CSV = OutputFormat("csv", "text/csv;header=present", "csv")
_TSV = OutputFormat("tsv", "text/tab-separated-values", "tsv")
_FITS = OutputFormat("fits", "application/fits", "fits")
_PARQUET = OutputFormat("parquet", "application/vnd.apache.parquet", "parquet")
_JSON = OutputFormat("json", "application/json", "json")

# Short forms (no media type: the response gets the canonical Content-Type).
_SHORT = {
    "votable": _VOTABLE["BINARY2"],
    "vot": _VOTABLE["BINARY2"],
    "votable/b2": _VOTABLE["BINARY2"],
    "votableb2": _VOTABLE["BINARY2"],
    "votable/binary2": _VOTABLE["BINARY2"],
    "votable/td": _VOTABLE["TABLEDATA"],
    "votabletd": _VOTABLE["TABLEDATA"],
    "votable/tabledata": _VOTABLE["TABLEDATA"],
    "votable/b": _VOTABLE["BINARY"],
    "votable/binary": _VOTABLE["BINARY"],
    "csv": _CSV,
    "tsv": _TSV,
    "fits": _FITS,
    "parquet": _PARQUET,
    "voparquet": _PARQUET,
    "json": _JSON,
}

_VOTABLE_MEDIA = {VOTABLE_MIME, "text/xml", "application/xml", "text/x-votable+xml"}
_MEDIA = {
    "text/csv": _CSV,
    "text/tab-separated-values": _TSV,
    "application/fits": _FITS,
    "application/vnd.apache.parquet": _PARQUET,
    "application/x-parquet": _PARQUET,
    "application/json": _JSON,
}

SUPPORTED: tuple[FormatInfo, ...] = (
    FormatInfo(_VOTABLE["BINARY2"].mime_type, ("votable", "votable/b2"), _VOTABLE["BINARY2"]),
    FormatInfo(_VOTABLE["TABLEDATA"].mime_type, ("votable/td",), _VOTABLE["TABLEDATA"]),
    FormatInfo(_VOTABLE["BINARY"].mime_type, ("votable/b",), _VOTABLE["BINARY"]),
    FormatInfo("text/csv;header=present", ("csv",), _CSV),
    FormatInfo("text/tab-separated-values", ("tsv",), _TSV),
    FormatInfo("application/fits", ("fits",), _FITS),
    FormatInfo("application/vnd.apache.parquet", ("parquet",), _PARQUET),
    FormatInfo("application/json", ("json",), _JSON),
)

DEFAULT = _VOTABLE["BINARY2"]


def supported_names() -> list[str]:
    return sorted({*_SHORT, *_VOTABLE_MEDIA, *_MEDIA})


def resolve_format(value: str | None) -> OutputFormat:
    """The OutputFormat for a RESPONSEFORMAT/FORMAT value; empty or None means VOTable."""
    text = "".join((value or "").split())
    if not text:
        return DEFAULT
    base, _, rest = text.partition(";")
    base = base.lower()
    params = _parameters(rest, value or "")
    if not params and base in _SHORT:
        return _SHORT[base]
    if base in _VOTABLE_MEDIA:
        return _votable(base, params, value or "")
    fmt = _MEDIA.get(base)
    if fmt is None:
        raise _unsupported(value or "")
    charset = params.pop("charset", "utf-8").lower()
    if (
        charset not in ("utf-8", "utf8")
        or (fmt is _CSV and set(params) - {"header"})
        or (fmt is not _CSV and params)
    ):
        raise _unsupported(value or "")
    if fmt is _CSV:
        header = params.get("header", "present").lower()
        if header not in ("present", "absent"):
            raise _unsupported(value or "")
        return OutputFormat("csv", f"text/csv;header={header}", "csv", header=header == "present")
    return fmt


def _votable(base: str, params: dict[str, str], value: str) -> OutputFormat:
    serialization = params.pop("serialization", "BINARY2").upper()
    params.pop("charset", None)
    if serialization not in _VOTABLE or params:
        raise _unsupported(value)
    fmt = _VOTABLE[serialization]
    if base == VOTABLE_MIME:
        return fmt
    # DALI: a media type named by the client is echoed in Content-Type (browsers want text/xml).
    mime = base if "serialization" not in value.lower() else f"{base};serialization={serialization}"
    return OutputFormat(fmt.name, mime, fmt.extension, fmt.serialization)


def _parameters(text: str, value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in filter(None, text.split(";")):
        key, sep, val = part.partition("=")
        if not sep or not key:
            raise _unsupported(value)
        params[key.lower()] = val.strip('"')
    return params


def _unsupported(value: str) -> ValueError:
    return ValueError(
        f"unsupported output format {value!r}; supported values are: "
        + ", ".join(supported_names())
        + " (VOTable media types accept ;serialization=BINARY2|TABLEDATA|BINARY,"
        " text/csv accepts ;header=present|absent)"
    )
