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

from escape_vo.embeddings import anomaly
from escape_vo.embeddings.critic import Critic
from escape_vo.embeddings.grid import CLIP, Grid
from escape_vo.embeddings.preprocess import Dataset

VECTOR_DIM = 16  # every vector is stored with 16 floats (zero-padded): one HNSW index layout
CALIBRATE_ON = 20_000  # training spectra the anomaly score is calibrated on (and critic trained)


@dataclass
class Embedding:
    vectors: np.ndarray  # float32 (n, latent_dim)
    error: np.ndarray  # float32 (n,): masked mean squared residual of the normalised flux
    anomaly: np.ndarray  # float32 (n,): robust z-score of the departure (embeddings.anomaly)
    z_model: np.ndarray | None = None  # float32 (n,), NaN where not estimated


@dataclass
class FitReport:
    """What a training run tells about itself (stored as JSON in embeddings.models.metrics)."""

    history: list[float] = field(default_factory=list)  # loss per epoch / iteration
    extra: dict[str, Any] = field(default_factory=dict)


class EmbeddingModel(ABC):
    kind: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]
    # median and MAD of the training spectra's departures (anomaly.calibrate), set by fit;
    # None for versions saved before the anomaly score existed: their score is the error.
    calibration: np.ndarray | None = None
    critic: Critic | None = None  # None when trained with critic_epochs=0 or before critics

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
    def errors(self, data: Dataset) -> np.ndarray:
        """embed(data).error alone: what training reports, without the vectors and the anomaly
        score (the critic and the response fit would be wasted on the whole training set)."""

    @abstractmethod
    def reconstruct(self, data: Dataset) -> np.ndarray:
        """The model's rebuild of each spectrum on the grid (what embed compares it with)."""

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """The fitted arrays."""

    @abstractmethod
    def _load_state(self, state: dict[str, np.ndarray]) -> None: ...

    def _fit_anomaly(self, data: Dataset, seed: int, progress: bool = False) -> dict[str, Any]:
        """After fitting: remember how far training spectra depart from their reconstructions
        and train the critic (embeddings.critic) on up to CALIBRATE_ON of them."""
        if len(data) > CALIBRATE_ON:
            data = data.subset(np.linspace(0, len(data) - 1, CALIBRATE_ON, dtype=int))
        flux = np.clip(data.flux, *CLIP)
        recon = self.reconstruct(data)
        self.calibration = anomaly.calibrate(*self._deviations(flux, recon, data.rest_frame))
        self.critic = None
        epochs = int(self.params.get("critic_epochs", 0))
        if epochs <= 0 or len(data) < 2:
            return {}

        critic = Critic()
        history = critic.fit(
            flux, data.rest_frame, recon, self._rebuild, seed, epochs, progress=progress
        )
        self.critic = critic
        return {"critic_history": [round(h, 6) for h in history]}

    def _rebuild(self, flux: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """reconstruct() of bare arrays: the critic's damaged spectra, partly hidden ones."""
        n = len(flux)
        unknown = np.full(n, np.nan, np.float32)
        return self.reconstruct(Dataset(np.arange(n), flux, rest, unknown))

    def _deviations(
        self, flux: np.ndarray, recon: np.ndarray, rest: np.ndarray, unexplained: bool = True
    ) -> tuple[np.ndarray, ...]:
        """anomaly.deviations, with the rebuild of each spectrum's strongest feature hidden
        (skipped, `unexplained` false, for a model calibrated before that statistic)."""
        hidden, window = anomaly.hide_strongest(flux)
        context = self._rebuild(hidden, rest) if unexplained else None
        return anomaly.deviations(flux, recon, window, context)

    def _anomaly(
        self, data: Dataset, flux: np.ndarray, recon: np.ndarray, error: np.ndarray
    ) -> np.ndarray:
        """The departure from the reconstruction and the critic's verdict, combined as
        Stouffer's z = (z1 + z2) / sqrt(2), or the negative-flux significance measured at
        preprocessing where that is larger (it is exactly 0 for nearly every spectrum, which
        then keeps its negative z if it has one). All are z-scores: 0 typical, 3 rare."""
        if self.calibration is None:
            return error
        departures = self._deviations(
            flux, recon, data.rest_frame, anomaly.uses_unexplained(self.calibration)
        )
        z = anomaly.score(*departures, self.calibration)
        if self.critic is not None:
            z = (z + self.critic.score(flux, recon)) / np.sqrt(2.0)
        negative = data.negative_z
        return np.where((negative > 0) & (negative > z), negative, z).astype(np.float32)

    def to_bytes(self) -> bytes:
        """A .npz of the fitted arrays plus the parameters: no pickle, safe to load."""
        buf = io.BytesIO()
        meta = {"kind": self.kind, "grid": self.grid.name, "params": self.params}
        state = self._state()
        if self.calibration is not None:
            state["__calibration__"] = self.calibration
        if self.critic is not None:
            state.update(self.critic.state())
        np.savez(buf, __meta__=np.array(json.dumps(meta)), **state)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, grid: Grid) -> EmbeddingModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = json.loads(str(npz["__meta__"]))
            state = {k: npz[k] for k in npz.files if k != "__meta__"}
        model = cls(grid, **meta["params"])
        model.calibration = state.pop("__calibration__", None)
        model.critic = Critic.from_state(state)
        model._load_state(state)
        return model


def masked_mse(flux: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """Mean squared residual over the covered bins of each spectrum."""
    mask = np.isfinite(flux)
    resid = np.where(mask, flux - recon, 0.0)
    return ((resid**2).sum(1) / np.maximum(mask.sum(1), 1)).astype(np.float32)
