"""ADQL -> PostgreSQL translation against the published tables: names, SQL shape, metadata."""

from __future__ import annotations

import re
import sys
import types
from dataclasses import replace

import pytest

from escape_vo.adql import LANGUAGE_FEATURES, UDFS, AdqlError, Catalog, translate
from escape_vo.schema.model import Column, Table, find_table, published_tables

CATALOG = Catalog.from_tables(published_tables())
OBSCORE = find_table("ivoa.obscore")
SPECTRA = find_table("archive.spectra")


def sql(adql: str, max_rows: int | None = None) -> str:
    return translate(adql, CATALOG, max_rows=max_rows).sql


def fails(adql: str, catalog: Catalog = CATALOG) -> str:
    with pytest.raises(AdqlError) as info:
        translate(adql, catalog)
    return str(info.value)


@pytest.fixture
def ranges(monkeypatch) -> list:
    """Replace escape_vo.geometry.healpix_ranges by a recorder returning two fixed ranges."""
    calls: list = []

    def fake(kind, params, max_ranges=24):
        calls.append((kind, [round(p, 9) for p in params]))
        return [(10, 20), (30, 30)]

    try:
        import escape_vo.geometry as geometry

        monkeypatch.setattr(geometry, "healpix_ranges", fake)
    except ImportError:
        monkeypatch.setitem(sys.modules, "escape_vo.geometry", types.SimpleNamespace(
            healpix_ranges=fake))  # fmt: skip
    return calls


# ---- identifier resolution ---------------------------------------------------------------


def test_names_resolve_case_insensitively_and_are_quoted():
    t = translate("select S_RA, Obs_Id from IVOA.ObsCore", CATALOG)
    assert t.sql == (
        'SELECT "ivoa"."obscore"."s_ra" AS "s_ra", "ivoa"."obscore"."obs_id" AS "obs_id" '
        'FROM "ivoa"."obscore"'
    )
    assert t.columns == [OBSCORE.column("s_ra"), OBSCORE.column("obs_id")]
    assert t.tables == ["ivoa.obscore"]


def test_delimited_names_are_case_sensitive():
    assert "unknown column 'S_RA' in ivoa.obscore; did you mean 's_ra'?" in fails(
        'SELECT "S_RA" FROM ivoa.obscore'
    )
    assert sql('SELECT "s_ra" FROM "ivoa"."obscore"').startswith('SELECT "ivoa"."obscore"."s_ra"')
    assert "unknown table" in fails('SELECT * FROM "IVOA".obscore')


def test_unknown_names_suggest_the_closest():
    message = fails("SELECT sra FROM ivoa.obscore")
    assert message.startswith("unknown column 'sra' in ivoa.obscore; did you mean 's_ra'?")
    assert "did you mean 'ivoa.obscore'" in fails("SELECT * FROM ivoa.obscor")
    assert "did you mean 'ivoa.obscore'" in fails("SELECT * FROM obscor")
    assert "unknown column 'snrr'; did you mean 'snr'?" in fails(
        "SELECT snrr FROM ivoa.obscore AS o, archive.spectra AS s"
    )
    err = fails("SELECT x.s_ra FROM ivoa.obscore AS o")
    assert "'x' is not a table or alias" in err and "o" in err


def test_error_position_is_reported():
    with pytest.raises(AdqlError) as info:
        translate("SELECT s_ra,\n  sra FROM ivoa.obscore", CATALOG)
    assert (info.value.line, info.value.column) == (2, 3)


def test_unqualified_table_names():
    assert '"archive"."spectra"' in sql("SELECT snr FROM spectra")
    assert '"tap_schema"."tables"' in sql("SELECT table_name FROM TAP_SCHEMA.tables")
    twin = Table(schema="other", name="obscore", description="", columns=(Column("a", "int"),))
    catalog = Catalog.from_tables([*published_tables(), twin])
    message = fails("SELECT * FROM obscore", catalog)
    assert "ambiguous" in message and "ivoa.obscore" in message and "other.obscore" in message


def test_aliases_qualifiers_and_ambiguity():
    text = sql(
        "SELECT o.s_ra, s.snr, aperture FROM ivoa.obscore AS o JOIN archive.spectra s "
        "ON o.obs_publisher_did = s.publisher_did"
    )
    assert 'FROM "ivoa"."obscore" AS "o" JOIN "archive"."spectra" AS "s"' in text
    assert '"o"."s_ra" AS "s_ra", "s"."snr" AS "snr"' in text
    assert "ambiguous" in fails(
        "SELECT target_class FROM ivoa.obscore AS o JOIN archive.spectra s "
        "ON o.obs_publisher_did = s.publisher_did"
    )
    assert '"ivoa"."obscore"."s_ra"' in sql("SELECT ivoa.obscore.s_ra FROM ivoa.obscore")
    assert '"o"."s_ra"' in sql("SELECT obscore.s_ra FROM ivoa.obscore AS o")
    assert "more than once" in fails("SELECT * FROM ivoa.obscore, ivoa.obscore")


