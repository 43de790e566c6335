"""ADQL geometry: translation to the escape.adql_* SQL functions and the index rewrites.

Geometry values are ``double precision[]`` in SQL (point [ra, dec], circle [ra, dec, r],
polygon [ra1, dec1, ...], degrees, ICRS), built and tested by SQL functions in schema
``escape``. Only ICRS is supported: a coordinate-system argument must be empty, ICRS or
compatible with it (see `check_frame`).

Two rewrites make positional queries fast without pgsphere or q3c:
  * CONTAINS(POINT(t.ra, t.dec), <constant region>) = 1, INTERSECTS with a point, and
    DISTANCE(POINT(t.ra, t.dec), <constant point>) < r add the HEALPix ranges covering the region
    on the table's indexed HEALPix column, before the exact test;
  * a distance join between two tables (constant radius) looks, up to ~82", the nine HEALPix
    cells around each position of an upload (order 13 up to ~10", then 12, 11, 10) up in the
    other table's index of its cells at that order (geometry/cells.py); otherwise it adds a
    declination band on the side whose declination is indexed, so PostgreSQL can use its
    B-tree.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from . import types as ty
from .errors import AdqlError, error_at
from .sqltext import float_literal, quote_ident

if TYPE_CHECKING:
    from .types import Typed

FUNCTIONS = {
    "POINT", "CIRCLE", "BOX", "POLYGON", "REGION", "CENTROID", "CONTAINS", "INTERSECTS",
    "DISTANCE", "AREA", "COORD1", "COORD2", "COORDSYS",
}  # fmt: skip

_REFPOS = {
    "GEOCENTER", "BARYCENTER", "HELIOCENTER", "TOPOCENTER", "EMBARYCENTER", "UNKNOWNREFPOS",
    "RELOCATABLE", "LSR", "LSRK", "LSRD", "GALACTIC_CENTER", "LOCAL_GROUP_CENTER",
}  # fmt: skip


def check_frame(text: str | None, pos) -> None:
    """Accept an empty, ICRS or ICRS-compatible coordinate system; refuse anything else.

    Accepted: '' (or NULL), ICRS, UNKNOWNFrame (the service default, ICRS), and FK5 / J2000
    with equinox J2000 (within 25 mas of ICRS, far below any region a query asks for), each
    optionally followed by a reference position and the SPHERICAL2 flavour (ADQL 2.0 style).
    """
    if text is None:
        return
    words = text.upper().split()
    if not words:
        return
    frame, rest = words[0], words[1:]
    ok = frame in ("ICRS", "UNKNOWNFRAME", "FK5", "J2000")
    if ok and frame == "FK5" and rest and rest[0].startswith("J"):
        ok = rest[0] in ("J2000", "J2000.0")
        rest = rest[1:]
    if ok and all(w in _REFPOS or w == "SPHERICAL2" for w in rest):
        return
    raise error_at(
        f"coordinate system '{text}' is not supported: this service handles ICRS only "
        "(write 'ICRS' or leave the coordinate system out)",
        pos,
    )


def call(name: str, args: list[Typed], pos) -> Typed:
    return _HANDLERS[name](args, pos)


# ---- argument helpers ----------------------------------------------------------------------


def _is_coordsys(t: Typed) -> bool:
    return t.kind == "str" and t.literal


def _coordsys(t: Typed, pos) -> None:
    if t.kind == "null":
        return
    if not _is_coordsys(t):
        raise error_at("the coordinate system must be a string literal such as 'ICRS'", pos)
    check_frame(t.text, pos)


def _arity(name: str, args: list[Typed], allowed: str, pos) -> AdqlError:
    return error_at(f"{name} takes {allowed}; got {len(args)} argument(s)", pos)


def _num(t: Typed, name: str, what: str, pos) -> str:
    if t.kind in ("num", "any", "null"):
        return t.sql
    raise error_at(f"{name} needs a number as {what}; got {t.describe()}", pos)


def geom_sql(t: Typed, name: str, what: str, pos) -> str:
    """SQL for a geometry argument: STC-S region columns are converted by escape.stcs_to_geom."""
    if t.kind in ("geom", "any", "null"):
        return t.sql
    if t.is_region_column:
        return f"escape.stcs_to_geom({t.sql})"
    raise error_at(f"{name} needs a geometry as {what}; got {t.describe()}", pos)


def _point(t: Typed, name: str, what: str, pos) -> str:
    if t.kind in ("any", "null") or (t.kind == "geom" and t.shape in ("point", "region")):
        return t.sql
    if t.is_region_column:
        got = f"the region column {t.name_hint}" if t.name_hint else "a region"
        raise error_at(
            f"{name} needs a point as {what}; got {got} (use CENTROID({t.name_hint or '...'}) "
            "or the position columns)",
            pos,
        )
    raise error_at(f"{name} needs a point as {what}; got {t.describe()}", pos)


def _coords(t: Typed) -> tuple[Typed, Typed]:
    """The two coordinates of a point value, as typed expressions."""
    if t.geo is not None and t.geo.kind == "point":
        return t.geo.args[0], t.geo.args[1]
    return (
        ty.number(f"escape.adql_coord1({t.sql})", unit="deg"),
        ty.number(f"escape.adql_coord2({t.sql})", unit="deg"),
    )


def _strip_coordsys(args: list[Typed], plain: set[int], pos, point_second: bool = False):
    """The arguments without a leading coordinate system (checked), if there is one.

    A coordinate system is a string literal; NULL counts as one when the remaining argument
    count fits a form of the function (and, for the point forms, a point follows).
    """
    if args and _is_coordsys(args[0]):
        _coordsys(args[0], pos)
        return args[1:]
    null_first = bool(args) and args[0].kind == "null" and len(args) - 1 in plain
    if null_first and (len(args) not in plain or (point_second and args[1].kind == "geom")):
        return args[1:]
    return args


# ---- constructors ----------------------------------------------------------------------


def _point_fn(args: list[Typed], pos) -> Typed:
    args = _strip_coordsys(args, {2}, pos)
    if len(args) != 2:
        raise _arity("POINT", args, "an optional coordinate system and two coordinates", pos)
    x = _num(args[0], "POINT", "first coordinate", pos)
    y = _num(args[1], "POINT", "second coordinate", pos)
    return ty.geometry(
        f"escape.adql_point({x}, {y})", "point", geo=ty.Geo("point", tuple(args)), name_hint="point"
    )


def _center_and(name: str, args: list[Typed], extra: int, pos) -> tuple[Typed, Typed, list]:
    """Split (x, y, rest...) or (point, rest...) after the coordinate system is removed."""
    if len(args) == extra + 2:
        x = args[0]
        y = args[1]
        _num(x, name, "first centre coordinate", pos)
        _num(y, name, "second centre coordinate", pos)
        return x, y, args[2:]
    if len(args) == extra + 1:
        _point(args[0], name, "centre", pos)
        x, y = _coords(args[0])
        return x, y, args[1:]
    raise _arity(
        name, args, f"a centre (a point or two coordinates) and {extra} more argument(s)", pos
    )


def _circle_fn(args: list[Typed], pos) -> Typed:
    args = _strip_coordsys(args, {2, 3}, pos, point_second=True)
    x, y, (r,) = _center_and("CIRCLE", args, 1, pos)
    _num(r, "CIRCLE", "radius", pos)
    return ty.geometry(
        f"escape.adql_circle({x.sql}, {y.sql}, {r.sql})",
        "circle",
        geo=ty.Geo("circle", (x, y, r)),
        name_hint="circle",
    )


def _box_fn(args: list[Typed], pos) -> Typed:
    args = _strip_coordsys(args, {3, 4}, pos, point_second=True)
    x, y, (w, h) = _center_and("BOX", args, 2, pos)
    _num(w, "BOX", "width", pos)
    _num(h, "BOX", "height", pos)
    return ty.geometry(
        f"escape.adql_box({x.sql}, {y.sql}, {w.sql}, {h.sql})",
        "polygon",
        geo=ty.Geo("box", (x, y, w, h)),
        name_hint="box",
    )


def _polygon_fn(args: list[Typed], pos) -> Typed:
    if args and (_is_coordsys(args[0]) or (args[0].kind == "null" and len(args) % 2 == 1)):
        _coordsys(args[0], pos)
        args = args[1:]
    if args and all(a.kind == "geom" for a in args):
        if len(args) < 3:
            raise _arity("POLYGON", args, "at least three vertices", pos)
        coords: list[Typed] = []
        for i, a in enumerate(args, 1):
            _point(a, "POLYGON", f"vertex {i}", pos)
            coords.extend(_coords(a))
    else:
        if len(args) < 6 or len(args) % 2:
            raise _arity(
                "POLYGON", args, "at least three vertices (an even number of coordinates)", pos
            )
        for i, a in enumerate(args, 1):
            _num(a, "POLYGON", f"coordinate {i}", pos)
        coords = list(args)
    sql = ", ".join(c.sql for c in coords)
    return ty.geometry(
        f"escape.adql_polygon({sql})",
        "polygon",
        geo=ty.Geo("polygon", tuple(coords)),
        name_hint="polygon",
    )


def _region_fn(args: list[Typed], pos) -> Typed:
    if len(args) != 1:
        raise _arity("REGION", args, "one STC-S string", pos)
    arg = args[0]
    if arg.kind == "str" and arg.literal:
        kind, numbers = parse_stcs(arg.text or "", pos)
        values = [ty.number(float_literal(v), const=v, literal=True) for v in numbers]
        builder = {"POSITION": _point_fn, "CIRCLE": _circle_fn, "BOX": _box_fn}
        result = builder.get(kind, _polygon_fn)(values, pos)
        return result.with_sql(result.sql, name_hint="region")
    if arg.kind in ("str", "any", "null"):
        return ty.geometry(f"escape.stcs_to_geom({arg.sql})", "region", name_hint="region")
    raise error_at(f"REGION needs an STC-S string; got {arg.describe()}", pos)


def parse_stcs(text: str, pos) -> tuple[str, list[float]]:
    """Parse a simple STC-S region (POSITION, CIRCLE, BOX, POLYGON) into shape and numbers."""
    words = text.split()
    kind = words[0].upper() if words else ""
    if kind not in ("POSITION", "CIRCLE", "BOX", "POLYGON"):
        raise error_at(
            f"REGION supports the STC-S shapes POSITION, CIRCLE, BOX and POLYGON; got '{text}'",
            pos,
        )
    i = 1
    while i < len(words) and not _is_number(words[i]):
        i += 1
    check_frame(" ".join(words[1:i]), pos)
    try:
        numbers = [float(w) for w in words[i:]]
    except ValueError:
        raise error_at(f"REGION: cannot read the numbers of '{text}'", pos) from None
    if not all(math.isfinite(v) for v in numbers):
        raise error_at(f"REGION: the numbers of '{text}' must be finite", pos)
    expected = {"POSITION": 2, "CIRCLE": 3, "BOX": 4}.get(kind)
    if (expected is not None and len(numbers) != expected) or (
        expected is None and (len(numbers) < 6 or len(numbers) % 2)
    ):
        raise error_at(f"REGION: wrong number of values for {kind} in '{text}'", pos)
    return kind, numbers


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def dali_geometry(shape: str, text: str, pos) -> Typed:
    """A constant geometry from its DALI serialisation (CAST('1 2' AS POINT))."""
    try:
        numbers = [float(w) for w in text.split()]
    except ValueError:
        raise error_at(f"cannot read '{text}' as a {shape.upper()}", pos) from None
    count = {"point": 2, "circle": 3}.get(shape)
    if (count is not None and len(numbers) != count) or (
        count is None and (len(numbers) < 6 or len(numbers) % 2)
    ):
        raise error_at(f"'{text}' has the wrong number of values for a {shape.upper()}", pos)
    if not all(math.isfinite(v) for v in numbers):
        raise error_at(f"'{text}' must hold finite numbers", pos)
    values = [ty.number(float_literal(v), const=v, literal=True) for v in numbers]
    return {"point": _point_fn, "circle": _circle_fn}.get(shape, _polygon_fn)(values, pos)


# ---- functions of geometries -------------------------------------------------------------


def _one(name: str, args: list[Typed], pos) -> Typed:
    if len(args) != 1:
        raise _arity(name, args, "one argument", pos)
    return args[0]


def _centroid_fn(args, pos) -> Typed:
    g = geom_sql(_one("CENTROID", args, pos), "CENTROID", "argument", pos)
    return ty.geometry(f"escape.adql_centroid({g})", "point", name_hint="centroid")


def _area_fn(args, pos) -> Typed:
    g = geom_sql(_one("AREA", args, pos), "AREA", "argument", pos)
    return ty.number(f"escape.adql_area({g})", unit="deg**2", name_hint="area")


def _coord_fn(n: int):
    name = f"COORD{n}"

    def build(args, pos) -> Typed:
        p = _point(_one(name, args, pos), name, "argument", pos)
        ucd = "pos.eq.ra" if n == 1 else "pos.eq.dec"
        return ty.number(f"escape.adql_coord{n}({p})", unit="deg", ucd=ucd, name_hint=name.lower())

    return build


def _coordsys_fn(args, pos) -> Typed:
    g = geom_sql(_one("COORDSYS", args, pos), "COORDSYS", "argument", pos)
    return ty.string(f"(CASE WHEN {g} IS NULL THEN NULL ELSE 'ICRS' END)", name_hint="coordsys")


def _predicate_fn(name: str):
    def build(args, pos) -> Typed:
        if len(args) != 2:
            raise _arity(name, args, "two geometries", pos)
        a = geom_sql(args[0], name, "first argument", pos)
        b = geom_sql(args[1], name, "second argument", pos)
        return ty.number(
            f"escape.adql_{name.lower()}({a}, {b})",
            "int",
            geo=ty.Geo(name.lower(), (args[0], args[1])),
            name_hint=name.lower(),
        )

    return build


def _distance_fn(args, pos) -> Typed:
    if len(args) == 2:
        p1 = _point(args[0], "DISTANCE", "first argument", pos)
        p2 = _point(args[1], "DISTANCE", "second argument", pos)
        sql = f"escape.adql_distance({p1}, {p2})"
        points = (args[0], args[1])
    elif len(args) == 4:
        nums = [_num(a, "DISTANCE", f"argument {i}", pos) for i, a in enumerate(args, 1)]
        sql = f"escape.adql_distance({', '.join(nums)})"
        points = (
            ty.geometry("", "point", geo=ty.Geo("point", (args[0], args[1]))),
            ty.geometry("", "point", geo=ty.Geo("point", (args[2], args[3]))),
        )
    else:
        raise _arity("DISTANCE", args, "two points or four coordinates", pos)
    return ty.number(
        sql, unit="deg", ucd="pos.angDistance", geo=ty.Geo("distance", points), name_hint="distance"
    )


_HANDLERS = {
    "POINT": _point_fn,
    "CIRCLE": _circle_fn,
    "BOX": _box_fn,
    "POLYGON": _polygon_fn,
    "REGION": _region_fn,
    "CENTROID": _centroid_fn,
    "AREA": _area_fn,
    "COORD1": _coord_fn(1),
    "COORD2": _coord_fn(2),
    "COORDSYS": _coordsys_fn,
    "CONTAINS": _predicate_fn("CONTAINS"),
    "INTERSECTS": _predicate_fn("INTERSECTS"),
    "DISTANCE": _distance_fn,
}


# ---- index rewrites ----------------------------------------------------------------------


def rewrite_comparison(op: str, left: Typed, right: Typed, sql: str, pos=None) -> str:
    """`sql` (the exact comparison) preceded by index-friendly conditions where they apply."""
    if op == "=":
        for pred, other in ((left, right), (right, left)):
            if pred.geo and pred.geo.kind in ("contains", "intersects") and other.const == 1:
                return _rewrite_predicate(pred, sql, pos)
        return sql
    radius = None
    dist = None
    if op in ("<", "<=") and left.geo and left.geo.kind == "distance":
        dist, radius = left, right.const
    elif op in (">", ">=") and right.geo and right.geo.kind == "distance":
        dist, radius = right, left.const
    if dist is None or radius is None or not math.isfinite(radius) or radius < 0:
        return sql
    p1, p2 = dist.geo.args
    for point, centre in ((p1, p2), (p2, p1)):
        healpix = _sky_point(point)
        c = _constant_point(centre)
        if healpix and c:
            return _with_ranges(healpix, "circle", [c[0], c[1], radius], sql, pos)
    return _with_band(p1, p2, radius, sql)


def _rewrite_predicate(pred: Typed, sql: str, pos) -> str:
    a, b = pred.geo.args
    pairs = [(a, b)] if pred.geo.kind == "contains" else [(a, b), (b, a)]
    for point, region in pairs:
        healpix = _sky_point(point)
        if healpix:
            shape = _constant_region(region)
            if shape:
                return _with_ranges(healpix, shape[0], shape[1], sql, pos)
        if _column_point(point) and region.geo and region.geo.kind == "circle":
            x, y, r = region.geo.args
            centre = ty.geometry("", "point", geo=ty.Geo("point", (x, y)))
            if r.const is not None and math.isfinite(r.const) and r.const >= 0:
                return _with_band(point, centre, r.const, sql)
    return sql


def _column_point(t: Typed):
    """(relation, ra ref, dec ref) for POINT(t.ra, t.dec) with both columns of one relation."""
    if t.geo is None or t.geo.kind != "point":
        return None
    x, y = t.geo.args
    if x.ref is None or y.ref is None or x.ref.relation is not y.ref.relation:
        return None
    return x.ref.relation, x.ref, y.ref


def _sky_point(t: Typed) -> str | None:
    """The SQL of the HEALPix column indexing POINT(t.ra, t.dec), if the relation has one.

    Tables declare theirs (schema/*.yaml sky_indexes); derived tables and common tables keep
    them when they pass on ra, dec and the HEALPix column unchanged.
    """
    found = _named_by(t, "sky")
    return f"{found[0].qual}.{quote_ident(found[1])}" if found else None


def _named_by(t: Typed, attribute: str):
    """(relation, column) for POINT(t.ra, t.dec), where the relation's `attribute` (sky or
    cells: (ra, dec, column) triples, the column a tuple of them for cells) names a column for
    that position; else None."""
    found = _column_point(t)
    if not found:
        return None
    relation, ra, dec = found
    for named_ra, named_dec, column in getattr(relation, attribute):
        if (named_ra, named_dec) == (ra.column.name, dec.column.name):
            return relation, column
    return None


def _constant_point(t: Typed) -> tuple[float, float] | None:
    if t.geo is None or t.geo.kind != "point":
        return None
    x, y = t.geo.args
    if x.const is None or y.const is None:
        return None
    return x.const, y.const


def _constant_region(t: Typed) -> tuple[str, list[float]] | None:
    """('circle', [ra, dec, r]) or ('polygon', [...]) for a region with constant arguments."""
    if t.geo is None:
        return None
    values = [a.const for a in t.geo.args]
    if any(v is None or not math.isfinite(v) for v in values):
        return None
    if t.geo.kind == "circle" and values[2] >= 0:
        return "circle", values
    if t.geo.kind == "polygon":
        return "polygon", values
    if t.geo.kind == "box":
        # Covered by its circumscribed cap. The corners of a BOX are the tangent-plane points
        # (+-tan(w/2), +-tan(h/2)) around the centre (see geometry.sql), at the angle
        # atan(hypot(...)); its great-circle sides stay inside that cap, which is convex.
        half_w, half_h = abs(values[2]) / 2, abs(values[3]) / 2
        if half_w < 90 and half_h < 90:
            corner = math.hypot(math.tan(math.radians(half_w)), math.tan(math.radians(half_h)))
            radius = math.degrees(math.atan(corner)) * (1 + 1e-9) + 1e-9
            if radius < 90:
                return "circle", [values[0], values[1], radius]
    return None


_ALL_CELLS = (0, 12 * 4**29 - 1)  # every order-29 nested index: no restriction at all


def _with_ranges(healpix: str, kind: str, params: list[float], sql: str, pos) -> str:
    ranges = _healpix_ranges(kind, params, pos)
    if not ranges or ranges == [_ALL_CELLS]:
        return sql
    terms = [
        f"{healpix} = {lo}" if lo == hi else f"{healpix} BETWEEN {lo} AND {hi}" for lo, hi in ranges
    ]
    return f"(({' OR '.join(terms)}) AND {sql})"


def _healpix_ranges(kind: str, params: list[float], pos) -> list[tuple[int, int]] | None:
    try:
        from escape_vo.geometry import healpix_ranges
    except ImportError:  # the geometry package is not installed: exact test only
        return None
    try:
        return [(int(lo), int(hi)) for lo, hi in healpix_ranges(kind, params)]
    except ValueError as exc:
        raise error_at(f"invalid region: {exc}", pos) from None


def _with_band(p1: Typed, p2: Typed, radius: float, sql: str) -> str:
    """Add the cell join (`_cell_join`) where it applies, else `dec BETWEEN other.dec - r AND
    other.dec + r` on each side with an indexed dec."""
    a, b = _column_point(p1), _column_point(p2)
    if not a or not b or a[0] is b[0]:
        return sql
    cells = _cell_join(p1, p2, radius)
    if cells:
        return f"({cells} AND {sql})"
    r = float_literal(float(radius))
    bands = []
    for (_rel, _ra, dec), (_orel, _ora, other_dec) in ((a, b), (b, a)):
        if _indexed(dec):
            d, o = _ref_sql(dec), _ref_sql(other_dec)
            bands.append(f"{d} BETWEEN {o} - {r} AND {o} + {r}")
    if not bands:
        return sql
    return f"({' AND '.join(bands)} AND {sql})"


def _cell_join(p1: Typed, p2: Typed, radius: float) -> str | None:
    """For a radius up to the largest geometry.cells serves (~82"), between a relation whose
    HEALPix cells have B-trees (archive.spectra and its views) and one whose positions carry
    their blocks of cells (an upload): `(healpix >> shift) = ANY(cells)` at the finest order
    that serves the radius, so that each uploaded row finds its partners in nine index lookups
    (geometry/cells.py). Only the indexed side gets a condition: a declination band on the
    upload would let PostgreSQL prefer scanning the other whole."""
    from escape_vo.geometry.cells import CELL_ORDERS, cell_shift, order_for_radius

    order = order_for_radius(radius)
    if order is None:
        return None
    for indexed, other in ((p1, p2), (p2, p1)):
        healpix, cells = _cell_indexed(indexed), _cells_of(other)
        if healpix and cells:
            column = cells[CELL_ORDERS.index(order)]
            return f"({healpix} >> {cell_shift(order)}) = ANY({column})"
    return None


def _cell_indexed(t: Typed) -> str | None:
    """_sky_point, where the relation's HEALPix column also has the index of its cells."""
    found = _named_by(t, "sky")
    if not found or found[1] not in found[0].cell_indexed:
        return None
    return f"{found[0].qual}.{quote_ident(found[1])}"


def _cells_of(t: Typed) -> list[str] | None:
    """The SQL of the cell-block columns of POINT(t.ra, t.dec), one per order of
    geometry.cells.CELL_ORDERS, if its relation has them."""
    found = _named_by(t, "cells")
    return [f"{found[0].qual}.{quote_ident(c)}" for c in found[1]] if found else None


def _ref_sql(ref) -> str:
    return f"{ref.relation.qual}.{quote_ident(ref.column.name)}"


def _indexed(ref) -> bool:
    table = ref.relation.table
    if table is None:
        return False
    col = ref.column.column
    return bool(col.indexed) or any(idx and idx[0] == col.name for idx in table.indexes)
