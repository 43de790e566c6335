"""/datalink/links: DataLink 1.1 links of spectra by publisher DID (GET or POST, many IDs)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

import escape_vo.datalink.providers  # noqa: F401 - registers the built-in link providers
from escape_vo.datalink.document import (
    DATALINK_MIME,
    LINKS_STANDARD,
    links_document,
    self_description,
)
from escape_vo.datalink.registry import Link, LinkContext, registered_providers
from escape_vo.spectra.lookup import spectra_by_did
from escape_vo.spectra.router import preview_dir
from escape_vo.spectra.vosi import add_vosi_routes, base_url, std_capability
from escape_vo.tap.params import collect
from escape_vo.votable import error_votable

log = logging.getLogger(__name__)
router = APIRouter(prefix="/datalink")
MAX_IDS = 1000
_VOTABLE_FORMATS = ("", "votable", "application/x-votable+xml", "text/xml", "votable/td")


def _fault(message: str, status: int = 400) -> Response:
    return Response(
        error_votable(message), status_code=status, media_type="application/x-votable+xml"
    )


@router.get("/links", summary="DataLink 1.1 links of spectra: ID=publisher DID (repeatable)")
@router.post("/links", include_in_schema=False)
async def links(request: Request) -> Response:
    try:
        params = await collect(request)
    except Exception as exc:  # a malformed body is the client's error
        return _fault(f"UsageFault: cannot read the request parameters: {exc}")
    formats = params.get("responseformat", [])
    for fmt in formats:
        if fmt.split(";", 1)[0].strip().lower() not in _VOTABLE_FORMATS:
            return _fault(
                f"UsageFault: RESPONSEFORMAT={fmt} is not supported; leave it out or use "
                "votable or application/x-votable+xml"
            )
    ids = list(dict.fromkeys(v.strip() for v in params.get("id", []) if v.strip()))
    overflow = len(ids) > MAX_IDS
    ids = ids[:MAX_IDS]
    base = base_url(request)
    rows = await spectra_by_did(request.app.state.pool, ids)
    ctx = LinkContext(base, request.app.state.settings, preview_dir(request))
    out: list[tuple[str, Link]] = []
    for did in ids:
        spectrum = rows.get(did)
        if spectrum is None:
            out.append((did, Link("#this", error_message=f"NotFoundFault: {did} is not known "
                                  "here; IDs are publisher DIDs (obs_publisher_did)")))  # fmt: skip
            continue
        for provider in registered_providers():
            try:
                out.extend((did, link) for link in provider(ctx, spectrum))
            except Exception as exc:  # one broken provider must not hide the other links
                log.exception("link provider %s failed for %s", provider, did)
                name = getattr(provider, "__name__", "provider")
                out.append(
                    (did, Link("#this", error_message=f"TransientFault: {name} failed: {exc}"))
                )
    self_desc = self_description(f"{base}/datalink/links") if not ids else None
    media = DATALINK_MIME
    if formats and formats[0].split(";", 1)[0].strip().lower() == "text/xml":
        media = "text/xml"
    return StreamingResponse(links_document(out, overflow, self_desc), media_type=media)


def links_capabilities(prefix_url: str):
    """The DataLink capability; also in the registry record (escape_vo.registry.services)."""
    return [
        std_capability(LINKS_STANDARD, f"{prefix_url}/links", "1.1", ["GET", "POST"], DATALINK_MIME)
    ]


add_vosi_routes(router, "DataLink service", links_capabilities)
