"""An analysis of several captures -> the captures of one path taken at two points joined: one
row per connection, its times in the first point's clock, with the points that saw it, the
offset between the clocks and the segments lost between the points (docs/rules.md "Two capture
points").

Captures are joined when they saw the same connections: files read together that overlap in
time are separate captures (analysis.py); two of them sharing at least half the connections of
the smaller (same endpoints, same ISN) are two points of one path. Each connection's row is the
one judged at the point nearer the holder of its TIME_WAIT (the client's TIME_WAIT from the
client's side: that point saw the final ACK leave and the FIN come again), its times read in
the first point's clock. The capture the row was judged from keeps its own frame numbers
(`capture_file`, `evidence_frames`).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from ..analysis import Analysis, CaptureSummary, JoinedPoints
from ..decode import FIN
from ..matching import match
from ..read import CaptureInfo
from ..packed import Held
from ..present import TEXT_COLUMNS, FlowColumns, RowsOf
from ..schema import COLUMN_NAMES, FLOW_COLUMNS, INTERNAL_COLUMNS
from .segments import KINDS, Lost, Pairs, Segments, clock_offset, lost_between, paired_rows, same_segments

I64 = npt.NDArray[np.int64]
# Times a row holds in its capture's clock: moved into the first point's.
CLOCK_COLUMNS = [c.name for c in FLOW_COLUMNS if c.unit == "s since the epoch"]
SHARED = 0.5  # of the smaller capture's connections seen at both: two points of one path
SIDES = ("client", "server")


def join_points(result: Analysis) -> Analysis:
    """`result` with its first capture and each other capture that saw the same connections
    joined; as it is where no two did."""
    captures = np.asarray(result.columns["capture"], np.int64)
    if not len(captures) or captures.max() == 0:
        return result
    columns = {name: np.array(result.columns[name]) for name in _stored(result.columns)}  # copies: written below
    joined: list[JoinedPoints] = []
    shifts: dict[int, float] = {}  # a joined capture -> its clock's offset
    drop = np.zeros(len(captures), bool)
    for other in range(1, int(captures.max()) + 1):
        first_rows, other_rows = np.flatnonzero(captures == 0), np.flatnonzero(captures == other)
        pairs = paired_rows(RowsOf(result.columns, first_rows), RowsOf(result.columns, other_rows))
        if len(pairs) < max(1, SHARED * min(len(first_rows), len(other_rows))):
            continue
        point = _Point(result, first_rows[pairs.a], other_rows[pairs.b], pairs, other)
        joined.append(point.summary(len(first_rows), len(other_rows)))
        shifts[other] = point.offset.offset_s
        point.write(columns, other_rows, drop)
    if not joined:
        return result
    keep = np.flatnonzero(~drop)
    order = keep[np.lexsort((columns["first_frame"][keep], columns["capture"][keep], columns["first_ts"][keep]))]
    rows: dict[str, Held] = {name: values[order] for name, values in columns.items()}
    summary = replace(result.capture, joined=joined, files=_files_in_first_clock(result.capture, shifts))
    return Analysis(FlowColumns([rows], COLUMN_NAMES + list(INTERNAL_COLUMNS), points=result.columns.points),
                    summary, result.options)


def _stored(columns: Any) -> list[str]:
    """The columns to carry over: all but the texts present.py spells from the others."""
    return [n for n in COLUMN_NAMES + list(INTERNAL_COLUMNS) if n not in TEXT_COLUMNS]


class _Point:
    """The rows of the first capture (`a`) and of another (`b`) that are one connection each,
    their segments read again at both points, and what they say."""

    def __init__(self, result: Analysis, a: I64, b: I64, pairs: Pairs, other: int) -> None:
        self.a, self.b, self.pairs, self.other = a, b, pairs, other
        files = [[f for f in result.capture.files if f.capture == k] for k in (0, other)]
        self.names = ("; ".join(os.path.basename(f.path) for f in files[0]),
                      "; ".join(os.path.basename(f.path) for f in files[1]))
        spans = [(min(f.first_ts for f in fs if f.first_ts is not None),
                  max(f.last_ts for f in fs if f.last_ts is not None)) for fs in files]
        sa = self._segments(result, a, files[0], None)
        sb = self._segments(result, b, files[1], pairs.flipped)
        first_guess = clock_offset(sa, sb, *same_segments(sa, sb))[0]
        at_a, at_b = same_segments(sa, sb, first_guess.offset_s)
        self.offset, self.a_first = clock_offset(sa, sb, at_a, at_b)
        self.lost: Lost = lost_between(sa, sb, at_a, at_b, self.offset, self.a_first, spans[0], spans[1])
        self.segments = (sa, sb)

    @staticmethod
    def _segments(result: Analysis, rows: I64, files: list[CaptureInfo], flipped: npt.NDArray[np.bool_] | None) -> Segments:
        """The segments of `rows`, read again from their capture's `files`."""
        m = match(files, RowsOf(result.columns, rows), result.options)
        return Segments.of(m, np.arange(len(rows), dtype=np.int64), flipped)

    def summary(self, first_rows: int, other_rows: int) -> JoinedPoints:
        lost: dict[str, Counter[str]] = {"c2s": Counter(), "s2c": Counter()}
        for d, k in zip(self.lost.direction.tolist(), self.lost.kind.tolist()):
            lost[("c2s", "s2c")[d]][KINDS[k]] += 1
        n = len(self.pairs)
        return JoinedPoints(self.names, self.offset.offset_s, self.offset.uncertainty_s, self.offset.segments, n,
                            (first_rows - n, other_rows - n), int(self.a_first.sum()), lost)

    def write(self, columns: dict[str, npt.NDArray[Any]], other_rows: I64, drop: npt.NDArray[np.bool_]) -> None:
        """Into `columns` (in place): the other capture's times in the first's clock, the
        offset on every row of both, each pair's row kept at the point nearer its TIME_WAIT's
        holder, with where it was seen and what was lost; the other row of each pair dropped."""
        offset = self.offset.offset_s
        for name in CLOCK_COLUMNS:
            columns[name] = np.asarray(columns[name], np.float64)
            columns[name][other_rows] -= offset
        captures = np.asarray(columns["capture"], np.int64)
        both_captures = np.flatnonzero((captures == 0) | (captures == self.other))
        columns["clock_offset_s"][both_captures] = offset
        for rows, name in ((np.flatnonzero(captures == 0), self.names[0]), (other_rows, self.names[1])):
            columns["seen_at"][rows] = name
        holder = np.asarray(columns["time_wait_on"], object)[self.a]
        nearer_client = np.where(self.a_first, self.a, self.b)
        nearer_server = np.where(self.a_first, self.b, self.a)
        kept = np.where(holder == "server", nearer_server, nearer_client)
        drop[np.where(kept == self.a, self.b, self.a)] = True
        counts = self.lost.counts(len(self.pairs))
        columns["seen_at"][kept] = f"{self.names[0]}; {self.names[1]}"
        columns["lost_between_c2s"][kept] = counts[:, 0]
        columns["lost_between_s2c"][kept] = counts[:, 1]
        words = self._words()
        for i, text in words.items():
            columns["lost_between"][kept[i]] = text

    def _words(self) -> dict[int, str]:
        """Per pair with losses: each lost segment in words, in the order sent, and what came of
        it at the point downstream: the segment arriving when sent again, or, for a final ACK,
        the peer's FIN sent again."""
        out: dict[int, list[str]] = {}
        for i in np.argsort(self.lost.frame, kind="stable").tolist():
            pair, d, kind = int(self.lost.connection[i]), int(self.lost.direction[i]), KINDS[int(self.lost.kind[i])]
            seen = int(self.lost.seen_at[i])
            text = (f"the {SIDES[d]}'s {kind} ({self.names[seen]} frame {int(self.lost.frame[i])}) never reached "
                    f"{self.names[1 - seen]}")
            out.setdefault(pair, []).append(text + self._then(pair, d, kind, seen, int(self.lost.frame[i])))
        return {pair: "; ".join(said) for pair, said in out.items()}

    def _then(self, pair: int, d: int, kind: str, seen: int, frame: int) -> str:
        """What the point downstream saw next of a segment lost on the way to it."""
        mine, other = self.segments[seen], self.segments[1 - seen]
        at = np.flatnonzero((mine.connection == pair) & (mine.frame == frame))[0]
        when = mine.ts[at] + (self.offset.offset_s if seen == 0 else -self.offset.offset_s)  # the other's clock
        later = (other.connection == pair) & (other.ts > when)
        if kind == "final ACK":  # answered by the peer's FIN sent again
            found = np.flatnonzero(later & (other.direction == 1 - d) & ((other.flags & FIN) != 0))
            said = f"the {SIDES[1 - d]} sent its FIN again"
        else:
            found = np.flatnonzero(later & (other.direction == d) & (other.seq == mine.seq[at])
                                   & (other.flags == mine.flags[at]) & (other.payload == mine.payload[at]))
            said = "sent again, it got there"
        if not len(found):
            return ""
        return f"; {said} ({self.names[1 - seen]} frame {int(other.frame[found[np.argmin(other.ts[found])]])})"


def _files_in_first_clock(capture: CaptureSummary, shift: dict[int, float]) -> list[CaptureInfo]:
    """The files, those of a joined capture with their first and last times in the first point's
    clock, so the run's span is one clock's."""
    out = []
    for f in capture.files:
        if f.capture in shift and f.first_ts is not None and f.last_ts is not None:
            f = replace(f, first_ts=f.first_ts - shift[f.capture], last_ts=f.last_ts - shift[f.capture])
        out.append(f)
    return out