def test_star_expansion_gives_exact_metadata():
    t = translate("SELECT * FROM ivoa.obscore", CATALOG)
    assert t.columns == list(OBSCORE.columns)
    assert "*" not in t.sql
    t = translate(
        "SELECT s.*, o.s_ra FROM archive.spectra AS s JOIN ivoa.obscore AS o "
        "ON s.publisher_did = o.obs_publisher_did",
        CATALOG,
    )
    assert [c.name for c in t.columns] == [c.name for c in SPECTRA.columns] + ["s_ra"]


def test_using_and_natural_joins_merge_columns():
    t = translate(
        "SELECT * FROM (SELECT obs_id, s_ra FROM ivoa.obscore) AS a "
        "FULL JOIN (SELECT obs_id, snr FROM archive.spectra) AS b USING (obs_id)",
        CATALOG,
    )
    assert [c.name for c in t.columns] == ["obs_id", "s_ra", "snr"]
    assert 'COALESCE("a"."obs_id", "b"."obs_id") AS "obs_id"' in t.sql
    assert 'ON ("a"."obs_id" = "b"."obs_id")' in t.sql
    t = translate("SELECT obs_id FROM ivoa.obscore NATURAL JOIN archive.spectra", CATALOG)
    assert '"ivoa"."obscore"."healpix" = "archive"."spectra"."healpix"' in t.sql
    assert "not a column of the right side" in fails(
        "SELECT * FROM ivoa.obscore JOIN archive.spectra USING (s_ra)"
    )


def test_duplicate_result_names_are_made_unique():
    t = translate(
        "SELECT a.publisher_did, b.publisher_did, COUNT(*), COUNT(*), 1, a.snr + 1 AS "
        "Publisher_did_2 FROM archive.spectra AS a, archive.spectra AS b "
        "GROUP BY a.publisher_did, b.publisher_did, a.snr",
        CATALOG,
    )
    names = [c.name for c in t.columns]
    assert names == ["publisher_did", "publisher_did_2", "count", "count_2", "col5",
                     "Publisher_did_2_2"]  # fmt: skip
    assert len({n.lower() for n in names}) == len(names)
    assert all(f'AS "{n}"' in t.sql for n in names)


def test_reserved_words_need_quotes():
    assert '"size"' in fails("SELECT size FROM tap_schema.columns")
    assert '"tap_schema"."columns"."size" AS "size"' in sql('SELECT "size" FROM tap_schema.columns')
    assert "reserved" in fails("SELECT s_ra AS value FROM ivoa.obscore")


# ---- TOP, OFFSET, MAXREC -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("adql", "max_rows", "tail"),
    [
        ("SELECT s_ra FROM ivoa.obscore", 1001, "LIMIT 1001"),
        ("SELECT TOP 10 s_ra FROM ivoa.obscore", 1001, "LIMIT 10"),
        ("SELECT TOP 5000 s_ra FROM ivoa.obscore", 1001, "LIMIT 1001"),
        ("SELECT TOP 5 s_ra FROM ivoa.obscore", None, "LIMIT 5"),
        ("SELECT TOP 0 s_ra FROM ivoa.obscore", 1001, "LIMIT 0"),
        ("SELECT TOP 10 s_ra FROM ivoa.obscore ORDER BY 1 OFFSET 100", 1001,
         "ORDER BY 1 LIMIT 10 OFFSET 100"),
        ("SELECT s_ra FROM ivoa.obscore OFFSET 7", 3, "LIMIT 3 OFFSET 7"),
    ],
)  # fmt: skip
def test_top_offset_and_max_rows(adql, max_rows, tail):
    assert sql(adql, max_rows).endswith(tail)


def test_no_limit_without_top_or_max_rows():
    assert "LIMIT" not in sql("SELECT s_ra FROM ivoa.obscore")


def test_max_rows_caps_the_whole_query_not_subqueries():
    text = sql(
        "SELECT TOP 3 s_ra FROM ivoa.obscore UNION SELECT TOP 4 ra FROM archive.spectra", 1001
    )
    assert text.endswith(") LIMIT 1001")
    assert "LIMIT 3)" in text and "LIMIT 4)" in text
    text = sql("SELECT * FROM (SELECT TOP 5000 s_ra FROM ivoa.obscore) AS q", 10)
    assert "LIMIT 5000)" in text and text.endswith("LIMIT 10")


# ---- set operations and common tables ---------------------------------------------------


