"""Similar spectra to a file of one's own: POST /embeddings/similar latency, against its parts.

400 demo spectra are ingested, the PCA and the autoencoder trained (few epochs: the latency of
embedding a spectrum does not depend on how well a model is trained) and applied, and a real
`escape-vo serve` process answers. For 20 single-spectrum files of the archive (every instrument
the demo has) and each model:

* upload: p50 of POST /embeddings/similar with the file (k=10) over HTTP, each file twice
  after one request that loads the model;
* by ID: p50 of GET /embeddings/similar?ID= for the same spectra (the search alone);
* floor: the same steps in one process without HTTP, p50 of their sum: reading the file with
  the ingest readers, resampling and embedding it (model already loaded), the HNSW search.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import httpx
import psycopg

from bench.embeddings_quality import ingested_demo
from bench.tapserver import _free_port, _wait

N_SPECTRA = int(os.environ.get("BENCH_UPLOAD_SPECTRA", "400"))
N_FILES = 20
MODELS = ("pca", "autoencoder")
PARAMS = {"pca": {"iterations": 4, "critic_epochs": 2},
          "autoencoder": {"epochs": 2, "critic_epochs": 2}}  # fmt: skip


def _files(url: str, store: str) -> list[tuple[str, str, bytes]]:
    """(publisher DID, file name, bytes) of N_FILES single-spectrum files, instruments mixed."""
    from escape_vo.filestore import FileStore

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT publisher_did, original_name, file_path FROM (SELECT s.*, row_number() "
            "OVER (PARTITION BY instrument ORDER BY spectrum_id) AS r FROM archive.spectra AS s "
            "WHERE file_path IN (SELECT file_path FROM archive.spectra GROUP BY file_path "
            "HAVING count(*) = 1)) AS t ORDER BY r, instrument LIMIT %s",
            (N_FILES,),
        ).fetchall()
    fs = FileStore(store)
    out = []
    for did, name, path in rows:
        with fs.open(path) as fh:
            out.append((did, name, fh.read()))
    return out


def _floor(url: str, store: str, model: str, files: list) -> dict:
    from escape_vo.embeddings.example import (
        cached_model,
        current_record,
        embed_example,
        pick_spectrum,
    )
    from escape_vo.embeddings.search import nearest_to_vector

    parts: dict[str, list[float]] = {"read": [], "embed": [], "search": [], "total": []}
    with psycopg.connect(url) as conn:
        record = current_record(conn, model)
        loaded = cached_model(store, record)
        for _ in range(2):
            for _, name, data in files:
                t0 = time.perf_counter()
                spectrum = pick_spectrum(data, name, None)
                t1 = time.perf_counter()
                e = embed_example(loaded, record, spectrum, spectrum.redshift)
                t2 = time.perf_counter()
                nearest_to_vector(conn, model, e.vector, 10)
                t3 = time.perf_counter()
                for key, value in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                    parts[key].append(value)
    return {k: statistics.median(v) * 1000 for k, v in parts.items()}


def run() -> dict:
    from escape_vo.embeddings.apply import apply
    from escape_vo.embeddings.train import train

    results: dict = {"n_spectra": N_SPECTRA, "n_files": N_FILES, "models": {}}
    report = []
    with ingested_demo(N_SPECTRA, 42) as (url, store, _):
        for model in MODELS:
            train(url, store, model, seed=0, params=PARAMS[model])
            apply(url, store, model)
        files = _files(url, store)
        port = _free_port()
        env = dict(os.environ, DATABASE_URL=url, PORT=str(port), FILE_STORE_URL=store)
        proc = subprocess.Popen(
            [sys.executable, "-m", "escape_vo.cli", "serve", "--workers", "1"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(base, proc)
            with httpx.Client(timeout=120) as client:
                for model in MODELS:
                    endpoint = f"{base}/embeddings/similar"
                    did, name, data = files[0]
                    form = {"k": "10", "model": model}
                    client.post(endpoint, data=form, files={"SPECTRUM": (name, data)})
                    upload, by_id = [], []
                    for _ in range(2):
                        for did, name, data in files:
                            t = time.perf_counter()
                            r = client.post(endpoint, data=form, files={"SPECTRUM": (name, data)})
                            upload.append(time.perf_counter() - t)
                            r.raise_for_status()
                            t = time.perf_counter()
                            r = client.get(endpoint, params={"ID": did, "k": 10, "model": model})
                            by_id.append(time.perf_counter() - t)
                            r.raise_for_status()
                    floor = _floor(url, store, model, files)
                    q = {
                        "upload_p50_ms": round(statistics.median(upload) * 1000, 2),
                        "by_id_p50_ms": round(statistics.median(by_id) * 1000, 2),
                        "floor_ms": {k: round(v, 2) for k, v in floor.items()},
                        "mean_file_kb": round(sum(len(f[2]) for f in files) / len(files) / 1e3),
                    }
                    results["models"][model] = q
                    report.append(
                        f"{model}: upload p50 {q['upload_p50_ms']:.1f} ms = "
                        f"{q['upload_p50_ms'] / floor['total']:.2f}x its floor "
                        f"{floor['total']:.1f} ms in one process (read {floor['read']:.1f}, "
                        f"resample + embed {floor['embed']:.1f}, search {floor['search']:.1f}); "
                        f"by ID {q['by_id_p50_ms']:.1f} ms; files {q['mean_file_kb']} kB on "
                        "average"
                    )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    results["report"] = report
    return results
