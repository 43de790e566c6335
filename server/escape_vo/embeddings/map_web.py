"""HTTP: the latent map page, its points and the spectra it plots against a model's rebuild.

GET /embeddings/map                       the interactive latent sky (HTML + canvas)
GET /embeddings/map/points?model=...      its points, columnar JSON
GET /embeddings/spectra/{spectrum_id}     a preprocessed spectrum (JSON) for the map's plot,
                                          with ?model= the model's rebuild of it
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import anyio
import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from psycopg import sql

from escape_vo.embeddings.example import (
    ExampleError,
    cached_model,
    current_record_async,
    model_flux,
)
from escape_vo.embeddings.grid import GRIDS, Grid
from escape_vo.embeddings.search import default_model

STATIC = Path(__file__).parent / "static"
router = APIRouter(prefix="/embeddings", tags=["embeddings"])
# More points than this are a sample of about as many: the ODDEST_KEPT highest anomaly scores
# (the page lists the oddest spectra) and the rest by a hash of spectrum_id, so the same on
# every load and not the oldest ingests; the page says "n of total".
MAX_MAP_POINTS = 500_000
ODDEST_KEPT = 100


def _param(request: Request, *names: str) -> str | None:
    """Case-insensitive parameter names, as DALI asks."""
    wanted = {n.lower() for n in names}
    for key, value in request.query_params.multi_items():
        if key.lower() in wanted:
            return value
    return None


@router.get("/map", summary="The latent map of the spectra (HTML page)")
async def map_page() -> FileResponse:
    return FileResponse(STATIC / "map.html", media_type="text/html")


@router.get("/map/points", summary="Points of the latent map (columnar JSON)")
async def map_points(request: Request) -> Response:
    """lon/lat on the latent sky of every embedded spectrum (or of a sample of about
    MAX_MAP_POINTS, with the total said) with what the map colours by;
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
            return JSONResponse({"models": [], "model": None, "n": 0, "total": 0})
        if model not in current:
            names = ", ".join(current) or "none"
            return JSONResponse(
                {"error": f"model {model!r} has no applied version (available: {names})"}, 400
            )
        # the count (from the primary key) says which query: the sample's would slow the
        # common case, and building every point's JSON only to learn there are too many took
        # 1.8 s at 600,000
        cur = await conn.execute(_COUNT, (model,))
        (total,) = await cur.fetchone()
        rows, below = _ALL_POINTS, 2**31  # every id hashes below 2**31
        if total > MAX_MAP_POINTS:
            rows, below = _SAMPLED_POINTS, _hash_below(MAX_MAP_POINTS, total)
        cur = await conn.execute(_points_sql(rows, model, MAX_MAP_POINTS, below))
        n, columns = await cur.fetchone()
    head = {"models": list(current), "model": model, "version": current[model], "n": n,
            "total": total}  # fmt: skip
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


# the current version's vectors (each has its spectrum: the foreign key cascades), counted
# from the primary key
_COUNT = """SELECT count(*) FROM embeddings.vectors AS v
    JOIN embeddings.models AS m ON m.name = v.model AND m.version = v.version AND m.is_current
    WHERE v.model = %s"""
# what the map shows of each point, from the model's embedded spectra
_POINT = """e.spectrum_id AS id, e.lon, e.lat, e.anomaly_score AS anomaly, s.snr,
           coalesce(e.instrument, '?') AS inst, coalesce(e.target_class, 'unclassified') AS cls"""
_POINT_FROM = """FROM embeddings.spectrum_embeddings AS e
    JOIN archive.spectra AS s ON s.spectrum_id = e.spectrum_id
    WHERE e.model = {m}"""
_ALL_POINTS = f"""WITH p AS (
    SELECT {_POINT}
    {_POINT_FROM} ORDER BY e.spectrum_id LIMIT {{n}}
)"""
# the ODDEST_KEPT highest scores (a bounded top-N, in an InitPlan) and every spectrum whose id
# hashes below {below} (_hash_below): a filter on one (parallel) scan, without any sort of the
# rows, so the sample loads in about the time of the plain query (sorting by the hash to draw
# exactly MAX_MAP_POINTS took 1.8-1.9 times as long at 600,000)
_SAMPLED_POINTS = f"""WITH p AS (
    SELECT {_POINT}
    {_POINT_FROM} AND (hashint8(e.spectrum_id) < {{below}} OR e.spectrum_id = ANY(ARRAY(
        SELECT spectrum_id FROM embeddings.spectrum_embeddings WHERE model = {{m}}
        ORDER BY nullif(anomaly_score, 'NaN') DESC NULLS LAST, spectrum_id LIMIT {{keep}})))
)"""
# the columns' JSON, from p (either of the above): count, JSON
_POINTS_JSON = f""", insts AS (
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


def _points_sql(rows: str, model: str, n: int, below: int) -> sql.Composed:
    return sql.SQL(rows + _POINTS_JSON).format(
        m=sql.Literal(model), n=sql.Literal(n), keep=sql.Literal(ODDEST_KEPT),
        below=sql.Literal(below),
    )  # fmt: skip


def _hash_below(wanted: int, total: int) -> int:
    """The bound on hashint8(id), uniform over the int4 range, that draws on average `wanted`
    of `total` spectra beside the ODDEST_KEPT (a few hundred more or fewer at 500,000)."""
    fraction = (wanted - ODDEST_KEPT) / max(total - ODDEST_KEPT, 1)
    return -(2**31) + round(min(max(fraction, 0.0), 1.0) * 2**32)


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
    body = {
        "spectrum_id": spectrum_id, "publisher_did": row[4], "instrument": row[5],
        "target_class": row[6], "target_name": row[7], "redshift": row[8],
        "grid": grid.name, "rest_frame": row[2], "coverage": row[3],
        **plot_arrays(grid, flux),
    }  # fmt: skip
    if record is not None and record.grid == grid.name:
        store_url = request.app.state.settings.files_url

        def rebuild() -> np.ndarray:  # loading a model reads the store: off the event loop
            return model_flux(cached_model(store_url, record), flux, bool(row[2]))

        try:
            rebuilt = await anyio.to_thread.run_sync(rebuild)
        except ExampleError as exc:  # the spectrum is still worth showing
            body["model_error"] = str(exc)
        else:
            body |= {"model": record.name, "version": record.version}
            body |= plot_arrays(grid, flux, rebuilt)
    return JSONResponse(body)


def plot_arrays(grid: Grid, flux: np.ndarray, rebuilt: np.ndarray | None = None) -> dict:
    """wave_nm and flux (and model_flux, the rebuild) over the bins from the spectrum's first
    covered one to its last: what the map's plot draws."""
    sl = covered_span(flux)
    out = {"wave_nm": [round(w * 1e9, 3) for w in grid.centres[sl]], "flux": json_floats(flux[sl])}
    if rebuilt is not None:
        out["model_flux"] = json_floats(rebuilt[sl])
    return out


def covered_span(flux: np.ndarray) -> slice:
    """The grid bins from a spectrum's first covered one (finite flux) to its last."""
    covered = np.flatnonzero(np.isfinite(flux))
    return slice(int(covered[0]), int(covered[-1]) + 1) if covered.size else slice(0, 0)


def json_floats(values: np.ndarray, digits: int = 5) -> list[float | None]:
    """Rounded, with null for NaN and infinities (which JSON cannot spell)."""
    return [None if not math.isfinite(f) else round(f, digits) for f in values.tolist()]
