"""Service discovery and federated queries with the client's registry module, end to end:

our OAI-PMH endpoint is harvested (escape_vo_client.registry.oai_records) into a minimal RegTAP
1.1 service on loopback (our own TAP code over an `rr` schema declared for this test only, with
the RegTAP functions ivo_hasword, ivo_nocasematch and ivo_hashlist_has), then pyvo's registry
client and find_spectral_services find our SSA and ObsCore services there, and federated_search
queries them together with a second archive."""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
import pytest
import pyvo
import sqlalchemy as sa
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool
from pyvo.registry import regtap

from escape_vo.adql import Catalog
from escape_vo.adql.udf import UDFS, Udf
from escape_vo.db.metadata import build_metadata
from escape_vo.db.migrate import migrate
from escape_vo.schema.model import load_schemas
from escape_vo.tap import sync as tap_sync
from escape_vo.tap.executor import READER_ROLE, QueryPool
from escape_vo.vosi import router as vosi_router
from escape_vo_client.registry import (
    federated_search,
    find_spectral_services,
    oai_records,
)
from tests.conftest import LiveServer, free_port
from tests.fixtures.archive import serve_fixture_archive

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
RI = "{http://www.ivoa.net/xml/RegistryInterface/v1.0}"

# RegTAP 1.1 (section 4): the tables and columns pyvo's registry client reads.
RR_YAML = (
    """
schema: rr
description: RegTAP 1.1 relational registry (the parts pyvo queries), for tests only.
tables:
  - name: resource
    description: One row per resource.
    primary_key: [ivoid]
    columns:
"""
    + "".join(
        f"      - {{name: {c}, datatype: char, arraysize: '*'}}\n"
        for c in [
            "ivoid",
            "res_type",
            "short_name",
            "res_title",
            "content_level",
            "res_description",
            "reference_url",
            "creator_seq",
            "content_type",
            "source_format",
            "source_value",
            "res_version",
            "region_of_regard",
            "waveband",
            "rights",
            "rights_uri",
            "harvested_from",
            "created",
            "updated",
        ]
    )
    + """
  - name: capability
    description: Capabilities.
    primary_key: [ivoid, cap_index]
    columns:
      - {name: ivoid, datatype: char, arraysize: '*'}
      - {name: cap_index, datatype: short}
      - {name: cap_type, datatype: char, arraysize: '*'}
      - {name: cap_description, datatype: char, arraysize: '*'}
      - {name: standard_id, datatype: char, arraysize: '*'}
  - name: interface
    description: Interfaces.
    primary_key: [ivoid, cap_index, intf_index]
    columns:
      - {name: ivoid, datatype: char, arraysize: '*'}
      - {name: cap_index, datatype: short}
      - {name: intf_index, datatype: short}
      - {name: intf_type, datatype: char, arraysize: '*'}
      - {name: intf_role, datatype: char, arraysize: '*'}
      - {name: std_version, datatype: char, arraysize: '*'}
      - {name: query_type, datatype: char, arraysize: '*'}
      - {name: result_type, datatype: char, arraysize: '*'}
      - {name: url_use, datatype: char, arraysize: '*'}
      - {name: access_url, datatype: char, arraysize: '*'}
  - name: res_subject
    description: Subjects.
    columns:
      - {name: ivoid, datatype: char, arraysize: '*'}
      - {name: res_subject, datatype: char, arraysize: '*'}
  - name: res_detail
    description: Details of capabilities (xpath, value).
    columns:
      - {name: ivoid, datatype: char, arraysize: '*'}
      - {name: cap_index, datatype: short}
      - {name: detail_xpath, datatype: char, arraysize: '*'}
      - {name: detail_value, datatype: char, arraysize: '*'}
  - name: res_schema
    description: Schemas of tablesets.
    columns:
      - {name: ivoid, datatype: char, arraysize: '*'}
      - {name: schema_index, datatype: short}
      - {name: schema_name, datatype: char, arraysize: '*'}
      - {name: schema_description, datatype: char, arraysize: '*'}
  - name: res_table
    description: Tables of tablesets.
    columns:
      - {name: ivoid, datatype: char, arraysize: '*'}
      - {name: schema_index, datatype: short}
      - {name: table_index, datatype: short}
      - {name: table_name, datatype: char, arraysize: '*'}
      - {name: table_description, datatype: char, arraysize: '*'}
      - {name: table_utype, datatype: char, arraysize: '*'}
"""
)
# RegTAP 1.1 section 8: the functions a RegTAP service offers (pyvo uses these three).
REGTAP_UDFS = (
    Udf("ivo_hasword", (("haystack", "VARCHAR(*)"), ("word", "VARCHAR(*)")), "INTEGER",
        "(CASE WHEN to_tsvector('english', {0}) @@ plainto_tsquery('english', {1}) "
        "THEN 1 ELSE 0 END)", "1 if word is a word of haystack (stemmed, any case).", "int"),
    Udf("ivo_nocasematch", (("value", "VARCHAR(*)"), ("pattern", "VARCHAR(*)")), "INTEGER",
        "(CASE WHEN {0} ILIKE {1} THEN 1 ELSE 0 END)", "1 if value ILIKE pattern.", "int"),
    Udf("ivo_hashlist_has", (("list", "VARCHAR(*)"), ("item", "VARCHAR(*)")), "INTEGER",
        "(CASE WHEN lower({1}) = ANY(string_to_array(lower({0}), '#')) THEN 1 ELSE 0 END)",
        "1 if item is in the #-separated list.", "int"),
)  # fmt: skip


