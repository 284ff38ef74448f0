"""Incarnations -> one row of verdicts each: close kind, closer, TIME_WAIT holder and its
interval, RST class, FIN retransmissions, assassination, reuse. Each rule is one function named
after it, computed for all incarnations at once (TEARDOWN-RULES.md is the specification)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .decode import ACK, RST, SYN
from .flows import Incarnations, firsts, group_max
from .options import Options
from .schema import CloseKind, DataAfterFin, Handshake, ReuseVerdict, RstClass, Side
from .seq import seq_diff

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Obj = npt.NDArray[np.object_]
CLIENT, SERVER = 0, 1
LINUX_TW_REUSE_ISN_STEP = 65537  # tcp_timewait_state_process: new ISN = old snd_nxt + 65535 + 2


@dataclass(slots=True)
class Closes:
    """The close verdicts of every incarnation, as arrays (one entry per incarnation)."""

    handshake: Obj
    close_kind: Obj
    active_closer: Obj  # side index 0/1, 2 both, -1 none
    closer: I64
    closing_rst_row: I64  # the RST that ended the connection, -1 where none
    first_rst_row: I64  # the first RST outside a handshake that completed later, -1 where none
    complete_frame: I64  # frame of the last ACK completing an orderly close; -1 where incomplete


def _ts(inc: Incarnations, row: I64) -> F64:
    """Timestamps of rows, NaN where the row index is -1."""
    return np.where(row >= 0, inc.o.rows.p.ts[np.maximum(row, 0)], np.nan)


def _frame(inc: Incarnations, row: I64) -> I64:
    never = np.iinfo(np.int64).max
    return np.where(row >= 0, inc.o.rows.p.frame[np.maximum(row, 0)], never)


def handshake_seen(inc: Incarnations) -> Obj:
    """complete: SYN, SYN-ACK and a later segment from the client; else what was seen."""
    s = inc.sides
    syn, synack = s.syn_row[:, CLIENT] >= 0, s.syn_row[:, SERVER] >= 0
    later = _frame(inc, s.last_row[:, CLIENT]) > _frame(inc, s.syn_row[:, SERVER])
    return np.select([syn & synack & later, syn & ~synack, ~syn & synack | syn & synack],
                     [Handshake.complete, Handshake.syn_only, Handshake.synack_only], Handshake.none).astype(object)


def handshake_rst_cutoff(inc: Incarnations) -> I64:
    """Frame before which an RST belongs to the handshake (TEARDOWN-RULES §Close verdicts 4).

    An RST sent before the SYN-ACK was acknowledged (e.g. a client answering an unexpected ACK
    to its SYN) does not close an established connection when the handshake completes later.
    """
    rows, p = inc.o.rows, inc.o.rows.p
    synack = inc.sides.syn_row[:, SERVER]
    after = p.frame > _frame(inc, synack)[inc.inc]
    third_ack = rows.real & (inc.side == CLIENT) & ((p.flags & (ACK | SYN | RST)) == ACK) & after
    first_ack = firsts(inc.inc * 2 + inc.side, third_ack, 2 * inc.n).reshape(inc.n, 2)[:, CLIENT]
    return np.where(first_ack >= 0, _frame(inc, first_ack), -1)


def first_closer(inc: Incarnations) -> I64:
    """The side whose FIN the peer acknowledged before (or with) its own FIN.

    Neither acknowledged -> simultaneous (2); both sides go through CLOSING (RFC 9293 §3.6).
    Decided by seq/ack causality, never by capture order (TEARDOWN-RULES §Close verdicts 1).
    Only one FIN -> its sender. No FIN -> -1.
    """
    s = inc.sides
    fin = s.fin_row >= 0
    acked_first = np.zeros((inc.n, 2), bool)
    for side in (CLIENT, SERVER):
        peer = 1 - side
        # The peer acknowledged this side's FIN at or before sending its own FIN.
        acked_first[:, side] = fin[:, side] & fin[:, peer] & (s.ack_of_fin_row[:, peer] >= 0) & (
            _frame(inc, s.ack_of_fin_row[:, peer]) <= _frame(inc, s.fin_row[:, peer]))
    by_order = np.where(_frame(inc, s.fin_row[:, CLIENT]) <= _frame(inc, s.fin_row[:, SERVER]), CLIENT, SERVER)
    return np.select(
        [~fin.any(axis=1), fin[:, CLIENT] & ~fin[:, SERVER], fin[:, SERVER] & ~fin[:, CLIENT],
         acked_first[:, CLIENT] & ~acked_first[:, SERVER], acked_first[:, SERVER] & ~acked_first[:, CLIENT],
         ~acked_first.any(axis=1)],
        [-1, CLIENT, SERVER, CLIENT, SERVER, 2], by_order)


def close_kind(inc: Incarnations) -> Closes:
    """One close kind per incarnation, by the precedence of TEARDOWN-RULES §Close verdicts 3."""
    s, p = inc.sides, inc.o.rows.p
    rows = inc.o.rows
    hs = handshake_seen(inc)
    cutoff = handshake_rst_cutoff(inc)
    g = inc.inc * 2 + inc.side
    rst = rows.real & ((p.flags & RST) != 0)
    closing = rst & (p.frame > cutoff[inc.inc])
    closing_rst = firsts(g, closing, 2 * inc.n).reshape(inc.n, 2)
    rst_frame = np.minimum(_frame(inc, closing_rst[:, 0]), _frame(inc, closing_rst[:, 1]))
    closing_rst_row = np.where(_frame(inc, closing_rst[:, 0]) <= _frame(inc, closing_rst[:, 1]),
                               closing_rst[:, 0], closing_rst[:, 1])
    has_rst = closing_rst_row >= 0
    # A handshake-time RST with no completed handshake after it still ends the attempt.
    any_rst = np.where(s.rst_row[:, 0] >= 0, s.rst_row[:, 0], s.rst_row[:, 1])
    fallback = ~has_rst & (any_rst >= 0) & (cutoff < 0)
    closing_rst_row = np.where(fallback, any_rst, closing_rst_row)
    rst_frame = np.where(fallback, _frame(inc, any_rst), rst_frame)
    has_rst |= fallback

    closer = first_closer(inc)
    fin = s.fin_row >= 0
    first_fin_frame = np.minimum(_frame(inc, s.fin_row[:, 0]), _frame(inc, s.fin_row[:, 1]))
    acked = s.ack_of_fin_row >= 0
    both_done = fin.all(axis=1) & acked.all(axis=1)
    complete_frame = np.where(both_done, np.maximum(_frame(inc, s.ack_of_fin_row[:, 0]),
                                                    _frame(inc, s.ack_of_fin_row[:, 1])), -1)
    never = np.iinfo(np.int64).max
    done_by = np.where(both_done, complete_frame, never)
    refused = (s.syn_row[:, CLIENT] >= 0) & (s.syn_row[:, SERVER] < 0) & (s.rst_row[:, SERVER] >= 0) & (
        _frame(inc, s.rst_row[:, SERVER]) <= _frame(inc, s.first_row[:, SERVER]))
    unanswered = (s.syn_row[:, CLIENT] >= 0) & (s.packets[:, SERVER] == 0) & ~fin.any(axis=1) & ~has_rst
    kind = np.select(
        [refused, unanswered,
         has_rst & (rst_frame < first_fin_frame),
         fin.any(axis=1) & has_rst & (rst_frame < done_by),
         closer == 2, fin.any(axis=1), has_rst],
        [CloseKind.refused, CloseKind.unanswered, CloseKind.rst, CloseKind.fin_then_rst,
         CloseKind.simultaneous, CloseKind.fin, CloseKind.rst], CloseKind.open).astype(object)
    closing_rst_row = np.where(has_rst, closing_rst_row, -1)
    return Closes(hs, kind, closer, closer, closing_rst_row, closing_rst_row, complete_frame)


def side_names(idx: I64) -> Obj:
    return np.select([idx == CLIENT, idx == SERVER, idx == 2], [Side.client, Side.server, Side.both],
                     Side.none).astype(object)


def rst_class(inc: Incarnations, rst_row: I64) -> Obj:
    """How the closing RST fits its receiver's state (TEARDOWN-RULES §RST classes).

    The receiver expects the sender's next sequence number: the sender's highest sequence sent
    before the RST, or the receiver's latest acknowledgment (both are its RCV.NXT as far as the
    capture can tell). An RST from a side that sent nothing else, whose seq is the ACK of the
    segment it answers (or 0 with an ACK), comes from an endpoint with no socket.
    """
    rows, p = inc.o.rows, inc.o.rows.p
    n = inc.n
    out = np.full(n, None, object)
    has = rst_row >= 0
    r = np.maximum(rst_row, 0)
    sender = inc.side[r]
    rst_frame = np.where(has, p.frame[r], -1)
    g = inc.inc * 2 + inc.side
    before = rows.real & (p.frame < rst_frame[inc.inc]) & ((p.flags & RST) == 0)
    from_sender = before & (inc.side == sender[inc.inc])
    from_receiver = before & (inc.side != sender[inc.inc])
    seq_end = rows.seq_u + p.payload + ((p.flags & SYN) != 0) + ((p.flags & 0x01) != 0)
    nxt = group_max(g, from_sender, seq_end, 2 * n).reshape(n, 2)
    sent_before = np.bincount(inc.inc[from_sender], minlength=n) > 0
    last_rcv = firsts(g, from_receiver & ((p.flags & ACK) != 0), 2 * n, last=True).reshape(n, 2)
    rcv_row = np.where(sender == CLIENT, last_rcv[:, SERVER], last_rcv[:, CLIENT])
    expected = np.where(sender == CLIENT, nxt[:, CLIENT], nxt[:, SERVER])
    seq_u = rows.seq_u[r]
    rcv = np.maximum(rcv_row, 0)
    rcv_ack = np.where(rcv_row >= 0, rows.ack_u[rcv], -1)
    scale = np.where(inc.wscale[np.arange(n), 1 - sender] >= 0, inc.wscale[np.arange(n), 1 - sender], 0)
    window = p.window[rcv].astype(np.int64) << scale
    raw_seq = p.seq[r].astype(np.int64)
    answers_ack = (rcv_row >= 0) & (raw_seq == p.ack[rcv].astype(np.int64))
    zero_ack = (raw_seq == 0) & ((p.flags[r] & ACK) != 0)
    exact = (expected > -(1 << 61)) & (seq_u == expected) | (rcv_row >= 0) & (seq_u == rcv_ack)
    in_window = (rcv_row >= 0) & (seq_diff(raw_seq, rcv_ack % (1 << 32)) > 0) & (
        seq_diff(raw_seq, rcv_ack % (1 << 32)) < window)
    knows = (rcv_row >= 0) | (expected > -(1 << 61))
    out[:] = np.select(
        [~has, ~sent_before & (answers_ack | zero_ack), ~sent_before & (rcv_row < 0), exact, in_window, knows],
        [None, RstClass.to_closed_port, RstClass.unverifiable, RstClass.exact, RstClass.in_window,
         RstClass.out_of_window], RstClass.unverifiable)
    return out


@dataclass(slots=True)
class TimeWait:
    holder: I64  # 0 client, 1 server, 2 both, -1 none
    start: F64  # per side, shape (n, 2): NaN where that side holds none
    end: F64
    restarts: I64
    final_ack_seen: Mask  # (n, 2)


def time_wait(inc: Incarnations, c: Closes, options: Options, tw_s: F64) -> TimeWait:
    """Who holds TIME_WAIT, from when, until when (TEARDOWN-RULES §TIME_WAIT).

    The active closer after an orderly close, both after a simultaneous one, nobody after an
    abort. It starts when the holder acknowledges the peer's FIN (or, where that ACK is not in
    the capture, at the peer's FIN) and lasts the holder's 2*MSL; a retransmitted FIN from the
    peer that the holder answers restarts it.
    """
    s, p = inc.sides, inc.o.rows.p
    n = inc.n
    orderly = np.isin(c.close_kind, [CloseKind.fin, CloseKind.simultaneous])
    holder = np.where(orderly & (c.closer >= 0), c.closer, -1)
    holds = np.zeros((n, 2), bool)
    holds[:, CLIENT] = (holder == CLIENT) | (holder == 2)
    holds[:, SERVER] = (holder == SERVER) | (holder == 2)
    peer_fin = s.fin_row[:, ::-1]
    holds &= peer_fin >= 0  # still in FIN_WAIT_2 without the peer's FIN: no TIME_WAIT yet
    holder = np.select([holds.all(axis=1), holds[:, CLIENT], holds[:, SERVER]], [2, CLIENT, SERVER], -1)
    ack_seen = s.ack_of_fin_row >= 0
    start = np.where(holds, np.where(ack_seen, _ts(inc, s.ack_of_fin_row), _ts(inc, peer_fin)), np.nan)
    # Restarts: the holder's answers to retransmissions of the peer's FIN.
    rows = inc.o.rows
    g = inc.inc * 2 + inc.side
    fin_rows = rows.real & ((p.flags & 0x01) != 0)
    last_fin = firsts(g, fin_rows, 2 * n, last=True).reshape(n, 2)
    peer_last_fin = last_fin[:, ::-1]
    restarts = np.where(holds, s.fin_copies[:, ::-1] - 1, 0).sum(axis=1)
    # The holder answers a retransmitted FIN at once, so the timer restarts at its arrival.
    restart_ts = np.where(holds & (s.fin_copies[:, ::-1] > 1), _ts(inc, peer_last_fin), np.nan)
    end = np.fmax(start, restart_ts) + tw_s[:, None]
    return TimeWait(holder, start, end, restarts, ack_seen)


@dataclass(slots=True)
class Assassination:
    seen: Mask
    ts: F64
    frame: I64


def tw_assassination(inc: Incarnations, tw: TimeWait, rst_kills: Mask) -> Assassination:
    """An RST reaching a TIME_WAIT holder with exactly the sequence number it expects next (the
    peer's FIN + 1), during TIME_WAIT (RFC 1337; TEARDOWN-RULES §TIME_WAIT). The RST may sit in
    the next incarnation of the tuple: the client's answer to a rejected reuse is the classic.
    Where the holder's profile honours it, TIME_WAIT ends there (`tw.end` is updated)."""
    rows, p, s = inc.o.rows, inc.o.rows.p, inc.sides
    n = inc.n
    seen = np.zeros(n, bool)
    when = np.full(n, np.nan)
    frame = np.full(n, -1, np.int64)
    rst = np.flatnonzero(rows.real & ((p.flags & RST) != 0))
    for back in (0, 1):  # the RST's own incarnation, then the one before it on the same tuple
        j = inc.inc[rst] - back
        ok = j >= 0
        ok[ok] = inc.tuple_id[j[ok]] == inc.tuple_id[inc.inc[rst[ok]]]
        r, j = rst[ok], j[ok]
        sender_cdir = inc.o.cdir[r]
        for holder in (CLIENT, SERVER):
            holder_cdir = inc.client_cdir[j] ^ holder
            peer = 1 - holder
            fin_seq = s.fin_seq_u[j, peer]
            hit = (sender_cdir != holder_cdir) & (fin_seq >= 0) & ~np.isnan(tw.start[j, holder]) & (
                p.ts[r] >= tw.start[j, holder]) & (p.ts[r] < tw.end[j, holder]) & (
                p.seq[r].astype(np.int64) == (fin_seq + 1) % (1 << 32))
            for jj, rr in zip(j[hit].tolist(), r[hit].tolist()):
                if not seen[jj] or p.frame[rr] < frame[jj]:
                    seen[jj], when[jj], frame[jj] = True, p.ts[rr], p.frame[rr]
            kill = hit & rst_kills[j]
            np.minimum.at(tw.end[:, holder], j[kill], p.ts[r[kill]])
    return Assassination(seen, when, frame)


@dataclass(slots=True)
class Reuse:
    in_time_wait: Mask
    verdict: Obj
    linux_isn: Mask  # the new ISN is the old next sequence + 65537: Linux took over the TIME_WAIT


def reuse_in_time_wait(inc: Incarnations, tw: TimeWait) -> Reuse:
    """A SYN reusing the 4-tuple of the previous incarnation, and what became of it.

    In TIME_WAIT if the SYN came before the holder's TIME_WAIT ended. Accepted when answered by
    a SYN-ACK: for newer timestamps (RFC 6191) when both carried them, else for an ISN above the
    old connection's last sequence (RFC 1122); rejected when answered otherwise (TEARDOWN-RULES
    §TIME_WAIT). Accepting ends the old TIME_WAIT (`tw.end` is updated).
    """
    rows, p, s = inc.o.rows, inc.o.rows.p, inc.sides
    n = inc.n
    in_tw = np.zeros(n, bool)
    verdict = np.full(n, None, object)
    linux_isn = np.zeros(n, bool)
    k = np.flatnonzero((inc.index_in_tuple > 0) & (s.syn_row[:, CLIENT] >= 0))
    if not len(k):
        return Reuse(in_tw, verdict, linux_isn)
    j = k - 1
    syn = s.syn_row[k, CLIENT]
    syn_ts = p.ts[syn]
    held = ~np.isnan(tw.start[j]) & (tw.start[j] <= syn_ts[:, None])
    during = held & (syn_ts[:, None] < tw.end[j])
    in_tw[k] = during.any(axis=1)
    # The new SYN's sender, as a side of the old incarnation.
    old_side = inc.client_cdir[j] ^ inc.client_cdir[k]
    old_nxt = s.nxt_u[j, old_side]
    isn = p.seq[syn].astype(np.int64)
    linux_isn[k] = (old_nxt > -(1 << 61)) & (isn == (old_nxt + LINUX_TW_REUSE_ISN_STEP) % (1 << 32))
    # The holder's first answer decides: a SYN-ACK accepts; a bare ACK of the old connection
    # rejects, even if a retransmitted SYN is accepted later (by the listener, once the
    # client's RST has ended the TIME_WAIT).
    answer = s.first_row[k, SERVER]
    answered = (answer >= 0) & ((p.flags[np.maximum(answer, 0)] & SYN) != 0)
    last_old = s.last_row[j, old_side]
    old_ts = np.where(last_old >= 0, p.tsval[np.maximum(last_old, 0)], -1)
    new_ts = p.tsval[syn]
    newer_ts = (old_ts >= 0) & (new_ts >= 0) & (seq_diff(new_ts, old_ts) > 0)
    isn_above = (old_nxt > -(1 << 61)) & (seq_diff(isn, old_nxt % (1 << 32)) > 0)
    v = np.select([~during.any(axis=1) & held.any(axis=1), ~during.any(axis=1), ~answered,
                   newer_ts, isn_above],
                  [ReuseVerdict.after_time_wait, None, ReuseVerdict.rejected,
                   ReuseVerdict.accepted_timestamps, ReuseVerdict.accepted_isn], None)
    verdict[k] = v
    accepted = during & answered[:, None]
    for side in (CLIENT, SERVER):
        hit = accepted[:, side]
        tw.end[j[hit], side] = np.minimum(tw.end[j[hit], side], syn_ts[hit])
    return Reuse(in_tw, verdict, linux_isn)


def format_addresses(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> Obj:
    """Address text for each (hi, lo) pair; each distinct address is formatted once."""
    import ipaddress

    pairs = np.stack([hi, lo], axis=1)
    uniq, back = np.unique(pairs, axis=0, return_inverse=True)
    text = []
    for h, l in uniq.tolist():
        if h == 0 and l >> 32 == 0xFFFF:
            text.append(str(ipaddress.IPv4Address(l & 0xFFFFFFFF)))
        else:
            text.append(str(ipaddress.IPv6Address((h << 64) | l)))
    return np.array(text, dtype=object)[back.ravel()] if len(text) else np.zeros(0, object)


def _notes(*pairs: tuple[Mask, str | Obj]) -> Obj:
    """Join the remarks that apply to each incarnation with '; '."""
    n = len(pairs[0][0])
    out = np.full(n, "", dtype=object)
    for mask, text in pairs:
        if mask.any():
            add = text[mask] if isinstance(text, np.ndarray) else text
            out[mask] = np.where(out[mask] == "", add, out[mask] + "; " + add)
    return out


def judge(inc: Incarnations, options: Options) -> dict[str, npt.NDArray[np.generic]]:
    """Every flow column (schema.FLOW_COLUMNS) for every incarnation in `inc`."""
    rows, p, s = inc.o.rows, inc.o.rows.p, inc.sides
    n = inc.n
    first = np.where(s.first_row[:, CLIENT] >= 0, s.first_row[:, CLIENT], s.first_row[:, SERVER])
    first = np.where((s.first_row[:, SERVER] >= 0) & (_frame(inc, s.first_row[:, SERVER]) < _frame(inc, first)),
                     s.first_row[:, SERVER], first)
    sent_by_client = inc.side[first] == CLIENT
    c_hi = np.where(sent_by_client, p.src_hi[first], p.dst_hi[first])
    c_lo = np.where(sent_by_client, p.src_lo[first], p.dst_lo[first])
    s_hi = np.where(sent_by_client, p.dst_hi[first], p.src_hi[first])
    s_lo = np.where(sent_by_client, p.dst_lo[first], p.src_lo[first])
    c_port = np.where(sent_by_client, p.sport[first], p.dport[first]).astype(np.int64)
    s_port = np.where(sent_by_client, p.dport[first], p.sport[first]).astype(np.int64)
    addrs = format_addresses(np.r_[c_hi, s_hi], np.r_[c_lo, s_lo])
    client_ip, server_ip = addrs[:n], addrs[n:]
    vlan = p.ctx[first].astype(np.float64)
    vlan[vlan == 0] = np.nan

    c = close_kind(inc)
    profiles = [options.profile_of(h) for h in client_ip] if options.host_os else None
    tw_s = np.full(n, options.behaviour_of(options.os).time_wait_s)
    rst_kills = np.full(n, options.behaviour_of(options.os).rst_kills_time_wait)
    if profiles is not None:
        tw_s = np.array([options.behaviour_of(pr).time_wait_s for pr in profiles])
        rst_kills = np.array([options.behaviour_of(pr).rst_kills_time_wait for pr in profiles])
    tw = time_wait(inc, c, options, tw_s)
    reuse = reuse_in_time_wait(inc, tw)
    kill = tw_assassination(inc, tw, rst_kills)
    holder = tw.holder
    start = np.fmin(tw.start[:, 0], tw.start[:, 1])
    end = np.fmax(tw.end[:, 0], tw.end[:, 1])

    first_ts = np.fmin(_ts(inc, s.first_row[:, 0]), _ts(inc, s.first_row[:, 1]))
    last_ts = np.fmax(_ts(inc, s.last_row[:, 0]), _ts(inc, s.last_row[:, 1]))
    rst_row = c.first_rst_row
    first_rst_by = np.where(rst_row >= 0, inc.side[np.maximum(rst_row, 0)], -1)

    # Half-close and data after FIN: data segments sent after a FIN (the peer's, or one's own).
    g = inc.inc * 2 + inc.side
    data = rows.real & (p.payload > 0)
    own_fin = _frame(inc, s.fin_row.ravel())[g]
    peer_fin = _frame(inc, s.fin_row[:, ::-1].ravel())[g]
    after_peer = firsts(g, data & (p.frame > peer_fin), 2 * n, last=True).reshape(n, 2)
    half = (after_peer >= 0).any(axis=1) & np.isin(c.close_kind, [CloseKind.fin, CloseKind.fin_then_rst,
                                                                  CloseKind.simultaneous, CloseKind.open])
    first_fin_ts = np.fmin(_ts(inc, s.fin_row[:, 0]), _ts(inc, s.fin_row[:, 1]))
    half_s = np.where(half, np.fmax(_ts(inc, after_peer[:, 0]), _ts(inc, after_peer[:, 1])) - first_fin_ts, np.nan)
    after_own = data & (p.frame > own_fin)
    seq_end = rows.seq_u + p.payload
    fin_of_row = s.fin_seq_u.ravel()[g]
    new_data = np.bincount(inc.inc[after_own & (seq_end > fin_of_row)], minlength=n) > 0
    resent = np.bincount(inc.inc[after_own & (seq_end <= fin_of_row)], minlength=n) > 0
    data_after_fin = np.select([new_data, resent], [DataAfterFin.new_data, DataAfterFin.retransmission],
                               DataAfterFin.none).astype(object)

    loss = np.maximum(s.max_ack_u[:, ::-1] - s.nxt_u, 0)
    loss[(s.nxt_u < -(1 << 61)) | (s.max_ack_u[:, ::-1] < -(1 << 61))] = 0
    loss_bytes = loss.sum(axis=1)

    index = inc.index_in_tuple
    vlan_prefix = np.where(np.isnan(vlan), "", "vlan" + np.nan_to_num(vlan).astype(np.int64).astype(str) + "/")
    bracket = lambda ip: np.where(np.char.find(ip.astype(str), ":") >= 0, "[" + ip + "]", ip)  # noqa: E731
    flow_id = (vlan_prefix + bracket(client_ip) + ":" + c_port.astype(str) + ">" + bracket(server_ip) + ":"
               + s_port.astype(str) + "/" + index.astype(str))
    evidence = _evidence(inc, c, s)
    holds = ~np.isnan(tw.start)
    final_ack_missing = (holds & ~tw.final_ack_seen).any(axis=1)
    fin_wait_2 = (c.close_kind == CloseKind.fin) & ((s.fin_row >= 0).sum(axis=1) == 1)
    rst_ignored = kill.seen & ~rst_kills
    notes = _notes(
        (inc.roles_inferred, "roles inferred (no SYN or SYN-ACK in the capture)"),
        (final_ack_missing, "final ACK not in the capture; TIME_WAIT start taken from the peer's FIN"),
        (fin_wait_2, "only one FIN before the capture ended: its sender was in FIN_WAIT_2, not yet TIME_WAIT"),
        (tw.restarts > 0, "the peer retransmitted its FIN: the final ACK was lost"),
        (kill.seen & rst_kills, "TIME_WAIT assassinated by an in-sequence RST (RFC 1337)"),
        (rst_ignored, "in-sequence RST during TIME_WAIT, ignored under this OS profile (RFC 1337 fix)"),
        (reuse.linux_isn, "ISN = old next sequence + 65537: Linux took over the TIME_WAIT"),
        (data_after_fin == DataAfterFin.new_data, "new data after the sender's own FIN (protocol violation)"),
        (loss_bytes > 0, "bytes acknowledged that the capture never saw (capture loss)"),
    )
    return {
        "flow_id": flow_id, "incarnation": index, "client_ip": client_ip, "client_port": c_port,
        "server_ip": server_ip, "server_port": s_port, "ip_version": p.ip_version[first].astype(np.int64),
        "vlan": vlan, "roles_inferred": inc.roles_inferred, "first_ts": first_ts, "last_ts": last_ts,
        "duration_s": last_ts - first_ts, "packets_c2s": s.packets[:, CLIENT], "packets_s2c": s.packets[:, SERVER],
        "bytes_c2s": s.bytes[:, CLIENT], "bytes_s2c": s.bytes[:, SERVER], "handshake": c.handshake,
        "close_kind": c.close_kind, "half_close": half, "half_close_s": half_s,
        "active_closer": side_names(c.active_closer), "first_fin_by": side_names(c.closer),
        "first_fin_ts": first_fin_ts, "first_rst_by": side_names(first_rst_by),
        "first_rst_ts": _ts(inc, rst_row),
        "rst_class": rst_class(inc, c.closing_rst_row),
        "fin_retransmissions_client": np.maximum(s.fin_copies[:, CLIENT] - 1, 0),
        "fin_retransmissions_server": np.maximum(s.fin_copies[:, SERVER] - 1, 0),
        "data_after_fin": data_after_fin, "time_wait_on": side_names(holder),
        "time_wait_start_ts": start, "time_wait_end_ts": end, "time_wait_restarts": tw.restarts,
        "tw_assassination": kill.seen, "tw_assassination_ts": kill.ts,
        "reuses_tuple_in_time_wait": reuse.in_time_wait, "reuse_verdict": reuse.verdict,
        "capture_loss": loss_bytes > 0, "capture_loss_bytes": loss_bytes,
        "evidence_frames": evidence, "notes": notes,
    }


def _evidence(inc: Incarnations, c: Closes, s: object) -> Obj:
    """'syn 1, fin 7 (client), fin 8 (server), ack 9, rst 12' for each incarnation."""
    sd = inc.sides
    p = inc.o.rows.p
    parts: list[tuple[str, I64]] = [("syn", sd.syn_row[:, CLIENT]), ("fin client", sd.fin_row[:, CLIENT]),
                                    ("fin server", sd.fin_row[:, SERVER]),
                                    ("final ack client", sd.ack_of_fin_row[:, CLIENT]),
                                    ("final ack server", sd.ack_of_fin_row[:, SERVER]), ("rst", c.closing_rst_row)]
    out = np.full(inc.n, "", dtype=object)
    for label, row in parts:
        has = row >= 0
        if has.any():
            text = label + " " + p.frame[row[has]].astype(str).astype(object)
            out[has] = np.where(out[has] == "", text, out[has] + ", " + text)
    return out
