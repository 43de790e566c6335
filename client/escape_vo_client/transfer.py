"""Parallel, resumable, verified HTTP downloads: the engine of `Archive.download` and of harvests.

Written here rather than taken from a library because none combines what bulk downloads from VO
archives need on top of an HTTP client: a limit per host (archives throttle, politely or not),
resume with HTTP Range (validated with If-Range), retries with exponential backoff and jitter
that honour Retry-After, detection of truncated bodies, and checksum verification from whatever
the server offers (RFC 3230 Digest, RFC 9530 Repr-Digest, Content-MD5, a hash-like ETag) or the
caller knows (a DataLink checksum column), computed as the bytes arrive. A file appears under
its final name only once it is verified; until then it lives in `<name>.part`, next to a small
`<name>.part.json` holding the validators needed to resume it in a later process.

The HTTP client is aiohttp: fetching 2,000 spectra of ~200 kB in the same run, httpx spent
3.9-4.9 s of CPU where aiohttp spent 0.8-2.2 s (2 cores shared with the server, the setting of
bench/client_download.py), and where client and server share the cores that CPU is the
download's time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import hashlib
import json
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from escape_vo_client.identity import Identity

CHUNK = 1 << 18
# Files up to this size are verified on the event loop. Handing each to a worker thread cost
# more than the check itself: with 2,000 spectra of ~200 kB on 2 cores, the thread hops and
# the GIL hand-overs made the download 15 % slower (bench/client_download.py).
INLINE_CHECK = 8 << 20
# Files above this size have their resume validators written when their transfer starts (see
# Downloader._get); smaller ones only when a transfer is cut short.
SAVE_META_ABOVE = 4 << 20
USER_AGENT = "escape-vo-client (pyvo/aiohttp; bulk download)"
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_HEX_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_DIGEST_NAMES = {
    "sha-256": "sha256",
    "sha256": "sha256",
    "sha-512": "sha512",
    "sha512": "sha512",
    "sha": "sha1",
    "sha-1": "sha1",
    "sha1": "sha1",
    "md5": "md5",
}
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504, 507, 509, 520, 521, 522, 523, 524}


@dataclass(frozen=True)
class Checksum:
    """An expected checksum and where it was announced (for error messages)."""

    algorithm: str  # hashlib name: sha256, md5, sha1, sha512
    hexdigest: str
    source: str = "caller"

    @classmethod
    def parse(cls, text: str | None, source: str = "caller") -> Checksum | None:
        """'sha256:hex', 'md5=hex', 'SHA-256=<base64>' or a bare hex digest (type by length)."""
        if not text or not str(text).strip():
            return None
        text = str(text).strip()
        algo, value = None, text
        for sep in (":", "="):
            head, found, tail = text.partition(sep)
            if found and head.strip().lower() in _DIGEST_NAMES:
                algo, value = _DIGEST_NAMES[head.strip().lower()], tail.strip()
                break
        value = value.strip(":").strip()
        if _HEX.match(value) and (algo is None or len(value) == _hex_length(algo)):
            algo = algo or _HEX_LENGTHS.get(len(value))
            return cls(algo, value.lower(), source) if algo else None
        if algo:  # base64, as in HTTP digest fields
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return None
            if len(raw) * 2 == _hex_length(algo):
                return cls(algo, raw.hex(), source)
        return None

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"


def _hex_length(algo: str) -> int:
    return {v: k for k, v in _HEX_LENGTHS.items()}[algo]


def _header_values(headers: Mapping[str, str], name: str) -> list[str]:
    """Every comma-separated value of a header that may be repeated (a multidict's getall)."""
    getall = getattr(headers, "getall", None)
    lines = getall(name, []) if getall is not None else [headers.get(name, "")]
    return [part.strip() for line in lines for part in line.split(",") if part.strip()]


def checksums_from_headers(headers: Mapping[str, str], trust_etag: bool = True) -> list[Checksum]:
    """Full-file checksums a response announces (Repr-Digest, Digest, Content-MD5, ETag)."""
    found: list[Checksum] = []
    for name in ("repr-digest", "digest"):
        for part in _header_values(headers, name):
            c = Checksum.parse(part, f"{name.title()} header")
            if c:
                found.append(c)
    if not found and headers.get("content-md5"):
        c = Checksum.parse("md5=" + headers["content-md5"], "Content-MD5 header")
        if c:
            found.append(c)
    etag = headers.get("etag", "")
    if not found and trust_etag and etag and not etag.startswith("W/"):
        c = Checksum.parse(etag.strip('"'), "ETag header")
        if c and c.algorithm in ("md5", "sha256"):
            found.append(c)
    return found


def _hashers(algorithms: Iterable[str]) -> dict[str, hashlib._Hash]:
    return {a: hashlib.new(a) for a in {"sha256", *algorithms}}


def _hash_file(path: Path, hashers: dict[str, hashlib._Hash]) -> None:
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            for h in hashers.values():
                h.update(block)


def file_digests(path: Path, algorithms: Iterable[str]) -> dict[str, str]:
    hashers = _hashers(algorithms)
    _hash_file(path, hashers)
    return {a: h.hexdigest() for a, h in hashers.items()}


@dataclass
class Transfer:
    """One file to fetch. `verify` may reject a complete file (returns a reason)."""

    key: str
    url: str
    dest: Path
    expected_size: int | None = None
    checksum: Checksum | None = None
    verify: Callable[[Path], str | None] | None = None


@dataclass
class Outcome:
    """What happened to a Transfer. Never an exception: failures carry their reason."""

    transfer: Transfer
    ok: bool
    size: int = 0
    sha256: str = ""
    reason: str = ""
    permanent: bool = False
    attempts: int = 0
    resumed_at: int = 0
    verified_by: list[str] = field(default_factory=list)
    filename: str | None = None  # as the server named it (Content-Disposition)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Transient errors (timeouts, resets, 429/5xx, truncated bodies) are retried `retries` times
    with exponential backoff and jitter (or after the server's Retry-After); a complete file that
    fails verification is fetched again from scratch `content_retries` times before its failure
    counts as permanent.
    """

    retries: int = 5
    content_retries: int = 2
    backoff: float = 0.5
    max_delay: float = 60.0
    max_retry_after: float = 300.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after) + random.uniform(0, self.backoff / 4)
        ceiling = min(self.max_delay, self.backoff * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # "equal jitter"


class TransientError(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentError(Exception):
    """The server says the file will not come (404, 410, 403, ...)."""


class ContentError(Exception):
    """The body arrived whole but is wrong (size, checksum, unreadable): fetch it again."""


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class Answer:
    """A small response, read whole (DataLink documents, VOTables, error documents)."""

    status_code: int
    reason_phrase: str
    headers: Mapping[str, str]  # case-insensitive
    content: bytes
    url: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def http_error(
    status: int, reason: str | None, headers: Mapping[str, str], url: object, body: bytes = b""
) -> Exception:
    """The exception class for an error status: transient ones are retried."""
    text = body.decode("utf-8", "replace").strip().splitlines()
    detail = f": {text[0][:200]}" if text else ""
    message = f"HTTP {status} {reason or ''}".rstrip() + detail
    if status in _TRANSIENT_STATUS:
        return TransientError(message, retry_after_seconds(headers.get("retry-after")))
    if status in (404, 410):
        what = "gone (410)" if status == 410 else "not found (404)"
        return PermanentError(f"the remote says the file is {what}: {url}")
    return PermanentError(message)


# aiohttp's errors that are worth another attempt: time-outs, refused or reset connections, a
# body that ended before its Content-Length (ClientPayloadError). Proxy failures, bad URLs and
# redirect loops are not.
NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


def network_error(exc: BaseException) -> Exception:
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's ServerTimeoutError is one
        return TransientError(f"timed out ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return TransientError(f"connection closed early ({exc})")
    if isinstance(exc, aiohttp.ClientConnectionError) and not isinstance(
        exc, aiohttp.ClientProxyConnectionError
    ):
        return TransientError(f"network error ({type(exc).__name__}: {exc})")
    return PermanentError(f"cannot fetch: {type(exc).__name__}: {exc}")


def attachment_name(value: str | None) -> str | None:
    """The file name of a Content-Disposition header (RFC 6266, filename* preferred), made safe
    to use as a local file name."""
    if not value:
        return None
    from email.message import Message

    msg = Message()
    msg["content-disposition"] = value
    name = msg.get_filename()
    if not name:
        return None
    name = os.path.basename(name.replace("\\", "/")).strip()
    return name if name not in ("", ".", "..") else None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total) from 'bytes a-b/total' or 'bytes */total'."""
    m = re.match(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


@dataclass
class _Meta:
    """Validators of a partial download, kept next to it so another process can resume it."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    total: int | None = None
    checksums: list[str] = field(default_factory=list)
    filename: str | None = None

    @staticmethod
    def path(part: Path) -> Path:
        return part.with_name(part.name + ".json")

    @classmethod
    def load(cls, part: Path, url: str) -> _Meta | None:
        try:
            data = json.loads(cls.path(part).read_text())
        except (OSError, ValueError):
            return None
        return cls(**data) if data.get("url") == url else None

    def save(self, part: Path) -> None:
        self.path(part).write_text(json.dumps(self.__dict__))


class Downloader:
    """Fetch many files concurrently: `parallel` at once overall, `per_host` per server.

    Use as an async context manager (it owns an aiohttp.ClientSession unless given one). The
    headers, cookies and basic auth of `identity` (an authenticated requests.Session's, see
    identity.py) go with every request of the session it makes. `on_bytes` is called with each
    received block size (progress bars).
    """

    def __init__(
        self,
        *,
        parallel: int = 8,
        per_host: int | None = None,
        timeout: float = 60.0,
        policy: RetryPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        identity: Identity | None = None,
        trust_etag: bool = True,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.parallel = max(1, parallel)
        self.per_host = max(1, per_host or parallel)
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.trust_etag = trust_etag
        self.on_bytes = on_bytes
        self.identity = identity or Identity()
        self._session = session
        self._own_session = session is None
        self._slots = asyncio.Semaphore(self.parallel)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Downloader:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                # a read may wait `timeout` for the next bytes; a whole transfer has no limit
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=min(self.timeout, 30.0), sock_read=self.timeout
                ),
                # at most `parallel` requests are in flight (the slots), so as many connections
                connector=aiohttp.TCPConnector(limit=self.parallel),
                headers={
                    "User-Agent": USER_AGENT,
                    **self.identity.request_headers(),
                    "Accept-Encoding": "identity",
                },
                cookie_jar=self.identity.cookie_jar(),
                auto_decompress=False,  # the bytes of the file, as its checksum was taken
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use the Downloader as `async with Downloader(...) as d:`")
        return self._session

    @contextlib.asynccontextmanager
    async def slot(self, url: str):
        host = urlsplit(url).netloc
        sem = self._hosts.setdefault(host, asyncio.Semaphore(self.per_host))
        async with self._slots, sem:
            yield

    # -- small documents (DataLink, VOTables) -------------------------------------------------

    async def request(
        self, method: str, url: str, *, data: dict | None = None, params: dict | None = None
    ) -> bytes:
        """The body of a small document, with the same retries as files; raises on failure."""
        answer = await self.answer(method, url, data=data, params=params)
        if answer.status_code >= 400:
            raise http_error(
                answer.status_code, answer.reason_phrase, answer.headers, url, answer.content
            )
        return answer.content

    async def answer(
        self,
        method: str,
        url: str,
        *,
        data: dict | None = None,
        params: dict | None = None,
        files: Mapping[str, tuple[str, bytes]] | None = None,
    ) -> Answer:
        """The response to a small request, retried like files on network errors and on the
        transient statuses (429, 5xx); any other status is returned for the caller to read,
        since a service's error answer is a document (a DALI error VOTable) that says why.
        `files` (part name -> (file name, bytes)) makes the body multipart, with `data`."""
        attempt = 0
        while True:
            attempt += 1
            body = _multipart(data, files) if files else _pairs(data)  # a body is read once
            try:
                async with (
                    self.slot(url),
                    self.session.request(method, url, data=body, params=_pairs(params)) as r,
                ):
                    answer = Answer(r.status, r.reason or "", r.headers, await r.read(), str(r.url))
                if answer.status_code not in _TRANSIENT_STATUS:
                    return answer
                error = http_error(r.status, r.reason, r.headers, r.url, answer.content)
            except NETWORK_ERRORS as exc:
                error = network_error(exc)
            if isinstance(error, PermanentError) or attempt > self.policy.retries:
                raise error
            await asyncio.sleep(self.policy.delay(attempt, getattr(error, "retry_after", None)))

    # -- files ---------------------------------------------------------------------------------

    async def fetch_all(
        self,
        transfers: Iterable[Transfer],
        on_done: Callable[[Outcome], Awaitable[None] | None] | None = None,
    ) -> list[Outcome]:
        """Fetch every transfer (a bounded number of tasks in flight); outcomes in finish order."""
        outcomes: list[Outcome] = []
        pending: set[asyncio.Task] = set()
        window = self.parallel * 4
        items = iter(transfers)

        async def finished(done: set[asyncio.Task]) -> None:
            for task in done:
                outcome = task.result()
                outcomes.append(outcome)
                if on_done is not None:
                    maybe = on_done(outcome)
                    if asyncio.iscoroutine(maybe):
                        await maybe

        try:
            for t in items:
                pending.add(asyncio.create_task(self.fetch(t)))
                if len(pending) >= window:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    await finished(done)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                await finished(done)
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        return outcomes

    async def fetch(self, t: Transfer) -> Outcome:
        """Fetch one file to t.dest (via t.dest + '.part'), retrying; never raises for failures."""
        part = t.dest.with_name(t.dest.name + ".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        outcome = Outcome(t, ok=False)
        transient_failures = content_failures = 0
        first = True
        while True:
            outcome.attempts += 1
            try:
                resumed_at, meta, hashers = await self._get(t, part)
                if first:
                    outcome.resumed_at = resumed_at
                first = False
                await self._verify(t, part, outcome, meta, hashers)
            except PermanentError as exc:
                return self._failed(outcome, part, str(exc), permanent=True)
            except ContentError as exc:
                _discard(part)
                content_failures += 1
                if content_failures > self.policy.content_retries:
                    tries = content_failures
                    return self._failed(outcome, part, f"{exc} (after {tries} tries)", True)
                await asyncio.sleep(self.policy.delay(content_failures))
                continue
            except TransientError as exc:
                transient_failures += 1
                if transient_failures > self.policy.retries:
                    reason = f"{exc} (gave up after {outcome.attempts} attempts)"
                    return self._failed(outcome, part, reason, permanent=False, keep=True)
                await asyncio.sleep(self.policy.delay(transient_failures, exc.retry_after))
                continue
            outcome.ok = True
            return outcome

    @staticmethod
    def _failed(
        outcome: Outcome, part: Path, reason: str, permanent: bool, keep: bool = False
    ) -> Outcome:
        if not keep:
            _discard(part)
        outcome.reason, outcome.permanent = reason, permanent
        return outcome

    async def _get(self, t: Transfer, part: Path) -> tuple[int, _Meta, dict[str, hashlib._Hash]]:
        """One GET, appending to a partial file when the server supports Range. Returns the
        offset the transfer resumed at (0 for a fresh start), the validators the file is
        checked against (the response's, or those saved with the partial file it continued)
        and the digests of the file, taken as its bytes arrive rather than read back after."""
        meta = _Meta.load(part, t.url) if part.exists() else None
        offset = part.stat().st_size if meta is not None else 0
        if meta is not None and meta.total is not None and offset > meta.total:
            meta, offset = None, 0
        headers: dict[str, str] = {}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            validator = meta.etag if meta.etag and not meta.etag.startswith("W/") else None
            validator = validator or meta.last_modified
            if validator:
                headers["If-Range"] = validator
        try:
            async with self.slot(t.url), self.session.get(t.url, headers=headers) as r:
                if r.status == 416 and offset:
                    _, total = _content_range(r.headers.get("content-range"))
                    if total == offset:  # the previous process got every byte
                        assert meta is not None  # an offset comes with the partial's validators
                        return offset, meta, await self._hash_partial(t, part, meta)
                    _discard(part)
                    raise TransientError("the server refused to resume the partial file")
                if r.status >= 400:
                    body = await _small_body(r)
                    raise http_error(r.status, r.reason, r.headers, r.url, body)
                if r.status == 206 and offset:
                    start, total = _content_range(r.headers.get("content-range"))
                    if start != offset:
                        _discard(part)
                        raise TransientError(f"asked for byte {offset}, server sent from {start}")
                    assert meta is not None  # loaded with the partial it continues
                    mode = "ab"
                    hashers = await self._hash_partial(t, part, meta)
                else:  # 200: a fresh start (no partial, Range unsupported or file changed)
                    offset, mode = 0, "wb"
                    total = _int(r.headers.get("content-length"))
                    meta = _Meta(
                        url=t.url,
                        etag=r.headers.get("etag"),
                        last_modified=r.headers.get("last-modified"),
                        total=total,
                        checksums=[
                            str(c) + "|" + c.source
                            for c in checksums_from_headers(r.headers, self.trust_etag)
                        ],
                        filename=attachment_name(r.headers.get("content-disposition")),
                    )
                    hashers = _hashers(_algorithms(t, meta))
                # The validators go to disk as the transfer starts when the file is large, so
                # that even a kill -9 leaves a partial file another process can resume; for a
                # small one only when the transfer is cut short (error, Ctrl-C): creating that
                # second file cost as much as the transfer itself on our VM (~0.5 ms a file).
                saved = mode == "ab"
                if not saved and (total is None or total > SAVE_META_ABOVE):
                    meta.save(part)
                    saved = True
                received = offset
                complete = False
                digests = list(hashers.values())
                with open(part, mode) as fh:
                    try:
                        async for block in r.content.iter_chunked(CHUNK):
                            fh.write(block)
                            for h in digests:
                                h.update(block)
                            received += len(block)
                            if self.on_bytes is not None:
                                self.on_bytes(len(block))
                        complete = total is None or received == total
                    finally:
                        fh.flush()
                        if not complete and not saved:
                            meta.save(part)
                if not complete:
                    raise TransientError(f"truncated body: {received} of {total} bytes")
                return offset, meta, hashers
        except NETWORK_ERRORS as exc:
            raise network_error(exc) from exc

    @staticmethod
    async def _hash_partial(t: Transfer, part: Path, meta: _Meta) -> dict[str, hashlib._Hash]:
        """Digests of the bytes a partial file already holds (in a thread when it is large)."""
        hashers = _hashers(_algorithms(t, meta))
        if part.stat().st_size <= INLINE_CHECK:
            _hash_file(part, hashers)
        else:
            await asyncio.to_thread(_hash_file, part, hashers)
        return hashers

    async def _verify(
        self,
        t: Transfer,
        part: Path,
        outcome: Outcome,
        meta: _Meta,
        hashers: dict[str, hashlib._Hash],
    ) -> None:
        """Check the complete .part against everything announced, then give it its final
        name: on the event loop for a file of up to INLINE_CHECK bytes, in a worker thread for
        a larger one (whose checks would stall the other transfers)."""
        outcome.filename = meta.filename
        announced = _announced(t, meta)
        digests = {a: h.hexdigest() for a, h in hashers.items()}
        if part.stat().st_size <= INLINE_CHECK:
            size = _check_and_keep(t, part, meta.total, announced, digests)
        else:
            size = await asyncio.to_thread(_check_and_keep, t, part, meta.total, announced, digests)
        outcome.size, outcome.sha256 = size, digests["sha256"]
        outcome.verified_by.extend(f"{c.algorithm} ({c.source})" for c in announced)


def _pairs(values: Mapping | None) -> list[tuple[str, str]] | None:
    """Form or query fields as pairs; a list value becomes one field per item (ID=a&ID=b)."""
    if values is None:
        return None
    return [
        (key, str(item))
        for key, value in values.items()
        for item in (value if isinstance(value, list | tuple) else [value])
    ]


def _multipart(data: Mapping | None, files: Mapping[str, tuple[str, bytes]]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for key, value in _pairs(data) or []:
        form.add_field(key, value)
    for part, (filename, content) in files.items():
        form.add_field(part, content, filename=filename, content_type="application/octet-stream")
    return form


def _announced(t: Transfer, meta: _Meta) -> list[Checksum]:
    """The checksums a file must match: the caller's, and those its response announced."""
    announced = [t.checksum] if t.checksum else []
    for text in meta.checksums:
        value, _, source = text.partition("|")
        c = Checksum.parse(value, source)
        if c:
            announced.append(c)
    return announced


def _algorithms(t: Transfer, meta: _Meta) -> list[str]:
    return [c.algorithm for c in _announced(t, meta)]


def _check_and_keep(
    t: Transfer,
    part: Path,
    total: int | None,
    announced: list[Checksum],
    digests: dict[str, str],
) -> int:
    """The size of a complete .part that matches what was announced, renamed to t.dest;
    raises ContentError, leaving it in place, when it does not."""
    size = part.stat().st_size
    if t.expected_size is not None and size != t.expected_size:
        raise ContentError(f"got {size} bytes but {t.expected_size} were announced")
    if total is not None and size != total:
        raise ContentError(f"got {size} bytes but Content-Length said {total}")
    for c in announced:
        if digests[c.algorithm] != c.hexdigest:
            raise ContentError(
                f"checksum mismatch: {c.source} announced {c}, "
                f"the file has {c.algorithm}:{digests[c.algorithm]}"
            )
    if t.verify is not None:
        problem = t.verify(part)
        if problem:
            raise ContentError(problem)
    os.replace(part, t.dest)
    _Meta.path(part).unlink(missing_ok=True)
    return size


async def _small_body(response: aiohttp.ClientResponse) -> bytes:
    """The start of an error response's body (its first line goes into the message)."""
    body = b""
    with contextlib.suppress(*NETWORK_ERRORS):
        while len(body) <= 4096 and (block := await response.content.read(4096)):
            body += block
    return body


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _Meta.path(part).unlink(missing_ok=True)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def fits_size(head: bytes, size: int) -> tuple[int | None, str | None]:
    """(bytes the FITS headers promise, problem) from the start of a file of `size` bytes.

    Walks the header-data units as the FITS standard lays them out (2880-byte blocks; data of
    |BITPIX|/8 * GCOUNT * (PCOUNT + NAXIS1 * ... * NAXISn) bytes, padded to a block), reading
    only headers: a hand-written walk because opening the file with astropy costs ~5 ms per
    file, which a download of thousands of files cannot afford.
    """
    pos = 0
    while pos < size:
        cards: dict[str, str] = {}
        while True:
            block = head[pos : pos + 2880]
            if len(block) < 2880:
                if not cards and pos > 0 and block.strip(b"\0 ") == b"":
                    return pos, None  # trailing padding after the last HDU
                return None, f"unreadable FITS file: a header is cut short at byte {size}"
            pos += 2880
            for i in range(0, 2880, 80):
                card = block[i : i + 80].decode("ascii", "replace")
                key = card[:8].strip()
                if key == "END":
                    break
                if card[8:10] == "= ":
                    cards[key] = card[10:].split("/", 1)[0].strip()
            else:
                continue
            break
        try:
            naxis = int(cards.get("NAXIS", "0"))
            bitpix = abs(int(cards["BITPIX"]))
            n = 0 if naxis == 0 else 1
            for k in range(1, naxis + 1):
                n *= int(cards[f"NAXIS{k}"])
            groups = "GROUPS" in cards and cards["GROUPS"] == "T" and cards.get("NAXIS1") == "0"
            if groups:  # random groups: NAXIS1 = 0 is not a dimension
                n = 1
                for k in range(2, naxis + 1):
                    n *= int(cards[f"NAXIS{k}"])
            n = bitpix // 8 * int(cards.get("GCOUNT", "1")) * (int(cards.get("PCOUNT", "0")) + n)
        except (KeyError, ValueError):
            return None, "unreadable FITS header (BITPIX/NAXISn missing or not numbers)"
        pos += (n + 2879) // 2880 * 2880
    return pos, None


def fits_check(path: Path) -> str | None:
    """Sanity check of a FITS file: an HTML error page served with 200, or a body cut short
    under a wrong Content-Length (the headers promise more bytes than arrived), is caught here.
    A missing padding of the last 2880-byte block is tolerated, as most readers do."""
    data = path.read_bytes()
    if data.startswith(b"\x1f\x8b"):  # gzip-compressed FITS: the gzip CRC guards it
        return None
    if not data.startswith(b"SIMPLE  ="):
        snippet = data[:40].decode("latin-1", "replace").strip()
        return f"not a FITS file (starts with {snippet!r})"
    promised, problem = fits_size(data, len(data))
    if problem:
        return problem
    if promised is not None and len(data) < promised - 2879:
        return f"truncated FITS file: its headers promise {promised} bytes, it has {len(data)}"
    return None
