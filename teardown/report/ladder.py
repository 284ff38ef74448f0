"""Segments of chosen flows, read again from the capture (matching.py) -> the data of their
ladder diagrams.

The per-flow table keeps no segments, so the capture is read a second time and only the packets
of the flows to draw are kept (matching.py). The flows
come as the analysis's own columns (numpy, a missing value NaN or None), not as a DataFrame:
a Parquet file is written with the ladders in it and without pandas. A ladder keeps
the handshake, every SYN/FIN/RST with the segment after it and the last segments; it gives
relative seq/ack per side, marks retransmissions, and writes each side's TCP state where it
changes (`states.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..decode import ACK, FIN, RST, SYN
from ..matching import match
from ..options import Options
from ..read import CaptureInfo
from .states import FlowEnd, states_of

I64 = npt.NDArray[np.int64]
Columns = Mapping[str, npt.NDArray[Any]]  # the analysis's columns (Analysis.columns), or some rows of them
HEAD_SEGMENTS = 3  # the handshake
TAIL_SEGMENTS = 30  # the teardown is at the end
MAX_SEGMENTS = 60  # per ladder, whatever the flow did: SYNs, FINs and RSTs past the head and tail
# Segments drawn in one report at most: about 2.5 MB of JSON. Flows with a finding come first,
# then the others in time order; a larger capture leaves the rest undrawn (the page says so).
SEGMENT_BUDGET = 100_000


@dataclass(slots=True)
class Ladder:
    """One ladder diagram: its `shape` (what most flows of one kind share: directions, flags,
    relative seq/ack, lengths, retransmissions, gaps, state labels, TIME_WAIT starts, all JSON
    ready) and what is the flow's own: times, frame numbers, ISNs. `pack` stores each shape once.
    """

    shape: dict[str, Any]
    times_us: list[int]  # since the previous drawn segment (the first: since the flow's first packet)
    frames: list[int]  # since the previous drawn segment's frame (the first: its frame number)
    isn: tuple[int | None, int | None]  # client's and server's ISN (first seq when no SYN was seen)
    # A flow that reused its 4-tuple during TIME_WAIT: the position of the incarnation whose
    # TIME_WAIT it met, whose end is drawn before it (reuse.py joins the two when drawing, so
    # the old flow's segments are stored once).
    previous: int | None = None


def pack(ladders: dict[int, Ladder]) -> dict[str, Any]:
    """Ladders for JSON, each distinct shape written once (a burst of alike connections shares
    one): {"shapes": [...], "flows": {position: [shape, isn client, isn server, times, frames]}},
    a reusing flow's list followed by the position of its previous incarnation."""
    shapes: dict[int, tuple[int, dict[str, Any]]] = {}
    flows: dict[str, list[Any]] = {}
    for row, lad in sorted(ladders.items()):
        key = id(lad.shape)  # `ladders` and `unpack` hand alike flows one shared shape
        if key not in shapes:
            shapes[key] = (len(shapes), lad.shape)
        flows[str(row)] = [shapes[key][0], lad.isn[0], lad.isn[1], lad.times_us, lad.frames]
        if lad.previous is not None:
            flows[str(row)].append(lad.previous)
    return {"shapes": [shape for _, shape in shapes.values()], "flows": flows}


def unpack(packed: dict[str, Any]) -> dict[int, Ladder]:
    shapes = packed["shapes"]
    return {int(row): Ladder(shapes[f[0]], list(f[3]), list(f[4]), (f[1], f[2]), int(f[5]) if len(f) > 5 else None)
            for row, f in packed["flows"].items()}


def rows_to_draw(flows: Columns, flags: npt.NDArray[np.int64], worthy_bits: int) -> I64:
    """Positions of the flows to draw within SEGMENT_BUDGET: flows with a finding first, taking
    turns between findings (the first of each, then the second of each...) so a common one
    (reuse on a busy client) cannot crowd out a rare one; then the others in time order."""
    packets = sum(np.nan_to_num(np.asarray(flows[side], np.float64)) for side in ("packets_c2s", "packets_s2c"))
    cost = np.minimum(np.asarray(packets, np.int64), MAX_SEGMENTS)
    turn = np.full(len(cost), np.iinfo(np.int64).max)
    for bit in range(worthy_bits.bit_length()):
        if worthy_bits >> bit & 1:
            rows = np.flatnonzero(flags >> bit & 1)
            turn[rows] = np.minimum(turn[rows], np.arange(len(rows)))
    order = np.lexsort((np.arange(len(cost)), turn))
    return np.sort(order[np.cumsum(cost[order]) <= SEGMENT_BUDGET])


