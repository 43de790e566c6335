"""Run translated queries on PostgreSQL and stream the rows as Arrow batches.

The ADBC PostgreSQL driver reads results with binary COPY in C and hands over Arrow record
batches, so no Python code touches individual rows between PostgreSQL and the writers. Every
query runs on a pooled connection that is read-only, limited by statement_timeout and (where the
role exists) reduced to a role that may only SELECT the published tables.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa

from escape_vo.schema.model import Column

log = logging.getLogger(__name__)

READER_ROLE = "escape_tap_reader"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "unsignedByte": pa.int16(),
    "short": pa.int16(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "char": pa.string(),
    "unicodeChar": pa.string(),
}


class QueryError(RuntimeError):
    """PostgreSQL refused or aborted the query; the message is meant for the user."""


def arrow_type(col: Column) -> pa.DataType:
    if col.xtype == "timestamp":
        return pa.timestamp("us")
    base = _ARROW_TYPES[col.datatype]
    if col.arraysize and col.datatype not in ("char", "unicodeChar"):
        return pa.list_(base)
    return base


def target_schema(columns: list[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c)) for c in columns])


class QueryPool:
    """A small thread-safe pool of ADBC connections prepared for untrusted queries."""

    def __init__(self, url: str, size: int = 8, statement_timeout_s: int = 300) -> None:
        self.url = url
        self.size = size
        self.statement_timeout_ms = statement_timeout_s * 1000
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._created = 0
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._use_role: bool | None = None

    def _connect(self) -> adbc.Connection:
        conn = adbc.connect(self.url, autocommit=True)
        with conn.cursor() as cur:
            if self._use_role is None:
                cur.execute(f"SELECT 1 FROM pg_roles WHERE rolname = '{READER_ROLE}'")
                self._use_role = cur.fetchone() is not None
                if not self._use_role:
                    log.warning("role %s missing: TAP queries run as the service user", READER_ROLE)
            if self._use_role:
                cur.execute(f"SET ROLE {READER_ROLE}")
            cur.execute("SET default_transaction_read_only = on")
            cur.execute(f"SET statement_timeout = {self.statement_timeout_ms}")
            cur.execute("SET search_path = pg_catalog")  # every name we emit is qualified
        return conn

    @contextmanager
    def connection(self) -> Iterator[adbc.Connection]:
        self._slots.acquire()
        conn = None
        healthy = False
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            yield conn
            healthy = True
        finally:
            if conn is not None and healthy:
                self._idle.put(conn)
            elif conn is not None:
                with suppress(Exception):
                    conn.close()
            self._slots.release()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _user_message(exc: Exception) -> str:
    text = str(exc)
    if "statement timeout" in text:
        return "the query took longer than the time limit and was cancelled"
    # ADBC prefixes messages with its own status codes; keep PostgreSQL's sentence.
    for marker in ("ERROR:", "FATAL:"):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


class ResultStream:
    """Batches of one running query; iterate once. Closing early cancels the query."""

    def __init__(
        self, pool: QueryPool, sql: str, columns: list[Column], setup: tuple[str, ...] = ()
    ) -> None:
        self.columns = columns
        self.schema = target_schema(columns)
        self._ctx = pool.connection()
        self._conn = self._ctx.__enter__()
        self._cur = self._conn.cursor()
        self._done = False
        try:
            for statement in setup:  # e.g. setseed() for RAND(seed), on the same connection
                self._cur.execute(statement)
            self._cur.execute(sql)
            self._reader = self._cur.fetch_record_batch()
            # Read ahead one batch so errors raised at the start become a clean HTTP 400.
            self._first: pa.RecordBatch | None = self._next()
        except Exception as exc:
            self._fail()
            raise QueryError(_user_message(exc)) from exc

    def _next(self) -> pa.RecordBatch | None:
        try:
            batch = self._reader.read_next_batch()
        except StopIteration:
            return None
        return self._conform(batch)

    def _conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if batch.schema.equals(self.schema, check_metadata=False):
            return batch
        arrays = []
        for array, field in zip(batch.columns, self.schema, strict=True):
            arrays.append(array if array.type == field.type else array.cast(field.type))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        """Batches, read one ahead in a thread: ADBC decodes the next batch (in C, without the
        GIL) while the caller encodes the current one, so reading and writing overlap."""
        stop = threading.Event()
        ahead: queue.Queue = queue.Queue(maxsize=2)
        producer = threading.Thread(target=self._produce, args=(ahead, stop), daemon=True)
        try:
            if self._first is not None:
                first, self._first = self._first, None
                producer.start()
                yield first
                while (item := ahead.get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    yield item
                producer.join()
            self._finish()
        except GeneratorExit:
            self._abort(stop, ahead, producer)
            raise
        except adbc_driver_manager.Error as exc:
            self._abort(stop, ahead, producer)
            raise QueryError(_user_message(exc)) from exc
        except Exception:
            self._abort(stop, ahead, producer)
            raise

    def _produce(self, ahead: queue.Queue, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                batch = self._next()
                self._put(ahead, stop, batch)
                if batch is None:
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(ahead, stop, exc)

    @staticmethod
    def _put(ahead: queue.Queue, stop: threading.Event, item: object) -> None:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _abort(self, stop: threading.Event, ahead: queue.Queue, producer: threading.Thread) -> None:
        stop.set()
        with suppress(Exception):
            self._conn.adbc_cancel()
        if producer.is_alive():
            producer.join(timeout=30)
        self._fail()

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._cur.close()
            self._ctx.__exit__(None, None, None)

    def _fail(self) -> None:
        """Cancel the query and drop the connection (its state is unknown now)."""
        if self._done:
            return
        self._done = True
        with suppress(Exception):
            self._conn.adbc_cancel()
        with suppress(Exception):
            self._cur.close()
        err = RuntimeError("query aborted")
        self._ctx.__exit__(type(err), err, None)

    def close(self) -> None:
        self._fail()
