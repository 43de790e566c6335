"""OAI-PMH 2.0 at /oai over real HTTP: a scripted walk of every verb with resumption tokens,
the error conditions of the protocol, selective harvesting and deleted records. Every response
is validated against the OAI-PMH XSD together with the VOResource schemas of its payload."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import httpx
import psycopg
import pytest
from lxml import etree

from escape_vo.settings import Settings
from escape_vo.web.app import create_app
from tests.conftest import LiveServer, free_port
from tests.data.xsd.validate import assert_valid

OAI = "http://www.openarchives.org/OAI/2.0/"
RI = "http://www.ivoa.net/xml/RegistryInterface/v1.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS = {"o": OAI, "ri": RI, "dc": "http://purl.org/dc/elements/1.1/"}
SERVICES = ("tap", "ssa", "datalink", "soda", "embeddings")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def paged(demo_archive) -> Iterator[str]:
    """The demo archive served with two records per OAI-PMH page, so lists need tokens."""
    settings, _ = demo_archive
    port = free_port()
    app = create_app(settings.model_copy(update={"registry_page_size": 2, "port": port}))
    with LiveServer(app, port) as server:
        yield server.url


def oai(url: str, method: str = "GET", **args: str) -> etree._Element:
    """One OAI-PMH request; checks what every response must satisfy and returns the root."""
    if method == "GET":
        r = httpx.get(f"{url}/oai", params=args, timeout=30)
    else:
        r = httpx.post(f"{url}/oai", data=args, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(r.content)
    assert_valid(root)
    stamp = root.findtext("o:responseDate", namespaces=NS)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    assert abs(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
               - datetime.now(UTC)) < timedelta(minutes=1)  # fmt: skip
    request = root.find("o:request", NS)
    assert request.text == f"{url}/oai"
    errors = root.findall("o:error", NS)
    if not any(e.get("code") in ("badVerb", "badArgument") for e in errors):
        assert dict(request.attrib) == args  # the arguments are echoed
    else:
        assert dict(request.attrib) == {}  # section 3.2: base URL only
    return root


def error_codes(root: etree._Element) -> list[str]:
    return [e.get("code") for e in root.findall("o:error", NS)]


def walk(url: str, verb: str, **args: str) -> tuple[list[etree._Element], list[etree._Element]]:
    """Follow the resumption tokens of a list; returns the items and the pages' tokens."""
    items, tokens = [], []
    root = oai(url, verb=verb, **args)
    while True:
        container = root.find(f"o:{verb}", NS)
        assert container is not None, etree.tostring(root)
        child = "record" if verb == "ListRecords" else "header"
        items += container.findall(f"o:{child}", NS)
        token = container.find("o:resumptionToken", NS)
        if token is None:
            return items, tokens
        tokens.append(token)
        if not token.text:
            return items, tokens
        root = oai(url, verb=verb, resumptionToken=token.text)


