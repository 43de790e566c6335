"""First-run loading of the demo archive for `escape-vo demo` / `make demo`."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import psycopg

from escape_vo.db.migrate import set_setting
from escape_vo.ingest.pipeline import ingest, progress_printer
from escape_vo.settings import Settings

log = logging.getLogger(__name__)


class DemoLoadError(RuntimeError):
    """The demo files did not ingest cleanly: a bug in the generator or a reader."""


def demo_files(settings: Settings, count: int, seed: int) -> Path:
    """Generate the demo FITS files once into DATA_DIR/demo-files (atomically, via a temp dir)."""
    from escape_vo.demo.generate import generate_demo

    dest = settings.data_dir / "demo-files"
    stamp = dest / "demo.json"
    wanted = {"count": count, "seed": seed}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return dest
    tmp = settings.data_dir / "demo-files.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("generating %d demo spectra (seed %d) in %s", count, seed, dest)
    generate_demo(tmp, n_spectra=count, seed=seed)
    (tmp / "demo.json").write_text(json.dumps(wanted))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def load_demo(settings: Settings, url: str, count: int = 2400, seed: int = 42) -> None:
    """Ingest the demo spectra unless this database already holds them."""
    marker = f"{count}:{seed}"
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT value FROM escape.settings WHERE key = 'demo_loaded'").fetchone()
    if row and row[0] == marker:
        log.info("demo spectra already loaded; not ingesting again")
        return
    dest = demo_files(settings, count, seed)
    report = ingest(
        [dest],
        db_url=url,
        store_url=settings.files_url,
        authority=settings.ivo_authority,
        collection="demo",
        progress=progress_printer(),
    )
    log.info(report.summary().splitlines()[0])
    if not report.ok:
        raise DemoLoadError("demo files failed to ingest:\n" + report.summary())
    with psycopg.connect(url) as conn:
        set_setting(conn, "demo_loaded", marker)
