"""Result writers, checked by reading their output back with real parsers.

astropy (VOTable with verify='exception', CSV, FITS), pyarrow (Parquet), pyvo (QUERY_STATUS
handling), json, and STILTS votlint when it is installed.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits, votable
from astropy.table import Table

from escape_vo.schema.model import Column
from escape_vo.votable import SUPPORTED, error_votable, resolve_format, write_result
from escape_vo.votable.formats import OutputFormat
from escape_vo.votable.votable import Base64Lines

VOTABLE_FORMATS = ["votable", "votable/td", "votable/b"]
ALL_FORMATS = [*VOTABLE_FORMATS, "csv", "tsv", "json", "parquet", "fits"]
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
STILTS = shutil.which("stilts")

COLUMNS = [
    Column("id", "long", description="Row id", ucd="meta.id;meta.main"),
    Column("n", "int", unit="count"),
    Column("s16", "short"),
    Column("u8", "unsignedByte"),
    Column("flag", "boolean"),
    Column("x", "double", unit="deg", ucd="pos.eq.ra", utype="obscore:Char.x"),
    Column("y", "float", unit="mag"),
    Column("name", "char", arraysize="*", description='Text with <XML> & "quotes"'),
    Column("label", "unicodeChar", arraysize="*", description="Non-ASCII: é, 漢字"),
    Column("code", "char", arraysize="4"),
    Column("t_obs", "char", arraysize="*", xtype="timestamp", ucd="time.start"),
    Column("pos", "double", arraysize="2", xtype="point", unit="deg"),
    Column("circ", "double", arraysize="3", xtype="circle", unit="deg"),
    Column("poly", "double", arraysize="*", xtype="polygon", unit="deg"),
]
NAMES = [c.name for c in COLUMNS]

NASTY = [
    "plain",
    'a "quoted", value',
    "<tag> & </tag>",
    "line\nbreak",
    "tab\there",
    "cr\r\nlf",
    "",
    None,
    "back\\slash",
    "  spaced  ",
]
UNICODE = ["é", "漢字", "𝄞 clef", "", None, "ascii", "ümlaut ß", "日本語テキスト", "x", "ñ"]
T0 = 1_700_000_000_123_456  # 2023-11-14T22:13:20.123456


def _rows() -> dict[str, list]:
    """Ten rows covering extremes, specials and NULLs in every column."""
    return {
        "id": [0, 1, I64_MIN + 1, I64_MAX, None, -1, 42, 7, 8, 9],
        "n": [1, None, -(2**31), 2**31 - 1, 0, 5, 6, 7, 8, 9],
        "s16": [1, 2, -(2**15), 2**15 - 1, None, 0, 0, 0, 0, 0],
        "u8": [0, 255, 1, None, 2, 3, 4, 5, 6, 7],
        "flag": [True, False, None, True, False, True, False, True, False, True],
        "x": [
            0.1,
            float("nan"),
            float("inf"),
            float("-inf"),
            None,
            1e300,
            5e-324,
            -0.0,
            1 / 3,
            123456.789,
        ],
        "y": [
            np.float32(0.1),
            None,
            np.float32(3.4e38),
            np.float32(-1.5),
            0.0,
            1.0,
            2.0,
            3.0,
            4.0,
            5.0,
        ],
        "name": NASTY,
        "label": UNICODE,
        "code": ["ABCD", "AB", None, "", "WXYZ", "A", "B", "C", "D", "E"],
        "t_obs": [T0, None, 0, 946_684_800_000_000, T0, T0, T0, T0, T0, T0],
        "pos": [[10.5, -20.25], None, [0.0, 90.0], [359.9, -89.9]] + [[1.0, 2.0]] * 6,
        "circ": [[10.0, 20.0, 0.5], [1.0, 2.0, 3.0], None] + [[0.0, 0.0, 1.0]] * 7,
        "poly": [[0.0, 0.0, 1.0, 0.0, 1.0, 1.0], None, [], [5.0, 5.0, 6.0, 5.0, 6.0, 6.0, 5.0, 6.0]]
        + [[1.0, 1.0, 2.0, 1.0, 2.0, 2.0]] * 6,
    }


def _batch(rows: dict[str, list], start: int = 0, stop: int | None = None) -> pa.RecordBatch:
    sl = slice(start, stop)
    arrays = [
        pa.array(rows["id"][sl], pa.int64()),
        pa.array(rows["n"][sl], pa.int32()),
        pa.array(rows["s16"][sl], pa.int16()),
        pa.array(rows["u8"][sl], pa.int16()),  # a wider type than declared: conform casts it
        pa.array(rows["flag"][sl], pa.bool_()),
        pa.array(rows["x"][sl], pa.float64()),
        pa.array(rows["y"][sl], pa.float32()),
        pa.array(rows["name"][sl], pa.string()),
        pa.array(rows["label"][sl], pa.large_string()),
        pa.array(rows["code"][sl], pa.string()),
        pa.array(rows["t_obs"][sl], pa.timestamp("us")),
        pa.array(rows["pos"][sl], pa.list_(pa.float64())),
        pa.array(rows["circ"][sl], pa.list_(pa.float64())),
        pa.array(rows["poly"][sl], pa.list_(pa.float64())),
    ]
    return pa.record_batch(arrays, names=NAMES)


def _batches(sizes: tuple[int, ...] = (3, 0, 1, 6)) -> list[pa.RecordBatch]:
    rows = _rows()
    out, at = [], 0
    for size in sizes:
        out.append(_batch(rows, at, at + size))
        at += size
    return out


def _write(fmt: str | OutputFormat, batches, columns=COLUMNS, **kw) -> bytes:
    fmt = resolve_format(fmt) if isinstance(fmt, str) else fmt
    return b"".join(write_result(fmt, columns, iter(batches), **kw))


def _parse_votable(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any astropy VOTable warning fails the test
        return votable.parse(io.BytesIO(data), verify="exception")


def _statuses(doc) -> list[tuple[str, str | None]]:
    return [(i.value, i.content) for i in doc.resources[0].infos if i.name == "QUERY_STATUS"]


def _iso(micros: int | None) -> str | None:
    if micros is None:
        return None
    return np.datetime_as_string(np.datetime64(micros, "us"), unit="us")


# --- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name", "mime"),
    [
        (None, "votable", "application/x-votable+xml;serialization=BINARY2"),
        ("", "votable", "application/x-votable+xml;serialization=BINARY2"),
        ("votable", "votable", "application/x-votable+xml;serialization=BINARY2"),
        ("VOTable/B2", "votable", "application/x-votable+xml;serialization=BINARY2"),
        ("votable/td", "votable/td", "application/x-votable+xml;serialization=TABLEDATA"),
        ("application/x-votable+xml", "votable", "application/x-votable+xml;serialization=BINARY2"),
        (
            "application/x-votable+xml; serialization=tabledata",
            "votable/td",
            "application/x-votable+xml;serialization=TABLEDATA",
        ),
        ("text/xml", "votable", "text/xml"),
        ("text/xml;serialization=TABLEDATA", "votable/td", "text/xml;serialization=TABLEDATA"),
        ("csv", "csv", "text/csv;header=present"),
        ("text/csv", "csv", "text/csv;header=present"),
        ("text/csv;header=present", "csv", "text/csv;header=present"),
        ("text/csv;header=absent", "csv", "text/csv;header=absent"),
        ("text/csv; charset=UTF-8", "csv", "text/csv;header=present"),
        ("tsv", "tsv", "text/tab-separated-values"),
        ("text/tab-separated-values", "tsv", "text/tab-separated-values"),
        ("fits", "fits", "application/fits"),
        ("application/fits", "fits", "application/fits"),
        ("parquet", "parquet", "application/vnd.apache.parquet"),
        ("application/vnd.apache.parquet", "parquet", "application/vnd.apache.parquet"),
        ("json", "json", "application/json"),
        ("application/json", "json", "application/json"),
    ],
)
def test_resolve_format(value, name, mime):
    fmt = resolve_format(value)
    assert (fmt.name, fmt.mime_type) == (name, mime)


@pytest.mark.parametrize(
    "value",
    [
        "html",
        "text/html",
        "application/x-votable+xml;serialization=FITS",
        "text/csv;header=maybe",
        "text/csv;charset=latin-1",
        "application/fits;foo=bar",
        "votable;x",
    ],
)
def test_resolve_format_rejects_with_the_list(value):
    with pytest.raises(ValueError, match=r"supported values are: .*text/csv"):
        resolve_format(value)


def test_supported_formats_resolve_to_themselves():
    for info in SUPPORTED:
        assert resolve_format(info.mime_type) == info.format
        for alias in info.aliases:
            assert resolve_format(alias) == info.format
    assert resolve_format("csv").extension == "csv"
    assert resolve_format("votable").extension == "vot"


# --- VOTable ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_votable_round_trip(fmt):
    rows = _rows()
    data = _write(fmt, _batches(), infos=[("QUERY", "SELECT * FROM t WHERE a < 'é'")])
    doc = _parse_votable(data)
    assert doc.version == "1.4"
    assert _statuses(doc) == [("OK", None)]
    infos = {i.name: i.value for i in doc.resources[0].infos}
    assert infos["QUERY"] == "SELECT * FROM t WHERE a < 'é'"
    table = doc.get_first_table()
    assert table.name == "result"
    fields = {f.name: f for f in table.fields}
    assert [f.name for f in table.fields] == NAMES
    assert fields["id"].description == "Row id"
    assert fields["id"].ucd == "meta.id;meta.main"
    assert str(fields["x"].unit) == "deg"
    assert fields["x"].utype == "obscore:Char.x"
    assert fields["name"].description == 'Text with <XML> & "quotes"'
    assert fields["t_obs"].xtype == "timestamp"
    assert (fields["t_obs"].datatype, fields["t_obs"].arraysize) == ("char", "*")
    assert (fields["pos"].xtype, fields["pos"].arraysize) == ("point", "2")
    assert (fields["circ"].xtype, fields["circ"].arraysize) == ("circle", "3")
    assert (fields["poly"].xtype, fields["poly"].arraysize) == ("polygon", "*")
    assert fields["code"].arraysize == "4"
    assert fields["u8"].datatype == "unsignedByte"

    a = table.array
    assert len(a) == 10
    ids = rows["id"]
    for i, v in enumerate(ids):
        assert (a["id"].mask[i], None if a["id"].mask[i] else int(a["id"][i])) == (
            v is None,
            v,
        )
    if fmt == "votable/b":  # BINARY has no null flags: the sentinels read back as NULL
        assert list(a["n"].filled(99)) == [1, 99, 99, 2**31 - 1, 0, 5, 6, 7, 8, 9]
        assert list(a["u8"].filled(99)) == [0, 99, 1, 99, 2, 3, 4, 5, 6, 7]
        assert a["s16"].mask[4] and a["s16"].mask[2]
    else:
        assert list(a["n"].filled(99)) == [1, 99, -(2**31), 2**31 - 1, 0, 5, 6, 7, 8, 9]
        assert list(a["u8"].filled(99)) == [0, 255, 1, 99, 2, 3, 4, 5, 6, 7]
        assert a["s16"].mask[4] and int(a["s16"][2]) == -(2**15)
    assert list(a["flag"].filled(False))[:2] == [True, False] and a["flag"].mask[2]
    x = a["x"]
    assert x[0] == 0.1 and x[5] == 1e300 and x[6] == 5e-324 and x[8] == 1 / 3
    assert math.copysign(1, x[7]) == -1.0
    assert np.isposinf(x.data[2]) and np.isneginf(x.data[3])
    assert x.mask[1] and x.mask[4]  # NaN and NULL are both masked by astropy
    assert np.float32(a["y"][0]) == np.float32(0.1) and a["y"].mask[1]

    names = [str(v) for v in a["name"]]
    expected = [v or "" for v in NASTY]  # astropy reads NULL strings as ""
    if fmt == "votable/td":  # astropy strips blanks around TD content
        expected = [v.strip() for v in expected]
    assert names == expected
    assert [str(v) for v in a["label"]] == [v or "" for v in UNICODE]
    assert [str(v) for v in a["code"]] == ["ABCD", "AB", "", "", "WXYZ", "A", "B", "C", "D", "E"]
    assert str(a["t_obs"][0]) == "2023-11-14T22:13:20.123456"
    assert str(a["t_obs"][2]) == "1970-01-01T00:00:00.000000"
    assert list(a["pos"][0]) == [10.5, -20.25]
    assert a["pos"].mask[1].all()
    assert list(a["circ"][0]) == [10.0, 20.0, 0.5]
    assert list(a["poly"][3]) == rows["poly"][3]
    assert len(a["poly"][2]) == 0


def test_binary2_null_flags_are_set():
    """BINARY2 marks NULLs in the per-row bitmap (astropy does not expose it for strings)."""
    cols = [Column("a", "char"), Column("b", "long"), Column("c", "double")]
    batch = pa.record_batch(
        [pa.array([None, "x"]), pa.array([None, 1]), pa.array([2.0, None])], names=["a", "b", "c"]
    )
    data = _write("votable", [batch], cols)
    stream = re.search(rb"<STREAM encoding=\"base64\">(.*)</STREAM>", data, re.S).group(1)
    raw = base64.b64decode(stream)
    assert raw[0] == 0b1100_0000  # row 1: a and b are NULL
    assert raw[1:5] == b"\0\0\0\0"  # empty string
    row2 = raw[1 + 4 + 8 + 8 :]
    assert row2[0] == 0b0010_0000  # row 2: c is NULL
    assert row2[1:6] == b"\0\0\0\x01x"


def test_binary_serialization_declares_integer_nulls():
    data = _write("votable/b", _batches())
    assert b'<VALUES null="-9223372036854775808"/>' in data
    assert b'<VALUES null="-2147483648"/>' in data


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_votable_many_batches_of_different_sizes(fmt):
    rng = np.random.default_rng(3)
    sizes = [0, 1, 2, 57, 58, 1000, 0, 3, 4097]
    batches, start = [], 0
    cols = [Column("i", "long"), Column("s", "char"), Column("d", "double")]
    for size in sizes:
        ids = np.arange(start, start + size)
        batches.append(
            pa.record_batch(
                [
                    pa.array(ids),
                    pa.array([f"row {i}" if i % 7 else None for i in ids]),
                    pa.array(rng.random(size)),
                ],
                names=["i", "s", "d"],
            )
        )
        start += size
    table = _parse_votable(_write(fmt, batches, cols)).get_first_table().array
    assert len(table) == start
    assert list(table["i"]) == list(range(start))
    assert str(table["s"][8]) == "row 8"
    expected = np.concatenate([b.column(2).to_numpy() for b in batches])
    assert np.array_equal(np.asarray(table["d"]), expected)  # bit-exact doubles


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
@pytest.mark.parametrize(("provided", "overflow"), [(4, False), (5, True), (9, True), (0, False)])
def test_votable_overflow_exactly_when_more_rows_than_max(fmt, provided, overflow):
    batches = _batches((min(provided, 3), max(provided - 3, 0)))
    data = _write(fmt, batches, max_rows=4)
    doc = _parse_votable(data)
    assert len(doc.get_first_table().array) == min(provided, 4)
    expected = [("OK", None), ("OVERFLOW", None)] if overflow else [("OK", None)]
    assert _statuses(doc) == expected
    assert (
        data.rstrip().endswith(
            b'</TABLE>\n<INFO name="QUERY_STATUS" value="OVERFLOW"/>\n</RESOURCE>\n</VOTABLE>'
        )
        == overflow
    )


def test_overflow_with_max_rows_zero_and_none():
    doc = _parse_votable(_write("votable", _batches(), max_rows=0))
    assert len(doc.get_first_table().array) == 0
    assert _statuses(doc)[-1][0] == "OVERFLOW"
    doc = _parse_votable(_write("votable", _batches(), max_rows=None))
    assert len(doc.get_first_table().array) == 10
    assert _statuses(doc) == [("OK", None)]


def test_pyvo_sees_overflow_and_error():
    import pyvo

    with pytest.warns(pyvo.dal.DALOverflowWarning):
        result = pyvo.dal.DALResults(_parse_votable(_write("votable", _batches(), max_rows=3)))
    assert result.status[0] == "OVERFLOW"
    assert len(result) == 3
    with pytest.raises(pyvo.dal.DALQueryError, match="boom"):
        pyvo.dal.DALResults(_parse_votable(_write("votable", _failing())))


def _failing(after: int = 1) -> Iterator[pa.RecordBatch]:
    batches = _batches((3, 3, 4))
    yield from batches[:after]
    raise RuntimeError("boom: the database went away")


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_votable_error_mid_stream_ends_with_error_info(fmt):
    data = _write(fmt, _failing(after=2))
    doc = _parse_votable(data)
    assert len(doc.get_first_table().array) == 6  # what was sent stays
    statuses = _statuses(doc)
    assert statuses[0] == ("OK", None)
    assert statuses[-1][0] == "ERROR"
    assert "after 6 rows" in statuses[-1][1] and "boom" in statuses[-1][1]


def test_votable_error_in_encoding_is_reported_too():
    cols = [Column("p", "double", arraysize="2", xtype="point")]
    bad = pa.record_batch([pa.array([[1.0, 2.0, 3.0]], pa.list_(pa.float64()))], names=["p"])
    doc = _parse_votable(_write("votable", [bad], cols))
    assert _statuses(doc)[-1][0] == "ERROR"
    assert "arraysize 2" in _statuses(doc)[-1][1]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "parquet", "fits"])
def test_other_formats_raise_mid_stream(fmt):
    with pytest.raises(RuntimeError, match="boom"):
        _write(fmt, _failing(after=2))


def test_source_is_closed_on_overflow():
    closed = []

    def source() -> Iterator[pa.RecordBatch]:
        try:
            yield from _batches((3, 3, 4))
        finally:
            closed.append(True)

    _write("csv", source(), max_rows=2)
    assert closed == [True]


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_empty_result_is_valid(fmt):
    data = _write(fmt, [])
    data_with_empty_batch = _write(fmt, [_batch(_rows(), 0, 0)])
    for blob in (data, data_with_empty_batch):
        if fmt in VOTABLE_FORMATS:
            doc = _parse_votable(blob)
            assert len(doc.get_first_table().array) == 0
            assert [f.name for f in doc.get_first_table().fields] == NAMES
        elif fmt == "csv":
            assert blob == (",".join(NAMES) + "\r\n").encode()
        elif fmt == "tsv":
            assert blob == ("\t".join(NAMES) + "\n").encode()
        elif fmt == "json":
            doc = json.loads(blob)
            assert doc["data"] == [] and [m["name"] for m in doc["metadata"]] == NAMES
        elif fmt == "parquet":
            table = pq.read_table(io.BytesIO(blob))
            assert table.num_rows == 0 and table.column_names == NAMES
        elif fmt == "fits":
            with fits.open(io.BytesIO(blob)) as hdus:
                assert hdus[1].header["NAXIS2"] == 0
                assert hdus[1].columns.names == NAMES


def test_error_votable():
    data = error_votable("Query failed: column 'x' <unknown> & more", infos=[("QUERY", "SELECT")])
    doc = _parse_votable(data)
    assert _statuses(doc) == [("ERROR", "Query failed: column 'x' <unknown> & more")]
    assert doc.resources[0].type == "results"
    assert not doc.resources[0].tables
    import pyvo

    with pytest.raises(pyvo.dal.DALQueryError, match="column 'x'"):
        pyvo.dal.DALResults(doc)


def test_base64_chunks_concatenate_to_valid_base64():
    rng = np.random.default_rng(0)
    payload = rng.integers(0, 256, 10_000, dtype=np.uint8).tobytes()
    encoder = Base64Lines()
    out, at = b"", 0
    for size in (1, 2, 56, 57, 58, 0, 1000, 3, 8822, 1):
        out += encoder.feed(memoryview(payload)[at : at + size])
        at += size
    assert at == len(payload)
    out += encoder.flush()
    assert all(len(line) == 76 for line in out.split(b"\n")[:-2])
    assert base64.b64decode(out) == payload


def _stilts(*args: str) -> str:
    run = subprocess.run([STILTS, *args], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout + run.stderr


# votlint of STILTS 3.4.7 (Debian) mis-parses variable-length arrays with xtype="polygon": its
# BINARY2 reader loops over the declared element count (-1) instead of the count read from the
# stream, and its TABLEDATA reader rejects an empty TD. STIL's table reader (TOPCAT) has neither
# problem (test_stilts_reads_every_serialization), nor has a polygon-less array (checked here).
_LINT_COLUMNS = [
    Column(c.name, c.datatype, c.description, c.arraysize, None, c.unit, c.ucd, c.utype)
    if c.xtype == "polygon"
    else c
    for c in COLUMNS
]


@pytest.mark.skipif(STILTS is None, reason="stilts (Debian package) is not installed")
@pytest.mark.parametrize("fmt", [*VOTABLE_FORMATS, "error", "overflow", "failed"])
def test_stilts_votlint_is_silent(fmt, tmp_path: Path):
    if fmt == "error":
        data = error_votable("bad query", infos=[("QUERY", "SELECT 1")])
    elif fmt == "overflow":
        data = _write("votable", _batches(), _LINT_COLUMNS, max_rows=8)
    elif fmt == "failed":
        data = _write("votable", _failing(after=2), _LINT_COLUMNS)
    else:
        data = _write(fmt, _batches(), _LINT_COLUMNS, infos=[("QUERY", "SELECT * FROM t")])
    path = tmp_path / "result.vot"
    path.write_bytes(data)
    assert _stilts("votlint", f"votable={path}").strip() == ""


@pytest.mark.skipif(STILTS is None, reason="stilts (Debian package) is not installed")
@pytest.mark.parametrize("fmt", [*VOTABLE_FORMATS, "fits"])
def test_stilts_reads_every_serialization(fmt, tmp_path: Path):
    path = tmp_path / "result"
    path.write_bytes(_write(fmt, _batches()))
    ifmt = "fits" if fmt == "fits" else "votable"
    out = _stilts("tpipe", f"in={path}", f"ifmt={ifmt}", "omode=out", "ofmt=csv")
    table = Table.read(out, format="ascii.csv")
    assert table.colnames == NAMES and len(table) == 10
    assert list(table["id"][:4]) == [0, 1, I64_MIN + 1, I64_MAX]
    assert str(table["t_obs"][0]) == "2023-11-14T22:13:20.123456"
    assert str(table["poly"][3]) == "(5.0, 5.0, 6.0, 5.0, 6.0, 6.0, 5.0, 6.0)"
    assert str(table["pos"][0]) == "(10.5, -20.25)"
    if fmt != "fits":  # STIL reads FITS strings as Latin-1
        assert list(table["label"][:3]) == ["é", "漢字", "𝄞 clef"]


# --- CSV, TSV, JSON ---------------------------------------------------------------------------


def test_csv_round_trip_with_astropy():
    rows = _rows()
    data = _write("csv", _batches())
    text = data.decode()
    assert text.startswith(",".join(NAMES) + "\r\n")
    assert '"a ""quoted"", value"' in text
    assert '"line\nbreak"' in text
    table = Table.read(data.decode(), format="ascii.csv", fast_reader=False)
    assert table.colnames == NAMES
    assert len(table) == 10
    assert list(table["id"].filled(0)) == [0 if v is None else v for v in rows["id"]]
    assert table["id"].mask[4]
    assert [
        None if m else str(v) for v, m in zip(table["name"], table["name"].mask, strict=True)
    ] == [v.replace("\r\n", "\n").strip() if v else None for v in NASTY]  # "" and NULL alike
    assert list(table["label"].filled(""))[:3] == ["é", "漢字", "𝄞 clef"]
    assert str(table["t_obs"][0]) == "2023-11-14T22:13:20.123456"
    assert str(table["pos"][0]) == "10.5 -20.25"
    assert str(table["flag"][0]) == "True" or table["flag"][0] == "true"
    x = table["x"]
    assert x[0] == 0.1 and np.isnan(x[1]) and np.isposinf(x[2]) and np.isneginf(x[3])
    assert x.mask[4]


def test_csv_distinguishes_empty_string_and_null_and_can_omit_header():
    cols = [Column("a", "char"), Column("b", "int")]
    batch = pa.record_batch([pa.array(["", None, "x"]), pa.array([1, 2, None])], names=["a", "b"])
    assert _write("csv", [batch], cols) == b'a,b\r\n"",1\r\n,2\r\nx,\r\n'
    assert _write("text/csv;header=absent", [batch], cols) == b'"",1\r\n,2\r\nx,\r\n'


def test_tsv_escapes_tabs_and_newlines():
    data = _write("tsv", _batches()).decode()
    lines = data.split("\n")
    assert lines[0] == "\t".join(NAMES)
    assert len(lines) == 12 and lines[-1] == ""
    assert all(line.count("\t") == len(NAMES) - 1 for line in lines[:-1])
    assert "line\\nbreak" in data and "tab\\there" in data and "cr\\r\\nlf" in data
    assert "back\\\\slash" in data
    first = lines[1].split("\t")
    assert first[NAMES.index("t_obs")] == "2023-11-14T22:13:20.123456"
    assert first[NAMES.index("x")] == "0.1"
    third = lines[3].split("\t")
    assert third[NAMES.index("x")] == "Infinity"


def test_json_round_trip():
    rows = _rows()
    doc = json.loads(_write("json", _batches(), max_rows=10))
    assert doc["query_status"] == "OK"
    meta = {m["name"]: m for m in doc["metadata"]}
    assert meta["x"] == {
        "name": "x", "datatype": "double", "unit": "deg", "ucd": "pos.eq.ra",
        "utype": "obscore:Char.x",
    }  # fmt: skip
    assert meta["pos"]["xtype"] == "point"
    data = doc["data"]
    assert len(data) == 10 and all(len(r) == len(NAMES) for r in data)
    col = {name: [r[i] for r in data] for i, name in enumerate(NAMES)}
    assert col["id"] == rows["id"]  # int64 extremes survive exactly
    assert col["name"] == NASTY
    assert col["label"] == UNICODE
    assert col["x"][:5] == [0.1, None, None, None, None]  # NaN and infinities become null
    assert col["x"][5:9] == [1e300, 5e-324, -0.0, 1 / 3]
    assert col["flag"][:3] == [True, False, None]
    assert col["t_obs"][:2] == ["2023-11-14T22:13:20.123456", None]
    assert col["pos"][:2] == [[10.5, -20.25], None]
    assert col["poly"][2] == []
    assert json.loads(_write("json", _batches(), max_rows=9))["query_status"] == "OVERFLOW"
    assert "infos" not in doc  # none given
    infos = [("QUERY", 'SELECT "x" FROM t'), ("MODEL", "pca")]
    assert json.loads(_write("json", _batches(), infos=infos))["infos"] == dict(infos)


def test_json_escapes_control_characters():
    cols = [Column("s", "char")]
    batch = pa.record_batch([pa.array(['a\x01b\x1fc"\\'])], names=["s"])
    assert json.loads(_write("json", [batch], cols))["data"] == [['a\x01b\x1fc"\\']]


# --- Parquet and FITS -------------------------------------------------------------------------


def test_voparquet_round_trip():
    rows = _rows()
    data = _write("parquet", _batches(), max_rows=9, infos=[("QUERY", "SELECT 1")])
    file = pq.ParquetFile(io.BytesIO(data))
    meta = file.metadata.metadata
    assert meta[b"IVOA.VOTable-Parquet.version"] == b"1.0"
    doc = _parse_votable(meta[b"IVOA.VOTable-Parquet.content"])
    table = doc.get_first_table()
    assert [f.name for f in table.fields] == NAMES
    assert table.fields[NAMES.index("x")].ucd == "pos.eq.ra"
    assert _statuses(doc) == [("OK", None), ("OVERFLOW", None)]
    assert b"<DATA>" not in meta[b"IVOA.VOTable-Parquet.content"]
    result = file.read()
    assert result.schema.field("u8").type == pa.uint8()
    assert result.num_rows == 9
    assert result.column("id").to_pylist() == rows["id"][:9]
    assert result.column("name").to_pylist() == NASTY[:9]
    assert result.column("label").to_pylist() == UNICODE[:9]
    x = result.column("x").to_pylist()
    assert x[0] == 0.1 and math.isnan(x[1]) and x[2] == math.inf and x[4] is None
    assert result.column("poly").to_pylist()[:3] == rows["poly"][:3]
    assert result.column("t_obs").to_pylist()[:2] == ["2023-11-14T22:13:20.123456", None]


def test_voparquet_with_astropy():
    pytest.importorskip("pandas", reason="astropy reads Parquet through pandas")
    table = Table.read(io.BytesIO(_write("parquet", _batches())), format="parquet.votable")
    assert len(table) == 10 and str(table["x"].unit) == "deg"


def test_parquet_gathers_small_batches_into_row_groups():
    data = _write("parquet", _batches((1,) * 10))
    assert pq.ParquetFile(io.BytesIO(data)).metadata.num_row_groups == 1


def test_fits_round_trip():
    rows = _rows()
    data = _write("fits", _batches(), max_rows=9, infos=[("QUERY", "SELECT é")])
    assert len(data) % 2880 == 0
    with fits.open(io.BytesIO(data)) as hdus:
        header = hdus[1].header
        assert header["NAXIS2"] == 9
        assert header["OVERFLOW"] is True
        assert header["TTYPE1"] == "id" and header["TCOMM1"] == "Row id"
        assert header["TUCD6"] == "pos.eq.ra" and header["TUNIT6"] == "deg"
        assert header["TNULL1"] == I64_MIN  # not used by the data (I64_MIN + 1 is)
        assert header["TFORM14"].startswith("PD(")
        assert "QUERY: SELECT e" in str(header["COMMENT"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy warns that NULL logicals read as False
        table = Table.read(io.BytesIO(data), format="fits")
    assert len(table) == 9
    assert list(table["id"].filled(0)) == [0 if v is None else v for v in rows["id"][:9]]
    assert table["id"].mask[4] and not table["id"].mask[3]
    assert table["n"].mask[2]  # n has NULLs and spans all int32 values: TNULL must clash
    assert int(table["n"][3]) == 2**31 - 1
    assert [str(v) for v in table["name"].filled("")] == [v or "" for v in NASTY[:9]]
    assert [str(v) for v in table["label"].filled("")] == [v or "" for v in UNICODE[:9]]
    assert str(table["t_obs"][0]) == "2023-11-14T22:13:20.123456"
    assert list(table["pos"][0]) == [10.5, -20.25]
    assert np.isnan(np.asarray(table["pos"][1], dtype=float)).all()
    assert list(table["poly"][3]) == rows["poly"][3]
    assert len(table["poly"][2]) == 0
    x = table["x"]
    assert x[0] == 0.1 and np.isposinf(x[2]) and x[6] == 5e-324


def test_fits_is_spooled_so_errors_come_before_any_byte():
    chunks = write_result(resolve_format("fits"), COLUMNS, _failing(after=2))
    with pytest.raises(RuntimeError, match="boom"):
        next(chunks)
    cols = [Column("p", "double", arraysize="2", xtype="point")]
    bad = pa.record_batch([pa.array([[1.0, 2.0], [1.0]], pa.list_(pa.float64()))], names=["p"])
    with pytest.raises(ValueError, match="arraysize 2 but a value with 1 elements"):
        next(write_result(resolve_format("fits"), cols, [bad]))


# --- metadata checks --------------------------------------------------------------------------


def test_bad_metadata_fails_before_streaming():
    with pytest.raises(ValueError, match="datatype"):
        write_result(resolve_format("csv"), [Column("a", "bit")], [])
    with pytest.raises(ValueError, match="arraysize"):
        write_result(resolve_format("csv"), [Column("a", "double", arraysize="x2")], [])


def test_wrong_number_of_columns_is_an_error():
    batch = pa.record_batch([pa.array([1])], names=["a"])
    doc = _parse_votable(_write("votable", [batch], [Column("a", "long"), Column("b", "long")]))
    assert "2 were declared" in _statuses(doc)[-1][1]


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_characters_xml_cannot_carry_are_replaced(fmt):
    cols = [Column("s\x01", "unicodeChar", description="bad \x02 char")]
    batch = pa.record_batch([pa.array(["nul\x00bell\x07", "ok", "nonchar\uffff"])], names=["s"])
    data = _write(fmt, [batch], cols, infos=[("QUERY", "SELECT '\x1b'")])
    doc = _parse_votable(data)
    values = [str(v) for v in doc.get_first_table().array["s\ufffd"]]
    if fmt == "votable/td":
        assert values == ["nul\ufffdbell\ufffd", "ok", "nonchar\ufffd"]
    else:  # binary serialisations carry any byte
        assert values == ["nul\x00bell\x07", "ok", "nonchar\uffff"]
    assert "\ufffd" in error_votable("bad \x00 thing\ud800").decode()


def test_awkward_column_names_get_valid_ids():
    cols = [Column("count(*)", "long"), Column("count__", "long"), Column("1st col", "long")]
    batch = pa.record_batch([pa.array([1]), pa.array([2]), pa.array([3])], names=["a", "b", "c"])
    table = _parse_votable(_write("votable", [batch], cols)).get_first_table()
    assert [f.name for f in table.fields] == ["count(*)", "count__", "1st col"]
    assert len({f.ID for f in table.fields}) == 3
    assert [int(table.array[f.ID][0]) for f in table.fields] == [1, 2, 3]


def test_char_without_arraysize_is_a_string():
    cols = [Column("s", "char")]
    batch = pa.record_batch([pa.array(["hello"])], names=["s"])
    doc = _parse_votable(_write("votable", [batch], cols))
    assert doc.get_first_table().fields[0].arraysize == "*"
    assert str(doc.get_first_table().array["s"][0]) == "hello"
