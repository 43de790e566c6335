"""The VOResource records against the XSDs, against the services' own VOSI capabilities, and
against what the archive holds (tables, coverage); access URLs agree everywhere."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator

import astropy.units as u
import httpx
import psycopg
import pytest
from lxml import etree
from mocpy import MOC

from escape_vo.schema.model import find_table
from escape_vo.web.app import create_app
from tests.conftest import LiveServer, free_port
from tests.data.xsd.validate import assert_valid

NS = {
    "o": "http://www.openarchives.org/OAI/2.0/",
    "ri": "http://www.ivoa.net/xml/RegistryInterface/v1.0",
}
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
SERVICES = ("tap", "ssa", "datalink", "soda", "embeddings")
HC = 6.62607015e-34 * 299792458.0  # J m


def record(url: str, identifier: str) -> etree._Element:
    r = httpx.get(f"{url}/oai", params={"verb": "GetRecord", "identifier": identifier,
                                        "metadataPrefix": "ivo_vor"}, timeout=30)  # fmt: skip
    resource = etree.fromstring(r.content).find(".//ri:Resource", NS)
    assert resource is not None, r.text
    assert_valid(resource)  # the record alone, as a harvester stores it
    return resource


def vosi_capabilities(url: str, service: str) -> list[etree._Element]:
    r = httpx.get(f"{url}/{service}/capabilities", timeout=30)
    assert r.status_code == 200
    doc = etree.fromstring(r.content)
    assert_valid(doc)
    return doc.findall("capability")


def canonical(el: etree._Element) -> tuple:
    """An element as a comparable tree; xsi:type compared by the namespace its prefix names."""
    attrs = []
    for key, value in sorted(el.attrib.items()):
        if key == XSI_TYPE:
            prefix, _, local = value.rpartition(":")
            value = f"{{{el.nsmap.get(prefix or None)}}}{local}"
        attrs.append((key, value))
    text = (el.text or "").strip()
    return (el.tag, tuple(attrs), text, tuple(canonical(c) for c in el))


@pytest.fixture(scope="module")
def behind_proxy(demo_archive) -> Iterator[str]:
    """The demo archive with PUBLIC_URL set, as behind a reverse proxy; yields its real URL."""
    settings, _ = demo_archive
    port = free_port()
    public = "https://vo.example.org/spectra"
    app = create_app(settings.model_copy(update={"public_url": public, "port": port}))
    with LiveServer(app, port) as server:
        yield server.url


def test_records_carry_the_vosi_capabilities(live_server, demo_archive) -> None:
    auth = demo_archive[0].ivo_authority
    for service in SERVICES:
        resource = record(live_server.url, f"ivo://{auth}/{service}")
        in_record = [canonical(c) for c in resource.findall("capability")]
        in_vosi = [canonical(c) for c in vosi_capabilities(live_server.url, service)]
        assert in_record == in_vosi, service
        if service in ("ssa", "embeddings", "datalink"):  # written in full (vs:ParamHTTP)
            (interface,) = resource.findall("capability")[0].findall("interface")
            assert interface.findtext("queryType") == "GET", service
            assert interface.findtext("resultType").startswith("application/x-votable+xml")
    # the embedding of one's own file is a capability of its own, POST only
    resource = record(live_server.url, f"ivo://{auth}/embeddings")
    embed = [c for c in resource.findall("capability") if "/embeddings/embed" in _access_urls(c)[0]]
    assert len(embed) == 1 and "RESPONSEFORMAT" in embed[0].findtext("description")
    assert [q.text for q in embed[0].iter("queryType")] == ["POST"]


def _access_urls(el: etree._Element) -> list[str]:
    return [a.text for a in el.iter("accessURL")]


@pytest.mark.parametrize("where", ["request", "public"])
def test_access_urls_agree_everywhere(where, live_server, behind_proxy, demo_archive) -> None:
    url = live_server.url if where == "request" else behind_proxy
    base = live_server.url if where == "request" else "https://vo.example.org/spectra"
    auth = demo_archive[0].ivo_authority
    seen = []
    for service in SERVICES:
        vosi = [u for c in vosi_capabilities(url, service) for u in _access_urls(c)]
        resource = record(url, f"ivo://{auth}/{service}")
        assert _access_urls(resource) == vosi
        seen += vosi
        assert resource.findtext("content/referenceURL") == f"{base}/"
        assert resource.findtext("coverage/footprint") == f"{base}/coverage"
    ssa = httpx.get(f"{url}/ssa", params={"REQUEST": "getCapabilities"}, timeout=30)
    assert _access_urls(etree.fromstring(ssa.content)) == _access_urls(
        etree.fromstring(httpx.get(f"{url}/ssa/capabilities", timeout=30).content)
    )
    registry = record(url, f"ivo://{auth}/registry")
    seen += _access_urls(registry)
    assert _access_urls(registry) == [f"{base}/oai"]
    assert all(u.startswith(f"{base}/") for u in seen), seen
    expected = {f"{base}/{p}" for p in ("tap", "ssa", "datalink/links", "soda/sync")}
    assert expected <= set(seen)


def test_records_describe_the_archive(live_server, demo_archive) -> None:
    settings, _ = demo_archive
    auth = settings.ivo_authority
    with psycopg.connect(settings.database_url) as conn:
        ra, dec = zip(*conn.execute("SELECT ra, dec FROM archive.spectra WHERE ra IS NOT NULL"),
                      strict=True)  # fmt: skip
        t_min, t_max, w_min, w_max = conn.execute(
            "SELECT min(t_min), max(coalesce(t_max, t_min)), min(wave_min), max(wave_max) "
            "FROM archive.spectra"
        ).fetchone()
        instruments = {
            i for (i,) in conn.execute("SELECT DISTINCT instrument FROM archive.spectra")
        }

    tap = record(live_server.url, f"ivo://{auth}/tap")
    assert tap.get(XSI_TYPE) == "vs:CatalogService" and tap.get("status") == "active"
    coverage = tap.find("coverage")
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        f.write(coverage.findtext("spatial"))
        f.flush()
        moc = MOC.load(f.name, format="ascii")
    assert moc.contains_lonlat(list(ra) * u.deg, list(dec) * u.deg).all()
    lo, hi = map(float, coverage.findtext("temporal").split())
    assert (lo, hi) == (pytest.approx(t_min), pytest.approx(t_max))
    e_lo, e_hi = map(float, coverage.findtext("spectral").split())  # Joules, VODataService 1.2
    assert math.isclose(e_lo, HC / w_max, rel_tol=1e-5) and math.isclose(e_hi, HC / w_min,
                                                                         rel_tol=1e-5)  # fmt: skip
    bands = [w.text for w in coverage.findall("waveband")]
    assert "Optical" in bands and all(b in ("UV", "Optical", "Infrared") for b in bands)
    assert coverage.find("footprint").get("ivo-id") == "ivo://ivoa.net/std/moc"
    assert {i.text for i in tap.findall("instrument")} == instruments

    tables = {t.findtext("name") for t in tap.iter("table")}
    assert {"ivoa.obscore", "archive.spectra", "tap_schema.columns", "ssa.ssa"} <= tables
    obscore = next(t for t in tap.iter("table") if t.findtext("name") == "ivoa.obscore")
    columns = {c.findtext("name"): c for c in obscore.findall("column")}
    declared = find_table("ivoa.obscore")  # the records come from the same declarations
    assert set(columns) == {c.adql_name for c in declared.columns}
    assert columns["s_ra"].findtext("ucd") == declared.column("s_ra").ucd
    ssa = record(live_server.url, f"ivo://{auth}/ssa")
    assert [t.findtext("name") for t in ssa.iter("table")] == ["ssa.ssa"]
    assert ssa.find("capability").get("standardID") == "ivo://ivoa.net/std/SSA"
    for service in ("datalink", "soda"):
        assert record(live_server.url, f"ivo://{auth}/{service}").get(XSI_TYPE) == "vs:DataService"

    authority = record(live_server.url, f"ivo://{auth}")
    assert authority.get(XSI_TYPE) == "vg:Authority"
    assert authority.find("managingOrg").get("ivo-id") == f"ivo://{auth}/org"
    org = record(live_server.url, f"ivo://{auth}/org")
    assert org.get(XSI_TYPE) == "vr:Organisation"
    assert {i.text for i in org.findall("instrument")} == instruments
    assert tap.find("curation/publisher").get("ivo-id") == f"ivo://{auth}/org"
    assert tap.findtext("curation/contact/email") == settings.registry_contact_email
