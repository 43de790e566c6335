"""`escape-vo worker`: a process that runs async jobs, on any machine sharing the database."""

from __future__ import annotations

import asyncio
import signal

import click


def run_worker(
    url: str, settings, kinds: tuple[str, ...] = (), concurrency: int = 2, lease: float = 30.0
) -> None:
    """Run a worker in this process until SIGINT/SIGTERM."""
    from escape_vo.uws.registry import load_kinds
    from escape_vo.uws.worker import Worker

    known = load_kinds()
    unknown = [k for k in kinds if k not in known]
    if unknown:
        raise click.BadParameter(f"unknown job kind {unknown[0]!r}; known: {', '.join(known)}")
    selected = [known[k] for k in kinds] if kinds else list(known.values())
    worker = Worker(url, settings, selected, concurrency=concurrency, lease=lease)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop.set)
        await worker.run()

    asyncio.run(main())


@click.command()
@click.option("--concurrency", type=int, default=2, show_default=True, help="Jobs run at once.")
@click.option("--kind", "kinds", multiple=True, help="Only these kinds of job [default: all].")
@click.option(
    "--lease",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds without a heartbeat after which a job is given to another worker.",
)
def worker(concurrency: int, kinds: tuple[str, ...], lease: float) -> None:
    """Run async jobs (TAP queries) from the database queue until Ctrl-C.

    Start as many as you like, on any machine that reaches the database and shares DATA_DIR
    (where results are written); `serve --job-workers 0` leaves all jobs to them.
    """
    from escape_vo.db import database, ensure_schema
    from escape_vo.settings import get_settings

    settings = get_settings()
    with database(settings) as url:
        ensure_schema(url)
        run_worker(url, settings, kinds, concurrency, lease)
