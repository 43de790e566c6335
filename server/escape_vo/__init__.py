"""escape-vo: a Virtual Observatory data service for spectra and their embeddings."""

__version__ = "0.1.0"
