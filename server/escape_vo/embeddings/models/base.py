"""The interface every embedding model implements, and what it hands back.

A model is fitted on a Dataset (preprocessed spectra), embeds Datasets into vectors of at most
VECTOR_DIM dimensions with a reconstruction error per spectrum, and turns itself into bytes and
back. Everything else (versions, storage, search, the map) is the same for all models.
"""

from __future__ import annotations

import io
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from escape_vo.embeddings.grid import Grid
from escape_vo.embeddings.preprocess import Dataset

VECTOR_DIM = 16  # every vector is stored with 16 floats (zero-padded): one HNSW index layout


@dataclass
class Embedding:
    vectors: np.ndarray  # float32 (n, latent_dim)
    anomaly: np.ndarray  # float32 (n,): masked mean squared residual of the normalised flux
    z_model: np.ndarray | None = None  # float32 (n,), NaN where not estimated


@dataclass
class FitReport:
    """What a training run tells about itself (stored as JSON in embeddings.models.metrics)."""

    history: list[float] = field(default_factory=list)  # loss per epoch / iteration
    extra: dict[str, Any] = field(default_factory=dict)


class EmbeddingModel(ABC):
    kind: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]

    def __init__(self, grid: Grid, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            known = ", ".join(sorted(self.defaults))
            raise ValueError(f"{self.kind}: unknown parameters {sorted(unknown)} (known: {known})")
        self.grid = grid
        self.params = {**self.defaults, **params}
        if not 1 <= self.latent_dim <= VECTOR_DIM:
            raise ValueError(f"latent_dim must be between 1 and {VECTOR_DIM}")

    @property
    def latent_dim(self) -> int:
        return int(self.params["latent_dim"])

    @abstractmethod
    def fit(self, data: Dataset, seed: int, progress: bool = False) -> FitReport:
        """Fit on `data`, reproducibly from `seed`."""

    @abstractmethod
    def embed(self, data: Dataset) -> Embedding:
        """Vectors and reconstruction errors of `data` (deterministic)."""

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """The fitted arrays."""

    @abstractmethod
    def _load_state(self, state: dict[str, np.ndarray]) -> None: ...

    def to_bytes(self) -> bytes:
        """A .npz of the fitted arrays plus the parameters: no pickle, safe to load."""
        buf = io.BytesIO()
        meta = {"kind": self.kind, "grid": self.grid.name, "params": self.params}
        np.savez(buf, __meta__=np.array(json.dumps(meta)), **self._state())
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, grid: Grid) -> EmbeddingModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = json.loads(str(npz["__meta__"]))
            state = {k: npz[k] for k in npz.files if k != "__meta__"}
        model = cls(grid, **meta["params"])
        model._load_state(state)
        return model


def masked_mse(flux: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """Mean squared residual over the covered bins of each spectrum."""
    mask = np.isfinite(flux)
    resid = np.where(mask, flux - recon, 0.0)
    return ((resid**2).sum(1) / np.maximum(mask.sum(1), 1)).astype(np.float32)
