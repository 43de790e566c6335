"""SODA 1.0 for 1-D spectra: the pure cutout function, parameter parsing, the sync endpoint.

`cutout(data, bands, fluxcalib, kind)` returns one result per BAND and knows no HTTP, so the
sync endpoint here and an async (UWS) job runner call the same code.
"""

from escape_vo.soda.cutout import Band, CutoutResult, cutout
from escape_vo.soda.params import SodaError, SodaRequest, parse_request

__all__ = ["Band", "CutoutResult", "SodaError", "SodaRequest", "cutout", "parse_request"]
