"""Quality of the embeddings on demo spectra of known class: kNN class agreement and anomalies.

2,400 demo spectra (seed 42) are ingested into a scratch database; each model (pca, autoencoder,
spherical) is trained with seed 0 (or BENCH_EMBED_SEED) and applied. For every spectrum its 10
nearest neighbours come from the service's own search (the HNSW index, the SQL of
/embeddings/similar); the agreement is the fraction of neighbours whose true class (truth.json
obj_class, not the often empty archive.spectra.target_class) equals the spectrum's. The
injected odd spectra (truth `anomalous`) are ranked by anomaly score
(docs/operator/embeddings.md): the target is all of them in the top 1 %. Also reported:
held-out reconstruction error, training and apply time.

BENCH_EMBED_SPECTRA changes the number of spectra, BENCH_EMBED_MODELS the models (comma list),
BENCH_EMBED_EPOCHS the epochs of the autoencoders, BENCH_EMBED_DEMO_SEED the seed of the demo
archive (another seed is another sky, other objects and other injected anomalies),
BENCH_EMBED_SEED the models' training seed (another draw of the same models on the same sky).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg

from bench.common import CACHE, scratch_database

N_SPECTRA = int(os.environ.get("BENCH_EMBED_SPECTRA", "2400"))
MODELS = os.environ.get("BENCH_EMBED_MODELS", "pca,autoencoder,spherical").split(",")
EPOCHS = os.environ.get("BENCH_EMBED_EPOCHS")
DEMO_SEED = int(os.environ.get("BENCH_EMBED_DEMO_SEED", "42"))
TRAIN_SEED = int(os.environ.get("BENCH_EMBED_SEED", "0"))
K = 10


def demo_files(n: int, seed: int = 42) -> Path:
    from escape_vo.demo.generate import generate_demo

    dest = CACHE / f"embed-demo-{n}-{seed}"
    if not (dest / "truth.json").exists():
        shutil.rmtree(dest, ignore_errors=True)
        generate_demo(dest, n_spectra=n, seed=seed)
    return dest


@contextlib.contextmanager
def ingested_demo(n: int, seed: int) -> Iterator[tuple[str, str, dict[int, dict]]]:
    """A scratch database with the demo archive of n spectra (sky `seed`) ingested: its URL,
    its file store's and the generator's truth by spectrum_id."""
    from escape_vo.ingest.pipeline import ingest

    files = demo_files(n, seed)
    truth_list = json.loads((files / "truth.json").read_text())
    with scratch_database() as (url, work):
        store = str(work / "files")
        ingest([files], db_url=url, store_url=store, authority="bench.example", collection="demo")
        with psycopg.connect(url) as conn:
            truth = truth_by_spectrum(conn, truth_list)
        yield url, store, truth


def truth_by_spectrum(conn: psycopg.Connection, truth: list[dict]) -> dict[int, dict]:
    """spectrum_id -> truth entry, matched on file name and index (names are unique)."""
    by_key = {(Path(t["path"]).name, t["file_index"]): t for t in truth}
    rows = conn.execute("SELECT spectrum_id, original_name, file_index FROM archive.spectra")
    return {sid: by_key[(name, idx)] for sid, name, idx in rows if (name, idx) in by_key}


def evaluate(conn: psycopg.Connection, model: str, truth: dict[int, dict], k: int = K) -> dict:
    """kNN class agreement through the service's search SQL, and anomaly ranks."""
    from escape_vo.embeddings.search import neighbours_sql

    rows = conn.execute(
        "SELECT e.spectrum_id, e.publisher_did, e.anomaly_score FROM "
        "embeddings.spectrum_embeddings AS e WHERE e.model = %s ORDER BY e.spectrum_id",
        (model,),
    ).fetchall()
    agree, per_class, per_instrument = [], {}, {}
    conn.execute("SET hnsw.ef_search = 100")
    conn.execute("SET hnsw.iterative_scan = strict_order")
    for sid, did, _ in rows:
        found = conn.execute(neighbours_sql(model, did, k)).fetchall()
        mine = truth[sid]["obj_class"]
        share = float(np.mean([truth[r[1]]["obj_class"] == mine for r in found]))
        agree.append(share)
        per_class.setdefault(mine, []).append(share)
        per_instrument.setdefault(truth[sid]["instrument"], []).append(share)
    return {
        "knn_agreement": round(float(np.mean(agree)), 4),
        "per_class": {c: round(float(np.mean(v)), 4) for c, v in sorted(per_class.items())},
        "per_instrument": {
            i: round(float(np.mean(v)), 3) for i, v in sorted(per_instrument.items())
        },
        **anomaly_ranks([(r[0], r[2]) for r in rows], truth),
    }


def anomaly_ranks(scored: list[tuple[int, float]], truth: dict[int, dict]) -> dict:
    """Where the injected odd spectra rank when (spectrum_id, score) are sorted by score."""
    scores = np.array([s for _, s in scored], dtype=float)
    anomalous = np.array([truth[sid]["anomalous"] for sid, _ in scored])
    order = np.argsort(-scores, kind="stable")
    ranks = np.flatnonzero(anomalous[order]) + 1  # 1 = most anomalous
    top = max(1, int(np.ceil(0.01 * len(scored))))
    return {
        "anomaly_ranks": [int(r) for r in ranks],
        "anomaly_kinds": [truth[scored[i][0]]["anomaly_kind"] for i in order[ranks - 1]],
        "anomalies_in_top_1pct": int((ranks <= top).sum()),
        "anomalies_in_top_5pct": int((ranks <= 5 * top).sum()),
        "n_anomalies": int(anomalous.sum()),
        "top_1pct": top,
    }


