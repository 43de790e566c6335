"""Where and when the archive's spectra were taken: MOCs (IVOA MOC 2.0) served at /coverage."""

from escape_vo.coverage.store import Coverage, CoverageStore, Summary

__all__ = ["Coverage", "CoverageStore", "Summary"]
