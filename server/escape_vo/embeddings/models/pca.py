"""Masked PCA: the linear baseline.

Principal components of spectra with gaps, by expectation-maximisation: missing bins are filled
with the current reconstruction and the components recomputed until they settle. A spectrum's
coefficients are the weighted least-squares fit of the components to its covered bins only, so
an instrument covering a fifth of the grid is projected on what it has, not on zeros.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from escape_vo.embeddings.grid import CLIP
from escape_vo.embeddings.models.base import Embedding, EmbeddingModel, FitReport, masked_mse
from escape_vo.embeddings.preprocess import Dataset
from escape_vo.embeddings.progress import progress_bar


class MaskedPCA(EmbeddingModel):
    kind: ClassVar[str] = "masked-pca"
    defaults: ClassVar[dict[str, Any]] = {
        "latent_dim": 16, "iterations": 12, "ridge": 1e-3, "critic_epochs": 15,
    }  # fmt: skip

    mean: np.ndarray
    components: np.ndarray  # (n_pix, latent_dim), orthonormal columns

    def fit(self, data: Dataset, seed: int, progress: bool = False) -> FitReport:
        x = np.clip(data.flux.astype(np.float64), *CLIP)
        mask = np.isfinite(x)
        counts = mask.sum(0)
        self.mean = np.where(counts > 0, np.where(mask, x, 0).sum(0) / np.maximum(counts, 1), 0)
        filled = np.where(mask, x - self.mean, 0.0)
        k = self.latent_dim
        history = []
        with progress_bar("masked PCA", int(self.params["iterations"]), progress) as advance:
            for _ in range(int(self.params["iterations"])):
                # components = top eigenvectors of the covariance of the filled data
                cov = filled.T @ filled
                _vals, vecs = np.linalg.eigh(cov)
                comps = vecs[:, ::-1][:, :k]
                # deterministic sign: largest loading positive
                signs = np.sign(comps[np.abs(comps).argmax(0), np.arange(k)])
                self.components = comps * np.where(signs == 0, 1, signs)
                coeffs = self._coefficients(x, mask)
                recon = coeffs @ self.components.T
                filled = np.where(mask, x - self.mean, recon)
                err = float(np.mean(masked_mse(np.where(mask, x, np.nan), recon + self.mean)))
                history.append(err)
                advance(1, mse=f"{err:.4g}")
        return FitReport(history=history, extra=self._fit_anomaly(data, seed, progress))

    def _coefficients(self, x: np.ndarray, mask: np.ndarray, chunk: int = 4096) -> np.ndarray:
        v = self.components
        out = np.empty((len(x), v.shape[1]))
        ridge = float(self.params["ridge"]) * np.eye(v.shape[1])
        outer = np.einsum("dk,dl->dkl", v, v).reshape(len(v), -1)
        for i in range(0, len(x), chunk):
            m = mask[i : i + chunk].astype(np.float64)
            xc = np.where(mask[i : i + chunk], x[i : i + chunk] - self.mean, 0.0)
            a = (m @ outer).reshape(-1, v.shape[1], v.shape[1]) + ridge
            b = xc @ v
            out[i : i + chunk] = np.linalg.solve(a, b[..., None])[..., 0]
        return out

    def _project(self, data: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(coefficients, reconstruction, the clipped flux they fit)."""
        x = np.clip(data.flux.astype(np.float64), *CLIP)
        mask = np.isfinite(x)
        coeffs = self._coefficients(x, mask)
        return coeffs, coeffs @ self.components.T + self.mean, np.where(mask, x, np.nan)

    def reconstruct(self, data: Dataset) -> np.ndarray:
        return self._project(data)[1]

    def errors(self, data: Dataset) -> np.ndarray:
        _, recon, flux = self._project(data)
        return masked_mse(flux, recon)

    def embed(self, data: Dataset) -> Embedding:
        coeffs, recon, flux = self._project(data)
        error = masked_mse(flux, recon)
        return Embedding(
            vectors=coeffs.astype(np.float32),
            error=error,
            anomaly=self._anomaly(data, flux, recon, error),
        )

    def _state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "components": self.components}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.mean = state["mean"]
        self.components = state["components"]
