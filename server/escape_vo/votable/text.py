"""Cells as text for TABLEDATA, CSV, TSV and JSON, and whole rows joined in C.

Every function works on an Arrow column of a batch; escaping is a handful of vectorised
substring replacements, skipped entirely when a byte-class lookup over the value buffer shows
the batch needs none. Floats are printed by Arrow's shortest round-trip formatting, so a value
read back is bit-identical to the one written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escape_vo.votable.fields import FieldSpec, values_buffer

_STR = pa.large_string()


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one text format spells special values and escapes strings."""

    name: str
    true: str
    false: str
    nan: str | None  # None: write a null
    pos_inf: str | None
    neg_inf: str | None
    array_open: str
    array_sep: str
    array_close: str


XML = Dialect("xml", "T", "F", "NaN", "+Inf", "-Inf", "", " ", "")
CSV = Dialect("csv", "true", "false", "NaN", "Infinity", "-Infinity", "", " ", "")
TSV = Dialect("tsv", "true", "false", "NaN", "Infinity", "-Infinity", "", " ", "")
JSON = Dialect("json", "true", "false", None, None, None, "[", ",", "]")


def _byte_class(chars: bytes, controls: bool = False) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[list(chars)] = True
    if controls:
        table[:0x20] = True
    return table


# Bytes that make a string need work in each dialect.
_XML_SPECIAL = _byte_class(b"&<>\r", controls=True)
_XML_SPECIAL[[0x09, 0x0A]] = False  # tab and newline are fine in element content
_XML_SPECIAL[0xEF] = True  # lead byte of U+F000-U+FFFF, which holds the non-characters FFFE/FFFF
_CSV_SPECIAL = _byte_class(b',"\r\n')
_TSV_SPECIAL = _byte_class(b"\\\t\r\n")
_JSON_SPECIAL = _byte_class(b'"\\', controls=True)
_XML_ILLEGAL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x{fffe}\x{ffff}]"  # not in XML 1.0 at all


def cells(array: pa.Array, spec: FieldSpec, dialect: Dialect) -> pa.Array:
    """A large_string array of the cells of one conformed column; nulls stay null."""
    if spec.is_text:
        return escape(array, dialect)
    if spec.is_array:
        return _array_cells(array, spec, dialect)
    return _scalar_cells(array, spec, dialect)


def _scalar_cells(array: pa.Array, spec: FieldSpec, dialect: Dialect) -> pa.Array:
    if spec.datatype == "boolean":
        return pc.if_else(array, pa.scalar(dialect.true, _STR), pa.scalar(dialect.false, _STR))
    text = pc.cast(array, _STR)
    if spec.is_float:
        text = _special_floats(array, text, dialect)
    return text


def _special_floats(array: pa.Array, text: pa.Array, dialect: Dialect) -> pa.Array:
    values = array.to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        special = ~np.isfinite(values)
    if array.null_count:
        special &= array.is_valid().to_numpy(zero_copy_only=False)
    if not special.any():
        return text
    nan = pa.scalar(dialect.nan, _STR)
    pos = pa.scalar(dialect.pos_inf, _STR)
    neg = pa.scalar(dialect.neg_inf, _STR)
    text = pc.if_else(pc.is_nan(array), nan, text)
    return pc.if_else(pc.is_inf(array), pc.if_else(pc.greater(array, 0), pos, neg), text)


def _array_cells(array: pa.Array, spec: FieldSpec, dialect: Dialect) -> pa.Array:
    """'1.5 2' (DALI serialisation of arrays, points, circles, polygons) or '[1.5,2]' in JSON."""
    element = replace(spec, arraysize=None, count=None, variable=False)
    values = _scalar_cells(array.values, element, dialect)
    if values.null_count:  # a null element inside an array: NaN (or 0 for integers), JSON null
        spelling = "null" if dialect.nan is None else dialect.nan if spec.is_float else "0"
        values = pc.fill_null(values, pa.scalar(spelling, _STR))
    listed = pa.LargeListArray.from_arrays(array.offsets, values, mask=array.is_null())
    text = pc.binary_join(listed, pa.scalar(dialect.array_sep, _STR))
    if dialect.array_open:
        text = join_columns([text], "", dialect.array_open, dialect.array_close, keep_nulls=True)
    if dialect is XML and spec.count and spec.is_float and text.null_count:
        # An empty TD is no valid fixed-size array (votlint says so): a NULL point is NaN NaN.
        text = pc.fill_null(text, pa.scalar(" ".join(["NaN"] * spec.count), _STR))
    return text


