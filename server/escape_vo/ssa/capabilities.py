"""The SSA capability (SimpleDALRegExt SSA 1.1 schema) for VOSI and the Registry.

vo-models has no SSA extension, so the capability type is declared here the way vo-models
declares TAPRegExt's TableAccess: a vr:Capability subtype with unqualified child elements.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic_xml import BaseXmlModel, attr, element
from vo_models.vodataservice.models import ParamHTTP
from vo_models.voresource.models import NSMAP as VORESOURCE_NSMAP
from vo_models.voresource.models import AccessURL, Capability
from vo_models.vosi.capabilities.models import VOSICapabilities

from escape_vo.ssa.query import MAXREC_DEFAULT, MAXREC_HARD
from escape_vo.vosi.paramhttp import ParamHTTPCapability

SSA_NS = "http://www.ivoa.net/xml/SSA/v1.1"
NSMAP = {"ssa": SSA_NS} | VORESOURCE_NSMAP


class SkyPos(BaseXmlModel, tag="pos", nsmap=NSMAP):
    long: float = element(tag="long")
    lat: float = element(tag="lat")


class TestQuery(BaseXmlModel, tag="testQuery", nsmap=NSMAP):
    pos: SkyPos = element(tag="pos")
    size: float = element(tag="size")


class SimpleSpectralAccess(ParamHTTPCapability, tag="capability", nsmap=NSMAP):
    standard_id: Literal["ivo://ivoa.net/std/SSA"] = attr(
        name="standardID", default="ivo://ivoa.net/std/SSA"
    )
    type: Literal["ssa:SimpleSpectralAccess"] = attr(default="ssa:SimpleSpectralAccess", ns="xsi")
    compliance_level: str = element(tag="complianceLevel")
    data_source: list[str] = element(tag="dataSource")
    creation_type: list[str] = element(tag="creationType")
    supported_frame: list[str] = element(tag="supportedFrame")
    max_search_radius: float = element(tag="maxSearchRadius")
    max_records: int = element(tag="maxRecords")
    default_max_records: int = element(tag="defaultMaxRecords")
    max_aperture: float = element(tag="maxAperture")
    test_query: TestQuery | None = element(tag="testQuery", default=None)


def ssa_capability(
    access_url: str, test_pos: tuple[float, float] | None = None
) -> SimpleSpectralAccess:
    return SimpleSpectralAccess(
        interface=[
            ParamHTTP(
                role="std",
                version="1.1",
                access_url=[AccessURL(value=access_url, use="base")],
                query_type=["GET", "POST"],
                result_type="application/x-votable+xml",
            )
        ],
        compliance_level="full",
        data_source=["pointed", "survey"],
        creation_type=["archival"],
        supported_frame=["ICRS"],
        max_search_radius=180.0,
        max_records=MAXREC_HARD,
        default_max_records=MAXREC_DEFAULT,
        max_aperture=180.0,
        test_query=(
            TestQuery(pos=SkyPos(long=test_pos[0], lat=test_pos[1]), size=0.1) if test_pos else None
        ),
    )


class SsaCapabilities(VOSICapabilities):
    """VOSI capabilities whose entries may be SSA capabilities (serialised with their type)."""

    capability: list[Union[SimpleSpectralAccess, ParamHTTPCapability, Capability]] = element(  # noqa: UP007
        tag="capability", default_factory=list
    )
