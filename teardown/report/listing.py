"""The per-flow table -> the flows a reader should look at first, as server-rendered rows: the
table a page shows without JavaScript and the one it prints. Flows carrying a flag come first
(in the order of `flags.FLAGS`, then in time order), clean ones after, capped at LISTED_ROWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..filters import evidence_filter
from ..times import utc
from .flags import FLAGS

LISTED_ROWS = 200  # about six printed A4 pages; the HTML's own table and its CSV hold them all
# (column, header) of the listed table: the questions a ticket asks, in the words docs/rules.md uses.
LISTED_COLUMNS = [("flow_id", "Flow"), ("first_ts", "First packet (UTC)"), ("close_kind", "Close kind"),
                  ("active_closer", "Closed first by"), ("time_wait_on", "TIME_WAIT on"), ("findings", "Findings")]


@dataclass(frozen=True, slots=True)
class Filters:
    """What a reader gives Wireshark to see one flow: its display filter and its evidence
    frames as a filter on its file (report-data.js spells the same for the flows the page shows)."""

    display: str
    evidence: str  # "" when none of its evidence frames is in its file, or their file is not known
    beyond: int  # evidence frames in later files of the capture (a flow running on past its file)


def filters_of(flows: Mapping[str, npt.NDArray[Any]], numbering: Mapping[str, tuple[int, int | None]],
               r: int) -> Filters:
    """Row `r`'s filters; `numbering`: Facts.frame_numbering."""
    display = flows["display_filter"][r]
    file = numbering.get(str(flows["capture_file"][r]))
    if file is None:
        return Filters("" if display is None else str(display), "", 0)
    before, last = file
    evidence, beyond = evidence_filter(flows["evidence_frames"][r], before, np.iinfo(np.int64).max if last is None else last)
    return Filters("" if display is None else str(display), evidence, beyond)


@dataclass(frozen=True, slots=True)
class Listing:
    rows: list[dict[str, str]]  # LISTED_COLUMNS' names -> text, plus "row": the position in the flows table
    filters: list[Filters]  # of each row
    flagged: int  # flows carrying at least one flag
    total: int


def order(bits: npt.NDArray[np.int64], first_ts: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Positions, flagged flows first by their most important flag (FLAGS' order), then by time."""
    lowest = np.where(bits != 0, np.log2((bits & -bits).clip(1)).astype(np.int64), len(FLAGS))
    return np.lexsort((np.arange(len(bits)), first_ts, lowest)).astype(np.int64)


def _when(ts: float) -> str:
    if ts != ts:
        return ""
    return utc(ts, "%Y-%m-%d %H:%M:%S.%f")


def listing(flows: Mapping[str, npt.NDArray[Any]], bits: npt.NDArray[np.int64],
            numbering: Mapping[str, tuple[int, int | None]], limit: int = LISTED_ROWS) -> Listing:
    """`flows`: the per-flow table's columns as numpy (rows.TableColumns); `numbering`:
    Facts.frame_numbering, for the evidence frames' filters."""
    first = np.asarray(flows["first_ts"], np.float64)
    chosen = order(bits, first)[:limit]
    rows = []
    for r in chosen.tolist():
        flags = [f.label for i, f in enumerate(FLAGS) if bits[r] >> i & 1]
        said = {name: _text(flows[name][r]) for name in ("flow_id", "close_kind", "active_closer", "time_wait_on")}
        rows.append({"row": str(r), "first_ts": _when(float(first[r])), **said, "findings": ", ".join(flags)})
    filters = [filters_of(flows, numbering, int(row["row"])) for row in rows]
    return Listing(rows, filters, int((bits != 0).sum()), len(first))


def _text(value: Any) -> str:
    return "unknown" if value is None else str(value)  # as the ladders' titles say it