def escape(array: pa.Array, dialect: Dialect) -> pa.Array:
    """Strings escaped or quoted for the dialect (XML character data, RFC 4180, TSV, JSON)."""
    if len(array) == 0:
        return array
    raw = np.frombuffer(values_buffer(array), dtype=np.uint8)
    if dialect is JSON:
        if _JSON_SPECIAL[raw].any():
            array = _json_escape(array)
        return join_columns([array], "", '"', '"', keep_nulls=True)
    if dialect is XML:
        if not _XML_SPECIAL[raw].any():
            return array
        array = pc.replace_substring(array, "&", "&amp;")
        array = pc.replace_substring(array, "<", "&lt;")
        array = pc.replace_substring(array, ">", "&gt;")
        array = pc.replace_substring(array, "\r", "&#13;")  # XML parsers turn a bare CR into LF
        return pc.replace_substring_regex(array, _XML_ILLEGAL, "\ufffd")
    if dialect is TSV:
        if not _TSV_SPECIAL[raw].any():
            return array
        array = pc.replace_substring(array, "\\", "\\\\")
        array = pc.replace_substring(array, "\t", "\\t")
        array = pc.replace_substring(array, "\n", "\\n")
        return pc.replace_substring(array, "\r", "\\r")
    # CSV (RFC 4180): quote values holding a separator, quote, CR or LF, and empty strings so
    # that they stay distinct from NULL (an empty field).
    needs = pc.equal(pc.binary_length(array), 0)
    if _CSV_SPECIAL[raw].any():
        needs = pc.or_(needs, pc.match_substring_regex(array, '[,"\r\n]'))
    if not pc.any(needs).as_py():
        return array
    quoted = join_columns([pc.replace_substring(array, '"', '""')], "", '"', '"', keep_nulls=True)
    return pc.if_else(needs, quoted, array)


def _json_escape(array: pa.Array) -> pa.Array:
    array = pc.replace_substring(array, "\\", "\\\\")
    array = pc.replace_substring(array, '"', '\\"')
    array = pc.replace_substring(array, "\n", "\\n")
    array = pc.replace_substring(array, "\r", "\\r")
    array = pc.replace_substring(array, "\t", "\\t")
    raw = np.frombuffer(values_buffer(array), dtype=np.uint8)
    for code in np.unique(raw[raw < 0x20]):
        array = pc.replace_substring(array, chr(code), f"\\u{code:04x}")
    return array


def join_columns(
    columns: list[pa.Array],
    sep: str,
    prefix: str = "",
    suffix: str = "",
    *,
    null: str = "",
    keep_nulls: bool = False,
) -> pa.Array:
    """Row-wise prefix + col1 + sep + col2 ... + suffix; a null cell becomes `null`."""
    options = (
        {"null_handling": "emit_null"}
        if keep_nulls
        else {
            "null_handling": "replace",
            "null_replacement": null,
        }
    )
    joined = (
        pc.binary_join_element_wise(*columns, pa.scalar(sep, _STR), **options)
        if len(columns) > 1 or not keep_nulls
        else columns[0]
    )
    if prefix or suffix:
        ends = [pa.scalar(prefix, _STR), joined, pa.scalar(suffix, _STR)]
        joined = pc.binary_join_element_wise(*ends, pa.scalar("", _STR), **options)
    return joined


def rows_bytes(
    columns: list[pa.Array], sep: str, prefix: str, suffix: str, null: str = ""
) -> memoryview:
    """The bytes of all rows of a batch, each rendered as prefix + cells joined + suffix."""
    return values_buffer(join_columns(columns, sep, prefix, suffix, null=null))
