"""/spectra/{id}/...: the original files, conversions, previews and headers of spectra.

URL design (the id is archive.spectra.spectrum_id, as found in SSA and DataLink responses):
  /spectra/{id}/file            the original file, byte for byte (Range, ETag, Digest)
  /spectra/{id}?FORMAT=...      a conversion: votable (Spectrum DM 1.1, default), fits, csv,
                                or native (the original file)
  /spectra/{id}/preview         PNG plot
  /spectra/{id}/header          the FITS headers of the original file as text
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, PlainTextResponse, Response, StreamingResponse

from escape_vo.filestore import FileStore
from escape_vo.spectra.convert import KIND_NAMES, output_kind, render, spectrum_data
from escape_vo.spectra.load import SpectrumUnavailable, header_text, load_spectrum, read_original
from escape_vo.spectra.lookup import SpectrumRow, spectrum_by_id
from escape_vo.spectra.preview import cached_preview

router = APIRouter(prefix="/spectra")
_CHUNK = 1 << 20
_SMALL_FILE = 1 << 20  # delivered from memory (see _whole_file); larger ones stream


def file_store(request: Request) -> FileStore:
    store = getattr(request.app.state, "file_store", None)
    if store is None:
        store = FileStore(request.app.state.settings.files_url)
        request.app.state.file_store = store
    return store


def preview_dir(request: Request) -> Path:
    return Path(request.app.state.settings.data_dir) / "previews"


def _not_found(spectrum_id: int) -> Response:
    return PlainTextResponse(
        f"no spectrum with id {spectrum_id}; find ids with SSA (/ssa) or TAP (archive.spectra)\n",
        status_code=404,
    )


def _unavailable(exc: Exception) -> Response:
    return PlainTextResponse(f"spectrum unavailable: {exc}\n", status_code=503)


def checksum_headers(row: SpectrumRow) -> dict[str, str]:
    """ETag and the RFC 3230 / RFC 9530 digests of the original file, from its SHA-256."""
    digest = base64.b64encode(bytes.fromhex(row.file_sha256)).decode()
    return {
        "ETag": f'"{row.file_sha256}"',
        "Digest": f"sha-256={digest}",
        "Repr-Digest": f"sha-256=:{digest}:",
        "Content-Disposition": f'attachment; filename="{row.file_name}"',
        "Cache-Control": "public, max-age=86400, immutable",
    }


async def original_file(request: Request, row: SpectrumRow) -> Response:
    store = file_store(request)
    headers = checksum_headers(row)
    if request.headers.get("if-none-match", "").strip() == headers["ETag"]:
        return Response(status_code=304, headers={"ETag": headers["ETag"]})
    if store._local:
        path = store.path(row.file_path)
        if (
            row.file_size <= _SMALL_FILE
            and request.method == "GET"
            and "range" not in request.headers
        ):
            return await _whole_file(Path(path), row, headers)
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return _unavailable(SpectrumUnavailable(f"original file {row.file_path} is missing"))
        if stat.st_size != row.file_size:
            return _size_mismatch(row, stat.st_size)
        return FileResponse(path, media_type="application/fits", headers=headers, stat_result=stat)

    def chunks():
        with store.open(row.file_path) as fh:
            while block := fh.read(_CHUNK):
                yield block

    headers["Content-Length"] = str(row.file_size)
    return StreamingResponse(chunks(), media_type="application/fits", headers=headers)


async def _whole_file(path: Path, row: SpectrumRow, headers: dict[str, str]) -> Response:
    """A small file read in one go: one worker-thread hop, where FileResponse makes one for
    the stat, the open, each 64 kB chunk and the close (a third of the server's CPU for a bulk
    download of 200 kB spectra, bench/client_download.py)."""
    try:
        data = await run_in_threadpool(path.read_bytes)
    except FileNotFoundError:
        return _unavailable(SpectrumUnavailable(f"original file {row.file_path} is missing"))
    if len(data) != row.file_size:
        return _size_mismatch(row, len(data))
    headers["Accept-Ranges"] = "bytes"
    return Response(data, media_type="application/fits", headers=headers)


def _size_mismatch(row: SpectrumRow, size: int) -> Response:
    """A stored file that changed after ingest would not match its announced checksum."""
    return _unavailable(
        SpectrumUnavailable(
            f"original file {row.file_path} has {size} bytes, its record {row.file_size}: "
            "not served"
        )
    )


async def _row(request: Request, spectrum_id: int) -> SpectrumRow | None:
    return await spectrum_by_id(request.app.state.pool, spectrum_id)


@router.api_route(
    "/{spectrum_id}/file",
    methods=["GET", "HEAD"],
    summary="Original file of a spectrum, byte for byte (Range, ETag and Digest headers)",
)
async def spectrum_file(request: Request, spectrum_id: int) -> Response:
    row = await _row(request, spectrum_id)
    if row is None:
        return _not_found(spectrum_id)
    return await original_file(request, row)


@router.get(
    "/{spectrum_id}",
    summary="A spectrum converted: FORMAT=votable (Spectrum DM 1.1), fits, csv or native",
)
async def spectrum_converted(request: Request, spectrum_id: int) -> Response:
    params = {k.lower(): v for k, v in request.query_params.items()}
    fmt = params.get("format") or params.get("responseformat")
    row = await _row(request, spectrum_id)
    if row is None:
        return _not_found(spectrum_id)
    if fmt is not None and fmt.strip().lower() in ("native", "original", "application/gzip"):
        return await original_file(request, row)
    kind = output_kind(fmt)
    if kind is None:
        return PlainTextResponse(
            f"FORMAT={fmt} is not offered; use one of: {KIND_NAMES}, native\n", status_code=400
        )
    store = file_store(request)
    try:
        record = await run_in_threadpool(load_spectrum, store, row)
        body = await run_in_threadpool(lambda: list(render(spectrum_data(row, record), kind)))
    except SpectrumUnavailable as exc:
        return _unavailable(exc)
    stem = Path(row.file_name).name.split(".")[0]
    headers = {
        "Content-Disposition": f'inline; filename="{stem}-{row.file_index}.{kind.extension}"'
    }
    return Response(b"".join(body), media_type=kind.media_type, headers=headers)


@router.get("/{spectrum_id}/preview", summary="PNG plot of a spectrum")
async def spectrum_preview(request: Request, spectrum_id: int) -> Response:
    row = await _row(request, spectrum_id)
    if row is None:
        return _not_found(spectrum_id)
    store = file_store(request)

    def make():
        return spectrum_data(row, load_spectrum(store, row))

    try:
        path = await run_in_threadpool(cached_preview, preview_dir(request), row, make)
    except SpectrumUnavailable as exc:
        return _unavailable(exc)
    return FileResponse(
        path, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/{spectrum_id}/header", summary="FITS headers of the original file, as text")
async def spectrum_header(request: Request, spectrum_id: int) -> Response:
    row = await _row(request, spectrum_id)
    if row is None:
        return _not_found(spectrum_id)
    store = file_store(request)
    try:
        data = await run_in_threadpool(read_original, store, row)
        text = await run_in_threadpool(header_text, data)
    except SpectrumUnavailable as exc:
        return _unavailable(exc)
    return PlainTextResponse(text)
