"""`escape-vo embed train`: fit a new version of a model and record how good it is.

The spectra are split by the seed into a training and a held-out set; the seed also drives
every random generator of the fit, so training again with the same seed, data and parameters
gives the same model and the same metrics (on the same machine: docs/operator/embeddings.md).

A network's quality depends on its initial weights: on the demo archive the spherical model's
kNN agreement ranged over 0.86-0.93 with the seed, and a high held-out error gave the poor draw
away. With `tries`, several versions are fitted from seeds seed, seed + 1, ... on one split
(`split_seed`, by default the first seed), so their held-out errors are measured on the same
spectra and can be compared; the one with the lowest is named best.
"""

from __future__ import annotations

import platform
import time
from typing import Any

import numpy as np
import psycopg

from escape_vo.embeddings.grid import DEFAULT_GRID, Grid
from escape_vo.embeddings.models import MODELS
from escape_vo.embeddings.preprocess import dataset_ids, load_dataset, preprocess
from escape_vo.embeddings.store import ModelRecord, save_model
from escape_vo.filestore import FileStore

MIN_SPECTRA = 10


def train(db_url: str, store_url: str, name: str, **options: Any) -> ModelRecord:
    """Train one version of model `name` on the spectra matching `where` (SQL on s =
    archive.spectra); `options` as for train_versions, without `tries`."""
    (record,) = train_versions(db_url, store_url, name, **options)
    return record


def train_versions(
    db_url: str,
    store_url: str,
    name: str,
    *,
    seed: int = 0,
    tries: int = 1,
    params: dict[str, Any] | None = None,
    where: str | None = None,
    test_fraction: float = 0.1,
    grid: Grid = DEFAULT_GRID,
    progress: bool = False,
    workers: int | None = None,
    split_seed: int | None = None,
) -> list[ModelRecord]:
    """`tries` versions of model `name`, fitted with seeds seed, seed + 1, ... on the split of
    `split_seed` (default: seed), in that order; best_of() picks among them."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    if not 0 <= test_fraction < 1:
        raise ValueError("test_fraction must be in [0, 1)")
    if tries < 1:
        raise ValueError("tries must be at least 1")
    if tries > 1 and test_fraction == 0:
        raise ValueError("several tries are compared by their held-out error: test_fraction > 0")
    split_seed = seed if split_seed is None else split_seed
    model = MODELS[name](grid, **(params or {}))
    preprocess(db_url, store_url, grid, workers=workers, progress=progress)
    ids = dataset_ids(db_url, grid, where or "TRUE")
    if len(ids) < MIN_SPECTRA:
        raise ValueError(
            f"only {len(ids)} usable spectra match; need at least {MIN_SPECTRA} to train"
        )
    rng = np.random.default_rng(split_seed)
    order = rng.permutation(len(ids))
    n_test = round(test_fraction * len(ids))
    test_idx, train_idx = np.sort(order[:n_test]), np.sort(order[n_test:])
    cap = model.params.get("max_train")
    if cap and len(train_idx) > int(cap):
        train_idx = np.sort(rng.choice(train_idx, int(cap), replace=False))
    # only the chosen spectra are read into memory (a million spectra on the grid are 4 GB)
    data = load_dataset(db_url, grid, where or "TRUE", keep=ids[np.union1d(train_idx, test_idx)])
    train_set = data.subset(np.flatnonzero(np.isin(data.spectrum_id, ids[train_idx])))
    test_set = data.subset(np.flatnonzero(np.isin(data.spectrum_id, ids[test_idx])))
    records = []
    for k in range(tries):
        if k:
            model = MODELS[name](grid, **(params or {}))
        started = time.perf_counter()
        report = model.fit(train_set, seed=seed + k, progress=progress)
        report.extra.update(model.calibrate_unseen(test_set))
        seconds = time.perf_counter() - started
        train_error = float(np.mean(model.errors(train_set)))
        test_error = float(np.mean(model.errors(test_set))) if n_test else None
        metrics = {
            "history": [round(h, 8) for h in report.history],
            **report.extra,
            "rest_frame_fraction": round(float(train_set.rest_frame.mean()), 4),
            "train_seconds": round(seconds, 2),
            "split_seed": split_seed,
            "software": _software(),
        }
        with psycopg.connect(db_url) as conn:
            records.append(
                save_model(
                    conn,
                    FileStore(store_url),
                    name,
                    model,
                    selection=where or "all",
                    seed=seed + k,
                    n_train=len(train_set),
                    n_test=len(test_set),
                    train_error=train_error,
                    test_error=test_error,
                    metrics=metrics,
                )
            )
    return records


def best_of(records: list[ModelRecord]) -> ModelRecord:
    """The version with the lowest held-out reconstruction error (the first if none has one)."""
    scored = [r for r in records if r.test_error is not None]
    return min(scored, key=lambda r: r.test_error) if scored else records[0]


def _software() -> dict[str, str]:
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:
        pass
    return versions
