"""Incarnation records -> one row of verdicts each: roles, close kind, closer, TIME_WAIT holder
and its interval, RST class, FIN retransmissions, assassination, reuse. Each rule is one
function named after it, computed for all incarnations at once (docs/rules.md is the
specification); the records carry the facts (flows.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from .decode import SYN
from .flows import NONE, Records, RstFact
from .http import NO_CAUSE, close_cause_codes
from .options import Options
from .schema import CloseKind, DataAfterFin, Handshake, ReuseVerdict, RstClass, Side
from .seq import seq_diff

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Obj = npt.NDArray[np.object_]
U8 = npt.NDArray[np.uint8]
Columns = dict[str, npt.NDArray[np.generic]]


class Who(IntEnum):
    """A side as the rules compute it: client and server also index a (n, 2) array of the
    sides' facts; both (a simultaneous close's closers, TIME_WAIT on both), none (nobody)."""

    client = 0
    server = 1
    both = 2
    none = -1


CLIENT, SERVER, BOTH, NOBODY = Who.client, Who.server, Who.both, Who.none
NEVER = np.iinfo(np.int64).max
WELL_KNOWN_PORT_LIMIT = 1024
WELL_KNOWN_PORT_WEIGHT = 1 << 40  # a well-known port outweighs any count of port peers (< 2^32)
LINUX_TW_REUSE_ISN_STEP = 65537  # tcp_timewait_state_process: new ISN = old snd_nxt + 65535 + 2
RST_CLASSES = np.array([None, RstClass.exact, RstClass.in_window, RstClass.out_of_window,
                        RstClass.to_closed_port, RstClass.unverifiable], dtype=object)
NO_RST_R, EXACT_R, IN_WINDOW_R, OUT_OF_WINDOW_R, TO_CLOSED_PORT_R, UNVERIFIABLE_R = range(len(RST_CLASSES))
# Verdicts are computed as small integer codes, indices into these, and named once at the end:
# comparing and selecting strings for 100,000 flows costs more than all the rules together.
KINDS = np.array([k.value for k in CloseKind], dtype=object)
FIN_K, SIMULTANEOUS_K, RST_K, FIN_THEN_RST_K, REFUSED_K, HANDSHAKE_RESET_K, UNANSWERED_K, OPEN_K, UNKNOWN_K = range(
    len(KINDS))
SIDES = np.array([Side.client.value, Side.server.value, Side.both.value, Side.none.value], dtype=object)
HANDSHAKES = np.array([h.value for h in Handshake], dtype=object)
COMPLETE_H, SYN_ONLY_H, SYNACK_ONLY_H, SYN_SYNACK_H, NONE_H, ANSWERED_UNSEEN_H = range(len(HANDSHAKES))
REUSES = np.array([None] + [r.value for r in ReuseVerdict], dtype=object)
DATA_AFTER_FIN = np.array([d.value for d in DataAfterFin], dtype=object)
NO_DATA_D, RESENT_D, NEW_DATA_D = range(len(DATA_AFTER_FIN))


@dataclass(slots=True)
class Sides:
    """The records seen from the roles: `get(name)` gives shape (n, 2), column 0 what the client
    sent, column 1 what the server sent."""

    rec: Records
    client_dir: I64  # canonical direction (0: A sent it) of the client
    cache: dict[str, npt.NDArray[Any]] = field(default_factory=dict)

    def get(self, name: str) -> npt.NDArray[Any]:
        """A read-only (n, 2) array; each field is gathered from the records once."""
        if name not in self.cache:
            x = self.rec[name]
            flip = (self.client_dir == 1).reshape((-1,) + (1,) * (x.ndim - 1))
            out = np.where(flip, x[:, ::-1], x)
            out.flags.writeable = False
            self.cache[name] = out
        return self.cache[name]

    def seen(self, name: str) -> Mask:
        seen: Mask = self.get(name) != NONE
        return seen

    def frame(self, name: str) -> I64:
        """Frame numbers, NEVER where not seen: compare them as "which came first"."""
        f = self.get(name)
        return np.where(f == NONE, NEVER, f)


def roles(rec: Records) -> tuple[I64, Mask]:
    """The client's canonical direction: the sender of the first SYN; else the receiver of the
    first SYN-ACK; else inferred (docs/rules.md "Vocabulary"): the endpoint with the well-known
    port, else the port shared with more peers, is the server; the first sender is a weak hint."""
    client = np.where(rec["pure_syn_dir"] >= 0, rec["pure_syn_dir"],
                      np.where(rec["synack_dir"] >= 0, 1 - rec["synack_dir"], NOBODY))
    inferred = client < 0
    a_score = np.where(rec["a_port"] < WELL_KNOWN_PORT_LIMIT, WELL_KNOWN_PORT_WEIGHT, 0) + rec["port_peers_a"]
    b_score = np.where(rec["b_port"] < WELL_KNOWN_PORT_LIMIT, WELL_KNOWN_PORT_WEIGHT, 0) + rec["port_peers_b"]
    first = rec["first_frame"]
    first_sender = np.where((first[:, 1] != NONE) & ((first[:, 0] == NONE) | (first[:, 1] < first[:, 0])), 1, 0)
    guess = np.where(a_score > b_score, 1, np.where(b_score > a_score, 0, first_sender))
    return np.where(inferred, guess, client).astype(np.int64), inferred


def answered_unseen(s: Sides) -> Mask:
    """The client's SYN, then a segment of the client's that acknowledges something or carries
    data, and nothing from the server: the SYN was answered by a SYN-ACK the capture does not
    hold (RFC 9293 §3.5: a client sends its ACK only on a SYN-ACK). The handshake is unseen,
    not missing (docs/rules.md "Honesty about the capture point")."""
    silent: Mask = s.get("packets")[:, SERVER] == 0
    if not silent.any():  # the common case: every server answered in the capture
        return silent
    syn = s.seen("syn_frame")[:, CLIENT] & (s.get("syn_has_ack")[:, CLIENT] == 0)
    acked_after = s.frame("acking_frame")[:, CLIENT] > s.get("syn_frame")[:, CLIENT]
    answered: Mask = syn & s.seen("acking_frame")[:, CLIENT] & acked_after & silent
    return answered


def handshake_seen(s: Sides) -> I64:
    """complete: SYN, SYN-ACK and the handshake's third segment (the client's first ACK after the
    SYN-ACK, `cut_frame`; an RST there is no third segment: RFC 9293 §3.5); answered_unseen: the
    SYN and the client's ACKs of a SYN-ACK the capture lacks; else what was seen (codes into
    HANDSHAKES; docs/rules.md "Close verdicts" 3)."""
    syn, synack = s.seen("syn_frame")[:, CLIENT], s.seen("syn_frame")[:, SERVER]
    third = s.seen("cut_frame")[:, CLIENT]
    return np.select([syn & synack & third, answered_unseen(s), syn & ~synack, syn & synack, synack],
                     [COMPLETE_H, ANSWERED_UNSEEN_H, SYN_ONLY_H, SYN_SYNACK_H, SYNACK_ONLY_H], NONE_H)


def one_direction(s: Sides) -> Mask:
    """The capture holds one direction of the connection only: segments from one side, which
    acknowledge sequence numbers (or a SYN-ACK) the capture never shows (docs/rules.md
    "Honesty about the capture point"). A lone SYN with nothing toward its sender in the
    capture is one-sided too; `close_kind` finds those (`unknown`)."""
    silent = s.get("packets") == 0
    if not silent.any():
        none: Mask = silent[:, CLIENT]
        return none
    acking = s.seen("acking_frame")
    one: Mask = np.where(silent[:, SERVER], acking[:, CLIENT], silent[:, CLIENT] & acking[:, SERVER])
    one &= ~silent.all(axis=1)
    return one


def syn_unanswered(s: Sides, lone_syn: Mask) -> Mask:
    """A SYN with no answer in the capture is `unanswered` only when the capture proves that no
    answer came: its sender sent it again (it waited and asked again, RFC 6298 §5 / RFC 9293
    §3.8.1), or the direction toward the sender is in the capture (`toward_ts`, _flows.c): its
    target host was seen sending to it, or, unless that host pair is one-sided, any host was
    (docs/rules.md "Honesty about the capture point"). Otherwise the answer may have taken a
    path the capture does not see: `unknown`."""
    if not lone_syn.any():
        return lone_syn
    again = s.get("syn_copies")[:, CLIENT] > 1
    toward = ~np.isnan(s.get("toward_ts")[:, CLIENT])
    proven: Mask = lone_syn & (again | toward)
    return proven


def first_closer(s: Sides) -> I64:
    """The side whose FIN the peer acknowledged before (or with) its own FIN.

    Neither acknowledged -> simultaneous (BOTH); both sides go through CLOSING (RFC 9293 §3.6).
    Decided by seq/ack causality, never by capture order (docs/rules.md "Close verdicts" 1).
    Only one FIN -> its sender. No FIN -> NOBODY.
    """
    fin = s.seen("fin_frame")
    fin_frame, acked_frame = s.frame("fin_frame"), s.frame("ack_of_fin_frame")
    acked_first = np.zeros_like(fin)
    for side in (CLIENT, SERVER):
        peer = 1 - side
        # The peer acknowledged this side's FIN at or before sending its own FIN.
        acked_first[:, side] = fin[:, side] & fin[:, peer] & (acked_frame[:, peer] != NEVER) & (
            acked_frame[:, peer] <= fin_frame[:, peer])
    by_order = np.where(fin_frame[:, CLIENT] <= fin_frame[:, SERVER], CLIENT, SERVER)
    return np.select(
        [~fin.any(axis=1), fin[:, CLIENT] & ~fin[:, SERVER], fin[:, SERVER] & ~fin[:, CLIENT],
         acked_first[:, CLIENT] & ~acked_first[:, SERVER], acked_first[:, SERVER] & ~acked_first[:, CLIENT],
         ~acked_first.any(axis=1)],
        [NOBODY, CLIENT, SERVER, CLIENT, SERVER, BOTH], by_order)


def first_fin_by(s: Sides) -> I64:
    """The side whose FIN the capture shows first (capture order, unlike `first_closer`)."""
    fin = s.frame("fin_frame")
    return np.where((fin == NEVER).all(axis=1), NOBODY, np.argmin(fin, axis=1))


@dataclass(slots=True)
class Closes:
    """The close verdicts of every incarnation (one entry per incarnation)."""

    handshake: I64  # codes into HANDSHAKES
    close_kind: I64  # codes into KINDS
    closer: I64  # Who
    rst_side: I64  # Who sent the RST that ended the connection (else the first ignored one); NOBODY where none
    rst_frame: I64  # NEVER where none
    rst_ts: F64
    rst_class: Obj
    one_sided: Mask  # the capture holds one direction only (one_direction, or close kind unknown)
    closer_inferred: Mask  # one-sided, who closed first inferred from the side seen
    peer_fin_first: Mask  # of those, the unseen peer's FIN came first


def _has(facts: U8, fact: RstFact) -> Mask:
    has: Mask = (facts & int(fact)) != 0
    return has


def rst_to_closed_port(facts: U8) -> Mask:
    """The RST's sender had sent nothing else on the connection, and the RST carries the
    acknowledgment number of the segment it answers as its sequence number, or 0 with the ACK
    bit: the answer of an endpoint with no socket for the 4-tuple. RFC 9293 §3.5.2 (reset
    generation when the connection does not exist), §3.10.7.1 (CLOSED); docs/rules.md "RST
    classes"."""
    answers: Mask = _has(facts, RstFact.answers_ack) | _has(facts, RstFact.zero_ack)
    return answers & ~_has(facts, RstFact.sender_seen)


