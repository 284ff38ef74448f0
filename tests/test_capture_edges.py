"""Verdicts at the edges of what a capture holds: bytes the capture lost wherever they lie, and
RSTs sent during the handshake (docs/rules.md "Honesty about the capture point", "Close
verdicts" 4). Each test crafts a small pcap with scapy; a segment "left out" is one the
receiver got (its ACKs cover it) but the capture did not."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import teardown

from .crafted import C_ISN, CLIENT, S_ISN, back, seg

REQUEST = b"GET / HTTP/1.1\r\n\r\n"  # 18 bytes

pytest.importorskip("scapy")


@dataclass
class Wire:
    """What went over the wire, segment by segment, named; `capture` leaves some out."""

    packets: list[tuple[str, Any]] = field(default_factory=list)
    t: float = 0.0

    def add(self, name: str, packet_of_time: Any) -> None:
        self.t += 0.001
        self.packets.append((name, packet_of_time(self.t)))

    def capture(self, tmp_path: Path, left_out: frozenset[str] | set[str] = frozenset()) -> tuple[teardown.Analysis, dict[str, int]]:
        """Analyze the segments not left out; returns the analysis and each kept name's frame."""
        from scapy.utils import wrpcap

        kept = [(n, p) for n, p in self.packets if n not in left_out]
        path = tmp_path / "crafted.pcap"
        wrpcap(str(path), [p for _, p in kept])
        return teardown.analyze(str(path)), {n: i + 1 for i, (n, _) in enumerate(kept)}


def exchange(sizes: list[int], end: str = "fin", request: list[bytes] | None = None) -> Wire:
    """A handshake, the client's request (in `request` pieces), the server's answer in segments of
    `sizes` bytes (named data0, data1, ...), each acknowledged by the client (ack0, ...); then
    `end`: "fin" (server FIN, client FIN+ACK, server's final ACK), "rst" (the server's RST) or
    "open" (nothing)."""
    w = Wire()
    w.add("syn", lambda t: seg(t, "S", C_ISN))
    w.add("synack", lambda t: back(t, "SA", S_ISN, C_ISN + 1))
    w.add("ack", lambda t: seg(t, "A", C_ISN + 1, S_ISN + 1))
    c = C_ISN + 1
    for i, piece in enumerate(request or [REQUEST]):
        w.add(f"req{i}", lambda t, c=c, piece=piece: seg(t, "PA", c, S_ISN + 1, piece))
        c += len(piece)
    s = S_ISN + 1
    for i, n in enumerate(sizes):
        w.add(f"data{i}", lambda t, s=s, n=n: back(t, "PA", s, c, b"x" * n))
        s += n
        w.add(f"ack{i}", lambda t, s=s: seg(t, "A", c, s))
    if end == "fin":
        w.add("fin", lambda t: back(t, "FA", s, c))
        w.add("client_fin", lambda t: seg(t, "FA", c, s + 1))
        w.add("last_ack", lambda t: back(t, "A", s + 1, c + 1))
    elif end == "rst":
        w.add("rst", lambda t: back(t, "R", s))
    return w


def row(analysis: teardown.Analysis) -> pd.Series:
    flows = analysis.flows
    assert len(flows) == 1
    out = flows.iloc[0].copy()
    out["notes"], out["evidence_frames"] = flows["notes"].iat[0], flows["evidence_frames"].iat[0]
    return out


def lost(r: pd.Series) -> tuple[int, int, int]:
    return int(r["capture_loss_bytes"]), int(r["capture_loss_bytes_c2s"]), int(r["capture_loss_bytes_s2c"])


# ---- capture loss -------------------------------------------------------------------------


