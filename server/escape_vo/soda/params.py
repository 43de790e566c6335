"""SODA 1.0 request parameters for spectra, checked with messages that say what is valid.

Errors carry the SODA 1.0 section 5.2 label (UsageError, MultiValuedParamNotSupported) that
the text/plain error document must start with. Parameter names are case-insensitive (DALI).
Sync requests take one ID and at most one BAND (a sync response is one document); the async
runner accepts several BANDs, each giving one result (SODA 1.0 section 6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from escape_vo.soda.cutout import Band
from escape_vo.spectra.convert import KIND_NAMES, OutputKind, output_kind

FLUXCALIB_VALUES = ("RELATIVE", "ABSOLUTE")
# Standard SODA parameters that make no sense for a 1-D spectrum without spatial/time axes.
_UNSUPPORTED = {
    "pos": "a 1-D spectrum has no spatial axis to cut; it is found by position with SSA",
    "circle": "a 1-D spectrum has no spatial axis to cut; it is found by position with SSA",
    "polygon": "a 1-D spectrum has no spatial axis to cut; it is found by position with SSA",
    "time": "a 1-D spectrum has a single exposure, no time axis to cut",
    "pol": "these spectra carry no polarisation states",
}


class SodaError(ValueError):
    """A request error; str() starts with the SODA error label."""

    def __init__(self, label: str, message: str) -> None:
        super().__init__(f"{label}: {message}")
        self.label = label


@dataclass(frozen=True)
class SodaRequest:
    ids: list[str]
    bands: list[Band]
    fluxcalib: str | None
    kind: OutputKind


def _number(text: str, what: str) -> float:
    word = text.strip().lower()
    if word in ("-inf", "-infinity"):
        return -math.inf
    if word in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise SodaError("UsageError", f"{what}: {text!r} is not a number") from None
    if math.isnan(value):
        raise SodaError("UsageError", f"{what}: NaN is not a wavelength")
    return value


def parse_band(text: str) -> Band:
    """'lo hi' in metres (DALI interval; -Inf/+Inf open ends) or one value meaning [v, v]."""
    words = text.replace(",", " ").split()
    what = f"BAND={text!r}"
    if len(words) == 1:
        value = _number(words[0], what)
        return Band(value, value)
    if len(words) != 2:
        raise SodaError(
            "UsageError",
            f"{what} must be two wavelengths in metres, 'lo hi' (e.g. BAND=4.5e-7 5e-7; "
            "-Inf or +Inf for an open end)",
        )
    lo, hi = _number(words[0], what), _number(words[1], what)
    if lo > hi:
        raise SodaError("UsageError", f"{what}: the lower limit is above the upper limit")
    return Band(lo, hi)


def parse_request(params: dict[str, list[str]], *, sync: bool) -> SodaRequest:
    """Validate the parameters (keys lower-case) of one SODA request."""
    ids = [v for v in params.get("id", []) if v.strip()]
    if not ids:
        raise SodaError(
            "UsageError",
            "missing parameter ID: give the publisher DID of a spectrum (obs_publisher_did in "
            "ivoa.obscore, or the ID of a DataLink #cutout descriptor)",
        )
    if sync and len(set(ids)) > 1:
        raise SodaError(
            "MultiValuedParamNotSupported",
            f"ID was given {len(ids)} times; the sync endpoint cuts one spectrum per request",
        )
    for name, reason in _UNSUPPORTED.items():
        if params.get(name):
            raise SodaError(
                "UsageError", f"{name.upper()} is not supported here: {reason}; use BAND"
            )
    bands = [parse_band(v) for v in params.get("band", []) if v.strip()]
    if sync and len(bands) > 1:
        raise SodaError(
            "MultiValuedParamNotSupported",
            f"BAND was given {len(bands)} times; a sync response is one document, so send one "
            "request per BAND (each BAND is one result)",
        )
    fluxcalib_values = {v.strip().upper() for v in params.get("fluxcalib", []) if v.strip()}
    if len(fluxcalib_values) > 1:
        raise SodaError("MultiValuedParamNotSupported", "give FLUXCALIB once")
    fluxcalib = fluxcalib_values.pop() if fluxcalib_values else None
    if fluxcalib is not None and fluxcalib not in FLUXCALIB_VALUES:
        raise SodaError(
            "UsageError",
            f"FLUXCALIB={fluxcalib} is not supported; use RELATIVE (flux divided by its median) "
            "or ABSOLUTE (flux as calibrated), or leave it out",
        )
    formats = {v.strip() for v in params.get("responseformat", []) if v.strip()}
    if len(formats) > 1:
        raise SodaError("MultiValuedParamNotSupported", "give RESPONSEFORMAT once")
    fmt = formats.pop() if formats else None
    kind = output_kind(fmt)
    if kind is None:
        raise SodaError(
            "UsageError", f"RESPONSEFORMAT={fmt} is not supported; use one of: {KIND_NAMES}"
        )
    return SodaRequest(ids=list(dict.fromkeys(ids)), bands=bands, fluxcalib=fluxcalib, kind=kind)
