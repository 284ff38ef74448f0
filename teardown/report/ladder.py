"""Segments of chosen flows, read again from the capture -> the data of their ladder diagrams.

The per-flow table keeps no segments, so the capture is read a second time and only the packets
of the flows to draw are kept, selected in bulk by 4-tuple, carrier and time span. The flows
come as the analysis's own columns (numpy, a missing value NaN or None), not as a DataFrame:
a Parquet file is written with the ladders in it and without pandas. A ladder keeps
the handshake, every SYN/FIN/RST with the segment after it and the last segments; it gives
relative seq/ack per side, marks retransmissions, and writes each side's TCP state where it
changes (`states.py`).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from ..decode import ACK, FIN, RST, SYN
from ..options import Options
from ..packed import distinct_objects
from ..read import CaptureInfo, Mark
from ..read.ranges import Cut
from ..source import Decoding, open_source
from .states import FlowEnd, states_of

I64 = npt.NDArray[np.int64]
Columns = Mapping[str, npt.NDArray[Any]]  # the analysis's columns (Analysis.columns), or some rows of them
HEAD_SEGMENTS = 3  # the handshake
TAIL_SEGMENTS = 30  # the teardown is at the end
MAX_SEGMENTS = 60  # per ladder, whatever the flow did: SYNs, FINs and RSTs past the head and tail
# Segments drawn in one report at most: about 2.5 MB of JSON. Flows with a finding come first,
# then the others in time order; a larger capture leaves the rest undrawn (the page says so).
SEGMENT_BUDGET = 100_000
IPV4_MAPPED = 0xFFFF00000000  # decode.py's ::ffff:a.b.c.d
# One key per packet and direction: where it was carried, then the two endpoints.
_KEY = np.dtype([("ctx", "<u4"), ("port_a", "<u2"), ("port_b", "<u2"), ("a_hi", "<u8"), ("a_lo", "<u8"),
                 ("b_hi", "<u8"), ("b_lo", "<u8")])
_SPREAD = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio: a product with it spreads a word's bits
# A digest's low bits, as flags of 1 MB: 20,000 wanted 4-tuples leave 2 % of other packets to search.
_MAYBE_MASK = np.uint64((1 << 20) - 1)


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


def ip_words(ip: str) -> tuple[int, int]:
    """An address as decode.py keys it: (high, low) 64-bit words, IPv4 mapped into IPv6."""
    addr = ipaddress.ip_address(ip)
    value = int(addr) | IPV4_MAPPED if addr.version == 4 else int(addr)
    return value >> 64, value & (2**64 - 1)


@dataclass(slots=True)
class _Matched:
    """Packets of the wanted flows: flow index, direction and the header fields a ladder shows."""

    flow: I64
    direction: I64
    ts: npt.NDArray[np.float64]
    frame: I64
    flags: I64
    seq: I64
    ack: I64
    payload: I64

    def take(self, idx: I64 | npt.NDArray[np.bool_]) -> _Matched:
        return _Matched(*(getattr(self, f.name)[idx] for f in fields(self)))


def _address_words(ips: npt.NDArray[np.object_]) -> npt.NDArray[np.uint64]:
    """Each address as (high, low) words; converted once per distinct address (few of them)."""
    distinct, codes = distinct_objects(np.asarray(ips, object))
    words = np.array([ip_words(str(ip)) for ip in distinct], np.uint64).reshape(-1, 2)
    out: npt.NDArray[np.uint64] = words[codes]
    return out


def _flow_keys(flows: Columns) -> npt.NDArray[np.void]:
    client, server = _address_words(flows["client_ip"]), _address_words(flows["server_ip"])
    keys = np.zeros(len(client), _KEY)
    keys["ctx"] = flows["ctx"]  # carriers.Contexts' numbers, as the analysis gave them
    keys["port_a"] = flows["client_port"]
    keys["port_b"] = flows["server_port"]
    keys["a_hi"], keys["a_lo"] = client[:, 0], client[:, 1]
    keys["b_hi"], keys["b_lo"] = server[:, 0], server[:, 1]
    return keys.view("V40").ravel()


def _digest(key: npt.NDArray[np.void]) -> npt.NDArray[np.uint64]:
    """One 64-bit word per _KEY for a hash lookup: carrier and ports side by side, the address
    words mixed in. Equal keys digest alike; different ones almost never (`_Tuples` checks)."""
    h: npt.NDArray[np.uint64] = key["ctx"].astype(np.uint64) | key["port_a"].astype(np.uint64) << np.uint64(32) \
        | key["port_b"].astype(np.uint64) << np.uint64(48)
    for word in ("a_hi", "a_lo", "b_hi", "b_lo"):
        h = (h ^ key[word]) * _SPREAD  # wraps around: a hash, not a number
        h ^= h >> np.uint64(29)
    return h


class _Tuples:
    """The wanted 4-tuples with their carrier (sorted, distinct _KEYs as V40), found for a batch
    of packet keys by a hash lookup of their digests, every hit checked against the whole key.
    Should two wanted keys share a digest, a sorted search on the whole keys does instead."""

    def __init__(self, keys: npt.NDArray[np.void]) -> None:
        self.keys = keys
        digests = _digest(keys.view(_KEY))
        self.by_digest_order = np.argsort(digests)
        self.digests = digests[self.by_digest_order]
        self.by_digest = bool(np.all(self.digests[1:] != self.digests[:-1]))
        # Which low bits a wanted digest has: most packets are ruled out by one lookup here,
        # and only the rest searched for among the sorted digests.
        self.maybe = np.zeros(int(_MAYBE_MASK) + 1, bool)
        self.maybe[(digests & _MAYBE_MASK).astype(np.intp)] = True

    def find(self, key: npt.NDArray[np.void]) -> I64:
        """The position in `keys` of each packet key (a _KEY array), -1 where it is not wanted."""
        flat = key.view("V40").ravel()
        if self.by_digest:
            digests = _digest(key)
            at: I64 = np.full(len(digests), -1, np.int64)
            maybe = np.flatnonzero(self.maybe[(digests & _MAYBE_MASK).astype(np.intp)])
            near = np.minimum(np.searchsorted(self.digests, digests[maybe]), len(self.digests) - 1)
            at[maybe] = np.where(self.digests[near] == digests[maybe], self.by_digest_order[near], -1)
        else:
            at = np.minimum(np.searchsorted(self.keys, flat), len(self.keys) - 1).astype(np.int64)
        found = np.flatnonzero(at >= 0)
        at[found[self.keys[at[found]] != flat[found]]] = -1
        return at


MARK_SLACK_S = 1e-6


def _stretches(file: CaptureInfo, flows: Columns) -> list[tuple[Mark, int]]:
    """The stretches of a file its writer marked that can hold a packet of the wanted flows
    (times within some flow's first to last packet), each as its first mark and where it stops;
    the file read whole (a mark at 0, and no end) when it has no marks."""
    if not file.marks:
        return [(Mark(0, 0, math.nan, math.nan, 0), -1)]
    first = np.asarray(flows["first_ts"], np.float64)
    last = np.asarray(flows["last_ts"], np.float64)
    by_start = np.argsort(first, kind="stable")
    latest_end = np.maximum.accumulate(last[by_start])  # of the flows starting up to each
    # Widened by a microsecond: a time read back from the file may differ from the writer's by
    # its last bit, and a stretch read for nothing costs less than a packet missed.
    low = np.array([m.first_ts for m in file.marks]) - MARK_SLACK_S
    high = np.array([m.last_ts for m in file.marks]) + MARK_SLACK_S
    started = np.searchsorted(first[by_start], high, side="right")  # flows starting by the stretch's end
    wanted = (started > 0) & (latest_end[np.maximum(started - 1, 0)] >= low)
    out: list[tuple[Mark, int]] = []
    ends = [m.offset for m in file.marks[1:]] + [file.size_bytes]
    for i in np.flatnonzero(wanted).tolist():
        if out and out[-1][1] == file.marks[i].offset:  # runs on from the previous stretch
            out[-1] = (out[-1][0], ends[i])
        else:
            out.append((file.marks[i], ends[i]))
    return out


def _match(files: Sequence[CaptureInfo], flows: Columns, options: Options) -> _Matched:
    """Every packet of the wanted flows' 4-tuples, from all files (frame numbers run on); of a
    file its writer marked (live --write), only the stretches that can hold them."""
    wanted = _flow_keys(flows)
    tuple_keys, tuple_of_flow = np.unique(wanted, return_inverse=True)
    tuples = _Tuples(tuple_keys)
    ports = np.unique(np.concatenate([np.asarray(flows["client_port"], np.int64),
                                      np.asarray(flows["server_port"], np.int64)]))
    parts: list[dict[str, npt.NDArray[Any]]] = []
    frames_before = 0
    # Decoded as the analysis decoded them (`--reader`, and `auto`'s hand-off: a flow scapy or
    # tshark read gets its ladder too); read in the analysis's order, carriers get its numbers.
    decoding = Decoding(options.reader)
    for file, (mark, stop) in ((f, s) for f in files for s in _stretches(f, flows)):
        if stop < 0:
            source = open_source(file.path, decoding, options.chunk_bytes, frames_before)
        else:
            source = open_source(file.path, decoding, options.chunk_bytes, mark.frames, (mark.offset, stop),
                                 Cut(mark.offset, tuple(file.interfaces[:mark.interfaces])))
        for p, _ in source:
            pre = np.flatnonzero(np.isin(p.sport, ports) & np.isin(p.dport, ports))
            if not len(pre):
                continue
            key = np.zeros(len(pre), _KEY)
            key["ctx"] = p.ctx[pre]
            for direction, (a, b) in enumerate((("src", "dst"), ("dst", "src"))):
                key["port_a"], key["port_b"] = (p.sport[pre], p.dport[pre]) if a == "src" else (p.dport[pre], p.sport[pre])
                key["a_hi"], key["a_lo"] = getattr(p, f"{a}_hi")[pre], getattr(p, f"{a}_lo")[pre]
                key["b_hi"], key["b_lo"] = getattr(p, f"{b}_hi")[pre], getattr(p, f"{b}_lo")[pre]
                at = tuples.find(key)
                hit = np.flatnonzero(at >= 0)
                if not len(hit):
                    continue
                idx = pre[hit]
                parts.append({
                    "tuple": at[hit].astype(np.int64), "direction": np.full(len(hit), direction, np.int64),
                    "ts": p.ts[idx], "frame": p.frame[idx], "flags": p.flags[idx].astype(np.int64),
                    "seq": p.seq[idx].astype(np.int64), "ack": p.ack[idx].astype(np.int64),
                    "payload": p.payload[idx].astype(np.int64)})
        if stop < 0:
            frames_before += source.info.frames
    if not parts:
        empty = np.zeros(0, np.int64)
        return _Matched(empty, empty, np.zeros(0), empty, empty, empty, empty, empty)
    cols = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    flow = _incarnation_of(cols["tuple"], cols["ts"], tuple_of_flow.ravel(), flows)
    keep = flow >= 0
    return _Matched(flow[keep], cols["direction"][keep], cols["ts"][keep], cols["frame"][keep],
                    cols["flags"][keep], cols["seq"][keep], cols["ack"][keep], cols["payload"][keep])


def _incarnation_of(tuple_id: I64, ts: npt.NDArray[np.float64], tuple_of_flow: I64, flows: Columns) -> I64:
    """For each packet, the wanted flow on its 4-tuple whose [first_ts, last_ts] holds it, or -1.

    A packet belongs to the latest flow start at or before it on its tuple (of flows starting
    together, the last in `flows`). Times become ranks among the flows' distinct starts, so
    (tuple, time) is one integer that sorts as the pair does.
    """
    first = np.asarray(flows["first_ts"], np.float64)
    last = np.asarray(flows["last_ts"], np.float64)
    starts = np.unique(first)
    span = len(starts) + 1  # ranks -1 (before every start) to len(starts) - 1
    flow_key = tuple_of_flow * span + np.searchsorted(starts, first)
    packet_key = tuple_id * span + np.searchsorted(starts, ts, side="right") - 1
    by_key = np.argsort(flow_key, kind="stable")
    at = np.searchsorted(flow_key[by_key], packet_key, side="right") - 1
    candidate = by_key[np.maximum(at, 0)]
    inside = (at >= 0) & (tuple_of_flow[candidate] == tuple_id) & (ts <= last[candidate])
    return np.where(inside, candidate, -1)


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
    m = _match(files, flows, options)
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
