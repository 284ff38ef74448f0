"""Two captures of the same traffic at two points of its path -> which connections they share,
the offset between their clocks, and the segments lost between the points (docs/rules.md "Two
capture points").

A connection seen at both points has the same 4-tuple and the same initial sequence numbers at
both (an ISN is 32 random bits: two connections sharing one are not met in practice). Its
segments are the same segments, each seen once at each point, later at the point downstream:
a segment is known at the other point by its direction, sequence and acknowledgement numbers,
flags and length, the n-th copy at one point being the n-th at the other (a retransmission seen
at both is not a loss).

Clock offset: a segment going from point a to point b is seen there `offset + delay` later by
b's clock, one going back `offset - delay`; the smallest delay each way is the nearest to none,
so the offset is midway between the least a-to-b difference and the greatest b-to-a one, and
half their distance bounds its error (the reasoning NTP applies to its four timestamps).

Pure: columns and packets in (matching.Matched of each point's rows), numbers out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..decode import ACK, FIN, RST, SYN
from ..flows import NONE
from ..matching import Matched
from ..seq import SEQ_SPACE

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Columns = Mapping[str, npt.NDArray[Any]]

# What a segment lost between the points was, by direction (client to server, server to client).
KINDS = ("SYN", "SYN-ACK", "RST", "FIN", "request", "response", "final ACK", "ACK")


@dataclass(frozen=True, slots=True)
class Pairs:
    """Rows of capture a and rows of capture b that are one connection."""

    a: I64
    b: I64
    flipped: Mask  # b names the two ends the other way round (roles inferred differently)

    def __len__(self) -> int:
        return len(self.a)


def paired_rows(a: Columns, b: Columns) -> Pairs:
    """The connections rows of `a` and rows of `b` share: the same two endpoints, either way
    round, and the same first sequence number of the same end."""
    keys_a = _connection_keys(a)
    keys_b = _connection_keys(b)
    flipped_keys_b = _connection_keys(b, flip=True)
    found_a: list[I64] = []
    found_b: list[I64] = []
    flips: list[Mask] = []
    for keys, flip in ((keys_b, False), (flipped_keys_b, True)):
        common, at_a, at_b = np.intersect1d(keys_a, keys, assume_unique=False, return_indices=True)
        usable = common != ""
        found_a.append(at_a[usable].astype(np.int64))
        found_b.append(at_b[usable].astype(np.int64))
        flips.append(np.full(int(usable.sum()), flip))
    ia, ib, fl = (np.concatenate(x) for x in (found_a, found_b, flips))
    first = np.unique(ia, return_index=True)[1]  # a row pairs once (same way round first)
    return Pairs(ia[first].astype(np.int64), ib[first].astype(np.int64), fl[first].astype(bool))


def _connection_keys(c: Columns, flip: bool = False) -> npt.NDArray[np.object_]:
    """One text per row: client, server, and the client's first sequence number, else the
    server's ("" where neither is known); with `flip`, as a capture naming the ends the other
    way round names them. Carriers are left out: a VLAN tag at one point may be gone at the next."""
    seqs = np.asarray(c["first_seq"], np.int64).reshape(-1, 2).tolist()
    ends = zip(np.asarray(c["client_ip"], object).tolist(), np.asarray(c["client_port"], np.int64).tolist(),
               np.asarray(c["server_ip"], object).tolist(), np.asarray(c["server_port"], np.int64).tolist())
    out = []
    for (client, c_port, server, s_port), (c_seq, s_seq) in zip(ends, seqs):
        if flip:
            client, c_port, server, s_port, c_seq, s_seq = server, s_port, client, c_port, s_seq, c_seq
        isn = f"c{c_seq}" if c_seq != NONE else f"s{s_seq}" if s_seq != NONE else ""
        out.append(f"{client}|{c_port}>{server}|{s_port}/{isn}" if isn else "")
    return np.array(out, object)


@dataclass(frozen=True, slots=True)
class Segments:
    """The packets of the paired connections at one point: `connection` is the pair's index,
    `direction` 0 from the client to the server, as capture a names them."""

    connection: I64
    direction: I64
    ts: F64
    frame: I64
    flags: I64
    seq: I64
    ack: I64
    payload: I64
    connections: int  # paired connections, those with no segment here included

    @classmethod
    def of(cls, m: Matched, connection_of_row: I64, flipped: Mask | None = None) -> Segments:
        """matching.Matched of some rows (`m.flow`: positions among them) -> Segments, each
        row's pair given by `connection_of_row`, directions turned where the pair is flipped."""
        connection = connection_of_row[m.flow]
        direction = m.direction if flipped is None else np.where(flipped[connection], 1 - m.direction, m.direction)
        return cls(connection, direction.astype(np.int64), m.ts, m.frame, m.flags, m.seq, m.ack, m.payload,
                   int(connection_of_row.max(initial=-1)) + 1)


