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
    """Ingest the demo spectra unless this database already holds them, and give them
    embeddings so that similar-spectra search, the latent map and anomaly scores work."""
    marker = f"{count}:{seed}"
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT value FROM escape.settings WHERE key = 'demo_loaded'").fetchone()
    if row and row[0] == marker:
        log.info("demo spectra already loaded; not ingesting again")
    else:
        _ingest_demo(settings, url, count, seed, marker)
    _embed_demo(settings, url)


def _embed_demo(settings: Settings, url: str) -> None:
    """Train and apply the masked PCA (about 90 s on two cores, most of it its anomaly
    critic) when no model exists yet; the autoencoders (minutes more) are left to
    `escape-vo embed train`, as the docs say."""
    from escape_vo.embeddings.apply import apply, trained_names
    from escape_vo.embeddings.train import train

    if trained_names(url):
        return
    log.info("training the masked PCA embedding of the demo spectra (seed 0)")
    train(url, settings.files_url, "pca", seed=0)
    report = apply(url, settings.files_url, "pca")
    log.info("embedded %d demo spectra; train the autoencoders with "
             "`escape-vo embed train --model autoencoder`", report.embedded)  # fmt: skip


def _ingest_demo(settings: Settings, url: str, count: int, seed: int, marker: str) -> None:
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
