"""One run of a harvest: discover, resolve, download, verify, ingest, with state in PostgreSQL.

The stages overlap: files are fetched in parallel (a limit per host) by the client's Downloader
while verified files are ingested in batches by the ordinary ingest pipeline. Files live in a
spool directory (DATA_DIR/harvest/<harvest>/<item>/) until their spectra are committed:

  pending --resolve--> resolved --download+verify--> downloaded --ingest--> ingested
                 \\________________________\\_______________________> failed (reason)

A crash at any point leaves states that the next run continues from: a `.part` file resumes
with HTTP Range, a verified file is ingested without being fetched again, and an ingest that
committed before its items were marked is recognised by the file's checksum (a no-op).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from escape_vo.harvest import state
from escape_vo.harvest.discovery import Discovery, discover
from escape_vo.harvest.provenance import assign_multi_spectrum_origins
from escape_vo.harvest.spec import HarvestSpec
from escape_vo.ingest.model import NotASpectrum, UnreadableFile
from escape_vo.ingest.pipeline import SUFFIXES
from escape_vo.ingest.pipeline import ingest as run_ingest
from escape_vo.ingest.readers import read_spectra
from escape_vo_client.datalink import Unresolved, is_datalink, resolve_products
from escape_vo_client.identity import Identity
from escape_vo_client.transfer import (
    Checksum,
    Downloader,
    Outcome,
    RetryPolicy,
    Transfer,
    file_digests,
)


@dataclass
class HarvestOptions:
    parallel: int = 8  # downloads at once
    per_host: int = 4  # downloads at once from one server
    retries: int = 5  # per file, for transient errors
    timeout: float = 60.0  # seconds without progress before a request counts as timed out
    backoff: float = 0.5  # first retry delay (doubles, with jitter)
    max_items: int | None = None  # at most this many spectra in this run
    retry_failed: bool = False  # also retry items that failed permanently before
    ingest_batch: int = 200  # files per ingest transaction
    ingest_seconds: float = 10.0  # ...or whatever is ready after this long
    dry_run: bool = False  # discover and record, do not download
    # sent with every request to the remote (e.g. Authorization for proprietary data); never
    # recorded in the database or printed
    headers: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class Target:
    """Where harvested spectra go."""

    db_url: str
    store_url: str
    authority: str
    spool: Path  # DATA_DIR/harvest


@dataclass
class RunSummary:
    harvest_id: int = 0
    run_id: int = 0
    status: str = "running"
    discovered: int = 0
    new_items: int = 0
    todo: int = 0
    ingested: int = 0
    bytes: int = 0
    seconds: float = 0.0
    truncated: bool = False
    message: str | None = None
    failures: list[tuple[str, str, bool]] = field(default_factory=list)
    earlier_failures: list[tuple[str, str, bool]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every spectrum the remote listed is here (nothing failed, now or before)."""
        return self.status == "completed" and not self.earlier_failures

    def summary(self) -> str:
        rate = self.bytes / self.seconds / 1e6 if self.seconds else 0.0
        lines = [
            f"harvest {self.harvest_id} run {self.run_id}: {self.status}; found {self.discovered} "
            f"spectra at the remote ({self.new_items} new), {self.todo} to do in this run, "
            f"ingested {self.ingested}, failed {len(self.failures)}; "
            f"{self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s ({rate:.1f} MB/s)"
        ]
        if self.truncated:
            lines.append(
                "  WARNING the remote truncated the discovery result at its row limit: split "
                "the query (e.g. by obs_release_date or position) to harvest everything"
            )
        if self.message:
            lines.append(f"  {self.message}")
        for remote_id, reason, permanent in self.failures:
            kind = "FAILED" if permanent else "FAILED (will retry next run)"
            lines.append(f"  {kind} {remote_id}: {reason}")
        if self.earlier_failures:
            lines.append(
                f"  {len(self.earlier_failures)} spectra failed permanently in earlier runs "
                "(not retried; --retry-failed retries them):"
            )
            lines += [f"  FAILED {rid}: {reason}" for rid, reason, _ in self.earlier_failures]
        return "\n".join(lines)


