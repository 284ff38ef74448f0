"""An analysis -> everything its report shows (`ReportData`): the header facts, the per-flow
table, the host-level tables of TIME_WAIT as a resource (issue 3), the TIME_WAIT series of the
busiest hosts, and the ladders of the flows drawn. saved.py writes the same into a Parquet file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ..analysis import Analysis
from .charts import TOP_HOSTS, cut_steps
from .facts import Facts, facts_of
from .flags import LADDER_BITS, flag_bits
from .ladder import Ladder, ladders, rows_to_draw
from .reuse import previous_incarnations

if TYPE_CHECKING:
    import pandas as pd

HOST_TABLES = ("hosts", "destinations", "servers", "findings")
Series = tuple[list[float], list[float]]  # (ts, TIME_WAIT sockets held from ts on)


@dataclass(slots=True)
class ReportData:
    """Everything a report shows: from a fresh analysis, or from a saved result (saved.py)."""

    facts: Facts
    flows: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # HOST_TABLES, as Analysis has them
    series: dict[str, Series] = field(default_factory=dict)  # busiest hosts' TIME_WAIT, cut to a pixel a step
    ladders: dict[int, Ladder] = field(default_factory=dict)  # position in `flows` -> its ladder


def from_analysis(analysis: Analysis) -> ReportData:
    """The report's data; reads the capture a second time for the ladders' segments."""
    flows = analysis.flows
    tables = {name: getattr(analysis, name) for name in HOST_TABLES}
    hosts = tables["hosts"]
    busiest = hosts[hosts["time_wait_peak"].fillna(0) > 0].sort_values("time_wait_peak", ascending=False,
                                                                        kind="stable")["host"]
    series = {}
    start = analysis.capture.first_ts or 0.0
    for host in list(busiest)[:TOP_HOSTS]:
        steps = analysis.time_wait_series(str(host))
        ts = steps["ts"].to_numpy(float)
        series[str(host)] = cut_steps(ts, steps["time_wait"].to_numpy(float), start, float(ts.max(initial=start)))
    facts = facts_of(analysis)
    if analysis.capture.cluster:  # the captures are where the workers are, maybe not here
        facts = replace(facts, warnings=(*facts.warnings, f"analyzed on {analysis.capture.cluster}: ladder diagrams "
                                         "are drawn only by a run in one process, which reads the captures again"))
        return ReportData(facts, flows, tables, series, {})
    rows = rows_to_draw(flows, flag_bits(flows), LADDER_BITS)
    previous = previous_incarnations(flows)
    # A reuse ladder shows the old incarnation's end too: draw the old one wherever the new one is.
    rows = np.union1d(rows, [previous[r] for r in rows.tolist() if r in previous]).astype(np.int64)
    # The carrier numbers come along: the ladders' second reading numbers carriers alike.
    chosen = flows.iloc[rows].assign(ctx=np.asarray(analysis.columns["ctx"])[rows])
    drawn = ladders([f.path for f in analysis.capture.files], chosen, analysis.options)
    by_row = {int(rows[i]): lad for i, lad in drawn.items()}
    return ReportData(facts, flows, tables, series, with_reuse(by_row, previous))


def with_reuse(by_row: dict[int, Ladder], previous: dict[int, int]) -> dict[int, Ladder]:
    """Each reusing flow's ladder pointing at the incarnation whose TIME_WAIT it met, when that
    one is drawn too: the report draws the old one's end first (reuse.as_drawn)."""
    out = dict(by_row)
    for new, old in previous.items():
        if new in by_row and old in by_row:
            lad = by_row[new]
            out[new] = Ladder(lad.shape, lad.times_us, lad.frames, lad.isn, previous=old)
    return out
