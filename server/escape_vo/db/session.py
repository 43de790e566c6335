"""Which database a command talks to, and making sure its schema is current.

Every command goes through `database(settings)`: with DATABASE_URL it uses that server as is;
otherwise it starts (or joins) the embedded server in DATA_DIR and holds a lease on it for the
duration, so `escape-vo ingest` works whether or not `make demo` is serving the same DATA_DIR.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import psycopg

from escape_vo.db.embedded import EmbeddedPostgres
from escape_vo.db.migrate import (
    current_revision,
    derived_sql_texts,
    head_revision,
    migrate,
    set_setting,
)
from escape_vo.schema.model import schema_dir
from escape_vo.settings import Settings


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """Yield a libpq URL for the configured database, starting the embedded one if needed."""
    if settings.database_url:
        yield settings.database_url
        return
    server = EmbeddedPostgres(settings.data_dir, start_timeout=settings.pg_start_timeout)
    with server.lease() as url:
        yield url


def _fingerprint() -> str:
    """Hash of everything the derived objects are generated from."""
    h = hashlib.sha256()
    for f in sorted(schema_dir().glob("*.yaml")):
        h.update(f.read_bytes())
    for text in derived_sql_texts():
        h.update(text.encode())
    return h.hexdigest()


def ensure_schema(url: str, base_url: str | None = None) -> None:
    """Migrate if the database is behind, regenerate derived objects if declarations changed.

    Cheap when nothing changed (two small queries), so every command can call it. Only the
    server passes `base_url` (the URL it is reachable at, used in ivoa.obscore access_url);
    other commands leave the stored one alone.
    """
    fingerprint = _fingerprint()
    if current_revision(url) == head_revision():
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT value FROM escape.settings WHERE key = 'derived_fingerprint'"
            ).fetchone()
            if row and row[0] == fingerprint:
                set_base = conn.execute(
                    "SELECT value FROM escape.settings WHERE key = 'base_url'"
                ).fetchone()
                if base_url and (not set_base or set_base[0] != base_url):
                    set_setting(conn, "base_url", base_url)
                return
    migrate(url, base_url=base_url)
    with psycopg.connect(url) as conn:
        set_setting(conn, "derived_fingerprint", fingerprint)