def test_set_operations():
    text = sql(
        "SELECT obs_id FROM ivoa.obscore UNION SELECT obs_id FROM archive.spectra "
        "INTERSECT SELECT target_name FROM ivoa.obscore EXCEPT ALL SELECT 'x' FROM "
        "archive.spectra ORDER BY obs_id DESC OFFSET 2"
    )
    assert re.match(r"^\(\(SELECT .*\) UNION \(\(SELECT .*\) INTERSECT \(SELECT .*\)\)\) "
                    r"EXCEPT ALL \(SELECT .*\) ORDER BY 1 DESC OFFSET 2$", text)  # fmt: skip
    assert "different numbers of columns" in fails(
        "SELECT obs_id, s_ra FROM ivoa.obscore UNION SELECT obs_id FROM ivoa.obscore"
    )
    assert "must name a result column" in fails(
        "SELECT obs_id FROM ivoa.obscore UNION SELECT obs_id FROM ivoa.obscore ORDER BY s_ra"
    )
    assert "mixes a number and a string" in fails(
        "SELECT s_ra FROM ivoa.obscore UNION SELECT obs_id FROM ivoa.obscore"
    )
    t = translate(
        "SELECT calib_level FROM ivoa.obscore UNION SELECT s_ra FROM ivoa.obscore", CATALOG
    )
    assert t.columns[0].datatype == "double"


def test_common_table_expressions():
    t = translate(
        "WITH near AS (SELECT obs_id, s_ra AS ra FROM ivoa.obscore WHERE s_dec > 0), "
        "far AS (SELECT * FROM near WHERE ra > 10) SELECT n.ra, far.obs_id FROM near AS n "
        "JOIN far USING (obs_id)",
        CATALOG,
    )
    assert t.sql.startswith('WITH "near" AS (SELECT ')
    assert ', "far" AS (SELECT "near"."obs_id" AS "obs_id", "near"."ra" AS "ra" FROM "near"' in (
        t.sql
    )
    assert t.columns[0].unit == "deg" and t.columns[0].name == "ra"
    assert t.tables == ["ivoa.obscore"]


# ---- expressions --------------------------------------------------------------------------


def test_case_and_cast():
    t = translate(
        "SELECT CASE WHEN s_ra > 180 THEN 'west' ELSE 'east' END AS side, "
        "CASE calib_level WHEN 1 THEN 1.5 WHEN 2 THEN 2 END, "
        "CAST(s_ra AS INTEGER), CAST(obs_id AS CHAR(10)), CAST(obs_id AS VARCHAR(5)), "
        "CAST(obs_id AS VARCHAR), CAST('2020-01-01' AS TIMESTAMP), "
        "CAST(s_ra AS DOUBLE PRECISION), CAST('1 2' AS POINT) FROM ivoa.obscore",
        CATALOG,
    )
    assert '(CASE WHEN ("ivoa"."obscore"."s_ra" > 180) THEN \'west\' ELSE \'east\' END)' in t.sql
    c = t.columns
    assert (c[0].name, c[0].datatype, c[0].arraysize) == ("side", "char", "*")
    assert c[1].datatype == "double"
    assert (c[2].datatype, c[2].unit) == ("int", "deg")
    assert (c[3].arraysize, c[4].arraysize, c[5].arraysize) == ("10", "5*", "*")
    assert (c[6].datatype, c[6].xtype, c[6].sql) == ("char", "timestamp", "timestamp")
    assert (c[8].xtype, c[8].arraysize) == ("point", "2")
    assert 'CAST("ivoa"."obscore"."obs_id" AS character(10))' in t.sql
    assert "mixes" in fails("SELECT CASE WHEN s_ra > 1 THEN 1 ELSE obs_id END FROM ivoa.obscore")
    assert "cannot cast" in fails("SELECT CAST(POINT(1, 2) AS INTEGER) FROM ivoa.obscore")
    assert "wrong number of values" in fails("SELECT CAST('1 2 3' AS POINT) FROM ivoa.obscore")


def test_math_functions_have_adql_semantics():
    text = sql(
        "SELECT LOG(s_ra), LOG10(s_ra), ROUND(s_ra, 2), ROUND(s_ra), TRUNCATE(s_ra, -1), "
        "MOD(s_ra, 2), MOD(calib_level, 2), ROUND(calib_level), POWER(2, 3), RAND() "
        "FROM ivoa.obscore"
    )
    assert 'ln("ivoa"."obscore"."s_ra")' in text
    assert 'log10("ivoa"."obscore"."s_ra")' in text
    assert 'CAST(round(CAST("ivoa"."obscore"."s_ra" AS numeric), 2) AS double precision)' in text
    assert 'CAST(round(CAST("ivoa"."obscore"."s_ra" AS numeric), 0) AS double precision)' in text
    assert 'CAST(trunc(CAST("ivoa"."obscore"."s_ra" AS numeric), -1) AS double precision)' in text
    assert 'CAST(mod(CAST("ivoa"."obscore"."s_ra" AS numeric), CAST(2 AS numeric)) AS ' in text
    assert 'mod("ivoa"."obscore"."calib_level", 2)' in text
    assert "random()" in text
    assert "takes 1 argument(s); got 0" in fails("SELECT ABS() FROM ivoa.obscore")
    assert "takes 1 argument(s); got 2" in fails("SELECT ABS(s_ra, 1) FROM ivoa.obscore")
    assert "integer constant" in fails("SELECT ROUND(s_ra, s_dec) FROM ivoa.obscore")
    assert "needs a number" in fails("SELECT SQRT(obs_id) FROM ivoa.obscore")