def _lower_type(el: ET.Element) -> str | None:
    value = el.get(XSI_TYPE)
    return value.lower() if value else None


def _hashlist(values) -> str | None:
    items = [v.strip().lower() for v in values if v and v.strip()]
    return "#".join(items) or None


def regtap_rows(record: ET.Element) -> dict[str, list[dict]]:
    """The RegTAP 1.1 rows of one VOResource record (section 5's rules, lower-casing ids)."""
    ivoid = record.findtext("identifier").lower()
    rows: dict[str, list[dict]] = {t: [] for t in ("resource", "capability", "interface",
                                                   "res_subject", "res_detail", "res_schema",
                                                   "res_table")}  # fmt: skip
    content = record.find("content")
    rows["resource"].append({
        "ivoid": ivoid, "res_type": _lower_type(record), "short_name": record.findtext("shortName"),
        "res_title": record.findtext("title"), "res_description": content.findtext("description"),
        "content_level": _hashlist(e.text for e in content.findall("contentLevel")),
        "content_type": _hashlist(e.text for e in content.findall("type")),
        "reference_url": content.findtext("referenceURL"),
        "creator_seq": "; ".join(c.findtext("name") for c in record.iterfind("curation/creator")),
        "waveband": _hashlist(e.text for e in record.iterfind("coverage/waveband")),
        "rights": record.findtext("rights"), "created": record.get("created"),
        "updated": record.get("updated"),
    })  # fmt: skip
    rows["res_subject"] += [{"ivoid": ivoid, "res_subject": s.text}
                            for s in content.findall("subject")]  # fmt: skip
    for ci, cap in enumerate(record.findall("capability"), start=1):
        rows["capability"].append({
            "ivoid": ivoid, "cap_index": ci, "cap_type": _lower_type(cap),
            "cap_description": cap.findtext("description"),
            "standard_id": (cap.get("standardID") or "").lower() or None,
        })  # fmt: skip
        for model in cap.findall("dataModel"):
            rows["res_detail"].append({"ivoid": ivoid, "cap_index": ci,
                                       "detail_xpath": "/capability/dataModel/@ivo-id",
                                       "detail_value": model.get("ivo-id").lower()})  # fmt: skip
        for ii, intf in enumerate(cap.findall("interface"), start=1):
            url = intf.find("accessURL")
            rows["interface"].append({
                "ivoid": ivoid, "cap_index": ci, "intf_index": ii, "intf_type": _lower_type(intf),
                "intf_role": intf.get("role"), "std_version": intf.get("version"),
                "query_type": _hashlist(q.text for q in intf.findall("queryType")),
                "result_type": intf.findtext("resultType"), "url_use": url.get("use"),
                "access_url": url.text,
            })  # fmt: skip
    for si, schema in enumerate(record.iterfind("tableset/schema"), start=1):
        rows["res_schema"].append({
            "ivoid": ivoid, "schema_index": si, "schema_name": schema.findtext("name"),
            "schema_description": schema.findtext("description"),
        })  # fmt: skip
        for ti, table in enumerate(schema.findall("table"), start=1):
            rows["res_table"].append({
                "ivoid": ivoid, "schema_index": si, "table_index": ti,
                "table_name": table.findtext("name"), "table_utype": table.findtext("utype"),
                "table_description": table.findtext("description"),
            })  # fmt: skip
    return rows


