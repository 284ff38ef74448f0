"""Judged columns -> an Arrow table with the schema's types: the one place where the rows every
file (CSV, JSON, Parquet) and every DataFrame hold are formed.

No Python object per row: numbers go to Arrow as they are, the enums become dictionary arrays
over the enum's values, and the text columns (flow_id, evidence_frames, notes, display_filter)
are joined by present.py from the numbers they say.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .memory import freed
from .packed import distinct_objects
from .present import TEXT_COLUMNS, RowsOf, flow_texts, number_array, text_array
from .schema import FLOW_COLUMNS, Column

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

Values = Mapping[str, npt.NDArray[Any]]


def arrow_table(columns: Values, spec: Sequence[Column] = FLOW_COLUMNS) -> pa.Table:
    """The columns of `spec`, in its order and with its types; with the pandas metadata that
    gives a reader of a Parquet file the schema's dtypes (Int64, boolean, string, category)."""
    import pyarrow as pa

    names = {c.name for c in spec}
    texts = flow_texts(columns) if names >= set(TEXT_COLUMNS) and "evidence" in columns else {}
    arrays = [texts[c.name] if c.name in texts else _array(c, columns[c.name]) for c in spec]
    schema = pa.schema([pa.field(c.name, a.type) for c, a in zip(spec, arrays)],
                       metadata={b"pandas": json.dumps(_pandas_metadata(spec)).encode()})
    return pa.Table.from_arrays(arrays, schema=schema)


# A file is written a batch at a time: ~15 MB of Arrow for the flows. 65,536 rows a batch took
# 0.05 s more on the benchmark's 100,000 flows, and left the next batch less to overlap with.
ROWS_PER_BATCH = 16384


def arrow_batches(columns: Values, spec: Sequence[Column] = FLOW_COLUMNS,
                  rows: int = ROWS_PER_BATCH) -> Iterator[pa.Table]:
    """`arrow_table` of successive slices of the rows, so that a file can be written without
    the whole table in Arrow at once; every batch has the same schema (enums keep every value)."""
    # Counted on a column stored as it is: a text column would be built whole to be counted.
    counted = next((c.name for c in spec if c.name not in TEXT_COLUMNS), None)
    total = len(columns[counted]) if counted is not None else 0
    for start in range(0, max(total, 1), rows):
        batch = arrow_table(RowsOf(columns, slice(start, start + rows)), spec)
        yield batch
        freed(batch.nbytes)  # written: its Arrow buffers and the numpy rows it was made from


class TableColumns(Mapping[str, npt.NDArray[Any]]):
    """An Arrow table's columns as numpy, as the engine holds them, each converted when first
    read: the other way from `arrow_table`, for a table read back from a file (the report reads
    a dozen of the fifty columns). Empty values: NaN in numbers (an integer column with any
    becomes float), None in texts and booleans (a boolean column with any holds objects)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self._done: dict[str, npt.NDArray[Any]] = {}

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        if name not in self._done:
            self._done[name] = _numpy(self.table.column(name).combine_chunks())
        return self._done[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.column_names)

    def __len__(self) -> int:
        return int(self.table.num_columns)

    def row(self, r: int) -> dict[str, Any]:
        """Row `r` as column -> value, as the columns hold it (NaN, None): for the small host
        tables (every column is converted)."""
        return {name: self[name][r] for name in self}


def _numpy(values: pa.Array) -> npt.NDArray[Any]:
    """One Arrow array as numpy, from its buffers: pyarrow's own to_numpy imports pandas."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        # A Python str per distinct text, shared by its rows: a column of addresses as str per
        # row held 5 MB more per 100,000 rows, and the report reads a dozen such columns.
        values = pc.dictionary_encode(values)
    if pa.types.is_dictionary(values.type):
        words = np.array([*values.dictionary.to_pylist(), None], object)  # the last: empty
        codes = _numpy(values.indices)
        out: npt.NDArray[Any] = words[np.where(np.isnan(codes), -1, codes).astype(np.int64)
                                      if codes.dtype.kind == "f" else codes]
        return out
    n, offset = len(values), values.offset
    validity, data = values.buffers()[:2]
    present = None if validity is None or not values.null_count else \
        np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little")[offset:offset + n].astype(bool)
    if pa.types.is_boolean(values.type):
        bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[offset:offset + n].astype(bool)
        if present is None:
            return bits
        out = bits.astype(object)
        out[~present] = None
        return out
    numbers = np.frombuffer(data, values.type.to_pandas_dtype())[offset:offset + n]
    if present is None:
        return numbers
    out = numbers.astype(np.float64)  # an integer column with empty values: NaN says so
    out[~present] = np.nan
    return out


