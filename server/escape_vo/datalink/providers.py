"""The built-in links of every spectrum: the original file, conversions, preview, cutout, header."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from escape_vo.datalink.registry import Link, LinkContext, link_provider
from escape_vo.embeddings.datalink import similar_spectra
from escape_vo.soda.descriptor import soda_descriptor
from escape_vo.spectra.convert import KINDS
from escape_vo.spectra.lookup import SpectrumRow
from escape_vo.spectra.preview import preview_path


def _spectrum_url(ctx: LinkContext, row: SpectrumRow) -> str:
    return f"{ctx.base_url}/spectra/{row.spectrum_id}"


@link_provider
def original_file(ctx: LinkContext, row: SpectrumRow) -> Iterator[Link]:
    yield Link(
        "#this",
        access_url=f"{_spectrum_url(ctx, row)}/file",
        description=f"Original file {row.file_name} as ingested (FITS; sha256 {row.file_sha256}"
        + (f"; spectrum {row.file_index} of a multi-spectrum file)" if row.file_index else ")"),
        content_type="application/fits",
        content_length=row.file_size,
        content_qualifier="#spectrum",
        local_semantics="original",
    )


@link_provider
def conversions(ctx: LinkContext, row: SpectrumRow) -> Iterator[Link]:
    names = {"votable": "IVOA Spectrum DM 1.1 VOTable", "fits": "FITS table", "csv": "CSV"}
    for kind in KINDS:
        yield Link(
            "#derivation",
            access_url=f"{_spectrum_url(ctx, row)}?FORMAT={kind.name}",
            description=f"The spectrum converted to {names[kind.name]} (wavelength in metres, "
            "flux, error, quality)",
            content_type=kind.media_type,
            content_qualifier="#spectrum",
            local_semantics=f"converted-{kind.name}",
        )


@link_provider
def preview(ctx: LinkContext, row: SpectrumRow) -> Iterator[Link]:
    size = None
    if ctx.preview_dir is not None:
        cached = preview_path(Path(ctx.preview_dir), row)
        size = cached.stat().st_size if cached.exists() else None
    yield Link(
        "#preview",
        access_url=f"{_spectrum_url(ctx, row)}/preview",
        description="Plot of the spectrum (PNG), flux against wavelength in nm",
        content_type="image/png",
        content_length=size,
        local_semantics="preview-plot",
    )


@link_provider
def cutout(ctx: LinkContext, row: SpectrumRow) -> Iterator[Link]:
    if row.wave_min is None or row.wave_max is None:
        return
    yield Link(
        "#cutout",
        service=soda_descriptor(row, ctx.base_url, f"soda-{row.spectrum_id}"),
        description=f"Cut out a wavelength range between {row.wave_min:.6g} and "
        f"{row.wave_max:.6g} m (SODA sync; BAND in metres)",
        content_type="application/x-votable+xml",
        local_semantics="cutout",
    )


@link_provider
def fits_header(ctx: LinkContext, row: SpectrumRow) -> Iterator[Link]:
    yield Link(
        "#auxiliary",
        access_url=f"{_spectrum_url(ctx, row)}/header",
        description="FITS headers of the original file, as text",
        content_type="text/plain",
        local_semantics="fits-header",
    )


link_provider(similar_spectra)  # the embeddings' "similar spectra" service descriptor
