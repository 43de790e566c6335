"""The client's DataLink parsing: rows to Links, empty cells and absent columns to None."""

from __future__ import annotations

import pytest

from escape_vo_client.datalink import parse_links, this_product

_FIELDS = """
<FIELD name="ID" datatype="char" arraysize="*"/>
<FIELD name="access_url" datatype="char" arraysize="*"/>
<FIELD name="error_message" datatype="char" arraysize="*"/>
<FIELD name="semantics" datatype="char" arraysize="*"/>
<FIELD name="content_type" datatype="char" arraysize="*"/>
<FIELD name="content_length" datatype="long"><VALUES null="-1"/></FIELD>
<FIELD name="checksum" datatype="char" arraysize="*"/>
"""


def _document(rows: list[tuple[str, ...]], fields: str = _FIELDS, status: str = "OK") -> bytes:
    cells = "".join("<TR>" + "".join(f"<TD>{c}</TD>" for c in row) + "</TR>" for row in rows)
    return f"""<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results"><INFO name="QUERY_STATUS" value="{status}">why</INFO>
<TABLE>{fields}<DATA><TABLEDATA>{cells}</TABLEDATA></DATA></TABLE></RESOURCE>
<RESOURCE type="meta" utype="adhoc:service"><PARAM name="accessURL" datatype="char"
 arraysize="*" value="http://x.example/soda"/></RESOURCE>
</VOTABLE>""".encode()


def test_rows_become_links_with_empty_cells_as_none() -> None:
    sha = "a" * 64
    rows = [
        ("ivo://x/a", "http://x.example/a.fits", "", "#this", "application/fits", "2880",
         f"sha256:{sha}"),
        ("ivo://x/a", "http://x.example/a.png", "", "#preview", "image/png", "-1", ""),
        ("ivo://x/b", "", "no such spectrum", "#this", "", "", ""),
    ]  # fmt: skip
    links = parse_links(_document(rows))
    assert [(x.id, x.semantics) for x in links] == [
        ("ivo://x/a", "#this"),
        ("ivo://x/a", "#preview"),
        ("ivo://x/b", "#this"),
    ]
    first, preview, missing = links
    assert first.content_length == 2880 and first.checksum is not None
    assert (first.checksum.algorithm, first.checksum.hexdigest) == ("sha256", sha)
    assert preview.content_length is None and preview.checksum is None
    assert preview.error_message is None and preview.service_def is None  # absent column
    assert missing.access_url is None and missing.error_message == "no such spectrum"
    product = this_product(links[:2], "ivo://x/a")
    assert (product.url, product.size) == ("http://x.example/a.fits", 2880)


def test_minimal_columns_and_error_document() -> None:
    fields = '<FIELD name="ID" datatype="char" arraysize="*"/>' + (
        '<FIELD name="semantics" datatype="char" arraysize="*"/>'
    )
    (link,) = parse_links(_document([("ivo://x/c", "#this")], fields))
    assert link.access_url is None and link.content_length is None and link.checksum is None
    with pytest.raises(ValueError, match="DataLink service error: why"):
        parse_links(_document([], fields, status="ERROR"))
