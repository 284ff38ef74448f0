"""Packet columns -> incarnations with roles and per-direction state, carried across chunks.

Rows are ordered once, by (4-tuple, canonical direction, frame); everything else is found with
run boundaries and `searchsorted` on that order, so no per-packet Python runs. The state of a
connection still alive at the end of a chunk is carried as its decisive rows (SYNs, FINs, RSTs,
the ACKs of FINs, the first, last and extreme rows of each direction) plus one summary row per
direction for everything else, so memory follows the connections alive, not the capture size.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from .decode import ACK, FIN, RST, SYN, Packets
from .seq import seq_diff

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
NEVER = np.iinfo(np.int64).max
FRAME_BITS = 40  # frame numbers below 2^40 (a trillion frames): room for a run index above them
WELL_KNOWN_PORT_LIMIT = 1024


@dataclass(slots=True)
class Rows:
    """Packets as the engine keeps them: real segments, or one summary of folded segments."""

    p: Packets
    count: I64  # segments this row stands for: 1 for a real segment
    nbytes: I64  # payload bytes this row stands for
    real: Mask  # False for a summary row: only counted, never read as a segment
    seq_u: I64  # unwrapped sequence number (valid where known_u)
    ack_u: I64
    known_u: Mask
    idle_s: npt.NDArray[np.float64]  # for a tuple carried over: when its state may be dropped

    def __len__(self) -> int:
        return len(self.count)

    def take(self, idx: I64 | Mask) -> Rows:
        return Rows(self.p.take(idx), *(getattr(self, f.name)[idx] for f in fields(self)[1:]))

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        return Rows(Packets.concat([r.p for r in parts]),
                    *(np.concatenate([getattr(r, f.name) for r in parts]) for f in fields(Rows)[1:]))

    @staticmethod
    def of(p: Packets) -> Rows:
        n = len(p)
        return Rows(p, np.ones(n, np.int64), p.payload.astype(np.int64), np.ones(n, bool),
                    np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, bool), np.zeros(n))


def _mix(h: npt.NDArray[np.uint64], v: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """One round of a 64-bit mixing hash (splitmix64's finaliser); only orders rows."""
    with np.errstate(over="ignore"):
        x = (h ^ v) * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(31)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(29)
    return x


@dataclass(slots=True)
class Tuples:
    """The canonical 4-tuple of each row: endpoint A is the smaller (address, port)."""

    a_is_src: Mask
    hash: npt.NDArray[np.uint64]

    @staticmethod
    def of(p: Packets) -> Tuples:
        a_is_src = (p.src_hi < p.dst_hi) | ((p.src_hi == p.dst_hi) & (
            (p.src_lo < p.dst_lo) | ((p.src_lo == p.dst_lo) & (p.sport <= p.dport))))
        a_hi, b_hi = np.where(a_is_src, p.src_hi, p.dst_hi), np.where(a_is_src, p.dst_hi, p.src_hi)
        a_lo, b_lo = np.where(a_is_src, p.src_lo, p.dst_lo), np.where(a_is_src, p.dst_lo, p.src_lo)
        ports = np.where(a_is_src, p.sport.astype(np.uint64) << np.uint64(16) | p.dport,
                         p.dport.astype(np.uint64) << np.uint64(16) | p.sport)
        h = _mix(p.ctx.astype(np.uint64), ports)
        for v in (a_hi, a_lo, b_hi, b_lo):
            h = _mix(h, v)
        return Tuples(a_is_src, h)


def same_tuple(p: Packets, t: Tuples, i: I64, j: I64) -> Mask:
    """Rows i and j carry the same 4-tuple (and context), compared field by field."""
    def ep(idx: I64, side_a: bool) -> tuple[npt.NDArray[np.uint64], ...]:
        use_src = t.a_is_src[idx] if side_a else ~t.a_is_src[idx]
        return (np.where(use_src, p.src_hi[idx], p.dst_hi[idx]), np.where(use_src, p.src_lo[idx], p.dst_lo[idx]),
                np.where(use_src, p.sport[idx], p.dport[idx]).astype(np.uint64))
    eq = p.ctx[i] == p.ctx[j]
    for x, y in zip(ep(i, True) + ep(i, False), ep(j, True) + ep(j, False)):
        eq &= x == y
    return eq


@dataclass(slots=True)
class Ordered:
    """Rows sorted by (tuple, canonical direction, frame), with their runs."""

    rows: Rows
    tup: Tuples
    cdir: I64  # 0: sent by endpoint A, 1: by endpoint B
    tuple_id: I64  # run index of the 4-tuple
    run: I64  # run index of (tuple, cdir) = tuple_id * 2 + cdir
    pos_key: I64  # run << FRAME_BITS | frame: sorted, for searchsorted
    n_tuples: int


def order(rows: Rows) -> Ordered:
    """Sort rows by tuple, then direction, then frame: one stable sort of one 64-bit key."""
    tup = Tuples.of(rows.p)
    cdir = (~tup.a_is_src).astype(np.int64)
    key = (tup.hash & ~np.uint64(1)) | cdir.astype(np.uint64)
    # Rows arrive in frame order except carried ones; a stable sort on (key) after a frame sort
    # keeps frame order inside each run.
    idx = np.argsort(rows.p.frame, kind="stable")
    idx = idx[np.argsort(key[idx], kind="stable")]
    rows, tup, cdir, key = rows.take(idx), Tuples(tup.a_is_src[idx], tup.hash[idx]), cdir[idx], key[idx]
    n = len(idx)
    new_tuple = np.ones(n, bool)
    if n:
        new_tuple[1:] = (key[1:] >> np.uint64(1)) != (key[:-1] >> np.uint64(1))
        # Verify identity where the hash says "same tuple": a collision must never merge two.
        same = np.flatnonzero(~new_tuple)
        clash = ~same_tuple(rows.p, tup, same, same - 1)
        if clash.any():
            return _order_exact(rows)
    tuple_id = np.cumsum(new_tuple) - 1
    run = tuple_id * 2 + cdir
    return Ordered(rows, tup, cdir, tuple_id, run, (run << FRAME_BITS) | rows.p.frame,
                   int(tuple_id[-1]) + 1 if n else 0)


def _order_exact(rows: Rows) -> Ordered:
    """The slow, collision-free order: a lexicographic sort on every tuple field."""
    p = rows.p
    tup = Tuples.of(p)
    a = tup.a_is_src
    cols = [np.where(a, p.src_hi, p.dst_hi), np.where(a, p.src_lo, p.dst_lo), np.where(a, p.sport, p.dport),
            np.where(a, p.dst_hi, p.src_hi), np.where(a, p.dst_lo, p.src_lo), np.where(a, p.dport, p.sport), p.ctx]
    idx = np.lexsort([p.frame, (~a).astype(np.int64), *cols[::-1]])
    rows = rows.take(idx)
    tup = Tuples(tup.a_is_src[idx], tup.hash[idx])
    cols = [c[idx] for c in cols]
    n = len(idx)
    new_tuple = np.ones(n, bool)
    if n:
        new_tuple[1:] = np.any([c[1:] != c[:-1] for c in cols], axis=0)
    cdir = (~tup.a_is_src).astype(np.int64)
    tuple_id = np.cumsum(new_tuple) - 1
    run = tuple_id * 2 + cdir
    return Ordered(rows, tup, cdir, tuple_id, run, (run << FRAME_BITS) | rows.p.frame,
                   int(tuple_id[-1]) + 1 if n else 0)


def firsts(group: I64, cond: Mask, n_groups: int, last: bool = False) -> I64:
    """Row index of the first (or last) row matching `cond` in each group; -1 where none.

    Groups must be contiguous in row order, which (incarnation, direction) groups are.
    """
    out = np.full(n_groups, -1, np.int64)
    idx = np.flatnonzero(cond)
    if len(idx):
        g = group[idx]
        edge = np.ones(len(idx), bool)
        if last:
            edge[:-1] = g[1:] != g[:-1]
        else:
            edge[1:] = g[1:] != g[:-1]
        out[g[edge]] = idx[edge]
    return out


def group_max(group: I64, cond: Mask, value: I64, n_groups: int, empty: int = -(1 << 62)) -> I64:
    """Largest `value` over the rows matching `cond` in each contiguous group."""
    out = np.full(n_groups, empty, np.int64)
    idx = np.flatnonzero(cond)
    if len(idx):
        g = group[idx]
        start = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        out[g[start]] = np.maximum.reduceat(value[idx], start)
    return out


def unwrap_runs(raw: I64, group: I64, chain: Mask, anchor: Mask, anchor_u: I64) -> I64:
    """Unwrap 32-bit numbers into int64 along each contiguous group, following `chain` rows.

    Each chain row moves by the signed 32-bit distance from the previous chain row of its group
    (RFC 1982 serial arithmetic), so a connection past 4 GiB keeps increasing. Anchors restart
    the count at a known value. Rows off the chain (RSTs, whose sequence number may be anything)
    are placed relative to the chain row before them without moving the chain.
    """
    n = len(raw)
    u = np.zeros(n, np.int64)
    idx = np.flatnonzero(chain | anchor)
    if not len(idx):
        return raw.copy()
    r, g = raw[idx], group[idx]
    start = anchor[idx] | np.r_[True, g[1:] != g[:-1]]
    step = np.zeros(len(idx), np.int64)
    step[1:] = seq_diff(r[1:], r[:-1])
    step[start] = 0
    total = np.cumsum(step)
    which = np.maximum.accumulate(np.where(start, np.arange(len(idx)), 0))
    base = np.where(anchor[idx], anchor_u[idx], r)
    u[idx] = base[which] + total - total[which]
    off = np.flatnonzero(~(chain | anchor))
    if len(off):
        prev = np.searchsorted(idx, off) - 1
        ok = prev >= 0
        ok[ok] = group[idx[prev[ok]]] == group[off[ok]]
        pi = idx[np.maximum(prev, 0)]
        u[off] = np.where(ok, u[pi] + seq_diff(raw[off], raw[pi]), raw[off])
    return u


def split_incarnations(o: Ordered, idle_gap_s: float) -> I64:
    """The incarnation of each row, numbered in (tuple, time) order (TEARDOWN-RULES §Vocabulary).

    A tuple's first row starts one. After that a new incarnation starts at a SYN without ACK
    whose ISN differs from the previous SYN of the same side, provided the current incarnation
    was closed or aborted (a FIN or RST was seen since it started) or the tuple was idle for
    longer than `idle_gap_s` (2*MSL). A retransmitted SYN (same ISN) never starts one; a new
    SYN on a connection still open is a SYN hitting an established socket, not a new one.
    """
    rows, p = o.rows, o.rows.p
    n = len(rows)
    if not n:
        return np.zeros(0, np.int64)
    flags = p.flags
    real = rows.real
    syn = real & ((flags & (SYN | ACK)) == SYN)
    syn_idx = np.flatnonzero(syn)
    prev = np.r_[-1, syn_idx[:-1]]
    same_run = np.r_[False, o.run[syn_idx[1:]] == o.run[syn_idx[:-1]]]
    new_isn = ~same_run | (p.seq[syn_idx] != p.seq[np.maximum(prev, 0)])
    cand = syn_idx[new_isn]
    run1_first = np.flatnonzero(np.r_[True, o.run[1:] != o.run[:-1]])
    # The tuple's first frame is the smaller of its two runs' first frames.
    first_frame = np.full(o.n_tuples, NEVER, np.int64)
    np.minimum.at(first_frame, o.tuple_id[run1_first], p.frame[run1_first])
    # Candidates in (tuple, frame) order, so "the previous one" is the previous in time.
    cand = cand[np.lexsort((p.frame[cand], o.tuple_id[cand]))]
    ct, cf = o.tuple_id[cand], p.frame[cand]
    closer = real & ((flags & (FIN | RST)) != 0)
    closers_before = np.r_[0, np.cumsum(closer)]

    def count_closers(tuple_id: I64, f0: I64, f1: I64) -> I64:
        total = np.zeros(len(tuple_id), np.int64)
        for d in (0, 1):
            base = (tuple_id * 2 + d) << FRAME_BITS
            total += closers_before[np.searchsorted(o.pos_key, base | f1)]
            total -= closers_before[np.searchsorted(o.pos_key, base | f0)]
        return total

    # Latest row of the tuple before each candidate, in either direction: the idle gap.
    latest_ts = np.full(len(cand), -np.inf)
    for d in (0, 1):
        run = ct * 2 + d
        i = np.searchsorted(o.pos_key, (run << FRAME_BITS) | cf) - 1
        ok = (i >= 0) & (o.run[np.maximum(i, 0)] == run)
        latest_ts = np.where(ok, np.maximum(latest_ts, p.ts[np.maximum(i, 0)]), latest_ts)
    idle = p.ts[cand] - latest_ts > idle_gap_s
    is_first = cf == first_frame[ct]
    accepted = is_first.copy()
    for _ in range(len(cand) + 1):  # rejections are rare; each pass fixes at least one
        start_frame = np.where(accepted, cf, -1)
        prev_start = np.full(len(cand), -1, np.int64)
        if len(cand):
            last = np.maximum.accumulate(np.where(accepted, np.arange(len(cand)), -1))
            prev_i = np.r_[-1, last[:-1]]
            ok = (prev_i >= 0) & (ct[np.maximum(prev_i, 0)] == ct)
            prev_start = np.where(ok, start_frame[np.maximum(prev_i, 0)], first_frame[ct])
        now = is_first | idle | (count_closers(ct, prev_start, cf) > 0)
        if np.array_equal(now, accepted):
            break
        accepted = now
    starts_t = np.r_[np.arange(o.n_tuples), ct[accepted & ~is_first]]
    starts_f = np.r_[first_frame, cf[accepted & ~is_first]]
    starts = np.sort((starts_t << FRAME_BITS) | starts_f)
    return np.searchsorted(starts, (o.tuple_id << FRAME_BITS) | p.frame, side="right") - 1


@dataclass(slots=True)
class Sides:
    """Per-direction state of every incarnation: arrays of shape (incarnations, 2), where
    column 0 is the client's side (what it sent) and column 1 the server's."""

    packets: I64
    bytes: I64
    first_row: I64  # -1 where the side sent nothing
    last_row: I64
    syn_row: I64  # first SYN (with ACK for the server)
    fin_row: I64  # first FIN
    fin_seq_u: I64  # sequence number of that FIN (unwrapped), -1 where none
    fin_copies: I64  # FINs with that same sequence number: retransmissions + 1
    rst_row: I64  # first RST
    ack_of_fin_row: I64  # first segment acknowledging the peer's FIN
    nxt_u: I64  # highest sequence number sent + 1 (SYN and FIN count one)
    max_ack_u: I64  # highest acknowledgment sent


@dataclass(slots=True)
class Incarnations:
    """Incarnations of the rows in `o`: which rows belong to which, with roles and sides."""

    o: Ordered
    inc: I64  # per row
    side: I64  # per row: 0 sent by the client, 1 by the server
    n: int
    tuple_id: I64  # per incarnation
    index_in_tuple: I64
    client_cdir: I64
    roles_inferred: Mask
    sides: Sides
    ts_ok: Mask  # timestamps negotiated (both SYNs carried the option)
    wscale: I64  # (n, 2) window scale each side announced; -1 if not negotiated


def _infer_client_cdir(o: Ordered, inc: I64, n: int, first_row: I64) -> tuple[I64, Mask]:
    """Roles from the handshake; without one, from ports (TEARDOWN-RULES §Vocabulary)."""
    p, rows = o.rows.p, o.rows
    real = rows.real
    syn = real & ((p.flags & (SYN | ACK)) == SYN)
    synack = real & ((p.flags & (SYN | ACK)) == SYN | ACK)
    client = np.full(n, -1, np.int64)
    i = _first_by_frame(inc, syn, p.frame, n)
    client[i >= 0] = o.cdir[i[i >= 0]]
    j = _first_by_frame(inc, synack, p.frame, n)
    use = (client < 0) & (j >= 0)
    client[use] = 1 - o.cdir[j[use]]
    inferred = client < 0
    if inferred.any():
        # The server is the endpoint with the well-known port, else with the port more widely
        # shared (seen with more peers); the first packet's sender is only a weak hint.
        k = first_row[inferred]
        a_port = np.where(o.tup.a_is_src[k], p.sport[k], p.dport[k]).astype(np.int64)
        b_port = np.where(o.tup.a_is_src[k], p.dport[k], p.sport[k]).astype(np.int64)
        port_peers = _port_popularity(o)
        a_score = np.where(a_port < WELL_KNOWN_PORT_LIMIT, 1 << 40, 0) + port_peers.get_many(a_port)
        b_score = np.where(b_port < WELL_KNOWN_PORT_LIMIT, 1 << 40, 0) + port_peers.get_many(b_port)
        first_sender = o.cdir[k]
        client[inferred] = np.where(a_score > b_score, 1, np.where(b_score > a_score, 0, first_sender))
    return client, inferred


def _first_by_frame(group: I64, cond: Mask, frame: I64, n: int) -> I64:
    """Row index of the earliest row (by frame) matching `cond` in each group, any direction."""
    out = np.full(n, -1, np.int64)
    idx = np.flatnonzero(cond)
    if len(idx):
        best = np.full(n, NEVER, np.int64)
        np.minimum.at(best, group[idx], frame[idx])
        hit = frame[idx] == best[group[idx]]
        out[group[idx[hit]]] = idx[hit]
    return out


class _PortCounts:
    def __init__(self, ports: I64, counts: I64) -> None:
        self.ports, self.counts = ports, counts

    def get_many(self, port: I64) -> I64:
        i = np.clip(np.searchsorted(self.ports, port), 0, max(len(self.ports) - 1, 0))
        return np.where(self.ports[i] == port, self.counts[i], 0) if len(self.ports) else np.zeros(len(port), np.int64)


def _port_popularity(o: Ordered) -> _PortCounts:
    """How many distinct tuples each port number appears in (either end)."""
    p = o.rows.p
    first = np.flatnonzero(np.r_[True, o.tuple_id[1:] != o.tuple_id[:-1]])
    ports = np.r_[p.sport[first], p.dport[first]].astype(np.int64)
    u, c = np.unique(ports, return_counts=True)
    return _PortCounts(u, c.astype(np.int64))


def build(o: Ordered, idle_gap_s: float) -> Incarnations:
    """Split rows into incarnations, assign roles, unwrap sequence numbers, sum up each side."""
    rows, p = o.rows, o.rows.p
    inc = split_incarnations(o, idle_gap_s)
    n = int(inc.max()) + 1 if len(inc) else 0
    first_row = _first_by_frame(inc, np.ones(len(inc), bool), p.frame, n)
    tuple_id = o.tuple_id[first_row] if n else np.zeros(0, np.int64)
    tuple_first_inc = np.r_[0, np.flatnonzero(tuple_id[1:] != tuple_id[:-1]) + 1] if n else np.zeros(0, np.int64)
    index_in_tuple = np.arange(n) - np.repeat(tuple_first_inc, np.diff(np.r_[tuple_first_inc, n]))
    client_cdir, inferred = _infer_client_cdir(o, inc, n, first_row)
    side = o.cdir ^ client_cdir[inc]
    g = inc * 2 + side  # contiguous in row order: one (incarnation, side) per run segment
    m = 2 * n
    real = rows.real
    flags = p.flags
    syn, fin, rst, has_ack = (real & ((flags & f) != 0) for f in (SYN, FIN, RST, ACK))

    # Unwrap sequence numbers along each side; acknowledgments start from the peer's first
    # sequence number so both live in the same space.
    known = rows.known_u
    seq_raw = p.seq.astype(np.int64)
    seq_u = unwrap_runs(seq_raw, g, real & ~rst, known, rows.seq_u)
    first = firsts(g, real, m)
    peer_first = first.reshape(n, 2)[:, ::-1].ravel()[g]
    ack_raw = p.ack.astype(np.int64)
    has_peer = peer_first >= 0
    pf = np.maximum(peer_first, 0)
    ack_first = firsts(g, has_ack & ~rst, m)
    ack_anchor = np.zeros(len(g), bool)
    ack_anchor[ack_first[ack_first >= 0]] = True
    ack_anchor &= ~known
    anchor_val = np.where(has_peer, seq_u[pf] + seq_diff(ack_raw, seq_raw[pf]), ack_raw)
    ack_u = unwrap_runs(ack_raw, g, has_ack & ~rst, known | ack_anchor, np.where(known, rows.ack_u, anchor_val))
    seq_end = seq_u + p.payload + ((flags & SYN) != 0) + ((flags & FIN) != 0)
    fin_seq_row = seq_u + p.payload + ((flags & SYN) != 0)

    fin_row = firsts(g, fin, m)
    fin_seq_u = np.where(fin_row >= 0, fin_seq_row[np.maximum(fin_row, 0)], -1)
    fin_copies = np.bincount(g[fin & (fin_seq_row == fin_seq_u[g])], minlength=m)
    peer_fin = fin_seq_u.reshape(n, 2)[:, ::-1].ravel()
    acks_fin = has_ack & (peer_fin[g] >= 0) & (ack_u >= peer_fin[g] + 1)
    sides = Sides(
        packets=np.bincount(g, rows.count, minlength=m).astype(np.int64),
        bytes=np.bincount(g, rows.nbytes, minlength=m).astype(np.int64),
        first_row=first, last_row=firsts(g, np.ones(len(g), bool), m, last=True),
        syn_row=firsts(g, syn, m), fin_row=fin_row, fin_seq_u=fin_seq_u, fin_copies=fin_copies,
        rst_row=firsts(g, rst, m), ack_of_fin_row=firsts(g, acks_fin, m),
        nxt_u=group_max(g, real & ~rst, seq_end, m), max_ack_u=group_max(g, has_ack & ~rst, ack_u, m))
    for f in fields(Sides):
        setattr(sides, f.name, getattr(sides, f.name).reshape(n, 2))
    syn_rows = sides.syn_row
    opt_ts = np.where(syn_rows >= 0, p.tsval[np.maximum(syn_rows, 0)] >= 0, False)
    ws = np.where(syn_rows >= 0, p.wscale[np.maximum(syn_rows, 0)], -1).astype(np.int64)
    both_ws = (ws >= 0).all(axis=1)
    rows.seq_u, rows.ack_u = seq_u, ack_u
    return Incarnations(o, inc, side, n, tuple_id, index_in_tuple, client_cdir, inferred, sides,
                        opt_ts.all(axis=1), np.where(both_ws[:, None], ws, -1))
