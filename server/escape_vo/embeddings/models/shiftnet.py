"""Autoencoders with a redshift search (PyTorch, CPU), plain or with a spherical latent space.

Most archive spectra come without a redshift, so on the common grid the same kind of galaxy
appears shifted by ln(1+z). In the spirit of Spherinator, which makes its latent space blind to
the rotation of an image by taking the smallest reconstruction loss over rotations, these models
take the smallest masked loss over shifts of the decoded spectrum along the log-wavelength grid:

  * the encoder (convolutions, then max and mean pooling over the covered bins) sees the spectrum
    and its mask and gives a latent vector that need not encode the redshift;
  * the decoder gives a rest-frame spectrum on an extended grid;
  * the loss is, for each spectrum, the masked mean squared residual after the best shift
    (0 for spectra moved to their rest frame, 0..ln(1+z_max) otherwise) and the best
    non-negative amplitude, both found exactly for all shifts at once with two correlations.

A reconstruction loss alone lets the latent space sort spectra by what the instrument saw (its
wavelength window, its flux calibration) as much as by what the object is. Training therefore
adds a contrastive term (SimCLR's NT-Xent): two views of each spectrum, each a random window of
its coverage with a random tilt of the continuum (an uncalibrated response) and added noise, must
land closer to each other than to the other spectra of the batch, and the decoder rebuilds the
whole spectrum from one view. Neighbours in the latent space then share the object's class
whatever instrument observed it: on the demo archive the k=10 class agreement rises from 0.87
to 0.96 (bench/embeddings_quality.py).

The shift that wins is a redshift estimate (`z_model`) once rest-frame spectra anchor the
canonical frame. The spherical variant normalises the latent vector onto the unit sphere: every
spectrum gets a place (longitude, latitude) on a "latent sky".
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from escape_vo.embeddings.convnet import masked_reader
from escape_vo.embeddings.grid import CLIP
from escape_vo.embeddings.models.base import Embedding, EmbeddingModel, FitReport
from escape_vo.embeddings.preprocess import Dataset
from escape_vo.embeddings.progress import progress_bar

MIN_ANCHORS = 10  # rest-frame spectra needed before the shift means a redshift
# Spectra per forward pass when embedding: the activations of 32 spectra (and their losses at
# every shift) stay in the CPU's caches; 512 at once made `embed` 2.2x slower, same results.
INFER_CHUNK = 32


def _torch():
    import torch

    return torch


def _build(n_pix: int, n_shift: int, latent: int, channels: int):
    from torch import nn

    decoder = nn.Sequential(
        nn.Linear(latent, 128), nn.GELU(), nn.Linear(128, 256), nn.GELU(),
        nn.Linear(256, n_pix + n_shift),
    )  # fmt: skip
    # the decoder first: that is the order the seed initialised them in from the start
    return masked_reader(0, channels, latent), decoder


def random_views(x, m, gen, crop_min: float, noise_max: float, tilt: float):
    """A random view of each spectrum: a window of 'crop_min'..100 % of its covered span,
    its continuum tilted by exp(a t) with |a| <= tilt, re-normalised by its median, and
    Gaussian noise up to 'noise_max' added; what another instrument might have recorded."""
    torch = _torch()
    b, n = x.shape
    idx = torch.arange(n)
    first = torch.where(m > 0, idx, n).amin(1)
    last = torch.where(m > 0, idx, -1).amax(1)
    span = (last - first + 1).clamp(min=1).float()
    frac = crop_min + (1 - crop_min) * torch.rand(b, generator=gen)
    length = (span * frac).long().clamp(min=16)
    start = first + ((span - length).clamp(min=0) * torch.rand(b, generator=gen)).long()
    keep = (idx[None] >= start[:, None]) & (idx[None] < (start + length)[:, None])
    mv = m * keep
    t = (idx[None].float() - start[:, None]) / length[:, None].float() - 0.5
    slope = (torch.rand(b, 1, generator=gen) * 2 - 1) * tilt
    xv = x * torch.exp(slope * t)
    median = torch.where(mv > 0, xv, torch.full_like(xv, float("nan"))).nanmedian(1).values
    xv = xv / torch.nan_to_num(median, nan=1.0).clamp(min=1e-3)[:, None]
    sigma = torch.rand(b, 1, generator=gen) * noise_max
    return (xv + sigma * torch.randn(xv.shape, generator=gen)) * mv, mv


def nt_xent(z1, z2, tau: float):
    """SimCLR's contrastive loss: each view must pick its partner among the 2b-1 others."""
    torch = _torch()
    f = torch.nn.functional
    z = f.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / tau
    b = len(z1)
    sim = sim - 1e9 * torch.eye(2 * b)
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)])
    return f.cross_entropy(sim, target)


