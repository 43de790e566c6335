"""The critic: a small network that tells real spectra from damaged copies of them.

A reconstruction-based score only sees what the model fails to rebuild. It misses oddities the
model half-reproduces (its shift search will place a line anywhere), it cannot tell a broad
trough from the poorly rebuilt broad lines of an ordinary quasar, and it has no opinion about a
spectrum that is odd but easy to rebuild (a step between two arms, a stretch of zeros, pure
noise). So, after the model is trained, a critic learns what a normal pair (spectrum, the
model's reconstruction of it) looks like: half of each batch are training spectra, half are the
same spectra with one synthetic defect (an emission bump or an absorption trough where the
spectrum has none, a step in the flux level, a flat or zeroed stretch, heavy noise, a narrow
negative dip, flux capped at a saturation level, a stretch reversed or turned upside down),
each reconstructed by the model, and the critic is trained to say which is which. Its logit on
a spectrum, as a robust z-score against the training spectra, is the critic's half of the
anomaly score (models.base combines it with embeddings.anomaly's departure); this is
self-supervised anomaly detection with synthetic outliers, in the spirit of Hendrycks et al.
2019 and CutPaste (Li et al. 2021), adapted to one-dimensional spectra with gaps.

On the demo archive the critic moves the injected troughs and white dwarfs from ranks 12-160
to the top twenty or so (docs/operator/embeddings.md has the figures).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from escape_vo.embeddings.convnet import masked_reader
from escape_vo.embeddings.grid import CLIP
from escape_vo.embeddings.progress import progress_bar

# the last three are instrument and reduction failures that leave a spectrum plausible: flux
# capped at a saturation level, a stretch in reverse order (a wavelength solution running the
# wrong way), a stretch turned upside down (absorption become emission)
DEFECTS = ("bump", "trough", "step", "flat", "noise", "dip", "saturate", "mirror", "invert")
# Log-odds differences smaller than this are no evidence: a barely trained critic gives nearly
# the same logit to every spectrum, and dividing by that spread would blow up its z-scores. A
# trained one spreads its training spectra over ~0.7-0.9.
SPREAD_FLOOR = 0.5
Reconstruct = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (flux NaN-masked, rest) -> recon


def damage(flux: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of each spectrum (normalised, 0 where masked) with one random defect inside its
    covered span, renormalised by its median like the preprocessing does."""
    out = flux.astype(np.float64, copy=True)
    for i, kind in enumerate(rng.integers(len(DEFECTS), size=len(flux))):
        covered = np.flatnonzero(mask[i])
        if covered.size < 8:
            continue
        defect(DEFECTS[kind], out[i], covered, rng)
        median = float(np.median(out[i, covered]))
        if median > 1e-3:
            out[i] /= median
    return np.where(mask, np.clip(out, *CLIP), 0.0).astype(np.float32)


def defect(kind: str, x: np.ndarray, covered: np.ndarray, rng: np.random.Generator) -> None:
    """Apply one defect of `kind` (one of DEFECTS) in place to the spectrum `x` inside its
    `covered` bins (sorted indices)."""
    pix = np.arange(len(x))
    first, last = covered[0], covered[-1]
    span = float(last - first)
    centre = rng.uniform(first, last)
    level = float(np.median(x[covered]))
    level = level if level > 1e-3 else 1.0
    if kind == "bump":
        width = rng.uniform(0.5, 4.0)
        x += rng.uniform(1.0, 30.0) * level * np.exp(-0.5 * ((pix - centre) / width) ** 2)
    elif kind == "trough":
        width = rng.uniform(1.0, 2.0 + 0.03 * span)
        x *= 1 - rng.uniform(0.5, 0.95) * np.exp(-0.5 * ((pix - centre) / width) ** 2)
    elif kind == "step":
        x[pix > centre] *= np.exp(rng.uniform(-1.2, 1.2))
    elif kind == "flat":
        stretch = np.abs(pix - centre) < rng.uniform(3.0, 4.0 + 0.1 * span) / 2
        x[stretch] = rng.choice([0.0, level])
    elif kind == "noise":
        x += rng.uniform(0.2, 1.0) * level * rng.standard_normal(len(x))
    elif kind == "dip":  # a narrow negative dip: an over-subtracted sky line
        width = rng.uniform(0.3, 2.0)
        x -= rng.uniform(1.0, 8.0) * level * np.exp(-0.5 * ((pix - centre) / width) ** 2)
    elif kind == "saturate":
        x[covered] = np.minimum(x[covered], np.percentile(x[covered], rng.uniform(40, 95)))
    else:  # mirror, invert: a covered stretch of 20-100 % of the span
        length = rng.uniform(0.2, 1.0) * span
        start = rng.uniform(first, last - length)
        inside = covered[(covered >= start) & (covered <= start + length)]
        if kind == "mirror":
            x[inside] = x[inside][::-1]
        else:
            x[inside] = x[inside].max() + rng.uniform(0.05, 0.5) * level - x[inside]