def test_hole_in_the_middle_acknowledged_by_the_peer_is_lost(tmp_path: Path) -> None:
    analysis, frame = exchange([100] * 5).capture(tmp_path, {"data2"})
    r = row(analysis)
    assert bool(r["capture_loss"]) and lost(r) == (100, 0, 100)
    assert f"gap after {frame['data1']}, before {frame['data3']}" in r["evidence_frames"]
    assert r["close_kind"] == "fin"
    assert (analysis.capture.loss.bytes, analysis.capture.loss.connections) == (100, 1)


def test_hole_just_before_a_fin_the_issue_example(tmp_path: Path) -> None:
    """The server's 2,902 bytes missing, its FIN at relative sequence 2,903, the client's ACK
    2,904: Zeek's missed_bytes 2902 (issue 20)."""
    analysis, frame = exchange([1000, 1000, 902]).capture(tmp_path, {"data0", "data1", "data2"})
    r = row(analysis)
    assert lost(r) == (2902, 0, 2902)
    assert f"gap after {frame['synack']}, before {frame['fin']}" in r["evidence_frames"]
    assert "bytes just before a FIN are not in the capture" in r["notes"]
    assert (r["close_kind"], r["active_closer"]) == ("fin", "server")  # the FIN is seen: the verdict stands


def test_hole_just_before_an_rst_the_peer_acknowledged(tmp_path: Path) -> None:
    analysis, frame = exchange([100] * 4, end="rst").capture(tmp_path, {"data2", "data3"})
    r = row(analysis)
    assert lost(r) == (200, 0, 200)
    assert f"gap after {frame['data1']}, before {frame['rst']}" in r["evidence_frames"]
    assert "bytes just before an RST are not in the capture" in r["notes"]
    assert (r["close_kind"], r["first_rst_by"]) == ("rst", "server")


def test_hole_at_the_start_first_data_past_isn_plus_one(tmp_path: Path) -> None:
    analysis, frame = exchange([100] * 3).capture(tmp_path, {"data0"})
    r = row(analysis)
    assert lost(r) == (100, 0, 100)
    assert f"gap after {frame['synack']}, before {frame['data1']}" in r["evidence_frames"]


def test_tail_acknowledged_at_the_end_of_the_capture(tmp_path: Path) -> None:
    analysis, frame = exchange([100] * 3, end="open").capture(tmp_path, {"data2"})
    r = row(analysis)
    assert lost(r) == (100, 0, 100)
    assert r["evidence_frames"].endswith(f"gap after {frame['data1']}")


def test_hole_in_the_client_direction(tmp_path: Path) -> None:
    request = [b"a" * 50, b"b" * 60, b"c" * 70]
    analysis, frame = exchange([100], request=request).capture(tmp_path, {"req1"})
    r = row(analysis)
    assert lost(r) == (60, 60, 0)
    assert f"gap after {frame['req0']}, before {frame['req2']}" in r["evidence_frames"]


def test_holes_in_both_directions_add_up(tmp_path: Path) -> None:
    request = [b"a" * 50, b"b" * 60, b"c" * 70]
    analysis, frame = exchange([100] * 3, request=request).capture(tmp_path, {"req1", "data1"})
    r = row(analysis)
    assert lost(r) == (160, 60, 100)
    assert f"gap after {frame['req0']}, before {frame['req2']}" in r["evidence_frames"]  # the first in capture order


def test_more_gaps_at_once_than_followed_exactly_are_still_counted(tmp_path: Path) -> None:
    analysis, frame = exchange([100] * 11).capture(tmp_path, {"data1", "data3", "data5", "data7", "data9"})
    r = row(analysis)
    assert lost(r) == (500, 0, 500)
    assert f"gap after {frame['data0']}, before {frame['data2']}" in r["evidence_frames"]  # the first gap


def test_retransmission_of_seen_data_is_not_loss(tmp_path: Path) -> None:
    w = exchange([100] * 3, end="open")
    w.add("again", lambda t: back(t, "PA", S_ISN + 101, C_ISN + 19, b"x" * 100))  # data1 sent again
    r = row(w.capture(tmp_path)[0])
    assert not r["capture_loss"] and lost(r) == (0, 0, 0)


