"""HTTP: /embeddings/similar (VOTable of neighbours), the latent map page and its data.

GET /embeddings/similar?ID=<publisher DID>&k=10&model=autoencoder[&RESPONSEFORMAT=...]
POST /embeddings/similar                  the same, or with a spectrum file (part SPECTRUM)
POST /embeddings/embed                    a spectrum file as a model sees it (JSON)
GET /embeddings/map                       the interactive latent sky (HTML + canvas)
GET /embeddings/map/points?model=...      its points, columnar JSON
GET /embeddings/spectra/{spectrum_id}     a preprocessed spectrum (JSON) for the map's plot
GET /embeddings/models                    the trained models and their metrics (JSON)
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path

import anyio
import numpy as np
import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from psycopg import sql
from starlette.datastructures import UploadFile
from vo_models.vodataservice.models import ParamHTTP
from vo_models.voresource.models import AccessURL, Capability

from escape_vo.embeddings.example import (
    MAX_FILE_BYTES,
    Embedded,
    ExampleError,
    cached_model,
    current_record_async,
    embed_file,
    model_flux,
)
from escape_vo.embeddings.grid import GRIDS
from escape_vo.embeddings.search import (
    MAX_K,
    RESULT_COLUMNS,
    Neighbour,
    SearchError,
    check_k,
    default_model,
    nearest_to_vector_async,
    similar_async,
)
from escape_vo.schema.model import Column, find_table
from escape_vo.spectra.vosi import add_vosi_routes
from escape_vo.uws.forms import RequestTooLarge, read_form
from escape_vo.vosi.paramhttp import ParamHTTPCapability
from escape_vo.votable import error_votable, resolve_format, write_result

STATIC = Path(__file__).parent / "static"
router = APIRouter(prefix="/embeddings", tags=["embeddings"])
MAX_MAP_POINTS = 500_000


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


def _param(request: Request, *names: str) -> str | None:
    """Case-insensitive parameter names, as DALI asks."""
    wanted = {n.lower() for n in names}
    for key, value in request.query_params.multi_items():
        if key.lower() in wanted:
            return value
    return None


def similar_capabilities(prefix_url: str) -> list[Capability]:
    """The similar-spectra search as a ParamHTTP capability (no IVOA standard covers it): the
    service's VOSI capabilities and its registry record. The parameters are named in the
    description (vo-models' InputParam cannot write a parameter's name)."""
    return [
        ParamHTTPCapability(
            standard_id=None,  # optional in VOResource; vo-models wants it said
            description="The k spectra most similar to a given one: nearest neighbours in the "
            "latent space of an embedding model, with cosine distances, as a VOTable. "
            f"Parameters: ID (publisher DID), k (1-{MAX_K}, default 10), model (default: the "
            "best applied one), RESPONSEFORMAT. Instead of ID, a spectrum file of one's own may "
            "be POSTed as the multipart part SPECTRUM (any 1-D spectrum FITS the archive "
            "ingests), with INDEX (which spectrum of a multi-spectrum file) and REDSHIFT "
            "(default: the file's); INFOs then say how the model sees it (anomaly score, "
            "latent-sky position).",
            interface=[
                ParamHTTP(
                    access_url=[AccessURL(value=f"{prefix_url}/similar", use="base")],
                    query_type=["GET", "POST"],
                    result_type="application/x-votable+xml",
                )
            ],
        )
    ]


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


async def _similar(
    request: Request, params: dict[str, list[str]], files: dict[str, UploadFile]
) -> Response:
    def one(name: str) -> str | None:
        values = params.get(name.lower())
        return values[-1] if values else None

    upload = next((f for name, f in files.items() if name.upper() == "SPECTRUM"), None)
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


@router.post("/embed", summary="How a model sees an uploaded spectrum file (JSON)")
async def embed_upload(request: Request) -> JSONResponse:
    """The vector, latent-sky position, anomaly score and rebuild of a spectrum file of one's
    own (part SPECTRUM; model, INDEX, REDSHIFT as for POST /similar), on the model's grid: what
    the latent map plots for an uploaded spectrum, and the embedding itself for one's own use."""
    try:
        form = await read_form(request, MAX_FILE_BYTES)
    except RequestTooLarge as exc:
        return JSONResponse({"error": f"{exc} (one 1-D spectrum file is expected)"}, 413)
    except ValueError as exc:
        return JSONResponse({"error": f"cannot read the request body: {exc}"}, 400)
    try:
        upload = next((f for name, f in form.files.items() if name.upper() == "SPECTRUM"), None)
        if upload is None:
            return JSONResponse(
                {"error": "upload a spectrum file as the multipart part SPECTRUM"}, 400
            )

        def one(name: str) -> str | None:
            values = form.params.get(name.lower())
            return values[-1] if values else None

        e = await _embed_upload(request, upload, one, one("model"), rebuild=True)
    except ExampleError as exc:
        return JSONResponse({"error": str(exc)}, 400)
    finally:
        await form.close()
    grid = GRIDS[e.grid]
    keep = np.isfinite(e.flux)
    first, last = np.flatnonzero(keep)[[0, -1]]
    sl = slice(int(first), int(last) + 1)
    return JSONResponse(
        {
            "file": upload.filename, "model": e.model, "version": e.version,
            "vector": [round(float(v), 6) for v in e.vector], "lon": e.lon, "lat": e.lat,
            "anomaly_score": e.anomaly_score, "reconstruction_error": e.reconstruction_error,
            "z_model": e.z_model, "redshift": e.redshift, "rest_frame": e.redshift is not None,
            "coverage": e.coverage, "grid": e.grid,
            "wave_nm": [round(w * 1e9, 3) for w in grid.centres[sl]],
            "flux": _rounded(e.flux[sl]), "model_flux": _rounded(e.model_flux[sl]),  # type: ignore[index]
        }
    )  # fmt: skip


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


