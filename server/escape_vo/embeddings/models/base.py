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
# Spectra the model and its critic never saw depart more from their reconstructions than the
# ones they were fitted on (the critic, especially, learns its training spectra by heart), so a
# new spectrum's departure and critic score are mapped onto the training spectra's scale by
# matching the median and this percentile, measured on the held-out spectra (calibrate_unseen).
TAIL = 95
MIN_UNSEEN = 50  # held-out spectra needed to measure that percentile at all


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
    # ids of the spectra the score was calibrated (and the critic trained) on, and per part of
    # the score (departure, critic) its median and TAIL-th percentile over those spectra and
    # over held-out ones; None where not measured (no held-out set, or an older version)
    seen: np.ndarray | None = None
    unseen: np.ndarray | None = None
    _seen_tails: np.ndarray | None = None  # the first half of `unseen`, until it is measured
    # anomaly.calibrate_smoothness of the training spectra; None for versions trained before
    smooth: np.ndarray | None = None

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
        departures = self._deviations(flux, recon, data.rest_frame)
        self.calibration = anomaly.calibrate(*departures)
        self.smooth = anomaly.calibrate_smoothness(flux)
        self.critic, self.seen, self.unseen = None, np.unique(data.spectrum_id), None
        epochs = int(self.params.get("critic_epochs", 0))
        extra: dict[str, Any] = {}
        if epochs > 0 and len(data) >= 2:
            critic = Critic()
            history = critic.fit(
                flux, data.rest_frame, recon, self._rebuild, seed, epochs, progress=progress
            )
            self.critic = critic
            extra["critic_history"] = [round(h, 6) for h in history]
        critic_scores = self.critic.training_scores if self.critic is not None else None
        self._seen_tails = _tails([anomaly.score(*departures, self.calibration), critic_scores])
        return extra

    def calibrate_unseen(self, data: Dataset) -> dict[str, Any]:
        """Measure, on spectra held out of training, how much further new spectra depart than
        the training ones, so that apply scores both on one scale (see TAIL). Returns what
        the training metrics record; nothing is changed with fewer than MIN_UNSEEN spectra."""
        tails = self._seen_tails
        if self.calibration is None or tails is None or len(data) < MIN_UNSEEN:
            return {}
        flux = np.clip(data.flux, *CLIP)
        parts = self._parts(flux, self.reconstruct(data), data.rest_frame)
        self.unseen = np.concatenate([tails, _tails(parts)], axis=1)
        return {
            "anomaly_tails": {
                name: {"seen": row[:2].round(4).tolist(), "unseen": row[2:].round(4).tolist()}
                for name, row in zip(("departure", "critic"), self.unseen, strict=True)
                if np.isfinite(row).all()
            }
        }

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

    def _parts(
        self, flux: np.ndarray, recon: np.ndarray, rest: np.ndarray
    ) -> list[np.ndarray | None]:
        """The two halves of the anomaly score as z-scores: departure, critic (None without)."""
        assert self.calibration is not None
        unexplained = anomaly.uses_unexplained(self.calibration)
        departures = self._deviations(flux, recon, rest, unexplained)
        critic = self.critic.score(flux, recon) if self.critic is not None else None
        return [anomaly.score(*departures, self.calibration), critic]

    def _anomaly(
        self, data: Dataset, flux: np.ndarray, recon: np.ndarray, error: np.ndarray
    ) -> np.ndarray:
        """The departure from the reconstruction and the critic's verdict, combined as
        Stouffer's z = (z1 + z2) / sqrt(2), or where larger one of two flags that are exactly
        0 for nearly every spectrum (which then keeps its negative z if it has one): the
        negative-flux significance measured at preprocessing, and the smoothness
        (anomaly.smoothness_z: a quarter or more without noise). All are z-scores: 0 typical,
        3 rare. Spectra the score was not calibrated on are first put on the training
        spectra's scale (calibrate_unseen)."""
        if self.calibration is None:
            return error
        parts = self._parts(flux, recon, data.rest_frame)
        if self.unseen is not None and self.seen is not None:
            fresh = ~np.isin(data.spectrum_id, self.seen)
            parts = [_rescale(p, row, fresh) for p, row in zip(parts, self.unseen, strict=True)]
        z, critic = parts
        if critic is not None:
            z = (z + critic) / np.sqrt(2.0)
        for flag in (data.negative_z, self._smoothness(flux)):
            z = np.where((flag > 0) & (flag > z), flag, z)
        return z.astype(np.float32)

    def _smoothness(self, flux: np.ndarray) -> np.ndarray:
        """anomaly.smoothness_z of each spectrum; 0 for versions trained before it existed."""
        if self.smooth is None:
            return np.zeros(len(flux), np.float32)
        return anomaly.smoothness_z(flux, self.smooth)

    def to_bytes(self) -> bytes:
        """A .npz of the fitted arrays plus the parameters: no pickle, safe to load."""
        buf = io.BytesIO()
        meta = {"kind": self.kind, "grid": self.grid.name, "params": self.params}
        state = self._state()
        if self.calibration is not None:
            state["__calibration__"] = self.calibration
        if self.critic is not None:
            state.update(self.critic.state())
        if self.seen is not None and self.unseen is not None:
            state["__seen__"], state["__unseen__"] = self.seen, self.unseen
        if self.smooth is not None:
            state["__smooth__"] = self.smooth
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
        model.seen = state.pop("__seen__", None)
        model.unseen = state.pop("__unseen__", None)
        model.smooth = state.pop("__smooth__", None)
        model._load_state(state)
        return model


def _tails(parts: list[np.ndarray | None]) -> np.ndarray:
    """Median and TAIL-th percentile of each part of the score (NaN for a missing critic)."""
    return np.array(
        [[np.nan, np.nan] if p is None else [np.median(p), np.percentile(p, TAIL)] for p in parts]
    )


def _rescale(part: np.ndarray | None, row: np.ndarray, fresh: np.ndarray) -> np.ndarray | None:
    """`part` with the entries of spectra the score was not calibrated on (`fresh`) mapped
    linearly so that the held-out spectra's median and TAIL-th percentile (row[2:]) land on
    the training spectra's (row[:2])."""
    seen_median, seen_tail, new_median, new_tail = row
    if (
        part is None
        or not np.isfinite(row).all()
        or min(seen_tail - seen_median, new_tail - new_median) <= 0
    ):
        return part
    scale = (seen_tail - seen_median) / (new_tail - new_median)
    out = part.copy()
    out[fresh] = seen_median + (part[fresh] - new_median) * scale
    return out


def masked_mse(flux: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """Mean squared residual over the covered bins of each spectrum."""
    mask = np.isfinite(flux)
    resid = np.where(mask, flux - recon, 0.0)
    return ((resid**2).sum(1) / np.maximum(mask.sum(1), 1)).astype(np.float32)
