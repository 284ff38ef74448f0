"""Which packets belong to which flows: a capture read again for some flows of an analysis.

The per-flow table keeps no packets. What needs a flow's own packets (the report's ladders,
the frames Wireshark is given) reads the capture a second time and keeps only the packets of
the wanted flows, selected in bulk by 4-tuple, carrier and time span: a packet belongs to the
latest wanted incarnation on its 4-tuple and carrier starting at or before it and not yet
over. Flows come as the analysis's own columns (numpy), or some rows of them (`RowsOf`).
A file whose writer marked where its times lie (live --write) is read only where they can be.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from .options import Options
from .packed import distinct_objects
from .read import CaptureInfo, Mark
from .read.ranges import Cut
from .source import Decoding, open_source

I64 = npt.NDArray[np.int64]
Columns = Mapping[str, npt.NDArray[Any]]  # the analysis's columns (Analysis.columns), or some rows of them

IPV4_MAPPED = 0xFFFF00000000  # decode.py's ::ffff:a.b.c.d
# One key per packet and direction: where it was carried, then the two endpoints.
KEY = np.dtype([("ctx", "<u4"), ("port_a", "<u2"), ("port_b", "<u2"), ("a_hi", "<u8"), ("a_lo", "<u8"),
                 ("b_hi", "<u8"), ("b_lo", "<u8")])
_SPREAD = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio: a product with it spreads a word's bits
# A digest's low bits, as flags of 1 MB: 20,000 wanted 4-tuples leave 2 % of other packets to search.
_MAYBE_MASK = np.uint64((1 << 20) - 1)


def ip_words(ip: str) -> tuple[int, int]:
    """An address as decode.py keys it: (high, low) 64-bit words, IPv4 mapped into IPv6."""
    addr = ipaddress.ip_address(ip)
    value = int(addr) | IPV4_MAPPED if addr.version == 4 else int(addr)
    return value >> 64, value & (2**64 - 1)


@dataclass(slots=True)
class Matched:
    """Packets of the wanted flows: flow index, direction and the header fields a ladder shows."""

    flow: I64
    direction: I64
    ts: npt.NDArray[np.float64]
    frame: I64
    flags: I64
    seq: I64
    ack: I64
    payload: I64

    def take(self, idx: I64 | npt.NDArray[np.bool_]) -> Matched:
        return Matched(*(getattr(self, f.name)[idx] for f in fields(self)))


def _address_words(ips: npt.NDArray[np.object_]) -> npt.NDArray[np.uint64]:
    """Each address as (high, low) words; converted once per distinct address (few of them)."""
    distinct, codes = distinct_objects(np.asarray(ips, object))
    words = np.array([ip_words(str(ip)) for ip in distinct], np.uint64).reshape(-1, 2)
    out: npt.NDArray[np.uint64] = words[codes]
    return out


# The carrier's number and the capture of the run share a key's `ctx`: a packet belongs to flows
# of its own capture only (two captures of one run may hold the same 4-tuple at the same time:
# the two points of one path, points/).
CAPTURE_SHIFT = 24


def _flow_keys(flows: Columns) -> npt.NDArray[np.void]:
    client, server = _address_words(flows["client_ip"]), _address_words(flows["server_ip"])
    keys = np.zeros(len(client), KEY)
    capture = np.asarray(flows["capture"], np.uint32) if "capture" in flows else np.zeros(len(client), np.uint32)
    keys["ctx"] = np.asarray(flows["ctx"], np.uint32) | capture << CAPTURE_SHIFT  # carriers.Contexts' numbers
    keys["port_a"] = flows["client_port"]
    keys["port_b"] = flows["server_port"]
    keys["a_hi"], keys["a_lo"] = client[:, 0], client[:, 1]
    keys["b_hi"], keys["b_lo"] = server[:, 0], server[:, 1]
    return keys.view("V40").ravel()


def _digest(key: npt.NDArray[np.void]) -> npt.NDArray[np.uint64]:
    """One 64-bit word per KEY for a hash lookup: carrier and ports side by side, the address
    words mixed in. Equal keys digest alike; different ones almost never (`_Tuples` checks)."""
    h: npt.NDArray[np.uint64] = key["ctx"].astype(np.uint64) | key["port_a"].astype(np.uint64) << np.uint64(32) \
        | key["port_b"].astype(np.uint64) << np.uint64(48)
    for word in ("a_hi", "a_lo", "b_hi", "b_lo"):
        h = (h ^ key[word]) * _SPREAD  # wraps around: a hash, not a number
        h ^= h >> np.uint64(29)
    return h


class Tuples:
    """The wanted 4-tuples with their carrier (sorted, distinct KEYs as V40), found for a batch
    of packet keys by a hash lookup of their digests, every hit checked against the whole key.
    Should two wanted keys share a digest, a sorted search on the whole keys does instead."""

    def __init__(self, keys: npt.NDArray[np.void]) -> None:
        self.keys = keys
        digests = _digest(keys.view(KEY))
        self.by_digest_order = np.argsort(digests)
        self.digests = digests[self.by_digest_order]
        self.by_digest = bool(np.all(self.digests[1:] != self.digests[:-1]))
        # Which low bits a wanted digest has: most packets are ruled out by one lookup here,
        # and only the rest searched for among the sorted digests.
        self.maybe = np.zeros(int(_MAYBE_MASK) + 1, bool)
        self.maybe[(digests & _MAYBE_MASK).astype(np.intp)] = True

    def find(self, key: npt.NDArray[np.void]) -> I64:
        """The position in `keys` of each packet key (a KEY array), -1 where it is not wanted."""
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


def stretches(file: CaptureInfo, flows: Columns) -> list[tuple[Mark, int]]:
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


def match(files: Sequence[CaptureInfo], flows: Columns, options: Options) -> Matched:
    """Every packet of the wanted flows' 4-tuples, from all files (frame numbers run on); of a
    file its writer marked (live --write), only the stretches that can hold them."""
    wanted = _flow_keys(flows)
    tuple_keys, tuple_of_flow = np.unique(wanted, return_inverse=True)
    tuples = Tuples(tuple_keys)
    ports = np.unique(np.concatenate([np.asarray(flows["client_port"], np.int64),
                                      np.asarray(flows["server_port"], np.int64)]))
    parts: list[dict[str, npt.NDArray[Any]]] = []
    frames_before = 0
    # Decoded as the analysis decoded them (`--reader`, and `auto`'s hand-off: a flow scapy or
    # tshark read gets its ladder too); read in the analysis's order, carriers get its numbers.
    decoding = Decoding(options.reader)
    for file, (mark, stop) in ((f, s) for f in files for s in stretches(f, flows)):
        if stop < 0:
            source = open_source(file.path, decoding, options.chunk_bytes, frames_before)
        else:
            source = open_source(file.path, decoding, options.chunk_bytes, mark.frames, (mark.offset, stop),
                                 Cut(mark.offset, tuple(file.interfaces[:mark.interfaces])))
        for p, _ in source:
            pre = np.flatnonzero(np.isin(p.sport, ports) & np.isin(p.dport, ports))
            if not len(pre):
                continue
            key = np.zeros(len(pre), KEY)
            key["ctx"] = p.ctx[pre].astype(np.uint32) | np.uint32(file.capture) << CAPTURE_SHIFT
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
        return Matched(empty, empty, np.zeros(0), empty, empty, empty, empty, empty)
    cols = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    flow = incarnation_of(cols["tuple"], cols["ts"], tuple_of_flow.ravel(), _in_own_clock(flows))
    keep = flow >= 0
    return Matched(flow[keep], cols["direction"][keep], cols["ts"][keep], cols["frame"][keep],
                    cols["flags"][keep], cols["seq"][keep], cols["ack"][keep], cols["payload"][keep])


def _in_own_clock(flows: Columns) -> Columns:
    """The flows' first and last times in their own capture's clock: a capture joined to the
    run's first as another point of one path holds its rows' times in the first's clock
    (points/join.py: `clock_offset_s`, on every row of both)."""
    if "clock_offset_s" not in flows or "capture" not in flows:
        return flows
    offset = np.asarray(flows["clock_offset_s"], np.float64)
    shift = np.where((np.asarray(flows["capture"], np.int64) != 0) & ~np.isnan(offset), offset, 0.0)
    if not shift.any():
        return flows
    return {"first_ts": np.asarray(flows["first_ts"], np.float64) + shift,
            "last_ts": np.asarray(flows["last_ts"], np.float64) + shift}


def incarnation_of(tuple_id: I64, ts: npt.NDArray[np.float64], tuple_of_flow: I64, flows: Columns) -> I64:
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
