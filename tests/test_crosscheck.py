"""`teardown crosscheck`: our verdicts against Wireshark's TCP analysis on every sample, every
disagreement explained; the explanations checked on crafted captures; exit codes and errors."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import pytest

import teardown
from teardown import cli
from teardown.crosscheck import ASPECTS, Comparison, Crosscheck, crosscheck
from teardown.dissect import have_tshark
from teardown.options import Options, ReaderKind

from .conftest import CAPTURES

pytestmark = pytest.mark.skipif(not have_tshark(), reason="needs tshark (CI installs it)")
SAMPLES = sorted(p for d in (CAPTURES, CAPTURES / "encapsulated") for p in d.iterdir() if ".pcap" in p.name)


def stem(path: Path) -> str:
    return path.name.split(".")[0]


@pytest.fixture(scope="session")
def checks() -> dict[str, Crosscheck]:
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = {stem(p): pool.submit(crosscheck, str(p)) for p in SAMPLES}
        return {k: f.result() for k, f in done.items()}


@pytest.mark.parametrize("sample", [stem(p) for p in SAMPLES])
def test_every_disagreement_on_the_samples_is_explained(checks: dict[str, Crosscheck], sample: str) -> None:
    result = checks[sample]
    assert not result.unexplained, result.text()
    assert result.compared["stream boundaries"] >= 1
    assert all(result.agreed[a] <= result.compared[a] for a in ASPECTS)


def test_the_samples_agree_where_nothing_needs_explaining(checks: dict[str, Crosscheck]) -> None:
    """Only the samples made to show a difference disagree at all."""
    disagreeing = {k for k, r in checks.items() if r.disagreements}
    assert disagreeing == {"simultaneous_close", "reuse_in_time_wait_rejected", "vxlan",
                           "ppp", "gre_keyseq",  # a simultaneous close and a handshake RST, re-framed
                           "vlan_overlap",  # two connections on one 4-tuple in two VLANs
                           "two_interfaces", "vlan_mirrored",  # one connection seen at two points
                           "one_sided",  # a server-first close whose server FIN the capture does not hold
                           "rst_out_of_window"}  # an injected RST far ahead: Wireshark's sequence tracking follows it
    total = sum(r.compared["stream boundaries"] for r in checks.values())
    # vxlan's two tunnels and vlan_overlap's two VLANs: one stream for Wireshark
    assert total == sum(r.agreed["stream boundaries"] for r in checks.values()) + 2


def test_a_simultaneous_close_is_explained(checks: dict[str, Crosscheck]) -> None:
    (d,) = checks["simultaneous_close"].disagreements
    assert d.aspect == "active closer" and "first FIN from the client (frame 8)" in d.wireshark
    assert d.ours == "judge both sides active closers"
    assert d.explanation is not None and "the FINs crossed" in d.explanation


def test_a_handshake_rst_is_explained(checks: dict[str, Crosscheck]) -> None:
    (d,) = checks["reuse_in_time_wait_rejected"].disagreements
    assert d.aspect == "RST senders" and "frame 13" in d.wireshark
    assert d.explanation is not None and "before the handshake completed" in d.explanation


def test_tunnels_wireshark_merges_are_explained(checks: dict[str, Crosscheck]) -> None:
    (d,) = checks["vxlan"].disagreements
    assert d.aspect == "stream boundaries" and "tcp.stream 1: frames 6-22" in d.wireshark
    assert d.explanation is not None and "different VLANs or tunnels" in d.explanation


@pytest.mark.parametrize("sample", ["two_interfaces", "vlan_mirrored"])
def test_copies_wireshark_calls_retransmissions_are_explained(checks: dict[str, Crosscheck], sample: str) -> None:
    """The same segment seen at two points (interfaces, VLANs): Wireshark flags the second as a
    retransmission, we set it aside."""
    found = checks[sample].disagreements
    assert {d.aspect for d in found} <= {"FIN retransmissions", "FIN senders"} and found
    for d in found:
        assert d.explanation is not None and ("seen at another point" in d.explanation
                                              or "seen at two points" in d.explanation)


def _capture(tmp_path: Path, name: str, segments: list[tuple[float, bool, int, int, str, bytes]]) -> str:
    """A crafted capture of one client (10.0.0.1:40000) and server (10.0.0.2:80)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    frames = []
    for ts, c2s, seq, ack, flags, data in segments:
        ends = ("10.0.0.1", "10.0.0.2", 40000, 80) if c2s else ("10.0.0.2", "10.0.0.1", 80, 40000)
        p = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=ends[0], dst=ends[1])
             / TCP(sport=ends[2], dport=ends[3], seq=seq, ack=ack, flags=flags))
        p = p / Raw(data) if data else p
        p.time = ts
        frames.append(p)
    path = str(tmp_path / name)
    wrpcap(path, frames)
    return path


HANDSHAKE = [(1000.0, True, 99, 0, "S", b""), (1000.01, False, 499, 100, "SA", b""), (1000.02, True, 100, 500, "A", b""),
             (1000.03, True, 100, 500, "PA", b"hello"), (1000.1, False, 500, 105, "A", b"")]