def rst_unverifiable(facts: U8) -> Mask:
    """The capture lacks the state to judge the RST: nothing but RSTs from its sender, and no ACK
    from its receiver (midstream, one-sided). Our convention (docs/rules.md "RST classes"): the
    test of RFC 9293 §3.5.3 needs what the receiver expects, which the capture does not show."""
    blind: Mask = ~_has(facts, RstFact.sender_seen) & ~_has(facts, RstFact.ack_known)
    return blind


def rst_exact(facts: U8) -> Mask:
    """The RST's sequence number is exactly what its receiver expects next: it is accepted and
    the connection ends. RFC 5961 §3.2 (exact match: reset); RFC 9293 §3.10.7.4 ("second, check
    the RST bit"); docs/rules.md "RST classes"."""
    return _has(facts, RstFact.exact)


def rst_in_window(facts: U8) -> Mask:
    """Inside the receiver's window but not exact: the receiver answers with a challenge ACK and
    the connection survives. RFC 5961 §3.2 (challenge ACK); docs/rules.md "RST classes"."""
    return _has(facts, RstFact.in_window)


def rst_out_of_window(facts: U8) -> Mask:
    """Outside the receiver's window, whose state the capture knows: the receiver drops it, and it
    closes nothing (stale, or injected). RFC 5961 §3.2 (silently dropped); RFC 9293 §3.10.7.4;
    docs/rules.md "RST classes". The flow table applies the same test (`rst_ignored` in
    _flows.c) to keep the RST that may close."""
    outside: Mask = ((_has(facts, RstFact.sender_seen) | _has(facts, RstFact.ack_known))
                     & ~_has(facts, RstFact.exact) & ~_has(facts, RstFact.in_window))
    return outside


