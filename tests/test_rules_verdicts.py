"""Verdict rules of docs/rules.md on small captures crafted here with scapy, one rule a test:
the truth of each is read off the segments written (which side sent what, which frame number
each got), never off a run of the tool. Frame numbers count from 1 in the order written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import teardown
from teardown.options import Options

from .conftest import CAPTURES
from .crafted import C_ISN, CLIENT, S_ISN, back, seg

pytest.importorskip("scapy")

FLOW_ID = "10.0.0.1:40000>10.0.0.2:8080"
REQUEST = b"GET / HTTP/1.1\r\n\r\n"  # 18 bytes
FINAL_ACK_MISSING = "final ACK not in the capture; TIME_WAIT start taken from the peer's FIN"
FIN_WAIT_2 = "only one FIN before the capture ended: its sender was in FIN_WAIT_2, not yet TIME_WAIT"


def judged(tmp_path: Path, packets: list[Any], **options: Any) -> teardown.Analysis:
    from scapy.utils import wrpcap

    path = tmp_path / "crafted.pcap"
    wrpcap(str(path), packets)
    return teardown.analyze(str(path), Options(**options) if options else None)


def opening(t: float = 0.0, c_isn: int = C_ISN, s_isn: int = S_ISN) -> list[Any]:
    """Frames 1-4: SYN, SYN-ACK, the third segment, the client's 18-byte request."""
    return [seg(t, "S", c_isn), back(t + 0.001, "SA", s_isn, c_isn + 1), seg(t + 0.002, "A", c_isn + 1, s_isn + 1),
            seg(t + 0.003, "PA", c_isn + 1, s_isn + 1, REQUEST)]


def text(analysis: teardown.Analysis, name: str) -> list[str]:
    """A text column as the flow table writes it (rows.py), after checking that the columns the
    findings quote from (verdicts.text_columns, a few rows at a time) say the same."""
    table = analysis.flows[name].tolist()
    assert analysis.columns.at(name, np.arange(len(table))).tolist() == table  # before the whole column is built
    assert analysis.columns[name].dtype == object and analysis.columns[name].tolist() == table
    assert analysis.columns.text_at(np.arange(len(table)))[name].tolist() == table
    return table


# ---- flow_id, evidence_frames, notes -----------------------------------------------------------


def test_the_frames_a_server_first_close_rests_on(tmp_path: Path) -> None:
    """Frames 5 (the server's FIN), 6 (the client's FIN, acknowledging it); the server's final
    ACK of 6 never came: the server holds TIME_WAIT from the client's FIN, and says so."""
    c, s = C_ISN + 19, S_ISN + 1
    a = judged(tmp_path, opening() + [back(0.1, "FA", s, c), seg(0.2, "FA", c, s + 1)])
    assert text(a, "flow_id") == [f"{FLOW_ID}/0"]
    assert text(a, "evidence_frames") == ["syn 1, fin client 6, fin server 5, final ack client 6"]
    assert text(a, "notes") == [FINAL_ACK_MISSING]
    (r,) = a.flows.itertuples()
    assert (r.close_kind, r.active_closer, r.time_wait_on) == ("fin", "server", "server")
    assert r.time_wait_start_ts == pytest.approx(0.2)  # the client's FIN: the ACK that starts it is unseen


def test_every_frame_of_an_orderly_close_and_an_rst_in_time_wait(tmp_path: Path) -> None:
    """Client first: its FIN 5, the server's FIN 6 acknowledging it, the final ACK 7; then the
    server's RST 8 with the sequence number the client's TIME_WAIT expects (RFC 1337)."""
    c, s = C_ISN + 19, S_ISN + 1
    a = judged(tmp_path, opening() + [seg(0.1, "FA", c, s), back(0.2, "FA", s, c + 1), seg(0.3, "A", c + 1, s + 1),
                                      back(0.4, "R", s + 1)])
    assert text(a, "evidence_frames") == ["syn 1, fin client 5, fin server 6, final ack client 7, "
                                          "final ack server 6, rst 8"]
    assert text(a, "notes") == ["TIME_WAIT assassinated by an in-sequence RST (RFC 1337)"]
    (r,) = a.flows.itertuples()
    assert (r.close_kind, r.time_wait_on, r.tw_assassination) == ("fin", "client", True)
    assert r.time_wait_end_ts == pytest.approx(0.4)  # linux lets the RST end it


def test_a_lone_fin_is_fin_wait_2(tmp_path: Path) -> None:
    c, s = C_ISN + 19, S_ISN + 1
    a = judged(tmp_path, opening() + [back(0.1, "A", s, c), seg(0.2, "FA", c, s), back(0.3, "A", s, c + 1)])
    assert text(a, "notes") == [FIN_WAIT_2]
    assert text(a, "evidence_frames") == ["syn 1, fin client 6, final ack server 7"]


def test_flow_ids_of_ipv6_in_a_vlan_and_of_a_second_incarnation(tmp_path: Path) -> None:
    """docs/rules.md "Vocabulary": the carrier is part of the identity (vlanN/); an IPv6 address
    is bracketed so its port cannot be read as part of it; incarnations count from 0."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Dot1Q, Ether

    def v6(t: float, flags: str, seq: int, ack: int = 0, reply: bool = False) -> Any:
        a, b = ("fd00::1", 40000), ("fd00::2", 8080)
        src, dst = (b, a) if reply else (a, b)
        p = Ether() / Dot1Q(vlan=7) / IPv6(src=src[0], dst=dst[0]) / TCP(sport=src[1], dport=dst[1], flags=flags,
                                                                         seq=seq, ack=ack)
        p.time = t
        return p

    packets = [v6(0, "S", 100), v6(0.1, "RA", 0, 101, reply=True), v6(1, "S", 9000), v6(1.1, "RA", 0, 9001, reply=True)]
    a = judged(tmp_path, packets)
    assert text(a, "flow_id") == ["vlan7/[fd00::1]:40000>[fd00::2]:8080/0", "vlan7/[fd00::1]:40000>[fd00::2]:8080/1"]
    assert a.columns.at("flow_id", np.array([1])).tolist() == ["vlan7/[fd00::1]:40000>[fd00::2]:8080/1"]
    assert a.flows["close_kind"].tolist() == ["refused", "refused"]
    assert a.flows["vlan"].tolist() == [7, 7]


# ---- who is the client (docs/rules.md "Vocabulary", client and server) -------------------------


def midstream(first_from: tuple[str, int], other: tuple[str, int], t: float = 0.0) -> list[Any]:
    """Two data segments of a connection caught midstream, the first from `first_from`."""
    return [seg(t, "PA", 7000, 3000, b"x" * 10, src=first_from, dst=other),
            seg(t + 0.001, "A", 3000, 7010, src=other, dst=first_from)]


@pytest.mark.parametrize(("first", "other", "server"), [
    (("10.0.0.2", 1023), ("10.0.0.1", 50000), ("10.0.0.2", 1023)),  # the well-known port, though it spoke first
    (("10.0.0.1", 1023), ("10.0.0.2", 50000), ("10.0.0.1", 1023)),  # the same, on the smaller address
    (("10.0.0.1", 50000), ("10.0.0.2", 1023), ("10.0.0.2", 1023)),
    (("10.0.0.2", 1024), ("10.0.0.1", 50000), ("10.0.0.1", 50000)),  # 1024 is not well known: the first sender
    (("10.0.0.1", 50000), ("10.0.0.2", 1024), ("10.0.0.2", 1024)),
], ids=["well-known-spoke-first", "well-known-on-the-smaller-address", "well-known-answered", "1024-spoke-first",
        "1024-answered"])
def test_roles_of_a_connection_caught_midstream(tmp_path: Path, first: tuple[str, int], other: tuple[str, int],
                                                server: tuple[str, int]) -> None:
    a = judged(tmp_path, midstream(first, other))
    (r,) = a.flows.itertuples()
    assert (r.server_ip, r.server_port) == server and r.roles_inferred
    # The first segment carries 10 bytes, the answer none: each direction counted as the client's or the server's.
    assert (r.bytes_c2s, r.bytes_s2c) == ((0, 10) if first == server else (10, 0))
    assert (r.packets_c2s, r.packets_s2c) == (1, 1)
    assert (r.handshake, r.close_kind) == ("none", "open")
    assert text(a, "notes") == ["roles inferred (no SYN or SYN-ACK in the capture)"]


def test_the_port_shared_with_more_peers_is_the_server(tmp_path: Path) -> None:
    """10.0.0.2:5000 talks to two peers midstream: it is the server of the second, though it
    spoke first there; neither port is well known. (The peers are those seen so far: the flow
    table counts them as the connections come, _flows.c.)"""
    hub = ("10.0.0.2", 5000)
    a = judged(tmp_path, midstream(("10.0.0.3", 40001), hub) + midstream(hub, ("10.0.0.1", 40000), t=1))
    assert sorted(zip(a.flows["client_ip"], a.flows["server_ip"], a.flows["server_port"])) == [
        ("10.0.0.1", "10.0.0.2", 5000), ("10.0.0.3", "10.0.0.2", 5000)]


def test_the_receiver_of_a_syn_ack_is_the_client(tmp_path: Path) -> None:
    """Only the SYN-ACK and what follows are in the capture: its receiver is the client, even on
    a well-known port."""
    c, s = ("10.0.0.1", 80), ("10.0.0.2", 50000)
    a = judged(tmp_path, [seg(0, "SA", S_ISN, C_ISN + 1, src=s, dst=c), seg(0.001, "A", C_ISN + 1, S_ISN + 1, src=c, dst=s),
                          seg(0.002, "PA", C_ISN + 1, S_ISN + 1, REQUEST, src=c, dst=s)])
    (r,) = a.flows.itertuples()
    assert (r.client_ip, r.client_port, r.handshake, r.roles_inferred) == ("10.0.0.1", 80, "synack_only", False)
    assert (r.packets_c2s, r.packets_s2c, r.bytes_c2s, r.bytes_s2c) == (2, 1, 18, 0)


# ---- TIME_WAIT: holder, length, restarts, assassination (docs/rules.md "TIME_WAIT") -----------


def client_first_close(t: float = 0.1) -> list[Any]:
    """After opening(): the client's FIN (frame 5), the server's FIN acknowledging it (6), the
    client's final ACK (7), 0.1 s apart from `t`."""
    c, s = C_ISN + 19, S_ISN + 1
    return [seg(t, "FA", c, s), back(t + 0.1, "FA", s, c + 1), seg(t + 0.2, "A", c + 1, s + 1)]