def regtap_app(db_url: str, settings, tables) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.query_pool = QueryPool(db_url, size=2, statement_timeout_s=60)
        try:
            async with AsyncConnectionPool(db_url, min_size=1, max_size=2, open=False) as pool:
                await pool.open(wait=True, timeout=30)
                app.state.pool = pool
                yield
        finally:
            app.state.query_pool.close()

    app = FastAPI(lifespan=lifespan)
    app.state.settings = settings
    app.state.catalog = Catalog.from_tables(tables)
    app.include_router(tap_sync.router)
    app.include_router(vosi_router.router)
    return app


@pytest.fixture(scope="module")
def registry(live_server, demo_archive, pg, tmp_path_factory) -> Iterator[str]:
    """A RegTAP service holding the records harvested from our /oai; yields its TAP URL."""
    settings, _ = demo_archive
    folder = tmp_path_factory.mktemp("regtap")
    (folder / "rr.yaml").write_text(RR_YAML)
    schemas = load_schemas(folder)
    tables = [t for s in schemas for t in s.tables]
    name = f"regtap_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg.url(name)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA rr"))
    build_metadata(schemas).create_all(engine)
    engine.dispose()
    harvested = list(oai_records(f"{live_server.url}/oai"))
    assert harvested and not any(r.deleted for r in harvested)
    with psycopg.connect(url, autocommit=True) as conn:
        for record in harvested:
            for table, rows in regtap_rows(record.metadata).items():
                for row in rows:
                    cols = ", ".join(row)
                    marks = ", ".join(["%s"] * len(row))
                    conn.execute(f"INSERT INTO rr.{table} ({cols}) VALUES ({marks})",
                                 list(row.values()))  # fmt: skip
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,)).fetchone():
            conn.execute(f"GRANT USAGE ON SCHEMA rr TO {READER_ROLE}")
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA rr TO {READER_ROLE}")
    port = free_port()
    with pytest.MonkeyPatch.context() as mp:
        for udf in REGTAP_UDFS:
            mp.setitem(UDFS, udf.name, udf)
        app = regtap_app(url, settings.model_copy(update={"port": port}), tables)
        with LiveServer(app, port) as server:
            yield f"{server.url}/tap"
    with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_pyvo_regsearch_finds_our_services(registry, live_server, demo_archive) -> None:
    auth = demo_archive[0].ivo_authority
    previous = regtap.get_RegTAP_service_url()
    pyvo.registry.choose_RegTAP_service(registry)
    try:
        found = pyvo.regsearch(servicetype="ssa", keywords=["spectra"])
        assert [r.ivoid for r in found] == [f"ivo://{auth}/ssa"]
        ssa = found[0].get_service("ssa")
        assert ssa.baseurl == f"{live_server.url}/ssa"
        assert len(ssa.search(pos=(0.0, 0.0), diameter=360.0, maxrec=5)) == 5
        tap = pyvo.regsearch(servicetype="tap", datamodel="obscore")
        assert [r.ivoid for r in tap] == [f"ivo://{auth}/tap"]
        assert not pyvo.regsearch(servicetype="ssa", keywords=["exoplanet"])
    finally:
        pyvo.registry.choose_RegTAP_service(previous)


def test_find_spectral_services(registry, live_server, demo_archive) -> None:
    auth = demo_archive[0].ivo_authority
    found = find_spectral_services(keywords=["spectra", "SODA"], registry=registry)
    assert {(s.protocol, s.url, s.ivoid) for s in found} == {
        ("ssa", f"{live_server.url}/ssa", f"ivo://{auth}/ssa"),
        ("tap", f"{live_server.url}/tap", f"ivo://{auth}/tap"),
    }
    assert all("Optical" in s.wavebands or "optical" in s.wavebands for s in found)
    optical = find_spectral_services(waveband="Optical", protocols=["ssa"], registry=registry)
    assert [s.ivoid for s in optical] == [f"ivo://{auth}/ssa"]
    assert find_spectral_services(waveband="Radio", registry=registry) == []
    with pytest.raises(ValueError, match="ssa and/or tap"):
        find_spectral_services(keywords="x", protocols=["sia"], registry=registry)