def rst_class(facts: U8) -> I64:
    """The class of each RST from its facts (codes into RST_CLASSES), by the precedence of
    docs/rules.md "RST classes": a closed port's answer is known by its form alone; without the
    state to judge it an RST is unverifiable; else exact, in window or out of window."""
    precedence = [
        (TO_CLOSED_PORT_R, rst_to_closed_port(facts)),
        (UNVERIFIABLE_R, rst_unverifiable(facts)),
        (EXACT_R, rst_exact(facts)),
        (IN_WINDOW_R, rst_in_window(facts)),
        (OUT_OF_WINDOW_R, rst_out_of_window(facts)),
    ]
    code: I64 = np.select([when for _, when in precedence], [k for k, _ in precedence], UNVERIFIABLE_R)
    return code


# rst_class of every combination of the facts (six bits), worked out once: a record's class is
# then one lookup (a slice of 16,384 records needs no dozen temporary masks).
RST_CLASS_OF_FACTS = rst_class(np.arange(1 << len(RstFact), dtype=np.uint8)).astype(np.int8)


def closing_rst(s: Sides) -> tuple[I64, I64, F64, Obj, Mask]:
    """The first RST after the handshake's third segment (docs/rules.md "Close verdicts" 4): an
    RST sent while the handshake was under way does not close the connection it completes.
    Its receiver ignores an RST out of its window ("RST classes"): the first RST that could
    close comes first, from either side; a row with only ignored ones shows the first of those.
    (The flow table keeps, per side, the first such RST, else its first ignored one.)
    Returns (side, frame, time, class, whether it could close)."""
    n = len(s.client_dir)
    rows = np.arange(n)
    cut = s.rec["rst_cut_frame"]  # (n, dir, hypothesis "this direction is the client")
    frame = np.where(cut == NONE, NEVER, cut)
    cdir = s.client_dir
    by_dir = frame[rows, :, cdir]  # (n, dir)
    code = RST_CLASS_OF_FACTS[s.rec["rst_cut_facts"][rows, :, cdir]]
    ignored = code == OUT_OF_WINDOW_R
    # Ignored RSTs rank after every RST that could close (frames < 2^62), in their own order.
    first_dir = np.argmin(np.where(ignored & (by_dir != NEVER), by_dir + (1 << 62), by_dir), axis=1)
    f = by_dir[rows, first_dir]
    has = f != NEVER
    side = np.where(has, np.where(first_dir == cdir, CLIENT, SERVER), NOBODY)
    ts = np.where(has, s.rec["rst_cut_ts"][rows, first_dir, cdir], np.nan)
    cls = RST_CLASSES[np.where(has, code[rows, first_dir], NO_RST_R)]
    return side, f, ts, cls, has & ~ignored[rows, first_dir]


