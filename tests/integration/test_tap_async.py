"""TAP async (UWS 1.1) over real HTTP: pyvo, STILTS, raw UWS requests, documents checked
against the UWS 1.1 XML schema, and the job worker of the live server doing the work."""

from __future__ import annotations

import asyncio
import concurrent.futures
import glob
import io
import shutil
import subprocess
import time
import zipfile
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
import pyvo
from astropy.io import votable
from lxml import etree

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
SLOW = (
    "SELECT COUNT(*) AS n FROM ivoa.obscore AS a, ivoa.obscore AS b, ivoa.obscore AS c, "
    "ivoa.obscore AS d"
)  # 200**4 rows: minutes, unless cancelled


def _run(coroutine):
    """asyncio.run in a thread of its own: other tests may leave a loop running in this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="module")
def tap(live_server) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(f"{live_server.url}/tap")


@pytest.fixture(scope="module")
def client(live_server):
    with httpx.Client(base_url=f"{live_server.url}/tap", timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def uws_schema() -> etree.XMLSchema:
    """The UWS 1.1 schema as shipped inside STILTS (with its xlink import made local)."""
    jars = glob.glob("/usr/share/java/starlink-ttools*.jar")
    if not jars:
        pytest.skip("the STILTS jar with the UWS 1.1 schema is not installed")
    folder = "uk/ac/starlink/ttools/taplint/"
    with zipfile.ZipFile(jars[0]) as jar:
        uws = jar.read(folder + "UWS-v1.1.xsd")
        local = {
            "http://www.ivoa.net/xml/Xlink/xlink.xsd": jar.read(folder + "xlink.xsd"),
            "http://www.w3.org/2001/xml.xsd": jar.read(folder + "xmlnamespace.xsd"),
        }
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    parser.resolvers.add(_Local(local))
    return etree.XMLSchema(etree.fromstring(uws, parser))


class _Local(etree.Resolver):
    def __init__(self, docs: dict[str, bytes]) -> None:
        super().__init__()
        self.docs = docs

    def resolve(self, url, pubid, context):
        if url in self.docs:
            return self.resolve_string(self.docs[url], context)
        return None


def _create(client: httpx.Client, **params) -> str:
    resp = client.post("/async", data={"LANG": "ADQL", **params})
    assert resp.status_code == 303, resp.text[:500]
    return resp.headers["location"].rsplit("/", 1)[1]


def _job(client: httpx.Client, job_id: str, **params) -> etree._Element:
    resp = client.get(f"/async/{job_id}", params=params)
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers["content-type"].startswith("text/xml")
    return etree.fromstring(resp.content)


def _phase(client: httpx.Client, job_id: str) -> str:
    return client.get(f"/async/{job_id}/phase").text


def _wait_final(client: httpx.Client, job_id: str, timeout: float = 60) -> etree._Element:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = _job(client, job_id, WAIT=5)
        if doc.findtext(f"{UWS}phase") in ("COMPLETED", "ERROR", "ABORTED"):
            return doc
    raise AssertionError(f"job {job_id} did not finish within {timeout} s")


def _error_text(content: bytes) -> str:
    vot = votable.parse(io.BytesIO(content))
    status = [i for i in vot.resources[0].infos if i.name == "QUERY_STATUS"]
    assert status and status[0].value == "ERROR"
    return status[0].content or ""


def test_pyvo_run_async_matches_run_sync(tap) -> None:
    query = (
        "SELECT TOP 20 obs_publisher_did, s_ra, s_dec, em_min FROM ivoa.obscore "
        "ORDER BY obs_publisher_did"
    )
    sync = tap.run_sync(query).to_table()
    result = tap.run_async(query).to_table()
    assert list(result["obs_publisher_did"]) == list(sync["obs_publisher_did"])
    assert list(result["s_ra"]) == list(sync["s_ra"])


def test_pyvo_submit_wait_fetch_and_overflow(tap, demo_archive) -> None:
    _, truth = demo_archive
    job = tap.submit_job("SELECT obs_publisher_did FROM ivoa.obscore", maxrec=7)
    assert job.phase == "PENDING"
    job.run()
    job.wait()
    assert job.phase == "COMPLETED"
    result = job.fetch_result()
    assert len(result) == 7 and result.query_status == "OVERFLOW"
    count = tap.submit_job("SELECT COUNT(*) AS n FROM ivoa.obscore").run().wait()
    assert count.fetch_result().to_table()["n"][0] == len(truth)
    job.delete()
    count.delete()


def test_job_documents_follow_the_uws_schema(client, uws_schema) -> None:
    job_id = _create(client, QUERY="SELECT TOP 3 s_ra FROM ivoa.obscore", RUNID="my-run")
    pending = _job(client, job_id)
    uws_schema.assertValid(pending)
    assert pending.get("version") == "1.1"
    assert pending.findtext(f"{UWS}phase") == "PENDING"
    assert pending.findtext(f"{UWS}runId") == "my-run"
    assert pending.find(f"{UWS}ownerId").get("{http://www.w3.org/2001/XMLSchema-instance}nil")
    params = {p.get("id"): p.text for p in pending.iter(f"{UWS}parameter")}
    assert params["QUERY"] == "SELECT TOP 3 s_ra FROM ivoa.obscore" and params["LANG"] == "ADQL"
    assert client.post(f"/async/{job_id}/phase", data={"PHASE": "RUN"}).status_code == 303
    done = _wait_final(client, job_id)
    uws_schema.assertValid(done)
    assert done.findtext(f"{UWS}phase") == "COMPLETED"
    for name in ("creationTime", "startTime", "endTime", "destruction"):
        assert done.findtext(f"{UWS}{name}").endswith("Z"), name
    result = done.find(f"{UWS}results/{UWS}result")
    href = result.get("{http://www.w3.org/1999/xlink}href")
    assert href.endswith(f"/{job_id}/results/result")
    for path in ("results", "parameters"):
        uws_schema.assertValid(etree.fromstring(client.get(f"/async/{job_id}/{path}").content))
    listing = etree.fromstring(client.get("/async", params={"LAST": 3}).content)
    uws_schema.assertValid(listing)
    table = votable.parse_single_table(io.BytesIO(httpx.get(href, timeout=30).content))
    assert len(table.to_table()) == 3


def test_plain_resources_and_their_changes(client) -> None:
    job_id = _create(client, QUERY="SELECT TOP 1 s_ra FROM ivoa.obscore")
    assert client.get(f"/async/{job_id}/phase").text == "PENDING"
    assert client.get(f"/async/{job_id}/quote").text == ""
    assert client.get(f"/async/{job_id}/owner").text == ""
    assert client.get(f"/async/{job_id}/executionduration").text == "3600"
    for value, expected in (("120", "120"), ("0", "14400"), ("99999999", "14400")):
        resp = client.post(f"/async/{job_id}/executionduration", data={"EXECUTIONDURATION": value})
        assert resp.status_code == 303
        assert client.get(f"/async/{job_id}/executionduration").text == expected
    bad = client.post(f"/async/{job_id}/executionduration", data={"EXECUTIONDURATION": "soon"})
    assert bad.status_code == 400 and "whole number" in _error_text(bad.content)
    soon = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    resp = client.post(f"/async/{job_id}/destruction", data={"DESTRUCTION": soon.isoformat()})
    assert resp.status_code == 303
    assert client.get(f"/async/{job_id}/destruction").text == soon.strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )
    far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    client.post(f"/async/{job_id}/destruction", data={"DESTRUCTION": far})
    kept = datetime.fromisoformat(client.get(f"/async/{job_id}/destruction").text)
    assert kept < datetime.now(UTC) + timedelta(days=31)  # capped at the hard retention
    assert client.get(f"/async/{job_id}/error").status_code == 404
    # Parameters change while PENDING, and the job runs what they say then.
    resp = client.post(
        f"/async/{job_id}/parameters", data={"QUERY": "SELECT TOP 2 s_ra FROM ivoa.obscore"}
    )
    assert resp.status_code == 303
    client.post(f"/async/{job_id}/phase", data={"PHASE": "RUN"})
    _wait_final(client, job_id)
    table = votable.parse_single_table(
        io.BytesIO(client.get(f"/async/{job_id}/results/result").content)
    )
    assert len(table.to_table()) == 2
    late = client.post(f"/async/{job_id}/executionduration", data={"EXECUTIONDURATION": "10"})
    assert late.status_code == 409
    again = client.post(f"/async/{job_id}/phase", data={"PHASE": "RUN"})
    assert again.status_code == 409 and "new job" in _error_text(again.content)
    assert client.post(f"/async/{job_id}/phase", data={"PHASE": "SUSPEND"}).status_code == 400
    missing = client.get("/async/0123456789abcdef0123456789abcdef")
    assert missing.status_code == 404 and "deleted or destroyed" in _error_text(missing.content)
    assert client.get("/async/../../etc/passwd").status_code == 404


def test_phase_run_at_creation_and_wait_blocks_until_the_end(client) -> None:
    job_id = _create(client, QUERY="SELECT COUNT(*) AS n FROM ivoa.obscore", PHASE="RUN")
    doc = _job(client, job_id, WAIT=30)
    assert doc.findtext(f"{UWS}phase") in ("EXECUTING", "COMPLETED")
    assert _wait_final(client, job_id).findtext(f"{UWS}phase") == "COMPLETED"
    # WAIT on a finished job returns at once; a PENDING job waits until the timeout.
    assert _job(client, job_id, WAIT=30).findtext(f"{UWS}phase") == "COMPLETED"
    pending = _create(client, QUERY="SELECT 1 AS one FROM ivoa.obscore")
    assert _job(client, pending, WAIT=1).findtext(f"{UWS}phase") == "PENDING"
    bad = client.get(f"/async/{pending}", params={"WAIT": "-7"})
    assert bad.status_code == 400


def test_abort_cancels_the_running_query(client, demo_archive) -> None:
    settings, _ = demo_archive
    job_id = _create(client, QUERY=SLOW, PHASE="RUN")
    doc = _job(client, job_id, WAIT=20, PHASE="QUEUED")
    assert doc.findtext(f"{UWS}phase") == "EXECUTING"
    deadline = time.monotonic() + 20
    while not _running_statements(settings.database_url, job_id):
        assert time.monotonic() < deadline, "the query did not start"
        time.sleep(0.1)
    resp = client.post(f"/async/{job_id}/phase", data={"PHASE": "ABORT"})
    assert resp.status_code == 303
    assert _phase(client, job_id) == "ABORTED"
    deadline = time.monotonic() + 20
    while _running_statements(settings.database_url, job_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _running_statements(settings.database_url, job_id) == 0, "the query still runs"
    error = client.get(f"/async/{job_id}/error")
    assert "aborted" in _error_text(error.content)


def _running_statements(url: str, job_id: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND state = 'active'",
            (f"uws:{job_id}",),
        ).fetchone()[0]


def test_execution_duration_is_enforced_by_the_database(client) -> None:
    job_id = _create(client, QUERY=SLOW, EXECUTIONDURATION="1", PHASE="RUN")
    doc = _wait_final(client, job_id, timeout=60)
    assert doc.findtext(f"{UWS}phase") == "ERROR"
    message = doc.findtext(f"{UWS}errorSummary/{UWS}message")
    assert "execution duration (1 s)" in message and "EXECUTIONDURATION" in message
    assert "execution duration" in _error_text(client.get(f"/async/{job_id}/error").content)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"QUERY": "SELEC s_ra FROM ivoa.obscore"}, "syntax"),
        ({"QUERY": "SELECT nope FROM ivoa.obscore"}, "nope"),
        ({"QUERY": "SELECT 1/0 AS x FROM ivoa.obscore"}, "division by zero"),
        ({"QUERY": "SELECT 1 AS x FROM ivoa.obscore", "LANG": "SQL"}, "LANG"),
        ({"QUERY": "SELECT 1 AS x FROM ivoa.obscore", "RESPONSEFORMAT": "xls"}, "csv"),
    ],
)
def test_bad_queries_end_in_error_with_a_dali_document(client, params, fragment) -> None:
    job_id = _create(client, PHASE="RUN", **params)
    doc = _wait_final(client, job_id)
    assert doc.findtext(f"{UWS}phase") == "ERROR"
    assert doc.find(f"{UWS}errorSummary").get("type") == "fatal"
    error = client.get(f"/async/{job_id}/error")
    assert error.headers["content-type"].startswith("application/x-votable+xml")
    assert fragment.lower() in _error_text(error.content).lower()


def test_creation_errors_are_refused_at_once(client) -> None:
    resp = client.post("/async", data={"LANG": "ADQL", "QUERY": "SELECT 1", "PHASE": "ABORT"})
    assert resp.status_code == 400 and "PHASE=RUN" in _error_text(resp.content)
    resp = client.post("/async", data={"LANG": "ADQL", "QUERY": "x", "UPLOAD": "t1,param:nothing"})
    assert resp.status_code == 400 and "no such file part" in _error_text(resp.content)
    resp = client.post("/async", data={"LANG": "ADQL", "QUERY": "x", "EXECUTIONDURATION": "-3"})
    assert resp.status_code == 400


def test_delete_and_action_delete(client, demo_archive) -> None:
    settings, _ = demo_archive
    for how in ("DELETE", "ACTION"):
        job_id = _create(client, QUERY="SELECT TOP 1 s_ra FROM ivoa.obscore", PHASE="RUN")
        _wait_final(client, job_id)
        folder = settings.data_dir / "results" / job_id
        assert (folder / "result.vot").is_file()
        if how == "DELETE":
            resp = client.delete(f"/async/{job_id}")
        else:
            resp = client.post(f"/async/{job_id}", data={"ACTION": "DELETE"})
        assert resp.status_code == 303
        assert resp.headers["location"].endswith("/tap/async")
        assert client.get(f"/async/{job_id}").status_code == 404
        assert not folder.exists()
    assert client.post(f"/async/{job_id}", data={"ACTION": "DELETE"}).status_code == 404
    other = _create(client, QUERY="SELECT 1 AS x FROM ivoa.obscore")
    assert client.post(f"/async/{other}", data={"ACTION": "KEEP"}).status_code == 400


def test_job_list_filters(client, uws_schema) -> None:
    first = _create(client, QUERY="SELECT 1 AS a FROM ivoa.obscore")
    created = _job(client, first).findtext(f"{UWS}creationTime")
    time.sleep(0.01)
    second = _create(client, QUERY="SELECT 1 AS b FROM ivoa.obscore")
    third = _create(client, QUERY="SELECT TOP 1 s_ra FROM ivoa.obscore", PHASE="RUN")
    _wait_final(client, third)

    def ids(**params) -> list[str]:
        resp = client.get("/async", params=params)
        assert resp.status_code == 200, resp.text[:300]
        doc = etree.fromstring(resp.content)
        uws_schema.assertValid(doc)
        return [ref.get("id") for ref in doc.iter(f"{UWS}jobref")]

    assert ids(LAST=2) == [third, second]
    after = ids(AFTER=created)
    assert second in after and third in after and first not in after
    pending = ids(PHASE="PENDING")
    assert first in pending and second in pending and third not in pending
    both = ids(PHASE=["PENDING", "COMPLETED"], LAST=3)
    assert both == [third, second, first]
    assert client.get("/async", params={"PHASE": "DONE"}).status_code == 400
    assert client.get("/async", params={"LAST": "0"}).status_code == 400
    assert client.get("/async", params={"AFTER": "yesterday"}).status_code == 400


def test_destruction_time_removes_the_job_and_its_files(client, demo_archive) -> None:
    from escape_vo.tap.async_ import TAP_JOBS
    from escape_vo.uws.cleaner import maintain

    settings, _ = demo_archive
    job_id = _create(client, QUERY="SELECT TOP 1 s_ra FROM ivoa.obscore", PHASE="RUN")
    _wait_final(client, job_id)
    folder = settings.data_dir / "results" / job_id
    assert folder.is_dir()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    client.post(f"/async/{job_id}/destruction", data={"DESTRUCTION": past})

    async def clean() -> dict:
        async with await psycopg.AsyncConnection.connect(
            settings.database_url, autocommit=True
        ) as conn:
            return await maintain(conn, settings.data_dir, [TAP_JOBS])

    time.sleep(0.05)
    done = _run(clean())
    assert done["destroyed"] >= 1
    assert client.get(f"/async/{job_id}").status_code == 404
    assert not folder.exists()


def test_capabilities_declare_async_and_upload_limits(live_server) -> None:
    caps = httpx.get(f"{live_server.url}/tap/capabilities", timeout=30).text
    assert "ivo://ivoa.net/std/TAPRegExt#upload-inline" in caps
    assert "ivo://ivoa.net/std/TAPRegExt#upload-http" in caps
    assert "<retentionPeriod><default>604800</default>" in caps.replace("\n", "")
    assert "executionDuration" in caps and "uploadLimit" in caps


@pytest.mark.skipif(shutil.which("stilts") is None, reason="STILTS not installed")
def test_stilts_tapquery_async(live_server, tmp_path) -> None:
    out = tmp_path / "out.vot"
    run = subprocess.run(
        [
            "stilts", "tapquery", f"tapurl={live_server.url}/tap",
            "adql=SELECT TOP 10 obs_publisher_did, s_ra, s_dec FROM ivoa.obscore",
            "sync=false", f"out={out}", "ofmt=votable",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(votable.parse_single_table(str(out)).to_table()) == 10


def test_jobs_belong_to_the_user_a_trusted_proxy_names(demo_archive) -> None:
    """With TRUSTED_USER_HEADER set, a job belongs to the user the proxy names: its owner sees
    it in the job list and at its URL, another user or an anonymous client sees no such job
    and cannot delete it; anonymous jobs stay open to all, as without the setting."""
    from escape_vo.web.app import create_app
    from tests.conftest import LiveServer, free_port

    settings, _ = demo_archive
    port = free_port()
    proxied = settings.model_copy(update={"trusted_user_header": "X-Remote-User", "port": port})
    with LiveServer(create_app(proxied), port) as server, httpx.Client(timeout=30) as http:
        jobs = f"{server.url}/tap/async"
        alice, bob = {"X-Remote-User": "alice"}, {"X-Remote-User": "bob"}
        query = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 obs_id FROM ivoa.obscore"}
        made = http.post(jobs, data=query, headers=alice)
        assert made.status_code == 303
        url = made.headers["location"]
        job_id = url.rsplit("/", 1)[1]
        anonymous = http.post(jobs, data=query).headers["location"]

        mine = http.get(url, headers=alice)
        assert mine.status_code == 200 and b"<uws:ownerId>alice</uws:ownerId>" in mine.content
        assert http.get(f"{url}/owner", headers=alice).text == "alice"
        for other in (bob, {}):
            assert http.get(url, headers=other).status_code == 404
            assert job_id not in http.get(jobs, headers=other).text
        assert http.post(url, data={"ACTION": "DELETE"}, headers=bob).status_code == 404
        assert job_id in http.get(jobs, headers=alice).text
        assert http.get(anonymous, headers=bob).status_code == 200
        assert anonymous.rsplit("/", 1)[1] in http.get(jobs).text
        assert http.delete(url, headers=alice).status_code in (200, 303)
        assert http.get(url, headers=alice).status_code == 404


def test_one_owners_job_list_is_read_from_its_index(db_url: str) -> None:
    """Among 50,000 jobs of others (half anonymous), alice's list (most recent first, LAST=10)
    is read from the (kind, owner_id, creation_time) index, not by scanning everyone's jobs."""
    from escape_vo.uws.store import list_sql

    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO escape.uws_jobs (job_id, kind, owner_id, phase, creation_time, "
            "execution_duration, destruction, attempts) SELECT 'j' || g, 'tap', "
            "CASE WHEN g % 5000 = 0 THEN 'alice' WHEN g % 2 = 0 THEN NULL "
            "ELSE 'u' || (g % 97) END, "
            "'COMPLETED', now() - g * interval '1 s', 60, now() + interval '1 day', 0 "
            "FROM generate_series(1, 50000) AS g"
        )
        conn.execute("ANALYZE escape.uws_jobs")
        params = {"kind": "tap", "phases": [], "after": None, "last": 10, "owner": "alice"}
        sql = list_sql(False, False, True, "alice")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params))
        assert "uws_jobs_kind_owner_id_creation_time_idx" in plan, plan
        rows = conn.execute(sql, params)
        assert [r[0] for r in rows] == [f"j{g}" for g in range(5000, 50001, 5000)]