def test_rand_with_seed_sets_the_seed_first():
    t = translate("SELECT RAND(42) FROM ivoa.obscore WHERE RAND(42) < 0.1", CATALOG)
    assert t.setup == ("SELECT setseed(1.955777406692505e-08::float8)",)
    assert translate("SELECT RAND() FROM ivoa.obscore", CATALOG).setup == ()
    assert "one seed" in fails("SELECT RAND(1), RAND(2) FROM ivoa.obscore")


def test_embedding_distance_sets_up_a_whole_index_scan_first():
    """ef_search from the rows the query may return (TOP + OFFSET, or MAXREC + 1), iterative
    scans without a tuple limit: escape_vo/db/hnsw.py."""

    def settings(adql: str, max_rows: int | None = None) -> dict[str, str]:
        (setup,) = translate(adql, CATALOG, max_rows=max_rows).setup
        return dict(re.findall(r"set_config\('([\w.]+)', '([^']*)', false\)", setup))

    similar = (
        "SELECT {top} publisher_did, ivo_embedding_distance(vector, 'pca', 'ivo://x/y?1') AS d "
        "FROM embeddings.spectrum_embeddings WHERE model = 'pca' ORDER BY d"
    )
    assert settings(similar.format(top="TOP 11")) == {
        "hnsw.ef_search": "64",
        "hnsw.iterative_scan": "strict_order",
        "hnsw.max_scan_tuples": str(2**31 - 1),
        "hnsw.scan_mem_multiplier": "1000",
    }
    assert settings(similar.format(top="TOP 50") + " OFFSET 20")["hnsw.ef_search"] == "280"
    assert settings(similar.format(top=""), max_rows=100001)["hnsw.ef_search"] == "1000"
    assert settings(similar.format(top=""))["hnsw.ef_search"] == "64"
    plain = "SELECT TOP 5 publisher_did FROM embeddings.spectrum_embeddings"
    assert translate(plain, CATALOG).setup == ()


def test_strings_like_and_bitwise():
    text = sql(
        "SELECT LOWER(obs_id) || '-' || UPPER(target_name) || calib_level, 0xFF & calib_level, "
        "1 | 2, 6 ^ 3, ~calib_level FROM ivoa.obscore WHERE obs_id LIKE 'a%' "
        "AND target_name NOT ILIKE '%!_x' ESCAPE '!'"
    )
    assert '(lower("ivoa"."obscore"."obs_id") || \'-\')' in text
    assert 'CAST("ivoa"."obscore"."calib_level" AS text)' in text
    assert '(255 & "ivoa"."obscore"."calib_level")' in text and "(6 # 3)" in text
    assert "LIKE 'a%' ESCAPE '')" in text and "NOT ILIKE '%!_x' ESCAPE '!')" in text
    assert "needs integers" in fails("SELECT s_ra & 1 FROM ivoa.obscore")
    assert "|| joins strings" in fails("SELECT POINT(1, 2) || 'a' FROM ivoa.obscore")
    assert "LIKE compares strings" in fails("SELECT * FROM ivoa.obscore WHERE s_ra LIKE '1%'")


def test_conditions_and_values_are_not_mixed():
    assert "a condition cannot be used as a result column" in fails(
        "SELECT s_ra > 1 FROM ivoa.obscore"
    )
    message = fails("SELECT * FROM ivoa.obscore WHERE CONTAINS(POINT(s_ra, s_dec), "
                    "CIRCLE(1, 2, 3))")  # fmt: skip
    assert "WHERE needs a condition" in message and "= 1" in message
    assert "cannot compare a number with a string" in fails(
        "SELECT * FROM ivoa.obscore WHERE s_ra = obs_id"
    )
    assert '("ivoa"."obscore"."s_ra" = \'3\')' in sql("SELECT * FROM ivoa.obscore WHERE s_ra = '3'")


def test_subqueries():
    text = sql(
        "SELECT obs_id, (SELECT MAX(snr) FROM archive.spectra) AS best FROM ivoa.obscore AS o "
        "WHERE o.obs_publisher_did IN (SELECT publisher_did FROM archive.spectra WHERE snr > 5) "
        "AND EXISTS (SELECT 1 FROM archive.spectra AS s WHERE s.publisher_did = "
        "o.obs_publisher_did)"
    )
    assert (
        '(SELECT max("archive"."spectra"."snr") AS "max" FROM "archive"."spectra") AS "best"'
        in (text)
    )
    assert 'WHERE ("s"."publisher_did" = "o"."obs_publisher_did")' in text
    assert "must return one column" in fails(
        "SELECT * FROM ivoa.obscore WHERE s_ra IN (SELECT ra, dec FROM archive.spectra)"
    )