def handshake_reset(s: Sides, has_rst: Mask) -> Mask:
    """The SYN-ACK was sent, and an RST ended the handshake before its third segment (the
    client's first ACK after the SYN-ACK): the SYN's sender had no such connection and answered
    the SYN-ACK with an RST (a raw-socket SYN, a half-open scan; RFC 9293 §3.10.7.1), or a side
    aborted while the handshake was under way. Nothing established was closed, so it is not an
    abort (docs/rules.md "Close verdicts" 4); an RST after the third segment is (`rst`)."""
    reset: Mask = has_rst & s.seen("syn_frame")[:, SERVER] & ~s.seen("cut_frame")[:, CLIENT]
    return reset


def close_kind(s: Sides) -> Closes:
    """One close kind per incarnation, by the precedence of docs/rules.md "Close verdicts" 3.

    A lone SYN stays a lone SYN when its sender then gives up with an RST (no SYN-ACK, nothing
    from the peer): `unanswered` or `unknown` by the same proof as without the RST, with
    `first_rst_by` client (docs/rules.md "Close verdicts" 4)."""
    hs = handshake_seen(s)
    rst_side, rst_frame, rst_ts, rst_cls, has_rst = closing_rst(s)
    closer = first_closer(s)
    fin = s.seen("fin_frame")
    first_fin_frame = s.frame("fin_frame").min(axis=1)
    acked = s.seen("ack_of_fin_frame")
    both_done = fin.all(axis=1) & acked.all(axis=1)
    done_by = np.where(both_done, s.frame("ack_of_fin_frame").max(axis=1), NEVER)
    syn = s.seen("syn_frame")
    server_rst = s.frame("rst_frame")[:, SERVER]
    refused = syn[:, CLIENT] & ~syn[:, SERVER] & (server_rst != NEVER) & (server_rst <= s.frame("first_frame")[:, SERVER])
    lone_syn = (syn[:, CLIENT] & (s.get("packets")[:, SERVER] == 0) & ~fin.any(axis=1)
                & (hs != ANSWERED_UNSEEN_H))
    any_fin = fin.any(axis=1)
    # The first that holds decides; none: open.
    precedence = [
        (REFUSED_K, refused),  # a SYN answered by the server's RST before anything else of it
        (HANDSHAKE_RESET_K, handshake_reset(s, has_rst)),
        (UNANSWERED_K, syn_unanswered(s, lone_syn)),
        (UNKNOWN_K, lone_syn),  # a lone SYN whose answer the capture cannot hold
        (RST_K, has_rst & (rst_frame < first_fin_frame)),  # an abort before any FIN
        (FIN_THEN_RST_K, any_fin & has_rst & (rst_frame < done_by)),  # an RST before both FINs were acknowledged
        (SIMULTANEOUS_K, closer == BOTH),  # the FINs crossed
        (FIN_K, any_fin),
        (RST_K, has_rst),  # an RST after an orderly close was over
    ]
    kind = np.select([when for _, when in precedence], [k for k, _ in precedence], OPEN_K)
    one = one_direction(s)
    inferred, peer_first = one_sided_closer(s, one & (kind == FIN_K))
    closer = np.where(peer_first, closer ^ 1, closer)
    return Closes(hs, kind, who_closed(kind, closer, rst_side), rst_side, rst_frame, rst_ts, rst_cls,
                  one | (kind == UNKNOWN_K), inferred, peer_first)


def one_sided_closer(s: Sides, fin_one_sided: Mask) -> tuple[Mask, Mask]:
    """Who closed first when the capture holds only the side that sent the one FIN seen: that
    side, if it later acknowledged more than its FIN did (its final ACK of the peer's later
    FIN); else the peer, whose FIN that side had acknowledged by then. By causality as far as
    one side shows it (docs/rules.md "Close verdicts" 1), so inferred: a peer that never closed
    (CLOSE_WAIT) looks the same. Returns (inferred, the peer's FIN came first)."""
    if not fin_one_sided.any():
        return fin_one_sided, fin_one_sided
    rows = np.arange(len(s.client_dir))
    seen = np.where(s.get("packets")[:, SERVER] == 0, CLIENT, SERVER)
    fin_ack = s.get("fin_ack_u")[rows, seen]
    acked_after = (fin_ack != NONE) & (s.get("max_ack_u")[rows, seen] > fin_ack)
    inferred = fin_one_sided & s.seen("fin_frame")[rows, seen]
    return inferred, inferred & ~acked_after


def who_closed(kind: I64, fin_closer: I64, rst_side: I64) -> I64:
    """Who ended the connection first (docs/rules.md "Vocabulary", active closer): the first
    FIN's sender by causality; for an abort with no FIN before it (`rst`), the RST's sender,
    who holds no TIME_WAIT; nobody when nothing established was closed (refused,
    handshake_reset, unanswered, unknown, open): an RST during the handshake, and a SYN given
    up with an RST, close no connection (docs/rules.md "Close verdicts" 4)."""
    return np.select([kind == RST_K, np.isin(kind, [REFUSED_K, HANDSHAKE_RESET_K, UNANSWERED_K, UNKNOWN_K, OPEN_K])],
                     [rst_side, NOBODY], fin_closer)


def side_names(idx: I64) -> Obj:
    """client / server / both / none for each Who."""
    return SIDES[np.where(idx < 0, 3, idx)]


@dataclass(slots=True)
class TimeWait:
    holder: I64  # Who
    start: F64  # per side, shape (n, 2): NaN where that side holds none
    end: F64
    restarts: I64
    final_ack_seen: Mask  # (n, 2)


