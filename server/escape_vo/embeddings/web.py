"""HTTP: similar spectra (by ID or to an uploaded file), an uploaded file's embedding, the
models; the latent map is in map_web.

GET /embeddings/similar?ID=<publisher DID>&k=10&model=autoencoder[&RESPONSEFORMAT=...]
POST /embeddings/similar                  the same, or with a spectrum file (part SPECTRUM)
POST /embeddings/embed                    a spectrum file as a model sees it (JSON, or
                                          RESPONSEFORMAT: a table of its grid bins)
GET /embeddings/models                    the trained models and their metrics (JSON)
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable

import anyio
import numpy as np
import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile
from vo_models.vodataservice.models import ParamHTTP
from vo_models.voresource.models import AccessURL, Capability

from escape_vo.embeddings.example import (
    MAX_FILE_BYTES,
    Embedded,
    ExampleError,
    current_record_async,
    embed_file,
)
from escape_vo.embeddings.grid import GRIDS
from escape_vo.embeddings.map_web import covered_span, json_floats, plot_arrays
from escape_vo.embeddings.search import (
    MAX_K,
    RESULT_COLUMNS,
    Neighbour,
    SearchError,
    check_k,
    nearest_to_vector_async,
    similar_async,
)
from escape_vo.schema.model import Column, find_table
from escape_vo.spectra.vosi import add_vosi_routes
from escape_vo.uws.forms import RequestTooLarge, read_form
from escape_vo.vosi.paramhttp import ParamHTTPCapability
from escape_vo.votable import OutputFormat, error_votable, resolve_format, write_result

router = APIRouter(prefix="/embeddings", tags=["embeddings"])


def _error(message: str, status: int = 400) -> Response:
    return Response(
        error_votable(message), status_code=status, media_type="application/x-votable+xml"
    )


@functools.cache
def result_columns() -> tuple[Column, ...]:
    """Metadata of the neighbours table: the view's own columns plus the distance."""
    view = find_table("embeddings.spectrum_embeddings")
    distance = Column(
        name="distance",
        datatype="double",
        ucd="stat.value",
        description="Cosine distance to the query spectrum in the model's latent space "
        "(0 identical, 1 unrelated, 2 opposite).",
    )
    out = []
    for name in RESULT_COLUMNS:
        if name == "distance":
            out.append(distance)
        else:
            col = view.column(name)
            out.append(Column(**{f: getattr(col, f) for f in col.__slots__ if f != "expr"}))
    return tuple(out)


def similar_capabilities(prefix_url: str) -> list[Capability]:
    """The similar-spectra search and the embedding of one's own file as ParamHTTP capabilities
    (no IVOA standard covers them): the service's VOSI capabilities and its registry record.
    The parameters are named in the descriptions (vo-models' InputParam cannot write a
    parameter's name)."""
    similar = (
        "The k spectra most similar to a given one: nearest neighbours in the latent space of an "
        "embedding model, with cosine distances, as a VOTable. "
        f"Parameters: ID (publisher DID), k (1-{MAX_K}, default 10), model (default: the best "
        "applied one), RESPONSEFORMAT. Instead of ID, a spectrum file of one's own may be POSTed "
        "as the multipart part SPECTRUM (any 1-D spectrum FITS the archive ingests), with INDEX "
        "(which spectrum of a multi-spectrum file) and REDSHIFT (default: the file's); INFOs "
        "then say how the model sees it (anomaly score, latent-sky position)."
    )
    embed = (
        "How an embedding model sees a spectrum file of one's own, POSTed as the multipart "
        "part SPECTRUM (with model, INDEX and REDSHIFT as for the similarity search): its "
        "embedding vector, latent-sky position, anomaly score and the model's rebuild on the "
        "model's wavelength grid. With RESPONSEFORMAT (votable, csv, fits, ...) a table of the "
        "grid bins (wavelength, flux, model_flux) with the vector in the INFO QUERY_VECTOR; "
        "without it or with json, a JSON object."
    )
    return [
        _capability(similar, f"{prefix_url}/similar", ["GET", "POST"]),
        _capability(embed, f"{prefix_url}/embed", ["POST"]),
    ]


