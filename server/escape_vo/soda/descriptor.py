"""The SODA service descriptor of one spectrum, with the parameter ranges of that spectrum.

DataLink's #cutout row points at it; clients (pyvo SodaQuery, TOPCAT, Aladin) read BAND's
VALUES MIN/MAX to offer the range the spectrum covers (SODA 1.0 section 4.3).
"""

from __future__ import annotations

from escape_vo.spectra.convert import KINDS
from escape_vo.spectra.lookup import SpectrumRow
from escape_vo.spectra.vodoc import Param, ServiceDescriptor

SODA_SYNC = "ivo://ivoa.net/std/SODA#sync-1.0"
SODA_ASYNC = "ivo://ivoa.net/std/SODA#async-1.0"


def soda_descriptor(row: SpectrumRow, base_url: str, descriptor_id: str) -> ServiceDescriptor:
    fluxcalib = ["RELATIVE", "ABSOLUTE"] if row.calib_level >= 2 else ["RELATIVE"]
    params = [
        Param(
            "ID", row.publisher_did, ucd="meta.ref.url;meta.curation",
            description="Publisher DID of the spectrum to cut (fixed for this descriptor)",
        ),
        Param(
            "BAND", "", datatype="double", arraysize="2", unit="m", ucd="em.wl;stat.interval",
            xtype="interval",
            description="Wavelength interval to extract, 'lo hi' in metres (vacuum or air as "
            "the spectrum; -Inf/+Inf for open ends). Pixels whose centre lies in the closed "
            "interval are kept.",
            minimum=repr(row.wave_min) if row.wave_min is not None else None,
            maximum=repr(row.wave_max) if row.wave_max is not None else None,
        ),
        Param(
            "FLUXCALIB", "", ucd="meta.code;phot.calib",
            description="RELATIVE divides flux and error by the median flux of the cut "
            "(dimensionless result); ABSOLUTE keeps the calibrated flux.",
            options=fluxcalib,
        ),
        Param(
            "RESPONSEFORMAT", "", ucd="meta.code.mime",
            description="Format of the cutout: Spectrum DM VOTable (default), FITS table or CSV",
            options=[k.media_type for k in KINDS],
        ),
    ]  # fmt: skip
    return ServiceDescriptor(
        descriptor_id=descriptor_id,
        access_url=f"{base_url}/soda/sync",
        standard_id=SODA_SYNC,
        input_params=params,
        description=f"Spectral cutout (SODA sync) of {row.publisher_did}",
    )