def time_wait(s: Sides, c: Closes, tw_s: F64) -> TimeWait:
    """Who holds TIME_WAIT, from when, until when (docs/rules.md "TIME_WAIT").

    The active closer after an orderly close, both after a simultaneous one, nobody after an
    abort. It starts when the holder acknowledges the peer's FIN (or, where that ACK is not in
    the capture, at the peer's FIN) and lasts the holder's 2*MSL (`tw_s`, per side); a
    retransmitted FIN from the peer, which the holder answers at once, restarts it.
    """
    orderly = (c.close_kind == FIN_K) | (c.close_kind == SIMULTANEOUS_K)
    holder = np.where(orderly & (c.closer != NOBODY), c.closer, NOBODY)
    holds = np.stack([(holder == CLIENT) | (holder == BOTH), (holder == SERVER) | (holder == BOTH)], axis=1)
    holds &= s.seen("fin_frame")[:, ::-1]  # still in FIN_WAIT_2 without the peer's FIN: no TIME_WAIT yet
    holder = np.select([holds.all(axis=1), holds[:, CLIENT], holds[:, SERVER]], [BOTH, CLIENT, SERVER], NOBODY)
    ack_seen = s.seen("ack_of_fin_frame")
    peer_fin_ts = s.get("fin_ts")[:, ::-1]
    start = np.where(holds, np.where(ack_seen, s.get("ack_of_fin_ts"), peer_fin_ts), np.nan)
    peer_copies = s.get("fin_copies")[:, ::-1]
    restarts = np.where(holds, np.maximum(peer_copies - 1, 0), 0).sum(axis=1)
    restart_ts = np.where(holds & (peer_copies > 1), s.get("last_fin_ts")[:, ::-1], np.nan)
    end = np.fmax(start, restart_ts) + tw_s
    return TimeWait(holder, start, end, restarts, ack_seen)


def final_ack_lost_after_capture(s: Sides) -> Obj:
    """For a FIN sent again: does the capture show the peer's ACK of it before the last copy?
    Then that ACK was lost beyond the capture point; if not, it was lost before it (or the FIN
    itself was lost beyond it) (RFC 9293 §3.10.7.4; docs/rules.md "Close verdicts" 5). None where
    no FIN was sent again; where both sides sent theirs again, either side's ACK seen first."""
    again: Mask = s.get("fin_copies") > 1  # (n, 2): this side sent its FIN again
    peer_ack_ts = s.get("ack_of_fin_ts")[:, ::-1]  # when the peer acknowledged this side's FIN
    seen_first: Mask = again & s.seen("ack_of_fin_frame")[:, ::-1] & (peer_ack_ts < s.get("last_fin_ts"))
    out = np.full(len(s.client_dir), None, object)
    any_again = np.any(again, axis=1)
    out[any_again] = np.any(seen_first, axis=1)[any_again]
    return out


@dataclass(slots=True)
class Reuse:
    in_time_wait: Mask
    verdict: Obj
    linux_isn: Mask  # the new ISN is the old next sequence + 65537: Linux took over the TIME_WAIT


def reuse_in_time_wait(s: Sides, tw: TimeWait) -> Reuse:
    """A SYN reusing the 4-tuple of the previous incarnation, and what became of it.

    In TIME_WAIT if the SYN came before the holder's TIME_WAIT ended. Accepted when answered by
    a SYN-ACK: for newer timestamps (RFC 6191) when both carried them, else for an ISN above the
    old connection's last sequence (RFC 1122); rejected when answered otherwise (docs/rules.md
    §TIME_WAIT). Accepting ends the old TIME_WAIT (`tw.end` is updated).
    """
    rec = s.rec
    n = len(s.client_dir)
    in_tw = np.zeros(n, bool)
    verdict = np.full(n, None, object)
    linux_isn = np.zeros(n, bool)
    syn_seen = s.seen("syn_frame")[:, CLIENT]
    prev_same = np.r_[False, (rec["tuple_uid"][1:] == rec["tuple_uid"][:-1])
                      & (rec["index_in_tuple"][1:] == rec["index_in_tuple"][:-1] + 1)]
    k = np.flatnonzero(prev_same & syn_seen)
    if not len(k):
        return Reuse(in_tw, verdict, linux_isn)
    j = k - 1
    syn_ts = s.get("syn_ts")[k, CLIENT]
    held = ~np.isnan(tw.start[j]) & (tw.start[j] <= syn_ts[:, None])
    during = held & (syn_ts[:, None] < tw.end[j])
    in_tw[k] = during.any(axis=1)
    # What the old incarnation's side that sends the new SYN had sent: same canonical direction.
    new_dir = s.client_dir[k]
    old_nxt = rec["nxt_u"][j, new_dir]
    isn = s.get("syn_seq")[k, CLIENT]
    linux_isn[k] = (old_nxt != NONE) & (isn == (old_nxt + LINUX_TW_REUSE_ISN_STEP) % (1 << 32))
    # The holder's first answer decides: a SYN-ACK accepts; a bare ACK of the old connection
    # rejects, even if a retransmitted SYN is accepted later (by the listener, once the
    # client's RST has ended the TIME_WAIT).
    answered = s.seen("first_frame")[k, SERVER] & ((s.get("first_flags")[k, SERVER] & SYN) != 0)
    old_ts = rec["last_tsval"][j, new_dir]
    new_ts = s.get("syn_tsval")[k, CLIENT]
    newer_ts = (old_ts >= 0) & (new_ts >= 0) & (seq_diff(new_ts, old_ts) > 0)
    isn_above = (old_nxt != NONE) & (seq_diff(isn, old_nxt % (1 << 32)) > 0)
    code = {v: i + 1 for i, v in enumerate(ReuseVerdict)}
    verdict[k] = REUSES[np.select([~during.any(axis=1) & held.any(axis=1), ~during.any(axis=1), ~answered,
                                   newer_ts, isn_above],
                                  [code[ReuseVerdict.after_time_wait], 0, code[ReuseVerdict.rejected],
                                   code[ReuseVerdict.accepted_timestamps], code[ReuseVerdict.accepted_isn]], 0)]
    accepted = during & answered[:, None]
    for side in (CLIENT, SERVER):
        hit = accepted[:, side]
        tw.end[j[hit], side] = np.minimum(tw.end[j[hit], side], syn_ts[hit])
    return Reuse(in_tw, verdict, linux_isn)


