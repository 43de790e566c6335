"""ADQL's non-geometric functions, aggregates, CAST and the user-defined functions.

Only what is listed here (plus geometry.py) reaches SQL: an unknown function is an error, so
PostgreSQL functions such as pg_sleep cannot be called through ADQL.

Semantics worth knowing (documented for users):
  * LOG is the natural logarithm, LOG10 the decimal one;
  * ROUND and TRUNCATE round (half away from zero) or cut in decimal, through numeric, so
    ROUND(x, 2) works on doubles; on integers they keep the integer type;
  * MOD of non-integers is computed in numeric (PostgreSQL has no mod for doubles);
  * RAND() is PostgreSQL's random(); RAND(seed) is random() after setseed(seed / 2^31) that the
    executor runs before the query (Translation.setup), so a seeded query is reproducible;
  * integer division truncates, as in SQL (1/2 = 0; write 1.0/2 for 0.5);
  * AVG always gives a double; SUM of integers gives a long.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import replace
from typing import TYPE_CHECKING

from . import geometry, units
from . import types as ty
from .errors import error_at
from .sqltext import float_literal, quote_string
from .udf import UDFS

if TYPE_CHECKING:
    from .types import Typed

# name: (minimum, maximum) number of arguments
_ARITY = {
    "ABS": (1, 1), "CEILING": (1, 1), "DEGREES": (1, 1), "EXP": (1, 1), "FLOOR": (1, 1),
    "LOG": (1, 1), "LOG10": (1, 1), "MOD": (2, 2), "PI": (0, 0), "POWER": (2, 2),
    "RADIANS": (1, 1), "RAND": (0, 1), "ROUND": (1, 2), "SQRT": (1, 1), "TRUNCATE": (1, 2),
    "ACOS": (1, 1), "ASIN": (1, 1), "ATAN": (1, 1), "ATAN2": (2, 2), "COS": (1, 1),
    "COT": (1, 1), "SIN": (1, 1), "TAN": (1, 1), "LOWER": (1, 1), "UPPER": (1, 1),
    "COALESCE": (1, None), "NULLIF": (2, 2), "IN_UNIT": (2, 2),
}  # fmt: skip

# double -> double functions: ADQL name -> PostgreSQL function
_DOUBLE_FUNCS = {
    "CEILING": "ceiling", "DEGREES": "degrees", "EXP": "exp", "FLOOR": "floor", "LOG": "ln",
    "LOG10": "log10", "RADIANS": "radians", "SQRT": "sqrt", "ACOS": "acos", "ASIN": "asin",
    "ATAN": "atan", "COS": "cos", "COT": "cot", "SIN": "sin", "TAN": "tan",
}  # fmt: skip
_KEEP_UNIT = {"CEILING", "FLOOR"}

ADQL_FUNCTIONS = set(_ARITY) | geometry.FUNCTIONS


def call(tr, name: str, args: list[Typed], udf: bool, pos) -> Typed:
    """Translate the call of an ADQL function or UDF whose arguments are translated."""
    if udf:
        return _udf(tr, name, args, pos)
    if name in geometry.FUNCTIONS:
        return geometry.call(name, args, pos)
    low, high = _ARITY[name]
    if len(args) < low or (high is not None and len(args) > high):
        want = str(low) if low == high else f"{low} or more" if high is None else f"{low} to {high}"
        raise error_at(f"{name} takes {want} argument(s); got {len(args)}", pos)
    if name in _DOUBLE_FUNCS:
        x = args[0]
        sql = f"{_DOUBLE_FUNCS[name]}({as_double(x, name, pos)})"
        unit = x.unit if name in _KEEP_UNIT else None
        if name == "DEGREES":
            unit = "deg"
        elif name == "RADIANS":
            unit = "rad"
        return ty.number(sql, unit=unit, name_hint=name.lower(), const=_fold(name, x.const))
    return _SPECIAL[name](tr, args, pos)


def unknown_function(name: str, pos):
    known = sorted({f.lower() for f in ADQL_FUNCTIONS} | set(UDFS))
    close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.7)
    hint = f"; did you mean {close[0]}?" if close else ""
    udfs = ", ".join(sorted(UDFS))
    return error_at(
        f"unknown function '{name}'{hint} (this service offers the ADQL 2.1 functions and the "
        f"user-defined functions {udfs})",
        pos,
    )


def as_double(t: Typed, name: str, pos) -> str:
    """SQL of a numeric argument as double precision (the type of ADQL's math functions)."""
    _need_number(t, name, pos)
    if t.kind == "num" and t.datatype == "double":
        return t.sql
    if t.kind == "null":
        return "CAST(NULL AS double precision)"
    return f"CAST({t.sql} AS double precision)"


def _need_number(t: Typed, name: str, pos) -> None:
    if t.kind not in ("num", "any", "null"):
        raise error_at(f"{name} needs a number; got {t.describe()}", pos)


def _fold(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    fn = {
        "DEGREES": math.degrees, "RADIANS": math.radians, "SQRT": math.sqrt,
        "CEILING": math.ceil, "FLOOR": math.floor,
    }.get(name)  # fmt: skip
    try:
        return float(fn(value)) if fn else None
    except ValueError:
        return None


# ---- functions with their own rules ------------------------------------------------------


def _abs(tr, args, pos) -> Typed:
    (x,) = args
    _need_number(x, "ABS", pos)
    const = abs(x.const) if x.const is not None else None
    if x.kind == "num":
        return ty.number(f"abs({x.sql})", x.datatype, unit=x.unit, const=const, name_hint="abs")
    return ty.number(f"abs({as_double(x, 'ABS', pos)})", unit=x.unit, name_hint="abs")


def _mod(tr, args, pos) -> Typed:
    a, b = args
    _need_number(a, "MOD", pos)
    _need_number(b, "MOD", pos)
    if a.is_integer and b.is_integer:
        return ty.number(
            f"mod({a.sql}, {b.sql})", ty.wider_numeric(a.datatype, b.datatype), name_hint="mod"
        )
    sql = f"CAST(mod(CAST({a.sql} AS numeric), CAST({b.sql} AS numeric)) AS double precision)"
    return ty.number(sql, unit=a.unit, name_hint="mod")


def _pi(tr, args, pos) -> Typed:
    return ty.number("pi()", const=math.pi, name_hint="pi")


def _power(tr, args, pos) -> Typed:
    x, e = args
    sql = f"power({as_double(x, 'POWER', pos)}, {as_double(e, 'POWER', pos)})"
    unit = units.power(x.unit, e.const) if x.unit and e.const is not None else None
    const = None
    if x.const is not None and e.const is not None:
        try:
            const = float(x.const**e.const)
        except (OverflowError, ZeroDivisionError, TypeError):
            const = None
    return ty.number(sql, unit=unit, const=const, name_hint="power")


def _rand(tr, args, pos) -> Typed:
    if args:
        seed = args[0]
        if seed.const is None:
            raise error_at("RAND(seed) needs a constant seed", pos)
        tr.set_seed(seed.const, pos)
    return ty.number("random()", name_hint="rand")


def _round_like(sql_name: str, adql_name: str):
    def build(tr, args, pos) -> Typed:
        x = args[0]
        _need_number(x, adql_name, pos)
        digits = 0
        if len(args) == 2:
            d = args[1]
            if d.const is None or d.const != int(d.const):
                raise error_at(f"{adql_name} needs an integer constant as number of digits", pos)
            digits = int(d.const)
        hint = adql_name.lower()
        if x.is_integer:
            if digits >= 0:
                return x.with_sql(x.sql, column=None, ref=None, geo=None, name_hint=hint)
            sql = f"CAST({sql_name}(CAST({x.sql} AS numeric), {digits}) AS {ty.SQL_OF[x.datatype]})"
            return ty.number(sql, x.datatype, unit=x.unit, name_hint=hint)
        sql = f"CAST({sql_name}(CAST({x.sql} AS numeric), {digits}) AS double precision)"
        return ty.number(sql, unit=x.unit, name_hint=hint)

    return build


def _atan2(tr, args, pos) -> Typed:
    y, x = args
    sql = f"atan2({as_double(y, 'ATAN2', pos)}, {as_double(x, 'ATAN2', pos)})"
    return ty.number(sql, unit="rad", name_hint="atan2")


def _case_fold(sql_name: str):
    def build(tr, args, pos) -> Typed:
        (s,) = args
        if s.kind not in ("str", "any", "null"):
            raise error_at(f"{sql_name.upper()} needs a string; got {s.describe()}", pos)
        return ty.string(f"{sql_name}({s.sql})", name_hint=sql_name)

    return build


def _coalesce(tr, args, pos) -> Typed:
    common = tr.common_type(args, "COALESCE", pos)
    sql = f"COALESCE({', '.join(a.sql for a in args)})"
    return common.with_sql(sql, name_hint="coalesce")


def _nullif(tr, args, pos) -> Typed:
    a, b = args
    tr.check_comparable(a, b, "NULLIF", pos)
    return tr.plain(a).with_sql(f"NULLIF({a.sql}, {b.sql})", name_hint="nullif")


def _in_unit(tr, args, pos) -> Typed:
    x, target = args
    if not (target.kind == "str" and target.literal):
        raise error_at("IN_UNIT needs the target unit as a string literal, e.g. 'arcsec'", pos)
    _need_number(x, "IN_UNIT", pos)
    unit = target.text or ""
    if x.unit is None:
        if tr.permissive:  # test catalog: units of made-up columns are unknowable
            return ty.number(x.sql, unit=unit, name_hint="in_unit")
        what = f"'{x.name_hint}'" if x.name_hint else "the value"
        raise error_at(f"IN_UNIT: the unit of {what} is not known, so it cannot be converted", pos)
    try:
        factor = units.conversion_factor(x.unit, unit)
    except ValueError as exc:
        raise error_at(str(exc), pos) from None
    base = as_double(x, "IN_UNIT", pos)
    sql = base if factor == 1.0 else f"({base} * {float_literal(factor)})"
    const = x.const * factor if x.const is not None else None
    return ty.number(sql, unit=unit, ucd=x.ucd, const=const, name_hint="in_unit")


_SPECIAL = {
    "ABS": _abs,
    "MOD": _mod,
    "PI": _pi,
    "POWER": _power,
    "RAND": _rand,
    "ROUND": _round_like("round", "ROUND"),
    "TRUNCATE": _round_like("trunc", "TRUNCATE"),
    "ATAN2": _atan2,
    "LOWER": _case_fold("lower"),
    "UPPER": _case_fold("upper"),
    "COALESCE": _coalesce,
    "NULLIF": _nullif,
    "IN_UNIT": _in_unit,
}


# ---- user-defined functions --------------------------------------------------------------


def _udf(tr, name: str, args: list[Typed], pos) -> Typed:
    fn = UDFS.get(name)
    if fn is None:
        raise unknown_function(name, pos)
    if len(args) != len(fn.params):
        raise error_at(f"{fn.form} takes {len(fn.params)} argument(s); got {len(args)}", pos)
    for (pname, ptype), a in zip(fn.params, args, strict=True):
        numeric = ptype in ("INTEGER", "BIGINT", "SMALLINT", "REAL", "DOUBLE")
        if numeric and a.kind not in ("num", "any", "null"):
            raise error_at(f"{name}: {pname} must be a number; got {a.describe()}", pos)
        if a.kind in ("bool", "geom") and not numeric:
            raise error_at(f"{name}: {pname} cannot be {a.describe()}", pos)
    sql = fn.template.format(*(a.sql for a in args))
    if fn.setup is not None:
        tr.needs_setup(fn.setup)
    t = ty.Typed(
        sql=sql,
        kind="str" if fn.datatype == "char" else "num",
        datatype=fn.datatype,
        arraysize=fn.arraysize,
        ucd=fn.ucd,
        name_hint=name,
    )
    return t


# ---- aggregates --------------------------------------------------------------------------


def aggregate(tr, name: str, arg: Typed | None, distinct: bool, pos) -> Typed:
    if arg is None:
        return ty.number("count(*)", "long", ucd="meta.number", name_hint="count")
    if arg.kind == "bool":
        raise error_at(f"{name} needs a value, not a condition", pos)
    d = "DISTINCT " if distinct else ""
    if name == "COUNT":
        sql = f"count({d}{arg.sql})"
        return ty.number(sql, "long", ucd="meta.number", name_hint="count")
    hint = name.lower()
    if name in ("MIN", "MAX"):
        base = tr.plain(arg)
        return replace(base, sql=f"{hint}({d}{arg.sql})", name_hint=hint)
    _need_number(arg, name, pos)
    if name == "AVG":
        sql = f"avg({d}{as_double(arg, name, pos)})"
        return ty.number(sql, unit=arg.unit, name_hint=hint)
    # SUM
    if arg.is_integer:
        sql = f"CAST(sum({d}{arg.sql}) AS bigint)"
        return ty.number(sql, "long", unit=arg.unit, name_hint=hint)
    datatype = arg.datatype if arg.kind == "num" else "double"
    return ty.number(f"sum({d}{arg.sql})", datatype, unit=arg.unit, name_hint=hint)


# ---- CAST --------------------------------------------------------------------------------

_CAST_NUMERIC = {
    "SMALLINT": ("short", "smallint"),
    "INTEGER": ("int", "integer"),
    "BIGINT": ("long", "bigint"),
    "REAL": ("float", "real"),
    "DOUBLE PRECISION": ("double", "double precision"),
}


def cast(tr, x: Typed, type_name: str, length: int | None, pos) -> Typed:
    hint = x.name_hint
    if x.kind == "bool":
        raise error_at("a condition cannot be cast; use CASE WHEN ... THEN 1 ELSE 0 END", pos)
    if type_name in _CAST_NUMERIC:
        datatype, sql_type = _CAST_NUMERIC[type_name]
        if x.kind not in ("num", "str", "any", "null"):
            raise error_at(f"cannot cast {x.describe()} to {type_name}", pos)
        return ty.number(f"CAST({x.sql} AS {sql_type})", datatype, unit=x.unit, name_hint=hint)
    if type_name in ("CHAR", "VARCHAR"):
        if x.kind in ("geom", "array"):
            raise error_at(f"cannot cast {x.describe()} to {type_name}", pos)
        if type_name == "CHAR":
            n = length or 1
            return ty.string(f"CAST({x.sql} AS character({n}))", str(n), name_hint=hint)
        if length:
            return ty.string(f"CAST({x.sql} AS varchar({length}))", f"{length}*", name_hint=hint)
        return ty.string(f"CAST({x.sql} AS text)", name_hint=hint)
    if type_name == "TIMESTAMP":
        if x.kind not in ("str", "time", "any", "null"):
            raise error_at(f"cannot cast {x.describe()} to TIMESTAMP", pos)
        return ty.timestamp(f"CAST({x.sql} AS timestamp)", name_hint=hint)
    shape = type_name.lower()  # POINT, CIRCLE, POLYGON
    if x.kind == "str" and x.literal:
        return geometry.dali_geometry(shape, x.text or "", pos)
    if x.kind == "geom" and x.shape in (shape, "region"):
        return ty.geometry(x.sql, shape, geo=x.geo, name_hint=hint)
    if x.kind in ("str", "any", "null"):
        sql = (
            f"CAST(regexp_split_to_array(btrim({x.sql}), {quote_string(chr(92) + 's+')}) "
            "AS double precision[])"
        )
        return ty.geometry(sql, shape, name_hint=hint)
    raise error_at(f"cannot cast {x.describe()} to {type_name}", pos)
