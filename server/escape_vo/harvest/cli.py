"""`escape-vo harvest`: harvest spectra from a remote TAP or SSA service; `harvest status`;
`harvest discover`: find such services in the VO Registry."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import string
import sys

import click

from escape_vo.harvest.runner import HarvestBusy, HarvestOptions, RunSummary, Target, run_harvest
from escape_vo.harvest.spec import HarvestSpec


class _RichProgress:
    """Two bars (spectra, bytes) on a terminal; nothing when output is not a terminal."""

    def __init__(self) -> None:
        self.bar = None

    def start(self, items: int, total_bytes: int | None) -> None:
        if not sys.stderr.isatty():
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self.items = self.bar.add_task("spectra", total=items)
        self.bytes = self.bar.add_task("bytes", total=total_bytes)
        self.bar.start()

    def advance(self, items: int = 0, nbytes: int = 0) -> None:
        if self.bar is not None:
            if items:
                self.bar.advance(self.items, items)
            if nbytes:
                self.bar.advance(self.bytes, nbytes)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _headers(given: tuple[str, ...]) -> dict[str, str]:
    """--header 'Name: value' options as a dict, each $VAR or ${VAR} in a value replaced by
    that environment variable ($$ for a dollar sign)."""
    out: dict[str, str] = {}
    for text in given:
        name, colon, value = text.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not name or any(c.isspace() for c in name):
            raise ValueError(f"--header {text!r}: write it as 'Name: value'")
        try:
            out[name] = string.Template(value).substitute(os.environ)
        except KeyError as exc:
            raise ValueError(
                f"--header {name}: the environment variable {exc.args[0]} is not set"
            ) from None
        except ValueError:
            raise ValueError(f"--header {name}: write $VAR or ${{VAR}}, and $$ for '$'") from None
    return out


def _run(spec: HarvestSpec, options: HarvestOptions) -> RunSummary:
    from escape_vo.cli import _settings
    from escape_vo.db import database, ensure_schema

    settings = _settings()

    async def main() -> RunSummary:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:  # `docker stop` and kill send SIGTERM: stop as cleanly as Ctrl-C
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        target = Target(
            db_url=url,
            store_url=settings.files_url,
            authority=settings.ivo_authority,
            spool=settings.data_dir / "harvest",
        )
        log = lambda msg: click.echo(msg, err=True)  # noqa: E731
        return await run_harvest(spec, target, options, _RichProgress(), log)

    with database(settings) as url:
        ensure_schema(url)
        return asyncio.run(main())


@click.group(invoke_without_command=True)
@click.option("--tap", "tap_url", metavar="URL", help="TAP service of the remote archive.")
@click.option(
    "--adql",
    metavar="QUERY",
    help="ADQL over ivoa.obscore (or just its WHERE condition, e.g. "
    "\"dataproduct_type='spectrum' AND instrument_name='HARPS'\").",
)
@click.option("--ssa", "ssa_url", metavar="URL", help="SSA service of the remote archive.")
@click.option("--pos", metavar="RA,DEC", help="SSA: centre of the search circle (deg, ICRS).")
@click.option("--size", type=float, metavar="DEG", help="SSA: diameter of the circle (deg).")
@click.option("--band", metavar="LO/HI", help="SSA: wavelength range in metres (4e-7/7e-7).")
@click.option("--time", "time_", metavar="START/END", help="SSA: time range, ISO 8601.")
@click.option("--target", metavar="NAME", help="SSA: target name (TARGETNAME).")
@click.option("--format", "fmt", metavar="FMT", help="SSA: FORMAT (e.g. fits, all).")
@click.option("--collection", metavar="NAME", help="Local collection for the harvested spectra.")
@click.option("--max", "max_items", type=int, metavar="N", help="At most N spectra in this run.")
@click.option("--parallel", type=int, default=8, show_default=True, help="Downloads at once.")
@click.option("--per-host", type=int, default=4, show_default=True, help="...per server.")
@click.option("--retries", type=int, default=5, show_default=True, help="Per file (transient).")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds.")
@click.option("--retry-failed", is_flag=True, help="Also retry permanent failures of before.")
@click.option("--ingest-batch", type=int, default=200, show_default=True, help="Files per commit.")
@click.option("--dry-run", is_flag=True, help="Discover and record, download nothing.")
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="Sent with every request to the remote, e.g. 'Authorization: Bearer $TOKEN' for "
    "proprietary data (repeatable; never stored). $VAR in single quotes is read from the "
    "environment by escape-vo, which keeps a token out of the process list.",
)
@click.pass_context
def harvest(
    ctx: click.Context,
    tap_url,
    adql,
    ssa_url,
    pos,
    size,
    band,
    time_,
    target,
    fmt,
    collection,
    max_items,
    parallel,
    per_host,
    retries,
    timeout,
    retry_failed,
    ingest_batch,
    dry_run,
    headers,
) -> None:
    """Harvest spectra from another VO archive (TAP/ObsCore or SSA, files via DataLink).

    Resumable and incremental: the same command continues an interrupted harvest, and later
    fetches only spectra the remote did not list before. `escape-vo harvest status` shows runs.
    Exit status: 0 when every listed spectrum is here, 1 when some failed (listed), 130 after
    Ctrl-C, 3 when another process is running the same harvest.
    """
    if ctx.invoked_subcommand is not None:
        return
    try:
        if tap_url and ssa_url:
            raise ValueError("give either --tap or --ssa, not both")
        if tap_url:
            if not adql:
                raise ValueError("--tap needs --adql")
            spec = HarvestSpec.tap(tap_url, adql, collection)
        elif ssa_url:
            spec = HarvestSpec.ssa(
                ssa_url,
                pos=pos,
                size=size,
                band=band,
                time=time_,
                target=target,
                fmt=fmt,
                collection=collection,
            )
        else:
            click.echo(ctx.get_help())
            ctx.exit(2)
        sent = _headers(headers)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    options = HarvestOptions(
        parallel=parallel,
        per_host=per_host,
        retries=retries,
        timeout=timeout,
        max_items=max_items,
        retry_failed=retry_failed,
        ingest_batch=ingest_batch,
        dry_run=dry_run,
        headers=sent,
    )
    try:
        summary = _run(spec, options)
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM
        click.echo("interrupted: run the same command again to resume", err=True)
        sys.exit(130)
    except HarvestBusy as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    except Exception as exc:
        from escape_vo.harvest.discovery import DiscoveryError

        if isinstance(exc, DiscoveryError):
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        raise
    click.echo(summary.summary())
    if not summary.complete:
        sys.exit(1)


@harvest.command("status")
@click.option("--harvest", "harvest_id", type=int, help="Only this harvest.")
@click.option("--failures", type=int, default=20, show_default=True, help="Failures listed.")
def status(harvest_id: int | None, failures: int) -> None:
    """Harvests, their runs, items per state and failures with their reasons."""
    import psycopg

    from escape_vo.cli import _settings
    from escape_vo.db import database, ensure_schema
    from escape_vo.harvest.state import harvests_status

    settings = _settings()
    with database(settings) as url:
        ensure_schema(url)
        with psycopg.connect(url) as conn:
            found = harvests_status(conn, harvest_id, failures)
    if not found:
        click.echo("no harvests yet" if harvest_id is None else f"no harvest {harvest_id}")
        return
    for h in found:
        c = h["counts"]
        click.echo(f"harvest {h['harvest_id']}: {h['protocol']} {h['service_url']}")
        click.echo(f"  query:      {h['query']}")
        click.echo(f"  collection: {h['collection'] or '(from the files)'}")
        click.echo("  items:      " + ", ".join(f"{k} {v}" for k, v in c.items()))
        for r in h["runs"]:
            end = r["finished"].strftime("%Y-%m-%d %H:%M:%S") if r["finished"] else "-"
            click.echo(
                f"  run {r['run_id']:>4} {r['status']:<11} {r['started']:%Y-%m-%d %H:%M:%S} "
                f"-> {end}  found {r['discovered']} (new {r['new_items']}), ingested "
                f"{r['ingested']}, failed {r['failed']}, {r['bytes'] / 1e6:.1f} MB"
                + (f"  [{r['message']}]" if r["message"] else "")
            )
        for f in h["failures"]:
            kind = "failed" if f["permanent"] else "failed, retried next run"
            click.echo(f"  {kind}: {f['remote_id']}: {f['reason']}")
        if c["failed"] > len(h["failures"]):
            click.echo(f"  ... and {c['failed'] - len(h['failures'])} more failures")


# what a TAP harvest of a discovered ObsCore service asks for: every spectrum
DISCOVERED_ADQL = "dataproduct_type = 'spectrum'"


@harvest.command("discover")
@click.argument("keywords", nargs=-1)
@click.option("--waveband", multiple=True, metavar="BAND",
              help="Optical, Infrared, UV, ... (any of them; repeatable).")  # fmt: skip
@click.option("--protocol", "protocols", type=click.Choice(["ssa", "tap"]), multiple=True,
              help="Only SSA, or only TAP with ObsCore (default: both).")  # fmt: skip
@click.option("--registry", metavar="URL",
              help="TAP URL of a RegTAP service (default: pyvo's, the GAVO registry).")  # fmt: skip
@click.option("--max", "maxrec", type=int, metavar="N", help="At most N registry records.")
def discover(
    keywords: tuple[str, ...],
    waveband: tuple[str, ...],
    protocols: tuple[str, ...],
    registry: str | None,
    maxrec: int | None,
) -> None:
    """Spectral services in the VO Registry whose records match all KEYWORDS (title,
    description, subjects) and any --waveband: SSA services and TAP services with an ObsCore
    table, each with the `escape-vo harvest` command that harvests it. Nothing is harvested:
    narrow a command (--pos/--size, --band, --adql) before running it."""
    from pyvo.dal.exceptions import DALAccessError

    from escape_vo_client.registry import find_spectral_services

    try:
        found = find_spectral_services(
            list(keywords),
            list(waveband) or None,
            protocols=protocols or ("ssa", "tap"),
            registry=registry,
            maxrec=maxrec,
        )
    except DALAccessError as exc:  # unreachable, not a VOTable, or the query refused
        where = registry or "the default RegTAP service"
        click.echo(f"error: the registry query failed at {where}: {exc}", err=True)
        sys.exit(1)
    if not found:
        click.echo("no spectral services match", err=True)
        return
    for service in found:
        bands = f" [{', '.join(service.wavebands)}]" if service.wavebands else ""
        click.echo(f"{service.name}  {service.protocol.upper()}  {service.title or ''}{bands}")
        if service.protocol == "ssa":
            command = ["escape-vo", "harvest", "--ssa", service.url]
        else:
            command = ["escape-vo", "harvest", "--tap", service.url, "--adql", DISCOVERED_ADQL]
        click.echo(f"  {shlex.join(command)}")
