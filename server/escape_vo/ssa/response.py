"""SSA 1.1 query responses: the results VOTable and the FORMAT=METADATA document.

The FIELDs are the columns of ssa.ssa (schema/ssa.yaml) plus ssa:Query.Score. One row per
spectrum and requested format: the native row downloads the original file, the others the
conversions (/spectra/{id}?FORMAT=...), 'graphic' the PNG preview. After the results RESOURCE
come two service descriptors referencing the publisher_did FIELD: DataLink links (pyvo
iter_datalinks, TOPCAT) and SODA sync cutouts (pyvo SSARecord.processed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escape_vo.schema.model import Column, find_table
from escape_vo.soda.descriptor import SODA_SYNC
from escape_vo.spectra.convert import KINDS
from escape_vo.spectra.vodoc import Param, ServiceDescriptor, table_document
from escape_vo.ssa.query import PARAMETERS

SCORE = Column(
    "score",
    "double",
    "How well the spectrum matches the query: 1 at the centre of the search cone, falling "
    "to 0 at its edge (1 for all when POS is not given). Rows are sorted by it.",
    utype="ssa:Query.Score",
)
ID_FIELD = "publisher_did"
_HIDDEN = {"healpix"}


def view_columns() -> list[Column]:
    return [c for c in find_table("ssa.ssa").columns if c.name not in _HIDDEN]


def response_columns() -> list[Column]:
    return [SCORE, *view_columns()]


def _params(publisher: str) -> list[Param]:
    return [
        Param("DataModel", "Spectrum-1.1", utype="ssa:Dataset.DataModel"),
        Param("DatasetType", "Spectrum", utype="ssa:Dataset.Type"),
        Param("SpaceFrame", "ICRS", ucd="pos.frame", utype="ssa:CoordSys.SpaceFrame.Name"),
        Param("SpectralUnit", "m", utype="ssa:Char.SpectralAxis.Unit"),
        Param("SpectralUcd", "em.wl", utype="ssa:Char.SpectralAxis.Ucd"),
        Param("CreationType", "archival", utype="ssa:DataID.CreationType"),
        Param("Publisher", publisher, utype="ssa:Curation.Publisher"),
    ]


def descriptors(base_url: str) -> str:
    ident = Param("ID", "", ucd="meta.id;meta.main", ref=ID_FIELD)
    links = ServiceDescriptor(
        descriptor_id="datalink",
        access_url=f"{base_url}/datalink/links",
        standard_id="ivo://ivoa.net/std/DataLink#links-1.1",
        input_params=[ident],
        description="DataLink links of each spectrum: original file, conversions, preview, "
        "cutout service, FITS header",
    )
    soda = ServiceDescriptor(
        descriptor_id="soda",
        access_url=f"{base_url}/soda/sync",
        standard_id=SODA_SYNC,
        input_params=[
            Param("ID", "", ucd="meta.ref.url;meta.curation", ref=ID_FIELD),
            Param(
                "BAND",
                "",
                datatype="double",
                arraysize="2",
                unit="m",
                ucd="em.wl;stat.interval",
                xtype="interval",
                description="Wavelength interval to extract, 'lo hi' in metres",
            ),
            Param(
                "FLUXCALIB",
                "",
                ucd="meta.code;phot.calib",
                options=["RELATIVE", "ABSOLUTE"],
                description="RELATIVE: flux divided by its median",
            ),
            Param(
                "RESPONSEFORMAT", "", ucd="meta.code.mime", options=[k.media_type for k in KINDS]
            ),
        ],
        description="Spectral cutouts of each spectrum",
    )
    return links.xml() + soda.xml()


def _variant(batch: pa.RecordBatch, kind: str, media: str) -> pa.RecordBatch:
    if kind == "native":
        return batch
    names = batch.schema.names
    arrays = list(batch.columns)
    ref = arrays[names.index("access_reference")]
    if kind == "graphic":
        new_ref = pc.replace_substring_regex(ref, pattern="/file$", replacement="/preview")
    else:
        new_ref = pc.replace_substring_regex(ref, pattern="/file$", replacement=f"?FORMAT={kind}")
    arrays[names.index("access_reference")] = new_ref
    fmt = arrays[names.index("access_format")]
    arrays[names.index("access_format")] = pa.array([media] * len(batch), fmt.type)
    size = arrays[names.index("access_size")]
    arrays[names.index("access_size")] = pa.nulls(len(batch), size.type)
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def expand_formats(
    batches: Iterable[pa.RecordBatch], formats: list[tuple[str, str]]
) -> Iterator[pa.RecordBatch]:
    """Each spectrum once per requested format, the rows of one spectrum next to each other."""
    for batch in batches:
        if len(formats) == 1:
            yield _variant(batch, *formats[0])
            continue
        table = pa.Table.from_batches([_variant(batch, *f) for f in formats])
        n, k = len(batch), len(formats)
        order = (np.arange(k)[None, :] * n + np.arange(n)[:, None]).ravel()
        yield from table.take(pa.array(order)).to_batches()


def results_document(
    batches: Iterable[pa.RecordBatch],
    *,
    formats: list[tuple[str, str]],
    maxrec: int,
    infos: list[tuple[str, str]],
    info_content: dict[str, str],
    base_url: str,
    publisher: str,
) -> Iterator[bytes]:
    return table_document(
        response_columns(),
        expand_formats(batches, formats),
        max_rows=maxrec,
        infos=infos,
        info_content=info_content,
        params=_params(publisher),
        field_ids={ID_FIELD: ID_FIELD},
        trailer=descriptors(base_url),
    )


def metadata_document(base_url: str, publisher: str) -> Iterator[bytes]:
    """FORMAT=METADATA: every input parameter (INPUT:...) and every output FIELD, no rows."""
    inputs = [
        Param(
            f"INPUT:{p.name}", "", datatype=p.datatype, arraysize=p.arraysize, unit=p.unit,
            ucd=p.ucd, description=p.description,
        )
        for p in PARAMETERS
    ]  # fmt: skip
    return table_document(
        response_columns(),
        [],
        infos=[("SERVICE_PROTOCOL", "1.1"), ("REQUEST", "queryData")],
        info_content={"SERVICE_PROTOCOL": "SSAP"},
        params=[*inputs, *_params(publisher)],
        field_ids={ID_FIELD: ID_FIELD},
        trailer=descriptors(base_url),
    )