def test_time_wait_lasts_the_holders_profile(tmp_path: Path) -> None:
    """The client holds it from its final ACK (0.3 s): 60 s under linux, 240 s when the client
    runs Windows (--host-os), whatever the server runs."""
    packets = opening() + client_first_close()
    for options, end in (({}, 60.3), ({"host_os": (("10.0.0.1", "windows"),)}, 240.3),
                         ({"host_os": (("10.0.0.2", "windows"),)}, 60.3), ({"os": "macos"}, 30.3)):
        (r,) = judged(tmp_path, packets, **options).flows.itertuples()
        assert (r.time_wait_on, r.time_wait_start_ts) == ("client", pytest.approx(0.3))
        assert r.time_wait_end_ts == pytest.approx(end), options


def test_an_rst_in_time_wait_is_ignored_where_the_profile_applies_rfc_1337(tmp_path: Path) -> None:
    """The server's RST carries the client's expected sequence number (its FIN + 1). Linux ends
    the TIME_WAIT there; macos and bsd ignore it: the TIME_WAIT runs its length, and the
    assassination is still told, with the note that it was ignored."""
    packets = opening() + client_first_close() + [back(5.0, "R", S_ISN + 2)]
    (linux,) = judged(tmp_path, packets).flows.itertuples()
    assert (linux.tw_assassination, linux.tw_assassination_ts, linux.time_wait_end_ts) == (
        True, pytest.approx(5.0), pytest.approx(5.0))
    a = judged(tmp_path, packets, host_os=(("10.0.0.1", "bsd"),))
    (bsd,) = a.flows.itertuples()
    assert (bsd.tw_assassination, bsd.tw_assassination_ts, bsd.time_wait_end_ts) == (
        True, pytest.approx(5.0), pytest.approx(60.3))
    assert text(a, "notes") == ["in-sequence RST during TIME_WAIT, ignored under this OS profile (RFC 1337 fix)"]


def test_an_rst_after_the_time_wait_ended_kills_nothing(tmp_path: Path) -> None:
    packets = opening() + client_first_close() + [back(61.0, "R", S_ISN + 2)]
    (r,) = judged(tmp_path, packets).flows.itertuples()
    assert (r.close_kind, r.tw_assassination, r.time_wait_end_ts) == ("fin", False, pytest.approx(60.3))


def test_an_rst_out_of_sequence_in_time_wait_is_no_assassination(tmp_path: Path) -> None:
    packets = opening() + client_first_close() + [back(5.0, "R", S_ISN + 2 + 1000)]
    (r,) = judged(tmp_path, packets).flows.itertuples()
    assert (r.tw_assassination, r.time_wait_end_ts) == (False, pytest.approx(60.3))


def test_a_fin_sent_again_restarts_the_time_wait_from_the_last_copy(tmp_path: Path) -> None:
    """The server's FIN comes again at 1.2 s (the final ACK at 0.3 s was lost beyond the capture
    point): the client's TIME_WAIT restarts then, and the ACK lost after the capture is told."""
    c, s = C_ISN + 19, S_ISN + 1
    packets = opening() + client_first_close() + [back(1.2, "FA", s, c + 1), seg(1.21, "A", c + 1, s + 1)]
    a = judged(tmp_path, packets)
    (r,) = a.flows.itertuples()
    assert (r.fin_retransmissions_server, r.fin_retransmissions_client, r.time_wait_restarts) == (1, 0, 1)
    assert bool(r.final_ack_lost_after_capture)
    assert (r.time_wait_start_ts, r.time_wait_end_ts) == (pytest.approx(0.3), pytest.approx(61.2))
    assert text(a, "notes") == ["the peer retransmitted its FIN: the final ACK was lost"]


def test_the_servers_time_wait_restarts_on_the_clients_fin_sent_again(tmp_path: Path) -> None:
    """Server first: its final ACK (0.3 s) lost beyond the capture point, the client's FIN comes
    again at 1.2 s and the server answers it: its TIME_WAIT runs 60 s from then."""
    c, s = C_NXT, S_NXT
    a = judged(tmp_path, opening() + [back(0.1, "FA", s, c), seg(0.2, "FA", c, s + 1), back(0.3, "A", s + 1, c + 1),
                                      seg(1.2, "FA", c, s + 1), back(1.21, "A", s + 1, c + 1)])
    (r,) = a.flows.itertuples()
    assert (r.time_wait_on, r.fin_retransmissions_client, r.time_wait_restarts) == ("server", 1, 1)
    assert (r.time_wait_start_ts, r.time_wait_end_ts) == (pytest.approx(0.3), pytest.approx(61.2))
    assert bool(r.final_ack_lost_after_capture)


def test_the_final_ack_seen_before_the_fin_came_again_and_nothing_after(tmp_path: Path) -> None:
    """Server first; the client's FIN+ACK (frame 6) acknowledges the server's FIN, yet the FIN
    comes again (7): the ACK was lost beyond the capture point. The capture ends before the
    server acknowledges the client's FIN."""
    c, s = C_NXT, S_NXT
    a = judged(tmp_path, opening() + [back(0.1, "FA", s, c), seg(0.2, "FA", c, s + 1), back(1.0, "FA", s, c),
                                      seg(1.01, "A", c + 1, s + 1)])
    (r,) = a.flows.itertuples()
    assert (r.close_kind, r.active_closer, r.fin_retransmissions_server) == ("fin", "server", 1)
    assert bool(r.final_ack_lost_after_capture)


