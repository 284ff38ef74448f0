"""Judged rows held compactly until the analysis reads them: the rows of a long capture are held
from the moment they are judged to the end of the run, and most of their bytes are 64-bit
numbers that fit in fewer, object columns that repeat a handful of objects, and instants most
rows never had (an RST, an assassination: NaN).

`pack` makes each column as narrow as its values allow (integers in the smallest type that
holds them, objects as codes into the distinct objects, mostly-NaN floats as their other
rows); `unpack` gives the column back exactly as it was, dtype included. Both are numpy
steps, never a Python step per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .flows import NONE

Array = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class Packed:
    """A column held narrow: `values` (narrower integers, codes into `distinct`, or the floats of
    the rows in `index`, the others NaN), and the dtype it is unpacked to."""

    values: Array
    dtype: np.dtype[Any]
    distinct: npt.NDArray[np.object_] | None = None  # the objects the codes number
    absent: bool = False  # the narrow type's least value stands for NONE ("never seen")
    index: Array | None = None  # the rows `values` belong to, ascending; every other row is NaN
    size: int = 0  # rows in all, where `index` is given

    def unpack(self) -> Array:
        if self.index is not None:
            out = np.full(self.size, np.nan)
            out[self.index] = self.values
            return out
        if self.distinct is not None:
            wide: Array = self.distinct[self.values]
            return wide
        wide = self.values.astype(self.dtype)
        if self.absent:
            wide[self.values == np.iinfo(self.values.dtype).min] = NONE
        return wide

    def at(self, rows: npt.NDArray[np.int64] | slice) -> Array:
        """Some rows only, unpacked."""
        if self.index is None:
            return Packed(self.values[rows], self.dtype, self.distinct, self.absent).unpack()
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(self.size))
        out = np.full(len(rows), np.nan)
        if len(self.index):
            at = np.minimum(np.searchsorted(self.index, rows), len(self.index) - 1)
            hit = self.index[at] == rows
            out[hit] = self.values[at[hit]]
        return out

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes) + (0 if self.index is None else int(self.index.nbytes))


Held = Array | Packed  # a column as a part of the rows holds it


def pack(columns: Mapping[str, Array]) -> dict[str, Held]:
    """Every column of one slice of rows, each packed where that saves memory."""
    return {name: _pack(values) for name, values in columns.items()}


def unpack(column: Held) -> Array:
    return column.unpack() if isinstance(column, Packed) else column


def unpack_at(column: Held, rows: npt.NDArray[np.int64] | slice) -> Array:
    return column.at(rows) if isinstance(column, Packed) else column[rows]


NARROW = [np.iinfo(t) for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32)]


def _narrowest(low: int, high: int, some_absent: bool) -> np.iinfo[Any] | None:
    """The narrowest integer type holding [low, high], and below low a value for NONE if needed."""
    for narrow in NARROW:
        if (narrow.min < low if some_absent else narrow.min <= low) and high <= narrow.max:
            return narrow
    return None


def _int_range(column: Held) -> tuple[int, int, bool, npt.NDArray[np.bool_] | None] | None:
    """(least, greatest value seen, whether any is NONE, where NONE is) of an int64 column,
    packed or not; None for any other column."""
    if isinstance(column, Packed):
        if column.distinct is not None or column.index is not None:
            return None
        values = column.values
        absent = values == np.iinfo(values.dtype).min if column.absent else None
    elif column.dtype == np.int64:
        values = column
        absent = values == NONE
    else:
        return None
    some = absent is not None and bool(absent.any())
    seen = ~absent if some and absent is not None else True
    kind = np.iinfo(values.dtype)  # the extremes as initial values: they never widen the range
    low, high = int(values.min(initial=kind.max, where=seen)), int(values.max(initial=kind.min, where=seen))
    return low, high, some, absent if some else None


def _pack(values: Array) -> Held:
    if values.dtype == np.int64 and values.size:
        low, high, some_absent, absent = _int_range(values) or (0, 0, False, None)
        narrow = _narrowest(low, high, some_absent)
        if narrow is not None:
            if absent is not None:
                return Packed(np.where(absent, narrow.min, values).astype(narrow.dtype), values.dtype, absent=True)
            return Packed(values.astype(narrow.dtype), values.dtype)
    if values.dtype.kind in "iu" and values.dtype != np.int64 and values.size:  # no NONE in these
        narrow = _narrowest(int(values.min()), int(values.max()), False)
        if narrow is not None and narrow.dtype.itemsize < values.dtype.itemsize:
            return Packed(values.astype(narrow.dtype), values.dtype)
    if values.dtype == object and values.ndim == 1:
        return coded(values)
    if values.dtype == np.float64 and values.ndim == 1:
        return _sparse(values)
    return values


def _sparse(values: npt.NDArray[np.float64]) -> Held:
    """A float column that is mostly NaN (an instant or a length most rows never had: an RST, a
    half close, an assassination) as its other rows' values and row numbers."""
    index = np.flatnonzero(~np.isnan(values))
    kind = np.min_scalar_type(max(len(values) - 1, 0))
    if len(index) * (8 + kind.itemsize) > 4 * len(values):  # saves less than half
        return values
    return Packed(values[index], values.dtype, index=index.astype(kind), size=len(values))