def unseen_share(scored: list[tuple[int, float]], truth: dict[int, dict], seen: set[int]) -> dict:
    """How much of the top 5 % of ordinary spectra the model never trained on, against their
    share of the archive: a score fair to new spectra puts them there as often as the others."""
    normal = [(sid, s) for sid, s in scored if not truth[sid]["anomalous"]]
    top = sorted(normal, key=lambda r: -r[1])[: max(1, int(np.ceil(0.05 * len(scored))))]
    return {
        "unseen_share": round(float(np.mean([sid not in seen for sid, _ in normal])), 4),
        "unseen_share_top_5pct": round(float(np.mean([sid not in seen for sid, _ in top])), 4),
    }


def _unseen(q: dict) -> str:
    if "unseen_share" not in q:
        return "too few held-out spectra to map new ones (all scored alike); "
    return (
        f"spectra it never saw: {q['unseen_share']:.0%} of the archive, "
        f"{q['unseen_share_top_5pct']:.0%} of its top 5 %; "
    )


def combined_anomalies(conn: psycopg.Connection, first: str, second: str, truth: dict) -> dict:
    """The sum of two models' anomaly scores (the published view's ADQL example does the same)."""
    rows = conn.execute(
        "SELECT a.spectrum_id, a.anomaly_score + b.anomaly_score "
        "FROM embeddings.spectrum_embeddings AS a JOIN embeddings.spectrum_embeddings AS b "
        "ON b.spectrum_id = a.spectrum_id AND b.model = %s WHERE a.model = %s "
        "ORDER BY a.spectrum_id",
        (second, first),
    ).fetchall()
    return anomaly_ranks(rows, truth)


def run() -> dict:
    from escape_vo.embeddings.apply import apply
    from escape_vo.embeddings.store import load_model
    from escape_vo.embeddings.train import train
    from escape_vo.filestore import FileStore

    results: dict = {"n_spectra": N_SPECTRA, "demo_seed": DEMO_SEED, "train_seed": TRAIN_SEED,
                     "k": K, "models": {}}  # fmt: skip
    report = []
    with ingested_demo(N_SPECTRA, DEMO_SEED) as (url, store, truth):
        for name in MODELS:
            params = {"epochs": int(EPOCHS)} if EPOCHS and name != "pca" else {}
            t = time.perf_counter()
            rec = train(url, store, name, seed=TRAIN_SEED, params=params)
            train_s = time.perf_counter() - t
            t = time.perf_counter()
            applied = apply(url, store, name)
            apply_s = time.perf_counter() - t
            with psycopg.connect(url) as conn:
                q = evaluate(conn, name, truth)
                scored = conn.execute(
                    "SELECT spectrum_id, anomaly_score FROM embeddings.spectrum_embeddings "
                    "WHERE model = %s",
                    (name,),
                ).fetchall()
            fitted = load_model(FileStore(store), rec)
            # a model keeps the ids it was calibrated on only when it had enough held-out
            # spectra to put new ones on the training scale (MIN_UNSEEN); else all score alike
            if fitted.seen is not None:
                q.update(unseen_share(scored, truth, set(fitted.seen.tolist())))
            q.update(
                version=rec.version, test_error=rec.test_error, train_error=rec.train_error,
                n_train=rec.n_train, n_test=rec.n_test, train_seconds=round(train_s, 1),
                apply_seconds=round(apply_s, 1), embedded=applied.embedded,
            )  # fmt: skip
            results["models"][name] = q
            report.append(
                f"{name}: kNN class agreement (k={K}) {q['knn_agreement']:.3f} "
                f"{q['per_class']}; held-out reconstruction error {rec.test_error:.4g}; "
                f"anomalies in top 1% ({q['top_1pct']}): {q['anomalies_in_top_1pct']}/"
                f"{q['n_anomalies']} (top 5%: {q['anomalies_in_top_5pct']}), "
                f"ranks {q['anomaly_ranks']}; {_unseen(q)}train {train_s:.0f} s"
            )
        if {"autoencoder", "spherical"} <= set(results["models"]):
            with psycopg.connect(url) as conn:
                both = combined_anomalies(conn, "autoencoder", "spherical", truth)
            results["autoencoder+spherical"] = both
            report.append(
                f"autoencoder+spherical anomaly scores summed: top 1%: "
                f"{both['anomalies_in_top_1pct']}/{both['n_anomalies']} (top 5%: "
                f"{both['anomalies_in_top_5pct']}), ranks {both['anomaly_ranks']}"
            )
    best = max(results["models"].items(), key=lambda kv: kv[1]["knn_agreement"])
    report.append(f"best: {best[0]} {best[1]['knn_agreement']:.3f} (target >= 0.95)")
    results["report"] = report
    return results


if __name__ == "__main__":
    for line in run()["report"]:
        print(line)