def test_a_lone_fin_sent_twice_is_still_no_time_wait(tmp_path: Path) -> None:
    """The client in FIN_WAIT_2 (its FIN acknowledged, none from the server) holds no TIME_WAIT,
    however many times it sent its FIN."""
    a = judged(tmp_path, opening() + [seg(0.1, "FA", C_NXT, S_NXT), seg(0.5, "FA", C_NXT, S_NXT),
                                      back(0.51, "A", S_NXT, C_NXT + 1)])
    (r,) = a.flows.itertuples()
    assert (r.close_kind, r.time_wait_on, r.fin_retransmissions_client) == ("fin", "none", 1)
    assert pd.isna(r.time_wait_start_ts) and pd.isna(r.time_wait_end_ts)


def test_a_fin_sent_again_before_any_ack_of_it(tmp_path: Path) -> None:
    """The client's FIN twice, the server's FIN+ACK only after the second: the ACK (or the first
    FIN) was lost before the capture point, or beyond it."""
    c, s = C_ISN + 19, S_ISN + 1
    packets = opening() + [seg(0.1, "FA", c, s), seg(0.4, "FA", c, s), back(0.5, "FA", s, c + 1),
                           seg(0.6, "A", c + 1, s + 1)]
    (r,) = judged(tmp_path, packets).flows.itertuples()
    assert (r.fin_retransmissions_client, r.time_wait_restarts, bool(r.final_ack_lost_after_capture)) == (1, 0, False)
    assert (r.time_wait_on, r.time_wait_start_ts, r.time_wait_end_ts) == ("client", pytest.approx(0.6),
                                                                         pytest.approx(60.6))


# ---- close kinds, in the precedence of docs/rules.md "Close verdicts" 3 and 4 ---------------------


def mirrored(packets: list[Any], mirror: bool) -> list[Any]:
    """The client moved from 10.0.0.1 to 10.0.0.3, above the server's address: the flow table
    keeps each connection's facts by address order (flows.py), so the verdicts must not depend on
    which of the two the client is."""
    from scapy.layers.inet import IP

    out = [p.copy() for p in packets]  # the tables below are shared by every test
    for p in out if mirror else []:
        for field in ("src", "dst"):
            if getattr(p[IP], field) == CLIENT[0]:
                setattr(p[IP], field, "10.0.0.3")
    return out


C_NXT, S_NXT = C_ISN + 19, S_ISN + 1  # after opening(): the client's next sequence number, the server's
CLOSES = {
    # name: (segments after opening(), or the whole capture; close_kind, active_closer, first_fin_by,
    #        first_rst_by, time_wait_on)
    "four_segment_client_first": (
        [seg(0.1, "FA", C_NXT, S_NXT), back(0.2, "A", S_NXT, C_NXT + 1), back(0.3, "FA", S_NXT, C_NXT + 1),
         seg(0.4, "A", C_NXT + 1, S_NXT + 1)], "fin", "client", "client", "none", "client"),
    "three_segment_server_first": (
        [back(0.1, "FA", S_NXT, C_NXT), seg(0.2, "FA", C_NXT, S_NXT + 1), back(0.3, "A", S_NXT + 1, C_NXT + 1)],
        "fin", "server", "server", "none", "server"),
    "fins_crossing": (  # neither FIN acknowledges the other: both in CLOSING
        [seg(0.1, "FA", C_NXT, S_NXT), back(0.1001, "FA", S_NXT, C_NXT), seg(0.2, "A", C_NXT + 1, S_NXT + 1),
         back(0.2001, "A", S_NXT + 1, C_NXT + 1)], "simultaneous", "both", "client", "none", "both"),
    "fin_in_capture_order_second_by_causality_first": (  # the server's FIN acknowledges the client's, seen later
        [back(0.1, "FA", S_NXT, C_NXT + 1), seg(0.1001, "FA", C_NXT, S_NXT), seg(0.2, "A", C_NXT + 1, S_NXT + 1),
         back(0.2001, "A", S_NXT + 1, C_NXT + 1)], "fin", "client", "server", "none", "client"),
    "fin_in_capture_order_first_by_causality_second": (  # the client's FIN acknowledges the server's, seen later
        [seg(0.1, "FA", C_NXT, S_NXT + 1), back(0.1001, "FA", S_NXT, C_NXT), back(0.2, "A", S_NXT + 1, C_NXT + 1)],
        "fin", "server", "client", "none", "server"),
    "abort_by_the_server": ([back(0.1, "R", S_NXT)], "rst", "server", "none", "server", "none"),
    "an_rst_out_of_window_then_one_that_closes": (  # the client drops the first ("RST classes"); the second ends it
        [back(0.1, "R", S_NXT + 10_000_000), seg(0.2, "R", C_NXT)], "rst", "client", "none", "client", "none"),
    "abort_by_the_client_with_ack": ([seg(0.1, "RA", C_NXT, S_NXT)], "rst", "client", "none", "client", "none"),
    "rst_after_the_first_fin": (
        [seg(0.1, "FA", C_NXT, S_NXT), back(0.2, "R", S_NXT)], "fin_then_rst", "client", "client", "server", "none"),
    "rst_before_the_final_ack": (
        [seg(0.1, "FA", C_NXT, S_NXT), back(0.2, "FA", S_NXT, C_NXT + 1), seg(0.3, "R", C_NXT + 1)],
        "fin_then_rst", "client", "client", "client", "none"),
    "still_open": ([], "open", "none", "none", "none", "none"),
}


@pytest.mark.parametrize("mirror", [False, True], ids=["client-below", "client-above"])
@pytest.mark.parametrize("name", list(CLOSES))
def test_close_kind(tmp_path: Path, name: str, mirror: bool) -> None:
    after, *want = CLOSES[name]
    a = judged(tmp_path, mirrored(opening() + after, mirror))
    (r,) = a.flows.itertuples()
    assert [r.close_kind, r.active_closer, r.first_fin_by, r.first_rst_by, r.time_wait_on] == want
    assert r.handshake == "complete"
    assert (r.client_ip, r.client_port, r.server_ip, r.server_port) == ("10.0.0.3" if mirror else "10.0.0.1", 40000,
                                                                        "10.0.0.2", 8080)
    assert (r.bytes_c2s, r.bytes_s2c) == (18, 0)
    assert a.columns["first_seq"].tolist() == [[C_ISN, S_ISN]]  # each side's ISN, the client's first


HANDSHAKES = {
    # name: (the capture; close_kind, handshake, first_rst_by)
    "refused": ([seg(0, "S", C_ISN), back(0.001, "RA", 0, C_ISN + 1)], "refused", "syn_only", "server"),
    "synack_answered_by_the_clients_rst": (
        [seg(0, "S", C_ISN), back(0.001, "SA", S_ISN, C_ISN + 1), seg(0.002, "R", C_ISN + 1)],
        "handshake_reset", "syn_synack", "client"),
    "server_aborts_before_the_third_segment": (
        [seg(0, "S", C_ISN), back(0.001, "SA", S_ISN, C_ISN + 1), back(0.002, "R", S_ISN + 1)],
        "handshake_reset", "syn_synack", "server"),
    "syn_sent_again": ([seg(0, "S", C_ISN), seg(1, "S", C_ISN)], "unanswered", "syn_only", "none"),
    "syn_then_its_senders_rst": ([seg(0, "S", C_ISN), seg(1, "S", C_ISN), seg(1.5, "R", C_ISN + 1)],
                                 "unanswered", "syn_only", "client"),
    "syn_once": ([seg(0, "S", C_ISN)], "unknown", "syn_only", "none"),
    "syn_with_data_sent_again": (  # TCP Fast Open: the SYN's own data acknowledges nothing of an answer
        [seg(0, "S", C_ISN, payload=REQUEST), seg(1, "S", C_ISN, payload=REQUEST)], "unanswered", "syn_only", "none"),
    "synack_only": ([back(0, "SA", S_ISN, C_ISN + 1), seg(0.001, "A", C_ISN + 1, S_ISN + 1)], "open",
                    "synack_only", "none"),
    "syn_synack_no_third": ([seg(0, "S", C_ISN), back(0.001, "SA", S_ISN, C_ISN + 1)], "open", "syn_synack", "none"),
}


