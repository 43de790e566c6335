"""Original files kept byte for byte, addressed by their SHA-256.

Content addressing makes ingest idempotent and crash-safe: a file written before its database
row committed is simply found again (same key) on the next run, and two names for the same bytes
share one copy. fsspec keeps the door open to S3 and friends without changing callers.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath

import fsspec


def suffix_of(name: str) -> str:
    """The file-type suffix we keep on the stored copy ('.fits', '.fits.gz', ...)."""
    lower = name.lower()
    for suffix in (".fits.gz", ".fit.gz", ".fts.gz", ".fits", ".fit", ".fts", ".gz"):
        if lower.endswith(suffix):
            return suffix
    return ""


class FileStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, self.root = fsspec.core.url_to_fs(url)
        self._local = self.fs.protocol in ("file", ("file", "local"), "local") or (
            isinstance(self.fs.protocol, tuple) and "file" in self.fs.protocol
        )
        self._dirs: set[str] = set()  # directories known to exist (mkdir is slow)
        if self._local:
            os.makedirs(self.root, exist_ok=True)

    @staticmethod
    def key_for(sha256: str, name: str) -> str:
        """256 fan-out directories: creating directories is what costs on most file systems,
        and even 10 million files make only ~40,000 per directory."""
        return f"{sha256[:2]}/{sha256}{suffix_of(name)}"

    def path(self, key: str) -> str:
        return str(PurePosixPath(self.root) / key)

    def exists(self, key: str) -> bool:
        return self.fs.exists(self.path(key))

    def put(self, key: str, data: bytes, durable: bool = True) -> None:
        """Write the file; durable=True fsyncs it before returning.

        Batch writers pass durable=False and call `sync()` once before committing the rows that
        point at the files (one sync per batch instead of one fsync per file). A crash mid-write
        can leave a short file under the key, never a row pointing at it; the next put of the
        same bytes sees the wrong size and writes the file again.
        """
        target = self.path(key)
        parent = str(PurePosixPath(target).parent)
        if self._local:
            try:
                if os.stat(target).st_size == len(data):
                    return
            except FileNotFoundError:
                pass
            if parent not in self._dirs:
                os.makedirs(parent, exist_ok=True)
                self._dirs.add(parent)
            with open(target, "wb") as fh:
                fh.write(data)
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
            return
        if self.fs.exists(target) and self.fs.size(target) == len(data):
            return
        self.fs.makedirs(parent, exist_ok=True)
        with self.fs.open(target, "wb") as fh:  # object stores show a PUT only when complete
            fh.write(data)

    def sync(self) -> None:
        """Make every file written so far durable (object stores are durable on PUT)."""
        if self._local:
            os.sync()

    def open(self, key: str, mode: str = "rb"):
        return self.fs.open(self.path(key), mode)

    def size(self, key: str) -> int:
        return int(self.fs.size(self.path(key)))