def dataframe(table: pa.Table) -> pd.DataFrame:
    """The table as pandas with the schema's nullable dtypes (read from its pandas metadata)."""
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _array(c: Column, values: npt.NDArray[Any]) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(c.dtype, str):
        return _enum_array(c.dtype, values)
    if c.dtype == "string":
        return text_array(values)
    if c.dtype == "boolean":
        if values.dtype == object:  # None: empty
            empty = _missing(values)
            return number_array(np.where(empty, False, values).astype(bool), empty)
        return number_array(np.asarray(values, bool))
    if c.dtype == "Float64":
        values = np.asarray(values, np.float64)
        return number_array(values, np.isnan(values))  # NaN: empty
    if values.dtype.kind == "f":  # Int64 held as float so that NaN can say "empty"
        empty = np.isnan(values)
        return number_array(np.where(empty, 0, values).astype(np.int64), empty)
    if values.dtype == object:  # None: empty
        empty = _missing(values)
        return number_array(np.where(empty, 0, values).astype(np.int64), empty)
    return pc.cast(number_array(values), pa.int64()) if values.dtype != np.int64 else number_array(values)


def _missing(values: npt.NDArray[np.object_]) -> npt.NDArray[np.bool_]:
    """None or NaN: the values an object column leaves empty."""
    empty: npt.NDArray[np.bool_] = (values == None) | (values != values)  # noqa: E711 (elementwise)
    return empty


def _enum_array(enum: type[StrEnum], values: npt.NDArray[Any]) -> pa.Array:
    """Values (strings, None where empty) as indices into every value of the enum, in its order."""
    import pyarrow as pa

    dictionary = {e.value: i for i, e in enumerate(enum)}
    distinct, codes = distinct_objects(np.asarray(values, object))
    where = np.array([dictionary.get(v, -1) for v in distinct] + [-1], np.int8)  # None, NaN: empty
    indices = where[codes] if len(codes) else np.zeros(0, np.int8)
    return pa.DictionaryArray.from_arrays(number_array(np.maximum(indices, 0), indices < 0), text_array(list(dictionary)))


# How pandas names each schema dtype in a Parquet file's pandas metadata (what
# pyarrow.Table.from_pandas writes), so pandas.read_parquet gives the dtypes back.
_PANDAS_TYPES = {"string": ("object", "string"), "Int64": ("int64", "Int64"), "Float64": ("float64", "Float64"),
                 "boolean": ("bool", "boolean")}


def _pandas_metadata(spec: Sequence[Column]) -> dict[str, Any]:
    columns = []
    for c in spec:
        if isinstance(c.dtype, str):
            pandas_type, numpy_type = _PANDAS_TYPES[c.dtype]
            meta = None
        else:
            pandas_type, numpy_type = "categorical", "int8"
            meta = {"num_categories": len(c.dtype), "ordered": False}
        columns.append({"name": c.name, "field_name": c.name, "pandas_type": pandas_type, "numpy_type": numpy_type,
                        "metadata": meta})
    return {"index_columns": [], "column_indexes": [], "columns": columns, "attributes": {},
            "creator": {"library": "teardown"}, "pandas_version": "2.1"}
