"""Thin pyvo-based client for escape-vo and other VO spectral services.

Installable on its own (`pip install ./client`); it imports nothing of the server and speaks only
the public IVOA protocols. The search, bulk download, cutout and similarity functions arrive with
the TAP, DataLink/SODA and embeddings work; this release only fixes the package and its
dependencies.
"""

__version__ = "0.1.0"
