"""A result saved as Parquet <-> the report's data, so a report can be made without the capture.

`teardown analyze CAPTURE -o flows.parquet` writes the per-flow table and, in the file's
key-value metadata under `teardown.report`, what the table lacks: the header facts, the
host-level tables, the busiest hosts' TIME_WAIT series and the ladder segments of the flows the
report draws, as JSON. `teardown report flows.parquet` reads
them back; any other file is refused with one line saying what it is.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import UsageError
from ..rows import arrow_table
from ..schema import COLUMN_NAMES, TABLES
from .data import HOST_TABLES, ReportData, drawn_of
from .facts import Facts
from .files import write_table
from .ladder import pack, unpack

if TYPE_CHECKING:
    import pyarrow as pa

    from ..analysis import Analysis
    from ..outputs import Outputs

METADATA_KEY = b"teardown.report"
# Of the JSON under METADATA_KEY. 2: a reusing flow's ladder names the old incarnation's
# instead of carrying a copy of its segments, and the host-level tables are Arrow IPC streams
# (zstd) under keys of their own: as JSON, a million-flow capture's tables made 214 MB of
# footer, past what Parquet readers accept (pandas refused the file). 1 refuses version 2
# files; this reader reads both.
VERSION = 2
READS = (1, 2)
TABLE_KEY = "teardown.table.{}"
PARQUET_MAGIC = b"PAR1"
HOW_TO_WRITE = "write one with `teardown analyze CAPTURE -o NAME.parquet`"


def write_parquet(analysis: Analysis, path: str, into: Outputs | None = None) -> None:
    """The per-flow table as Parquet, a row group a batch as the other files are written, with
    the report's facts, tables and ladders in its metadata; whole or not at all (with `into`,
    with the rest of that set: files.write_table)."""
    drawn = drawn_of(analysis)
    extra = {"version": VERSION, "facts": drawn.facts.to_json(), "tables": sorted(HOST_TABLES),
             "series": {host: list(steps) for host, steps in drawn.series.items()},
             "ladders": pack(drawn.ladders)}
    metadata = {METADATA_KEY: json.dumps(extra, separators=(",", ":"), allow_nan=False).encode()}
    for name in HOST_TABLES:
        metadata[TABLE_KEY.format(name).encode()] = _ipc(analysis.table(name))
    batches = analysis.batches("flows")
    first = next(batches)
    schema_metadata = {**(first.schema.metadata or {}), **metadata}  # the writer takes the first batch's schema
    write_table(itertools.chain([first.replace_schema_metadata(schema_metadata)], batches), path, "parquet",
                into=into)


def _ipc(table: Any) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def _from_ipc(raw: bytes) -> pa.Table:
    import pyarrow as pa

    return pa.ipc.open_stream(raw).read_all()


def _table(name: str, columns: dict[str, list[Any]]) -> pa.Table:
    """A table of a version 1 file, saved as JSON columns (None where empty), with the
    schema's types for table `name`."""
    data: dict[str, npt.NDArray[Any]] = {}
    for c in TABLES[name]:
        values = columns[c.name]
        if c.dtype in ("Int64", "Float64"):  # numbers, NaN where empty (rows.arrow_table reads it so)
            data[c.name] = np.array([np.nan if v is None else v for v in values], np.float64)
        else:
            data[c.name] = np.array(values, object)
    return arrow_table(data, TABLES[name])


def _refuse(path: str, problem: str) -> UsageError:
    return UsageError(f"{path}: {problem}")


def read_parquet(path: str) -> ReportData:
    """The report's data from a file `write_parquet` wrote; UsageError for anything else."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if os.path.isdir(path):
        raise _refuse(path, f"is a directory; give the flows table (flows.parquet) in it; {HOW_TO_WRITE}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except FileNotFoundError:
        raise _refuse(path, "no such file") from None
    except OSError as e:
        raise _refuse(path, f"cannot open: {e.strerror or e}") from None
    if head != PARQUET_MAGIC:
        shown = " ".join(f"{b:02x}" for b in head) or "nothing"
        raise _refuse(path, f"not a Parquet file (starts with {shown}); {HOW_TO_WRITE}")
    try:
        table = pq.ParquetFile(path).read()  # not read_table: its datasets module imports pandas
    except (pa.ArrowException, OSError) as e:
        raise _refuse(path, f"damaged Parquet file ({str(e).splitlines()[0]}); {HOW_TO_WRITE}") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise _refuse(path, "a Parquet file without teardown's report data (another tool wrote it, or it is "
                            f"not the flows table); {HOW_TO_WRITE}")
    return _data(path, table, raw)


def _data(path: str, table: Any, raw: bytes) -> ReportData:
    try:
        extra = json.loads(raw)
        if extra.get("version") not in READS:
            raise _refuse(path, f"report data of version {extra.get('version')}, this teardown reads "
                                f"version {VERSION}; write it again with this teardown")
        facts = Facts.from_json(extra["facts"])
        if extra["version"] == 1:  # the tables as JSON columns
            tables = {name: _table(name, extra["tables"][name]) for name in HOST_TABLES if name in extra["tables"]}
        else:
            metadata = table.schema.metadata
            tables = {name: _from_ipc(metadata[TABLE_KEY.format(name).encode()])
                      for name in HOST_TABLES if name in extra["tables"]}
        series = {str(h): (list(ts), list(n)) for h, (ts, n) in extra["series"].items()}
        ladders = unpack(extra["ladders"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise _refuse(path, f"unreadable teardown report data ({type(e).__name__}: {e}); {HOW_TO_WRITE}") from None
    missing = [c for c in COLUMN_NAMES if c not in table.column_names]
    if missing:
        raise _refuse(path, f"the flows table lacks {', '.join(missing[:3])}"
                            f"{' and more' if len(missing) > 3 else ''}; {HOW_TO_WRITE}")
    return ReportData(facts, table.select(COLUMN_NAMES), tables, series, ladders)
