"""Translated ADQL runs on the real PostgreSQL and gives the expected rows and column types.

One migrated database per module holds a handful of spectra; every query checks that the result
column names and PostgreSQL types agree with the metadata the translator announced.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator

import astropy.units as u
import psycopg
import pytest
from astropy.coordinates import Latitude, Longitude
from cdshealpix import nested

from escape_vo.adql import AdqlError, Catalog, Translation, translate
from escape_vo.db.migrate import migrate
from escape_vo.schema.model import published_tables

CATALOG = Catalog.from_tables(published_tables())

SPECTRA = [
    # publisher_did suffix, target, ra, dec, instrument, collection, snr, wave_min, n_pix, aperture
    ("a", "HD 1", 10.0, -20.0, "HARPS", "eso", 50.0, 3.8e-7, 100, 0.0003),
    ("b", "HD 2", 10.001, -20.0005, "HARPS", "eso", 20.0, 3.9e-7, 200, 0.0003),
    ("c", "M31", 10.6847, 41.2690, "UVES", "eso", 80.0, 3.0e-7, 300, None),
    ("d", "NGC 300", 13.7229, -37.6844, "SDSS", "sdss", 5.0, 3.6e-7, 400, 0.0008),
    ("e", "nowhere", None, None, "SDSS", "sdss", None, 3.6e-7, 500, None),
]


def _row(suffix, target, ra, dec, instrument, collection, snr, wave_min, n_pix, aperture):
    healpix = None
    if ra is not None:
        lon, lat = Longitude([ra] * u.deg), Latitude([dec] * u.deg)
        healpix = int(nested.lonlat_to_healpix(lon, lat, 29)[0])
    return {
        "publisher_did": f"ivo://test.example/spectra?{suffix}",
        "obs_id": f"obs-{suffix}",
        "target_name": target,
        "ra": ra,
        "dec": dec,
        "healpix": healpix,
        "wave_min": wave_min,
        "wave_max": wave_min * 2,
        "instrument": instrument,
        "facility": "ESO-3.6" if instrument == "HARPS" else "other",
        "collection": collection,
        "calib_level": 2,
        "n_pix": n_pix,
        "snr": snr,
        "file_format": "bintable",
        "file_index": 0,
        "file_sha256": suffix * 64,
        "file_size": 1024 * n_pix,
        "file_path": f"{suffix}.fits",
        "ingest_time": "2026-01-01T00:00:00",
        "release_date": "2020-06-01T00:00:00",
        "aperture": aperture,
    }


@pytest.fixture(scope="module")
def adql_db(pg) -> Iterator[str]:
    name = f"t_adql_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg.url(name)
    try:
        migrate(url, base_url="http://127.0.0.1:8000")
        rows = [_row(*s) for s in SPECTRA]
        cols = list(rows[0])
        with psycopg.connect(url) as conn:
            conn.cursor().executemany(
                f"INSERT INTO archive.spectra ({', '.join(cols)}) "
                f"VALUES ({', '.join(['%s'] * len(cols))})",
                [[r[c] for c in cols] for r in rows],
            )
        yield url
    finally:
        with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def has_geometry(adql_db) -> bool:
    with psycopg.connect(adql_db) as conn:
        found = conn.execute(
            "SELECT to_regprocedure('escape.adql_contains(double precision[], double precision[])')"
        ).fetchone()[0]
    return found is not None


@pytest.fixture
def geometry(has_geometry) -> None:
    if not has_geometry:
        pytest.skip(
            "escape.adql_contains is not installed in the database yet (the geometry SQL "
            "functions land with the migrations' derived objects); runs once they exist"
        )


# PostgreSQL type OID -> the VOTable datatypes it may be announced as
_TEXT = {"char", "unicodeChar"}
_OID_DATATYPE = {
    16: {"boolean"}, 21: {"short"}, 23: {"int"}, 20: {"long"}, 700: {"float"}, 701: {"double"},
    25: _TEXT, 1043: _TEXT, 1042: _TEXT, 1114: {"char"}, 1022: {"double"}, 1021: {"float"},
    1016: {"long"},
}  # fmt: skip


def run(url: str, adql: str, max_rows: int | None = None) -> tuple[Translation, list[tuple]]:
    t = translate(adql, CATALOG, max_rows=max_rows)
    with psycopg.connect(url) as conn:
        for statement in t.setup:
            conn.execute(statement)
        cur = conn.execute(t.sql)
        rows = cur.fetchall()
        described = cur.description
    assert [d.name for d in described] == [c.name for c in t.columns]
    for d, col in zip(described, t.columns, strict=True):
        assert col.datatype in _OID_DATATYPE.get(d.type_code, ()), (col.name, d.type_code, t.sql)
        if d.type_code == 1114:
            assert col.xtype == "timestamp"
        if d.type_code == 1022:
            assert col.arraysize is not None
    return t, rows


def test_join_obscore_with_spectra_on_publisher_did(adql_db):
    t, rows = run(
        adql_db,
        "SELECT o.obs_publisher_did, s.snr, o.s_ra FROM ivoa.obscore AS o "
        "JOIN archive.spectra AS s ON o.obs_publisher_did = s.publisher_did "
        "WHERE s.snr IS NOT NULL ORDER BY s.snr DESC",
    )
    assert [r[0][-1] for r in rows] == ["c", "a", "b", "d"]
    assert rows[0][1:] == (80.0, 10.6847)
    assert t.tables == ["archive.spectra", "ivoa.obscore"]
    assert t.columns[2].unit == "deg"


def test_left_join_using_and_natural_join(adql_db):
    _, rows = run(
        adql_db,
        "SELECT publisher_did, q.n FROM archive.spectra LEFT JOIN "
        "(SELECT instrument, COUNT(*) AS n FROM archive.spectra WHERE snr > 10 "
        "GROUP BY instrument) AS q USING (instrument) ORDER BY publisher_did",
    )
    assert [r[1] for r in rows] == [2, 2, 1, None, None]
    _, rows = run(
        adql_db,
        "SELECT COUNT(*) FROM (SELECT publisher_did, target_name FROM archive.spectra) AS a "
        "NATURAL JOIN (SELECT publisher_did, target_name FROM archive.spectra) AS b",
    )
    assert rows == [(5,)]


def test_aggregates(adql_db):
    t, rows = run(
        adql_db,
        "SELECT instrument, COUNT(*) AS n, AVG(snr), MIN(wave_min), MAX(wave_max), "
        "SUM(n_pix), SUM(file_size), COUNT(DISTINCT collection) "
        "FROM archive.spectra GROUP BY instrument HAVING COUNT(*) > 0 ORDER BY instrument",
    )
    assert rows[0] == ("HARPS", 2, 35.0, 3.8e-7, 7.8e-7, 300, 1024 * 300, 1)
    assert rows[1][2] == 5.0  # SDSS: AVG ignores the NULL snr
    assert [c.name for c in t.columns] == ["instrument", "n", "avg", "min", "max", "sum",
                                           "sum_2", "count"]  # fmt: skip
    assert t.columns[3].unit == "m"


def test_set_operations(adql_db):
    _, rows = run(
        adql_db,
        "SELECT instrument FROM archive.spectra WHERE snr > 30 "
        "UNION SELECT instrument FROM archive.spectra WHERE collection = 'sdss' ORDER BY 1",
    )
    assert rows == [("HARPS",), ("SDSS",), ("UVES",)]
    _, rows = run(
        adql_db,
        "SELECT instrument FROM archive.spectra EXCEPT SELECT instrument FROM archive.spectra "
        "WHERE collection = 'sdss' INTERSECT SELECT instrument FROM archive.spectra "
        "ORDER BY instrument",
    )
    assert rows == [("HARPS",), ("UVES",)]
    _, rows = run(
        adql_db,
        "SELECT n_pix FROM archive.spectra UNION ALL SELECT n_pix FROM archive.spectra "
        "ORDER BY n_pix DESC OFFSET 7",
    )
    assert rows == [(200,), (100,), (100,)]


def test_common_table_expression(adql_db):
    t, rows = run(
        adql_db,
        "WITH bright AS (SELECT publisher_did, snr, ra FROM archive.spectra WHERE snr > 10), "
        "harps AS (SELECT publisher_did FROM archive.spectra WHERE instrument = 'HARPS') "
        "SELECT b.snr, b.ra FROM bright AS b JOIN harps AS h "
        "ON b.publisher_did = h.publisher_did ORDER BY b.snr",
    )
    assert rows == [(20.0, 10.001), (50.0, 10.0)]
    assert t.columns[1].unit == "deg"


def test_top_offset_order_by_position_and_max_rows(adql_db):
    _, rows = run(
        adql_db, "SELECT TOP 2 n_pix, target_name FROM archive.spectra ORDER BY 1 DESC OFFSET 1"
    )
    assert rows == [(400, "NGC 300"), (300, "M31")]
    _, rows = run(adql_db, "SELECT n_pix FROM archive.spectra ORDER BY n_pix", max_rows=3)
    assert rows == [(100,), (200,), (300,)]
    _, rows = run(adql_db, "SELECT TOP 2 n_pix FROM archive.spectra ORDER BY n_pix", max_rows=3)
    assert len(rows) == 2


def test_case_coalesce_nullif_cast(adql_db):
    _, rows = run(
        adql_db,
        "SELECT CASE WHEN snr >= 50 THEN 'good' WHEN snr IS NULL THEN 'unknown' "
        "ELSE 'poor' END AS quality, CASE instrument WHEN 'HARPS' THEN 1 ELSE 0 END, "
        "COALESCE(snr, -1), NULLIF(collection, 'eso'), CAST(n_pix AS SMALLINT), "
        "CAST(snr AS INTEGER), CAST(n_pix AS CHAR(2)), CAST(ingest_time AS VARCHAR), "
        "CAST('2021-01-14T11:25:00' AS TIMESTAMP), CAST(n_pix AS REAL), "
        "CAST(n_pix AS DOUBLE PRECISION), CAST(n_pix AS BIGINT) "
        "FROM archive.spectra ORDER BY publisher_did",
    )
    assert [r[0] for r in rows] == ["good", "poor", "good", "poor", "unknown"]
    assert [r[1] for r in rows] == [1, 1, 0, 0, 0]
    assert rows[4][2] == -1.0
    assert rows[0][3] is None and rows[3][3] == "sdss"
    assert rows[0][4:7] == (100, 50, "10")
    assert rows[0][7].startswith("2026-01-01")


def test_string_functions_and_patterns(adql_db):
    _, rows = run(
        adql_db,
        "SELECT LOWER(target_name), UPPER(instrument) || '/' || collection, "
        "target_name || n_pix FROM archive.spectra "
        "WHERE target_name LIKE 'HD%' OR target_name ILIKE 'ngc%' ORDER BY 1",
    )
    assert rows == [("hd 1", "HARPS/eso", "HD 1100"), ("hd 2", "HARPS/eso", "HD 2200"),
                    ("ngc 300", "SDSS/sdss", "NGC 300400")]  # fmt: skip
    _, rows = run(
        adql_db,
        "SELECT COUNT(*) FROM archive.spectra WHERE target_name LIKE 'HD!_%' ESCAPE '!' "
        "OR target_name NOT LIKE '%_%'",
    )
    assert rows == [(0,)]


def test_math_functions(adql_db):
    _, rows = run(
        adql_db,
        "SELECT TOP 1 ABS(-3.5), CEILING(2.1), FLOOR(-2.1), DEGREES(PI()), RADIANS(180), "
        "EXP(0), LOG(EXP(2)), LOG10(1000), MOD(7, 3), MOD(7.5, 2), POWER(2, 10), SQRT(16), "
        "ROUND(2.567, 2), ROUND(2.5), ROUND(1234, -2), TRUNCATE(-2.567, 1), TRUNCATE(9.99), "
        "SIN(0), COS(0), TAN(0), COT(PI()/4), ASIN(1), ACOS(1), ATAN(0), ATAN2(1, 1), 7 / 2, "
        "7.0 / 2, 0x0F & 6, 5 | 2, 6 ^ 3, ~0 FROM archive.spectra",
    )
    expected = (3.5, 3.0, -3.0, 180.0, math.pi, 1.0, 2.0, 3.0, 1, 1.5, 1024.0, 4.0, 2.57, 3.0,
                1200, -2.5, 9.0, 0.0, 1.0, 0.0, 1.0, math.pi / 2, 0.0, 0.0, math.pi / 4, 3,
                3.5, 6, 7, 5, -1)  # fmt: skip
    assert rows[0] == pytest.approx(expected)


def test_rand_with_seed_is_reproducible(adql_db):
    first = run(adql_db, "SELECT RAND(7) FROM archive.spectra ORDER BY publisher_did")[1]
    again = run(adql_db, "SELECT RAND(7) FROM archive.spectra ORDER BY publisher_did")[1]
    assert first == again
    assert len({r[0] for r in first}) == len(first)
    assert all(0 <= r[0] < 1 for r in run(adql_db, "SELECT RAND() FROM archive.spectra")[1])


def test_subqueries(adql_db):
    _, rows = run(
        adql_db,
        "SELECT target_name, (SELECT MAX(snr) FROM archive.spectra) AS best "
        "FROM archive.spectra AS s WHERE s.instrument IN "
        "(SELECT instrument FROM archive.spectra WHERE snr > 60) AND EXISTS "
        "(SELECT 1 FROM ivoa.obscore AS o WHERE o.obs_publisher_did = s.publisher_did)",
    )
    assert rows == [("M31", 80.0)]


def test_in_unit(adql_db):
    t, rows = run(
        adql_db,
        "SELECT IN_UNIT(em_min, 'nm'), IN_UNIT(s_ra, 'arcsec') AS ra_as "
        "FROM ivoa.obscore WHERE obs_id = 'obs-a'",
    )
    assert rows[0] == pytest.approx((380.0, 36000.0))
    assert [c.unit for c in t.columns] == ["nm", "arcsec"]


def test_select_star_from_obscore_matches_declared_columns(adql_db):
    t, rows = run(adql_db, "SELECT * FROM ivoa.obscore ORDER BY obs_publisher_did")
    assert len(rows) == 5
    obscore = next(tb for tb in published_tables() if tb.qualified_name == "ivoa.obscore")
    assert t.columns == list(obscore.columns)
    assert rows[0][t.columns.index(obscore.column("access_url"))].startswith("http://127.0.0.1")


def test_tap_schema_queries(adql_db):
    _, rows = run(adql_db, "SELECT table_name FROM TAP_SCHEMA.tables ORDER BY table_name")
    names = [r[0] for r in rows]
    assert "ivoa.obscore" in names and "archive.spectra" in names
    assert "escape.settings" not in names
    _, rows = run(
        adql_db,
        'SELECT column_name, datatype, "size", unit FROM tap_schema.columns '
        "WHERE table_name = 'ivoa.obscore' AND column_name = 's_ra'",
    )
    assert rows == [("s_ra", "double", None, "deg")]


def test_injection_stays_a_string(adql_db):
    _, rows = run(
        adql_db,
        "SELECT COUNT(*) FROM archive.spectra WHERE target_name = '''; DROP TABLE x; --' "
        "OR target_name = 'a\\b'",
    )
    assert rows == [(0,)]
    with pytest.raises(AdqlError):
        translate("SELECT * FROM archive.spectra; DROP TABLE archive.spectra", CATALOG)


# Queries that must run and return the types their metadata announces (checked by `run`).
VARIED = [
    "SELECT * FROM archive.spectra AS a JOIN archive.spectra AS b USING (publisher_did)",
    "SELECT * FROM archive.spectra AS a FULL OUTER JOIN archive.spectra AS b USING (obs_id, ra)",
    "SELECT * FROM archive.spectra NATURAL JOIN ivoa.obscore",
    "SELECT * FROM archive.spectra CROSS JOIN tap_schema.schemas",
    "SELECT t.* FROM (SELECT TOP 3 * FROM ivoa.obscore ORDER BY s_ra) AS t",
    "(SELECT TOP 1 obs_id FROM ivoa.obscore ORDER BY obs_id) UNION "
    "(SELECT TOP 1 obs_id FROM ivoa.obscore ORDER BY obs_id DESC) ORDER BY obs_id",
    "((SELECT obs_id FROM ivoa.obscore)) ORDER BY 1 OFFSET 1",
    "SELECT obs_id FROM ivoa.obscore WHERE s_ra IN (SELECT ra FROM archive.spectra) "
    "AND NOT (s_dec < 0 OR s_dec IS NULL)",
    "SELECT COUNT(*) FROM ivoa.obscore GROUP BY obs_collection HAVING MAX(s_ra) > 1",
    "SELECT obs_collection AS c, COUNT(*) FROM ivoa.obscore GROUP BY c ORDER BY c",
    "SELECT ROUND(AVG(s_ra), 3), TRUNCATE(SUM(s_dec)), SUM(calib_level), SUM(t_xel) "
    "FROM ivoa.obscore",
    "SELECT ivo_interval_overlaps(em_min, em_max, 5e-7, 6e-7), "
    "ivo_string_agg(obs_id, ',') FROM ivoa.obscore GROUP BY em_min, em_max",
    "SELECT 'a' || 1 || 2.5, obs_id || s_ra FROM ivoa.obscore",
    "WITH x AS (SELECT obs_id, s_ra FROM ivoa.obscore) SELECT obs_id FROM x "
    "UNION SELECT obs_id FROM x ORDER BY obs_id",
    "SELECT s_ra FROM ivoa.obscore WHERE s_ra > (SELECT AVG(s_ra) FROM ivoa.obscore)",
    "SELECT DISTINCT instrument_name FROM ivoa.obscore ORDER BY instrument_name",
    "SELECT TOP 0 * FROM tap_schema.columns",
    "SELECT * FROM tap_schema.keys JOIN tap_schema.key_columns USING (key_id)",
    "SELECT CASE WHEN s_ra > 1 THEN NULL ELSE 2 END, NULL, CAST(NULL AS INTEGER) FROM ivoa.obscore",
    "SELECT obs_release_date, MAX(obs_release_date) FROM ivoa.obscore "
    "WHERE obs_release_date > '2020-01-01' GROUP BY obs_release_date",
    "SELECT MIN(obs_id), MAX(s_region) FROM ivoa.obscore WHERE obs_id BETWEEN 'a' AND 'z'",
    "SELECT -s_ra, +s_dec, -(-1), 1e3, .5, 1., 12345678901 FROM ivoa.obscore",
    "SELECT access_estsize * 2, access_estsize / 3, access_estsize + 0.5, calib_level * "
    "calib_level, calib_level + em_xel, CAST(s_ra AS REAL) * 2, CAST(s_ra AS REAL) + "
    "CAST(s_dec AS REAL) FROM ivoa.obscore",
    "SELECT COUNT(*) AS n FROM ivoa.obscore AS o WHERE EXISTS (SELECT * FROM archive.spectra "
    "AS s WHERE s.publisher_did = o.obs_publisher_did AND s.snr > 10)",
    "SELECT MOD(n_pix, 7), MOD(file_index, 2), ABS(calib_level), ABS(snr), 0x7fffffffff "
    "FROM archive.spectra",
    "SELECT IN_UNIT(MAX(exptime), 'h'), IN_UNIT(file_size, 'kbyte') FROM archive.spectra "
    "GROUP BY file_size",
]


@pytest.mark.parametrize("adql", VARIED)
def test_queries_run_with_announced_types(adql_db, adql):
    run(adql_db, adql, max_rows=1001)


# ---- geometry (needs the escape.adql_* SQL functions) ----------------------------------


def test_cone_search_uses_healpix_ranges(adql_db, geometry):
    adql = (
        "SELECT publisher_did FROM archive.spectra "
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10.0, -20.0, 0.01)) "
        "ORDER BY publisher_did"
    )
    t, rows = run(adql_db, adql)
    assert '"healpix" BETWEEN' in t.sql or '"healpix" =' in t.sql
    assert [r[0][-1] for r in rows] == ["a", "b"]
    _, rows = run(
        adql_db,
        "SELECT obs_id FROM ivoa.obscore WHERE DISTANCE(POINT(s_ra, s_dec), "
        "POINT(10.6847, 41.269)) < 1.0/60",
    )
    assert rows == [("obs-c",)]


def _plan(url: str, adql: str) -> str:
    t = translate(adql, CATALOG)
    with psycopg.connect(url) as conn:
        conn.execute("SET enable_seqscan = off")
        return "\n".join(r[0] for r in conn.execute("EXPLAIN " + t.sql))


def test_positional_queries_can_use_the_indexes(adql_db, geometry):
    plan = _plan(
        adql_db,
        "SELECT obs_id FROM ivoa.obscore WHERE 1 = CONTAINS(POINT(s_ra, s_dec), "
        "CIRCLE(10, -20, 0.1))",
    )
    assert re.search(r"Index.*healpix", plan), plan
    plan = _plan(
        adql_db,
        "SELECT a.obs_id FROM archive.spectra AS a JOIN archive.spectra AS b "
        "ON DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec)) < 0.01",
    )
    assert re.search(r"Index.*dec", plan), plan
    assert ivo_healpix_matches(adql_db)


def ivo_healpix_matches(url: str) -> bool:
    _, rows = run(
        url,
        "SELECT ivo_healpix_index(29, ra, dec), healpix, ivo_healpix_index(0, ra, dec) "
        "FROM archive.spectra WHERE ra IS NOT NULL",
    )
    return all(r[0] == r[1] and r[2] == r[1] >> 58 for r in rows)


def test_polygon_box_and_region_column(adql_db, geometry):
    _, rows = run(
        adql_db,
        "SELECT obs_id FROM ivoa.obscore WHERE 1 = CONTAINS(POINT(s_ra, s_dec), "
        "POLYGON(9, -21, 11, -21, 11, -19, 9, -19)) ORDER BY obs_id",
    )
    assert rows == [("obs-a",), ("obs-b",)]
    _, rows = run(
        adql_db,
        "SELECT obs_id FROM ivoa.obscore WHERE 1 = INTERSECTS(BOX(13.7229, -37.6844, 0.1, 0.1), "
        "s_region)",
    )
    assert rows == [("obs-d",)]


def test_crossmatch_with_declination_band(adql_db, geometry):
    t, rows = run(
        adql_db,
        "SELECT a.obs_id, b.obs_id, DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec)) AS d "
        "FROM archive.spectra AS a JOIN archive.spectra AS b "
        "ON DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec)) < 0.01 "
        "WHERE a.publisher_did < b.publisher_did",
    )
    assert '"b"."dec" BETWEEN "a"."dec" -' in t.sql
    assert [r[:2] for r in rows] == [("obs-a", "obs-b")]
    d1, d2, dra = math.radians(-20), math.radians(-20.0005), math.radians(0.001)
    cos_d = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(dra)
    expected = math.degrees(math.acos(cos_d))
    assert rows[0][2] == pytest.approx(expected, rel=1e-6)
    assert t.columns[2].unit == "deg"


def test_geometry_values_and_functions(adql_db, geometry):
    t, rows = run(
        adql_db,
        "SELECT TOP 1 POINT(10, 20), CIRCLE(1, 2, 3), COORD1(POINT(5, 6)), "
        "COORD2(CENTROID(CIRCLE(1, 2, 0.5))), AREA(CIRCLE(0, 0, 1)), COORDSYS(POINT(1, 2)), "
        "CAST('12.3 45.6' AS POINT), REGION('POLYGON ICRS 1 1 2 1 2 2') "
        "FROM archive.spectra",
    )
    assert [c.xtype for c in t.columns[:2]] == ["point", "circle"]
    assert rows[0][0] == [10.0, 20.0] and rows[0][1] == [1.0, 2.0, 3.0]
    assert rows[0][2:4] == (5.0, 2.0)
    assert rows[0][4] == pytest.approx(math.pi, rel=1e-3)
    assert rows[0][5:7] == ("ICRS", [12.3, 45.6])
    assert t.columns[7].xtype == "polygon" and len(rows[0][7]) == 6
