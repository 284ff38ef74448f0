"""A flow's segments -> each side's TCP state where it changes, for its ladder diagram.

States follow RFC 9293 §3.3.2 as the capture point saw them. Causality, not capture order,
decides the close (docs/rules.md "Close verdicts" 1-2): a FIN that does not acknowledge the
peer's FIN was sent before its sender received the peer's, so both sides went through CLOSING.
What the verdicts decided about RSTs (class, assassination) is taken from the flow's row, so the
ladder and the table agree. Only segments that can change a state are looked at: SYNs, FINs,
RSTs, and the ACKs while one is awaited, so a long flow costs little.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..decode import ACK, FIN, RST, SYN

I64 = npt.NDArray[np.int64]
CLIENT, SERVER = 0, 1
Label = tuple[int, int, str, int]  # (segment index, side, text beside that side's line, NOTE or STATE)
STATE, NOTE = 0, 1
SAME_PACKET_S = 1e-6  # the row's times are the packets' own; a microsecond tells them apart
AWAITING_ACK = {"SYN_RECEIVED", "FIN_WAIT_1", "CLOSING", "LAST_ACK"}


@dataclass(frozen=True, slots=True)
class FlowEnd:
    """What the verdicts said about the flow's RSTs, as positions among its segments."""

    first_rst_at: int | None  # the segment of first_rst_ts
    assassination_at: int | None  # the segment of tw_assassination_ts
    rst_class: str | None

    @staticmethod
    def of_flows(flows: Mapping[str, npt.NDArray[Any]]) -> list[tuple[float | None, float | None, str | None]]:
        """(first_rst_ts, tw_assassination_ts, rst_class) of each row of the analysis's columns."""
        def times(name: str) -> list[float | None]:
            return [None if v != v else v for v in np.asarray(flows[name], np.float64).tolist()]

        classes = [None if c is None or c != c else str(c) for c in np.asarray(flows["rst_class"], object).tolist()]
        return list(zip(times("first_rst_ts"), times("tw_assassination_ts"), classes))

    @staticmethod
    def at(ts: npt.NDArray[np.float64], row: tuple[float | None, float | None, str | None]) -> FlowEnd:
        """The row's times found among the flow's segments (its times are the packets' own)."""
        if row[0] is None and row[1] is None:  # most flows: no RST to place
            return FlowEnd(None, None, row[2])

        def index(when: float | None) -> int | None:
            if when is None:
                return None
            i = int(np.searchsorted(ts, when - SAME_PACKET_S))
            return i if i < len(ts) and abs(float(ts[i]) - when) < SAME_PACKET_S else None

        return FlowEnd(index(row[0]), index(row[1]), row[2])


@dataclass(slots=True)
class _Side:
    state: str | None = None
    fin_end: int | None = None  # relative seq just past its FIN: an ACK at least this covers it
    tentative_close_wait: int | None = None  # index in labels of a CLOSE_WAIT a crossing FIN may undo


