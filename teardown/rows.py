"""Judged columns -> an Arrow table with the schema's types: the one place where the rows every
file (CSV, JSON, Parquet) and every DataFrame hold are formed.

No Python object per row: numbers go to Arrow as they are, the enums become dictionary arrays
over the enum's values, and the text columns (flow_id, evidence_frames, notes) are joined by
Arrow's string kernels from the numbers they say. Python runs once per distinct value only
(an address, a carrier, a set of notes), never per flow.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .flows import NONE
from .schema import FLOW_COLUMNS, Column
from .verdicts import EVIDENCE_LABELS, NOTES, TEXT_COLUMNS, where_prefix

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


ROWS_PER_BATCH = 65536  # a file is written a batch at a time: ~60 MB of Arrow for the flows at most


def arrow_batches(columns: Values, spec: Sequence[Column] = FLOW_COLUMNS,
                  rows: int = ROWS_PER_BATCH) -> Iterator[pa.Table]:
    """`arrow_table` of successive slices of the rows, so that a file can be written without
    the whole table in Arrow at once; every batch has the same schema (enums keep every value)."""
    # Counted on a column stored as it is: a text column would be built whole to be counted.
    counted = next((c.name for c in spec if c.name not in TEXT_COLUMNS), None)
    total = len(columns[counted]) if counted is not None else 0
    for start in range(0, max(total, 1), rows):
        yield arrow_table(_Slice(columns, start, start + rows), spec)


class _Slice(Mapping[str, npt.NDArray[Any]]):
    """Rows start:stop of every column, each sliced when read."""

    def __init__(self, columns: Values, start: int, stop: int) -> None:
        self._columns, self._start, self._stop = columns, start, stop

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        return self._columns[name][self._start:self._stop]

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


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
        return pa.array(values, pa.large_string())
    if c.dtype == "boolean":
        return pa.array(values, pa.bool_(), from_pandas=True)  # None: empty
    if c.dtype == "Float64":
        return pa.array(np.asarray(values, np.float64), pa.float64(), from_pandas=True)  # NaN: empty
    if values.dtype.kind == "f":  # Int64 held as float so that NaN can say "empty"
        empty = np.isnan(values)
        return pa.array(np.where(empty, 0, values).astype(np.int64), pa.int64(), mask=empty)
    if values.dtype == object:
        return pc.cast(pa.array(values, from_pandas=True), pa.int64())
    return pa.array(np.asarray(values, np.int64), pa.int64())


def _enum_array(enum: type[StrEnum], values: npt.NDArray[Any]) -> pa.Array:
    """Values (strings, None where empty) as indices into every value of the enum, in its order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dictionary = pa.array([e.value for e in enum], pa.large_string())
    indices = pc.index_in(pa.array(values, pa.large_string(), from_pandas=True), value_set=dictionary)
    return pa.DictionaryArray.from_arrays(pc.cast(indices, pa.int8()), dictionary)


def flow_texts(columns: Values) -> dict[str, pa.Array]:
    """flow_id, evidence_frames and notes, written from the numbers they say (verdicts.text_columns
    writes the same for a few rows, without Arrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.large_string()

    def word(s: str) -> pa.Scalar:
        return pa.scalar(s, text)

    def number(values: npt.NDArray[Any], absent: npt.NDArray[np.bool_] | None = None) -> pa.Array:
        return pc.cast(pa.array(np.asarray(values, np.int64), mask=absent), text)

    def endpoint(ip: str, port: str) -> tuple[pa.Array, pa.Array]:
        address = _per_distinct(pa.array(columns[ip], text), lambda a: f"[{a}]:" if ":" in a else f"{a}:")
        return address, number(columns[port])

    prefix = _per_distinct(pa.array(np.asarray(columns["ctx"], np.int64)), where_prefix)
    flow_id = pc.binary_join_element_wise(prefix, *endpoint("client_ip", "client_port"), word(">"),
                                          *endpoint("server_ip", "server_port"), word("/"),
                                          number(columns["incarnation"]), word(""))
    frames = np.asarray(columns["evidence"])
    labelled = [pc.binary_join_element_wise(word(f"{label} "), number(frames[:, i], frames[:, i] == NONE), word(""))
                for i, label in enumerate(EVIDENCE_LABELS)]
    evidence = pc.binary_join_element_wise(*labelled, word(", "), null_handling="skip")
    notes = _per_distinct(pa.array(np.asarray(columns["note_bits"], np.int64)),
                          lambda bits: "; ".join(note for i, note in enumerate(NOTES) if bits >> i & 1))
    return {"flow_id": flow_id, "evidence_frames": evidence, "notes": notes}


def _per_distinct(values: pa.Array, say: Callable[[Any], str]) -> pa.Array:
    """`say` of each value, called once per distinct value."""
    import pyarrow as pa

    if len(values) == 0:
        return pa.array([], pa.large_string())
    encoded = values.dictionary_encode()
    said = pa.array([say(v) for v in encoded.dictionary.to_pylist()], pa.large_string())
    return said.take(encoded.indices)


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
