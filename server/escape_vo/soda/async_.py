"""/soda/async: SODA 1.0 cutouts as UWS 1.1 jobs, on the same queue and workers as async TAP.

A job may name several IDs and several BANDs: every (ID, BAND) pair is one result, as SODA 1.0
section 3.3 says. A BAND that includes no pixel of a spectrum still gives a result: a text/plain
document starting with `UsageError` that states the spectrum's coverage (the async counterpart
of the sync 204).
"""

from __future__ import annotations

import psycopg

from escape_vo.filestore import FileStore
from escape_vo.soda.cutout import Band, cutout
from escape_vo.soda.params import SodaError, parse_request
from escape_vo.spectra.convert import spectrum_data
from escape_vo.spectra.load import SpectrumUnavailable, load_spectrum
from escape_vo.spectra.lookup import spectra_by_did_sync
from escape_vo.uws.files import AtomicFile
from escape_vo.uws.model import JobContext, JobFailure, JobKind, ResultFile
from escape_vo.uws.registry import register
from escape_vo.uws.router import uws_router

KIND = "soda"


def _error_document(message: str) -> tuple[bytes, str]:
    return (message.rstrip() + "\n").encode(), "text/plain"


def _write(ctx: JobContext, name: str, body: bytes) -> int:
    out = AtomicFile(ctx.work_dir / name)
    try:
        out.write(body)
        return out.commit()
    except BaseException:
        out.abort()
        raise


def run(ctx: JobContext) -> list[ResultFile]:
    """Cut every requested spectrum in every requested band into result files."""
    try:
        req = parse_request(ctx.job.params(), sync=False)
    except SodaError as exc:
        raise JobFailure(str(exc)) from None
    with psycopg.connect(ctx.db_url) as conn:
        rows = spectra_by_did_sync(conn, req.ids)
    missing = [did for did in req.ids if did not in rows]
    if missing:
        raise JobFailure(
            f"UsageError: no spectrum with ID {', '.join(missing)}; IDs are the publisher DIDs "
            "(obs_publisher_did in ivoa.obscore)"
        )
    store = FileStore(ctx.settings.files_url)
    bands = req.bands or [Band(float("-inf"), float("inf"))]
    results: list[ResultFile] = []
    for i, did in enumerate(dict.fromkeys(req.ids)):
        if ctx.cancelled.is_set():
            raise JobFailure("the job was aborted", fatal=False)
        row = rows[did]
        if req.fluxcalib == "ABSOLUTE" and row.calib_level < 2:
            raise JobFailure(
                f"UsageError: FLUXCALIB=ABSOLUTE: {did} is not flux calibrated (calib_level "
                f"{row.calib_level}); use FLUXCALIB=RELATIVE or leave FLUXCALIB out"
            )
        try:
            record = load_spectrum(store, row)
        except SpectrumUnavailable as exc:
            raise JobFailure(f"ServiceUnavailable: {exc}", fatal=False) from None
        data = spectrum_data(row, record)
        for j, result in enumerate(cutout(data, bands, req.fluxcalib, req.kind)):
            rid = f"cutout-{i + 1}-{j + 1}"
            if result.empty:
                body = (
                    f"UsageError: BAND {result.band.lo:g} {result.band.hi:g} (metres) includes "
                    f"no pixel of {did}, which covers {row.wave_min:g} to {row.wave_max:g} m\n"
                ).encode()
                name = f"{rid}.txt"
                size = _write(ctx, name, body)
                results.append(ResultFile(rid, name, "text/plain", size))
                continue
            name = f"{rid}-{result.filename}"
            size = _write(ctx, name, result.body or b"")
            results.append(ResultFile(rid, name, result.media_type, size, result.n_pix))
    return results


SODA_JOBS = register(JobKind(name=KIND, run=run, error_document=_error_document))

router = uws_router(SODA_JOBS, "/soda/async")
