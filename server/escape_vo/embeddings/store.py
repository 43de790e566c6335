"""Model versions, their weights and the vectors they produce, in PostgreSQL and the file store.

Weights go to the file store under their SHA-256 (like original files: immutable, shared by
every machine that shares the store); embeddings.models says which version exists, on what it
was trained and which one is current. Vectors are real[16] rows with a pgvector HNSW index per
model name on vec::vector(16) (cosine distance), created when the model is first applied.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import psycopg

from escape_vo.embeddings.grid import GRIDS
from escape_vo.embeddings.models import MODELS, VECTOR_DIM, Embedding, EmbeddingModel
from escape_vo.filestore import FileStore

# The extension's objects are schema-qualified so the SQL works under any search_path (TAP
# queries run with search_path = pg_catalog).
VECTOR_TYPE = f"public.vector({VECTOR_DIM})"
DISTANCE_OP = "OPERATOR(public.<=>)"


class ModelNotFound(LookupError):
    """No such model (or version) has been trained."""


@dataclass(frozen=True, slots=True)
class ModelRecord:
    name: str
    version: int
    kind: str
    latent_dim: int
    grid: str
    params: dict
    selection: str
    seed: int
    n_train: int
    n_test: int
    train_error: float | None
    test_error: float | None
    metrics: dict
    state_path: str
    trained_at: datetime
    applied_at: datetime | None
    is_current: bool


_FIELDS = ", ".join(ModelRecord.__slots__)  # type: ignore[attr-defined]


# the version whose vectors the archive serves (make_current marks it)
CURRENT_MODEL = (
    f"SELECT {_FIELDS} FROM embeddings.models WHERE name = %s AND is_current "
    "ORDER BY version DESC LIMIT 1"
)


def model_record(row: tuple) -> ModelRecord:
    """A row of embeddings.models (selected with all of ModelRecord's fields, in order)."""
    values = list(row)
    values[5] = json.loads(values[5])
    values[12] = json.loads(values[12] or "{}")
    return ModelRecord(*values)


def list_models(conn: psycopg.Connection) -> list[ModelRecord]:
    rows = conn.execute(f"SELECT {_FIELDS} FROM embeddings.models ORDER BY name, version")
    return [model_record(r) for r in rows.fetchall()]


def get_model(conn: psycopg.Connection, name: str, version: int | None = None) -> ModelRecord:
    """A version of a model; by default the newest trained one."""
    if version is None:
        row = conn.execute(
            f"SELECT {_FIELDS} FROM embeddings.models WHERE name = %s "
            "ORDER BY version DESC LIMIT 1",
            (name,),
        ).fetchone()
    else:
        row = conn.execute(
            f"SELECT {_FIELDS} FROM embeddings.models WHERE name = %s AND version = %s",
            (name, version),
        ).fetchone()
    if row is None:
        which = f"{name} version {version}" if version else name
        raise ModelNotFound(f"model {which} has not been trained (escape-vo embed train)")
    return model_record(row)


def save_model(
    conn: psycopg.Connection,
    store: FileStore,
    name: str,
    model: EmbeddingModel,
    *,
    selection: str,
    seed: int,
    n_train: int,
    n_test: int,
    train_error: float | None,
    test_error: float | None,
    metrics: dict,
) -> ModelRecord:
    """Store the weights and register the next version of `name` (not yet current)."""
    data = model.to_bytes()
    sha = hashlib.sha256(data).hexdigest()
    key = f"embeddings/{sha[:2]}/{sha}.npz"
    store.put(key, data)
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('embeddings.models:' || %s))", (name,))
    (version,) = conn.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM embeddings.models WHERE name = %s", (name,)
    ).fetchone()
    conn.execute(
        "INSERT INTO embeddings.models (name, version, kind, latent_dim, grid, params, selection,"
        " seed, n_train, n_test, train_error, test_error, metrics, state_path, trained_at,"
        " is_current) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, false)",
        (
            name, version, model.kind, model.latent_dim, model.grid.name,
            json.dumps(model.params, sort_keys=True), selection, seed, n_train, n_test,
            train_error, test_error, json.dumps(metrics, sort_keys=True), key,
            datetime.now(UTC).replace(tzinfo=None),
        ),
    )  # fmt: skip
    return get_model(conn, name, version)


def load_model(store: FileStore, record: ModelRecord) -> EmbeddingModel:
    cls = MODELS.get(record.name)
    if cls is None or cls.kind != record.kind:
        cls = next((c for c in MODELS.values() if c.kind == record.kind), None)
    if cls is None:
        raise ModelNotFound(f"no code for model kind {record.kind!r} in this version")
    with store.open(record.state_path) as fh:
        data = fh.read()
    return cls.from_bytes(data, GRIDS[record.grid])


def sky_position(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) in degrees of the direction of the first three latent dimensions."""
    v = np.zeros((len(vectors), 3))
    k = min(3, vectors.shape[1])
    v[:, :k] = vectors[:, :k]
    norm = np.linalg.norm(v, axis=1)
    norm[norm == 0] = 1.0
    lon = np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360.0
    lat = np.degrees(np.arcsin(np.clip(v[:, 2] / norm, -1, 1)))
    return lon, lat


def write_vectors(
    conn: psycopg.Connection, record: ModelRecord, ids: np.ndarray, emb: Embedding
) -> None:
    """COPY one batch of vectors (padded to VECTOR_DIM) with their sky position and scores."""
    from escape_vo.ingest.positions import healpix_index

    n, k = emb.vectors.shape
    padded = np.zeros((n, VECTOR_DIM), np.float32)
    padded[:, :k] = emb.vectors
    lon, lat = sky_position(emb.vectors)
    hpx = healpix_index(lon, lat)
    z = emb.z_model if emb.z_model is not None else np.full(n, np.nan, np.float32)
    cols = "model, version, spectrum_id, vec, lon, lat, healpix, anomaly, z_model"
    with conn.cursor().copy(f"COPY embeddings.vectors ({cols}) FROM STDIN") as copy:
        for i in range(n):
            copy.write_row(
                (
                    record.name, record.version, int(ids[i]), padded[i].tolist(),
                    float(lon[i]), float(lat[i]), int(hpx[i]), float(emb.anomaly[i]),
                    None if not np.isfinite(z[i]) else float(z[i]),
                )
            )  # fmt: skip


def index_name(model_name: str) -> str:
    return f"vectors_{model_name}_hnsw"


def ensure_index(conn: psycopg.Connection, model_name: str) -> None:
    """The HNSW index of one model name (partial: the planner uses it when a query says
    model = '<name>', as every search of ours does)."""
    conn.execute(
        f"CREATE INDEX IF NOT EXISTS {index_name(model_name)} ON embeddings.vectors "
        f"USING hnsw ((vec::{VECTOR_TYPE}) public.vector_cosine_ops) "
        "WITH (m = 16, ef_construction = 64) WHERE model = " + _literal(model_name)
    )


def make_current(conn: psycopg.Connection, record: ModelRecord) -> int:
    """Serve this version; drop the vectors of the others. Returns how many were dropped."""
    conn.execute(
        "UPDATE embeddings.models SET is_current = (version = %s), "
        "applied_at = CASE WHEN version = %s THEN %s ELSE applied_at END WHERE name = %s",
        (record.version, record.version, datetime.now(UTC).replace(tzinfo=None), record.name),
    )
    cur = conn.execute(
        "DELETE FROM embeddings.vectors WHERE model = %s AND version <> %s",
        (record.name, record.version),
    )
    return cur.rowcount


def _literal(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad model name {name!r}")
    return f"'{name}'"
