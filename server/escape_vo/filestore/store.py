"""Original files kept byte for byte, addressed by their SHA-256.

Content addressing makes ingest idempotent and crash-safe: a file written before its database
row committed is simply found again (same key) on the next run, and two names for the same bytes
share one copy. fsspec keeps the door open to S3 and friends without changing callers.
"""

from __future__ import annotations

import os
import uuid
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
        if self._local:
            os.makedirs(self.root, exist_ok=True)

    @staticmethod
    def key_for(sha256: str, name: str) -> str:
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}{suffix_of(name)}"

    def path(self, key: str) -> str:
        return str(PurePosixPath(self.root) / key)

    def exists(self, key: str) -> bool:
        return self.fs.exists(self.path(key))

    def put(self, key: str, data: bytes) -> None:
        """Write atomically: a reader never sees a half-written file, even after a crash."""
        target = self.path(key)
        if self.fs.exists(target) and self.fs.size(target) == len(data):
            return
        parent = str(PurePosixPath(target).parent)
        self.fs.makedirs(parent, exist_ok=True)
        if self._local:
            tmp = f"{target}.{uuid.uuid4().hex}.part"
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        else:  # object stores make a PUT visible only when complete
            with self.fs.open(target, "wb") as fh:
                fh.write(data)

    def open(self, key: str, mode: str = "rb"):
        return self.fs.open(self.path(key), mode)

    def size(self, key: str) -> int:
        return int(self.fs.size(self.path(key)))