class HarvestBusy(Exception):
    """Another process is running the same harvest."""


class Progress:
    """Callbacks for progress display; the default does nothing."""

    def start(self, items: int, total_bytes: int | None) -> None: ...

    def advance(self, items: int = 0, nbytes: int = 0) -> None: ...

    def stop(self) -> None: ...


def readable_spectrum(path: Path) -> str | None:
    """The harvest's verification: the file must be a spectrum our readers can ingest."""
    try:
        records = read_spectra(path.read_bytes(), path.name)
    except (UnreadableFile, NotASpectrum) as exc:
        return f"unreadable FITS file: {exc}"
    except OSError as exc:
        return f"cannot read the downloaded file: {exc}"
    return None if records else "no spectrum found in the file"


def _local_name(item: state.ItemRow, url: str, filename: str | None) -> str:
    """File name in the spool: the server's name if it gave one, else the URL's, else the id."""
    for candidate in (filename, Path(urlsplit(url).path).name):
        if candidate and candidate.lower().endswith(SUFFIXES):
            return candidate
    return f"item-{item.item_id}.fits"


class HarvestRun:
    def __init__(
        self,
        spec: HarvestSpec,
        target: Target,
        options: HarvestOptions | None = None,
        progress: Progress | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.target = target
        self.options = options or HarvestOptions()
        self.progress = progress or Progress()
        self.log = log or (lambda _msg: None)
        self.summary = RunSummary()
        self.conn: psycopg.AsyncConnection | None = None
        self._queue: list[tuple[state.ItemRow, Path]] = []
        self._ready = asyncio.Event()
        self._downloads_done = False

    @property
    def spool(self) -> Path:
        return self.target.spool / str(self.summary.harvest_id)

    def item_dir(self, item: state.ItemRow) -> Path:
        return self.spool / str(item.item_id)

    async def run(self) -> RunSummary:
        started = time.monotonic()
        s = self.summary
        self.conn = conn = await psycopg.AsyncConnection.connect(
            self.target.db_url, autocommit=True
        )
        locked = False
        try:
            s.harvest_id = await state.ensure_harvest(conn, self.spec)
            locked = await state.try_lock(conn, s.harvest_id)
            if not locked:
                raise HarvestBusy(
                    f"harvest {s.harvest_id} is being run by another process; wait for it or "
                    "stop it (see `escape-vo harvest status`)"
                )
            crashed = await state.close_dead_runs(conn, s.harvest_id)
            if crashed:
                self.log(f"resuming after {crashed} run(s) that did not finish")
            s.run_id = await state.start_run(conn, s.harvest_id)
            await self._run_stages()
            s.status = "failed" if s.failures else "completed"
            now = {f[0] for f in s.failures}
            s.earlier_failures = [
                f for f in await state.failed_items(conn, s.harvest_id) if f[0] not in now
            ]
        except asyncio.CancelledError:
            s.status, s.message = "interrupted", "interrupted; run the same command to resume"
            raise
        except Exception as exc:
            s.status, s.message = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            s.seconds = time.monotonic() - started
            self.progress.stop()
            await asyncio.shield(self._close(locked))
        return s

    async def _close(self, locked: bool) -> None:
        s, conn = self.summary, self.conn
        assert conn is not None
        try:
            if s.run_id:
                await state.finish_run(
                    conn,
                    s.run_id,
                    s.status,
                    discovered=s.discovered,
                    new_items=s.new_items,
                    ingested=s.ingested,
                    failed=len(s.failures),
                    nbytes=s.bytes,
                    message=s.message,
                )
            if locked:
                await state.unlock(conn, s.harvest_id)
        finally:
            await conn.close()

    async def _run_stages(self) -> None:
        s, conn, opts = self.summary, self.conn, self.options
        assert conn is not None
        self.log(f"discovering spectra at {self.spec.service_url} ({self.spec.protocol})")
        found: Discovery = await asyncio.to_thread(discover, self.spec, opts.timeout, opts.headers)
        s.discovered, s.truncated = len(found.items), found.truncated
        s.new_items = await state.add_items(conn, s.harvest_id, s.run_id, found.items)
        await state.requeue_failed(conn, s.harvest_id, opts.retry_failed)
        todo = await state.unfinished(conn, s.harvest_id, opts.max_items)
        s.todo = len(todo)
        self.log(
            f"{s.discovered} spectra at the remote, {s.new_items} new; {len(todo)} to do"
            + (" (dry run: nothing downloaded)" if opts.dry_run else "")
        )
        if opts.dry_run or not todo:
            return
        known_sizes = [t.expected_size for t in todo]
        self.progress.start(len(todo), sum(known_sizes) if None not in known_sizes else None)  # type: ignore[arg-type]
        ingester = asyncio.create_task(self._ingester())
        try:
            policy = RetryPolicy(retries=opts.retries, backoff=opts.backoff)
            async with Downloader(
                parallel=opts.parallel,
                per_host=opts.per_host,
                timeout=opts.timeout,
                identity=Identity(headers=opts.headers),
                policy=policy,
                on_bytes=self._on_bytes,
            ) as downloader:
                await self._downloaded_before(todo)
                await self._resolve(downloader, todo)
                await self._download(downloader, [t for t in todo if t.state == "resolved"])
        finally:
            self._downloads_done = True
            self._ready.set()
            await ingester  # what is downloaded gets ingested, also after Ctrl-C

    def _on_bytes(self, n: int) -> None:
        self.summary.bytes += n
        self.progress.advance(nbytes=n)

    async def _fail(self, item: state.ItemRow, reason: str, permanent: bool, attempts: int = 0):
        assert self.conn is not None
        item.state = "failed"
        await state.mark_failed(
            self.conn, item.item_id, self.summary.run_id, reason, permanent, attempts
        )
        self.summary.failures.append((item.remote_id, reason, permanent))
        self.progress.advance(items=1)

    async def _downloaded_before(self, todo: list[state.ItemRow]) -> None:
        """Items whose verified file is already in the spool (from an interrupted run)."""
        conn = self.conn
        assert conn is not None
        for item in todo:
            complete = self._complete_file(item)
            if item.state == "downloaded":
                if complete is not None:
                    self._enqueue(item, complete)
                elif item.file_sha256 and await state.in_archive(conn, item.file_sha256):
                    await state.mark_ingested(conn, [item.item_id], self.summary.run_id)
                    item.state = "ingested"
                    self.summary.ingested += 1
                    self.progress.advance(items=1)
                else:  # its file vanished before it was ingested: fetch it again
                    await state.reset_to_resolved(conn, item.item_id)
                    item.state = "resolved"
            elif item.state == "resolved" and complete is not None:
                digests = await asyncio.to_thread(file_digests, complete, [])
                await state.mark_downloaded(
                    conn, item.item_id, digests["sha256"], complete.stat().st_size, 0
                )
                item.state, item.file_sha256 = "downloaded", digests["sha256"]
                self._enqueue(item, complete)

    def _complete_file(self, item: state.ItemRow) -> Path | None:
        folder = self.item_dir(item)
        if not folder.is_dir():
            return None
        done = [p for p in folder.iterdir() if not p.name.endswith((".part", ".part.json"))]
        return done[0] if done else None

    async def _resolve(self, downloader: Downloader, todo: list[state.ItemRow]) -> None:
        """pending -> resolved: direct URLs as they are, DataLink ones through '#this'."""
        conn = self.conn
        assert conn is not None
        pending = [t for t in todo if t.state == "pending"]
        direct = [t for t in pending if not is_datalink(t.access_format)]
        links = [t for t in pending if is_datalink(t.access_format)]
        resolved: list[tuple[int, str, int | None, str | None]] = []
        for item in direct:
            item.file_url, item.state = item.access_url, "resolved"
            resolved.append((item.item_id, item.access_url, None, None))
        if links:
            self.log(f"resolving {len(links)} DataLink documents")
            products = await resolve_products(
                downloader, [(str(t.item_id), t.access_url) for t in links]
            )
            for item in links:
                product = products[str(item.item_id)]
                if isinstance(product, Unresolved):
                    await self._fail(item, product.reason, product.permanent)
                    continue
                item.file_url, item.state = product.url, "resolved"
                item.expected_size = product.size
                item.expected_checksum = str(product.checksum) if product.checksum else None
                resolved.append((item.item_id, product.url, product.size, item.expected_checksum))
        await state.mark_resolved(conn, resolved)

    async def _download(self, downloader: Downloader, items: list[state.ItemRow]) -> None:
        by_key = {str(t.item_id): t for t in items}
        transfers = []
        for item in items:
            folder = self.item_dir(item)
            folder.mkdir(parents=True, exist_ok=True)
            assert item.file_url is not None
            transfers.append(
                Transfer(
                    key=str(item.item_id),
                    url=item.file_url,
                    dest=folder / _local_name(item, item.file_url, None),
                    expected_size=item.expected_size,
                    checksum=Checksum.parse(item.expected_checksum, "DataLink"),
                    verify=readable_spectrum,
                )
            )

        async def done(outcome: Outcome) -> None:
            item = by_key[outcome.transfer.key]
            if not outcome.ok:
                await self._fail(item, outcome.reason, outcome.permanent, outcome.attempts)
                return
            path = outcome.transfer.dest
            name = _local_name(item, item.file_url or "", outcome.filename)
            if name != path.name:
                path = path.rename(path.with_name(name))
            assert self.conn is not None
            await state.mark_downloaded(
                self.conn, item.item_id, outcome.sha256, outcome.size, outcome.attempts
            )
            item.state, item.file_sha256 = "downloaded", outcome.sha256
            self._enqueue(item, path)

        await downloader.fetch_all(transfers, on_done=done)

    # -- ingest ------------------------------------------------------------------------------

    def _enqueue(self, item: state.ItemRow, path: Path) -> None:
        self._queue.append((item, path))
        if len(self._queue) >= self.options.ingest_batch:
            self._ready.set()

    async def _ingester(self) -> None:
        """Ingest what is downloaded, in batches, while downloads go on."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), self.options.ingest_seconds)
            self._ready.clear()
            if self._queue:
                batch, self._queue = self._queue, []
                await self._ingest(batch)
            if self._downloads_done and not self._queue:
                return

    async def _ingest(self, batch: list[tuple[state.ItemRow, Path]]) -> None:
        conn, s = self.conn, self.summary
        assert conn is not None
        paths = [str(p) for _, p in batch]
        report = await asyncio.to_thread(
            run_ingest,
            paths,
            db_url=self.target.db_url,
            store_url=self.target.store_url,
            authority=self.target.authority,
            collection=self.spec.collection,
            origin_archive=self.spec.service_url,
            origin_ids={str(p): item.remote_id for item, p in batch},
            workers=1,
        )
        failed = dict(report.failures)
        done: list[state.ItemRow] = []
        for item, path in batch:
            if str(path) in failed:
                await self._fail(item, f"ingest refused the file: {failed[str(path)]}", True)
            else:
                done.append(item)
        await state.mark_ingested(conn, [i.item_id for i in done], s.run_id)
        shas = {i.file_sha256 for i in done if i.file_sha256}
        await assign_multi_spectrum_origins(conn, s.harvest_id, self.spec.service_url, shas)
        s.ingested += len(done)
        self.progress.advance(items=len(done))
        for item, _ in batch:
            shutil.rmtree(self.item_dir(item), ignore_errors=True)


async def run_harvest(
    spec: HarvestSpec,
    target: Target,
    options: HarvestOptions | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> RunSummary:
    return await HarvestRun(spec, target, options, progress, log).run()
