"""TAP_UPLOAD over real HTTP, sync and async: every VOTable serialisation round-trips, uploads
join our tables (a cross-match returns exactly astropy's pairs), URLs are fetched, and hostile
or broken uploads get DALI errors naming the problem."""

from __future__ import annotations

import base64
import dataclasses
import http.server
import io
import shutil
import subprocess
import threading
import time
from typing import ClassVar

import astropy.units as u
import httpx
import numpy as np
import psycopg
import pytest
import pyvo
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.io import votable
from astropy.table import Table

from tests.conftest import free_port

VOT_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n{doctype}'
    '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
    '<RESOURCE type="results"><TABLE>'
)
FIELDS = (
    '<FIELD name="id" datatype="int"/>'
    '<FIELD name="big" datatype="long"><VALUES null="-1"/></FIELD>'
    '<FIELD name="small" datatype="short"><VALUES null="-1"/></FIELD>'
    '<FIELD name="byte" datatype="unsignedByte"><VALUES null="255"/></FIELD>'
    '<FIELD name="mag" datatype="float" unit="mag" ucd="phot.mag"/>'
    '<FIELD name="ra" datatype="double" unit="deg" ucd="pos.eq.ra;meta.main"/>'
    '<FIELD name="dec" datatype="double" unit="deg" ucd="pos.eq.dec;meta.main"/>'
    '<FIELD name="flag" datatype="boolean"/>'
    '<FIELD name="label" datatype="unicodeChar" arraysize="*"/>'
    '<FIELD name="code" datatype="char" arraysize="8"/>'
    '<FIELD name="seen" datatype="char" arraysize="*" xtype="timestamp"/>'
    '<FIELD name="vec" datatype="double" arraysize="3"/>'
    '<FIELD name="counts" datatype="int" arraysize="*"/>'
)
ROWS = [
    (1, 2**40, -3, 200, 12.5, 10.0, -20.0, "T", "étoile α", "A1", "2020-01-02T03:04:05",
     "1 2 3", "4 5"),
    (2, -7, 32000, 0, "", 350.25, 89.5, "F", "plain", "BB22", "2021-12-31",
     "0.5 -0.5 1e10", ""),
    (3, "", "", "", 18.0, 0.0, 0.0, "", "", "", "", "0 0 0", "7"),
]  # fmt: skip


