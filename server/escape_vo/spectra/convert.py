"""A spectrum (or a cut of one) as a Spectrum-DM VOTable, a FITS binary table or CSV.

`SpectrumData` is the common input: the arrays (wavelength in metres, flux, error, quality),
the archive row they came from and a provenance trail (what was done, to what). Every writer
keeps units, errors and quality flags, and records the provenance where the format can hold
it (VOTable INFOs, FITS HISTORY cards). The VOTable follows the IVOA Spectrum Data Model 1.1
serialisation (utypes spec:..., one row per pixel), which SPLAT, TOPCAT and specutils read.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from escape_vo.schema.model import Column
from escape_vo.spectra.lookup import SpectrumRow
from escape_vo.spectra.vodoc import VOTABLE_MIME, Param, table_document


@dataclass(frozen=True)
class OutputKind:
    name: str
    media_type: str
    extension: str


VOTABLE = OutputKind("votable", VOTABLE_MIME, "vot")
FITS = OutputKind("fits", "application/fits", "fits")
CSV = OutputKind("csv", "text/csv;header=present", "csv")
KINDS = (VOTABLE, FITS, CSV)
_ALIASES = {
    "votable": VOTABLE,
    "vot": VOTABLE,
    "xml": VOTABLE,
    "application/x-votable+xml": VOTABLE,
    "text/xml": VOTABLE,
    "compliant": VOTABLE,
    "fits": FITS,
    "application/fits": FITS,
    "image/fits": FITS,
    "csv": CSV,
    "text/csv": CSV,
}
KIND_NAMES = ", ".join(sorted(_ALIASES))


def output_kind(value: str | None) -> OutputKind | None:
    """The conversion named by a FORMAT/RESPONSEFORMAT value (short name or media type)."""
    if value is None or not value.strip():
        return VOTABLE
    base = value.strip().split(";", 1)[0].strip().lower()
    return _ALIASES.get(base)


@dataclass
class SpectrumData:
    row: SpectrumRow
    wave: np.ndarray  # metres
    flux: np.ndarray
    error: np.ndarray
    quality: np.ndarray
    flux_unit: str | None
    provenance: list[str] = field(default_factory=list)

    @property
    def n_pix(self) -> int:
        return int(self.wave.size)


def vounit(unit: str | None) -> str | None:
    """The flux unit as a VOUnit string (astropy's spelling from the readers converted)."""
    if not unit:
        return None
    import astropy.units as u

    with warnings.catch_warnings():  # deprecated VOUnits (erg, Angstrom) are still VOUnits
        warnings.simplefilter("ignore", u.UnitsWarning)
        try:
            return u.Unit(unit, parse_strict="raise").to_string("vounit") or None
        except ValueError:
            return unit


def spectrum_data(row: SpectrumRow, record) -> SpectrumData:
    """SpectrumData of a whole stored spectrum (record from escape_vo.spectra.load)."""
    n = record.wave.size
    error = record.error if record.error is not None else np.full(n, np.nan)
    quality = record.quality if record.quality is not None else np.zeros(n, np.int32)
    return SpectrumData(
        row=row,
        wave=np.asarray(record.wave, dtype=np.float64),
        flux=np.asarray(record.flux, dtype=np.float64),
        error=np.asarray(error, dtype=np.float64),
        quality=np.asarray(quality).astype(np.int64 if quality.dtype.itemsize > 4 else np.int32),
        flux_unit=vounit(row.flux_unit or record.flux_unit),
        provenance=[
            f"converted from the original file {row.file_name} (sha256 {row.file_sha256}, "
            f"spectrum {row.file_index} in the file) of {row.publisher_did}"
        ],
    )


def _flux_ucd(data: SpectrumData) -> str:
    return "phot.flux.density;em.wl" if data.row.calib_level >= 2 else "phot.count"


def _columns(data: SpectrumData) -> list[Column]:
    ucd = _flux_ucd(data)
    return [
        Column(
            "WAVE", "double", "Wavelength of the pixel centre", unit="m", ucd="em.wl",
            utype="spec:Data.SpectralAxis.Value",
        ),
        Column(
            "FLUX", "double", "Flux density (or counts where not flux calibrated)",
            unit=data.flux_unit, ucd=ucd, utype="spec:Data.FluxAxis.Value",
        ),
        Column(
            "ERR", "double", "1-sigma statistical error of FLUX (NaN where unknown)",
            unit=data.flux_unit, ucd=f"stat.error;{ucd}",
            utype="spec:Data.FluxAxis.Accuracy.StatError",
        ),
        Column(
            "QUAL", "long" if data.quality.dtype.itemsize > 4 else "int",
            "Quality flags as in the original file; 0 is good",
            ucd="meta.code.qual", utype="spec:Data.FluxAxis.Quality",
        ),
    ]  # fmt: skip


def _params(data: SpectrumData) -> list[Param]:
    row = data.row
    params = [
        Param("DataModel", "Spectrum-1.1", utype="spec:Dataset.DataModel.Name"),
        Param("DatasetType", "Spectrum", utype="spec:Dataset.Type"),
        Param("Length", str(data.n_pix), datatype="long", utype="spec:Dataset.Length"),
        Param("Title", row.title, ucd="meta.title;meta.dataset", utype="spec:DataID.Title"),
        Param("PublisherDID", row.publisher_did, ucd="meta.ref.ivoid",
              utype="spec:Curation.PublisherDID"),
        Param("SpaceFrame", "ICRS", utype="spec:CoordSys.SpaceFrame.Name"),
        Param("SpectralUnit", "m", utype="spec:Char.SpectralAxis.Unit"),
        Param("SpectralUcd", "em.wl", utype="spec:Char.SpectralAxis.Ucd"),
        Param("FluxUcd", _flux_ucd(data), utype="spec:Char.FluxAxis.Ucd"),
        Param("FluxCalibration", "ABSOLUTE" if row.calib_level >= 2 else "UNCALIBRATED",
              utype="spec:Char.FluxAxis.Calibration"),
    ]  # fmt: skip
    if data.flux_unit:
        params.append(Param("FluxUnit", data.flux_unit, utype="spec:Char.FluxAxis.Unit"))
    optional: list[tuple[str, object, dict]] = [
        ("TargetName", row.target_name, {"ucd": "meta.id;src", "utype": "spec:Target.Name"}),
        ("TargetClass", row.target_class, {"ucd": "src.class", "utype": "spec:Target.Class"}),
        ("Redshift", row.redshift, {"datatype": "double", "ucd": "src.redshift",
                                    "utype": "spec:Target.Redshift"}),
        ("Instrument", row.instrument, {"ucd": "meta.id;instr", "utype": "spec:DataID.Instrument"}),
        ("Collection", row.collection, {"ucd": "meta.id", "utype": "spec:DataID.Collection"}),
        ("CreatorDID", row.origin_id if (row.origin_id or "").startswith("ivo://") else None,
         {"ucd": "meta.id", "utype": "spec:DataID.CreatorDID"}),
        ("Aperture", row.aperture, {"datatype": "double", "unit": "deg", "ucd": "instr.fov",
                                    "utype": "spec:Char.SpatialAxis.Coverage.Bounds.Extent"}),
        ("ResolvingPower", row.resolving_power, {"datatype": "double", "ucd": "spect.resolution",
                                                 "utype": "spec:Char.SpectralAxis.ResPower"}),
        ("ExposureTime", row.exptime, {"datatype": "double", "unit": "s",
                                       "ucd": "time.duration;obs.exposure",
                                       "utype": "spec:Char.TimeAxis.Coverage.Bounds.Extent"}),
    ]  # fmt: skip
    for name, value, kw in optional:
        if value is not None:
            params.append(Param(name, str(value), **kw))
    if row.ra is not None and row.dec is not None:
        params.append(
            Param("Location", f"{row.ra!r} {row.dec!r}", datatype="double", arraysize="2",
                  unit="deg", ucd="pos.eq", utype="spec:Char.SpatialAxis.Coverage.Location.Value")
        )  # fmt: skip
    if row.t_min is not None and row.t_max is not None:
        params.append(
            Param("TimeLocation", repr((row.t_min + row.t_max) / 2), datatype="double", unit="d",
                  ucd="time.epoch", utype="spec:Char.TimeAxis.Coverage.Location.Value")
        )  # fmt: skip
    if data.n_pix:
        lo, hi = float(np.min(data.wave)), float(np.max(data.wave))
        params += [
            Param("SpectralStart", repr(lo), datatype="double", unit="m", ucd="em.wl;stat.min",
                  utype="spec:Char.SpectralAxis.Coverage.Bounds.Start"),
            Param("SpectralStop", repr(hi), datatype="double", unit="m", ucd="em.wl;stat.max",
                  utype="spec:Char.SpectralAxis.Coverage.Bounds.Stop"),
        ]  # fmt: skip
    return params


def _batch(data: SpectrumData) -> pa.RecordBatch:
    return pa.record_batch(
        [
            pa.array(data.wave, pa.float64()),
            pa.array(data.flux, pa.float64()),
            pa.array(data.error, pa.float64()),
            pa.array(data.quality),
        ],
        names=["WAVE", "FLUX", "ERR", "QUAL"],
    )


def to_votable(data: SpectrumData) -> Iterator[bytes]:
    """Spectrum DM 1.1 VOTable (BINARY2), streamed."""
    infos = [("provenance", p) for p in data.provenance]
    return table_document(
        _columns(data),
        [_batch(data)],
        resource_attrs='type="results" utype="spec:Spectrum"',
        infos=infos,
        params=_params(data),
        table_attrs='name="spectrum" utype="spec:Spectrum"',
        serialization="BINARY2",
    )


def to_fits(data: SpectrumData) -> bytes:
    """A FITS file: empty primary HDU, then EXTNAME=SPECTRUM, one row per pixel."""
    from astropy.io import fits

    row = data.row
    cols = []
    for col, values, fmt in zip(
        _columns(data),
        (data.wave, data.flux, data.error, data.quality),
        ("D", "D", "D", "K" if data.quality.dtype.itemsize > 4 else "J"),
        strict=True,
    ):
        cols.append(fits.Column(name=col.name, format=fmt, unit=col.unit, array=values))
    table = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    for i, col in enumerate(_columns(data), start=1):
        table.header[f"TUCD{i}"] = col.ucd
        table.header[f"TUTYP{i}"] = col.utype
    primary = fits.PrimaryHDU()
    for hdr in (primary.header, table.header):
        _card(hdr, "OBJECT", row.target_name, "target name")
        _card(hdr, "RA", row.ra, "[deg] ICRS right ascension")
        _card(hdr, "DEC", row.dec, "[deg] ICRS declination")
        _card(hdr, "RADESYS", "ICRS" if row.ra is not None else None, "frame of RA/DEC")
        _card(hdr, "INSTRUME", row.instrument, "instrument")
        _card(hdr, "TELESCOP", row.facility, "telescope")
        _card(hdr, "MJD-OBS", row.t_min, "[d] start of exposure (MJD)")
        _card(hdr, "MJD-END", row.t_max, "[d] end of exposure (MJD)")
        _card(hdr, "EXPTIME", row.exptime, "[s] exposure time")
        _card(hdr, "SPEC_RES", row.resolving_power, "resolving power")
        _card(hdr, "Z", row.redshift, "redshift")
        _card(hdr, "PUBDID", row.publisher_did, "publisher DID of the source spectrum")
        _card(hdr, "NELEM", data.n_pix, "number of pixels")
        for line in data.provenance:
            hdr.add_history(line)
    buf = io.BytesIO()
    fits.HDUList([primary, table]).writeto(buf, output_verify="silentfix")
    return buf.getvalue()


def _card(header, key: str, value: object, comment: str) -> None:
    if value is None:
        return
    if isinstance(value, str) and len(value) > 60:
        header[f"HIERARCH {key}"] = value
        return
    header[key] = (value, comment)


def to_csv(data: SpectrumData) -> bytes:
    """CSV with a header line: wave (m), flux, error, quality (units in the column names)."""
    unit = data.flux_unit or "arbitrary"
    table = pa.table(
        {
            "wave_m": pa.array(data.wave),
            f"flux_{unit}": pa.array(data.flux),
            f"error_{unit}": pa.array(data.error),
            "quality": pa.array(data.quality),
        }
    )
    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    return buf.getvalue()


def render(data: SpectrumData, kind: OutputKind) -> Iterator[bytes]:
    """The bytes of `data` in `kind`, as chunks."""
    if kind is VOTABLE:
        return to_votable(data)
    if kind is FITS:
        return iter([to_fits(data)])
    return iter([to_csv(data)])
