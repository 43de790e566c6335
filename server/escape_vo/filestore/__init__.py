"""Content-addressed store of original files (a local directory now; any fsspec URL works)."""

from escape_vo.filestore.store import FileStore

__all__ = ["FileStore"]
