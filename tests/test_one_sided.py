"""Captures holding one direction of a connection, and repeated connection attempts from one
port: what the side seen proves, and nothing more (docs/rules.md "Honesty about the capture
point"; "Vocabulary", incarnations). Each test crafts a small pcap with scapy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import teardown
from teardown import flows as flow_table

from .crafted import C_ISN, CLIENT, S_ISN, SERVER, back, seg

pytest.importorskip("scapy")


def analyze(tmp_path: Path, packets: list[Any], **settings: Any) -> pd.DataFrame:
    from scapy.utils import wrpcap

    path = tmp_path / "crafted.pcap"
    wrpcap(str(path), packets)
    result = teardown.analyze(str(path), **settings)
    flows = result.flows.copy()
    flows["notes"] = result.flows["notes"]
    return flows


def client_side_only(fin_then_ack: bool) -> list[Any]:
    """The client's half of a request/response: SYN, ACK of an unseen SYN-ACK, a request, the
    ACK of a 100-byte response, a FIN; then (`fin_then_ack`) the ACK of the server's FIN."""
    out = [seg(0.0, "S", C_ISN), seg(0.01, "A", C_ISN + 1, S_ISN + 1),
           seg(0.02, "PA", C_ISN + 1, S_ISN + 1, b"GET / HTTP/1.1\r\n\r\n"),
           seg(0.03, "A", C_ISN + 19, S_ISN + 101), seg(0.04, "FA", C_ISN + 19, S_ISN + 101)]
    if fin_then_ack:
        out.append(seg(0.05, "A", C_ISN + 20, S_ISN + 102))
    return out


def test_syn_followed_by_own_acks_is_answered(tmp_path: Path) -> None:
    flows = analyze(tmp_path, client_side_only(True)[:4])
    row = flows.iloc[0]
    assert row["one_sided"]
    assert row["handshake"] == "answered_unseen"
    assert row["close_kind"] == "open"  # not unanswered: the client acknowledged a SYN-ACK


def test_two_way_connection_is_not_one_sided(tmp_path: Path) -> None:
    flows = analyze(tmp_path, [seg(0.0, "S", C_ISN), back(0.001, "SA", S_ISN, C_ISN + 1),
                               seg(0.002, "A", C_ISN + 1, S_ISN + 1)])
    assert not flows.iloc[0]["one_sided"]
    assert flows.iloc[0]["handshake"] == "complete"


def test_ack_after_own_fin_means_the_seen_side_closed_first(tmp_path: Path) -> None:
    row = analyze(tmp_path, client_side_only(True)).iloc[0]
    assert (row["close_kind"], row["active_closer"], row["first_fin_by"]) == ("fin", "client", "client")
    assert "FIN_WAIT_2" not in row["notes"] and "inferred" in row["notes"]


def test_no_ack_after_own_fin_means_the_peer_closed_first(tmp_path: Path) -> None:
    row = analyze(tmp_path, client_side_only(False)).iloc[0]
    assert (row["close_kind"], row["active_closer"], row["first_fin_by"]) == ("fin", "server", "server")
    assert "FIN_WAIT_2" not in row["notes"] and "inferred" in row["notes"]


def test_verdicts_that_need_the_unseen_side_are_empty(tmp_path: Path) -> None:
    row = analyze(tmp_path, client_side_only(True)).iloc[0]
    assert pd.isna(row["time_wait_on"]) and pd.isna(row["time_wait_start_ts"])
    assert pd.isna(row["capture_loss_bytes"]) and not row["capture_loss"]
    assert "one direction only in the capture" in row["notes"]


def test_one_sided_rst_has_no_class(tmp_path: Path) -> None:
    packets = client_side_only(True)[:4] + [seg(0.04, "RA", C_ISN + 19, S_ISN + 101)]
    row = analyze(tmp_path, packets).iloc[0]
    assert (row["close_kind"], row["active_closer"], row["first_rst_by"]) == ("rst", "client", "client")
    assert pd.isna(row["rst_class"])


def test_lone_syn_without_the_other_direction_is_unknown(tmp_path: Path) -> None:
    row = analyze(tmp_path, [seg(0.0, "S", C_ISN)]).iloc[0]
    assert (row["close_kind"], row["active_closer"], row["one_sided"]) == ("unknown", "none", True)
    assert "another path" in row["notes"]


