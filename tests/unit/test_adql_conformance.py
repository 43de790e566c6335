"""The IVOA ADQL test corpus (lyonetia): valid queries translate, invalid ones are rejected.

The corpus is GPL test data kept outside this repository: it is read at test time from
$ESCAPE_VO_ADQL_CONFORMANCE or <repo>/../shared/conformance/adql. Its queries use made-up
tables (stars, spatial, ...), so they run against a permissive catalog (the published tables
plus any unknown table or column, typed as double) that only this test uses.

Valid queries we deliberately do not accept are listed in KNOWN_GAPS with the reason; each must
fail with an AdqlError whose message contains the given fragment (so the message says why).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from escape_vo.adql import AdqlError, Catalog, translate
from escape_vo.schema.model import published_tables

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(
    os.environ.get("ESCAPE_VO_ADQL_CONFORMANCE") or REPO.parent / "shared" / "conformance" / "adql"
)

_UDF = "uses the UDF {} that this service does not offer"
_FRAME = "coordinate system {} is not ICRS; the service supports ICRS only"
_JOIN = "JOIN without ON or USING: ivoa/2_from.xml#4 requires rejecting it (DaCHS' tests accept it)"
_STCS = "STC-S region beyond POSITION/CIRCLE/BOX/POLYGON ({})"
_DIST = "ESO extension: DISTANCE of a region column (ADQL defines DISTANCE of points)"

# (file, index) -> (reason, fragment the error message must contain)
KNOWN_GAPS: dict[tuple[str, int], tuple[str, str]] = {
    ("gavo/additionaltests.xml", 1): (_UDF.format("ivo_foo"), "ivo_foo"),
    ("gavo/additionaltests.xml", 2): (_UDF.format("ivo_foo"), "ivo_foo"),
    ("gavo/simpleunit.xml", 174): (_UDF.format("ivo_getstring"), "ivo_getstring"),
    ("ivoa/X1_obscore_eso.xml", 14): (_UDF.format("ESO_INTERSECTION"), "eso_intersection"),
    ("ivoa/X1_obscore_eso.xml", 28): (_UDF.format("ESO_INTERSECTION"), "eso_intersection"),
    ("ivoa/X1_obscore_eso.xml", 29): (_UDF.format("ESO_INTERSECTION"), "eso_intersection"),
    ("ivoa/X1_obscore_eso.xml", 15): (_UDF.format("ESO_DATEADD_SEC"), "eso_dateadd_sec"),
    ("ivoa/X1_obscore_eso.xml", 36): (_UDF.format("ESO_DATEADD_SEC"), "eso_dateadd_sec"),
    ("gavo/geometry.xml", 5): (_FRAME.format("FK4"), "ICRS only"),
    ("gavo/geometry.xml", 11): (_FRAME.format("QUARK"), "ICRS only"),
    ("gavo/geometry.xml", 14): (_FRAME.format("GALACTIC"), "ICRS only"),
    ("gavo/geometry.xml", 15): (_FRAME.format("GALACTIC"), "ICRS only"),
    ("gavo/geometry.xml", 23): (_FRAME.format("FK4"), "ICRS only"),
    ("gavo/whitespace.xml", 5): (_FRAME.format("FK4"), "ICRS only"),
    ("ivoa/0_whitespace.xml", 5): (_FRAME.format("FK4"), "ICRS only"),
    ("ivoa/O1_geometrical_functions.xml", 5): (_FRAME.format("FK4"), "ICRS only"),
    ("ivoa/O1_geometrical_functions.xml", 14): (_FRAME.format("GALACTIC"), "ICRS only"),
    ("ivoa/O1_geometrical_functions.xml", 15): (_FRAME.format("GALACTIC"), "ICRS only"),
    ("ivoa/O1_geometrical_functions.xml", 23): (_FRAME.format("FK4"), "ICRS only"),
    ("gavo/geometry.xml", 31): (_STCS.format("Union, Intersection"), "REGION supports"),
    ("gavo/geometry.xml", 32): (_STCS.format("NOT"), "REGION supports"),
    ("ivoa/O1_geometrical_functions.xml", 31): (_STCS.format("Union"), "REGION supports"),
    ("ivoa/O1_geometrical_functions.xml", 32): (_STCS.format("NOT"), "REGION supports"),
    ("gavo/simpleunit.xml", 16): (_JOIN, "expected ON or USING"),
    ("gavo/simpleunit.xml", 18): (_JOIN, "expected ON or USING"),
    ("gavo/simpleunit.xml", 19): (_JOIN, "expected ON or USING"),
    ("gavo/simpleunit.xml", 20): (_JOIN, "expected ON or USING"),
    ("gavo/simpleunit.xml", 23): (_JOIN, "expected ON or USING"),
    ("gavo/simpleunit.xml", 24): (_JOIN, "expected ON or USING"),
    ("gavo/simpleunit.xml", 98): (_JOIN, "expected ON or USING"),
    ("gavo/simpleunit.xml", 162): (_JOIN, "expected ON or USING"),
    ("gavo/subqueries.xml", 3): (_JOIN, "expected ON or USING"),
    ("gavo/subqueries.xml", 4): (_JOIN, "expected ON or USING"),
    ("gavo/whitespace.xml", 23): (_JOIN, "expected ON or USING"),
    ("gavo/whitespace.xml", 24): (_JOIN, "expected ON or USING"),
    ("gavo/whitespace.xml", 31): (_JOIN, "expected ON or USING"),
    ("ivoa/X1_obscore_eso.xml", 10): (_DIST, "DISTANCE needs a point"),
    ("ivoa/X1_obscore_eso.xml", 11): (_DIST, "DISTANCE needs a point"),
    ("ivoa/X1_obscore_eso.xml", 13): (_DIST, "DISTANCE needs a point"),
    ("ivoa/X1_obscore_eso.xml", 26): (_DIST, "DISTANCE needs a point"),
    ("ivoa/X1_obscore_eso.xml", 27): (_DIST, "DISTANCE needs a point"),
    ("ivoa/X1_obscore_eso.xml", 31): (_DIST, "DISTANCE needs a point"),
    ("gavo/warts.xml", 0): ("DaCHS wart: an integer as CENTROID argument", "needs a geometry"),
    ("gavo/warts.xml", 1): (
        "DaCHS wart: CENTROID(COUNT(*)) in WHERE (an aggregate in WHERE, and not a geometry)",
        "not allowed in WHERE",
    ),
    ("gavo/warts.xml", 2): ("DaCHS wart: a string literal as coordinate", "needs a number"),
    ("gavo/simpleunit.xml", 96): (
        "compares a number with a string expression, which PostgreSQL cannot run",
        "cannot compare",
    ),
}


def _load() -> list[tuple[str, int, bool, str]]:
    if not CORPUS.is_dir():
        return []
    cases = []
    for path in sorted(CORPUS.glob("*/*.xml")):
        name = path.relative_to(CORPUS).as_posix()
        for index, query in enumerate(ET.parse(path).getroot().findall("query")):
            adql = query.find("adql")
            cases.append((name, index, adql.get("valid", "false") == "true", adql.text or ""))
    return cases


CASES = _load()
pytestmark = pytest.mark.skipif(
    not CASES,
    reason=f"ADQL conformance corpus not found at {CORPUS} (set ESCAPE_VO_ADQL_CONFORMANCE)",
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.from_tables(published_tables(), permissive=True)


def _outcome(adql: str, catalog: Catalog) -> AdqlError | None:
    try:
        translate(adql, catalog, max_rows=1001)
    except AdqlError as exc:
        return exc
    return None


@pytest.mark.parametrize(
    ("name", "index", "valid", "adql"), CASES, ids=[f"{c[0]}#{c[1]}" for c in CASES]
)
def test_query(name: str, index: int, valid: bool, adql: str, catalog: Catalog) -> None:
    error = _outcome(adql, catalog)
    gap = KNOWN_GAPS.get((name, index))
    if gap is not None:
        assert valid, f"{name}#{index} is listed as a gap but is an invalid query"
        reason, fragment = gap
        assert error is not None, f"known gap now translates ({reason}): remove it from the list"
        assert fragment in str(error), (reason, str(error))
    elif valid:
        assert error is None, f"valid query rejected: {error}\n{adql}"
    else:
        assert error is not None, f"invalid query accepted:\n{adql}"
        assert error.message


def test_corpus_summary(catalog: Catalog, capsys: pytest.CaptureFixture) -> None:
    counts: Counter[str] = Counter()
    for name, index, valid, adql in CASES:
        ok = (_outcome(adql, catalog) is None) == valid
        if (name, index) in KNOWN_GAPS:
            counts["known gap"] += 1
        elif ok:
            counts["valid accepted" if valid else "invalid rejected"] += 1
        else:
            counts["mismatch"] += 1
    with capsys.disabled():
        print(
            f"\nADQL corpus: {len(CASES)} queries: {counts['valid accepted']} valid accepted, "
            f"{counts['invalid rejected']} invalid rejected, {counts['known gap']} known gaps, "
            f"{counts['mismatch']} mismatches"
        )
    assert counts["mismatch"] == 0
    assert all(key in {(n, i) for n, i, _v, _a in CASES} for key in KNOWN_GAPS)