def coded(values: npt.NDArray[np.object_]) -> Packed:
    """An object column as codes into its distinct objects."""
    return _coded(*distinct_objects(values))


def _coded(distinct: list[Any], codes: npt.NDArray[np.integer[Any]]) -> Packed:
    """Codes in the smallest type that numbers every distinct object."""
    kind = np.min_scalar_type(max(len(distinct) - 1, 0))
    return Packed(codes.astype(kind), np.dtype(object), np.fromiter(distinct, object, len(distinct)))


def same_objects(values: npt.NDArray[np.object_]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The first row of each distinct object of an object array, by identity only, and each
    row's index among them. An object array's buffer is the objects' addresses, so numpy finds
    them without a Python step per row."""
    objects: Any = np.ascontiguousarray(values)  # typed as no buffer, but numpy gives one
    address = np.frombuffer(memoryview(objects).cast("B"), np.uintp)
    _, first, inverse = np.unique(address, return_index=True, return_inverse=True)
    return first, inverse


def distinct_objects(values: npt.NDArray[np.object_]) -> tuple[list[Any], npt.NDArray[np.int32]]:
    """The distinct objects of an object array (by identity, then by value: equal texts made
    apart count once) and each row's index among them."""
    first, inverse = same_objects(values)
    by_value: dict[tuple[type, Any], int] = {}  # by type too: True and 1 are equal, not the same
    objects = values[first].tolist()
    same = np.array([by_value.setdefault((type(v), v), len(by_value)) for v in objects], np.int32)
    kept = {code: v for code, v in zip(same.tolist(), objects)}  # the first object of each value
    return [kept[code] for code in range(len(by_value))], same[inverse]


def join(slices: Sequence[Held], rows: npt.NDArray[np.int64] | None = None) -> Held:
    """One column of several slices as one column, its rows taken in `rows` order, packed again.
    Codes of objects are renumbered into the objects of all slices, never unpacked."""
    codes_of = [s for s in slices if isinstance(s, Packed) and s.distinct is not None]
    if codes_of and len(codes_of) == len(slices):
        tables = [s.distinct for s in codes_of if s.distinct is not None]
        distinct, renumber = distinct_objects(np.concatenate(tables))
        starts = np.cumsum([0] + [len(t) for t in tables], dtype=np.int64).tolist()
        codes = np.concatenate([renumber[start:end][s.values] for start, end, s in zip(starts, starts[1:], codes_of)])
        return _coded(distinct, codes if rows is None else codes[rows])
    ranges = [_int_range(s) for s in slices]
    if slices and all(r is not None for r in ranges):  # integers: joined narrow, never at full width
        known = [r for r in ranges if r is not None]
        some_absent = any(r[2] for r in known)
        narrow = _narrowest(min(r[0] for r in known), max(r[1] for r in known), some_absent)
        if narrow is not None:
            at = np.cumsum([0] + [len(s.values if isinstance(s, Packed) else s) for s in slices]).tolist()
            first = slices[0]
            out = np.empty((at[-1],) + (first.values if isinstance(first, Packed) else first).shape[1:], narrow.dtype)
            for s, (_, _, _, absent), start, end in zip(slices, known, at, at[1:]):
                values = s.values if isinstance(s, Packed) else s
                out[start:end] = values  # NONE (below every value seen) is written over next
                if absent is not None:
                    out[start:end][absent] = narrow.min
            return Packed(out if rows is None else out[rows], first.dtype, absent=some_absent)
    whole = np.concatenate([unpack(s) for s in slices]) if len(slices) != 1 else unpack(slices[0])
    return _pack(whole if rows is None else whole[rows])