def test_walk_every_verb_with_resumption_tokens(paged: str, demo_archive) -> None:
    settings, _ = demo_archive
    auth = settings.ivo_authority
    expected = {f"ivo://{auth}", f"ivo://{auth}/org", f"ivo://{auth}/registry"} | {
        f"ivo://{auth}/{s}" for s in SERVICES
    }

    identify = oai(paged, verb="Identify").find("o:Identify", NS)
    assert identify.findtext("o:baseURL", namespaces=NS) == f"{paged}/oai"
    assert identify.findtext("o:protocolVersion", namespaces=NS) == "2.0"
    assert identify.findtext("o:deletedRecord", namespaces=NS) == "persistent"
    assert identify.findtext("o:granularity", namespaces=NS) == "YYYY-MM-DDThh:mm:ssZ"
    assert identify.findtext("o:adminEmail", namespaces=NS) == settings.registry_contact_email
    # Registry Interfaces 1.1: the vg:Registry record is in the description
    registry = identify.find("o:description/ri:Resource", NS)
    assert registry.get(f"{{{XSI}}}type") == "vg:Registry"
    assert registry.findtext("identifier") == f"ivo://{auth}/registry"
    assert registry.findtext("managedAuthority") == auth
    assert registry.findtext("full") == "false"
    harvest = registry.find("capability")
    assert harvest.get(f"{{{XSI}}}type") == "vg:Harvest"
    assert harvest.get("standardID") == "ivo://ivoa.net/std/Registry"
    assert harvest.findtext("interface/accessURL") == f"{paged}/oai"
    assert harvest.findtext("maxRecords") == "2"

    formats = oai(paged, verb="ListMetadataFormats").findall(".//o:metadataPrefix", NS)
    assert {f.text for f in formats} == {"ivo_vor", "oai_dc"}
    one = oai(paged, verb="ListMetadataFormats", identifier=f"ivo://{auth}/ssa")
    assert len(one.findall(".//o:metadataFormat", NS)) == 2
    sets = oai(paged, verb="ListSets").findall(".//o:setSpec", NS)
    assert [s.text for s in sets] == ["ivo_managed"]

    headers, tokens = walk(paged, "ListIdentifiers", metadataPrefix="ivo_vor")
    ids = [h.findtext("o:identifier", namespaces=NS) for h in headers]
    assert set(ids) >= expected and len(ids) == len(set(ids))  # no record twice
    live = {i for i, h in zip(ids, headers, strict=True) if h.get("status") != "deleted"}
    assert live == expected
    pages = (len(ids) + 1) // 2  # two per page; every page has a token, the last one empty
    assert [int(t.get("cursor")) for t in tokens] == [2 * k for k in range(pages)]
    assert all(int(t.get("completeListSize")) == len(ids) for t in tokens)
    assert tokens[-1].text is None and all(t.text for t in tokens[:-1])
    assert all(h.findtext("o:setSpec", namespaces=NS) == "ivo_managed" for h in headers)

    records, _ = walk(paged, "ListRecords", metadataPrefix="ivo_vor")
    by_id = {r.findtext("o:header/o:identifier", namespaces=NS): r for r in records}
    assert set(by_id) == set(ids)
    types = {
        i: r.find("o:metadata/ri:Resource", NS).get(f"{{{XSI}}}type")
        for i, r in by_id.items()
        if i in expected
    }
    assert types == {
        f"ivo://{auth}": "vg:Authority",
        f"ivo://{auth}/org": "vr:Organisation",
        f"ivo://{auth}/registry": "vg:Registry",
        f"ivo://{auth}/tap": "vs:CatalogService",
        f"ivo://{auth}/ssa": "vs:CatalogService",
        f"ivo://{auth}/datalink": "vs:DataService",
        f"ivo://{auth}/soda": "vs:DataService",
        f"ivo://{auth}/embeddings": "vs:DataService",
    }
    for identifier, record in by_id.items():
        if identifier not in expected:
            continue
        resource = record.find("o:metadata/ri:Resource", NS)
        datestamp = record.findtext("o:header/o:datestamp", namespaces=NS)
        assert resource.get("updated").startswith(datestamp[:-1])  # updated = datestamp
        got = oai(paged, verb="GetRecord", identifier=identifier, metadataPrefix="ivo_vor")
        assert got.find(".//ri:Resource", NS).findtext("identifier") == identifier
    dc_records, _ = walk(paged, "ListRecords", metadataPrefix="oai_dc")
    titles = {r.findtext(".//dc:title", namespaces=NS) for r in dc_records}
    assert f"{settings.registry_title} SSA service" in titles
    post = oai(paged, "POST", verb="GetRecord", identifier=f"ivo://{auth}/tap",
               metadataPrefix="oai_dc")  # fmt: skip
    assert post.findtext(".//dc:identifier", namespaces=NS) == f"ivo://{auth}/tap"


def test_errors_are_the_protocols(paged: str, demo_archive) -> None:
    auth = demo_archive[0].ivo_authority
    tap = f"identifier=ivo://{auth}/tap"
    lists = "verb=ListIdentifiers&metadataPrefix=ivo_vor"
    cases = [
        ("badVerb", ""),
        ("badVerb", "verb=identify"),
        ("badVerb", "verb=Identify&verb=Identify"),
        ("badArgument", "verb=Identify&metadataPrefix=ivo_vor"),
        ("badArgument", "verb=ListRecords"),
        ("badArgument", "verb=ListRecords&metadataPrefix=ivo_vor&metadataPrefix=oai_dc"),
        ("badArgument", f"{lists}&from=2024-13-45"),
        ("badArgument", f"{lists}&from=yesterday"),
        ("badArgument", f"{lists}&from=2024-01-01&until=2024-01-02T00:00:00Z"),
        ("badArgument", f"{lists}&from=2024-02-01&until=2024-01-01"),
        ("badArgument", "verb=ListRecords&resumptionToken=x&metadataPrefix=ivo_vor"),
        ("badArgument", f"verb=GetRecord&{tap}"),
        ("badResumptionToken", "verb=ListRecords&resumptionToken=not-a-token"),
        ("badResumptionToken", "verb=ListSets&resumptionToken=abc"),
        ("cannotDisseminateFormat", "verb=ListRecords&metadataPrefix=votable"),
        ("cannotDisseminateFormat", f"verb=GetRecord&{tap}&metadataPrefix=dc"),
        ("idDoesNotExist", "verb=GetRecord&identifier=ivo://nowhere/x&metadataPrefix=ivo_vor"),
        ("idDoesNotExist", "verb=ListMetadataFormats&identifier=ivo://nowhere/x"),
        ("noRecordsMatch", f"{lists}&from=2999-01-01"),
        ("noRecordsMatch", f"{lists}&until=1999-12-31"),
        ("noRecordsMatch", f"{lists}&set=ivo_other"),
    ]
    for code, query in cases:
        for method in ("GET", "POST"):
            if method == "GET":
                r = httpx.get(f"{paged}/oai?{query}", timeout=30)
            else:
                r = httpx.post(f"{paged}/oai", content=query, headers=FORM, timeout=30)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
            root = etree.fromstring(r.content)
            assert_valid(root)
            assert error_codes(root) == [code], (query, error_codes(root))
            assert all(len(e.text) > 20 for e in root.findall("o:error", NS))  # a usable message
            request = root.find("o:request", NS)
            assert request.text == f"{paged}/oai"
            if code in ("badVerb", "badArgument"):
                assert dict(request.attrib) == {}  # section 3.2: the base URL only
            else:
                assert dict(request.attrib) == dict(parse_qsl(query))
    # a token of one verb is not one of another
    token = oai(paged, verb="ListIdentifiers", metadataPrefix="ivo_vor").findtext(
        ".//o:resumptionToken", namespaces=NS
    )
    assert error_codes(oai(paged, verb="ListRecords", resumptionToken=token)) == [
        "badResumptionToken"
    ]


