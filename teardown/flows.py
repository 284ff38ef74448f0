"""Packet columns -> incarnation records: the facts of every connection, carried across chunks.

The flow table (`_flows.c`) keeps one record per incarnation and updates it segment by segment
in capture order: unwrapped sequence numbers, the first SYN, FIN and RST of each direction,
the ACK of the peer's FIN, the state an RST met, and so on. Records are handed out once nothing
can change them any more (`retire`), so memory follows the connections alive, not the capture.
A failed connection attempt (a scan's or a flood's SYNs, a refused connect) that has stopped
retrying waits out its hold frozen into a few words, so a million of them fit in memory.

A record's facts are per canonical direction: `rec["packets"][:, 0]` is what endpoint A (the
smaller address and port) sent, `rec["packets"][:, 1]` what B sent. Roles and verdicts come
later (verdicts.py). Frames and sequence numbers never seen are `NONE`.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import IntFlag
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _flows  # type: ignore[attr-defined]
from .decode import Packets

# One array per fact: shape (n,) for an incarnation's own facts, (n, 2) for the facts of each
# canonical direction, (n, 2, k) for facts with k values per direction.
Records = dict[str, npt.NDArray[Any]]
RETIRE_SLICE = 16384  # incarnations per slice (whole tuples): ~12 MB of records (and their heads) at a time
# Incarnations held before those of tuples still in use are handed out early (with neighbours
# as context, which costs): 3/4 of a 65,536-record pool (~50 MB), so the pool need not grow.
EARLY_HELD = 49152


def _layout() -> tuple[list[tuple[str, str, tuple[int, ...]]], int, int]:
    """Each field's name, dtype and shape per record, in the order of the C side's blocks; the
    most head bytes a direction keeps; the value of "never seen"."""
    inc_fields, dir_fields, head_bytes, none = _flows.layout()
    out: list[tuple[str, str, tuple[int, ...]]] = []
    for name, kind, count in inc_fields:
        out.append((name, kind, (count,) if count > 1 else ()))
    for name, kind, count in dir_fields:
        out.append((name, kind, (2, count) if count > 1 else (2,)))
    return out, int(head_bytes), int(none)


LAYOUT, HEAD_BYTES, NONE = _layout()

# A record handed out, without its heads: those follow in a block as wide as the longest head
# of the slice (`head`, (k, 2, width) bytes; most slices of a busy capture hold a full one).
ROW_BYTES = sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(kind).itemsize for _name, kind, shape in LAYOUT)
# An incarnation and a tuple as held in the table (the record above is only their copy out).
INC_BYTES, TUPLE_BYTES = _flows.held()


class RstFact(IntFlag):
    """What the flow table records of an RST from S to R as it passes (`rst_cut_facts`), against
    the state both sides had reached before it; verdicts.rst_class names its class from them."""

    sender_seen = _flows.RST_SENDER_SEEN  # S had sent something other than an RST: its next sequence number is known
    ack_known = _flows.RST_ACK_KNOWN  # R had sent an ACK: what R expects next and R's window are known
    answers_ack = _flows.RST_ANSWERS_ACK  # the RST's sequence number is R's latest acknowledgment number
    zero_ack = _flows.RST_ZERO_ACK  # sequence number 0 with the ACK bit
    exact = _flows.RST_EXACT  # the sequence number is exactly what R expects next (S's next, or R's ACK)
    in_window = _flows.RST_IN_WINDOW  # beyond R's ACK, inside R's window


def _records(k: int, blob: bytes | npt.NDArray[np.uint8], head_width: int) -> Records:
    """Views of the C side's column blocks as numpy arrays (read-only, no copy)."""
    out: Records = {}
    at = 0
    for name, kind, shape in LAYOUT:
        count = k * int(np.prod(shape, dtype=np.int64))
        out[name] = np.frombuffer(blob, dtype=kind, count=count, offset=at).reshape((k,) + shape)
        at += count * np.dtype(kind).itemsize
    # The first payload bytes of each direction, head_len of them (zero beyond).
    out["head"] = np.frombuffer(blob, dtype=np.uint8, count=k * 2 * head_width, offset=at).reshape(k, 2, head_width)
    return out


class FlowTable:
    """Connections alive so far. Feed segments in capture order; take out what is finished."""

    def __init__(self, idle_gap_s: float, closed_hold_s: float, open_hold_s: float) -> None:
        self._table = _flows.new_table(idle_gap_s, closed_hold_s, open_hold_s, EARLY_HELD)
        # Reused by every retire (see _flows.c); pages are touched only as slices need them.
        self._buffer = np.empty(RETIRE_SLICE * (ROW_BYTES + 2 * HEAD_BYTES) * 5 // 4, np.uint8)

    def feed(self, p: Packets, data: npt.NDArray[np.uint8]) -> None:
        """Add segments (in capture order); `data` is the batch the payload offsets point into.
        On the way, failed connection attempts whose SYN's next retry is past due are frozen
        (losslessly: a later segment on their tuple, or the end of their hold, thaws them)."""
        _flows.feed(self._table, data, p.frame, p.ts, p.ctx, p.ip_version, p.src_hi, p.src_lo, p.dst_hi,
                    p.dst_lo, p.sport, p.dport, p.seq, p.ack, p.flags, p.window, p.payload, p.tsval, p.wscale,
                    p.payload_at, p.payload_captured)

    def retire(self, now: float) -> Iterator[Records]:
        """Records of the tuples nothing can change after `now`, removed from the table, in
        slices of about RETIRE_SLICE incarnations (all incarnations of a tuple in one slice)."""
        while True:
            k, needed, head_width = _flows.retire(self._table, now, RETIRE_SLICE, self._buffer)
            if needed:  # one tuple with more incarnations than the buffer holds
                self._buffer = np.empty(2 * needed, np.uint8)
                continue
            if not k:
                return
            # Views of the buffer: valid until the next slice, by which time they are judged.
            yield _records(k, self._buffer, head_width)

    def finish(self) -> Iterator[Records]:
        """Every record still held, as the capture ends."""
        return self.retire(float("inf"))

    def track(self) -> None:
        """Remember from now on which tuples get segments, for `peek` (live)."""
        _flows.track(self._table)

    def peek(self) -> Records | None:
        """Records of incarnations whose teardown is over (both FINs acknowledged, or an RST),
        changed since the last peek, with their neighbours as context; left in the table."""
        k, blob, head_width = _flows.peek(self._table)
        return _records(k, blob, head_width) if k else None

    def stats(self) -> dict[str, int]:
        """What the table holds: live_tuples, incarnation_slots (the pool's size),
        incarnations_held (in the pool), frozen_tuples and frozen_bytes, and bytes in all."""
        out: dict[str, int] = _flows.stats(self._table)
        return out
