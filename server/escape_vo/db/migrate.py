"""Bring a database to the declared schema: Alembic revisions, then derived objects.

Tables (which hold data) change only through committed Alembic revisions. Views, SQL functions
and the TAP_SCHEMA rows hold no data of their own and are regenerated from schema/*.yaml after
every upgrade, so they can never drift from the declarations.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from escape_vo.db.metadata import declared_views, view_ddl
from escape_vo.schema.tap_schema import tap_schema_rows
from escape_vo.settings import get_settings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK_KEY = 7_412_001  # pg_advisory lock id: one migration at a time per database


def sqlalchemy_url(url: str) -> str:
    """libpq URL -> SQLAlchemy URL for the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The head revision(s) of the code, comma-separated if branches are open."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    return ",".join(sorted(heads))


def current_revision(url: str) -> str | None:
    """The revision(s) the database is at, in the same form as head_revision()."""
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table_schema": "escape"})
            heads = ctx.get_current_heads()
            return ",".join(sorted(heads)) or None
    finally:
        engine.dispose()


def migrate(url: str, revision: str = "heads", base_url: str | None = None) -> None:
    """Upgrade to `revision` and regenerate derived objects (only when at the heads).

    "heads" upgrades every branch, so revisions written in parallel (each revising the same
    parent) all apply.
    """
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS escape"))
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()
    if revision in ("head", "heads"):
        with psycopg.connect(url) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            install_derived(conn)
            if base_url:
                set_setting(conn, "base_url", base_url)
            else:  # until a server says where it is reachable, assume the default address
                conn.execute(
                    "INSERT INTO escape.settings (key, value) VALUES ('base_url', %s) "
                    "ON CONFLICT (key) DO NOTHING",
                    (get_settings().base_url,),
                )


# SQL files installed after every migration (CREATE OR REPLACE; they hold no data).
DERIVED_SQL = (("escape_vo.db", "sql/functions.sql"), ("escape_vo.geometry", "sql/geometry.sql"))
READER_ROLE = "escape_tap_reader"


def derived_sql_texts() -> list[str]:
    return [resources.files(pkg).joinpath(path).read_text() for pkg, path in DERIVED_SQL]


def install_derived(conn: psycopg.Connection) -> None:
    """Functions, views, TAP_SCHEMA rows and grants, all from the declarations, in one
    transaction."""
    for text in derived_sql_texts():
        conn.execute(text)
    for view in declared_views():
        conn.execute(f'DROP VIEW IF EXISTS "{view.schema}"."{view.name}" CASCADE')
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{view.schema}"')
        conn.execute(view_ddl(view))
    refresh_tap_schema(conn)
    grant_reader(conn)


def grant_reader(conn: psycopg.Connection) -> None:
    """The role TAP queries run as: it may SELECT the published tables and nothing else.

    Roles are cluster-wide; on a managed server without CREATEROLE the service falls back to
    read-only transactions as its own user (the ADQL translator is the first line of defence).
    """
    from escape_vo.schema.model import published_tables

    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,)).fetchone()
    if not exists:
        try:
            with conn.transaction():
                conn.execute(f"CREATE ROLE {READER_ROLE} NOLOGIN")
        except psycopg.errors.InsufficientPrivilege:
            log.warning(
                "cannot create role %s; TAP queries will run as the service user", READER_ROLE
            )
            return
        except psycopg.errors.UniqueViolation:
            pass  # created concurrently by another database's migration
    tables = published_tables()
    for schema in sorted({t.schema for t in tables}):
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {READER_ROLE}')
    for t in tables:
        conn.execute(f'GRANT SELECT ON "{t.schema}"."{t.name}" TO {READER_ROLE}')
    conn.execute(f"GRANT USAGE ON SCHEMA escape TO {READER_ROLE}")


def refresh_tap_schema(conn: psycopg.Connection) -> None:
    rows = tap_schema_rows()
    for table in ("key_columns", "keys", "columns", "tables", "schemas"):
        conn.execute(f"DELETE FROM tap_schema.{table}")
    for table in ("schemas", "tables", "columns", "keys", "key_columns"):
        if not rows[table]:
            continue
        names = list(rows[table][0])
        cols = ", ".join(f'"{n}"' for n in names)
        with conn.cursor().copy(f"COPY tap_schema.{table} ({cols}) FROM STDIN") as copy:
            for row in rows[table]:
                copy.write_row([row[n] for n in names])
    refresh_row_counts(conn)


def refresh_row_counts(conn: psycopg.Connection) -> None:
    """Row-count hints in tap_schema.tables: exact for our tables (cheap at this size)."""
    tables = conn.execute("SELECT table_name FROM tap_schema.tables").fetchall()
    for (name,) in tables:
        schema, table = name.split(".", 1)
        (count,) = conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()
        conn.execute("UPDATE tap_schema.tables SET nrows = %s WHERE table_name = %s", (count, name))


def set_setting(conn: psycopg.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO escape.settings (key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        (key, value),
    )
