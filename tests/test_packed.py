"""Rows held packed (packed.py) come back exactly as judged: values, dtypes and NONE, through
packing each slice, joining slices in another row order, and reading some rows only. (That
every sample's table is unchanged by packing, the expected tables and test_chunks say.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from teardown.flows import NONE
from teardown.packed import Packed, join, pack, unpack, unpack_at


COLUMNS = {
    "small": np.array([1, 2, 3, 250], np.int64),
    "never_seen": np.array([NONE, 5, 70000, NONE], np.int64),  # frames: NONE below a narrow type's values
    "evidence_like": np.array([[NONE, 3], [4, NONE], [7, 8], [NONE, NONE]], np.int64),
    "negative": np.array([-5, 300, 2, -128], np.int64),
    "at_the_edges": np.array([NONE, 2**31 - 1, -2**31 + 1, 0], np.int64),
    "wide": np.array([2**40, 0, 1, NONE], np.int64),
    "texts": np.array(["fin", None, "".join(["fi", "n"]), "rst"], object),  # equal texts, two objects
    "mixed_objects": np.array([True, 1, float("nan"), None], object),  # True and 1 are equal, not the same
    "floats": np.array([0.5, np.nan, 2.0, 1e300]),
    "mostly_nan": np.array([np.nan, np.nan, -0.0, np.nan]),  # an instant few rows have: held sparse
    "all_nan": np.full(4, np.nan),
    "unsigned": np.array([0, 3, 0, 9], np.uint32),  # a carrier's number: never NONE
}


def same(got: np.ndarray[Any, Any], want: np.ndarray[Any, Any]) -> bool:
    if got.dtype != want.dtype or got.shape != want.shape:
        return False
    pairs = zip(got.ravel().tolist(), want.ravel().tolist())
    return all(type(g) is type(w) and (g == w or (g != g and w != w)) for g, w in pairs)


@pytest.mark.parametrize("name", list(COLUMNS))
@pytest.mark.parametrize("cut", [0, 1, 3, 4])
def test_a_column_packed_in_slices_joined_and_reordered_is_the_column(name: str, cut: int) -> None:
    column = COLUMNS[name]
    slices = [pack({name: column[:cut]})[name], pack({name: column[cut:]})[name]]
    assert same(unpack(slices[0]), column[:cut]) and same(unpack(slices[1]), column[cut:])
    rows = np.array([3, 0, 2, 1])
    joined = join(slices, rows)
    assert same(unpack(joined), column[rows])
    assert same(unpack_at(joined, np.array([2, 0])), column[rows][[2, 0]])


def test_packing_narrows_what_it_can() -> None:
    packed = pack(COLUMNS)
    assert isinstance(packed["small"], Packed) and packed["small"].values.dtype == np.uint8
    assert isinstance(packed["evidence_like"], Packed) and packed["evidence_like"].values.dtype == np.int8
    assert isinstance(packed["texts"], Packed) and len(packed["texts"].distinct) == 3  # fin, None, rst
    assert not isinstance(packed["wide"], Packed)  # 2**40 and NONE need 64 bits
    assert packed["floats"] is COLUMNS["floats"]
    assert isinstance(packed["mostly_nan"], Packed) and packed["mostly_nan"].values.tolist() == [-0.0]
    assert isinstance(packed["all_nan"], Packed) and packed["all_nan"].nbytes == 0
    assert isinstance(packed["unsigned"], Packed) and packed["unsigned"].values.itemsize == 1


@pytest.mark.parametrize("rows", [slice(None), slice(1, 3), slice(3, 4), slice(0, 0), np.array([2, 2, 0, 3])])
def test_a_sparse_column_reads_at_any_rows(rows: Any) -> None:
    """A file is written a slice of rows at a time; the summary's examples are rows anywhere."""
    column = np.full(1000, np.nan)
    column[[0, 7, 500, 999]] = [1.5, -2.0, 3e9, 0.25]
    held = pack({"c": column})["c"]
    assert isinstance(held, Packed) and held.index is not None and held.index.dtype == np.uint16
    for at in (rows, np.array([999, 998, 7, 0, 1])):
        assert same(unpack_at(held, at), column[at])