def same_segments(a: Segments, b: Segments, offset_s: float | None = None) -> tuple[I64, I64]:
    """Positions in `a` and in `b` of the segments seen at both points: equal connection,
    direction, sequence and acknowledgement numbers, flags and length. Where both points saw a
    segment as often, the n-th of equals in time order at one is the n-th at the other. Where one
    saw it more often (sent again after a loss between them), each copy of the point that saw
    fewer is the other point's copy nearest it in time, once b's clock is read as a's
    (`offset_s`); without the offset, the n-th is the n-th there too (a first estimate)."""
    fields = ("connection", "direction", "seq", "ack", "flags", "payload")
    both = np.stack([np.concatenate([getattr(a, f), getattr(b, f)]) for f in fields], axis=1)
    _, key = np.unique(both, axis=0, return_inverse=True)
    key = key.ravel()
    ka, kb = key[: len(a.ts)], key[len(a.ts):]
    size = int(key.max(initial=-1)) + 1
    uneven = np.bincount(ka, minlength=size) != np.bincount(kb, minlength=size)
    if offset_s is None:
        uneven[:] = False
    even_a, even_b = np.flatnonzero(~uneven[ka]), np.flatnonzero(~uneven[kb])
    rank_a, rank_b = _rank_within(ka[even_a], a.ts[even_a]), _rank_within(kb[even_b], b.ts[even_b])
    span = int(max(rank_a.max(initial=0), rank_b.max(initial=0))) + 1
    _, at_a, at_b = np.intersect1d(ka[even_a] * span + rank_a, kb[even_b] * span + rank_b, return_indices=True)
    pairs_a, pairs_b = [even_a[at_a].tolist()], [even_b[at_b].tolist()]
    for k in np.flatnonzero(uneven).tolist():  # few: the segments sent again
        mine, theirs = np.flatnonzero(ka == k), np.flatnonzero(kb == k)
        shifted = b.ts[theirs] - (offset_s or 0.0)
        fewer_is_b = len(theirs) < len(mine)
        for i in (theirs if fewer_is_b else mine).tolist():
            if fewer_is_b:
                pairs_a[0].append(int(mine[np.argmin(np.abs(a.ts[mine] - (b.ts[i] - (offset_s or 0.0))))]))
                pairs_b[0].append(i)
            else:
                pairs_a[0].append(i)
                pairs_b[0].append(int(theirs[np.argmin(np.abs(shifted - a.ts[i]))]))
    return np.array(pairs_a[0], np.int64), np.array(pairs_b[0], np.int64)