@dataclass(slots=True)
class Assassination:
    seen: Mask
    ts: F64


def tw_assassination(s: Sides, tw: TimeWait, rst_kills: Mask) -> Assassination:
    """An RST reaching a TIME_WAIT holder with exactly the sequence number it expects next (the
    peer's FIN + 1), during TIME_WAIT (RFC 1337; docs/rules.md "TIME_WAIT"). The flow table
    looks for it in the incarnation and in the next one on the tuple (the client's answer to a
    rejected reuse is the classic). Where the holder's profile honours it (`rst_kills`, per
    side), TIME_WAIT ends there (`tw.end` is updated)."""
    kill_frame = s.frame("kill_frame")[:, ::-1]  # sent by the holder's peer
    kill_ts = s.get("kill_ts")[:, ::-1]
    hit = (kill_frame != NEVER) & ~np.isnan(tw.start) & (kill_ts >= tw.start) & (kill_ts < tw.end)
    frame = np.where(hit, kill_frame, NEVER).min(axis=1)
    seen = frame != NEVER
    ts = np.where(hit, kill_ts, np.inf).min(axis=1)
    tw.end[:] = np.where(hit & rst_kills, np.fmin(tw.end, kill_ts), tw.end)
    return Assassination(seen, np.where(seen, ts, np.nan))


@dataclass(slots=True)
class Loss:
    lost: npt.NDArray[Any]  # (n, 2) bytes of the client's, the server's; NaN where one-sided (not judged)
    frame_before_gap: I64  # the segment before the first gap of either side, NONE where none
    frame_after_gap: I64  # the segment after it, NONE where none seen (the tail: nothing after it)
    before_fin: Mask  # a side's first gap ends at its FIN
    before_rst: Mask  # a side's first gap ends at its RST


def capture_loss(s: Sides, one_sided: Mask) -> Loss:
    """Bytes of each side that the peer acknowledged and the capture never showed (docs/rules.md
    "Honesty about the capture point"): gaps in the side's sequence numbers below the peer's
    highest ACK, wherever they lie (at the start, past ISN + 1; in the middle; just before a FIN
    or an RST), and the bytes acknowledged beyond the last one seen. An ACK covers only what its
    receiver got (RFC 9293 §3.4), so acknowledged bytes were sent and passed by, unseen. The flow
    table counts them (`lost_bytes`, _flows.c settle_loss): a retransmission the capture saw
    fills a gap, a keep-alive or window probe (seq = next - 1) opens none. The first gap in
    capture order gives the evidence frames. Not judged when one-sided: the other direction is
    missing, not lost."""
    lost = s.get("lost_bytes")
    before, after = s.get("gap_before_frame"), s.get("gap_after_frame")
    judged = (lost > 0) & ~one_sided[:, None]
    first = np.argmin(np.where(judged, before, NEVER), axis=1)
    rows = np.arange(len(first))
    has = judged.any(axis=1)
    ends_at = judged & (after != NONE)
    before_fin: Mask = (ends_at & (after == s.get("fin_frame"))).any(axis=1)
    before_rst: Mask = (ends_at & (after == s.get("rst_frame"))).any(axis=1)
    out: npt.NDArray[Any] = np.where(one_sided[:, None], np.nan, lost) if one_sided.any() else lost
    return Loss(out, np.where(has, before[rows, first], NONE), np.where(has, after[rows, first], NONE),
                before_fin, before_rst)


NOTES = [  # note_bits: bit i set -> NOTES[i] applies
    "roles inferred (no SYN or SYN-ACK in the capture)",
    "final ACK not in the capture; TIME_WAIT start taken from the peer's FIN",
    "only one FIN before the capture ended: its sender was in FIN_WAIT_2, not yet TIME_WAIT",
    "the peer retransmitted its FIN: the final ACK was lost",
    "TIME_WAIT assassinated by an in-sequence RST (RFC 1337)",
    "in-sequence RST during TIME_WAIT, ignored under this OS profile (RFC 1337 fix)",
    "ISN = old next sequence + 65537: Linux took over the TIME_WAIT",
    "new data after the sender's own FIN (protocol violation)",
    "bytes acknowledged that the capture never saw (capture loss)",
    "one direction only in the capture: TIME_WAIT, the RST's class and capture loss need the other side and are "
    "left empty",
    "one direction only in the capture: who closed first is inferred from the seen side's ACKs (an ACK after its "
    "FIN acknowledges the peer's later FIN; none after it: the peer's FIN came first, or the peer never closed)",
    "one direction only in the capture: the SYN has no answer in it, but the capture lacks the direction toward its "
    "sender, so the answer (SYN-ACK or RST) may have gone by another path",
    "bytes just before a FIN are not in the capture (the peer acknowledged them): the close verdicts rest on the "
    "FIN, which is seen; half_close and data_after_fin rest on the data seen",
    "bytes just before an RST are not in the capture (the peer acknowledged them): the RST's class rests on the "
    "sequence numbers seen, and the data it cut short is unseen",
    # Set where the files are named (analysis.name_files), not here: a row is judged before its file is known.
    "runs on past the end of capture_file into the next file(s) of the capture: display_filter selects its frames "
    "in capture_file only; the next file numbers its frames from 1 again",
]
RUNS_ON_NOTE = len(NOTES) - 1  # note_bits' bit of the last note


