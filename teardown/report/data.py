"""An analysis -> everything its report shows (`ReportData`): the header facts, the per-flow
table, the host-level tables of TIME_WAIT as a resource (issue 3), the TIME_WAIT series of the
busiest hosts, and the ladders of the flows drawn. saved.py writes the same into a Parquet file.

The tables are Arrow, as the files are written from them and a Parquet file gives them back;
the page reads their columns as numpy (`columns`): no pandas anywhere in a report.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ..analysis import Analysis
from ..present import RowsOf
from ..rows import TableColumns
from .charts import TOP_HOSTS, cut_steps
from .facts import Facts, facts_of
from .flags import LADDER_BITS, flag_bits
from .ladder import Ladder, ladders, rows_to_draw
from .reuse import previous_incarnations

if TYPE_CHECKING:
    import pyarrow as pa

HOST_TABLES = ("hosts", "destinations", "servers", "findings")
Series = tuple[list[float], list[float]]  # (ts, TIME_WAIT sockets held from ts on)


@dataclass(slots=True)
class ReportData:
    """Everything a report shows: from a fresh analysis, or from a saved result (saved.py)."""

    facts: Facts
    flows: pa.Table  # the per-flow table, as the files hold it
    tables: dict[str, pa.Table] = field(default_factory=dict)  # HOST_TABLES, as Analysis.table has them
    series: dict[str, Series] = field(default_factory=dict)  # busiest hosts' TIME_WAIT, cut to a pixel a step
    ladders: dict[int, Ladder] = field(default_factory=dict)  # position in `flows` -> its ladder
    _columns: dict[str, TableColumns] = field(default_factory=dict, repr=False)

    @property
    def columns(self) -> TableColumns:
        """The per-flow table's columns as numpy, each converted once."""
        return self.columns_of("flows")

    def columns_of(self, name: str) -> TableColumns:
        """The columns of "flows" or of one of HOST_TABLES (which must be there) as numpy."""
        if name not in self._columns:
            self._columns[name] = TableColumns(self.flows if name == "flows" else self.tables[name])
        return self._columns[name]


@dataclass(frozen=True, slots=True)
class Drawn:
    """What a report adds to an analysis's tables: its header facts, the busiest hosts'
    TIME_WAIT series and the ladders. Made from the analysis's own columns without pandas, so
    a Parquet file can carry them (saved.py) at the pace of the table."""

    facts: Facts
    series: dict[str, Series]
    ladders: dict[int, Ladder]


def from_analysis(analysis: Analysis) -> ReportData:
    """The report's data; reads the capture a second time for the ladders' segments."""
    drawn = drawn_of(analysis)
    tables = {name: analysis.table(name) for name in HOST_TABLES}
    return ReportData(drawn.facts, analysis.table("flows"), tables, drawn.series, drawn.ladders)


# A run that writes both the Parquet file and the report reads the capture a second time once.
# Weakly: a notebook's analysis is freed when its user lets it go, its drawn data with it.
_DRAWN: weakref.WeakKeyDictionary[Analysis, Drawn] = weakref.WeakKeyDictionary()


def drawn_of(analysis: Analysis) -> Drawn:
    """The facts, series and ladders of a fresh analysis, made once for it (`drawn_afresh`)."""
    if analysis not in _DRAWN:
        _DRAWN[analysis] = drawn_afresh(analysis)
    return _DRAWN[analysis]


def drawn_afresh(analysis: Analysis) -> Drawn:
    """The facts, series and ladders of a fresh analysis; reads the capture a second time for the
    ladders' segments."""
    # The facts hash the captures (hashlib lets go of the GIL): alongside the rest, on a second
    # core. A daemon thread, so that an interrupted run need not wait for the hash to end.
    hashed: list[Facts] = []

    def hash_captures() -> None:
        with contextlib.suppress(Exception):  # made again below, where a failure is reported
            hashed.append(facts_of(analysis))

    hashing = threading.Thread(target=hash_captures, name="facts", daemon=True)
    hashing.start()
    series, ladders_of = _series(analysis), _ladders(analysis)
    hashing.join()
    facts = hashed[0] if hashed else facts_of(analysis)
    return Drawn(_cluster_warning(facts, analysis), series, ladders_of)


def _series(analysis: Analysis) -> dict[str, Series]:
    """The TIME_WAIT series of the busiest hosts, cut to a pixel a step."""
    views = analysis.host_views
    hosts = views.tables.hosts
    peak = np.nan_to_num(np.asarray(hosts["time_wait_peak"], np.float64))
    order = np.argsort(-peak, kind="stable")
    busiest = hosts["host"][order[peak[order] > 0][:TOP_HOSTS]]
    start = analysis.capture.first_ts or 0.0
    series = {}
    for host in busiest:
        ts, count = views.series(str(host))
        ts = np.asarray(ts, np.float64)
        series[str(host)] = cut_steps(ts, np.asarray(count, np.float64), start, float(ts.max(initial=start)))
    return series


def _cluster_warning(facts: Facts, analysis: Analysis) -> Facts:
    if not analysis.capture.cluster:
        return facts
    return replace(facts, warnings=(*facts.warnings, f"analyzed on {analysis.capture.cluster}: ladder diagrams "
                                    "are drawn only by a run in one process, which reads the captures again"))


def _ladders(analysis: Analysis) -> dict[int, Ladder]:
    """The ladders of the flows to draw (ladder.rows_to_draw), by their rows."""
    if analysis.capture.cluster:  # the captures are where the workers are, maybe not here
        return {}
    flows = analysis.columns
    rows = rows_to_draw(flows, flag_bits(flows), LADDER_BITS)
    previous = previous_incarnations(flows)
    # A reuse ladder shows the old incarnation's end too: draw the old one wherever the new one is.
    rows = np.union1d(rows, [previous[r] for r in rows.tolist() if r in previous]).astype(np.int64)
    # The carrier numbers (ctx) come along: the ladders' second reading numbers carriers alike.
    drawn = ladders(analysis.capture.files, RowsOf(flows, rows), analysis.options)
    by_row = {int(rows[i]): lad for i, lad in drawn.items()}
    return with_reuse(by_row, previous)


def with_reuse(by_row: dict[int, Ladder], previous: dict[int, int]) -> dict[int, Ladder]:
    """Each reusing flow's ladder pointing at the incarnation whose TIME_WAIT it met, when that
    one is drawn too: the report draws the old one's end first (reuse.as_drawn)."""
    out = dict(by_row)
    for new, old in previous.items():
        if new in by_row and old in by_row:
            lad = by_row[new]
            out[new] = Ladder(lad.shape, lad.times_us, lad.frames, lad.isn, previous=old)
    return out
