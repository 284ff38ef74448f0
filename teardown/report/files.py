"""Tables (rows.py's Arrow tables) -> CSV, JSON, JSON lines or Parquet files, written by
Arrow's own writers or, for JSON, by Arrow's string kernels: no Python object per row.

A file is written whole or not at all (outputs.atomic_output), so an interrupted run never
leaves half a table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, BinaryIO

from ..outputs import Outputs, atomic_output
from ..present import text_scalar
from ..schema import FORMATS

if TYPE_CHECKING:
    import pyarrow as pa


def write_table(table: pa.Table | Iterable[pa.Table], out: str, fmt: str, option: str = "-o",
                into: Outputs | None = None) -> None:
    """A table, or the batches of one (rows.arrow_batches), into the file `out` as `fmt` (one
    of schema.FORMATS): a batch at a time, so that only one is ever held in Arrow. With `into`,
    the file appears with the rest of that set (outputs.replaced_together)."""
    import pyarrow as pa

    writer: dict[str, Callable[[pa.Table, Iterator[pa.Table], BinaryIO], None]] = {
        "csv": _csv, "json": _json_array, "jsonl": _json_lines, "parquet": _parquet}
    with ThreadPoolExecutor(1, thread_name_prefix="batches") as pool, atomic_output(out, option, into) as fh:
        batches = _made_ahead(iter([table] if isinstance(table, pa.Table) else table), pool)
        writer[fmt](next(batches), batches, fh)


def _made_ahead(batches: Iterator[pa.Table], pool: ThreadPoolExecutor) -> Iterator[pa.Table]:
    """The batches, each next one made on a second thread while the writer writes the one it
    has: Arrow's writers and most of making a batch (numpy, Arrow kernels) run without the GIL,
    so the two overlap on two cores."""
    ahead = pool.submit(next, batches, None)
    while (batch := ahead.result()) is not None:
        ahead = pool.submit(next, batches, None)
        yield batch


def _csv(first: pa.Table, rest: Iterator[pa.Table], fh: BinaryIO) -> None:
    """Arrow's CSV: text quoted ("" is an empty text, nothing at all an empty value), true/false,
    a dictionary column's values (not its codes)."""
    import pyarrow.csv as csv

    with csv.CSVWriter(fh, first.schema, write_options=csv.WriteOptions(quoting_header="none")) as writer:
        writer.write_table(first)
        for batch in rest:
            writer.write_table(batch)


def _parquet(first: pa.Table, rest: Iterator[pa.Table], fh: BinaryIO) -> None:
    """A row group a batch."""
    import pyarrow.parquet as pq

    with pq.ParquetWriter(fh, first.schema) as writer:
        writer.write_table(first)
        for batch in rest:
            writer.write_table(batch)


def _json_lines(first: pa.Table, rest: Iterator[pa.Table], fh: BinaryIO) -> None:
    """One JSON object a line."""
    for table in _chain(first, rest):
        for chunk in _json_rows(table, "\n"):
            fh.write(chunk)


def _json_array(first: pa.Table, rest: Iterator[pa.Table], fh: BinaryIO) -> None:
    """A JSON array of objects, one a line."""
    fh.write(b"[\n")
    pending = b""
    for table in _chain(first, rest):
        for chunk in _json_rows(table, ",\n"):
            fh.write(pending)
            fh.write(chunk[:-2])  # the last row of all takes no comma: hold back each chunk's last ",\n"
            pending = b",\n"
    fh.write(b"\n]\n" if pending else b"]\n")


def _chain(first: pa.Table, rest: Iterator[pa.Table]) -> Iterator[pa.Table]:
    yield first
    yield from rest


def _json_rows(table: pa.Table, end: str) -> Iterator[memoryview]:
    """The rows as JSON objects, each followed by `end`, as the bytes of whole chunks."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.large_string()
    parts: list[pa.Array | pa.Scalar] = []
    for i, field in enumerate(table.schema):
        parts.append(text_scalar(("{" if i == 0 else ",") + json.dumps(field.name) + ":"))
        parts.append(_json_values(table.column(i)))
    parts.append(text_scalar("}" + end))
    if table.num_rows == 0:
        return
    rows = pc.binary_join_element_wise(*parts, text_scalar(""))
    for chunk in rows.chunks if isinstance(rows, pa.ChunkedArray) else [rows]:
        _validity, offsets, data = chunk.buffers()
        at = memoryview(offsets).cast("q")  # large_string: 64-bit offsets
        yield memoryview(data)[at[chunk.offset]:at[chunk.offset + len(chunk)]]


def _json_values(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Each value as JSON text: null where empty (also NaN and infinities), texts quoted."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.large_string()
    kind = column.type
    if pa.types.is_dictionary(kind):  # each distinct value encoded once
        values = pa.chunked_array([pa.DictionaryArray.from_arrays(c.indices, _json_texts(c.dictionary)).cast(text)
                                   for c in column.chunks], text)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        values = _json_texts(column)
    elif pa.types.is_floating(kind):
        finite = pc.and_kleene(pc.is_finite(column), pc.is_valid(column))  # empty: not finite
        shown = pc.if_else(finite, pc.cast(column, text), text_scalar(None))
        # Arrow writes 2.0 as "2": keep such a value a float for JSON readers. Decided on the text:
        # Arrow writes some whole values with an exponent ("1e+10", a float to JSON already),
        # where ".0" would make it no number at all.
        digits_only = pc.match_substring_regex(shown, "^-?[0-9]+$")  # null where empty: stays empty
        values = pc.if_else(digits_only,
                            pc.binary_join_element_wise(shown, text_scalar(".0"), text_scalar("")), shown)
    else:  # integers, booleans (Arrow says true / false, as JSON does)
        values = pc.cast(column, text)
    return pc.fill_null(values, text_scalar("null"))


_CONTROL = {chr(c): f"\\u{c:04x}" for c in range(0x20)} | {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _json_texts(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Texts as JSON strings: quoted, with backslash, quote and control characters escaped."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.large_string()
    values = pc.cast(values, text)
    escaped = values
    if pc.any(pc.match_substring_regex(values, '[\\\\"\\x00-\\x1f]')).as_py():  # rare: then a pass per character
        escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
        for char, escape in _CONTROL.items():
            escaped = pc.replace_substring(escaped, char, escape)
    quote = text_scalar('"')
    return pc.binary_join_element_wise(quote, escaped, quote, text_scalar(""))
