"""Thin pyvo-based client for escape-vo and other VO spectral services.

Installable on its own (`pip install ./client`); it imports nothing of the server and speaks only
the public IVOA protocols (TAP/ObsCore, SSA, DataLink, SODA, VOSI):

    from escape_vo_client import Archive
    archive = Archive("http://127.0.0.1:8000")
    found = archive.search_spectra(pos=(150.0, 2.2), radius=1.0, instrument="HARPS")
    report = archive.download(found, "spectra/", parallel=8)
    print(report)
"""

from escape_vo_client.archive import Archive, adql_string, ids_of
from escape_vo_client.datalink import DATALINK_TYPE, Link, Product, is_datalink, parse_links
from escape_vo_client.download import DownloadReport, Item, download_items
from escape_vo_client.identity import Identity
from escape_vo_client.spectrum import Spectrum, parse_spectrum
from escape_vo_client.transfer import (
    Checksum,
    Downloader,
    Outcome,
    RetryPolicy,
    Transfer,
    fits_check,
)

__version__ = "0.5.0"
__all__ = [
    "DATALINK_TYPE",
    "Archive",
    "Checksum",
    "DownloadReport",
    "Downloader",
    "Identity",
    "Item",
    "Link",
    "Outcome",
    "Product",
    "RetryPolicy",
    "Spectrum",
    "Transfer",
    "adql_string",
    "download_items",
    "fits_check",
    "ids_of",
    "is_datalink",
    "parse_links",
    "parse_spectrum",
]