@pytest.mark.parametrize("mirror", [False, True], ids=["client-below", "client-above"])
@pytest.mark.parametrize("name", list(HANDSHAKES))
def test_handshake_and_what_ended_it(tmp_path: Path, name: str, mirror: bool) -> None:
    """Nothing established was closed: no active closer, no TIME_WAIT (docs/rules.md "Close
    verdicts" 4)."""
    packets, *want = HANDSHAKES[name]
    (r,) = judged(tmp_path, mirrored(packets, mirror)).flows.itertuples()
    assert [r.close_kind, r.handshake, r.first_rst_by] == want
    assert (r.active_closer, r.time_wait_on, r.first_fin_by) == ("none", "none", "none")


# ---- a SYN reusing the 4-tuple (docs/rules.md "TIME_WAIT", Reuse) --------------------------------

def stamped(packet: Any, tsval: int) -> Any:
    """`packet` carrying the timestamps option (RFC 7323) with `tsval`."""
    from scapy.layers.inet import TCP

    packet[TCP].options = [("Timestamp", (tsval, 0))]
    return packet


def reuse(t: float, isn: int, answer: str, tsval: int | None = None) -> list[Any]:
    """A client-first close (the client's TIME_WAIT from 0.3 s to 60.3 s), then at `t` a SYN from
    the same port with ISN `isn`, answered by a SYN-ACK ("synack") or by a bare ACK of the old
    connection ("ack": a TIME_WAIT rejecting it). With `tsval`, every client segment carries
    timestamps, 100 and up in the first connection, `tsval` in the new SYN."""
    first = opening() + client_first_close()
    if tsval is not None:
        first = [stamped(p, 100 + i) if p.sport == CLIENT[1] else stamped(p, 7000 + i) for i, p in enumerate(first)]
    syn = seg(t, "S", isn)
    if tsval is not None:
        syn = stamped(syn, tsval)
    if answer == "synack":
        return first + [syn, back(t + 0.001, "SA", 90000, isn + 1), seg(t + 0.002, "A", isn + 1, 90001)]
    return first + [syn, back(t + 0.001, "A", S_NXT + 1, C_NXT + 1)]


@pytest.mark.parametrize(("t", "isn", "answer", "tsval", "verdict", "in_time_wait", "old_end"), [
    (10.0, C_ISN + 100_000, "synack", None, "accepted_isn", True, 10.0),  # beyond the old next sequence (RFC 1122)
    (10.0, (C_ISN - 100_000) % 2**32, "synack", None, None, True, 10.0),  # accepted, and neither rule says why
    (10.0, C_ISN + 100_000, "ack", None, "rejected", True, 60.3),
    (70.0, C_ISN + 100_000, "synack", None, "after_time_wait", False, 60.3),
    (10.0, (C_ISN - 100_000) % 2**32, "synack", 200, "accepted_timestamps", True, 10.0),  # newer TSval (RFC 6191)
    (10.0, C_ISN + 100_000, "synack", 50, "accepted_isn", True, 10.0),  # an older TSval: the ISN decides
    (60.3, C_ISN + 100_000, "synack", None, "after_time_wait", False, 60.3),  # at its end: no longer in it
], ids=["isn-above", "isn-below", "rejected", "after", "newer-timestamp", "older-timestamp", "at-the-end"])
@pytest.mark.parametrize("mirror", [False, True], ids=["client-below", "client-above"])
def test_reuse_verdict(tmp_path: Path, t: float, isn: int, answer: str, tsval: int | None, verdict: str | None,
                       in_time_wait: bool, old_end: float, mirror: bool) -> None:
    a = judged(tmp_path, mirrored(reuse(t, isn, answer, tsval), mirror))
    old, new = a.flows.itertuples()
    assert (new.incarnation, new.reuses_tuple_in_time_wait) == (1, in_time_wait)
    assert (None if pd.isna(new.reuse_verdict) else new.reuse_verdict) == verdict
    assert (old.time_wait_on, old.time_wait_end_ts) == ("client", pytest.approx(old_end))  # accepting ends it
    assert pd.isna(old.reuse_verdict)  # the first incarnation of the 4-tuple
    assert a.columns["reuse_verdict"].tolist()[0] is None


def test_the_linux_isn_of_a_time_wait_taken_over(tmp_path: Path) -> None:
    """Linux chooses the new ISN as the old next sequence number + 65,537: the client's next
    sequence number after its FIN was C_ISN + 20."""
    a = judged(tmp_path, reuse(10.0, C_ISN + 20 + 65537, "synack"))
    assert text(a, "notes")[1] == "ISN = old next sequence + 65537: Linux took over the TIME_WAIT"
    assert a.flows["reuse_verdict"].tolist()[1] == "accepted_isn"
    b = judged(tmp_path, reuse(10.0, C_ISN + 20 + 65536, "synack"))
    assert text(b, "notes")[1] == ""


# ---- what else a row says ----------------------------------------------------------------------


def test_ipv4_and_ipv6_connections_in_one_capture(tmp_path: Path) -> None:
    """Each address written in its own family (an IPv4 one never as ::ffff:a.b.c.d)."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    v6 = Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=40000, dport=443, flags="S", seq=1)
    v6.time = 0.5
    a = judged(tmp_path, [seg(0, "S", C_ISN), v6, seg(1, "S", C_ISN)])
    assert sorted(zip(a.flows["client_ip"], a.flows["server_ip"], a.flows["ip_version"])) == [
        ("10.0.0.1", "10.0.0.2", 4), ("2001:db8::1", "2001:db8::2", 6)]


def test_counts_times_and_the_half_close(tmp_path: Path) -> None:
    """The client closes its side at 0.1 s (frame 5); the server sends 100 bytes at 0.5 s and 200
    at 1.5 s after it, then closes: a half-close of 1.4 s. Segments and payload bytes per
    direction, the first and last instants, the first FIN's instant."""
    c, s = C_NXT, S_NXT
    a = judged(tmp_path, opening(t=1000.0) + [
        seg(1000.1, "FA", c, s), back(1000.5, "PA", s, c + 1, b"x" * 100), seg(1000.51, "A", c + 1, s + 100),
        back(1001.5, "PA", s + 100, c + 1, b"y" * 200), back(1001.6, "FA", s + 300, c + 1),
        seg(1001.7, "A", c + 1, s + 301)])
    (r,) = a.flows.itertuples()
    assert (r.close_kind, r.active_closer, r.time_wait_on, r.half_close) == ("fin", "client", "client", True)
    assert r.half_close_s == pytest.approx(1.4)
    assert (r.packets_c2s, r.packets_s2c, r.bytes_c2s, r.bytes_s2c) == (6, 4, 18, 300)
    assert (r.first_ts, r.last_ts, r.duration_s) == (pytest.approx(1000.0), pytest.approx(1001.7), pytest.approx(1.7))
    assert r.first_fin_ts == pytest.approx(1000.1) and r.data_after_fin == "none"
    assert a.columns["first_frame"].tolist() == [1]


@pytest.mark.parametrize(("payload_seq", "verdict", "note"), [
    (C_NXT - 18, "retransmission", ""),  # the request again, below the FIN: legal
    (C_NXT + 1, "new_data", "new data after the sender's own FIN (protocol violation)"),  # beyond the FIN
], ids=["resent", "new"])
def test_data_after_the_senders_own_fin(tmp_path: Path, payload_seq: int, verdict: str, note: str) -> None:
    a = judged(tmp_path, opening() + [seg(0.1, "FA", C_NXT, S_NXT), seg(0.2, "PA", payload_seq, S_NXT, REQUEST)])
    assert a.flows["data_after_fin"].tolist() == [verdict]
    assert text(a, "notes") == ["; ".join(filter(None, [FIN_WAIT_2, note]))]


def test_a_findings_examples_are_the_flow_ids_of_the_table(tmp_path: Path) -> None:
    """Two refused attempts on one port, the second with a new ISN: incarnations 0 and 1."""
    a = judged(tmp_path, [seg(0, "S", C_ISN), back(0.001, "RA", 0, C_ISN + 1), seg(1, "S", C_ISN + 5000),
                          back(1.001, "RA", 0, C_ISN + 5001)])
    (f,) = a.host_views.findings
    assert f.message == (f"10.0.0.2:8080 refused all 2 of its connection attempts (RST+ACK: nothing listening) "
                         f"(e.g. {FLOW_ID}/0, {FLOW_ID}/1).")