class Critic:
    """The network, its training and its calibration (median and MAD of its logit over the
    training spectra), saved with the model as plain arrays."""

    def __init__(self, channels: int = 32) -> None:
        self.channels = channels
        self.net = masked_reader(1, channels, 1)
        self.calibration = np.array([0.0, 1.0])
        self.training_scores: np.ndarray | None = None  # score() of the spectra fit was given

    def fit(
        self,
        flux: np.ndarray,
        rest: np.ndarray,
        recon: np.ndarray,
        reconstruct: Reconstruct,
        seed: int,
        epochs: int,
        batch_size: int = 64,
        progress: bool = False,
    ) -> list[float]:
        """Train on `flux` (normalised, NaN where masked) and `recon`, the model's rebuild of
        it; `reconstruct` rebuilds the damaged copies. Returns the loss per epoch."""
        import torch

        torch.manual_seed(seed)
        self.net = masked_reader(1, self.channels, 1)  # initial weights from the seed too
        rng = np.random.default_rng(seed)
        mask = np.isfinite(flux)
        clean = np.where(mask, np.clip(flux, *CLIP), 0.0).astype(np.float32)
        clean_recon = _finite(recon)
        opt = torch.optim.AdamW(self.net.parameters(), lr=1e-3, weight_decay=1e-4)
        history = []
        with progress_bar("training the anomaly critic", epochs, progress) as advance:
            for _ in range(epochs):
                self.net.train()
                total = 0.0
                perm = rng.permutation(len(flux))
                for start in range(0, len(flux), batch_size):
                    b = perm[start : start + batch_size]
                    bad = damage(clean[b], mask[b], rng)
                    bad_recon = _finite(reconstruct(np.where(mask[b], bad, np.nan), rest[b]))
                    x = torch.from_numpy(np.concatenate([clean[b], bad]))
                    m = torch.from_numpy(np.concatenate([mask[b], mask[b]]).astype(np.float32))
                    r = torch.from_numpy(np.concatenate([clean_recon[b], bad_recon]))
                    y = torch.cat([torch.zeros(len(b)), torch.ones(len(b))])
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(
                        self.net(x, m, r)[:, 0], y
                    )
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(b)
                history.append(total / max(len(flux), 1))
                advance(1, loss=f"{history[-1]:.4g}")
        logits = self.logits(flux, clean_recon)
        median = float(np.median(logits))
        spread = float(1.4826 * np.median(np.abs(logits - median)))
        self.calibration = np.array([median, max(spread, SPREAD_FLOOR)])
        # what score() gives them, computed the same way
        self.training_scores = (logits - self.calibration[0]) / self.calibration[1]
        return history

    def logits(self, flux: np.ndarray, recon: np.ndarray, chunk: int = 32) -> np.ndarray:
        """The critic's log-odds that each spectrum is damaged; a few spectra per pass keep
        the activations in the CPU's caches (see shiftnet.INFER_CHUNK)."""
        import torch

        mask = np.isfinite(flux)
        x = np.where(mask, np.clip(flux, *CLIP), 0.0).astype(np.float32)
        r = _finite(recon)
        self.net.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(x), chunk):
                sl = slice(i, i + chunk)
                m = torch.from_numpy(mask[sl].astype(np.float32))
                out.append(
                    self.net(torch.from_numpy(x[sl]), m, torch.from_numpy(r[sl]))[:, 0].numpy()
                )
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def score(self, flux: np.ndarray, recon: np.ndarray) -> np.ndarray:
        """Robust z-score of the critic's logit against the training spectra."""
        return (self.logits(flux, recon) - self.calibration[0]) / self.calibration[1]

    def state(self) -> dict[str, np.ndarray]:
        state = {f"critic.{k}": v.numpy() for k, v in self.net.state_dict().items()}
        state["critic_calibration"] = self.calibration
        state["critic_channels"] = np.array(self.channels)
        return state

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> Critic | None:
        """The critic saved in a model's arrays (removed from `state`), None if it has none."""
        import torch

        if "critic_channels" not in state:
            return None
        critic = cls(int(state.pop("critic_channels")))
        critic.calibration = state.pop("critic_calibration")
        weights = {
            k[7:]: torch.from_numpy(state.pop(k)) for k in list(state) if k.startswith("critic.")
        }
        critic.net.load_state_dict(weights)
        return critic


def _finite(recon: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.clip(recon, *CLIP)).astype(np.float32)