def _capability(description: str, url: str, methods: list[str]) -> ParamHTTPCapability:
    return ParamHTTPCapability(
        standard_id=None,  # optional in VOResource; vo-models wants it said
        description=description,
        interface=[
            ParamHTTP(
                access_url=[AccessURL(value=url, use="base")],
                query_type=methods,
                result_type="application/x-votable+xml",
            )
        ],
    )


add_vosi_routes(router, "similar-spectra service", similar_capabilities)


@router.get("/similar", summary="The k spectra most similar to one (VOTable, or RESPONSEFORMAT)")
async def similar_endpoint(request: Request) -> Response:
    params = {k.lower(): [v] for k, v in request.query_params.multi_items()}
    return await _similar(request, params, {})


@router.post(
    "/similar",
    summary="The k spectra most similar to an uploaded spectrum file (SPECTRUM), or to ID",
)
async def similar_post(request: Request) -> Response:
    try:
        form = await read_form(request, MAX_FILE_BYTES)
    except RequestTooLarge as exc:
        return _error(f"{exc} (one 1-D spectrum file is expected)", 413)
    except ValueError as exc:  # a malformed multipart body
        return _error(f"cannot read the request body: {exc}")
    try:
        return await _similar(request, form.params, form.files)
    finally:
        await form.close()


def _one(params: dict[str, list[str]]) -> Callable[[str], str | None]:
    """A parameter's value by case-insensitive name (DALI), the last if given twice."""

    def one(name: str) -> str | None:
        values = params.get(name.lower())
        return values[-1] if values else None

    return one


def _spectrum_part(files: dict[str, UploadFile]) -> UploadFile | None:
    """The uploaded file part SPECTRUM (part names case-insensitive, like parameters)."""
    return next((f for name, f in files.items() if name.upper() == "SPECTRUM"), None)


async def _similar(
    request: Request, params: dict[str, list[str]], files: dict[str, UploadFile]
) -> Response:
    one = _one(params)
    upload = _spectrum_part(files)
    did = one("ID")
    if upload is None and not did:
        return _error(
            "ID is required (the publisher DID of a spectrum, ivo://...), or POST a spectrum "
            "file of your own as the multipart part SPECTRUM "
            "(curl -F SPECTRUM=@spec.fits .../embeddings/similar)"
        )
    if upload is not None and did:
        return _error("give either ID or an uploaded SPECTRUM, not both")
    k_text = one("k") or "10"
    try:
        k = int(k_text)
    except ValueError:
        return _error(f"k must be an integer between 1 and {MAX_K}; got {k_text!r}")
    try:
        fmt = resolve_format(one("RESPONSEFORMAT"))
    except ValueError as exc:
        return _error(str(exc))
    model = one("model")
    pool = request.app.state.pool
    try:
        if upload is None:
            found = await similar_async(pool, did, model, k)  # type: ignore[arg-type]
            infos = [("QUERY_ID", did or ""), ("MODEL", found[0].model if found else model or "")]
        else:
            found, embedded = await _similar_to_upload(request, upload, one, model, k)
            infos = _upload_infos(upload.filename or "upload", embedded)
    except (SearchError, ExampleError) as exc:
        return _error(str(exc))
    columns = result_columns()
    arrays = [pa.array([getattr(n, c.name) for n in found], type=_arrow(c)) for c in columns]
    batch = pa.record_batch(arrays, names=[c.name for c in columns])
    infos.append(("K", str(k)))
    # at most MAX_K rows: written whole, since streaming costs a thread hop per chunk
    body = b"".join(write_result(fmt, columns, iter([batch]), max_rows=k, infos=infos))
    return Response(body, media_type=fmt.mime_type)


async def _similar_to_upload(
    request: Request,
    upload: UploadFile,
    one: Callable[[str], str | None],
    model: str | None,
    k: int,
) -> tuple[list[Neighbour], Embedded]:
    """Embed the uploaded spectrum with the model's current version, then search its vector."""
    check_k(k)
    embedded = await _embed_upload(request, upload, one, model, rebuild=False)
    found = await nearest_to_vector_async(
        request.app.state.pool, embedded.model, embedded.vector, k
    )
    return found, embedded


