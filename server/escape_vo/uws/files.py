"""The results area: one directory per job under DATA_DIR/results, written atomically.

Every process that runs or serves jobs must see the same directory (one machine, or a shared
volume such as the `files` volume of docker-compose). A result is written to a `.part` file and
renamed when complete, so a reader never sees half a result and a crashed worker leaves at most
a `.part` file that the next run overwrites.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

_JOB_ID = re.compile(r"^[a-z0-9]{8,64}$")
INPUTS = "inputs"  # files a job was created with (uploads); removed once the job has ended


def results_root(data_dir: Path) -> Path:
    return Path(data_dir) / "results"


def job_dir(data_dir: Path, job_id: str) -> Path:
    if not _JOB_ID.match(job_id):  # never build a path from an unchecked URL segment
        raise ValueError(f"not a job id: {job_id!r}")
    return results_root(data_dir) / job_id


def remove_job_dir(data_dir: Path, job_id: str) -> None:
    shutil.rmtree(job_dir(data_dir, job_id), ignore_errors=True)


def remove_inputs(data_dir: Path, job_id: str) -> None:
    shutil.rmtree(job_dir(data_dir, job_id) / INPUTS, ignore_errors=True)


class AtomicFile:
    """A file that appears under its name only when closed successfully (write, fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # a name of its own: after a lost lease two workers may briefly write the same result
        self.part = path.with_name(f"{path.name}.{secrets.token_hex(4)}.part")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.part, "wb")  # noqa: SIM115 - closed in commit/abort
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._fh.write(chunk)
        self.size += len(chunk)

    def commit(self) -> int:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self.part, self.path)
        return self.size

    def abort(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self.part.unlink(missing_ok=True)
