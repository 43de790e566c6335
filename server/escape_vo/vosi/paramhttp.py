"""Capabilities whose interfaces are vs:ParamHTTP with all their elements.

vo-models declares a capability's interfaces as the abstract vr:Interface, and pydantic-xml
writes a value as its declared type: a ParamHTTP interface came out with its xsi:type and
access URL but without its queryType and resultType. Declaring the list as ParamHTTP keeps
them; documents and registry records list this type before plain Capability so it is used.
"""

from __future__ import annotations

from typing import Union

from pydantic_xml import element
from vo_models.vodataservice.models import ParamHTTP
from vo_models.voresource.models import Capability
from vo_models.vosi.capabilities.models import VOSICapabilities


class ParamHTTPCapability(Capability, tag="capability"):
    interface: list[ParamHTTP] = element(tag="interface", default_factory=list)


class ParamHTTPCapabilities(VOSICapabilities):
    """VOSI capabilities whose entries may be ParamHTTPCapability (written with their queries)."""

    capability: list[Union[ParamHTTPCapability, Capability]] = element(  # noqa: UP007
        tag="capability", default_factory=list
    )
