"""Nearest neighbours in a model's latent space, served by the model's HNSW index.

One SQL shape serves /embeddings/similar, the DataLink "similar spectra" service and the CLI,
and it is the shape the ADQL function ivo_embedding_distance translates to:

    ORDER BY CAST(vector AS public.vector(16)) OPERATOR(public.<=>)
             (SELECT the query spectrum's vector) LIMIT k

with WHERE model = '<name>' so PostgreSQL picks the partial HNSW index of that model. Names and
identifiers are inlined as quoted literals (never as bind parameters): a generic plan could not
prove the partial index's predicate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from escape_vo.db.hnsw import scan_settings
from escape_vo.embeddings.store import DISTANCE_OP, VECTOR_DIM, VECTOR_TYPE

MAX_K = 1000
# Model preference when a request does not name one: the best on the demo data first.
PREFERENCE = ("autoencoder", "spherical", "pca")
RESULT_COLUMNS = (
    "publisher_did", "spectrum_id", "distance", "model", "version", "instrument", "target_class",
    "lon", "lat", "anomaly_score", "z_model",
)  # fmt: skip


class SearchError(ValueError):
    """The request cannot be answered; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Neighbour:
    publisher_did: str
    spectrum_id: int
    distance: float
    model: str
    version: int
    instrument: str | None
    target_class: str | None
    lon: float | None
    lat: float | None
    anomaly_score: float | None
    z_model: float | None


def query_vector_sql(model: str, did: str) -> sql.Composed:
    return sql.SQL(
        "(SELECT CAST(t.vector AS {vt}) FROM embeddings.spectrum_embeddings AS t "
        "WHERE t.model = {m} AND t.publisher_did = {d})"
    ).format(vt=sql.SQL(VECTOR_TYPE), m=sql.Literal(model), d=sql.Literal(did))


def neighbours_sql(model: str, did: str, k: int, include_self: bool = False) -> sql.Composed:
    return _nearest_sql(model, query_vector_sql(model, did), k, None if include_self else did)


def vector_literal(vector: np.ndarray) -> sql.Composed:
    """A query vector given by value (an uploaded spectrum's), padded to the stored width."""
    padded = np.zeros(VECTOR_DIM, np.float64)
    padded[: len(vector)] = vector
    text = "[" + ",".join(repr(float(x)) for x in padded) + "]"
    return sql.SQL("CAST({t} AS {vt})").format(t=sql.Literal(text), vt=sql.SQL(VECTOR_TYPE))


def nearest_to_vector_sql(model: str, vector: np.ndarray, k: int) -> sql.Composed:
    return _nearest_sql(model, vector_literal(vector), k, None)


def _nearest_sql(model: str, query: sql.Composable, k: int, exclude: str | None) -> sql.Composed:
    distance = sql.SQL("CAST(e.vector AS {vt}) {op} {q}").format(
        vt=sql.SQL(VECTOR_TYPE), op=sql.SQL(DISTANCE_OP), q=query
    )
    cond = (
        sql.SQL("")
        if exclude is None
        else sql.SQL(" AND e.publisher_did <> {d}").format(d=sql.Literal(exclude))
    )
    return sql.SQL(
        "SELECT e.publisher_did, e.spectrum_id, {dist} AS distance, e.model, e.version, "
        "e.instrument, e.target_class, e.lon, e.lat, e.anomaly_score, e.z_model "
        "FROM embeddings.spectrum_embeddings AS e WHERE e.model = {m}{cond} "
        "ORDER BY distance LIMIT {k}"
    ).format(dist=distance, m=sql.Literal(model), cond=cond, k=sql.Literal(int(k)))


def settings_sql(rows: int) -> str:
    """The scan's settings for this transaction only (escape_vo.db.hnsw), for a search whose
    index scan must yield `rows` rows: k + 1 for a spectrum's neighbours, which the spectrum
    itself heads before it is left out, as TOP k + 1 in ADQL does. An answer of k rows
    whatever the index's candidates lose to the conditions after it (the query spectrum, an
    older version still being replaced). One statement: one message in a pipeline."""
    return scan_settings(rows, local=True)


def check_k(k: int) -> None:
    if not 1 <= k <= MAX_K:
        raise SearchError(f"k must be between 1 and {MAX_K}; got {k}")


