"""The DataLink 1.1 links VOTable: the table of links plus the service descriptors they use."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa

from escape_vo.datalink.registry import Link
from escape_vo.schema.model import Column
from escape_vo.spectra.vodoc import Param, ServiceDescriptor, table_document

LINKS_STANDARD = "ivo://ivoa.net/std/DataLink#links-1.1"
DATALINK_MIME = "application/x-votable+xml;content=datalink"

# DataLink 1.1 section 3.2, table 1: names, UCDs, and content_length as long in bytes.
COLUMNS = [
    Column("ID", "char", "Input identifier", ucd="meta.id;meta.main"),
    Column("access_url", "char", "Link to data or service", ucd="meta.ref.url"),
    Column("service_def", "char", "Reference to a service descriptor resource", ucd="meta.ref"),
    Column("error_message", "char", "Error if an access_url cannot be created",
           ucd="meta.code.error"),
    Column("description", "char", "Human-readable text describing this link", ucd="meta.note"),
    Column("semantics", "char", "Term from a controlled vocabulary describing the link",
           ucd="meta.code"),
    Column("content_type", "char", "Mime-type of the content the link returns",
           ucd="meta.code.mime"),
    Column("content_length", "long", "Size of the download the link returns", unit="byte",
           ucd="phys.size;meta.file"),
    Column("content_qualifier", "char", "Nature of the content the link returns (product type)",
           ucd="meta.code.class"),
    Column("local_semantics", "char", "Identifies corresponding links of different IDs",
           ucd="meta.id.assoc"),
    Column("link_auth", "char", "Whether the link requires authentication", ucd="meta.code"),
    Column("link_authorized", "boolean", "Whether the caller is authorized to use the link",
           ucd="meta.code"),
]  # fmt: skip


def links_document(
    rows: Sequence[tuple[str, Link]], overflow: bool = False, self_descriptor=None
) -> Iterator[bytes]:
    """The document for (ID, Link) pairs in order; service descriptors get unique XML IDs."""
    descriptors: dict[str, ServiceDescriptor] = {}
    service_def: list[str | None] = []
    for _, link in rows:
        if link.service is None:
            service_def.append(None)
            continue
        key = link.service.descriptor_id
        base, n = key, 1
        while key in descriptors and descriptors[key] is not link.service:
            n += 1
            key = f"{base}-{n}"
        descriptors[key] = link.service
        service_def.append(key)
    links = [link for _, link in rows]
    batch = pa.record_batch(
        [
            pa.array([i for i, _ in rows], pa.string()),
            pa.array([x.access_url for x in links], pa.string()),
            pa.array(service_def, pa.string()),
            pa.array([x.error_message for x in links], pa.string()),
            pa.array([x.description for x in links], pa.string()),
            pa.array([x.semantics for x in links], pa.string()),
            pa.array([x.content_type for x in links], pa.string()),
            pa.array([x.content_length for x in links], pa.int64()),
            pa.array([x.content_qualifier for x in links], pa.string()),
            pa.array([x.local_semantics for x in links], pa.string()),
            pa.array([None if x.error_message else "false" for x in links], pa.string()),
            pa.array([None if x.error_message else True for x in links], pa.bool_()),
        ],
        names=[c.name for c in COLUMNS],
    )
    trailer = "".join(_with_id(desc, key).xml() for key, desc in descriptors.items()) + (
        self_descriptor.xml() if self_descriptor is not None else ""
    )
    body = table_document(
        COLUMNS,
        [batch],
        infos=[("standardID", LINKS_STANDARD)],
        table_attrs='name="links"',
        trailer=trailer,
    )
    if not overflow:
        return body
    return _mark_overflow(body)


def _with_id(desc: ServiceDescriptor, key: str) -> ServiceDescriptor:
    if desc.descriptor_id == key:
        return desc
    from dataclasses import replace

    return replace(desc, descriptor_id=key)


def _mark_overflow(body: Iterator[bytes]) -> Iterator[bytes]:
    """DALI overflow indicator after the TABLE, when IDs beyond the limit were dropped."""
    chunks = list(body)
    last = chunks[-1].decode()
    marker = "</TABLE>\n"
    cut = last.rfind(marker) + len(marker)
    last = last[:cut] + '<INFO name="QUERY_STATUS" value="OVERFLOW"/>\n' + last[cut:]
    return iter([*chunks[:-1], last.encode()])


def self_description(access_url: str) -> ServiceDescriptor:
    """A descriptor of the links endpoint itself (DataLink 1.1 section 4.3)."""
    return ServiceDescriptor(
        descriptor_id="this-links-service",
        access_url=access_url,
        standard_id=LINKS_STANDARD,
        input_params=[
            Param(
                "ID",
                "",
                ucd="meta.id;meta.main",
                description="Publisher DID of a spectrum (obs_publisher_did); repeatable",
            ),
        ],
        description="DataLink links of the spectra of this archive",
    )
