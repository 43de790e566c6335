"""Embeddings of the spectra: preprocessing, pluggable models, vectors in pgvector, search, map.

    escape-vo embed train --model autoencoder      # a new version, metrics in embeddings.models
    escape-vo embed apply                          # vectors for spectra that have none yet

preprocess.py resamples every spectrum once onto a common log-wavelength grid (grid.py) and
keeps it in embeddings.preprocessed; models/ holds the algorithms behind one small interface
(models/base.py); train.py and apply.py run them and store.py writes what they produce;
search.py finds neighbours (HNSW), web.py serves /embeddings/similar and the latent map, and
datalink.py adds a "similar spectra" service descriptor to every DataLink document.
"""

from escape_vo.embeddings.grid import DEFAULT_GRID, GRIDS, Grid
from escape_vo.embeddings.models import MODELS

__all__ = ["DEFAULT_GRID", "GRIDS", "MODELS", "Grid"]