@pytest.mark.parametrize(
    ("adql", "fragment"),
    [
        ("SELECT s_ra FROM ivoa.obscore WHERE COUNT(*) > 1", "not allowed in WHERE"),
        ("SELECT COUNT(*) FROM ivoa.obscore GROUP BY MAX(s_ra)", "not allowed in GROUP BY"),
        ("SELECT * FROM ivoa.obscore AS a JOIN ivoa.obscore AS b ON a.s_ra = AVG(b.s_ra)",
         "not allowed in ON"),
        ("SELECT * FROM ivoa.obscore WHERE ivo_string_agg(obs_id, ',') = 'a'", "ivo_string_agg"),
        ("SELECT s_ra FROM ivoa.obscore WHERE s_ra = 'abc'", "'abc' is used as a number"),
        ("SELECT 'a' * 'b' FROM ivoa.obscore", "needs numbers"),
        ("SELECT s_ra FROM ivoa.obscore UNION SELECT 'x' FROM ivoa.obscore", "not one"),
    ],
)  # fmt: skip
def test_semantic_errors_are_caught_before_the_database(adql, fragment):
    assert fragment in fails(adql)


def test_aggregates_in_subqueries_of_where_are_fine():
    assert "(SELECT avg(" in sql(
        "SELECT s_ra FROM ivoa.obscore WHERE s_ra > (SELECT AVG(s_ra) FROM ivoa.obscore)"
    )


def test_order_and_group_by_names_aliases_positions():
    text = sql(
        "SELECT obs_collection AS c, COUNT(*) AS n FROM ivoa.obscore GROUP BY c "
        "ORDER BY n DESC, c, 1, MAX(s_ra)"
    )
    assert text.endswith('GROUP BY 1 ORDER BY 2 DESC, 1, 1, max("ivoa"."obscore"."s_ra")')
    assert sql("SELECT s_ra AS x FROM ivoa.obscore ORDER BY s_dec").endswith(
        'ORDER BY "ivoa"."obscore"."s_dec"'
    )
    assert "position 3 is not a result column" in fails("SELECT s_ra FROM ivoa.obscore ORDER BY 3")


# ---- metadata -------------------------------------------------------------------------------


def test_inferred_metadata():
    t = translate(
        "SELECT COUNT(*), AVG(calib_level), SUM(calib_level), SUM(s_ra), MIN(s_ra), "
        "MAX(obs_release_date), calib_level * 2, calib_level + em_xel, s_ra * 2, "
        "access_estsize / 2, s_ra + 0.5, LOWER(obs_id), 'text', 1, 2.5, NULL, "
        "COALESCE(s_ra, 0), em_min * 2, s_ra * s_dec, DISTANCE(1, 2, 3, 4) FROM ivoa.obscore "
        "GROUP BY calib_level, em_xel, s_ra, access_estsize, obs_id, em_min, s_dec",
        CATALOG,
    )
    got = [(c.name, c.datatype, c.arraysize, c.unit) for c in t.columns]
    assert got == [
        ("count", "long", None, None),
        ("avg", "double", None, None),
        ("sum", "long", None, None),
        ("sum_2", "double", None, "deg"),
        ("min", "double", None, "deg"),
        ("max", "char", "*", None),
        ("col7", "int", None, None),
        ("col8", "long", None, None),
        ("col9", "double", None, "deg"),
        ("col10", "long", None, "kbyte"),
        ("col11", "double", None, "deg"),
        ("lower", "char", "*", None),
        ("col13", "char", "*", None),
        ("col14", "int", None, None),
        ("col15", "double", None, None),
        ("col16", "char", "*", None),
        ("coalesce", "double", None, "deg"),
        ("col18", "double", None, "m"),
        ("col19", "double", None, "deg**2"),
        ("distance", "double", None, "deg"),
    ]
    assert t.columns[5].xtype == "timestamp"
    assert all(re.fullmatch(r"[a-z_0-9]+", c.name) for c in t.columns)


def test_metadata_flows_through_subqueries():
    t = translate(
        "SELECT q.x, q.s_dec FROM (SELECT s_ra AS x, s_dec FROM ivoa.obscore) AS q", CATALOG
    )
    assert t.columns[0] == replace(OBSCORE.column("s_ra"), name="x")
    assert t.columns[1] == OBSCORE.column("s_dec")


