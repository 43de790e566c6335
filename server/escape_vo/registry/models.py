"""VOResource record types that vo-models does not model completely, as ri:Resource roots.

vo-models covers VOResource 1.1 and parts of VODataService; missing are the VODataService 1.2
data services (vs:DataService, vs:CatalogService with tableset and coverage) and a vg:Registry
whose capability list keeps the vg:Harvest fields. They are declared here the way vo-models
declares its own types. Capability lists are unions of the concrete types: pydantic-xml
serialises an element by its declared type, so a plain `list[Capability]` would drop the
fields of TAPRegExt, SSA and vg:Harvest capabilities.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic_xml import BaseXmlModel, attr, element
from vo_models.tapregext.models import TableAccess
from vo_models.vodataservice.models import TableSet
from vo_models.voregistry.models import Harvest
from vo_models.voresource.models import (
    Capability,
    Organisation,
    Resource,
    ResourceName,
    Rights,
    Service,
)

from escape_vo.ssa.capabilities import SSA_NS, SimpleSpectralAccess
from escape_vo.vosi.paramhttp import ParamHTTPCapability

RI_NS = "http://www.ivoa.net/xml/RegistryInterface/v1.0"
NSMAP = {
    "ri": RI_NS,
    "vr": "http://www.ivoa.net/xml/VOResource/v1.0",
    "vs": "http://www.ivoa.net/xml/VODataService/v1.1",
    "vg": "http://www.ivoa.net/xml/VORegistry/v1.0",
    "tr": "http://www.ivoa.net/xml/TAPRegExt/v1.0",
    "ssa": SSA_NS,
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
AnyCapability = Union[TableAccess, SimpleSpectralAccess, ParamHTTPCapability, Capability]  # noqa: UP007


class ServiceReference(BaseXmlModel, tag="footprint"):
    """vs:ServiceReference: the URL of a service, with the standard it implements."""

    value: str
    ivo_id: str | None = attr(name="ivo-id", default=None)


class Coverage(BaseXmlModel, tag="coverage", ns="", nsmap={"": ""}):
    """vs:Coverage of VODataService 1.2: MOC, time and energy intervals, wavebands."""

    spatial: str | None = element(tag="spatial", default=None)  # ASCII MOC, ICRS
    temporal: list[str] = element(tag="temporal", default_factory=list)  # "MJD MJD"
    spectral: list[str] = element(tag="spectral", default_factory=list)  # "J J" (photon energy)
    footprint: ServiceReference | None = element(tag="footprint", default=None)
    waveband: list[str] = element(tag="waveband", default_factory=list)


class DataServiceRecord(Service, tag="Resource", ns="ri", nsmap=NSMAP):
    """vs:DataService: a service with instruments, facilities and coverage, but no tables."""

    type: Literal["vs:DataService", "vs:CatalogService"] = attr(
        name="type", ns="xsi", default="vs:DataService"
    )
    rights: list[Rights] = element(tag="rights", default_factory=list, ns="")
    capability: list[AnyCapability] = element(tag="capability", default_factory=list)
    facility: list[ResourceName] = element(tag="facility", default_factory=list, ns="")
    instrument: list[ResourceName] = element(tag="instrument", default_factory=list, ns="")
    coverage: Coverage | None = element(tag="coverage", default=None)


class CatalogServiceRecord(DataServiceRecord, tag="Resource", ns="ri", nsmap=NSMAP):
    """vs:CatalogService: a data service whose tables are declared (VODataService tableset)."""

    type: Literal["vs:CatalogService"] = attr(name="type", ns="xsi", default="vs:CatalogService")
    tableset: TableSet | None = element(tag="tableset", default=None, ns="")


class RegistryRecord(Service, tag="Resource", ns="ri", nsmap=NSMAP):
    """vg:Registry: a publishing registry (vg:Harvest capability), not a full one."""

    type: Literal["vg:Registry"] = attr(name="type", ns="xsi", default="vg:Registry")
    rights: list[Rights] = element(tag="rights", default_factory=list, ns="")
    capability: list[Harvest] = element(tag="capability", default_factory=list)
    full: bool = element(tag="full", ns="")
    managed_authority: list[str] = element(tag="managedAuthority", default_factory=list, ns="")


class AuthorityRecord(Resource, tag="Resource", ns="ri", nsmap=NSMAP):
    """vg:Authority: the claim on the authority part of our identifiers."""

    type: Literal["vg:Authority"] = attr(name="type", ns="xsi", default="vg:Authority")
    managing_org: ResourceName = element(tag="managingOrg", ns="")


class OrganisationRecord(Organisation, tag="Resource", ns="ri", nsmap=NSMAP):
    """vr:Organisation: who runs the archive, with the facilities and instruments of its data."""

    type: Literal["vr:Organisation"] = attr(name="type", ns="xsi", default="vr:Organisation")
    facility: list[ResourceName] = element(tag="facility", default_factory=list, ns="")
    instrument: list[ResourceName] = element(tag="instrument", default_factory=list, ns="")


AnyRecord = Union[  # noqa: UP007
    CatalogServiceRecord, DataServiceRecord, RegistryRecord, AuthorityRecord, OrganisationRecord
]
