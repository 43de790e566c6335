"""Rows of the VOTable BINARY2 and BINARY serialisations, built a whole batch at a time.

A row is the null-flag bytes (BINARY2 only) followed by every cell in FIELD order: fixed-size
cells big-endian, variable-size cells as a 4-byte big-endian element count and the elements.
Runs of fixed-size cells (including the count that precedes each variable cell) are filled
column by column into one numpy structured array, which byte-swaps as it copies; the runs and
the variable cells are then interleaved row by row by Arrow's `binary_join_element_wise` in C.
No Python code runs per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escape_vo.votable.fields import WIRE_DTYPES, FieldSpec, null_mask, offsets_of, values_buffer

# BINARY has no null flags: integers use these sentinels, declared as <VALUES null="..."/>.
BINARY_NULLS = {
    "unsignedByte": 255,
    "short": -(2**15),
    "int": -(2**31),
    "long": -(2**63),
}

_T, _F, _Q = ord("T"), ord("F"), ord("?")
_EMPTY = pa.scalar(b"", pa.large_binary())


@dataclass
class RowBuilder:
    """Pieces of a row in order: fixed runs (structured-array fields) between variable cells.

    Also used by the FITS writer, whose rows are fixed runs only.
    """

    n: int
    runs: list[list[tuple[str, np.dtype, np.ndarray | int]]] = field(default_factory=lambda: [[]])
    variables: list[pa.Array] = field(default_factory=list)

    def fixed(self, dtype: np.dtype | str, values: np.ndarray | int) -> None:
        run = self.runs[-1]
        run.append((f"f{len(run)}", np.dtype(dtype), values))

    def variable(self, counts: np.ndarray, data: pa.Array) -> None:
        self.fixed(">i4", counts)
        self.variables.append(data)
        self.runs.append([])

    def encode(self) -> bytes | memoryview:
        blocks = [_fill(self.n, run) for run in self.runs]
        if not self.variables:
            return memoryview(blocks[0].view(np.uint8))
        args: list[pa.Array] = []
        for block, data in zip(blocks, self.variables, strict=False):
            args += [_as_binary(block), data]
        if blocks[-1].dtype.itemsize:
            args.append(_as_binary(blocks[-1]))
        joined = pc.binary_join_element_wise(*args, _EMPTY)
        return values_buffer(joined)


def binary2_rows(arrays: list[pa.Array], specs: list[FieldSpec], n: int) -> bytes | memoryview:
    """The BINARY2 stream (before base64) of one batch of conformed columns."""
    row = RowBuilder(n)
    nflags = (len(specs) + 7) // 8
    masks = [null_mask(a) for a in arrays]
    if any(m is not None for m in masks):
        flags = np.zeros((n, nflags * 8), dtype=bool)
        for i, m in enumerate(masks):
            if m is not None:
                flags[:, i] = m
        row.fixed(np.dtype(("u1", (nflags,))), np.packbits(flags, axis=1, bitorder="big"))
    else:
        row.fixed(np.dtype(("u1", (nflags,))), 0)
    for array, spec, mask in zip(arrays, specs, masks, strict=True):
        _cell(row, array, spec, mask, binary2=True)
    return row.encode()


def binary_rows(arrays: list[pa.Array], specs: list[FieldSpec], n: int) -> bytes | memoryview:
    """The BINARY stream (before base64): nulls as NaN, '?', empty strings or sentinels."""
    row = RowBuilder(n)
    for array, spec in zip(arrays, specs, strict=True):
        _cell(row, array, spec, null_mask(array), binary2=False)
    return row.encode()


def _cell(
    row: RowBuilder, array: pa.Array, spec: FieldSpec, mask: np.ndarray | None, *, binary2: bool
) -> None:
    if spec.datatype == "boolean":
        values = np.where(pc.fill_null(array, False).to_numpy(zero_copy_only=False), _T, _F)
        if mask is not None:
            values[mask] = _Q
        row.fixed("u1", values)
    elif spec.is_text:
        _text_cell(row, array, spec)
    elif spec.is_array:
        _array_cell(row, array, spec, binary2=binary2)
    else:
        wire = WIRE_DTYPES[spec.datatype]
        fill = _fill_value(spec, binary2=binary2)
        row.fixed(wire, pc.fill_null(array, fill).to_numpy() if mask is not None else array)


def _fill_value(spec: FieldSpec, *, binary2: bool) -> float | int:
    if spec.is_float:
        return float("nan")
    return 0 if binary2 else BINARY_NULLS[spec.datatype]


def _array_cell(row: RowBuilder, array: pa.Array, spec: FieldSpec, *, binary2: bool) -> None:
    wire = np.dtype(WIRE_DTYPES[spec.datatype])
    fill = float("nan") if spec.is_float else 0
    lengths = pc.list_value_length(array)
    values = pc.fill_null(array.flatten(), fill).to_numpy(zero_copy_only=False)
    if spec.variable:
        counts = pc.fill_null(lengths, 0).to_numpy(zero_copy_only=False)
        data = values.astype(wire, copy=False)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        offsets *= wire.itemsize
        row.variable(counts, _binary_from(offsets, data.view(np.uint8)))
        return
    size = spec.count or 1
    valid = pc.is_valid(array).to_numpy(zero_copy_only=False)
    good = pc.fill_null(lengths, size).to_numpy(zero_copy_only=False)
    if not (good == size).all():
        bad = int(np.flatnonzero(good != size)[0])
        raise ValueError(
            f"column {spec.name!r} has arraysize {spec.arraysize} but a value with "
            f"{int(good[bad])} elements"
        )
    matrix = np.full((row.n, size), fill, dtype=values.dtype)
    matrix[valid] = values.reshape(-1, size)
    row.fixed(np.dtype((wire, (size,))), matrix)


def _text_cell(row: RowBuilder, array: pa.Array, spec: FieldSpec) -> None:
    array = pc.fill_null(array, "")
    if spec.datatype == "unicodeChar":
        offsets, data = utf16_be(array)
        unit = 2
    else:
        offsets, data = offsets_of(array), np.frombuffer(values_buffer(array), dtype=np.uint8)
        unit = 1
    if spec.variable:
        row.variable((np.diff(offsets) // unit).astype(np.int64), _binary_from(offsets, data))
        return
    width = (spec.count or 1) * unit
    row.fixed(np.dtype(("u1", (width,))), pad_bytes(offsets, data, width))


def utf16_be(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """UTF-16BE bytes and offsets of a large_string array, vectorised.

    ASCII-only batches (the usual case) just interleave zero bytes. Otherwise the whole value
    buffer is transcoded at once and each string's length in UTF-16 code units is its number of
    code points plus one per 4-byte UTF-8 sequence (a surrogate pair).
    """
    offsets8 = offsets_of(array)
    raw = np.frombuffer(values_buffer(array), dtype=np.uint8)
    if not (raw >= 0x80).any():
        data = np.zeros(2 * len(raw), dtype=np.uint8)
        data[1::2] = raw
        return offsets8 * 2, data
    data = np.frombuffer(raw.tobytes().decode("utf-8").encode("utf-16-be"), dtype=np.uint8)
    units = pc.utf8_length(array).to_numpy(zero_copy_only=False).astype(np.int64)
    four = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum(raw >= 0xF0, out=four[1:])
    units += np.diff(four[offsets8])
    offsets = np.zeros(len(units) + 1, dtype=np.int64)
    np.cumsum(units * 2, out=offsets[1:])
    return offsets, data


def pad_bytes(offsets: np.ndarray, data: np.ndarray, width: int) -> np.ndarray:
    """Each value cut or NUL-padded to `width` bytes: an (n, width) uint8 matrix."""
    n = len(offsets) - 1
    out = np.zeros((n, width), dtype=np.uint8)
    lengths = np.minimum(np.diff(offsets), width)
    total = int(lengths.sum())
    if total:
        rows = np.repeat(np.arange(n), lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        pos = np.arange(total) - starts
        out[rows, pos] = data[np.repeat(offsets[:-1], lengths) + pos]
    return out


def _fill(n: int, run: list[tuple[str, np.dtype, np.ndarray | int]]) -> np.ndarray:
    dtype = np.dtype([(name, dt) for name, dt, _ in run]) if run else np.dtype([])
    block = np.empty(n, dtype=dtype)
    for name, _, values in run:
        block[name] = values if not isinstance(values, pa.Array) else values.to_numpy()
    return block


def _as_binary(block: np.ndarray) -> pa.Array:
    width = block.dtype.itemsize
    offsets = np.arange(0, (len(block) + 1) * width, width, dtype=np.int64)
    return _binary_from(offsets, block.view(np.uint8) if width else np.zeros(0, np.uint8))


def _binary_from(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(),
        len(offsets) - 1,
        [None, pa.py_buffer(np.ascontiguousarray(offsets, dtype=np.int64)), pa.py_buffer(data)],
    )