def test_why_the_server_closed_first_is_read_from_the_first_messages(tmp_path: Path) -> None:
    """docs/rules.md "Server-side active close": the server of :8080 closed first after an
    HTTP/1.0 request; the server of :8081 after an HTTP/1.1 response saying Connection: close;
    the client of :8082 closed first: no cause asked for; :8083's request says Connection: close
    in its last header line, 200 bytes in."""
    from scapy.layers.inet import TCP

    def connection(port: int, request: bytes, response: bytes, server_first: bool, t: float) -> list[Any]:
        def on(p: Any) -> Any:
            if p[TCP].sport == 8080:
                p[TCP].sport = port
            else:
                p[TCP].dport = port
            return p

        c, s = C_ISN + 1 + len(request), S_ISN + 1 + len(response)
        out = [seg(t, "S", C_ISN), back(t + 0.001, "SA", S_ISN, C_ISN + 1), seg(t + 0.002, "A", C_ISN + 1, S_ISN + 1),
               seg(t + 0.003, "PA", C_ISN + 1, S_ISN + 1, request), back(t + 0.004, "PA", S_ISN + 1, c, response)]
        if server_first:
            out += [back(t + 0.1, "FA", s, c), seg(t + 0.2, "FA", c, s + 1), back(t + 0.3, "A", s + 1, c + 1)]
        else:
            out += [seg(t + 0.1, "FA", c, s), back(t + 0.2, "FA", s, c + 1), seg(t + 0.3, "A", c + 1, s + 1)]
        return [on(p) for p in out]

    long_header = b"X-Padding: " + b"p" * 300 + b"\r\n"  # beyond the 256 bytes kept of a head
    padded = b"GET / HTTP/1.1\r\nX-Padding: " + b"p" * 170 + b"\r\nConnection: close\r\n\r\n"  # 225 bytes
    a = judged(tmp_path, connection(8080, b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\n", True, 0)
               + connection(8081, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                            b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + long_header + b"\r\n", True, 1)
               + connection(8082, b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\n", False, 2)
               + connection(8083, padded, b"HTTP/1.1 200 OK\r\n\r\n", True, 3))
    servers = a.servers.set_index("server_port")
    assert servers.loc[8083, "cause"] == "connection_close_request"  # its last header: the whole head is read
    assert servers.loc[8080, "cause"] == "http10_request" and servers.loc[8080, "cause_share"] == 1.0
    assert servers.loc[8081, "cause"] == "connection_close_response"
    assert pd.isna(servers.loc[8082, "cause"])


def test_connections_in_two_tunnels_are_told_apart() -> None:
    """captures/encapsulated/vxlan.pcap (its truth.json): one 4-tuple in VXLAN VNI 100, then in
    VNI 200: two connections, each named by its carrier, c1/ and c2/ in the order they came
    (docs/rules.md "Vocabulary", where it was carried)."""
    a = teardown.analyze(str(CAPTURES / "encapsulated" / "vxlan.pcap"))
    tuple_ = "198.18.0.1:52776>198.18.0.2:8080/0"
    assert text(a, "flow_id") == [f"c1/{tuple_}", f"c2/{tuple_}"]
    assert a.flows["encapsulation"].tolist() == ["eth/ipv4/vxlan:100/eth/ipv4", "eth/ipv4/vxlan:200/eth/ipv4"]
    assert sorted(a.hosts["host"]) == ["c1/198.18.0.1", "c1/198.18.0.2", "c2/198.18.0.1", "c2/198.18.0.2"]


def on_port(packets: list[Any], port: int) -> list[Any]:
    """The connection's segments with the client's port `port`."""
    from scapy.layers.inet import TCP

    for p in packets:
        if p[TCP].sport == CLIENT[1]:
            p[TCP].sport = port
        else:
            p[TCP].dport = port
    return packets


def test_each_connection_of_a_capture_is_judged_on_its_own(tmp_path: Path) -> None:
    """Seven connections in one capture, each judged by its own segments only:
    :40000 closes in order, then an RST assassinates its client's TIME_WAIT at 5 s;
    :40001's FINs cross; :40002 stays open; on :40003 the client's RST crosses the server's FIN;
    :40004's server sends its FIN again after the final ACK went by; :40005 is one-sided (the
    client's segments only, its FIN acknowledged later); :40006 closes in order at 8 s."""
    c, s = C_NXT, S_NXT
    crossing = [seg(1.1, "FA", c, s), back(1.1001, "FA", s, c), seg(1.2, "A", c + 1, s + 1), back(1.2001, "A", s + 1, c + 1)]
    rst_meets_fin = [seg(3.1, "R", c), back(3.1001, "FA", s, c)]
    fin_again = [seg(4.1, "FA", c, s), back(4.2, "FA", s, c + 1), seg(4.3, "A", c + 1, s + 1),
                 back(5.2, "FA", s, c + 1), seg(5.21, "A", c + 1, s + 1)]
    one_sided = [seg(6, "S", C_ISN), seg(6.01, "A", C_ISN + 1, S_ISN + 1), seg(6.1, "FA", C_ISN + 1, S_ISN + 1),
                 seg(6.2, "A", C_ISN + 2, S_ISN + 2)]
    a = judged(tmp_path, opening() + client_first_close() + [back(5.0, "R", S_ISN + 2)]
               + on_port(opening(t=1) + crossing, 40001) + on_port(opening(t=2), 40002)
               + on_port(opening(t=3) + rst_meets_fin, 40003) + on_port(opening(t=4) + fin_again, 40004)
               + on_port(one_sided, 40005) + on_port(opening(t=8) + client_first_close(t=8.1), 40006))
    f = a.flows
    assert f["client_port"].tolist() == [40000, 40001, 40002, 40003, 40004, 40005, 40006]
    assert f["close_kind"].tolist() == ["fin", "simultaneous", "open", "rst", "fin", "fin", "fin"]
    assert f["active_closer"].tolist() == ["client", "both", "none", "client", "client", "client", "client"]
    assert f["first_rst_by"].tolist() == ["server", "none", "none", "client", "none", "none", "none"]
    assert f["time_wait_on"].tolist()[:5] + f["time_wait_on"].tolist()[6:] == [
        "client", "both", "none", "none", "client", "client"]  # the one-sided row's is empty
    assert f["tw_assassination"].tolist() == [True, False, False, False, False, False, False]
    assert [None if pd.isna(x) else bool(x) for x in f["final_ack_lost_after_capture"]] == [
        None, None, None, None, True, None, None]
    assert f["time_wait_end_ts"].tolist()[0] == pytest.approx(5.0)
    # Both hold one after crossing FINs: from the first of their final ACKs to the end of the last.
    assert (f["time_wait_start_ts"][1], f["time_wait_end_ts"][1]) == (pytest.approx(1.2), pytest.approx(61.2001))
    assert text(a, "notes")[:5] + text(a, "notes")[6:] == [
        "TIME_WAIT assassinated by an in-sequence RST (RFC 1337)", "", "", "",
        "the peer retransmitted its FIN: the final ACK was lost", ""]


def test_one_direction_caught_midstream_is_no_handshake(tmp_path: Path) -> None:
    """Only the client's segments, acknowledging data the capture never shows, and no SYN: one
    direction of a connection caught midstream, not an answered SYN."""
    a = judged(tmp_path, [seg(0, "A", C_NXT, S_NXT + 100), seg(0.1, "PA", C_NXT, S_NXT + 200, REQUEST)])
    (r,) = a.flows.itertuples()
    assert (r.handshake, r.one_sided, r.close_kind) == ("none", True, "open")


def test_three_incarnations_each_against_the_one_before(tmp_path: Path) -> None:
    """The second SYN reuses the 4-tuple at 10 s, in the first's TIME_WAIT (accepted: it ends
    there); the second closes at 10.3 s and the third SYN comes at 80 s, after the second's."""
    second = [seg(10, "S", C_ISN + 100_000), back(10.001, "SA", 90000, C_ISN + 100_001),
              seg(10.002, "A", C_ISN + 100_001, 90001), seg(10.1, "FA", C_ISN + 100_001, 90001),
              back(10.2, "FA", 90001, C_ISN + 100_002), seg(10.3, "A", C_ISN + 100_002, 90002)]
    third = [seg(80, "S", C_ISN + 200_000), back(80.001, "SA", 70000, C_ISN + 200_001)]
    a = judged(tmp_path, opening() + client_first_close() + second + third)
    f = a.flows
    assert f["incarnation"].tolist() == [0, 1, 2]
    assert f["reuses_tuple_in_time_wait"].tolist() == [False, True, False]
    assert [None if pd.isna(v) else v for v in f["reuse_verdict"]] == [None, "accepted_isn", "after_time_wait"]
    assert f["time_wait_end_ts"].tolist()[:2] == [pytest.approx(10.0), pytest.approx(70.3)]
    for name in ("roles_inferred", "one_sided", "half_close", "tw_assassination", "reuses_tuple_in_time_wait",
                 "capture_loss"):
        assert a.columns[name].dtype == np.bool_, name


# ---- each flow judged on its own, boundaries, and what the rows hold where nothing applies -------


def placed(packets: list[Any], port: int, dt: float, ip: str = CLIENT[0]) -> list[Any]:
    """Copies of `packets` (a scenario written from t = 0 on CLIENT) with the client at `ip`:`port`
    and every time `dt` later."""
    from scapy.layers.inet import IP, TCP

    out = [p.copy() for p in packets]
    for p in out:
        p.time = p.time + dt
        if p[TCP].sport == CLIENT[1] and p[IP].src == CLIENT[0]:
            p[IP].src, p[TCP].sport = ip, port
        else:
            p[IP].dst, p[TCP].dport = ip, port
    return out


SCENARIOS: list[list[Any]] = [
    # 0: half-close: the server sends 100 bytes after the client's FIN, then closes
    opening() + [seg(0.1, "FA", C_NXT, S_NXT), back(0.5, "PA", S_NXT, C_NXT + 1, b"x" * 100),
                 seg(0.51, "A", C_NXT + 1, S_NXT + 100), back(0.6, "FA", S_NXT + 100, C_NXT + 1),
                 seg(0.7, "A", C_NXT + 1, S_NXT + 101)],
    # 1: new data beyond the client's own FIN (FIN_WAIT_2 too: no FIN from the server)
    opening() + [seg(0.1, "FA", C_NXT, S_NXT), seg(0.2, "PA", C_NXT + 1, S_NXT, REQUEST)],
    # 2: the request sent again after the FIN: below it, a retransmission
    opening() + [seg(0.1, "FA", C_NXT, S_NXT), seg(0.2, "PA", C_NXT - 18, S_NXT, REQUEST)],
    # 3: a lone FIN, acknowledged: FIN_WAIT_2
    opening() + [seg(0.1, "FA", C_NXT, S_NXT), back(0.2, "A", S_NXT, C_NXT + 1)],
    # 4: the client's TIME_WAIT (from 0.3 s) assassinated at 5 s
    opening() + client_first_close() + [back(5.0, "R", S_NXT + 1)],
    # 5: the same at 7 s, on a client whose profile ignores it (placed at 10.0.0.5: bsd)
    opening() + client_first_close() + [back(7.0, "R", S_NXT + 1)],
    # 6: refused twice: the second attempt follows no TIME_WAIT
    [seg(0, "S", C_ISN), back(0.001, "RA", 0, C_ISN + 1), seg(1, "S", C_ISN + 5000), back(1.001, "RA", 0, C_ISN + 5001)],
    # 7: a reuse accepted in the TIME_WAIT (10 s), 8: one after it (70 s)
    reuse(10.0, C_ISN + 100_000, "synack"),
    reuse(70.0, C_ISN + 100_000, "synack"),
    # 9: one direction only: the client's segments, its FIN acknowledging the server's unseen data
    [seg(0, "A", C_NXT, S_NXT + 100), seg(0.1, "FA", C_NXT, S_NXT + 100)],
]
BSD_HOST = (("10.0.0.5", "bsd"),)


def test_each_scenario_in_one_capture_gets_the_row_it_gets_alone(tmp_path: Path) -> None:
    """Ten connections, 200 s apart on ports 41000-41009, each judged on its own segments only
    (docs/rules.md judges an incarnation by what it and its predecessor on the tuple show): its
    row in the shared capture is the row of its capture alone, times identical, its evidence
    frames shifted by the frames written before it. Each scenario's own verdicts are read off
    its segments below."""
    ports = [41000 + i for i in range(len(SCENARIOS))]
    ip = ["10.0.0.5" if i == 5 else CLIENT[0] for i in range(len(SCENARIOS))]
    together = judged(tmp_path, [p for i, s in enumerate(SCENARIOS) for p in placed(s, ports[i], 200.0 * i, ip[i])],
                      host_os=BSD_HOST)
    f = together.flows
    before = 0
    skip = {"flow_id", "evidence_frames", "capture_file", "display_filter"}  # frame numbers: the capture's
    for i, s in enumerate(SCENARIOS):
        alone = judged(tmp_path, placed(s, ports[i], 200.0 * i, ip[i]), host_os=BSD_HOST)
        rows = np.flatnonzero(f["client_port"].to_numpy() == ports[i])
        assert len(rows) == len(alone.flows), i
        for name in f.columns.difference(list(skip)):
            got, want = f[name].iloc[rows].tolist(), alone.flows[name].tolist()
            assert [None if pd.isna(v) else v for v in got] == [None if pd.isna(v) else v for v in want], (i, name)
        evidence = together.columns["evidence"][rows]
        want_ev = alone.columns["evidence"]
        assert np.array_equal(np.where(want_ev > 0, want_ev + before, want_ev), evidence), i
        before += len(s)
    # What each scenario's segments say, row by row (scenarios 6, 7, 8 have two incarnations each).
    assert f["half_close"].tolist() == [True] + [False] * 12
    assert f["data_after_fin"].tolist() == ["none", "new_data", "retransmission"] + ["none"] * 10
    notes = text(together, "notes")
    assert notes[3] == FIN_WAIT_2
    assert notes[4] == "TIME_WAIT assassinated by an in-sequence RST (RFC 1337)"
    assert notes[5] == "in-sequence RST during TIME_WAIT, ignored under this OS profile (RFC 1337 fix)"
    assert f["tw_assassination_ts"].tolist()[4:6] == [805.0, 1007.0]
    assert [None if pd.isna(v) else v for v in f["reuse_verdict"]][6:12] == [
        None, None, None, "accepted_isn", None, "after_time_wait"]
    assert f["reuses_tuple_in_time_wait"].tolist()[6:12] == [False, False, False, True, False, False]
    assert f["one_sided"].tolist() == [False] * 12 + [True]


def test_a_single_byte_acknowledged_and_never_seen_is_capture_loss(tmp_path: Path) -> None:
    """The client's byte at C_NXT is not in the capture: its next segment starts at C_NXT + 1,
    and the server acknowledges up to C_NXT + 19. One byte the peer acknowledged and the
    capture never showed (docs/rules.md "Honesty about the capture point"): the least loss
    there is, still loss, with its gap between the request (frame 4) and the next segment (5)."""
    a = judged(tmp_path, opening() + [seg(0.1, "PA", C_NXT + 1, S_NXT, REQUEST), back(0.2, "A", S_NXT, C_NXT + 19)])
    (r,) = a.flows.itertuples()
    assert (r.capture_loss, r.capture_loss_bytes, r.capture_loss_bytes_c2s, r.capture_loss_bytes_s2c) == (True, 1, 1, 0)
    assert text(a, "notes") == ["bytes acknowledged that the capture never saw (capture loss)"]
    assert text(a, "evidence_frames") == ["syn 1, gap after 4, before 5"]


def rst_in_time_wait(t_rst: float) -> list[Any]:
    """opening(), then a client-first close whose final ACK (frame 7, the client's TIME_WAIT
    start) is at exactly 1 s, then the server's in-sequence RST (its FIN + 1) at `t_rst`."""
    c, s = C_NXT, S_NXT
    return opening() + [seg(0.5, "FA", c, s), back(0.75, "FA", s, c + 1), seg(1.0, "A", c + 1, s + 1),
                        back(t_rst, "R", s + 1)]


@pytest.mark.parametrize(("t_rst", "killed"), [(1.0, True), (61.0, False)], ids=["at-the-start", "at-the-end"])
def test_an_rst_at_the_bounds_of_the_time_wait(tmp_path: Path, t_rst: float, killed: bool) -> None:
    """TIME_WAIT runs from the holder's final ACK (1 s) for 60 s under linux: [1 s, 61 s). An RST
    in the very instant it starts (a later frame, the same time) reaches a TIME_WAIT and ends it;
    one at 61 s comes when it has ended (docs/rules.md "TIME_WAIT": a reuse at its end is no
    longer in it, and the same bound holds for an RST)."""
    (r,) = judged(tmp_path, rst_in_time_wait(t_rst)).flows.itertuples()
    assert (r.time_wait_on, r.time_wait_start_ts, r.tw_assassination) == ("client", 1.0, killed)
    assert r.time_wait_end_ts == (1.0 if killed else 61.0)


def test_a_hosts_own_profile_overrides_the_runs_for_an_rst_in_time_wait(tmp_path: Path) -> None:
    """--os bsd ignores an in-sequence RST in TIME_WAIT; --host-os gives the client (10.0.0.1)
    linux, which ends its TIME_WAIT at the RST (docs/rules.md "TIME_WAIT", the profile table)."""
    packets = opening() + client_first_close() + [back(5.0, "R", S_NXT + 1)]
    (r,) = judged(tmp_path, packets, os="bsd", host_os=(("10.0.0.1", "linux"),)).flows.itertuples()
    assert (r.tw_assassination, r.tw_assassination_ts, r.time_wait_end_ts) == (True, 5.0, 5.0)
    (bsd,) = judged(tmp_path, packets, os="bsd").flows.itertuples()
    assert bsd.tw_assassination and bsd.time_wait_end_ts == pytest.approx(60.3)  # 0.3 s + 60 s: a float sum


def test_a_reuse_in_the_instant_the_time_wait_starts_is_in_it(tmp_path: Path) -> None:
    """The client's final ACK (frame 7, 1 s) starts its TIME_WAIT; its new SYN (frame 8) comes
    in the same instant: in the TIME_WAIT, and accepted for its ISN above the old next sequence
    (docs/rules.md "TIME_WAIT", Reuse; RFC 1122)."""
    new = C_ISN + 100_000
    a = judged(tmp_path, rst_in_time_wait(1.0)[:-1] + [seg(1.0, "S", new), back(1.001, "SA", 90000, new + 1),
                                                        seg(1.002, "A", new + 1, 90001)])
    old, second = a.flows.itertuples()
    assert (second.reuses_tuple_in_time_wait, second.reuse_verdict) == (True, "accepted_isn")
    assert (old.time_wait_start_ts, old.time_wait_end_ts) == (1.0, 1.0)  # accepting ends it there


def stamped_reuse(old_tsval: int, new_tsval: int) -> list[Any]:
    """reuse() at 10 s with an ISN below the old connection's next sequence (the ISN rule does not
    accept it), every client segment of the first connection carrying TSval `old_tsval`, the
    new SYN `new_tsval`, answered by a SYN-ACK."""
    isn = (C_ISN - 100_000) % 2**32
    first = [stamped(p, old_tsval) if p.sport == CLIENT[1] else stamped(p, 7000) for p in opening() + client_first_close()]
    return first + [stamped(seg(10.0, "S", isn), new_tsval), back(10.001, "SA", 90000, isn + 1),
                    seg(10.002, "A", isn + 1, 90001)]


@pytest.mark.parametrize(("old_tsval", "new_tsval", "verdict"), [
    (0, 5, "accepted_timestamps"),  # 0 is a timestamp like any other
    (2**32 - 10, 0, "accepted_timestamps"),  # newer across the wrap (RFC 7323 §5.2: compared modulo 2^32)
    (106, 107, "accepted_timestamps"),  # one tick newer
    (106, 106, None),  # equal is not newer (RFC 6191 §2: strictly greater)
], ids=["old-zero", "new-zero-after-wrap", "one-newer", "equal"])
def test_the_timestamps_that_accept_a_reuse(tmp_path: Path, old_tsval: int, new_tsval: int,
                                            verdict: str | None) -> None:
    a = judged(tmp_path, stamped_reuse(old_tsval, new_tsval))
    assert [None if pd.isna(v) else v for v in a.flows["reuse_verdict"]] == [None, verdict]
    assert a.flows["reuses_tuple_in_time_wait"].tolist() == [False, True]


def test_the_linux_isn_across_the_sequence_wrap(tmp_path: Path) -> None:
    """The client's ISN 2^32 - 100: after its 18 bytes and its FIN its next sequence is
    2^32 - 80, and Linux's new ISN, that + 65537, wraps to 65457 (sequence numbers are modulo
    2^32, RFC 9293 §3.4)."""
    c_isn = 2**32 - 100
    c, s = c_isn + 19, S_NXT
    new = (c + 1 + 65537) % 2**32
    a = judged(tmp_path, opening(c_isn=c_isn) + [seg(0.1, "FA", c, s), back(0.2, "FA", s, c + 1),
                                                 seg(0.3, "A", c + 1, s + 1), seg(10.0, "S", new),
                                                 back(10.001, "SA", 90000, new + 1), seg(10.002, "A", new + 1, 90001)])
    assert new == 65457
    assert text(a, "notes")[1] == "ISN = old next sequence + 65537: Linux took over the TIME_WAIT"


@pytest.mark.parametrize(("first", "other", "server"), [
    (("10.0.0.1", 80), ("10.0.0.2", 443), ("10.0.0.2", 443)),
    (("10.0.0.2", 443), ("10.0.0.1", 80), ("10.0.0.1", 80)),
], ids=["smaller-address-spoke-first", "larger-address-spoke-first"])
def test_two_well_known_ports_leave_the_first_sender_the_client(tmp_path: Path, first: tuple[str, int],
                                                               other: tuple[str, int], server: tuple[str, int]) -> None:
    """Both ports below 1024, one peer each: neither port tells the server, so the first sender
    is taken as the client (docs/rules.md "Vocabulary": the first sender is the weak hint)."""
    (r,) = judged(tmp_path, midstream(first, other)).flows.itertuples()
    assert (r.server_ip, r.server_port, r.client_ip, r.client_port, r.roles_inferred) == (*server, *first, True)


def test_one_direction_from_the_larger_address_makes_its_sender_the_client(tmp_path: Path) -> None:
    """Only 10.0.0.2:50000's segments, to 10.0.0.1:50001: no well-known port, one peer each; the
    only sender is the first sender, so the client (docs/rules.md "Vocabulary")."""
    a = judged(tmp_path, [seg(0, "PA", 7000, 3000, b"x" * 10, src=("10.0.0.2", 50000), dst=("10.0.0.1", 50001)),
                          seg(0.1, "PA", 7010, 3000, b"y" * 10, src=("10.0.0.2", 50000), dst=("10.0.0.1", 50001))])
    (r,) = a.flows.itertuples()
    assert (r.client_ip, r.client_port, r.server_ip, r.server_port) == ("10.0.0.2", 50000, "10.0.0.1", 50001)
    assert (r.packets_c2s, r.packets_s2c, r.roles_inferred) == (2, 0, True)


def test_a_fin_during_the_handshake_then_an_rst_closes_nothing_established(tmp_path: Path) -> None:
    """SYN (1), SYN-ACK (2), the server's FIN (3) before any third segment, the client's RST (4):
    the handshake never completed, so `handshake_reset` with no active closer and no TIME_WAIT,
    whoever sent a FIN (docs/rules.md "Close verdicts" 4)."""
    a = judged(tmp_path, [seg(0, "S", C_ISN), back(0.001, "SA", S_ISN, C_ISN + 1), back(0.002, "FA", S_ISN + 1, C_ISN + 1),
                          seg(0.003, "R", C_ISN + 1)])
    (r,) = a.flows.itertuples()
    assert (r.close_kind, r.first_rst_by, r.first_fin_by) == ("handshake_reset", "client", "server")
    assert (r.active_closer, r.time_wait_on) == ("none", "none")


@pytest.mark.parametrize("server_fin_first", [False, True], ids=["client-fin-first", "server-fin-first"])
def test_fins_acknowledging_each_other_fall_back_on_capture_order(tmp_path: Path, server_fin_first: bool) -> None:
    """Each FIN acknowledges the other (frames 5 and 6): causality cannot order them, a capture
    merged from two points can show this, so the FIN seen first names the closer (docs/rules.md
    "Close verdicts" 1 decides by the acknowledgments where they decide)."""
    fins = [seg(0.1, "FA", C_NXT, S_NXT + 1), back(0.1001, "FA", S_NXT, C_NXT + 1)]
    a = judged(tmp_path, opening() + (fins[::-1] if server_fin_first else fins))
    (r,) = a.flows.itertuples()
    first = "server" if server_fin_first else "client"
    assert (r.close_kind, r.active_closer, r.first_fin_by) == ("fin", first, first)


def test_addresses_of_ipv6_flows_either_way_round(tmp_path: Path) -> None:
    """Three IPv6 connections, each from its SYN: 2001:db8:1::1 (the smaller address, other /64
    than its server's) to 2001:db8:2::2:443; 2001:db8:2::9 (the larger) to 2001:db8:1::1:443;
    ::1 to ::2 (loopback-like, upper 64 bits zero: IPv6 still, never written as IPv4)."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    def syn(t: float, src: str, sport: int, dst: str) -> Any:
        p = Ether() / IPv6(src=src, dst=dst) / TCP(sport=sport, dport=443, flags="S", seq=1)
        p.time = t
        return p

    a = judged(tmp_path, [syn(0, "2001:db8:1::1", 40000, "2001:db8:2::2"), syn(1, "2001:db8:2::9", 40001, "2001:db8:1::1"),
                          syn(2, "::1", 40002, "::2")])
    f = a.flows
    assert list(zip(f["client_ip"], f["client_port"], f["server_ip"], f["server_port"])) == [
        ("2001:db8:1::1", 40000, "2001:db8:2::2", 443), ("2001:db8:2::9", 40001, "2001:db8:1::1", 443),
        ("::1", 40002, "::2", 443)]


def test_a_server_first_close_without_payload_has_no_payload_cause(tmp_path: Path) -> None:
    """The server closes first (frame 4) and neither side sent a byte: the cause is no_payload,
    nothing was there to read (docs/rules.md "Server-side active close")."""
    a = judged(tmp_path, [seg(0, "S", C_ISN), back(0.001, "SA", S_ISN, C_ISN + 1), seg(0.002, "A", C_ISN + 1, S_ISN + 1),
                          back(0.1, "FA", S_ISN + 1, C_ISN + 1), seg(0.2, "FA", C_ISN + 1, S_ISN + 2),
                          back(0.3, "A", S_ISN + 2, C_ISN + 2)])
    assert a.flows["active_closer"].tolist() == ["server"]
    assert a.servers.set_index("server_port").loc[8080, "cause"] == "no_payload"


def test_the_outer_vlan_of_a_double_tagged_flow(tmp_path: Path) -> None:
    """802.1ad double tagging (outer 100, inner 200): `vlan` is the outermost VLAN id (schema)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Dot1Q, Ether

    p = Ether() / Dot1Q(vlan=100) / Dot1Q(vlan=200) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(
        sport=40000, dport=8080, flags="S", seq=C_ISN)
    p.time = 0
    a = judged(tmp_path, [p])
    assert a.flows["vlan"].tolist() == [100]


def test_an_ipv6_flow_in_a_vlan_says_ipv6_in_its_encapsulation(tmp_path: Path) -> None:
    """One IPv4 and one IPv6 connection, both in VLAN 7: each encapsulation text ends in its own
    IP header (schema: outermost first, then the flow's IP)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Dot1Q, Ether

    v4 = Ether() / Dot1Q(vlan=7) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=8080, flags="S", seq=1)
    v6 = Ether() / Dot1Q(vlan=7) / IPv6(src="fd00::1", dst="fd00::2") / TCP(sport=40000, dport=8080, flags="S", seq=1)
    v4.time, v6.time = 0, 1
    a = judged(tmp_path, [v4, v6])
    assert a.flows["encapsulation"].tolist() == ["eth/vlan:7/ipv4", "eth/vlan:7/ipv6"]


def test_a_flow_seen_at_one_point_has_no_copies(tmp_path: Path) -> None:
    """One capture point: no copies set aside, `also_seen_on` is the empty text and
    `duplicates_seen` 0 (schema), not unknown."""
    a = judged(tmp_path, opening())
    assert a.flows["also_seen_on"].tolist() == [""] and a.flows["duplicates_seen"].tolist() == [0]


def test_membership_of_the_flow_columns(tmp_path: Path) -> None:
    """`Analysis.columns` holds the flow columns in schema order (schema.COLUMN_NAMES), the text
    ones built when read, then the internal ones, and nothing else."""
    from teardown.schema import COLUMN_NAMES, INTERNAL_COLUMNS

    a = judged(tmp_path, opening())
    assert list(a.columns) == COLUMN_NAMES + list(INTERNAL_COLUMNS) and len(a.columns) == len(list(a.columns))
    assert all(name in a.columns for name in ("close_kind", "flow_id", "notes", "close_cause"))
    assert "no_such_column" not in a.columns


def test_reuse_verdicts_of_tuples_judged_together(tmp_path: Path) -> None:
    """Three 4-tuples at the same time, so judged in one batch: :41000 reuses its tuple at 70 s,
    after the client's TIME_WAIT (0.3 s to 60.3 s); :41001 reuses it at 10.5 s, in the TIME_WAIT
    (from 0.8 s), accepted for its ISN; :41002's client aborts at 5.1 s (an RST: nobody holds a
    TIME_WAIT) and connects again at 6 s: no verdict, there was no TIME_WAIT to be in
    (docs/rules.md "TIME_WAIT", Reuse). Each verdict is its own tuple's, whatever the others show."""
    a = judged(tmp_path, sorted(
        placed(reuse(70.0, C_ISN + 100_000, "synack"), 41000, 0.0)
        + placed(reuse(10.0, C_ISN + 100_000, "synack"), 41001, 0.5)
        + placed(opening() + [seg(0.1, "R", C_NXT), seg(1, "S", C_ISN + 100_000),
                              back(1.001, "SA", 90000, C_ISN + 100_001), seg(1.002, "A", C_ISN + 100_001, 90001)],
                 41002, 5.0), key=lambda p: float(p.time)))
    f = a.flows
    got = {(port, i): (None if pd.isna(v) else v, bool(w)) for port, i, v, w in zip(
        f["client_port"], f["incarnation"], f["reuse_verdict"], f["reuses_tuple_in_time_wait"])}
    assert got == {(41000, 0): (None, False), (41000, 1): ("after_time_wait", False),
                   (41001, 0): (None, False), (41001, 1): ("accepted_isn", True),
                   (41002, 0): (None, False), (41002, 1): (None, False)}


def test_port_1024_on_the_smaller_address_is_not_well_known(tmp_path: Path) -> None:
    """10.0.0.1:1024 speaks first to 10.0.0.2:50000 midstream: 1024 is not below the well-known
    limit (docs/rules.md "Vocabulary"), so no port tells the server and the first sender is the
    client, on the smaller address as on the larger."""
    (r,) = judged(tmp_path, midstream(("10.0.0.1", 1024), ("10.0.0.2", 50000))).flows.itertuples()
    assert (r.client_ip, r.client_port, r.server_ip, r.server_port) == ("10.0.0.1", 1024, "10.0.0.2", 50000)