def _note_bits(masks: list[Mask]) -> I64:
    bits = np.zeros(len(masks[0]), np.int64)
    for i, mask in enumerate(masks):
        bits |= mask.astype(np.int64) << i
    return bits


def _per_side(options: Options, addresses: tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]) -> tuple[F64, Mask]:
    """TIME_WAIT length and RST handling of each side's host, by its OS profile (n, 2);
    `addresses`: each side's (hi, lo), as the flow table keeps them."""
    n = len(addresses[0])
    base = options.behaviour_of(options.os)
    tw_s = np.full((n, 2), base.time_wait_s)
    kills = np.full((n, 2), base.rst_kills_time_wait)
    if options.host_os:
        for side, ips in enumerate(addresses):
            for ip, profile in options.host_os:
                number = _address_number(ip)
                if number is None:
                    continue
                sel = (ips[:, 0] == number[0]) & (ips[:, 1] == number[1])
                behaviour = options.behaviour_of(profile)
                tw_s[sel, side] = behaviour.time_wait_s
                kills[sel, side] = behaviour.rst_kills_time_wait
    return tw_s, kills


def _address_number(ip: str) -> tuple[int, int] | None:
    """`ip` as the flow table keeps addresses, (hi, lo) with IPv4 as ::ffff:a.b.c.d; None unless
    `ip` is an address written as present.format_addresses writes it (--host-os names hosts as
    the tables show them)."""
    import ipaddress

    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if str(address) != ip or getattr(address, "ipv4_mapped", None) is not None:
        return None
    number = int(address) | (0xFFFF << 32) if address.version == 4 else int(address)
    return number >> 64, number & (1 << 64) - 1


def judge(rec: Records, options: Options) -> Columns:
    """Every flow column (schema.FLOW_COLUMNS) for every incarnation record that is a row, the
    addresses as numbers: client_address and server_address, (n, 2) of (hi, lo), which
    present.readable turns into the columns people read."""
    n = len(rec["a_port"])
    client_dir, inferred = roles(rec)
    s = Sides(rec, client_dir)
    a_is_client = client_dir == 0
    a, b = np.stack([rec["a_hi"], rec["a_lo"]], axis=1), np.stack([rec["b_hi"], rec["b_lo"]], axis=1)
    client, server = np.where(a_is_client[:, None], a, b), np.where(a_is_client[:, None], b, a)
    c_port = np.where(a_is_client, rec["a_port"], rec["b_port"])
    s_port = np.where(a_is_client, rec["b_port"], rec["a_port"])
    ctx = rec["ctx"].astype(np.uint32)

    c = close_kind(s)
    tw_s, rst_kills = _per_side(options, (client, server))
    tw = time_wait(s, c, tw_s)
    reuse = reuse_in_time_wait(s, tw)
    kill = tw_assassination(s, tw, rst_kills)

    first_ts = np.fmin(*s.get("first_ts").T)
    last_ts = np.fmax(*s.get("last_ts").T)
    fin_ts = s.get("fin_ts")
    first_fin_ts = np.fmin(fin_ts[:, 0], fin_ts[:, 1])
    # Half-close: the peer kept sending data after a FIN (docs/rules.md "Close verdicts" 3).
    after_peer = s.seen("data_after_peer_fin_frame")
    half = after_peer.any(axis=1) & np.isin(c.close_kind, [FIN_K, FIN_THEN_RST_K, SIMULTANEOUS_K, OPEN_K])
    half_s = np.where(half, np.fmax(*s.get("data_after_peer_fin_ts").T) - first_fin_ts, np.nan)
    new_data = np.any(s.get("new_data_after_fin") > 0, axis=1)
    resent = (s.get("resent_after_fin") > 0).any(axis=1)
    data_after_fin = DATA_AFTER_FIN[np.select([new_data, resent], [NEW_DATA_D, RESENT_D], NO_DATA_D)]

    one = c.one_sided
    loss = capture_loss(s, one)
    loss_bytes = loss.lost.sum(axis=1)
    time_wait_on = side_names(tw.holder)
    time_wait_on[one & (c.close_kind != UNKNOWN_K)] = None  # starts at the peer's FIN: not in the capture
    c.rst_class[one] = None  # the receiver's state is the unseen side's
    fin_copies = s.get("fin_copies")

    holds = ~np.isnan(tw.start)
    final_ack_missing = np.any(holds & ~tw.final_ack_seen, axis=1)
    # A lone FIN says nothing of the peer's state when the peer's side is not in the capture.
    fin_wait_2: Mask = (c.close_kind == FIN_K) & (s.seen("fin_frame").sum(axis=1) == 1) & ~one
    kills_here = (rst_kills & ~np.isnan(tw.start)).any(axis=1)
    note_bits = _note_bits([
        inferred, final_ack_missing, fin_wait_2, tw.restarts > 0, kill.seen & kills_here, kill.seen & ~kills_here,
        reuse.linux_isn, new_data, loss_bytes > 0, one & (c.close_kind != UNKNOWN_K), c.closer_inferred,
        c.close_kind == UNKNOWN_K, loss.before_fin, loss.before_rst])
    index = rec["index_in_tuple"].copy()  # a view would keep the whole record blob alive
    columns = {
        "incarnation": index, "client_address": client, "client_port": c_port,
        "server_address": server, "server_port": s_port, "ip_version": rec["ip_version"].copy(),
        "also_seen_on": np.full(n, "", object), "duplicates_seen": np.zeros(n, np.int64), "roles_inferred": inferred, "one_sided": one, "first_ts": first_ts, "last_ts": last_ts,
        "duration_s": last_ts - first_ts, "packets_c2s": s.get("packets")[:, CLIENT],
        "packets_s2c": s.get("packets")[:, SERVER], "bytes_c2s": s.get("bytes")[:, CLIENT],
        "bytes_s2c": s.get("bytes")[:, SERVER], "handshake": HANDSHAKES[c.handshake],
        "close_kind": KINDS[c.close_kind], "half_close": half, "half_close_s": half_s,
        "active_closer": side_names(c.closer), "first_fin_by": side_names(np.where(c.peer_fin_first, c.closer, first_fin_by(s))),
        "first_fin_ts": first_fin_ts, "first_rst_by": side_names(c.rst_side), "first_rst_ts": c.rst_ts,
        "rst_class": c.rst_class,
        "fin_retransmissions_client": np.maximum(fin_copies[:, CLIENT] - 1, 0),
        "fin_retransmissions_server": np.maximum(fin_copies[:, SERVER] - 1, 0),
        "final_ack_lost_after_capture": final_ack_lost_after_capture(s),
        "data_after_fin": data_after_fin, "time_wait_on": time_wait_on,
        "time_wait_start_ts": np.fmin(tw.start[:, 0], tw.start[:, 1]),
        "time_wait_end_ts": np.fmax(tw.end[:, 0], tw.end[:, 1]), "time_wait_restarts": tw.restarts,
        "tw_assassination": kill.seen, "tw_assassination_ts": kill.ts,
        "reuses_tuple_in_time_wait": reuse.in_time_wait, "reuse_verdict": reuse.verdict,
        "capture_loss": loss_bytes > 0, "capture_loss_bytes": loss_bytes,
        "capture_loss_bytes_c2s": loss.lost[:, CLIENT], "capture_loss_bytes_s2c": loss.lost[:, SERVER],
        "close_cause": _server_close_causes(s, c),
        "first_frame": s.frame("first_frame").min(axis=1), "last_frame": s.get("last_frame").max(axis=1), "ctx": ctx,
        "first_seq": np.stack([s.get("first_seq")[:, CLIENT], s.get("first_seq")[:, SERVER]], axis=1), "evidence": _evidence(s, c, loss),
        "note_bits": note_bits,
    }
    # Context records are neighbours handed out only to judge these rows; they are rows elsewhere.
    row = rec["context"] == 0
    return columns if row.all() else {k: v[row] for k, v in columns.items()}


