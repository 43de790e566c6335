"""The services this archive registers, each with the function that builds its capabilities.

The same functions build the VOSI capabilities documents (/tap/capabilities, /ssa/capabilities,
/datalink/capabilities, /soda/capabilities), so a registry record and the service's own
description can never disagree (tests/integration/test_registry_records.py compares them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vo_models.voresource.models import Capability

from escape_vo.datalink.router import links_capabilities
from escape_vo.embeddings.web import similar_capabilities
from escape_vo.soda.router import soda_capabilities
from escape_vo.spectra.vosi import service_capabilities
from escape_vo.ssa.capabilities import ssa_capability
from escape_vo.vosi.capabilities import tap_capabilities
from escape_vo.vosi.router import output_formats


@dataclass(frozen=True)
class RegisteredService:
    key: str  # last part of the identifier: ivo://<authority>/<key>
    path: str  # URL prefix under the base URL
    title: str  # appended to REGISTRY_TITLE
    short: str  # appended to REGISTRY_SHORT_NAME (a shortName has at most 16 characters)
    description: str  # appended to REGISTRY_DESCRIPTION
    capabilities: Callable[[str], list[Capability]]  # base URL -> capabilities
    tables: tuple[str, ...] | None = None  # tableset: None = no tables, () = every published one


def _tap(base: str) -> list[Capability]:
    return list(tap_capabilities(base, output_formats()).capability)


def _ssa(base: str) -> list[Capability]:
    return service_capabilities(f"{base}/ssa", ssa_capability(f"{base}/ssa"))


def _datalink(base: str) -> list[Capability]:
    return service_capabilities(f"{base}/datalink", *links_capabilities(f"{base}/datalink"))


def _similar(base: str) -> list[Capability]:
    return service_capabilities(f"{base}/embeddings", *similar_capabilities(f"{base}/embeddings"))


def _soda(base: str) -> list[Capability]:
    return service_capabilities(f"{base}/soda", *soda_capabilities(f"{base}/soda"))


SERVICES: tuple[RegisteredService, ...] = (
    RegisteredService(
        "tap",
        "/tap",
        "TAP service",
        "TAP",
        "This TAP 1.1 service answers ADQL 2.1 queries on every table of the archive, among them "
        "ivoa.obscore (ObsCore 1.1) and archive.spectra, synchronously and asynchronously, "
        "with table uploads.",
        _tap,
        tables=(),
    ),
    RegisteredService(
        "ssa",
        "/ssa",
        "SSA service",
        "SSA",
        "This SSA 1.1 service finds spectra by position, spectral range, time, target name, "
        "collection, resolving power and signal-to-noise; each result links to its DataLink "
        "document and SODA cutouts.",
        _ssa,
        tables=("ssa.ssa",),
    ),
    RegisteredService(
        "datalink",
        "/datalink",
        "DataLink service",
        "DL",
        "This DataLink 1.1 service lists, for a publisher DID, the original file, conversions to "
        "VOTable, FITS and CSV, a preview, the FITS headers and a SODA cutout descriptor.",
        _datalink,
    ),
    RegisteredService(
        "soda",
        "/soda",
        "SODA cutout service",
        "SODA",
        "This SODA 1.0 service cuts spectra to a wavelength band (BAND in metres) and returns "
        "them as FITS, VOTable or CSV.",
        _soda,
    ),
    RegisteredService(
        "embeddings",
        "/embeddings",
        "similar-spectra service",
        "Similar",
        "This service returns the spectra most similar to a given one: nearest neighbours in the "
        "latent space of trained embedding models (masked PCA, autoencoders), which the TAP table "
        "embeddings.spectrum_embeddings also serves with each spectrum's anomaly score.",
        _similar,
    ),
)