async def _embed_upload(
    request: Request,
    upload: UploadFile,
    one: Callable[[str], str | None],
    model: str | None,
    rebuild: bool,
) -> Embedded:
    """The uploaded spectrum (INDEX, REDSHIFT as the request gives them) as the current
    version of `model` sees it."""
    index_text, z_text = one("INDEX"), one("REDSHIFT")
    try:
        index = None if index_text is None else int(index_text)
    except ValueError:
        raise ExampleError(f"INDEX must be an integer (0 for the first spectrum of the file); "
                           f"got {index_text!r}") from None  # fmt: skip
    try:
        redshift = None if z_text is None else float(z_text)
    except ValueError:
        raise ExampleError(f"REDSHIFT must be a number; got {z_text!r}") from None
    if redshift is not None and not (np.isfinite(redshift) and redshift > -0.99):
        raise ExampleError(f"REDSHIFT must be a finite number above -0.99; got {z_text}")
    data = await upload.read()
    name = upload.filename or "the uploaded file"
    async with request.app.state.pool.connection() as conn:
        record = await current_record_async(conn, model)
    store_url = request.app.state.settings.files_url
    return await anyio.to_thread.run_sync(
        embed_file, store_url, record, data, name, index, redshift, rebuild
    )


@router.post(
    "/embed",
    summary="How a model sees an uploaded spectrum file (JSON, or RESPONSEFORMAT: VOTable, ...)",
)
async def embed_upload(request: Request) -> Response:
    """The vector, latent-sky position, anomaly score and rebuild of a spectrum file of one's
    own (part SPECTRUM; model, INDEX, REDSHIFT as for POST /similar), on the model's grid: what
    the latent map plots for an uploaded spectrum, and the embedding itself for one's own use.
    Without RESPONSEFORMAT or with json, the JSON object the map reads; with another format
    (votable, csv, fits, ...), a table of the grid bins (wavelength, flux, model_flux) with the
    rest in INFOs, which VO clients read, and errors as DALI error documents."""
    try:
        form = await read_form(request, MAX_FILE_BYTES)
    except RequestTooLarge as exc:
        return JSONResponse({"error": f"{exc} (one 1-D spectrum file is expected)"}, 413)
    except ValueError as exc:
        return JSONResponse({"error": f"cannot read the request body: {exc}"}, 400)
    try:
        one = _one(form.params)
        try:
            fmt = resolve_format(one("RESPONSEFORMAT") or "json")
        except ValueError as exc:
            return _error(str(exc))
        fmt = None if fmt.name == "json" else fmt  # JSON: the object below, not a table
        fail = _json_error if fmt is None else _error
        upload = _spectrum_part(form.files)
        if upload is None:
            return fail("upload a spectrum file as the multipart part SPECTRUM")
        try:
            e = await _embed_upload(request, upload, one, one("model"), rebuild=True)
        except ExampleError as exc:
            return fail(str(exc))
    finally:
        await form.close()
    if fmt is not None:
        return _embedded_table(fmt, upload.filename or "upload", e)
    return JSONResponse(
        {
            "file": upload.filename, "model": e.model, "version": e.version,
            "vector": json_floats(e.vector, 6), "lon": e.lon, "lat": e.lat,
            "anomaly_score": _number(e.anomaly_score),
            "reconstruction_error": _number(e.reconstruction_error),
            "z_model": e.z_model, "redshift": e.redshift, "rest_frame": e.redshift is not None,
            "coverage": e.coverage, "grid": e.grid, "warnings": list(e.warnings),
            **plot_arrays(GRIDS[e.grid], e.flux, e.model_flux),
        }
    )  # fmt: skip


def _json_error(message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message}, status)