_STATUS = sql.SQL(
    "SELECT (SELECT max(version) FROM embeddings.models WHERE name = {m} AND is_current), "
    "EXISTS (SELECT 1 FROM archive.spectra WHERE publisher_did = {d}), "
    "EXISTS (SELECT 1 FROM embeddings.spectrum_embeddings WHERE model = {m} "
    "AND publisher_did = {d})"
)


def _explain(model: str, did: str, status: tuple, available: list[str]) -> None:
    version, known, embedded = status
    if version is None:
        offered = ", ".join(available) or "none yet (escape-vo embed train / apply)"
        raise SearchError(f"model {model!r} has no applied version; models available: {offered}")
    if not known:
        raise SearchError(f"no spectrum with ID {did!r} in this archive")
    if not embedded:
        raise SearchError(
            f"spectrum {did} has no vector for model {model} yet (it may be new, or its file "
            "could not be resampled); run escape-vo embed apply"
        )


def default_model(available: list[str]) -> str | None:
    for name in PREFERENCE:
        if name in available:
            return name
    return available[0] if available else None


AVAILABLE = "SELECT DISTINCT name FROM embeddings.models WHERE is_current ORDER BY name"


async def similar_async(pool, did: str, model: str | None, k: int) -> list[Neighbour]:
    """The k spectra nearest to `did` (itself excluded), for the web endpoint.

    With a model named, the settings, the status check and the search go to the server as one
    pipeline in one transaction: one round trip instead of six, which was most of a request's
    time (the HNSW search itself takes 1-3 ms). The status says why when nothing is found."""
    check_k(k)
    async with pool.connection() as conn:
        available: list[str] | None = None
        if model is None:
            available = await _available_async(conn)
            model = default_model(available)
            if model is None:
                raise SearchError("no embedding model has been applied yet (escape-vo embed apply)")
        status_sql = _STATUS.format(m=sql.Literal(model), d=sql.Literal(did))
        async with conn.pipeline(), conn.transaction():
            await conn.execute(settings_sql(k + 1))
            status_cur = await conn.execute(status_sql)
            found_cur = await conn.execute(neighbours_sql(model, did, k))
        status = await status_cur.fetchone()
        if not all(status):
            _explain(model, did, status, available or await _available_async(conn))
        rows = await found_cur.fetchall()
        return [Neighbour(*row) for row in rows]


async def _available_async(conn) -> list[str]:
    cur = await conn.execute(AVAILABLE)
    return [r[0] for r in await cur.fetchall()]


async def nearest_to_vector_async(pool, model: str, vector: np.ndarray, k: int) -> list[Neighbour]:
    """The k spectra nearest to a vector given by value (an uploaded spectrum's)."""
    check_k(k)
    async with pool.connection() as conn:
        async with conn.pipeline(), conn.transaction():
            await conn.execute(settings_sql(k))
            found_cur = await conn.execute(nearest_to_vector_sql(model, vector, k))
        return [Neighbour(*row) for row in await found_cur.fetchall()]


def nearest_to_vector(
    conn: psycopg.Connection, model: str, vector: np.ndarray, k: int
) -> list[Neighbour]:
    """The same on a plain connection (CLI)."""
    check_k(k)
    with conn.transaction():
        conn.execute(settings_sql(k))
        rows = conn.execute(nearest_to_vector_sql(model, vector, k)).fetchall()
    return [Neighbour(*row) for row in rows]


def similar(conn: psycopg.Connection, did: str, model: str | None, k: int) -> list[Neighbour]:
    """The same, on a plain connection (CLI, benchmarks)."""
    check_k(k)
    available = [r[0] for r in conn.execute(AVAILABLE).fetchall()]
    model = model or default_model(available)
    if model is None:
        raise SearchError("no embedding model has been applied yet (escape-vo embed apply)")
    status = conn.execute(_STATUS.format(m=sql.Literal(model), d=sql.Literal(did))).fetchone()
    _explain(model, did, status, available)
    with conn.transaction():
        conn.execute(settings_sql(k + 1))
        rows = conn.execute(neighbours_sql(model, did, k)).fetchall()
    return [Neighbour(*row) for row in rows]
