"""Schema versions are migrated, not recreated: data survive upgrades; no drift from schema/."""

from __future__ import annotations

import psycopg
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from escape_vo.db.metadata import build_metadata, include_name, include_object
from escape_vo.db.migrate import current_revision, head_revision, migrate, sqlalchemy_url
from escape_vo.db.session import ensure_schema

ROW = {
    "publisher_did": "ivo://test.example/spectra?abc-0",
    "obs_id": "HARPS.2015-03-01T00:12:34.567",
    "target_name": "HD 1234",
    "ra": 10.5,
    "dec": -20.25,
    "healpix": 123,
    "wave_min": 3.78e-7,
    "wave_max": 6.91e-7,
    "instrument": "HARPS",
    "facility": "ESO-3.6",
    "collection": "test",
    "calib_level": 2,
    "n_pix": 20000,
    "file_format": "eso-phase3",
    "file_index": 0,
    "file_sha256": "ab" * 32,
    "file_size": 500_000,
    "file_path": "ab/ab/x.fits",
    "ingest_time": "2026-01-01T00:00:00",
    "aperture": 0.000277,
}


def _insert(url: str) -> None:
    cols = ", ".join(ROW)
    marks = ", ".join(["%s"] * len(ROW))
    with psycopg.connect(url) as conn:
        conn.execute(f"INSERT INTO archive.spectra ({cols}) VALUES ({marks})", list(ROW.values()))


def test_upgrade_from_first_revision_keeps_data(fresh_db) -> None:
    url = fresh_db()
    migrate(url, revision="0001")
    assert current_revision(url) == "0001"
    _insert(url)
    migrate(url)  # to head, with views and TAP_SCHEMA
    assert current_revision(url) == head_revision()
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT obs_id, s_ra, s_dec, em_min, em_xel, access_estsize, s_region, access_url "
            "FROM ivoa.obscore"
        ).fetchone()
        nrows = conn.execute(
            "SELECT nrows FROM tap_schema.tables WHERE table_name = 'archive.spectra'"
        ).fetchone()[0]
    assert row[:6] == (ROW["obs_id"], 10.5, -20.25, 3.78e-7, 20000, 489)
    assert row[6] == f"CIRCLE ICRS 10.5 -20.25 {ROW['aperture'] / 2}"
    assert row[7] == (
        "http://127.0.0.1:8000/datalink/links?ID=ivo%3A%2F%2Ftest.example%2Fspectra%3Fabc-0"
    )
    assert nrows == 1


def test_database_matches_the_declarations(db_url: str) -> None:
    """The committed revisions produce exactly the tables schema/*.yaml declares."""
    engine = sa.create_engine(sqlalchemy_url(db_url), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": include_name,
                "include_object": include_object,
                "compare_type": True,
                "version_table_schema": "escape",
            },
        )
        diff = compare_metadata(ctx, build_metadata())
    engine.dispose()
    assert diff == [], f"schema/ and migrations disagree; add a revision: {diff}"
    # Alembic does not compare expression indexes: the cross-match's indexes of cells are
    # checked here, against the orders the translator and the uploads use.
    from escape_vo.db.metadata import cell_index_name
    from escape_vo.geometry.cells import CELL_ORDERS, cell_shift

    with psycopg.connect(db_url) as conn:
        for order in CELL_ORDERS:
            (definition,) = conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                (cell_index_name("spectra", "healpix", order),),
            ).fetchone()
            assert f"(healpix >> {cell_shift(order)})" in definition, definition


def test_migrate_is_idempotent_and_ensure_schema_is_cheap(db_url: str) -> None:
    _insert(db_url)
    migrate(db_url)
    ensure_schema(db_url, base_url="http://example.org/escape")
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM archive.spectra").fetchone()[0] == 1
        url = conn.execute("SELECT access_url FROM ivoa.obscore").fetchone()[0]
    assert url.startswith("http://example.org/escape/datalink/links?ID=")


def test_downgrade_and_upgrade_again(db_url: str) -> None:
    from alembic import command

    from escape_vo.db.migrate import alembic_config

    _insert(db_url)
    engine = sa.create_engine(sqlalchemy_url(db_url), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    engine.dispose()
    assert current_revision(db_url) == "0001"
    migrate(db_url)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM ivoa.obscore").fetchone()[0] == 1