EMBEDDED_COLUMNS = (
    Column("wavelength", "double", "Centre of the model grid's bin: rest frame where the "
           "answer's QUERY_REDSHIFT is a redshift, observed otherwise", unit="m", ucd="em.wl"),
    Column("flux", "float", "The spectrum resampled onto the grid and normalised by its median, "
           "as the model reads it; null where it has no data", ucd="phot.flux.density;arith.ratio"),
    Column("model_flux", "float", "The model's rebuild of it from its embedding",
           ucd="phot.flux.density;arith.ratio;meta.modelled"),
)  # fmt: skip


def _embedded_table(fmt: OutputFormat, filename: str, e: Embedded) -> Response:
    """The bins of the grid from the spectrum's first covered one to its last, with the
    embedding (QUERY_VECTOR, space-separated) and what else the JSON says as INFOs."""
    sl = covered_span(e.flux)
    rebuilt = e.model_flux if e.model_flux is not None else np.full(e.flux.shape, np.nan)
    arrays = [
        pa.array(GRIDS[e.grid].centres[sl], type=pa.float64()),
        pa.array(e.flux[sl], type=pa.float32(), from_pandas=True),
        pa.array(rebuilt[sl], type=pa.float32(), from_pandas=True),
    ]
    batch = pa.record_batch(arrays, names=[c.name for c in EMBEDDED_COLUMNS])
    infos = _upload_infos(filename, e)
    infos += [("QUERY_VECTOR", " ".join(f"{x:.6g}" for x in e.vector)), ("GRID", e.grid)]
    body = b"".join(write_result(fmt, EMBEDDED_COLUMNS, iter([batch]), infos=infos))
    return Response(body, media_type=fmt.mime_type)


def _number(x: float) -> float | None:
    return x if math.isfinite(x) else None  # JSON has no NaN


def _upload_infos(filename: str, e: Embedded) -> list[tuple[str, str]]:
    """How the model sees the uploaded spectrum, as INFOs of the answer."""
    infos = [
        ("QUERY_FILE", filename),
        ("MODEL", e.model),
        ("MODEL_VERSION", str(e.version)),
        ("QUERY_ANOMALY_SCORE", f"{e.anomaly_score:.4g}"),
        ("QUERY_RECONSTRUCTION_ERROR", f"{e.reconstruction_error:.4g}"),
        ("QUERY_LON", f"{e.lon:.6f}"),
        ("QUERY_LAT", f"{e.lat:.6f}"),
        ("QUERY_COVERAGE", f"{e.coverage:.4f}"),
        ("QUERY_REDSHIFT", "observed frame" if e.redshift is None else f"{e.redshift:g}"),
    ]
    if e.z_model is not None:
        infos.append(("QUERY_Z_MODEL", f"{e.z_model:.5g}"))
    if e.warnings:  # one INFO: a JSON answer's INFOs are a mapping
        infos.append(("QUERY_WARNINGS", "; ".join(e.warnings)))
    return infos


def _arrow(col: Column) -> pa.DataType:
    return {
        "char": pa.string(), "long": pa.int64(), "int": pa.int32(), "double": pa.float64(),
        "float": pa.float32(),
    }[col.datatype]  # fmt: skip


@router.get("/models", summary="Trained embedding models, their versions and metrics (JSON)")
async def models_endpoint(request: Request) -> JSONResponse:
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT name, version, kind, latent_dim, grid, params, selection, seed, n_train, "
            "n_test, train_error, test_error, metrics, trained_at, applied_at, is_current, "
            "(SELECT count(*) FROM embeddings.vectors AS v "
            "WHERE v.model = m.name AND v.version = m.version) "
            "FROM embeddings.models AS m ORDER BY name, version"
        )
        rows = await cur.fetchall()
    out = []
    for r in rows:
        out.append(
            {
                "name": r[0], "version": r[1], "kind": r[2], "latent_dim": r[3], "grid": r[4],
                "params": json.loads(r[5]), "selection": r[6], "seed": r[7], "n_train": r[8],
                "n_test": r[9], "train_error": r[10], "test_error": r[11],
                "metrics": json.loads(r[12] or "{}"),
                "trained_at": r[13].isoformat() + "Z",
                "applied_at": r[14].isoformat() + "Z" if r[14] else None,
                "current": r[15], "n_vectors": r[16],
            }
        )  # fmt: skip
    return JSONResponse(out)
