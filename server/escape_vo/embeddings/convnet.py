"""The convolutional reader of a spectrum with gaps, shared by the autoencoders' encoder and
the anomaly critic.

Four convolutions (three halvings of the grid) over the masked flux, the mask and any further
masked channels (the critic adds the model's reconstruction), then max and mean pooling over
the covered bins only, so missing coverage neither looks like zero flux nor dilutes the mean.
"""

from __future__ import annotations


def masked_reader(extra: int, channels: int, out: int):
    """A torch module mapping (flux, mask, *extra channels) of shape (b, n_pix) to (b, out)."""
    import torch
    from torch import nn

    class MaskedReader(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c = channels
            self.conv = nn.Sequential(
                nn.Conv1d(2 + extra, c, 9, padding=4), nn.GELU(), nn.MaxPool1d(2),
                nn.Conv1d(c, c, 9, padding=4), nn.GELU(), nn.MaxPool1d(2),
                nn.Conv1d(c, 2 * c, 9, padding=4), nn.GELU(), nn.MaxPool1d(2),
                nn.Conv1d(2 * c, 2 * c, 9, padding=4), nn.GELU(),
            )  # fmt: skip
            self.head = nn.Sequential(nn.Linear(4 * c, 64), nn.GELU(), nn.Linear(64, out))

        def forward(self, x, m, *more):
            h = self.conv(torch.stack([x * m, m, *(e * m for e in more)], 1))
            mm = nn.functional.max_pool1d(m[:, None], 8)
            hmax = (h - 1e4 * (1 - mm)).amax(-1)
            havg = (h * mm).sum(-1) / mm.sum(-1).clamp(min=1)
            return self.head(torch.cat([hmax, havg], 1))

    return MaskedReader()
