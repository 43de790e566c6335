"""TAP sync over real HTTP with real clients: pyvo, astropy's VOTable parser, STILTS tapquery."""

from __future__ import annotations

import io
import shutil
import subprocess

import httpx
import pytest
import pyvo
from astropy.io import votable
from astropy.table import Table

FORMATS = ["votable", "votable/td", "votable/b", "csv", "tsv", "fits", "parquet", "json"]


@pytest.fixture(scope="module")
def tap(live_server) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(f"{live_server.url}/tap")


def _get(live_server, **params) -> httpx.Response:
    return httpx.get(f"{live_server.url}/tap/sync", params=params, timeout=60)


def _error_message(resp: httpx.Response) -> str:
    vot = votable.parse(io.BytesIO(resp.content))
    status = [i for i in vot.resources[0].infos if i.name == "QUERY_STATUS"]
    assert status and status[0].value == "ERROR", resp.text[:500]
    return status[0].content or ""


def test_pyvo_counts_match_the_truth(tap, demo_archive) -> None:
    _, truth = demo_archive
    result = tap.run_sync("SELECT COUNT(*) AS n FROM ivoa.obscore").to_table()
    assert result["n"][0] == len(truth)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_output_format_through_http(live_server, fmt: str) -> None:
    query = (
        "SELECT TOP 7 obs_publisher_did, s_ra, s_dec, em_min, em_xel FROM ivoa.obscore "
        "ORDER BY obs_publisher_did"
    )
    resp = _get(live_server, LANG="ADQL", QUERY=query, RESPONSEFORMAT=fmt)
    assert resp.status_code == 200, resp.text[:500]
    if fmt.startswith("votable"):
        table = votable.parse_single_table(io.BytesIO(resp.content)).to_table()
    elif fmt == "json":
        doc = resp.json()
        table = Table(rows=doc["data"], names=[f["name"] for f in doc["metadata"]])
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        table = Table(pq.read_table(io.BytesIO(resp.content)).to_pydict())
    else:
        table = Table.read(
            io.BytesIO(resp.content),
            format={"csv": "ascii.csv", "tsv": "ascii.tab", "fits": "fits"}[fmt],
        )
    assert len(table) == 7
    assert list(table.colnames) == ["obs_publisher_did", "s_ra", "s_dec", "em_min", "em_xel"]
    dids = [str(d) for d in table["obs_publisher_did"]]
    assert dids == sorted(dids)


def test_pyvo_sees_overflow_only_when_truncated(tap) -> None:
    res = tap.run_sync("SELECT obs_publisher_did FROM ivoa.obscore", maxrec=5)
    assert len(res) == 5 and res.query_status == "OVERFLOW"
    exact = tap.run_sync("SELECT TOP 5 obs_publisher_did FROM ivoa.obscore", maxrec=5)
    assert len(exact) == 5 and exact.query_status == "OK"


def test_post_and_case_insensitive_parameters(live_server) -> None:
    resp = httpx.post(
        f"{live_server.url}/tap/sync",
        data={
            "lang": "ADQL",
            "query": "SELECT TOP 1 table_name FROM TAP_SCHEMA.tables",
            "request": "doQuery",
        },
        timeout=30,
    )
    assert resp.status_code == 200
    assert len(votable.parse_single_table(io.BytesIO(resp.content)).to_table()) == 1


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"LANG": "ADQL", "QUERY": "SELEC * FROM ivoa.obscore"}, "syntax"),
        ({"LANG": "ADQL", "QUERY": "SELECT sra FROM ivoa.obscore"}, "s_ra"),
        ({"LANG": "ADQL", "QUERY": "SELECT * FROM ivoa.obscorr"}, "obscore"),
        ({"LANG": "SQL", "QUERY": "SELECT 1"}, "LANG"),
        ({"LANG": "ADQL"}, "QUERY"),
        ({"LANG": "ADQL", "QUERY": "SELECT 1", "MAXREC": "lots"}, "MAXREC"),
        (
            {"LANG": "ADQL", "QUERY": "SELECT TOP 1 * FROM ivoa.obscore", "RESPONSEFORMAT": "xls"},
            "csv",
        ),
        ({"LANG": "ADQL", "QUERY": "SELECT * FROM pg_catalog.pg_user"}, "pg_user"),
        ({"LANG": "ADQL", "QUERY": "SELECT * FROM escape.settings"}, "settings"),
        ({"LANG": "ADQL", "QUERY": "SELECT pg_sleep(10) FROM ivoa.obscore"}, "pg_sleep"),
        ({"LANG": "ADQL", "QUERY": "SELECT 1 FROM ivoa.obscore; DROP TABLE archive.spectra"}, ""),
        ({"LANG": "ADQL", "QUERY": "SELECT 1/0 AS x FROM ivoa.obscore"}, "division by zero"),
    ],
)
def test_bad_requests_get_dali_errors(live_server, params: dict, fragment: str) -> None:
    resp = _get(live_server, **params)
    assert resp.status_code == 400, resp.text[:300]
    assert resp.headers["content-type"].startswith("application/x-votable+xml")
    message = _error_message(resp)
    assert fragment.lower() in message.lower(), message


def test_nothing_outside_the_published_tables_was_touched(tap, demo_archive) -> None:
    _, truth = demo_archive
    n = tap.run_sync("SELECT COUNT(*) AS n FROM archive.spectra").to_table()["n"][0]
    assert n == len(truth)


def test_examples_all_run(live_server) -> None:
    from escape_vo.tap.examples import all_examples

    for _table, example in all_examples():
        resp = _get(live_server, LANG="ADQL", QUERY=example.query, MAXREC="50")
        assert resp.status_code == 200, (example.title, resp.text[:500])


@pytest.mark.skipif(shutil.which("stilts") is None, reason="STILTS not installed")
def test_stilts_tapquery(live_server, tmp_path) -> None:
    out = tmp_path / "out.vot"
    run = subprocess.run(
        [
            "stilts", "tapquery", f"tapurl={live_server.url}/tap",
            "adql=SELECT TOP 10 obs_publisher_did, s_ra, s_dec FROM ivoa.obscore",
            "sync=true", f"out={out}", "ofmt=votable",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(votable.parse_single_table(str(out)).to_table()) == 10


def test_vosi_documents(live_server) -> None:
    for path in (
        "capabilities",
        "availability",
        "tables",
        "tables?detail=min",
        "tables/ivoa.obscore",
        "examples",
    ):
        resp = httpx.get(f"{live_server.url}/tap/{path}", timeout=30)
        assert resp.status_code == 200, (path, resp.text[:300])
    assert httpx.get(f"{live_server.url}/tap/tables/nope.nothing", timeout=30).status_code == 404