def test_a_syn_meeting_an_open_connection_is_explained(tmp_path: Path) -> None:
    """Wireshark starts a stream at a SYN with a new ISN; on an open connection that SYN meets
    the established socket (challenge ACK) and is no new incarnation."""
    path = _capture(tmp_path, "syn_on_open.pcap", HANDSHAKE + [
        (1001.0, True, 7000, 0, "S", b""), (1001.01, False, 500, 105, "A", b""),
        (1001.5, True, 105, 500, "PA", b"more"), (1001.6, False, 500, 109, "A", b""),
        (1002.0, True, 109, 500, "FA", b""), (1002.1, False, 500, 110, "FA", b""), (1002.2, True, 110, 501, "A", b"")])
    result = crosscheck(path)
    (d,) = result.disagreements
    assert d.aspect == "stream boundaries" and d.explanation is not None
    assert "a SYN with a new ISN while 10.0.0.1:40000>10.0.0.2:80/0 was open" in d.explanation


def test_a_disagreement_without_explanation_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Comparison, "_why_closer", lambda *a, **k: None)
        assert cli.main(["crosscheck", str(CAPTURES / "simultaneous_close.pcap")]) == 1
    out = capsys.readouterr().out
    assert "NOT EXPLAINED" in out and "1 disagreement, 1 not explained" in out


def test_a_new_incarnation_after_an_abort_is_explained_only_where_we_start_one(tmp_path: Path) -> None:
    """A SYN meets the open connection (challenge ACK), the client's exact RST aborts it, and
    the SYN sent again opens a new connection (docs/rules.md, "Vocabulary": a SYN with a new
    ISN after an abort). Wireshark starts its stream at the first SYN. The check explains that
    first SYN, and explains the rest only if our table starts an incarnation at the second:
    a table that does not is a disagreement nobody can explain."""
    path = _capture(tmp_path, "abort_then_syn.pcap", HANDSHAKE + [
        (1001.0, True, 7000, 0, "S", b""), (1001.01, False, 500, 105, "A", b""), (1001.02, True, 105, 0, "R", b""),
        (1002.0, True, 7000, 0, "S", b""), (1002.01, False, 9000, 7001, "SA", b""),
        (1002.02, True, 7001, 9001, "A", b""), (1002.2, True, 7001, 9001, "FA", b""),
        (1002.3, False, 9001, 7002, "FA", b""), (1002.4, True, 7002, 9002, "A", b"")])
    result = crosscheck(path)
    splits = result.compared["stream boundaries"] == 1 and not any(
        d.aspect == "stream boundaries" for d in result.disagreements)
    ours = teardown.analyze(path)
    if len(ours) == 2:
        assert ours.columns["first_frame"].tolist() == [1, 9]
        assert not result.unexplained, result.text()
    else:  # the flow engine kept the SYN after the abort in the aborted incarnation
        assert [d.aspect for d in result.unexplained] == ["stream boundaries"], result.text()
    assert not splits


def test_crosscheck_exits_0_and_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["crosscheck", str(CAPTURES / "simultaneous_close.pcap")]) == 0
    out = capsys.readouterr().out
    assert "active closer          0 of 1 agree (1 explained)" in out and "1 disagreement, all explained" in out


@pytest.mark.parametrize("reader", ["scapy", "pyshark"])
def test_crosscheck_with_another_reader(reader: str) -> None:
    result = crosscheck(str(CAPTURES / "encapsulated" / "vxlan.pcap"), Options(reader=ReaderKind(reader)))
    assert len(result.disagreements) == 1 and not result.unexplained


def test_crosscheck_of_a_format_only_tshark_reads(tmp_path: Path) -> None:
    """What `auto` hands tshark whole is compared too (a snoop file, RFC 1761)."""
    import struct

    from teardown.read import open_capture

    records = [b"snoop\0\0\0" + struct.pack(">II", 2, 4)]
    for batch in open_capture(str(CAPTURES / "simultaneous_close.pcap"), 1 << 20):
        for i in range(len(batch)):
            frame = bytes(batch.data[batch.pos[i]: batch.pos[i] + batch.caplen[i]])
            sec, pad = int(batch.ts[i]), b"\0" * (-len(frame) % 4)
            records.append(struct.pack(">IIIIII", len(frame), len(frame), 24 + len(frame) + len(pad), 0, sec,
                                       round((float(batch.ts[i]) - sec) * 1e6)) + frame + pad)
    path = tmp_path / "simultaneous.snoop"
    path.write_bytes(b"".join(records))
    result = crosscheck(str(path))
    assert [d.aspect for d in result.disagreements] == ["active closer"] and not result.unexplained


def test_crosscheck_of_a_capture_cut_short_compares_up_to_the_cut(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((CAPTURES / "server_first_close.pcap").read_bytes()[:700])
    result = crosscheck(str(cut))
    assert not result.disagreements and any("cut short" in w for w in result.warnings)


def test_crosscheck_without_tshark_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pyshark.tshark.tshark", None)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert cli.main(["crosscheck", str(CAPTURES / "refused.pcap")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install tshark" in err


def test_crosscheck_of_no_capture_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["crosscheck", str(tmp_path / "missing.pcap")]) == 2
    assert capsys.readouterr().err.strip().endswith("missing.pcap: no such file")
