"""Bulk download of spectra: rows or IDs -> files, in parallel, resumable, verified, reported.

Each spectrum is saved as `<name from its ID><extension>` in the destination directory. A file
there is complete by construction (it is renamed from `.part` only once verified), so a second
call skips it without asking the server; a `.part` left by an interrupted call is resumed with
HTTP Range. Failures never stop the others: they are collected with their reasons in the
DownloadReport. The folder's IDS_FILE records which ID each file was downloaded for, so a
file of another spectrum with the same name (the same key at another archive) is neither
skipped as this one's nor overwritten: the new file's name gets a short hash of its ID.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar
from urllib.parse import urlsplit

from escape_vo_client.datalink import BATCH, Product, Unresolved, is_datalink, resolve_products
from escape_vo_client.identity import Identity
from escape_vo_client.transfer import Downloader, Outcome, RetryPolicy, Transfer, fits_check

T = TypeVar("T")
_EXTENSIONS = {
    "application/fits": ".fits",
    "image/fits": ".fits",
    "application/x-fits": ".fits",
    "application/gzip": ".fits.gz",
    "application/x-gzip": ".fits.gz",
    "application/x-votable+xml": ".xml",
    "text/xml": ".xml",
    "text/csv": ".csv",
    "text/plain": ".txt",
}
_KNOWN_SUFFIXES = (".fits.gz", ".fit.gz", ".fits", ".fit", ".fts", ".xml", ".vot", ".csv", ".txt")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
IDS_FILE = ".escape-vo-ids"  # in the destination: a line "<file name><TAB><ID>" per download


@dataclass
class Item:
    """One spectrum to fetch: its ID and how the service lets us reach it."""

    id: str
    access_url: str | None = None
    access_format: str | None = None
    size_hint: int | None = None  # bytes


@dataclass
class DownloadReport:
    """What a download did. `ok` is true when nothing failed; `failed` lists (id, reason)."""

    dest: Path
    succeeded: list[tuple[str, Path]] = field(default_factory=list)
    skipped: list[tuple[str, Path]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def paths(self) -> list[Path]:
        """Every file that is now present, downloaded or already there."""
        return [p for _, p in self.succeeded] + [p for _, p in self.skipped]

    def summary(self) -> str:
        rate = self.bytes / self.seconds / 1e6 if self.seconds else 0.0
        lines = [
            f"downloaded {len(self.succeeded)} files ({self.bytes / 1e6:.1f} MB, "
            f"{rate:.1f} MB/s), skipped {len(self.skipped)} already complete, "
            f"{len(self.failed)} failed; into {self.dest}"
        ]
        lines += [f"  FAILED {id_}: {reason}" for id_, reason in self.failed]
        return "\n".join(lines)

    __str__ = summary

    def to_table(self):
        """An astropy Table with one row per requested ID: id, status, path, reason."""
        from astropy.table import Table

        rows = [(i, "downloaded", str(p), "") for i, p in self.succeeded]
        rows += [(i, "skipped", str(p), "") for i, p in self.skipped]
        rows += [(i, "failed", "", r) for i, r in self.failed]
        return Table(
            rows=rows or None, names=("id", "status", "path", "reason"), dtype=(str, str, str, str)
        )


def file_stems(ids: Sequence[str]) -> dict[str, str]:
    """A safe, stable file name (without extension) for each ID, unique within `ids`.

    `ivo://auth/path?key` gives `key`; without a query, the last path element. Names that would
    collide get a short hash of the full ID appended.
    """
    stems: dict[str, str] = {}
    for id_ in ids:
        parts = urlsplit(id_)
        tail = parts.query or parts.path.rstrip("/").rsplit("/", 1)[-1] or id_
        stems[id_] = _UNSAFE.sub("_", tail).strip("._") or "spectrum"
    counts: dict[str, int] = {}
    for stem in stems.values():
        counts[stem] = counts.get(stem, 0) + 1
    for id_, stem in stems.items():
        if counts[stem] > 1:
            stems[id_] = _hashed(stem, id_)
    return stems


def _hashed(stem: str, id_: str) -> str:
    return f"{stem}-{hashlib.sha1(id_.encode()).hexdigest()[:8]}"


def read_ids(dest: Path) -> dict[str, str]:
    """File name -> the ID it was downloaded for, from the folder's IDS_FILE (later lines
    win); empty for a folder filled before the file existed."""
    try:
        text = (dest / IDS_FILE).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    pairs = (line.split("\t", 1) for line in text.splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def _strip_suffix(name: str) -> str | None:
    for suffix in _KNOWN_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return None


def _extension(url: str, content_type: str | None) -> str:
    path = urlsplit(url).path.lower()
    for suffix in _KNOWN_SUFFIXES:
        if path.endswith(suffix):
            return suffix
    base = (content_type or "").split(";")[0].strip().lower()
    return _EXTENSIONS.get(base, ".fits")


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from synchronous code, also inside Jupyter's running event loop (in a
    thread of its own; interrupting the kernel cancels it there, as Ctrl-C does in a terminal,
    instead of leaving it downloading in the background)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: dict[str, Any] = {}
    running: dict[str, Any] = {}

    async def main() -> T:
        running["loop"], running["task"] = asyncio.get_running_loop(), asyncio.current_task()
        return await coro

    # An Event, not Thread.join: a join interrupted by KeyboardInterrupt leaves the thread
    # looking finished to the next join (Python 3.11), which then returned before the
    # cancelled download had stopped.
    done = threading.Event()

    def target() -> None:
        try:
            result["value"] = asyncio.run(main())
        except BaseException as exc:
            result["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        done.wait()
    except KeyboardInterrupt:
        while not done.is_set() and "task" not in running:  # interrupted as it started
            time.sleep(0.01)
        if "task" in running:
            running["loop"].call_soon_threadsafe(running["task"].cancel)
        done.wait()
        raise
    if "error" in result:
        raise result["error"]
    return result["value"]


class _Bars:
    """Two tqdm bars, files and bytes; silent when progress is off."""

    def __init__(self, enabled: bool, files: int, total_bytes: int | None) -> None:
        from tqdm.auto import tqdm

        self.files = tqdm(total=files, desc="spectra", unit="file", disable=not enabled)
        self.bytes = tqdm(
            total=total_bytes,
            desc="bytes",
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            disable=not enabled,
        )

    def settle(self, estimate: int | None, received: int) -> None:
        """Replace a file's estimated size (access_estsize, rounded kB) in the total by the
        bytes it took, so that the bar ends full rather than a little short or over."""
        if self.bytes.total is not None and estimate is not None:
            self.bytes.total += received - estimate
            self.bytes.refresh()

    def close(self) -> None:
        if self.bytes.total is not None and self.bytes.n != self.bytes.total:
            self.bytes.total = self.bytes.n  # failed files took fewer bytes than estimated
            self.bytes.refresh()
        self.files.close()
        self.bytes.close()


async def download_items(
    items: Sequence[Item],
    dest: Path,
    *,
    parallel: int = 8,
    per_host: int | None = None,
    resume: bool = True,
    retries: int = 5,
    timeout: float = 60.0,
    progress: bool = True,
    verify: Callable[[Path], str | None] | None = fits_check,
    failed: Iterable[tuple[str, str]] = (),
    identity: Identity | None = None,
) -> DownloadReport:
    """Fetch every item into dest. `failed` carries failures found before (e.g. unknown IDs);
    `identity` is what every request carries (an authenticated session's, see identity.py)."""
    started = time.monotonic()
    dest.mkdir(parents=True, exist_ok=True)
    report = DownloadReport(dest=dest, failed=list(failed))
    stems = file_stems([i.id for i in items])
    complete: dict[str, Path] = {}
    for path in dest.iterdir():
        stem = _strip_suffix(path.name)
        if stem is not None and path.is_file():
            complete[stem] = path
    owners = read_ids(dest)
    names = {p.name: p for p in complete.values()}
    kept = {id_: names[name] for name, id_ in owners.items() if name in names}
    todo: list[Item] = []
    for item in items:
        on_disk = complete.get(stems[item.id])
        if on_disk is not None and owners.get(on_disk.name, item.id) != item.id:
            stems[item.id] = _hashed(stems[item.id], item.id)  # another spectrum's file
            on_disk = complete.get(stems[item.id])
        done = (kept.get(item.id) or on_disk) if resume else None
        if done is not None:
            report.skipped.append((item.id, done))
        elif not item.access_url:
            report.failed.append((item.id, "no access_url for this ID"))
        else:
            todo.append(item)
    if not resume:  # start over: forget the partial files of these items, and only theirs
        ours = set(stems.values())
        for path in dest.glob("*.part*"):
            stem = _strip_suffix(path.name.split(".part", 1)[0])
            if stem in ours:
                path.unlink(missing_ok=True)

    estimates = {i.id: i.size_hint for i in todo}
    known = list(estimates.values())
    bars = _Bars(progress, len(todo), sum(known) if known and None not in known else None)  # type: ignore[arg-type]
    policy = RetryPolicy(retries=retries)
    ids_file: list[TextIO] = []  # the folder's IDS_FILE, opened at the first file downloaded
    try:
        async with Downloader(
            parallel=parallel,
            per_host=per_host,
            timeout=timeout,
            policy=policy,
            identity=identity,
            on_bytes=bars.bytes.update,
        ) as downloader:

            def finished(outcome: Outcome) -> None:
                t = outcome.transfer
                if outcome.ok:
                    bars.settle(estimates.get(t.key), outcome.size - outcome.resumed_at)
                    report.succeeded.append((t.key, t.dest))
                    if not ids_file:
                        ids_file.append(open(dest / IDS_FILE, "a", encoding="utf-8"))  # noqa: SIM115
                    ids_file[0].write(f"{t.dest.name}\t{t.key}\n")
                    ids_file[0].flush()  # each record on disk as its file is
                    report.bytes += outcome.size - outcome.resumed_at
                else:
                    report.failed.append((t.key, outcome.reason))
                bars.files.update(1)

            async def fetch(items: list[Item], products: dict[str, Product | Unresolved]) -> None:
                transfers: list[Transfer] = []
                for item in items:
                    product = products.get(item.id) or Product(item.access_url, item.access_format)  # type: ignore[arg-type]
                    if isinstance(product, Unresolved):
                        report.failed.append((item.id, product.reason))
                        bars.files.update(1)
                        continue
                    name = stems[item.id] + _extension(product.url, product.content_type)
                    check = verify if name.endswith((".fits", ".fit", ".fts")) else None
                    transfers.append(
                        Transfer(
                            item.id, product.url, dest / name, product.size, product.checksum, check
                        )
                    )
                await downloader.fetch_all(transfers, on_done=finished)

            async def via_datalink(items: list[Item]) -> None:
                products = await resolve_products(downloader, [(i.id, i.access_url) for i in items])  # type: ignore[misc]
                await fetch(items, products)

            # files start to flow as soon as the first DataLink batch is resolved
            linked = [i for i in todo if is_datalink(i.access_format)]
            direct = [i for i in todo if not is_datalink(i.access_format)]
            await asyncio.gather(
                fetch(direct, {}),
                *(via_datalink(linked[k : k + BATCH]) for k in range(0, len(linked), BATCH)),
            )
    finally:
        for fh in ids_file:
            fh.close()
        bars.close()
        report.seconds = time.monotonic() - started
    return report