def _signed32(x: I64) -> I64:
    x = x % (1 << 32)
    return np.where(x >= 1 << 31, x - (1 << 32), x)


def _first_of_group(group: I64, mask: npt.NDArray[np.bool_], values: I64, n_groups: int) -> I64:
    """The value at the first row of each group where `mask` holds (rows in time order), else -1."""
    out = np.full(n_groups, -1, np.int64)
    rows = np.flatnonzero(mask)
    uniq, first = np.unique(group[rows], return_index=True)
    out[uniq] = values[rows[first]]
    return out


def ladders(files: Sequence[CaptureInfo], flows: Columns, options: Options) -> dict[int, Ladder]:
    """The ladder of every flow in `flows` (columns of the analysis's, with its carrier numbers
    `ctx`), keyed by its position there; flows whose packets are not in the capture (a different
    file given) get none."""
    count = len(flows["first_ts"])
    if not count:
        return {}
    m = match(files, flows, options)
    order = np.lexsort((m.frame, m.ts, m.flow))
    # Copies seen at other points are other carriers' packets: they do not match (copies.py).
    m = m.take(order)
    group = m.flow * 2 + m.direction
    n_groups = 2 * count
    syn = (m.flags & SYN) != 0
    isn = np.where(_first_of_group(group, syn, m.seq, n_groups) >= 0,
                   _first_of_group(group, syn, m.seq, n_groups),
                   _first_of_group(group, np.ones(len(group), bool), m.seq, n_groups))
    rel_seq = _signed32(m.seq - isn[group])
    peer_isn = isn[group ^ 1]
    rel_ack = np.where(peer_isn >= 0, _signed32(m.ack - peer_isn), _signed32(m.ack))
    rel_ack[(m.flags & ACK) == 0] = 0  # no ACK flag: the field means nothing (and alike flows stay alike)
    retrans = _retransmissions(group, rel_seq, m.payload, m.flags)
    starts = np.searchsorted(m.flow, np.arange(count + 1)).tolist()
    rows = FlowEnd.of_flows(flows)
    ts_us = np.round((m.ts - m.ts[np.minimum(np.asarray(starts)[m.flow], len(m.ts) - 1)]) * 1e6).astype(np.int64)
    # A flow's shape rests on its segments' fields and its end: its records' bytes and the end
    # are the key under which alike flows share one shape.
    record = np.empty(len(m.flow), [("dir", "<i8"), ("flags", "<i8"), ("seq", "<i8"), ("ack", "<i8"), ("len", "<i8"),
                                    ("retr", "?")])
    record["dir"], record["flags"], record["seq"], record["ack"] = m.direction, m.flags, rel_seq, rel_ack
    record["len"], record["retr"] = m.payload, retrans
    raw, width = record.tobytes(), record.itemsize
    shapes: dict[tuple[int | None, int | None, str | None, bytes], tuple[dict[str, Any], list[int]]] = {}
    drawn: list[tuple[int, dict[str, Any], int]] = []  # (flow, shape, segments kept)
    kept_at: list[int] = []  # positions in `m` of every kept segment, flow after flow
    for i in range(count):
        a, b = starts[i], starts[i + 1]
        if a == b:
            continue
        end = FlowEnd.at(m.ts[a:b], rows[i])
        key = (end.first_rst_at, end.assassination_at, end.rst_class, raw[a * width:b * width])
        if key not in shapes:
            shapes[key] = _shape(m.direction[a:b], m.flags[a:b], rel_seq[a:b], rel_ack[a:b], m.payload[a:b],
                                 retrans[a:b], end)
        shape, kept = shapes[key]
        drawn.append((i, shape, len(kept)))
        if len(kept) == b - a:  # short flows keep every segment
            kept_at += range(a, b)
        else:
            kept_at += [a + k for k in kept]
    # Times and frame numbers as steps from the previous kept segment, the first from zero: the
    # flow's first packet, frame 0.
    at = np.asarray(kept_at, np.int64)
    first = np.zeros(len(at), bool)
    first[np.cumsum([0] + [n for _, _, n in drawn])[:-1]] = True
    times, frames = ts_us[at], m.frame[at]
    time_steps = np.where(first, times, times - np.roll(times, 1)).tolist()
    frame_steps = np.where(first, frames, frames - np.roll(frames, 1)).tolist()
    isns = [None if x < 0 else x for x in isn.tolist()]
    out: dict[int, Ladder] = {}
    done = 0
    for i, shape, n in drawn:
        out[i] = Ladder(shape, time_steps[done:done + n], frame_steps[done:done + n], (isns[2 * i], isns[2 * i + 1]))
        done += n
    return out


