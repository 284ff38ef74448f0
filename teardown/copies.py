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
    report = SetAside()
    if n < 2 or len(np.unique(c["ctx"])) < 2:
        return keep, report
    # One connection at several points: the same endpoints, in the same capture of the run.
    ends = [(k, *min(a, b), *max(a, b)) for k, a, b in zip(
        c["capture"].tolist() if "capture" in c else [0] * n, zip(c["client_ip"].tolist(), c["client_port"].tolist()),
        zip(c["server_ip"].tolist(), c["server_port"].tolist()))]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for row, key in enumerate(ends):
        groups.setdefault(key, []).append(row)
    ctx, first, last = c["ctx"], c["first_ts"], c["last_ts"]
    seqs = [set(s) - {NONE} for s in c["first_seq"].tolist()]
    packets = (c["packets_c2s"] + c["packets_s2c"]).tolist()
    seen_on: dict[int, set[int]] = {}
    for rows in groups.values():
        if len(rows) < 2 or len({int(ctx[r]) for r in rows}) < 2:
            continue
        primaries: list[int] = []
        for r in rows:  # in time order: a copy's primary came before it (or with it)
            p = next((p for p in primaries if ctx[p] != ctx[r] and seqs[p] & seqs[r] and
                      first[r] <= last[p] + SLACK_S and first[p] <= last[r] + SLACK_S), None)
            if p is None:
                primaries.append(r)
                continue
            keep[r] = False
            seen_on.setdefault(p, set()).add(int(ctx[r]))
            c["duplicates_seen"][p] += packets[r]
            report.packets[str(points.get(int(ctx[r]), f"carrier {int(ctx[r])}"))] += packets[r]
    for p, where in seen_on.items():
        c["also_seen_on"][p] = "; ".join(sorted(str(points.get(k, f"carrier {k}")) for k in where))
    report.connections = len(seen_on)
    return keep, report
