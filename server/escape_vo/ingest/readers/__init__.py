"""FITS readers that turn 1-D spectrum files of real archives into SpectrumRecords.

    from escape_vo.ingest.readers import read_spectra
    records = read_spectra(data, "spec-0266-51602-0001.fits")

Supported: ESO Phase 3 1-D spectra, SDSS/BOSS spec files, 1-D images with a wavelength WCS,
2dF/AAOmega multi-fibre frames and generic binary tables. Everything else raises NotASpectrum or
UnreadableFile with a one-line reason (see escape_vo.ingest.model).
"""

from escape_vo.ingest.readers.detect import read_spectra

__all__ = ["read_spectra"]
