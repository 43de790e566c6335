"""What each result column becomes on the wire, and the Arrow type every writer can rely on.

The executor hands over whatever Arrow types the database driver produced (string or
large_string, timestamp, list<double>, sometimes null-typed columns). `conform` casts each column
once, up front, to one canonical type per VOTable datatype, so the writers only ever see:

    boolean -> bool          unsignedByte -> uint8   short -> int16   int -> int32
    long -> int64            float -> float32        double -> float64
    char / unicodeChar -> large_string (timestamps already as ISO 8601 text)
    numeric arrays -> large_list<element>
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escape_vo.schema.model import Column

TEXT_TYPES = ("char", "unicodeChar")

ARROW_TYPES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "unsignedByte": pa.uint8(),
    "short": pa.int16(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
}

# Big-endian element types of the VOTable binary serialisations (and of FITS).
WIRE_DTYPES: dict[str, str] = {
    "unsignedByte": "u1",
    "short": ">i2",
    "int": ">i4",
    "long": ">i8",
    "float": ">f4",
    "double": ">f8",
}

# DALI geometry xtypes: arrays of doubles, 'ra dec', 'ra dec radius', 'ra1 dec1 ra2 dec2 ...'.
_GEOMETRY_ARRAYSIZE = {"point": "2", "circle": "3", "polygon": "*"}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A column as the writers see it: the VOTable FIELD attributes plus the encoding shape.

    `count` is the number of elements of a fixed-size cell (characters for fixed-length
    strings); None for scalars and variable-length cells.
    """

    name: str
    datatype: str
    arraysize: str | None
    xtype: str | None
    unit: str | None
    ucd: str | None
    utype: str | None
    description: str
    count: int | None
    variable: bool

    @property
    def is_text(self) -> bool:
        return self.datatype in TEXT_TYPES

    @property
    def is_array(self) -> bool:
        """A numeric array cell (geometry, spectra); strings are not arrays here."""
        return not self.is_text and self.arraysize is not None

    @property
    def is_float(self) -> bool:
        return self.datatype in ("float", "double")

    @property
    def arrow_type(self) -> pa.DataType:
        if self.is_text:
            return pa.large_string()
        scalar = ARROW_TYPES[self.datatype]
        return pa.large_list(scalar) if self.is_array else scalar


def field_spec(column: Column) -> FieldSpec:
    """Validate a column's datatype and arraysize and work out how its cells are encoded."""
    datatype = column.datatype
    if datatype not in ARROW_TYPES and datatype not in TEXT_TYPES:
        raise ValueError(f"column {column.name!r}: datatype {datatype!r} cannot be written")
    arraysize = column.arraysize
    if datatype in TEXT_TYPES and not arraysize:
        arraysize = "*"  # a string of unknown length, never a single character
    if datatype not in TEXT_TYPES and not arraysize:
        arraysize = _GEOMETRY_ARRAYSIZE.get((column.xtype or "").lower())
    count, variable = _shape(column.name, arraysize)
    return FieldSpec(
        name=column.name,
        datatype=datatype,
        arraysize=arraysize,
        xtype=column.xtype,
        unit=column.unit,
        ucd=column.ucd,
        utype=column.utype,
        description=column.description or "",
        count=count,
        variable=variable,
    )


def _shape(name: str, arraysize: str | None) -> tuple[int | None, bool]:
    if arraysize is None:
        return None, False
    dims = arraysize.strip().split("x")
    if dims[-1].endswith("*"):
        return None, True
    try:
        sizes = [int(d) for d in dims]
    except ValueError:
        raise ValueError(f"column {name!r}: arraysize {arraysize!r} is not valid") from None
    if any(s < 1 for s in sizes):
        raise ValueError(f"column {name!r}: arraysize {arraysize!r} is not valid")
    return math.prod(sizes), False


def conform(array: pa.Array | pa.ChunkedArray, spec: FieldSpec) -> pa.Array:
    """Cast one column of a batch to the canonical Arrow type of its FIELD."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    target = spec.arrow_type
    if array.type == target:
        return array
    if spec.is_text:
        return _as_text(array)
    if spec.is_array:
        if pa.types.is_null(array.type):
            return pa.nulls(len(array), target)
        if not (
            pa.types.is_list(array.type)
            or pa.types.is_large_list(array.type)
            or pa.types.is_fixed_size_list(array.type)
        ):
            raise TypeError(f"column {spec.name!r}: expected an array column, got {array.type}")
        return array.cast(target)
    return array.cast(target)


def _as_text(array: pa.Array) -> pa.Array:
    kind = array.type
    if pa.types.is_timestamp(kind):
        return iso_timestamps(array)
    if pa.types.is_large_string(kind):
        return array
    if pa.types.is_string(kind) or pa.types.is_null(kind):
        return array.cast(pa.large_string())
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return array.cast(pa.large_string())  # validates UTF-8
    if pa.types.is_fixed_size_list(kind):
        array, kind = array.cast(pa.large_list(kind.value_type)), pa.large_list(kind.value_type)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        values = pc.cast(array.values, pa.large_string())
        listed = pa.LargeListArray.from_arrays(
            array.offsets.cast(pa.int64()), values, mask=array.is_null()
        )
        return pc.binary_join(listed, pa.scalar(" ", pa.large_string()))
    return pc.cast(array, pa.large_string())


def iso_timestamps(array: pa.Array) -> pa.Array:
    """DALI timestamps 'YYYY-MM-DDThh:mm:ss[.fff...]' in UTC, with the column's precision.

    Arrow's cast to string gives 'YYYY-MM-DD hh:mm:ss.ffffff' and is ten times faster than
    strftime, so we cast and then put the 'T' in.
    """
    kind = array.type
    if kind.tz is not None:  # the stored instant is UTC; drop the zone so no offset is printed
        array = array.view(pa.timestamp(kind.unit))
    text = pc.cast(array, pa.large_string())
    return pc.replace_substring(text, " ", "T", max_replacements=1)


def null_mask(array: pa.Array) -> np.ndarray | None:
    """Boolean numpy mask of null cells, or None when the column has none."""
    if array.null_count == 0:
        return None
    return array.is_null().to_numpy(zero_copy_only=False)


def values_buffer(array: pa.Array) -> memoryview:
    """The concatenated value bytes of a (large) string or binary array, without copying."""
    if len(array) == 0:
        return memoryview(b"")
    offsets_type = (
        np.int64
        if pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
        else np.int32
    )
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offsets_type)
    start = int(offsets[array.offset])
    end = int(offsets[array.offset + len(array)])
    if buffers[2] is None:
        return memoryview(b"")
    return memoryview(buffers[2])[start:end]


def offsets_of(array: pa.Array) -> np.ndarray:
    """Offsets of a large string/binary/list array relative to its first value (int64)."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    return offsets - offsets[0]