def test_in_unit():
    t = translate(
        "SELECT IN_UNIT(em_min, 'nm') AS nm, IN_UNIT(s_ra, 'arcsec') FROM ivoa.obscore", CATALOG
    )
    assert '("ivoa"."obscore"."em_min" * 1000000000.0::float8) AS "nm"' in t.sql
    assert [c.unit for c in t.columns] == ["nm", "arcsec"]
    message = fails("SELECT IN_UNIT(s_ra, 'm') FROM ivoa.obscore")
    assert "'deg'" in message and "'m'" in message and "not compatible" in message
    assert "not a valid VOUnit" in fails("SELECT IN_UNIT(s_ra, 'furlong/fortnight') FROM "
                                         "ivoa.obscore")  # fmt: skip
    assert "not known" in fails("SELECT IN_UNIT(snr, 'm') FROM archive.spectra")
    assert "string literal" in fails("SELECT IN_UNIT(s_ra, obs_id) FROM ivoa.obscore")


# ---- geometry -------------------------------------------------------------------------------


def test_geometry_constructors_and_metadata():
    t = translate(
        "SELECT POINT('ICRS', s_ra, s_dec), CIRCLE(s_ra, s_dec, 1), CIRCLE(POINT(1, 2), 3), "
        "BOX('', 1, 2, 3, 4), POLYGON(1, 2, 3, 4, 5, 6), POLYGON(POINT(1, 2), POINT(3, 4), "
        "POINT(5, 6)), CENTROID(s_region), AREA(CIRCLE(1, 2, 3)), COORD1(POINT(1, 2)), "
        "COORDSYS(POINT(1, 2)), REGION('Circle ICRS 1 2 3') FROM ivoa.obscore",
        CATALOG,
    )
    assert 'escape.adql_point("ivoa"."obscore"."s_ra", "ivoa"."obscore"."s_dec") AS "point"' in (
        t.sql
    )
    assert 'escape.adql_circle(1, 2, 3) AS "circle_2"' in t.sql
    assert "escape.adql_box(1, 2, 3, 4)" in t.sql
    assert t.sql.count("escape.adql_polygon(1, 2, 3, 4, 5, 6)") == 2
    assert 'escape.adql_centroid(escape.stcs_to_geom("ivoa"."obscore"."s_region"))' in t.sql
    assert 'escape.adql_circle(1.0::float8, 2.0::float8, 3.0::float8) AS "region"' in t.sql
    kinds = [(c.xtype, c.datatype, c.arraysize) for c in t.columns]
    assert kinds[:7] == [("point", "double", "2"), ("circle", "double", "3"),
                         ("circle", "double", "3"), ("polygon", "double", "*"),
                         ("polygon", "double", "*"), ("polygon", "double", "*"),
                         ("point", "double", "2")]  # fmt: skip
    assert t.columns[7].unit == "deg**2" and t.columns[8].unit == "deg"
    assert kinds[10] == ("circle", "double", "3")


@pytest.mark.parametrize("frame", ["ICRS", "", "icrs GEOCENTER", "ICRS BARYCENTER SPHERICAL2",
                                   "UNKNOWNFrame", "FK5", "FK5 J2000", "J2000"])  # fmt: skip
def test_icrs_compatible_frames_are_ignored(frame):
    assert "escape.adql_point(1, 2)" in sql(f"SELECT POINT('{frame}', 1, 2) FROM ivoa.obscore")


@pytest.mark.parametrize("frame", ["GALACTIC", "FK4", "FK5 J1950", "ECLIPTIC", "ICRS CARTESIAN3"])
def test_other_frames_are_refused(frame):
    message = fails(f"SELECT POINT('{frame}', 1, 2) FROM ivoa.obscore")
    assert "ICRS only" in message and frame in message
    assert "ICRS only" in fails(f"SELECT REGION('CIRCLE {frame} 1 2 3') FROM ivoa.obscore")


def test_geometry_argument_checks():
    assert "needs a geometry" in fails(
        "SELECT * FROM ivoa.obscore WHERE 1 = CONTAINS(s_ra, CIRCLE(1, 2, 3))"
    )
    assert "needs a point" in fails("SELECT DISTANCE(s_region, POINT(1, 2)) FROM ivoa.obscore")
    assert "needs a point" in fails("SELECT COORD1(CIRCLE(1, 2, 3)) FROM ivoa.obscore")
    assert "at least three vertices" in fails("SELECT POLYGON(1, 2, 3, 4, 5) FROM ivoa.obscore")
    assert "REGION supports" in fails("SELECT REGION('Union ICRS (Circle 1 2 3)') FROM "
                                      "ivoa.obscore")  # fmt: skip


def test_cone_on_indexed_position_uses_healpix_ranges(ranges):
    text = sql(
        "SELECT obs_id FROM ivoa.obscore AS o "
        "WHERE 1 = CONTAINS(POINT('ICRS', o.s_ra, o.s_dec), CIRCLE('ICRS', 150, 2.5, 1/60.0))"
    )
    assert ranges == [("circle", [150.0, 2.5, 0.016666667])]
    assert text.endswith(
        'WHERE (("o"."healpix" BETWEEN 10 AND 20 OR "o"."healpix" = 30) AND (1 = '
        'escape.adql_contains(escape.adql_point("o"."s_ra", "o"."s_dec"), escape.adql_circle('
        "150, 2.5::float8, (1 / 60.0::float8)))))"
    )