def test_retransmitted_syn_without_the_other_direction_is_unanswered(tmp_path: Path) -> None:
    """The client asked again: no answer reached it, whatever path one took."""
    row = analyze(tmp_path, [seg(0.0, "S", C_ISN), seg(1.0, "S", C_ISN)]).iloc[0]
    assert (row["close_kind"], row["one_sided"]) == ("unanswered", False)


def test_lone_syn_is_unanswered_when_the_capture_holds_segments_toward_its_sender(tmp_path: Path) -> None:
    other = ("10.0.0.3", 80)
    packets = [seg(0.0, "S", C_ISN), seg(0.1, "S", 7000, dst=other), seg(0.2, "SA", 9000, 7001, src=other, dst=CLIENT)]
    flows = analyze(tmp_path, packets)
    row = flows[flows["server_port"] == SERVER[1]].iloc[0]
    assert (row["close_kind"], row["one_sided"]) == ("unanswered", False)


def test_lone_syn_is_unknown_when_its_host_pair_is_one_sided(tmp_path: Path) -> None:
    """The client hears from other hosts, but its connections to this server show its ACKs of
    what never came back: the direction from this server is not captured."""
    other, second = ("10.0.0.3", 80), (CLIENT[0], 40001)
    packets = client_side_only(True) + [seg(0.1, "S", 7000, dst=other), seg(0.2, "SA", 9000, 7001, src=other, dst=CLIENT),
                                        seg(0.3, "S", 3000, src=second)]
    flows = analyze(tmp_path, packets)
    row = flows[flows["client_port"] == second[1]].iloc[0]
    assert (row["close_kind"], row["one_sided"]) == ("unknown", True)


def repeated_attempts() -> list[Any]:
    """Three attempts from one port, each a lone SYN with a new ISN, then a fourth answered."""
    out = [seg(0.2 * i, "S", C_ISN + 1000 * i) for i in range(3)]
    isn = C_ISN + 3000
    return out + [seg(0.6, "S", isn), back(0.601, "SA", S_ISN, isn + 1), seg(0.602, "A", isn + 1, S_ISN + 1),
                  seg(0.603, "FA", isn + 1, S_ISN + 1), back(0.604, "FA", S_ISN + 1, isn + 2),
                  seg(0.605, "A", isn + 2, S_ISN + 2)]


def test_new_isn_after_unanswered_syn_is_new_incarnation(tmp_path: Path) -> None:
    flows = analyze(tmp_path, repeated_attempts())
    assert list(flows["incarnation"]) == [0, 1, 2, 3]
    assert list(flows["close_kind"]) == ["unanswered"] * 3 + ["fin"]
    assert list(flows["packets_c2s"]) == [1, 1, 1, 4]


def padded(packets: list[Any]) -> list[Any]:
    """The same frames with 1,400 bytes of Ethernet padding each, so that the smallest chunk
    (4 kB) holds a few of them only."""
    from scapy.layers.l2 import Ether

    out = []
    for p in packets:
        q = Ether(bytes(p) + bytes(1400))
        q.time = p.time
        out.append(q)
    return out


def test_repeated_attempts_split_alike_in_any_chunks_and_handed_out_early(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    whole = analyze(tmp_path, repeated_attempts())
    monkeypatch.setattr(flow_table, "EARLY_HELD", 0)
    pd.testing.assert_frame_equal(whole, analyze(tmp_path, padded(repeated_attempts()), chunk_bytes=4096), check_exact=True)


def test_retransmitted_syn_stays_in_its_incarnation(tmp_path: Path) -> None:
    packets = [seg(0.0, "S", C_ISN), seg(1.0, "S", C_ISN), back(1.001, "SA", S_ISN, C_ISN + 1),
               seg(1.002, "A", C_ISN + 1, S_ISN + 1)]
    flows = analyze(tmp_path, packets)
    assert len(flows) == 1 and flows.iloc[0]["handshake"] == "complete"


def test_syn_from_the_other_side_opens_no_incarnation(tmp_path: Path) -> None:
    """Simultaneous open: each side's SYN, then each side's SYN-ACK (RFC 9293 §3.5, figure 8)."""
    packets = [seg(0.0, "S", C_ISN), back(0.001, "S", S_ISN), seg(0.002, "SA", C_ISN, S_ISN + 1),
               back(0.003, "SA", S_ISN, C_ISN + 1)]
    assert len(analyze(tmp_path, packets)) == 1
