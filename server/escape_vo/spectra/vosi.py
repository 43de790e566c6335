"""VOSI capabilities and availability for the spectrum services (SSA, DataLink, SODA).

Each service lives under its own prefix with its own /capabilities and /availability, as DALI
asks (clients find the capabilities next to the access URL). Availability is the TAP one: the
service is up when the database answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import APIRouter, Request
from fastapi.responses import Response
from vo_models.vodataservice.models import ParamHTTP
from vo_models.voresource.models import AccessURL, Capability
from vo_models.vosi.capabilities.models import VOSICapabilities

from escape_vo.vosi.paramhttp import ParamHTTPCapabilities, ParamHTTPCapability
from escape_vo.vosi.router import availability


def base_url(request: Request) -> str:
    """The public base URL: PUBLIC_URL if configured, else what the client called."""
    settings = request.app.state.settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def std_capability(
    standard_id: str,
    url: str,
    version: str | None = None,
    query_type: list[str] | None = None,
    result_type: str | None = None,
) -> Capability:
    """A standard capability with one ParamHTTP interface; the HTTP methods it answers queries
    with and the media type of its results are written where given."""
    return ParamHTTPCapability(
        standard_id=standard_id,
        interface=[
            ParamHTTP(
                role="std",
                version=version,
                access_url=[AccessURL(value=url, use="full")],
                query_type=query_type,
                result_type=result_type,
            )
        ],
    )


def service_capabilities(prefix_url: str, *caps: Capability) -> list[Capability]:
    """A service's capabilities plus its VOSI ones: the VOSI document and the registry record."""
    return [
        *caps,
        std_capability("ivo://ivoa.net/std/VOSI#capabilities", f"{prefix_url}/capabilities"),
        std_capability("ivo://ivoa.net/std/VOSI#availability", f"{prefix_url}/availability"),
    ]


def vosi_capabilities(
    prefix_url: str, *caps: Capability, document: type[VOSICapabilities] = ParamHTTPCapabilities
) -> bytes:
    doc = document(capability=service_capabilities(prefix_url, *caps))
    return doc.to_xml(encoding="UTF-8", xml_declaration=True, skip_empty=True)


def add_vosi_routes(
    router: APIRouter,
    service: str,
    capabilities: Callable[[str], Sequence[Capability] | bytes],
) -> None:
    """Add GET /capabilities and /availability to `router` (whose prefix is the service)."""

    async def caps(request: Request) -> Response:
        prefix_url = base_url(request) + router.prefix
        made = capabilities(prefix_url)
        body = made if isinstance(made, bytes) else vosi_capabilities(prefix_url, *made)
        return Response(body, media_type="text/xml")

    router.add_api_route(
        "/capabilities", caps, methods=["GET"], summary=f"VOSI capabilities of the {service}"
    )
    router.add_api_route(
        "/availability",
        availability,
        methods=["GET"],
        summary=f"VOSI availability of the {service}",
    )