@router.get("/map", summary="The latent map of the spectra (HTML page)")
async def map_page() -> FileResponse:
    return FileResponse(STATIC / "map.html", media_type="text/html")


@router.get("/map/points", summary="Points of the latent map (columnar JSON)")
async def map_points(request: Request) -> Response:
    """lon/lat on the latent sky of every embedded spectrum with what the map colours by;
    categories as codes into a list of names, numbers rounded: ~35 bytes per point. PostgreSQL
    builds the columns' JSON itself (Python would spend twice the query's time on it)."""
    model = _param(request, "model")
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT name, version FROM embeddings.models WHERE is_current ORDER BY name"
        )
        current = {r[0]: r[1] for r in await cur.fetchall()}
        model = model or default_model(list(current))
        if model is None:
            return JSONResponse({"models": [], "model": None, "n": 0})
        if model not in current:
            names = ", ".join(current) or "none"
            return JSONResponse(
                {"error": f"model {model!r} has no applied version (available: {names})"}, 400
            )
        cur = await conn.execute(
            sql.SQL(_POINTS_SQL).format(m=sql.Literal(model), n=sql.Literal(MAX_MAP_POINTS))
        )
        n, columns = await cur.fetchone()
    head = {"models": list(current), "model": model, "version": current[model], "n": n}
    body = json.dumps(head, separators=(",", ":"))[:-1] + "," + columns[1:]
    return Response(body, media_type="application/json")


def _json_number(column: str, digits: int) -> str:
    """A float column rounded for JSON: null where it is NULL, NaN or infinite (JSON has none)."""
    return (
        f"CASE WHEN {column} IN ('NaN', 'Infinity', '-Infinity') THEN NULL "
        f"ELSE round({column} * 1e{digits}) / 1e{digits} END"
    )


def _json_column(expr: str) -> str:
    return f"coalesce(array_to_json(array_agg({expr} ORDER BY id)), '[]')"


def _json_codes(column: str, table: str) -> str:
    """Category names (sorted by code point, as `table` numbers them) and each point's index
    into them."""
    return (
        f"json_build_object('names', (SELECT coalesce(array_to_json(array_agg({column} "
        f"ORDER BY {column}_code)), '[]') FROM {table}), 'codes', {_json_column(column + '_code')})"
    )