def _heads(s: Sides, side: int, rows: I64) -> npt.NDArray[np.bytes_]:
    """The first payload bytes each side sent in `rows`, as fixed-width bytes (b"" where it sent
    none): no Python object per flow, and only as wide as the longest head in these rows."""
    direction = (s.client_dir if side == CLIENT else 1 - s.client_dir)[rows]
    longest = int(s.rec["head_len"][rows, direction].max(initial=0))
    width = max(-(-longest // 8) * 8, 8)  # whole 64-bit words: http.py hashes heads word by word
    heads = np.ascontiguousarray(s.rec["head"][rows, direction, :width])
    lens = s.rec["head_len"][rows, direction]
    heads[np.arange(width)[None, :] >= lens[:, None]] = 0  # the record's bytes past head_len are stale
    return heads.view(f"S{width}").ravel()


def _server_close_causes(s: Sides, c: Closes) -> npt.NDArray[np.int8]:
    """Why the server closed first, read from the payload heads, for the connections whose
    first FIN was the server's (http.py; NO_CAUSE elsewhere): read here, while the heads are
    at hand, so that no row carries 2 x 256 bytes of payload to the host views."""
    out = np.full(len(c.closer), NO_CAUSE, np.int8)
    rows = np.flatnonzero(np.isin(c.close_kind, [FIN_K, FIN_THEN_RST_K]) & (c.closer == SERVER))
    if len(rows):
        out[rows] = close_cause_codes(_heads(s, CLIENT, rows), _heads(s, SERVER, rows))
    return out


# "gap after 12, before 15": the segment before the first gap of capture loss and the one after it.
EVIDENCE_LABELS = ("syn", "fin client", "fin server", "final ack client", "final ack server", "rst", "gap after",
                   "before")


def _evidence(s: Sides, c: Closes, loss: Loss) -> I64:
    """The frames each verdict rests on, (n, 8) in EVIDENCE_LABELS order, NONE where absent."""
    rst = np.where(c.rst_frame == NEVER, NONE, c.rst_frame)
    return np.stack([s.get("syn_frame")[:, CLIENT], s.get("fin_frame")[:, CLIENT], s.get("fin_frame")[:, SERVER],
                     s.get("ack_of_fin_frame")[:, CLIENT], s.get("ack_of_fin_frame")[:, SERVER], rst,
                     loss.frame_before_gap, loss.frame_after_gap], axis=1)
