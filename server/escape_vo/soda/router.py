"""/soda/sync: SODA 1.0 synchronous cutouts of spectra (plus VOSI capabilities/availability).

Responses follow SODA 1.0 section 5: the cutout in the requested format with 200; 204 with no
body when the BAND includes no pixel; text/plain errors starting with the SODA label.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from escape_vo.soda.cutout import Band, cutout
from escape_vo.soda.descriptor import SODA_ASYNC, SODA_SYNC
from escape_vo.soda.params import SodaError, parse_request
from escape_vo.spectra.convert import spectrum_data
from escape_vo.spectra.load import SpectrumUnavailable, load_spectrum
from escape_vo.spectra.lookup import spectra_by_did
from escape_vo.spectra.router import file_store
from escape_vo.spectra.vosi import add_vosi_routes, std_capability
from escape_vo.tap.params import collect

router = APIRouter(prefix="/soda")


def soda_error(message: str, status: int = 400) -> Response:
    return PlainTextResponse(message + "\n", status_code=status)


@router.get("/sync", summary="SODA 1.0 sync cutout of a spectrum: ID, BAND, FLUXCALIB, ...")
@router.post("/sync", include_in_schema=False)
async def soda_sync(request: Request) -> Response:
    try:
        params = await collect(request)
    except Exception as exc:  # a malformed body is the client's error
        return soda_error(f"UsageError: cannot read the request parameters: {exc}")
    try:
        req = parse_request(params, sync=True)
    except SodaError as exc:
        return soda_error(str(exc))
    did = req.ids[0]
    rows = await spectra_by_did(request.app.state.pool, [did])
    row = rows.get(did)
    if row is None:
        return soda_error(
            f"UsageError: no spectrum with ID {did}; IDs are the publisher DIDs "
            "(obs_publisher_did in ivoa.obscore)",
            404,
        )
    if req.fluxcalib == "ABSOLUTE" and row.calib_level < 2:
        return soda_error(
            f"UsageError: FLUXCALIB=ABSOLUTE: {did} is not flux calibrated (calib_level "
            f"{row.calib_level}); use FLUXCALIB=RELATIVE or leave FLUXCALIB out"
        )
    store = file_store(request)
    try:
        record = await run_in_threadpool(load_spectrum, store, row)
    except SpectrumUnavailable as exc:
        return soda_error(f"ServiceUnavailable: {exc}", 503)
    data = spectrum_data(row, record)
    bands = req.bands or []
    if not bands:  # no filter: the whole spectrum, in the requested format
        bands = [Band(float("-inf"), float("inf"))]
    (result,) = await run_in_threadpool(cutout, data, bands, req.fluxcalib, req.kind)
    if result.empty:
        return Response(status_code=204)
    headers = {"Content-Disposition": f'inline; filename="{result.filename}"'}
    return Response(result.body, media_type=result.media_type, headers=headers)


def soda_capabilities(prefix_url: str):
    """The SODA sync and async capabilities; also in the registry record."""
    return [
        std_capability(SODA_SYNC, f"{prefix_url}/sync", "1.0", ["GET", "POST"]),
        std_capability(SODA_ASYNC, f"{prefix_url}/async", "1.0"),
    ]


add_vosi_routes(router, "SODA service", soda_capabilities)