_POINTS_SQL = f"""
WITH p AS (
    SELECT e.spectrum_id AS id, e.lon, e.lat, e.anomaly_score AS anomaly, s.snr,
           coalesce(e.instrument, '?') AS inst, coalesce(e.target_class, 'unclassified') AS cls
    FROM embeddings.spectrum_embeddings AS e
    JOIN archive.spectra AS s ON s.spectrum_id = e.spectrum_id
    WHERE e.model = {{m}} ORDER BY e.spectrum_id LIMIT {{n}}
), insts AS (
    SELECT inst, row_number() OVER (ORDER BY inst COLLATE "C") - 1 AS inst_code
    FROM (SELECT DISTINCT inst FROM p) AS d
), clss AS (
    SELECT cls, row_number() OVER (ORDER BY cls COLLATE "C") - 1 AS cls_code
    FROM (SELECT DISTINCT cls FROM p) AS d
), c AS (
    SELECT p.*, inst_code, cls_code FROM p JOIN insts USING (inst) JOIN clss USING (cls)
)
SELECT count(*), json_build_object(
    'id', {_json_column("id")},
    'lon', {_json_column(_json_number("lon", 3))},
    'lat', {_json_column(_json_number("lat", 3))},
    'anomaly', {_json_column(_json_number("anomaly", 6))},
    'snr', {_json_column(_json_number("snr", 2))},
    'instrument', {_json_codes("inst", "insts")},
    'class', {_json_codes("cls", "clss")}
)::text
FROM c
"""


@router.get("/spectra/{spectrum_id}", summary="A preprocessed spectrum on its model grid (JSON)")
async def preprocessed_spectrum(request: Request, spectrum_id: int) -> JSONResponse:
    """The spectrum as the models see it; with ?model=NAME also that model's rebuild of it
    (model_flux: what the anomaly score compares the spectrum with)."""
    model = _param(request, "model")
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT p.grid, p.flux, p.rest_frame, p.coverage, s.publisher_did, s.instrument, "
            "s.target_class, s.target_name, s.redshift FROM embeddings.preprocessed AS p "
            "JOIN archive.spectra AS s ON s.spectrum_id = p.spectrum_id "
            "WHERE p.spectrum_id = %s AND p.flux IS NOT NULL ORDER BY p.grid LIMIT 1",
            (spectrum_id,),
        )
        row = await cur.fetchone()
        if row is None:
            return JSONResponse(
                {"error": f"spectrum {spectrum_id} has not been preprocessed "
                          "(escape-vo embed apply)"},
                404,
            )  # fmt: skip
        try:
            record = await current_record_async(conn, model) if model else None
        except ExampleError as exc:
            return JSONResponse({"error": str(exc)}, 400)
    grid = GRIDS[row[0]]
    flux = np.asarray(row[1], dtype=np.float64)
    keep = np.isfinite(flux)
    first, last = np.flatnonzero(keep)[[0, -1]] if keep.any() else (0, -1)
    sl = slice(int(first), int(last) + 1)
    body = {
        "spectrum_id": spectrum_id, "publisher_did": row[4], "instrument": row[5],
        "target_class": row[6], "target_name": row[7], "redshift": row[8],
        "grid": grid.name, "rest_frame": row[2], "coverage": row[3],
        "wave_nm": [round(w * 1e9, 3) for w in grid.centres[sl]],
        "flux": _rounded(flux[sl]),
    }  # fmt: skip
    if record is not None and record.grid == grid.name:
        store_url = request.app.state.settings.files_url
        rebuilt = await anyio.to_thread.run_sync(
            model_flux, cached_model(store_url, record), flux, bool(row[2])
        )
        body |= {
            "model": record.name,
            "version": record.version,
            "model_flux": _rounded(rebuilt[sl]),
        }
    return JSONResponse(body)


def _rounded(values: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(f) else round(f, 5) for f in values.tolist()]