def test_keep_alive_is_not_loss(tmp_path: Path) -> None:
    w = exchange([100] * 2, end="open")
    nxt = S_ISN + 201
    w.add("keepalive", lambda t: back(t, "A", nxt - 1, C_ISN + 19))  # seq = next - 1 (RFC 9293 §3.8.4)
    w.add("keepalive1", lambda t: back(t, "A", nxt - 1, C_ISN + 19, b"\x00"))  # with one garbage byte
    w.add("answer", lambda t: seg(t, "A", C_ISN + 19, nxt))
    r = row(w.capture(tmp_path)[0])
    assert lost(r) == (0, 0, 0)


def test_hole_filled_by_a_retransmission_the_capture_saw_is_not_loss(tmp_path: Path) -> None:
    """data2 lost upstream of the capture point: the capture shows a gap, then the sender's
    retransmission of it, then the ACK of everything."""
    w = exchange([100] * 4, end="open")
    w.add("resent", lambda t: back(t, "PA", S_ISN + 201, C_ISN + 19, b"x" * 100))
    r = row(w.capture(tmp_path, {"data2"})[0])
    assert lost(r) == (0, 0, 0)


def test_gap_the_peer_never_acknowledged_is_not_loss(tmp_path: Path) -> None:
    """A segment beyond a gap, and no ACK past the gap: the bytes may never have reached the
    receiver either, so the capture cannot be said to have lost them."""
    w = exchange([100] * 2, end="open")
    w.add("ahead", lambda t: back(t, "PA", S_ISN + 401, C_ISN + 19, b"x" * 100))
    r = row(w.capture(tmp_path)[0])
    assert lost(r) == (0, 0, 0)


def test_ack_of_the_old_connection_before_the_synack_leaves_no_gap(tmp_path: Path) -> None:
    """A TIME_WAIT answering a reused 4-tuple's SYN with an ACK of the old connection, then the
    SYN-ACK with a new ISN far ahead: the SYN starts the server's sequence numbers afresh."""
    w = Wire()
    w.add("syn", lambda t: seg(t, "S", C_ISN))
    w.add("old_ack", lambda t: back(t, "A", (S_ISN - 3_000_000) % 2**32, C_ISN - 777))
    w.add("client_rst", lambda t: seg(t, "R", C_ISN - 777))
    w.add("syn_again", lambda t: seg(t, "S", C_ISN))
    w.add("synack", lambda t: back(t, "SA", S_ISN, C_ISN + 1))
    w.add("ack", lambda t: seg(t, "A", C_ISN + 1, S_ISN + 1))
    w.add("data", lambda t: back(t, "PA", S_ISN + 1, C_ISN + 1, b"x" * 100))
    w.add("data_ack", lambda t: seg(t, "A", C_ISN + 1, S_ISN + 101))
    r = row(w.capture(tmp_path)[0])
    assert lost(r) == (0, 0, 0)
    assert r["handshake"] == "complete"


def test_one_sided_connection_is_not_judged_for_loss(tmp_path: Path) -> None:
    w = Wire()
    w.add("syn", lambda t: seg(t, "S", C_ISN))
    w.add("ack", lambda t: seg(t, "A", C_ISN + 1, S_ISN + 1))
    w.add("ack_more", lambda t: seg(t, "A", C_ISN + 1, S_ISN + 501))
    r = row(w.capture(tmp_path)[0])
    assert r["one_sided"] and pd.isna(r["capture_loss_bytes"]) and pd.isna(r["capture_loss_bytes_s2c"])


# ---- RSTs during the handshake -------------------------------------------------------------