def _identifiers(url: str, **args: str) -> dict[str, tuple[str, str | None]]:
    headers, _ = walk(url, "ListIdentifiers", metadataPrefix="ivo_vor", **args)
    return {
        h.findtext("o:identifier", namespaces=NS): (
            h.findtext("o:datestamp", namespaces=NS),
            h.get("status"),
        )
        for h in headers
    }


def test_datestamps_selective_harvest_and_deleted_records(settings: Settings) -> None:
    port = free_port()
    first = settings.model_copy(update={"ivo_authority": "first.example", "port": port})
    with LiveServer(create_app(first), port) as server:
        before = _identifiers(server.url)
        assert len(before) == 8 and all(s is None for _, s in before.values())
        empty, _ = walk(server.url, "ListRecords", metadataPrefix="ivo_vor")  # no spectra yet:
        tap = next(
            r for r in empty if r.findtext(".//o:identifier", namespaces=NS).endswith("/tap")
        )
        assert tap.find(".//coverage/spatial") is None  # no MOC, and still valid records
    with psycopg.connect(settings.database_url, autocommit=True) as conn:  # a day ago
        conn.execute("UPDATE escape.registry_records SET datestamp = datestamp - interval '1 day'")
    port = free_port()
    second = settings.model_copy(
        update={"ivo_authority": "second.example", "port": port, "registry_title": "Renamed"}
    )
    with LiveServer(create_app(second), port) as server:
        after = _identifiers(server.url)
        assert len(after) == 16
        gone = {i for i, (_, s) in after.items() if s == "deleted"}
        assert gone == set(before)  # the old authority's records are withdrawn, not dropped
        record = oai(server.url, verb="GetRecord", identifier="ivo://first.example/tap",
                     metadataPrefix="ivo_vor")  # fmt: skip
        assert record.find(".//o:header", NS).get("status") == "deleted"
        assert record.find(".//o:metadata", NS) is None
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
        # every record changed today (new ones, deletions); none is older than yesterday
        assert set(_identifiers(server.url, **{"from": today})) == set(after)
        assert error_codes(
            oai(server.url, verb="ListIdentifiers", metadataPrefix="ivo_vor", until=yesterday)
        ) == ["noRecordsMatch"]
        stamps = sorted(d for d, _ in after.values())
        assert set(_identifiers(server.url, **{"from": stamps[0], "until": stamps[-1]})) == set(
            after
        )
        earliest = oai(server.url, verb="Identify").findtext(".//o:earliestDatestamp",
                                                           namespaces=NS)  # fmt: skip
        assert earliest == stamps[0]
    # unchanged content keeps its datestamp; a changed setting gives changed records a new one
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("UPDATE escape.registry_records SET datestamp = datestamp - interval '2 day'")
        old = dict(conn.execute("SELECT identifier, datestamp FROM escape.registry_records"))
    port = free_port()
    third = second.model_copy(update={"port": port, "registry_contact_email": "ops@second.example"})
    with LiveServer(create_app(third), port) as server:
        now = _identifiers(server.url)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        new = dict(conn.execute("SELECT identifier, datestamp FROM escape.registry_records"))
    moved = {i for i in new if new[i] != old[i]}
    assert moved == {i for i, (_, s) in now.items() if s is None}  # every live record names it
    port = free_port()
    with LiveServer(create_app(third.model_copy(update={"port": port})), port) as server:
        _identifiers(server.url)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        again = dict(conn.execute("SELECT identifier, datestamp FROM escape.registry_records"))
    assert again == new  # nothing changed, nothing moved (another port: the base URL is neutral)