@pytest.mark.parametrize(
    ("where", "kind"),
    [
        ("CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 0.5)) = 1", "circle"),
        ("INTERSECTS(CIRCLE(1, 2, 0.5), POINT(ra, dec)) = 1", "circle"),
        ("1 = INTERSECTS(POINT(ra, dec), POLYGON(1, 2, 3, 4, 5, 6))", "polygon"),
        ("CONTAINS(POINT(ra, dec), BOX(1, 2, 0.5, 0.5)) = 1", "circle"),
        ("CONTAINS(POINT(ra, dec), REGION('POLYGON ICRS 1 2 3 4 5 6')) = 1", "polygon"),
        ("DISTANCE(POINT(ra, dec), POINT(1, 2)) < 0.5", "circle"),
        ("DISTANCE(POINT(1, 2), POINT(ra, dec)) <= 0.5", "circle"),
        ("0.5 > DISTANCE(ra, dec, 1, 2)", "circle"),
    ],
)
def test_healpix_rewrite_forms(ranges, where, kind):
    text = sql(f"SELECT publisher_did FROM archive.spectra WHERE {where}")
    assert '"archive"."spectra"."healpix" BETWEEN 10 AND 20' in text
    assert ranges[0][0] == kind


def test_box_cover_is_its_circumscribed_cap(ranges):
    sql("SELECT * FROM archive.spectra WHERE CONTAINS(POINT(ra, dec), BOX(10, 20, 2, 4)) = 1")
    import math

    expected = math.degrees(math.atan(math.hypot(math.tan(math.radians(1)),
                                                 math.tan(math.radians(2)))))  # fmt: skip
    assert ranges[0][1][:2] == [10.0, 20.0]
    assert ranges[0][1][2] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "where",
    [
        "CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 0.5)) = 0",
        "CONTAINS(CIRCLE(1, 2, 0.5), POINT(ra, dec)) = 1",
        "CONTAINS(POINT(ra, dec), CIRCLE(1, 2, snr)) = 1",
        "CONTAINS(POINT(dec, ra), CIRCLE(1, 2, 0.5)) = 1",
        "DISTANCE(POINT(ra, dec), POINT(1, 2)) > 0.5",
        "INTERSECTS(s_region, CIRCLE(1, 2, 0.5)) = 1",
    ],
)
def test_no_healpix_rewrite_where_it_would_be_wrong(ranges, where):
    table = "ivoa.obscore" if "s_region" in where else "archive.spectra"
    assert "healpix" not in sql(f"SELECT * FROM {table} WHERE {where}").split("WHERE")[1]
    assert ranges == []


def test_derived_tables_keep_the_sky_index(ranges):
    text = sql(
        "WITH x AS (SELECT * FROM archive.spectra WHERE snr > 5) SELECT q.r FROM "
        "(SELECT ra AS r, dec AS d, healpix AS h FROM x) AS q "
        "WHERE DISTANCE(POINT(q.r, q.d), POINT(1, 2)) < 0.1"
    )
    assert 'WHERE (("q"."h" BETWEEN 10 AND 20 OR "q"."h" = 30) AND' in text
    text = sql(
        "SELECT q.r FROM (SELECT ra AS r, dec AS d FROM archive.spectra) AS q "
        "WHERE DISTANCE(POINT(q.r, q.d), POINT(1, 2)) < 0.1"
    )
    assert "BETWEEN" not in text  # the HEALPix column was not passed on


def test_crossmatch_gets_a_declination_band():
    text = sql(
        "SELECT a.obs_id FROM ivoa.obscore AS a JOIN archive.spectra AS b "
        "ON DISTANCE(POINT(a.s_ra, a.s_dec), POINT(b.ra, b.dec)) < 0.001"
    )
    assert '"a"."s_dec" BETWEEN "b"."dec" - 0.001::float8 AND "b"."dec" + 0.001::float8' in text
    assert '"b"."dec" BETWEEN "a"."s_dec" - 0.001::float8 AND "a"."s_dec" + 0.001::float8' in text
    text = sql(
        "SELECT a.obs_id FROM ivoa.obscore AS a, archive.spectra AS b "
        "WHERE 1 = CONTAINS(POINT(b.ra, b.dec), CIRCLE(a.s_ra, a.s_dec, 1.0/3600))"
    )
    assert '"b"."dec" BETWEEN "a"."s_dec" - 0.0002777777777777778::float8' in text
    upload = Table(
        schema="tap_upload",
        name="mine",
        description="",
        columns=(Column("ra", "double", unit="deg"), Column("de", "double", unit="deg")),
    )
    catalog = CATALOG.with_tables([upload], {"tap_upload.mine": ("pg_temp", "upload_mine")})
    t = translate(
        "SELECT m.ra, s.obs_id FROM TAP_UPLOAD.mine AS m JOIN ivoa.obscore AS s "
        "ON DISTANCE(POINT(m.ra, m.de), POINT(s.s_ra, s.s_dec)) < 0.01",
        catalog,
    )
    assert 'FROM "pg_temp"."upload_mine" AS "m"' in t.sql
    assert '"s"."s_dec" BETWEEN "m"."de" - 0.01::float8' in t.sql
    assert '"m"."de" BETWEEN' not in t.sql  # no index on the upload
    assert t.tables == ["ivoa.obscore", "tap_upload.mine"]