@dataclass(slots=True)
class _Machine:
    end: FlowEnd
    sides: tuple[_Side, _Side] = field(default_factory=lambda: (_Side(), _Side()))
    labels: list[Label] = field(default_factory=list)
    time_wait: list[tuple[int, int]] = field(default_factory=list)

    def move(self, i: int, side: int, state: str) -> int | None:
        """Change a side's state; the index of the label that says so (None: no change)."""
        s = self.sides[side]
        if s.state == state:
            return None
        s.state = state
        s.tentative_close_wait = None
        if state == "TIME_WAIT":
            self.time_wait.append((side, i))
        return self._label(i, side, state, STATE)

    def note(self, i: int, side: int, text: str) -> None:
        self._label(i, side, text, NOTE)

    def _label(self, i: int, side: int, text: str, kind: int) -> int:
        """Several changes of one side at one segment read as one label: FIN_WAIT_2 → TIME_WAIT."""
        for at in range(len(self.labels) - 1, max(-1, len(self.labels) - 4), -1):
            j, s, old, k = self.labels[at]
            if (j, s, k) == (i, side, kind):
                self.labels[at] = (i, side, f"{old} → {text}", kind)
                return at
        self.labels.append((i, side, text, kind))
        return len(self.labels) - 1

    def _undo_close_wait(self, at: int) -> None:
        i, side, text, kind = self.labels[at]
        if text == "CLOSE_WAIT":
            del self.labels[at]
        else:
            self.labels[at] = (i, side, text.removesuffix(" → CLOSE_WAIT"), kind)

    def awaiting(self) -> bool:
        return any(s.state in AWAITING_ACK for s in self.sides)

    def rst(self, i: int, sender: int) -> None:
        """An RST ends the sender's connection; the receiver's only if it accepts it. A client
        in SYN_SENT that resets an unacceptable ACK stays there and retries (RFC 9293 §3.10.7.3;
        docs/rules.md "Close verdicts" 4)."""
        r = self.sides[1 - sender]
        first = i == self.end.first_rst_at
        if self.sides[sender].state == "SYN_SENT":
            self.note(i, sender, "RST for an unexpected ACK; still SYN_SENT")
            return
        if r.state == "TIME_WAIT":
            if i == self.end.assassination_at:
                self.note(i, 1 - sender, "assassinated by RST (RFC 1337)")
                self.move(i, 1 - sender, "CLOSED")
            else:
                self.note(i, 1 - sender, "RST ignored in TIME_WAIT")
        elif r.state not in (None, "CLOSED"):
            if first and self.end.rst_class == "in_window":
                self.note(i, 1 - sender, "RST in window: challenge ACK (RFC 5961)")
            elif first and self.end.rst_class == "out_of_window":
                self.note(i, 1 - sender, "RST out of window: ignored")
            else:
                self.move(i, 1 - sender, "CLOSED")
        self.move(i, sender, "CLOSED")

    def ack(self, i: int, sender: int, rel_ack: int) -> None:
        """What the sender's ACK completes on the receiver's side: its SYN-ACK or its FIN."""
        r = self.sides[1 - sender]
        if r.state == "SYN_RECEIVED" and rel_ack >= 1:
            self.move(i, 1 - sender, "ESTABLISHED")
        if r.fin_end is not None and rel_ack >= r.fin_end:
            after = {"FIN_WAIT_1": "FIN_WAIT_2", "CLOSING": "TIME_WAIT", "LAST_ACK": "CLOSED"}.get(r.state or "")
            if after:
                self.move(i, 1 - sender, after)

    def fin(self, i: int, sender: int, fin_end: int, acks_peer_fin: bool) -> None:
        s, r = self.sides[sender], self.sides[1 - sender]
        if s.fin_end is not None and fin_end <= s.fin_end:
            if r.state == "TIME_WAIT":  # docs/rules.md "TIME_WAIT", restart
                self.note(i, 1 - sender, "FIN again: TIME_WAIT timer restarts")
            return
        s.fin_end = fin_end
        if s.state == "CLOSE_WAIT" and r.fin_end is not None and not acks_peer_fin:
            # Crossing FINs: the sender had not received the peer's FIN when it sent its own.
            if s.tentative_close_wait is not None:
                self._undo_close_wait(s.tentative_close_wait)
            self.move(i, sender, "FIN_WAIT_1")
            self.move(i, sender, "CLOSING")
        elif s.state == "CLOSE_WAIT":
            self.move(i, sender, "LAST_ACK")
        elif s.state not in ("FIN_WAIT_1", "FIN_WAIT_2", "CLOSING", "TIME_WAIT", "LAST_ACK", "CLOSED"):
            self.move(i, sender, "FIN_WAIT_1")
        if r.state in ("ESTABLISHED", "SYN_RECEIVED"):
            r.tentative_close_wait = self.move(i, 1 - sender, "CLOSE_WAIT")
        elif r.state == "FIN_WAIT_1":
            self.move(i, 1 - sender, "CLOSING")
        elif r.state == "FIN_WAIT_2":
            self.move(i, 1 - sender, "TIME_WAIT")


def states_of(direction: I64, flags: I64, rel_seq: I64, rel_ack: I64, payload: I64,
              end: FlowEnd) -> tuple[list[Label], list[tuple[int, int]]]:
    """Labels of state changes, and where each side's TIME_WAIT began (side, segment index)."""
    m = _Machine(end)
    n = len(direction)
    special = np.flatnonzero((flags & (SYN | FIN | RST)) != 0)
    i = 0
    while i < n:
        sender, f = int(direction[i]), int(flags[i])
        if f & RST:
            m.rst(i, sender)
        elif f & SYN:
            if f & ACK:
                m.move(i, sender, "SYN_RECEIVED")
                if m.sides[1 - sender].state in (None, "SYN_SENT"):
                    m.move(i, 1 - sender, "ESTABLISHED")
            else:
                m.move(i, sender, "SYN_SENT")
        else:
            if m.sides[CLIENT].state is None and m.sides[SERVER].state is None:
                m.move(i, CLIENT, "ESTABLISHED")  # caught midstream
                m.move(i, SERVER, "ESTABLISHED")
            if f & ACK:
                m.ack(i, sender, int(rel_ack[i]))
            if f & FIN:
                peer_fin = m.sides[1 - sender].fin_end
                acks = bool(f & ACK) and peer_fin is not None and int(rel_ack[i]) >= peer_fin
                m.fin(i, sender, int(rel_seq[i] + payload[i]) + 1, acks)
        if m.awaiting():
            i += 1
        else:
            at = int(np.searchsorted(special, i + 1))
            i = int(special[at]) if at < len(special) else n
    return m.labels, m.time_wait
