"""Frames of some flows, from the capture read again (matching.match, the one way packets are
tied to flows): every frame of the flows an extract keeps, and two kinds of frames a finding
rests on that the `evidence` column does not hold.

* A FIN sent again: `evidence` holds each side's first FIN; Wireshark marks its copies
  "[TCP Retransmission]", and a comment on the final ACK says which one it answers.
* The RST that assassinated a TIME_WAIT from the next incarnation on the 4-tuple (the client's
  answer to a rejected reuse, captures/reuse_in_time_wait_rejected.pcap): the old flow holds
  only its time (`tw_assassination_ts`), the new one no RST of its own. Every incarnation on
  the tuple is read, and the RST at that time is the one.

The capture is read again only when something is wanted: an extract, or one of these findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..analysis import Analysis
from ..decode import FIN, RST
from ..matching import match
from ..packed import distinct_objects
from ..present import RowsOf

I64 = npt.NDArray[np.int64]
Columns = Mapping[str, npt.NDArray[Any]]
CLIENT, SERVER = 0, 1  # a side, as matching.Matched.direction numbers it: 0 is what the client sent


@dataclass(slots=True)
class FlowFrames:
    """Frame numbers of the whole run (numbering.py), keyed by row of the analysis."""

    kept: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # every frame of the rows an extract keeps, sorted
    fins_again: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # (row, side) -> its FIN's copies
    killed_by: dict[int, int] = field(default_factory=dict)  # row -> the RST that hit its TIME_WAIT


def needs_reading(columns: Columns, rows: I64) -> I64:
    """Those of `rows` whose comments name frames `evidence` lacks: a FIN sent again, an assassination."""
    again = (np.asarray(columns["fin_retransmissions_client"])[rows] > 0) | (
        np.asarray(columns["fin_retransmissions_server"])[rows] > 0)
    out: I64 = rows[again | np.asarray(columns["tw_assassination"], bool)[rows]]
    return out


def tuple_groups(columns: Columns) -> I64:
    """A number per row, the same for every row on one 4-tuple and carrier: each incarnation
    of it, whichever side was the client in each."""
    n = len(columns["client_port"])
    _, codes = distinct_objects(np.concatenate([np.asarray(columns["client_ip"], object),
                                                np.asarray(columns["server_ip"], object)]))
    ends = np.stack([codes[:n].astype(np.int64) << 16 | np.asarray(columns["client_port"], np.int64),
                     codes[n:].astype(np.int64) << 16 | np.asarray(columns["server_port"], np.int64)], axis=1)
    key = np.stack([np.asarray(columns["ctx"], np.int64), ends.min(axis=1), ends.max(axis=1)], axis=1)
    _, group = np.unique(key, axis=0, return_inverse=True)
    out: I64 = group.ravel().astype(np.int64)
    return out


def read_again(result: Analysis, commented: I64, kept: I64 | None) -> FlowFrames:
    """What the comments of rows `commented` need and, for an extract, the frames of rows `kept`."""
    columns = result.columns
    needing = needs_reading(columns, commented)
    killed = needing[np.asarray(columns["tw_assassination"], bool)[needing]]
    groups = tuple_groups(columns) if len(killed) else np.zeros(0, np.int64)
    neighbours = np.flatnonzero(np.isin(groups, groups[killed]))
    wanted = np.unique(np.concatenate([needing, neighbours, kept if kept is not None else np.zeros(0, np.int64)]))
    if not len(wanted):
        return FlowFrames()
    m = match(result.capture.files, RowsOf(columns, wanted), result.options)
    row = wanted[m.flow]
    out = FlowFrames()
    if kept is not None:
        out.kept = np.unique(m.frame[np.isin(row, kept)])
    _fins_again(out, columns, needing, row, m.direction, m.flags, m.frame)
    _killed_by(out, columns, killed, groups, row, m.ts, m.flags, m.frame)
    return out


def _fins_again(out: FlowFrames, columns: Columns, needing: I64, row: I64, side: I64, flags: I64,
                frame: I64) -> None:
    """Each side's FINs after its first, for the rows that sent one again."""
    sent_again = {s: np.asarray(columns[f"fin_retransmissions_{name}"]) > 0
                  for s, name in ((CLIENT, "client"), (SERVER, "server"))}
    fin = np.flatnonzero(((flags & FIN) != 0) & np.isin(row, needing))
    fin = fin[np.lexsort((frame[fin], side[fin], row[fin]))]
    for r, s, f in zip(row[fin].tolist(), side[fin].tolist(), frame[fin].tolist()):
        if sent_again[s][r]:
            out.fins_again.setdefault((r, s), []).append(f)
    for key, frames in list(out.fins_again.items()):
        out.fins_again[key] = frames[1:]  # the first is the evidence column's FIN


def _killed_by(out: FlowFrames, columns: Columns, killed: I64, groups: I64, row: I64, ts: npt.NDArray[np.float64],
               flags: I64, frame: I64) -> None:
    """The RST at each assassinated TIME_WAIT's `tw_assassination_ts`, on its tuple (any
    incarnation): both times are the same reader's, so they are equal, not near."""
    if not len(killed):
        return
    rst = np.flatnonzero((flags & RST) != 0)
    rst = rst[np.argsort(frame[rst], kind="stable")]
    first_at: dict[tuple[int, float], int] = {}
    for g, t, f in zip(groups[row[rst]].tolist(), ts[rst].tolist(), frame[rst].tolist()):
        first_at.setdefault((g, t), f)
    when = np.asarray(columns["tw_assassination_ts"], np.float64)
    for r in killed.tolist():
        found = first_at.get((int(groups[r]), float(when[r])))
        if found is not None:
            out.killed_by[r] = found