# ---- safety -------------------------------------------------------------------------------


def test_string_literals_cannot_escape():
    t = translate(
        "SELECT * FROM ivoa.obscore WHERE target_name = '''; DROP TABLE x; --' "
        "OR target_name = 'back\\slash'",
        CATALOG,
    )
    assert "= '''; DROP TABLE x; --')" in t.sql
    assert "E'back\\\\slash'" in t.sql
    assert t.sql.count(";") == 2  # both inside the literal


@pytest.mark.parametrize(
    ("adql", "fragment"),
    [
        ("SELECT * FROM ivoa.obscore; DROP TABLE archive.spectra", "without ';'"),
        ("SELECT pg_sleep(1) FROM ivoa.obscore", "unknown function 'pg_sleep'"),
        ("SELECT version() FROM ivoa.obscore", "unknown function 'version'"),
        ("SELECT * FROM pg_catalog.pg_user", "unknown table 'pg_catalog.pg_user'"),
        ("SELECT * FROM pg_class", "unknown table 'pg_class'"),
        ("SELECT * FROM information_schema.tables", "unknown table"),
        ("SELECT * FROM escape.settings", "unknown table 'escape.settings'"),
        ("SELECT * FROM ivoa.obscore WHERE 1 = 1 /* ; DROP TABLE x */", "unexpected '*'"),
        ("SELECT current_user FROM ivoa.obscore", "reserved"),
        ('SELECT "x"";DROP TABLE y;--" FROM ivoa.obscore', "unknown column"),
        ("SELECT * FROM ivoa.obscore WHERE s_ra = 1 $$", "unexpected character '$'"),
        ("SELECT * FROM ivoa.obscore AS o, LATERAL (SELECT 1) AS x", "unexpected"),
    ],
)
def test_injection_attempts_are_rejected(adql, fragment):
    assert fragment in fails(adql)


def test_comments_cannot_hide_statements():
    text = sql("SELECT obs_id FROM ivoa.obscore -- ; DROP TABLE archive.spectra\nWHERE s_ra > 1")
    assert "DROP" not in text and text.endswith('WHERE ("ivoa"."obscore"."s_ra" > 1)')


# ---- user-defined functions and speed --------------------------------------------------------


def test_user_defined_functions():
    assert UDFS["ivo_healpix_index"].form == (
        "ivo_healpix_index(hpxOrder INTEGER, ra DOUBLE, dec DOUBLE) -> BIGINT"
    )
    t = translate(
        "SELECT ivo_healpix_index(10, s_ra, s_dec), IVO_INTERVAL_OVERLAPS(em_min, em_max, 1, 2), "
        "ivo_string_agg(obs_id, ',') FROM ivoa.obscore",
        CATALOG,
    )
    assert "escape.healpix_nest(CAST(10 AS integer)" in t.sql
    assert [c.datatype for c in t.columns] == ["long", "int", "char"]
    assert "unknown function 'ivo_nothing'" in fails("SELECT ivo_nothing(1) FROM ivoa.obscore")
    assert "takes 3 argument(s)" in fails("SELECT ivo_healpix_index(1, 2) FROM ivoa.obscore")


def test_declared_language_features_are_translated():
    geo = LANGUAGE_FEATURES["ivo://ivoa.net/std/TAPRegExt#features-adqlgeo"]
    assert {form for form, _ in geo} == {
        "AREA", "BOX", "CENTROID", "CIRCLE", "CONTAINS", "COORD1", "COORD2", "COORDSYS",
        "DISTANCE", "INTERSECTS", "POINT", "POLYGON", "REGION",
    }  # fmt: skip
    udfs = LANGUAGE_FEATURES["ivo://ivoa.net/std/TAPRegExt#features-udf"]
    assert [form for form, _ in udfs] == [u.form for u in UDFS.values()]
    assert all(description for forms in LANGUAGE_FEATURES.values() for _, description in forms)
    assert not CATALOG.permissive


def test_deep_nesting_is_an_error_not_a_crash():
    assert translate("SELECT " + "(1+" * 200 + "1" + ")" * 200 + " FROM ivoa.obscore", CATALOG)
    adql = "SELECT " + "(1+" * 5000 + "1" + ")" * 5000 + " FROM ivoa.obscore"
    assert "nested too deeply" in fails(adql)
