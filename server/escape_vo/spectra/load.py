"""The sampled arrays of a stored spectrum: read from the file store with the ingest readers.

The same readers that ingested the file parse it again, so what SODA cuts and what previews
plot is exactly what ingest described (wavelengths in metres, flux, error, quality). Files hold
one or several spectra (multi-fibre frames, tables of targets); `file_index` picks one. A small
LRU cache keeps the last parsed files, since a DataLink follow-up (preview, cutout) usually asks
for the same spectrum again within seconds.
"""

from __future__ import annotations

import gzip
import io
import threading
from collections import OrderedDict

from escape_vo.filestore import FileStore
from escape_vo.ingest.model import NotASpectrum, SpectrumRecord, UnreadableFile
from escape_vo.ingest.readers import read_spectra
from escape_vo.spectra.lookup import SpectrumRow

_CACHE_FILES = 8


class SpectrumUnavailable(RuntimeError):
    """The stored file is missing or no longer parses; the message says which and why."""


class _Lru:
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], list[SpectrumRecord]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> list[SpectrumRecord] | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[str, str], value: list[SpectrumRecord]) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_cache = _Lru(_CACHE_FILES)


def read_original(store: FileStore, row: SpectrumRow) -> bytes:
    try:
        with store.open(row.file_path) as fh:
            return fh.read()
    except FileNotFoundError:
        raise SpectrumUnavailable(
            f"the original file of {row.publisher_did} ({row.file_path}) is missing from the "
            "file store"
        ) from None


def load_spectrum(store: FileStore, row: SpectrumRow) -> SpectrumRecord:
    """The record (with wave/flux/error/quality arrays) of one spectrum."""
    key = (store.url, row.file_path)
    records = _cache.get(key)
    if records is None:
        data = read_original(store, row)
        try:
            records = read_spectra(data, row.file_name)
        except (NotASpectrum, UnreadableFile) as exc:
            raise SpectrumUnavailable(f"the stored file no longer reads: {exc}") from None
        _cache.put(key, records)
    for rec in records:
        if rec.file_index == row.file_index:
            return rec
    raise SpectrumUnavailable(
        f"the stored file holds {len(records)} spectra; index {row.file_index} is not among them"
    )


def header_text(data: bytes) -> str:
    """Every header of a FITS file (plain or gzip) as text, 80-character cards per line."""
    from astropy.io import fits

    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    parts = []
    with fits.open(io.BytesIO(data), lazy_load_hdus=True, ignore_missing_simple=True) as hdul:
        for index, hdu in enumerate(hdul):
            name = hdu.name or ("PRIMARY" if index == 0 else str(index))
            parts.append(f"# HDU {index}: {name}")
            parts.append(hdu.header.tostring(sep="\n", endcard=True, padding=False))
    return "\n".join(parts) + "\n"
