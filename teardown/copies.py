"""Judged rows -> rows with the copies of a connection seen at other points set aside.

A capture from a SPAN session mirroring several VLANs, a bridge, a router captured on two
interfaces or a tunnel endpoint holds the same connection at several points: each point's
segments are byte-for-byte the same segments, microseconds to milliseconds apart. Every point
is tracked on its own (its carrier is part of the connection's identity, carriers.py), so each
point's copy is judged on its own segments, whole and consistent, and never makes another
point's segments look like retransmissions. Here the copies are told apart from different
connections that share a 4-tuple (two VLANs reusing one address plan): a copy has the same
first sequence number in a direction, and overlaps in time. The earliest point's row stays;
the others are counted on it (`also_seen_on`, `duplicates_seen`) and dropped, so host views,
TIME_WAIT counts and reports count the connection once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .carriers import Point
from .flows import NONE

Columns = dict[str, npt.NDArray[Any]]
I64 = npt.NDArray[np.int64]

# Copies of one segment are microseconds to tens of milliseconds apart: two points' rows of
# one connection start and end within this of each other (a capture started between two copies
# of the first segment shifts the start by that much).
SLACK_S = 1.0


@dataclass(slots=True)
class SetAside:
    """What `set_aside` dropped, for the summary."""

    connections: int = 0  # rows that had copies
    packets: Counter[str] = field(default_factory=Counter)  # point -> segments set aside there

    def __bool__(self) -> bool:
        return self.connections > 0


def set_aside(c: Columns, points: Mapping[int, Point]) -> tuple[npt.NDArray[np.bool_], SetAside]:
    """Which rows of `c` to keep, with `also_seen_on` and `duplicates_seen` written on the rows
    kept (in place), and what was dropped. `c` holds whole columns in time order."""
    n = len(c["ctx"])
    keep = np.ones(n, bool)
    ctx = np.asarray(c["ctx"], np.int64)
    if n < 2 or ctx.min() == ctx.max():
        return keep, SetAside()
    copy_of = np.full(n, -1, np.int64)  # row -> the row it is a copy of
    # Each endpoint as one number: a hash of its address (64-bit SipHash: no collisions to fear
    # among the addresses of a capture), times a prime, xor its port.
    client = np.fromiter(map(hash, c["client_ip"]), np.int64, n) * 1000003 ^ np.asarray(c["client_port"], np.int64)
    server = np.fromiter(map(hash, c["server_ip"]), np.int64, n) * 1000003 ^ np.asarray(c["server_port"], np.int64)
    ends = (client, server)
    (a, b), groups = _candidates(c, ctx, ends)
    same = _copies(c, ends, a, b)
    copy_of[b[same]] = a[same]
    for rows in groups:  # more than one incarnation, or more than two points: row by row
        primaries: list[int] = []
        for r in rows:  # in time order: a copy's primary came before it (or with it)
            p = next((p for p in primaries if _copies(c, ends, np.array([p]), np.array([r]))[0]), None)
            if p is None:
                primaries.append(r)
            else:
                copy_of[r] = p
    copies = np.flatnonzero(copy_of >= 0)
    if not len(copies):
        return keep, SetAside()
    keep[copies] = False
    primary, where = copy_of[copies], ctx[copies]
    packets = np.asarray(c["packets_c2s"] + c["packets_s2c"], np.int64)[copies]
    c["duplicates_seen"] += np.bincount(primary, packets, n).astype(np.int64)
    numbers, inverse = np.unique(where, return_inverse=True)
    names = np.array([str(points.get(k, f"carrier {k}")) for k in numbers.tolist()], object)
    report = SetAside(len(np.unique(primary)), Counter(dict(zip(names.tolist(),
                                                                np.bincount(inverse, packets).astype(int).tolist()))))
    c["also_seen_on"][primary] = names[inverse]  # one copy each, the usual case; several below
    order = np.argsort(primary, kind="stable")
    repeated = np.flatnonzero(np.r_[False, primary[order][1:] == primary[order][:-1]])
    for p in np.unique(primary[order][repeated]).tolist():
        c["also_seen_on"][p] = "; ".join(sorted(set(names[inverse[primary == p]].tolist())))
    return keep, report


def _copies(c: Columns, ends: tuple[I64, I64], a: I64, b: I64) -> npt.NDArray[np.bool_]:
    """Whether row b[i] is a copy of row a[i], taken at another point: the same endpoints (either
    way round), a first sequence number in common, and overlapping times."""
    client, server = ends
    same_way = (client[a] == client[b]) & (server[a] == server[b])
    other_way = (client[a] == server[b]) & (server[a] == client[b])
    fa, fb = c["first_seq"][a], c["first_seq"][b]
    common = np.zeros(len(a), bool)
    for i in (0, 1):
        for j in (0, 1):
            common |= (fa[:, i] == fb[:, j]) & (fa[:, i] != NONE)
    first, last = c["first_ts"], c["last_ts"]
    overlap = (first[b] <= last[a] + SLACK_S) & (first[a] <= last[b] + SLACK_S)
    return np.asarray((same_way | other_way) & common & overlap & (c["ctx"][a] != c["ctx"][b]), bool)


def _candidates(c: Columns, ctx: I64, ends: tuple[I64, I64]) -> tuple[tuple[I64, I64], list[list[int]]]:
    """Rows whose endpoints (in one capture of the run) were seen at more than one point: pairs
    (earlier, later) where exactly two rows share them, in bulk, and the larger groups' rows in
    time order. Endpoints either way round: roles may be inferred differently at two points."""
    n = len(ctx)
    client, server = ends
    capture = np.asarray(c["capture"], np.int64) if "capture" in c else np.zeros(n, np.int64)
    key = (np.minimum(client, server) * 31 + np.maximum(client, server)) * 31 + capture
    order = np.lexsort((np.arange(n), key))  # rows of a key in time order
    k, x = key[order], ctx[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    size = np.r_[starts[1:], n] - starts
    two = (size == 2) & (x[starts] != x[np.minimum(starts + 1, n - 1)])
    groups = [order[s: s + m].tolist() for s, m in zip(starts[size > 2].tolist(), size[size > 2].tolist())]
    return (order[starts[two]], order[starts[two] + 1]), [g for g in groups if len(set(ctx[g].tolist())) > 1]