def test_syn_then_its_own_rst_is_unanswered_given_up(tmp_path: Path) -> None:
    """A SYN sent twice (so no answer came: RFC 6298 §5), then its sender's RST: a connect that
    gave up, Zeek's RSTOS0."""
    w = Wire()
    w.add("syn", lambda t: seg(t, "S", C_ISN))
    w.add("syn_again", lambda t: seg(t + 1.0, "S", C_ISN))
    w.add("rst", lambda t: seg(t + 1.5, "R", C_ISN + 1))
    r = row(w.capture(tmp_path)[0])
    assert (r["close_kind"], r["first_rst_by"], r["active_closer"]) == ("unanswered", "client", "none")
    assert r["handshake"] == "syn_only" and r["time_wait_on"] == "none"


def test_syn_sent_once_then_its_own_rst_without_the_way_back_is_unknown(tmp_path: Path) -> None:
    """Nothing in the capture goes toward the SYN's sender: the RST may answer a SYN-ACK that went
    by a path not captured, so no answer is not proven."""
    w = Wire()
    w.add("syn", lambda t: seg(t, "S", C_ISN))
    w.add("rst", lambda t: seg(t + 0.5, "R", C_ISN + 1))
    r = row(w.capture(tmp_path)[0])
    assert (r["close_kind"], r["first_rst_by"], r["active_closer"]) == ("unknown", "client", "none")


def test_synack_answered_by_rst_is_handshake_reset(tmp_path: Path) -> None:
    w = Wire()
    w.add("syn", lambda t: seg(t, "S", C_ISN))
    w.add("synack", lambda t: back(t, "SA", S_ISN, C_ISN + 1))
    w.add("rst", lambda t: seg(t, "R", C_ISN + 1))  # the kernel's answer: no socket sent that SYN
    analysis, frame = w.capture(tmp_path)
    r = row(analysis)
    assert (r["close_kind"], r["first_rst_by"], r["active_closer"]) == ("handshake_reset", "client", "none")
    assert r["handshake"] == "syn_synack" and r["time_wait_on"] == "none"
    assert f"rst {frame['rst']}" in r["evidence_frames"]
    kinds = analysis.findings["kind"].astype(str).tolist()
    assert "handshake-reset" in kinds and "abort" not in kinds


def test_rst_after_the_third_segment_is_still_an_abort(tmp_path: Path) -> None:
    w = Wire()
    w.add("syn", lambda t: seg(t, "S", C_ISN))
    w.add("synack", lambda t: back(t, "SA", S_ISN, C_ISN + 1))
    w.add("ack", lambda t: seg(t, "A", C_ISN + 1, S_ISN + 1))
    w.add("rst", lambda t: seg(t, "R", C_ISN + 1))
    r = row(w.capture(tmp_path)[0])
    assert (r["close_kind"], r["first_rst_by"], r["active_closer"]) == ("rst", "client", "client")
    assert r["handshake"] == "complete"


def test_rst_and_ack_to_the_syn_is_still_refused(tmp_path: Path) -> None:
    w = Wire()
    w.add("syn", lambda t: seg(t, "S", C_ISN))
    w.add("rst", lambda t: back(t, "RA", 0, C_ISN + 1))
    r = row(w.capture(tmp_path)[0])
    assert (r["close_kind"], r["first_rst_by"], r["active_closer"]) == ("refused", "server", "none")


def test_syn_sent_once_then_its_own_rst_is_unanswered_when_the_way_back_is_captured(tmp_path: Path) -> None:
    """The server host's segments to the client are in the capture (an earlier connection), so
    the SYN's answer would be too: none came (docs/rules.md "Honesty about the capture point")."""
    w = exchange([100])
    other = (CLIENT[0], 40001)
    w.add("syn", lambda t: seg(t + 1.0, "S", 7000, src=other))
    w.add("rst", lambda t: seg(t + 1.5, "R", 7001, src=other))
    flows = w.capture(tmp_path)[0].flows
    r = flows[flows["client_port"] == other[1]].iloc[0]
    assert (r["close_kind"], r["first_rst_by"], r["active_closer"]) == ("unanswered", "client", "none")