def _tabledata(rows=ROWS, fields=FIELDS, doctype: str = "", extra_field: str = "") -> bytes:
    body = "".join("<TR>" + "".join(f"<TD>{v}</TD>" for v in row) + "</TR>" for row in rows)
    return (
        VOT_HEAD.format(doctype=doctype)
        + fields
        + extra_field
        + f"<DATA><TABLEDATA>{body}</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    ).encode()


def _reserialise(data: bytes, fmt: str) -> bytes:
    """The same VOTable in BINARY or BINARY2, written by STILTS (TOPCAT's library)."""
    if shutil.which("stilts") is None:
        pytest.skip("STILTS is needed to write BINARY and BINARY2 test tables")
    run = subprocess.run(
        ["stilts", "tpipe", "in=-", "ifmt=votable", "out=-", f"ofmt=votable-{fmt}-inline"],
        input=data,
        capture_output=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    return run.stdout


def _fits_in_votable(data: bytes) -> bytes:
    """The same table with a FITS serialisation inside the VOTable (inline, base64)."""
    table = votable.parse_single_table(io.BytesIO(data)).to_table()
    simple = table[["id", "big", "mag", "ra", "dec", "label"]]
    simple["label"] = np.array(["etoile", "plain", ""])  # FITS strings are ASCII
    fits = io.BytesIO()
    simple.write(fits, format="fits")
    fields = (
        '<FIELD name="id" datatype="int"/><FIELD name="big" datatype="long"/>'
        '<FIELD name="mag" datatype="float"/><FIELD name="ra" datatype="double" unit="deg"/>'
        '<FIELD name="dec" datatype="double" unit="deg"/>'
        '<FIELD name="label" datatype="char" arraysize="*"/>'
    )
    stream = base64.b64encode(fits.getvalue()).decode()
    return (
        VOT_HEAD.format(doctype="")
        + fields
        + f'<DATA><FITS extnum="1"><STREAM encoding="base64">{stream}</STREAM></FITS></DATA>'
        + "</TABLE></RESOURCE></VOTABLE>"
    ).encode()


def _post(live_server, query: str, files: dict, upload: str, **params) -> httpx.Response:
    data = {"LANG": "ADQL", "QUERY": query, "UPLOAD": upload, **params}
    return httpx.post(f"{live_server.url}/tap/sync", data=data, files=files, timeout=120)


def _table(resp: httpx.Response) -> Table:
    assert resp.status_code == 200, resp.text[:800]
    return votable.parse_single_table(io.BytesIO(resp.content)).to_table()


def _error(resp: httpx.Response) -> str:
    assert resp.status_code in (400, 413), (resp.status_code, resp.text[:500])
    vot = votable.parse(io.BytesIO(resp.content))
    status = [i for i in vot.resources[0].infos if i.name == "QUERY_STATUS"]
    assert status and status[0].value == "ERROR"
    return status[0].content or ""


def _upload_schemas(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tap\\_upload\\_%'"
        ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize("serialisation", ["tabledata", "binary", "binary2", "fits"])
def test_every_serialisation_round_trips(live_server, demo_archive, serialisation) -> None:
    settings, _ = demo_archive
    original = _tabledata()
    if serialisation == "fits":
        data = _fits_in_votable(original)
    elif serialisation == "tabledata":
        data = original
    else:
        data = _reserialise(original, serialisation)
    resp = _post(
        live_server, "SELECT * FROM TAP_UPLOAD.t1 ORDER BY id", {"t1": data}, "t1,param:t1"
    )
    got = _table(resp)
    expected = votable.parse_single_table(io.BytesIO(original)).to_table()
    if serialisation == "fits":
        expected = expected[["id", "big", "mag", "ra", "dec", "label"]]
        expected["label"] = ["etoile", "plain", ""]
    assert got.colnames == expected.colnames  # no hidden column shows
    for name in got.colnames:
        for a, b in zip(got[name], expected[name], strict=True):
            if np.ma.is_masked(b) or (isinstance(b, str) and b == ""):
                assert np.ma.is_masked(a) or a in ("", None), (name, a, b)
            elif name == "seen":
                assert np.datetime64(a) == np.datetime64(b), (name, a, b)
            elif isinstance(b, np.ndarray):
                assert list(np.ma.filled(a, 0)) == list(np.ma.filled(b, 0)), (name, a, b)
            else:
                assert a == b, (name, a, b)
    if serialisation != "fits":
        assert got["mag"].unit == u.mag
    assert _upload_schemas(settings.database_url) == []  # dropped after the response


@pytest.mark.parametrize("serialisation", ["binary", "binary2"])
def test_fixed_width_binary_tables_read_like_tabledata(live_server, serialisation) -> None:
    """Rows of fixed width are read with numpy, not by astropy: the same values come back."""
    fixed = (
        FIELDS.replace('<FIELD name="label" datatype="unicodeChar" arraysize="*"/>', "")
        .replace('arraysize="*" xtype="timestamp"', 'arraysize="19" xtype="timestamp"')
        .replace('<FIELD name="counts" datatype="int" arraysize="*"/>', "")
    )
    rows = [r[:8] + r[9:12] for r in ROWS]
    original = _tabledata(rows=rows, fields=fixed)
    query = "SELECT * FROM TAP_UPLOAD.t ORDER BY id"
    expected = _table(_post(live_server, query, {"t": original}, "t,param:t"))
    data = _reserialise(original, serialisation)
    got = _table(_post(live_server, query, {"t": data}, "t,param:t"))
    assert got.colnames == expected.colnames
    for name in got.colnames:
        for a, b in zip(got[name], expected[name], strict=True):
            if np.ma.is_masked(b) or (isinstance(b, str) and b == ""):
                assert np.ma.is_masked(a) or a in ("", None), (name, a, b)
            elif isinstance(b, np.ndarray):
                assert list(a) == list(b), (name, a, b)
            else:
                assert a == b, (name, a, b)


def test_metadata_and_types_survive(live_server) -> None:
    resp = _post(live_server, "SELECT * FROM TAP_UPLOAD.t1", {"t1": _tabledata()}, "t1,param:t1")
    table = votable.parse_single_table(io.BytesIO(resp.content))
    fields = {f.name: f for f in table.fields}
    assert fields["ra"].ucd == "pos.eq.ra;meta.main" and str(fields["ra"].unit) == "deg"
    assert fields["seen"].xtype == "timestamp"
    assert fields["big"].datatype == "long" and fields["flag"].datatype == "boolean"
    assert fields["vec"].arraysize == "3"
    rows = table.to_table()
    assert str(rows["seen"][0]).startswith("2020-01-02T03:04:05")


@pytest.mark.parametrize("arcsec", [1.0, 8.0, 15.0, 30.0, 60.0, 120.0])
def test_crossmatch_returns_exactly_astropys_pairs(live_server, arcsec) -> None:
    """Up to ~82" the join looks up the HEALPix cells around each uploaded position (order 13
    up to ~10", then 12, 11 and 10: geometry/cells.py), beyond it a declination band: all give
    astropy's pairs."""
    tap = pyvo.dal.TAPService(f"{live_server.url}/tap")
    ours = tap.run_sync(
        "SELECT obs_publisher_did, s_ra, s_dec FROM ivoa.obscore WHERE s_ra IS NOT NULL"
    ).to_table()
    rng = np.random.default_rng(7)
    picks = rng.choice(len(ours), 80, replace=False)
    ours_ra, ours_dec = np.asarray(ours["s_ra"], float), np.asarray(ours["s_dec"], float)
    base = SkyCoord(ours_ra[picks] * u.deg, ours_dec[picks] * u.deg)
    # Offsets clear of the radius on both sides, so rounding cannot flip a pair.
    near = base.directional_offset_by(
        rng.uniform(0, 360, 80) * u.deg,
        np.where(
            np.arange(80) % 2 == 0,
            rng.uniform(0, 0.9 * arcsec, 80),
            rng.uniform(1.1 * arcsec, 3 * arcsec, 80),
        )
        * u.arcsec,
    )
    extra = SkyCoord(rng.uniform(0, 360, 40) * u.deg, rng.uniform(-90, 90, 40) * u.deg)
    ra = np.concatenate([near.ra.deg, extra.ra.deg])
    dec = np.concatenate([near.dec.deg, extra.dec.deg])
    upload = Table({"src": np.arange(len(ra), dtype=np.int32), "ra": ra, "dec": dec})
    upload["ra"].unit = upload["dec"].unit = u.deg
    r = f"{arcsec}/3600."
    queries = [
        "SELECT u.src, o.obs_publisher_did FROM TAP_UPLOAD.pts AS u JOIN ivoa.obscore AS o "
        f"ON 1 = CONTAINS(POINT('ICRS', o.s_ra, o.s_dec), CIRCLE('ICRS', u.ra, u.dec, {r}))",
        "SELECT u.src, o.obs_publisher_did FROM ivoa.obscore AS o, TAP_UPLOAD.pts AS u "
        f"WHERE DISTANCE(POINT(u.ra, u.dec), POINT(o.s_ra, o.s_dec)) < {r}",
    ]
    idx_up, idx_ours, _, _ = search_around_sky(
        SkyCoord(ra * u.deg, dec * u.deg),
        SkyCoord(ours_ra * u.deg, ours_dec * u.deg),
        arcsec * u.arcsec,
    )
    dids = [str(d) for d in ours["obs_publisher_did"]]
    expected = {(int(i), dids[j]) for i, j in zip(idx_up, idx_ours, strict=True)}
    assert len(expected) >= 40
    for query in queries:
        result = tap.search(query, uploads={"pts": upload}).to_table()
        pairs = zip(result["src"], result["obs_publisher_did"], strict=True)
        got = {(int(s), str(d)) for s, d in pairs}
        assert got == expected, query


def test_an_upload_gets_only_the_cells_its_query_joins_on(fresh_db) -> None:
    """The blocks of cells cost time to compute and store: an uploaded table gets the one its
    query's cross-match uses (order 13 at 1", 12 at 15", 11 at 30", 10 at 60"), none for
    other queries."""
    from escape_vo.adql import Catalog, translate
    from escape_vo.db.migrate import migrate
    from escape_vo.schema.model import published_tables
    from escape_vo.tap.uploads import UploadSession, read_votable

    url = fresh_db()
    migrate(url)
    table = Table({"ra": [10.0, 20.0], "dec": [-5.0, 5.0]})
    buf = io.BytesIO()
    votable.from_table(table).to_xml(buf)
    join = (
        "SELECT s.publisher_did FROM TAP_UPLOAD.pts AS u JOIN archive.spectra AS s "
        "ON 1 = CONTAINS(POINT(s.ra, s.dec), CIRCLE(u.ra, u.dec, {r}/3600.))"
    )
    cases = [  # the archive is empty: the joins find nothing, but must run
        (join.format(r=1), {"escape_cells13"}, []),
        (join.format(r=15), {"escape_cells12"}, []),
        (join.format(r=30), {"escape_cells11"}, []),
        (join.format(r=60), {"escape_cells10"}, []),
        (join.format(r=300), set(), []),
        (
            "SELECT COUNT(*) FROM TAP_UPLOAD.pts WHERE 1 = CONTAINS(POINT(ra, dec), "
            "CIRCLE(10, -5, 1))",
            set(),
            [(1,)],
        ),
    ]
    for query, expected, answer in cases:
        with UploadSession(url, "cellsneeded") as session:
            session.add(read_votable(buf.getvalue(), "pts"))
            catalog = session.catalog(Catalog.from_tables(published_tables()))
            sql = translate(query, catalog, max_rows=10).sql
            session.load(sql)
            with psycopg.connect(url) as conn:
                names = {
                    n
                    for (n,) in conn.execute(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = %s AND table_name = 'pts'",
                        (session.schema,),
                    )
                }
                rows = conn.execute(sql).fetchall()
        assert {n for n in names if n.startswith("escape_cells")} == expected, query
        assert {"ra", "dec", "escape_healpix"} <= names
        assert rows == answer, query


@pytest.mark.parametrize("order", [13, 12, 11, 10])
def test_the_cell_join_finds_pairs_across_cell_edges_at_the_poles_and_corners(
    fresh_db, order
) -> None:
    """Positions placed where HEALPix cells meet oddly (the poles, the corners of the base
    cells, cell edges at the join's order), each with partners all around it at up to the
    largest radius the cells of that order serve: the join through that order's cell index
    finds every pair astropy finds, against a table indexed like archive.spectra."""
    from escape_vo.adql import Catalog, translate
    from escape_vo.db.metadata import cell_index_name
    from escape_vo.db.migrate import migrate
    from escape_vo.geometry.cells import CELL_ORDERS, cell_radius_deg
    from escape_vo.ingest.positions import healpix_index
    from escape_vo.schema.model import published_tables
    from escape_vo.tap.uploads import UploadSession, read_votable

    url = fresh_db()
    migrate(url)
    rng = np.random.default_rng(11)
    corner_dec = np.degrees(np.arcsin(2 / 3))
    centres = [(0.0, 90.0), (123.0, -90.0), (45.0, corner_dec), (135.0, -corner_dec),
               (0.0, 0.0), (90.0, 0.0), (359.9999, 0.0001), (0.0, corner_dec)]  # fmt: skip
    # plus points on cell edges at the join's order: the corners of random cells of that order
    from cdshealpix import nested

    assert order in CELL_ORDERS
    cells = rng.integers(0, 12 * 4**order, 40)
    lon, lat = nested.vertices(cells, order)
    centres += list(zip(lon.deg[:, 0], lat.deg[:, 0], strict=True))
    up_ra, up_dec = np.array(centres).T
    up = SkyCoord(up_ra * u.deg, up_dec * u.deg)
    radius = cell_radius_deg(order) * 3600 * 0.999
    n = 40
    around = [
        c.directional_offset_by(
            rng.uniform(0, 360, n) * u.deg, rng.uniform(0, 1.2, n) * radius * u.arcsec
        )
        for c in up
    ]
    sra = np.concatenate([a.ra.deg for a in around])
    sdec = np.concatenate([a.dec.deg for a in around])
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor().copy(
            "COPY archive.spectra (publisher_did, ra, dec, healpix, calib_level, n_pix, "
            "file_format, file_index, file_sha256, file_size, file_path, ingest_time) FROM STDIN"
        ) as copy:
            for i, (a, d, h) in enumerate(zip(sra, sdec, healpix_index(sra, sdec), strict=True)):
                row = (f"ivo://t/{i}", a, d, int(h), 2, 1, "fits", 0, f"{i:064x}", 1, "x", "now")
                copy.write_row(row)
        conn.execute("ANALYZE archive.spectra")
    table = Table({"src": np.arange(len(up_ra), dtype=np.int32), "ra": up_ra, "dec": up_dec})
    table["ra"].unit = table["dec"].unit = u.deg
    buf = io.BytesIO()
    votable.from_table(table).to_xml(buf, tabledata_format="binary2")
    with UploadSession(url, "celltest") as session:
        session.add(read_votable(buf.getvalue(), "pts"))
        catalog = session.catalog(Catalog.from_tables(published_tables()))
        query = (
            "SELECT u.src, s.publisher_did FROM TAP_UPLOAD.pts AS u JOIN archive.spectra AS s "
            f"ON DISTANCE(POINT(u.ra, u.dec), POINT(s.ra, s.dec)) < {radius}/3600."
        )
        sql = translate(query, catalog, max_rows=100_000).sql
        assert "= ANY(" in sql and f"escape_cells{order}" in sql
        session.load(sql)
        with psycopg.connect(url) as conn:
            got = {(int(a), b) for a, b in conn.execute(sql).fetchall()}
            conn.execute("SET enable_seqscan = off")  # the plan of a large archive
            plan = " ".join(r[0] for r in conn.execute("EXPLAIN " + sql).fetchall())
    assert cell_index_name("spectra", "healpix", order) in plan
    i, j, _, _ = search_around_sky(up, SkyCoord(sra * u.deg, sdec * u.deg), radius * u.arcsec)
    expected = {(int(a), f"ivo://t/{b}") for a, b in zip(i, j, strict=True)}
    assert len(expected) > 30 * len(up_ra) and got == expected


def test_uploads_in_any_construct_and_async(live_server, demo_archive) -> None:
    settings, _ = demo_archive
    tap = pyvo.dal.TAPService(f"{live_server.url}/tap")
    ids = Table({"did": list(tap.run_sync("SELECT TOP 5 obs_publisher_did FROM ivoa.obscore")
                             .to_table()["obs_publisher_did"])})  # fmt: skip
    other = Table({"n": np.array([1, 2, 3], dtype=np.int32)})
    query = (
        "SELECT COUNT(*) AS n, (SELECT MAX(n) FROM TAP_UPLOAD.nums) AS biggest FROM ivoa.obscore "
        "WHERE obs_publisher_did IN (SELECT did FROM tap_upload.Dids)"
    )
    result = tap.search(query, uploads={"dids": ids, "nums": other}).to_table()
    assert (result["n"][0], result["biggest"][0]) == (5, 3)
    job = tap.submit_job(query, uploads={"dids": ids, "nums": other})
    job.run().wait()
    assert job.phase == "COMPLETED", job.job.errorsummary
    assert (job.fetch_result().to_table()["n"][0]) == 5
    job.delete()
    # A constant region on an uploaded position uses its HEALPix index, with the same answer.
    pts = Table({"ra": [10.0, 10.001, 50.0], "dec": [20.0, 20.0, -5.0]})
    near = tap.search(
        "SELECT COUNT(*) AS n FROM TAP_UPLOAD.p WHERE 1 = CONTAINS(POINT(ra, dec), "
        "CIRCLE(10, 20, 0.01))",
        uploads={"p": pts},
    ).to_table()
    assert near["n"][0] == 2
    assert _upload_schemas(settings.database_url) == []


class _Serve(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.routes.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-votable+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def table_server():
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Serve)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", _Serve.routes
    server.shutdown()


def test_url_uploads_sync_and_async(live_server, table_server, monkeypatch) -> None:
    base, routes = table_server
    routes["/t.vot"] = _reserialise(_tabledata(), "binary2")
    query = "SELECT id, label FROM TAP_UPLOAD.remote ORDER BY id"
    got = _table(_post(live_server, query, {}, f"remote,{base}/t.vot"))
    assert list(got["id"]) == [1, 2, 3]
    tap = pyvo.dal.TAPService(f"{live_server.url}/tap")
    job = tap.submit_job(query, uploads={"remote": f"{base}/t.vot"})
    job.run().wait()
    assert job.phase == "COMPLETED"
    assert list(job.fetch_result().to_table()["id"]) == [1, 2, 3]
    missing = _error(_post(live_server, query, {}, f"remote,{base}/nothing.vot"))
    assert "HTTP 404" in missing
    import escape_vo.tap.uploads as uploads

    monkeypatch.setattr(
        uploads, "LIMITS", dataclasses.replace(uploads.LIMITS, upload_max_bytes=500)
    )
    assert "larger than" in _error(_post(live_server, query, {}, f"remote,{base}/t.vot"))


def _laughs() -> str:
    entities = ['<!ENTITY a0 "ha">'] + [
        f'<!ENTITY a{i} "{"".join(f"&a{i - 1};" for _ in range(10))}">' for i in range(1, 10)
    ]
    return f"<!DOCTYPE VOTABLE [{''.join(entities)}]>"


HOSTILE = [
    (_tabledata(rows=[["&a9;"] * 13], doctype=_laughs()), "t,param:t", "internal subset"),
    (
        _tabledata(rows=[["&x;"] * 13], doctype='<!DOCTYPE VOTABLE [<!ENTITY x SYSTEM '
                   '"file:///etc/passwd">]>'),
        "t,param:t",
        "internal subset",
    ),
    (
        _tabledata().replace(
            b"<DATA><TABLEDATA>",
            b'<DATA><BINARY2><STREAM href="file:///etc/passwd"/></BINARY2></DATA><X><TABLEDATA>',
        ),
        "t,param:t",
        "STREAM href",
    ),
    (b"<VOTABLE><RESOURCE><TABLE>", "t,param:t", "not"),
    (b"not xml at all", "t,param:t", "not well-formed"),
    (_tabledata(rows=[["abc"] + ["1"] * 12]), "t,param:t", "invalid literal"),
    (
        _tabledata(fields='<FIELD name="a" datatype="int"/><FIELD name="A" datatype="int"/>',
                   rows=[[1, 2]]),
        "t,param:t",
        "same name",
    ),
    (
        _tabledata(fields='<FIELD name="c" datatype="floatComplex"/>', rows=[["1 2"]]),
        "t,param:t",
        "complex",
    ),
    (
        _tabledata(fields='<FIELD name="a" datatype="integer"/>', rows=[[1]]),
        "t,param:t",
        "Unknown datatype",
    ),
    (_tabledata(), "t,param:t;T,param:t", "used twice"),
    (_tabledata(), "1t,param:t", "not a valid ADQL table name"),
    (_tabledata(), "select,param:t", "reserved word"),
    (_tabledata(), "a-b,param:t", "not a valid ADQL table name"),
    (_tabledata(), "t,param:other", "no such file part"),
    (_tabledata(), "t,file:///etc/passwd", "http"),
    (_tabledata(), "t", "name,param:part"),
    (
        _tabledata().replace(b"</RESOURCE>", b"<TABLE><FIELD name='x' datatype='int'/></TABLE>"
                             b"</RESOURCE>"),
        "t,param:t",
        "2 tables",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("data", "upload", "fragment"), HOSTILE)
def test_hostile_or_broken_uploads_get_dali_errors(live_server, data, upload, fragment) -> None:
    resp = _post(live_server, "SELECT * FROM TAP_UPLOAD.t", {"t": data}, upload)
    message = _error(resp)
    assert fragment.lower() in message.lower(), message


def test_a_file_part_named_twice_is_refused(live_server) -> None:
    """Which of two parts named alike UPLOAD=t,param:t means cannot be known: no guess."""
    twice = [("t", ("a.xml", _tabledata())), ("T", ("b.xml", _tabledata()))]
    data = {"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"}
    for endpoint in ("sync", "async"):
        resp = httpx.post(f"{live_server.url}/tap/{endpoint}", data=data, files=twice)
        assert "the file part 'T' is given twice" in _error(resp)


def test_limits_on_rows_and_request_size(live_server, monkeypatch) -> None:
    import escape_vo.tap.sync as sync
    import escape_vo.tap.uploads as uploads

    monkeypatch.setattr(uploads, "LIMITS", dataclasses.replace(uploads.LIMITS, upload_max_rows=2))
    resp = _post(live_server, "SELECT * FROM TAP_UPLOAD.t", {"t": _tabledata()}, "t,param:t")
    assert "at most 2 rows" in _error(resp)
    monkeypatch.setattr(sync, "MAX_REQUEST_BYTES", 1000)
    resp = _post(live_server, "SELECT * FROM TAP_UPLOAD.t", {"t": _tabledata()}, "t,param:t")
    assert resp.status_code == 413 and "larger than" in _error(resp)


def test_async_job_with_a_broken_upload_ends_in_error(live_server) -> None:
    resp = httpx.post(
        f"{live_server.url}/tap/async",
        data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t",
              "PHASE": "RUN"},
        files={"t": _tabledata(rows=[["abc"] + ["1"] * 12])},
        timeout=60,
    )  # fmt: skip
    assert resp.status_code == 303
    job = resp.headers["location"]
    deadline = time.monotonic() + 60
    while (phase := httpx.get(f"{job}/phase").text) not in ("ERROR", "COMPLETED"):
        assert time.monotonic() < deadline
        httpx.get(job, params={"WAIT": 5}, timeout=30)
    assert phase == "ERROR"
    error = httpx.get(f"{job}/error", timeout=30)
    assert "invalid literal" in _error_text(error.content)


def _error_text(content: bytes) -> str:
    vot = votable.parse(io.BytesIO(content))
    return next(i.content for i in vot.resources[0].infos if i.name == "QUERY_STATUS")


@pytest.mark.skipif(shutil.which("stilts") is None, reason="STILTS not installed")
@pytest.mark.parametrize("sync", ["true", "false"])
def test_stilts_tapquery_with_upload(live_server, tmp_path, sync) -> None:
    source = tmp_path / "mine.vot"
    source.write_bytes(_tabledata())
    out = tmp_path / "out.vot"
    run = subprocess.run(
        [
            "stilts", "tapquery", f"tapurl={live_server.url}/tap",
            "adql=SELECT id, ra, dec FROM TAP_UPLOAD.up1 ORDER BY id",
            "nupload=1", f"upload1={source}", "upname1=up1", f"sync={sync}",
            f"out={out}", "ofmt=votable",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert list(votable.parse_single_table(str(out)).to_table()["id"]) == [1, 2, 3]


def test_fast_tabledata_reader_agrees_with_astropy() -> None:
    """Simple TABLEDATA is read with numpy; a comment in the rows makes astropy read it."""
    from escape_vo.tap.uploads import read_votable

    fields = (
        '<FIELD name="i" datatype="int"><VALUES null="-9"/></FIELD>'
        '<FIELD name="d" datatype="double"/><FIELD name="b" datatype="boolean"/>'
        '<FIELD name="s" datatype="char" arraysize="*"/>'
        '<FIELD name="t" datatype="char" arraysize="*" xtype="timestamp"/>'
        '<FIELD name="u" datatype="unsignedByte"/><FIELD name="l" datatype="long"/>'
    )
    rows = [
        ["1", "1.5", "T", "a &amp; b &lt;c&gt; &#233;", "2020-01-01T00:00:00", "3", "-5"],
        ["-9", "NaN", "F", " sp ace ", "", "0", "9007199254740993"],
        ["", "", "?", "", "2021-02-03", "255", ""],
        ["7", " -2e3 ", "true", "x", "2022-01-01T01:02:03.5Z", "", "0"],
    ]
    fast = _tabledata(rows=rows, fields=fields)
    slow = fast.replace(b"<TABLEDATA>", b"<TABLEDATA><!-- read by astropy -->")
    a, b = read_votable(fast, "t"), read_votable(slow, "t")
    assert [c.name for c in a.columns] == [c.name for c in b.columns]
    for x, y in zip(a.arrays, b.arrays, strict=True):
        assert x.to_pylist() == y.to_pylist()
    assert a.arrays[3].to_pylist()[0] == "a & b <c> é"
    assert a.arrays[6].to_pylist()[1] == 9007199254740993  # no detour through float