def _sep(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    cos = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(r1 - r2)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def test_federated_search_merges_archives(registry, live_server, demo_archive, fresh_db,
                                          tmp_path: Path) -> None:  # fmt: skip
    settings, _ = demo_archive
    ours = find_spectral_services(keywords=["spectra"], registry=registry)
    with psycopg.connect(settings.database_url) as conn:
        local = conn.execute("SELECT publisher_did, ra, dec FROM archive.spectra "
                             "WHERE ra IS NOT NULL").fetchall()  # fmt: skip
    with serve_fixture_archive(fresh_db(), tmp_path, n_spectra=12) as remote:
        theirs = [("tap", f"{remote.base_url}/tap"), ("ssa", f"{remote.base_url}/ssa")]
        # the ingested spectra (not the fixture's rows for fault injection, all at 10, 10)
        remote_rows = [(r["obs_publisher_did"], r["s_ra"], r["s_dec"]) for r in remote.rows
                       if "/spectra?" in r["obs_publisher_did"] and r["s_ra"]]  # fmt: skip
        radius = 30.0
        ra, dec = next((a, b) for _, a, b in remote_rows if _sep(a, b, 10.0, 10.0) > 2 * radius)
        down = ("ssa", "http://127.0.0.1:9/ssa")  # nothing listens there
        table = federated_search([*ours, *theirs, down], pos=(ra, dec), radius=radius)

    expect_local = {d for d, a, b in local if _sep(ra, dec, a, b) <= radius}
    expect_remote = {d for d, a, b in remote_rows if _sep(ra, dec, a, b) <= radius}
    dids = list(table["publisher_did"])
    assert len(dids) == len(set(dids))  # each spectrum once, however many services had it
    assert set(dids) == expect_local | expect_remote
    by_did = {row["publisher_did"]: row for row in table}
    ssa_tap = {s.name for s in ours}
    for did in expect_local:
        assert set(by_did[did]["service"].split()) == ssa_tap  # found by our SSA and our TAP
    for did in expect_remote:
        assert set(by_did[did]["service"].split()) == {url for _, url in theirs}
    assert list(table["distance"]) == sorted(table["distance"])
    assert table["distance"].max() <= radius + 1e-6
    assert table["em_min"].unit == "m" and table["ra"].unit == "deg"
    assert list(table.meta["errors"]) == ["http://127.0.0.1:9/ssa"]
    assert table.meta["counts"][f"{remote.base_url}/tap"] == len(expect_remote)


def test_harvest_discover_prints_commands_that_harvest_the_services_found(
    registry, live_server, demo_archive, fresh_db, tmp_path: Path
) -> None:
    """`escape-vo harvest discover` finds our SSA and ObsCore TAP services in the registry and
    prints the harvest commands; the SSA one, narrowed to one position, harvests that spectrum
    into another archive."""
    settings, truth = demo_archive
    auth = settings.ivo_authority
    escape_vo = str(Path(sys.executable).parent / "escape-vo")
    run = subprocess.run(
        [escape_vo, "harvest", "discover", "spectra", "--registry", registry],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"ivo://{auth}/ssa  SSA" in run.stdout and f"ivo://{auth}/tap  TAP" in run.stdout
    commands = [shlex.split(line) for line in run.stdout.splitlines() if line.startswith("  ")]
    ssa = ["escape-vo", "harvest", "--ssa", f"{live_server.url}/ssa"]
    tap = ["escape-vo", "harvest", "--tap", f"{live_server.url}/tap", "--adql",
           "dataproduct_type = 'spectrum'"]  # fmt: skip
    assert sorted(commands) == sorted([ssa, tap])

    target = next(t for t in truth if t.instrument == "HARPS")
    url = fresh_db()
    migrate(url, base_url="http://127.0.0.1:1")
    env = {**os.environ, "DATABASE_URL": url, "DATA_DIR": str(tmp_path / "here"),
           "IVO_AUTHORITY": "here.example"}  # fmt: skip
    narrowed = [escape_vo, *ssa[1:], "--pos", f"{target.ra},{target.dec}", "--size", "0.01"]
    run = subprocess.run(narrowed, env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    with psycopg.connect(url) as conn:
        names = {r[0] for r in conn.execute("SELECT target_name FROM archive.spectra")}
    assert target.target_name in names

    run = subprocess.run(
        [escape_vo, "harvest", "discover", "--waveband", "Radio", "--registry", registry],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0 and "no spectral services match" in run.stderr
    run = subprocess.run(
        [escape_vo, "harvest", "discover", "spectra", "--registry", "http://127.0.0.1:9/tap"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1
    assert "the registry query failed at http://127.0.0.1:9/tap" in run.stderr