def shift_losses(x, m, decoded, rest, n_shift: int):
    """Masked MSE of x against every shift of `decoded` (best amplitude each); rest-frame
    spectra may only take shift 0. Returns (best loss, best shift in bins)."""
    torch = _torch()
    f = torch.nn.functional
    b = x.shape[0]
    cross = f.conv1d(decoded[None], (m * x)[:, None], groups=b)[0]  # sum m x D[t+j]
    energy = f.conv1d((decoded * decoded)[None], m[:, None], groups=b)[0]  # sum m D^2
    xx = (m * x * x).sum(1, keepdim=True)
    n = m.sum(1, keepdim=True).clamp(min=1)
    alpha = (cross / energy.clamp(min=1e-6)).clamp(min=0)
    loss = (xx - 2 * alpha * cross + alpha * alpha * energy) / n  # (b, n_shift + 1)
    only_zero = torch.zeros_like(loss, dtype=torch.bool)
    only_zero[:, n_shift] = True
    loss = torch.where(rest[:, None] & ~only_zero, torch.full_like(loss, 1e6), loss)
    best, t = loss.min(1)
    return best, n_shift - t


class ShiftAutoencoder(EmbeddingModel):
    kind: ClassVar[str] = "autoencoder"
    spherical: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {
        "latent_dim": 16, "epochs": 60, "batch_size": 64, "learning_rate": 2e-3,
        "channels": 32, "z_max": 3.5, "threads": 2, "max_train": 200_000,
        "contrast": 1.0, "temperature": 0.1, "crop_min": 0.25, "noise_max": 0.05, "tilt": 0.5,
        "critic_epochs": 15,
    }  # fmt: skip

    def __init__(self, grid, **params: Any) -> None:
        super().__init__(grid, **params)
        self.n_shift = math.ceil(math.log1p(float(self.params["z_max"])) / grid.step)
        self.rotation = np.eye(self.latent_dim, dtype=np.float32)
        self.anchored = False
        self._nets = None

    def _networks(self):
        if self._nets is None:
            self._nets = _build(
                self.grid.n_pix, self.n_shift, self.latent_dim, int(self.params["channels"])
            )
        return self._nets

    def _tensors(self, data: Dataset):
        torch = _torch()
        flux = np.clip(data.flux, *CLIP)
        mask = np.isfinite(flux)
        x = torch.from_numpy(np.where(mask, flux, 0).astype(np.float32))
        m = torch.from_numpy(mask.astype(np.float32))
        return x, m, torch.from_numpy(data.rest_frame.astype(bool))

    def _latent(self, encoder, x, m):
        z = encoder(x, m)
        if self.spherical:
            z = _torch().nn.functional.normalize(z, dim=1)
        return z

    def fit(self, data: Dataset, seed: int, progress: bool = False) -> FitReport:
        torch = _torch()
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(int(self.params["threads"]))
        self._nets = None
        encoder, decoder = self._networks()
        x, m, rest = self._tensors(data)
        params = list(encoder.parameters()) + list(decoder.parameters())
        opt = torch.optim.Adam(params, lr=float(self.params["learning_rate"]))
        epochs, bs = int(self.params["epochs"]), int(self.params["batch_size"])
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
        gen = torch.Generator().manual_seed(seed)
        p = self.params
        weight, tau = float(p["contrast"]), float(p["temperature"])
        views = (float(p["crop_min"]), float(p["noise_max"]), float(p["tilt"]))
        history, contrast = [], []
        with progress_bar(f"training {self.kind}", epochs, progress) as advance:
            for _ in range(epochs):
                encoder.train()
                decoder.train()
                perm = torch.randperm(len(x), generator=gen)
                total = total_c = 0.0
                for i in range(0, len(x), bs):
                    idx = perm[i : i + bs]
                    xb, mb = x[idx], m[idx]
                    if weight > 0 and len(idx) > 1:
                        z1 = encoder(*random_views(xb, mb, gen, *views))
                        z2 = encoder(*random_views(xb, mb, gen, *views))
                        lc = nt_xent(z1, z2, tau)
                    else:
                        z1, lc = encoder(xb, mb), torch.zeros(())
                    if self.spherical:
                        z1 = torch.nn.functional.normalize(z1, dim=1)
                    best, _ = shift_losses(xb, mb, decoder(z1), rest[idx], self.n_shift)
                    loss = best.mean() + weight * lc
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += best.mean().item() * len(idx)
                    total_c += lc.item() * len(idx)
                sched.step()
                history.append(total / max(len(x), 1))
                contrast.append(total_c / max(len(x), 1))
                advance(1, loss=f"{history[-1]:.4g}", contrast=f"{contrast[-1]:.3g}")
        self.anchored = int(data.rest_frame.sum()) >= MIN_ANCHORS
        extra = {"shift_bins": self.n_shift, "contrast_history": [round(c, 6) for c in contrast]}
        extra.update(self._fit_anomaly(data, seed, progress))
        if not self.spherical:  # order latent axes by energy: the first ones make the map
            codes = self._run(data, recon=False)[0]
            _, _, vt = np.linalg.svd(codes.astype(np.float64), full_matrices=False)
            signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])
            self.rotation = (vt.T * np.where(signs == 0, 1, signs)).astype(np.float32)
        return FitReport(history=history, extra=extra)

    @staticmethod
    def _flux(data: Dataset) -> np.ndarray:
        """The flux as the networks see it (clipped), NaN where masked."""
        return np.clip(data.flux, *CLIP)

    def _run(self, data: Dataset, chunk: int = INFER_CHUNK, recon: bool = True):
        """Latent codes, best-shift losses, shifts and (unless `recon` is false: memory) the
        reconstructions at those shifts."""
        torch = _torch()
        encoder, decoder = self._networks()
        encoder.eval()
        decoder.eval()
        x, m, rest = self._tensors(data)
        codes, errs, shifts, recons = [], [], [], []
        offsets = torch.arange(x.shape[1])[None]
        with torch.no_grad():
            for i in range(0, len(x), chunk):
                xc, mc = x[i : i + chunk], m[i : i + chunk]
                z = self._latent(encoder, xc, mc)
                decoded = decoder(z)
                best, shift = shift_losses(xc, mc, decoded, rest[i : i + chunk], self.n_shift)
                aligned = torch.gather(decoded, 1, (self.n_shift - shift)[:, None] + offsets)
                alpha = (mc * xc * aligned).sum(1) / (mc * aligned * aligned).sum(1).clamp(min=1e-6)
                codes.append(z.numpy())
                errs.append(best.numpy())
                shifts.append(shift.numpy())
                if recon:
                    recons.append((alpha.clamp(min=0)[:, None] * aligned).numpy())
        if not codes:
            k, p = self.latent_dim, self.grid.n_pix
            empty = np.zeros(0, np.float32)
            return np.zeros((0, k), np.float32), empty, empty, np.zeros((0, p), np.float32)
        full = np.concatenate(recons) if recon else None
        return np.concatenate(codes), np.concatenate(errs), np.concatenate(shifts), full

    def reconstruct(self, data: Dataset) -> np.ndarray:
        return self._run(data)[3]

    def errors(self, data: Dataset) -> np.ndarray:
        return self._run(data, recon=False)[1].astype(np.float32)

    def embed(self, data: Dataset) -> Embedding:
        codes, errs, shifts, recon = self._run(data)
        z = np.expm1(shifts * self.grid.step).astype(np.float32)
        z[data.rest_frame] = np.nan
        if not self.anchored:
            z[:] = np.nan
        error = errs.astype(np.float32)
        return Embedding(
            vectors=(codes @ self.rotation).astype(np.float32),
            error=error,
            anomaly=self._anomaly(data, self._flux(data), recon, error),
            z_model=z,
        )

    def _state(self) -> dict[str, np.ndarray]:
        encoder, decoder = self._networks()
        state = {f"enc.{k}": v.numpy() for k, v in encoder.state_dict().items()}
        state.update({f"dec.{k}": v.numpy() for k, v in decoder.state_dict().items()})
        state["rotation"] = self.rotation
        state["anchored"] = np.array(self.anchored)
        return state

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        torch = _torch()
        encoder, decoder = self._networks()
        encoder.load_state_dict(
            {k[4:]: torch.from_numpy(v) for k, v in state.items() if k.startswith("enc.")}
        )
        decoder.load_state_dict(
            {k[4:]: torch.from_numpy(v) for k, v in state.items() if k.startswith("dec.")}
        )
        self.rotation = state["rotation"]
        self.anchored = bool(state["anchored"])


class SphericalAutoencoder(ShiftAutoencoder):
    """The latent space is the unit sphere in 3-D: a position on the latent sky per spectrum."""

    kind: ClassVar[str] = "spherical-autoencoder"
    spherical: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {**ShiftAutoencoder.defaults, "latent_dim": 3}

    def __init__(self, grid, **params: Any) -> None:
        super().__init__(grid, **params)
        if self.latent_dim != 3:
            raise ValueError("the spherical autoencoder's latent space is the sphere in 3-D")
