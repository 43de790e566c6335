"""The registry of embedding models: `escape-vo embed train --model NAME` picks one by name.

Add a model by subclassing models.base.EmbeddingModel and calling `register_model`.
"""

from __future__ import annotations

import re

from escape_vo.embeddings.models.base import VECTOR_DIM, Embedding, EmbeddingModel, FitReport
from escape_vo.embeddings.models.pca import MaskedPCA
from escape_vo.embeddings.models.shiftnet import ShiftAutoencoder, SphericalAutoencoder

MODELS: dict[str, type[EmbeddingModel]] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


def register_model(name: str, cls: type[EmbeddingModel]) -> None:
    """Names are lower-case identifiers: they become part of index names."""
    if not _NAME.match(name):
        raise ValueError(f"model name {name!r}: use lower-case letters, digits and _")
    MODELS[name] = cls


register_model("pca", MaskedPCA)
register_model("autoencoder", ShiftAutoencoder)
register_model("spherical", SphericalAutoencoder)

__all__ = [
    "MODELS",
    "VECTOR_DIM",
    "Embedding",
    "EmbeddingModel",
    "FitReport",
    "register_model",
]