def _retransmissions(group: I64, rel_seq: I64, payload: I64, flags: I64) -> npt.NDArray[np.bool_]:
    """Segments that consume sequence space (data, SYN, FIN) already sent by the same side."""
    consumed = payload + ((flags & SYN) != 0) + ((flags & FIN) != 0)
    end = rel_seq + consumed
    by_group = np.argsort(group, kind="stable")  # time order kept within each side
    g, e = group[by_group], end[by_group]
    shifted = g * (1 << 34) + (e + (1 << 32))
    running = np.maximum.accumulate(shifted)
    before = np.concatenate([[-1], running[:-1]])
    first_of_group = np.concatenate([[True], g[1:] != g[:-1]])
    prev_end = np.where(first_of_group, np.iinfo(np.int64).min, before - g * (1 << 34) - (1 << 32))
    out = np.zeros(len(group), bool)
    out[by_group] = (consumed[by_group] > 0) & (e <= prev_end)
    return out


def _kept(flags: I64, labelled: set[int]) -> list[int]:
    n = len(flags)
    if n <= HEAD_SEGMENTS + TAIL_SEGMENTS:
        return list(range(n))
    keep = set(range(HEAD_SEGMENTS)) | set(range(n - TAIL_SEGMENTS, n)) | labelled
    special = np.flatnonzero((flags & (SYN | FIN | RST)) != 0).tolist()
    room = MAX_SEGMENTS - len(keep)
    for i in special:
        if room <= 0:
            break
        for j in (i, i + 1):
            if j < n and j not in keep and room > 0:
                keep.add(j)
                room -= 1
    return sorted(keep)


def _shape(direction: I64, flags: I64, rel_seq: I64, rel_ack: I64, payload: I64, retrans: npt.NDArray[np.bool_],
           end: FlowEnd) -> tuple[dict[str, Any], list[int]]:
    """What a ladder draws apart from times and frame numbers, and which segments it keeps."""
    labels, time_wait = states_of(direction, flags, rel_seq, rel_ack, payload, end)
    kept = _kept(flags, {lab[0] for lab in labels} | {i for _, i in time_wait})
    position = {old: new for new, old in enumerate(kept)}
    gaps = [[position[i], i - before - 1] for before, i in zip([-1, *kept], kept) if i != before + 1]
    if kept[-1] != len(flags) - 1:
        gaps.append([len(kept), len(flags) - 1 - kept[-1]])
    has_ack = (flags[kept] & ACK) != 0
    shape = {
        "dir": direction[kept].tolist(), "flags": flags[kept].tolist(), "seq": rel_seq[kept].tolist(),
        "ack": [int(a) if has else None for a, has in zip(rel_ack[kept].tolist(), has_ack.tolist())],
        "len": payload[kept].tolist(), "retr": retrans[kept].astype(int).tolist(), "gap": gaps,
        "lab": [[position[i], side, text, kind] for i, side, text, kind in labels],
        "tw": [[side, position[i]] for side, i in time_wait], "n": len(flags)}
    return shape, kept