def _rank_within(key: I64, ts: F64) -> I64:
    """Each element's place among the elements of its key, in time order (0 for the first)."""
    order = np.lexsort((ts, key))
    k = key[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    start_of = np.repeat(starts, np.diff(np.r_[starts, len(k)]))
    rank = np.empty(len(key), np.int64)
    rank[order] = np.arange(len(k)) - start_of
    return rank


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """b's clock minus a's, and half the width of the interval it is known in."""

    offset_s: float
    uncertainty_s: float
    segments: int  # seen at both points: what it rests on


def clock_offset(a: Segments, b: Segments, at_a: I64, at_b: I64) -> tuple[ClockOffset, Mask]:
    """The offset of b's clock, and for each connection whether a is the nearer its client (its
    segments to the server pass a first). A connection's direction passing a first is the one
    whose segments b sees later, by the median: queueing delays only add, so the median of a
    direction stays on its side of the offset."""
    n = a.connections
    delta = b.ts[at_b] - a.ts[at_a]
    connection, direction = a.connection[at_a], a.direction[at_a]
    median = np.full((n, 2), np.nan)
    for d in (0, 1):
        for c, values in _groups(connection[direction == d], delta[direction == d]):
            median[c, d] = float(np.median(values))
    both = ~np.isnan(median).any(axis=1)
    # Client to server passes a first where that direction is the later one at b.
    a_first = np.zeros(n, bool)
    a_first[both] = median[both, 0] > median[both, 1]
    if not len(delta):
        return ClockOffset(0.0, float("nan"), 0), a_first
    going = (direction == 0) == a_first[connection]  # segments from a's side to b's
    decided = both[connection]
    forth, back = delta[going & decided], delta[~going & decided]
    if len(forth) and len(back):
        low, high = float(back.max()), float(forth.min())
        offset, uncertainty = (low + high) / 2, abs(high - low) / 2
    else:  # one direction seen at both only: its median, the delay unknown
        offset, uncertainty = float(np.median(delta)), float("nan")
    one_way = ~both & ~np.isnan(median).all(axis=1)  # the side of the offset its one direction lies on
    seen = np.where(np.isnan(median[:, 0]), 1, 0)
    later = median[np.arange(n), seen] > offset
    a_first[one_way] = (later == (seen == 0))[one_way]
    return ClockOffset(offset, uncertainty, len(delta)), a_first


def _groups(keys: I64, values: F64) -> list[tuple[int, F64]]:
    order = np.argsort(keys, kind="stable")
    k, v = keys[order], values[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if len(k) else np.zeros(0, np.int64)
    return [(int(k[s]), v[s:e]) for s, e in zip(starts.tolist(), np.r_[starts[1:], len(k)].tolist())]


@dataclass(frozen=True, slots=True)
class Lost:
    """Segments sent past the upstream point that the downstream point never saw, one entry
    each: the connection, its direction, what it was (KINDS), where it was seen (0: a, 1: b)
    and its frame there."""

    connection: I64
    direction: I64
    kind: I64
    seen_at: I64
    frame: I64

    def counts(self, connections: int) -> I64:
        """Per connection, the segments lost client to server and server to client: (n, 2)."""
        out = np.zeros((connections, 2), np.int64)
        np.add.at(out, (self.connection, self.direction), 1)
        return out


def lost_between(a: Segments, b: Segments, at_a: I64, at_b: I64, offset: ClockOffset, a_first: Mask,
                 span_a: tuple[float, float], span_b: tuple[float, float]) -> Lost:
    """The segments each direction's upstream point saw and its downstream point did not, among
    those sent while the downstream capture ran (`span_*`: each capture's first and last time,
    its own clock; b's seen in a's clock by `offset`)."""
    parts = []
    for point, (mine, other_span, seen) in enumerate(((a, _shifted(span_b, -offset.offset_s), at_a),
                                                      (b, _shifted(span_a, offset.offset_s), at_b))):
        alone = np.ones(len(mine.ts), bool)
        alone[seen] = False
        upstream = (mine.direction == 0) == (a_first[mine.connection] if point == 0 else ~a_first[mine.connection])
        inside = (mine.ts >= other_span[0]) & (mine.ts <= other_span[1])
        idx = np.flatnonzero(alone & upstream & inside)
        parts.append((idx, point, mine))
    kinds = [_kinds(mine, idx, a, b) for idx, _, mine in parts]
    return Lost(*(np.concatenate(x) for x in zip(*[
        (mine.connection[idx], mine.direction[idx], kind, np.full(len(idx), point, np.int64), mine.frame[idx])
        for (idx, point, mine), kind in zip(parts, kinds)])))


def _shifted(span: tuple[float, float], by: float) -> tuple[float, float]:
    return span[0] + by, span[1] + by


def _kinds(s: Segments, idx: I64, a: Segments, b: Segments) -> I64:
    """What each segment `idx` of `s` was (KINDS' index): a final ACK acknowledges the peer's
    FIN, seen at either point."""
    flags, payload = s.flags[idx], s.payload[idx]
    kind = np.full(len(idx), KINDS.index("ACK"), np.int64)
    fin_ends = _fin_ends(a) | _fin_ends(b)
    final = np.array([(int(c), 1 - int(d), int(k)) in fin_ends for c, d, k in
                      zip(s.connection[idx], s.direction[idx], s.ack[idx])], bool)
    kind[final] = KINDS.index("final ACK")
    kind[payload > 0] = np.where(s.direction[idx] == 0, KINDS.index("request"), KINDS.index("response"))[payload > 0]
    kind[(flags & FIN) != 0] = KINDS.index("FIN")
    kind[(flags & RST) != 0] = KINDS.index("RST")
    kind[(flags & SYN) != 0] = np.where((flags & ACK) != 0, KINDS.index("SYN-ACK"), KINDS.index("SYN"))[(flags & SYN) != 0]
    return kind


def _fin_ends(s: Segments) -> set[tuple[int, int, int]]:
    """(connection, direction, the sequence number after it) of every FIN: what a final ACK acknowledges."""
    fin = np.flatnonzero((s.flags & FIN) != 0)
    after = (s.seq[fin] + s.payload[fin] + 1) % SEQ_SPACE
    return set(zip(s.connection[fin].tolist(), s.direction[fin].tolist(), after.tolist()))
