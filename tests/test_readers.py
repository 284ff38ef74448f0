"""The readers side by side: fast, scapy, pyshark (tshark) and auto give the same segments, the
same carriers and the same per-flow tables on every sample, the encapsulation samples
(captures/encapsulated/: link types, tunnels, labels, VLANs; golden tables and truths checked as
tests/test_captures.py checks the others) included; what the summary says; the errors a user sees
when a reader's package is missing."""

from __future__ import annotations

import ast
import json
import math
import struct
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

import teardown
from teardown import cli
from teardown.carriers import Contexts
from teardown.decode import Packets, decode
from teardown.dissect import have_tshark
from teardown.engine import Engine
from teardown.errors import UsageError
from teardown.read import open_capture
from teardown.schema import COLUMN_NAMES

from .conftest import CAPTURES, ROOT
from .test_captures import test_matches_expected_table as matches_expected_table
from .test_decode import cut, eth, ip, ip6, tcp
from .test_captures import test_verdicts_match_construction as matches_construction

# Encapsulation samples (captures/make/make_encap_samples.py, make_kernel_encap_samples.sh), each
# with the real-kernel samples it re-frames (its truth's "sources"; none for a real-kernel one).
# Found by globbing: samples are added as encapsulations are.
ENCAPSULATED_DIR = CAPTURES / "encapsulated"
SAMPLES = sorted(p for d in (CAPTURES, ENCAPSULATED_DIR) for p in d.iterdir() if ".pcap" in p.name)
ENCAPSULATED = {p.name.split(".")[0]: list(json.loads(p.read_text()).get("sources") or [])
                for p in sorted(ENCAPSULATED_DIR.glob("*.truth.json"))}
RE_FRAMED = sorted(k for k, v in ENCAPSULATED.items() if v)
READERS = ("auto", "fast", "scapy", "pyshark")
# Readers that cannot read a sample at all, and why (none at present: tshark dissects every
# link type and encapsulation of the samples).
CANNOT_READ: dict[tuple[str, str], str] = {}
# Known disagreements of the fast decoder (auto reads through it) with scapy and tshark, each to
# be fixed there; the comparisons xfail on them while they last, and pass once fixed.
FAST_GAPS: dict[str, str] = {}  # sample -> the disagreement
# ... and of scapy's reader (teardown/dissect/scapy_reader.py), which does not walk yet every link
# type and tunnel the fast decoder walks, nor count the fast decoder's newer skip reasons.
SCAPY_GAPS: dict[str, str] = {}
# Compared besides the schema's columns: what evidence_frames and notes are written from, the
# frame that orders rows, and the carrier numbers. The payload heads are compared segment by
# segment instead (the bytes each reader hands the flow engine), not as the engine's head columns.
INTERNAL = ("evidence", "first_frame", "note_bits", "ctx")
SEGMENT_FIELDS = [f.name for f in fields(Packets) if f.name not in ("payload_at", "where")]

try:
    import scapy  # noqa: F401

    HAVE_SCAPY = True
except ImportError:
    HAVE_SCAPY = False
HAVE_TSHARK = have_tshark()
needs_both = pytest.mark.skipif(not (HAVE_SCAPY and HAVE_TSHARK), reason="needs scapy and tshark (CI installs both)")


def stem(path: Path) -> str:
    return path.name.split(".")[0]


@dataclass
class Run:
    """One reader's analysis of one sample, and the segments it fed the flow engine."""

    columns: dict[str, Any]
    segments: dict[str, np.ndarray[Any, Any]]
    payloads: list[bytes]
    skipped: Counter[str]
    carried_in: dict[int, str]
    handed_off: Counter[str] = field(default_factory=Counter)


_fed: dict[int, list[tuple[Packets, np.ndarray[Any, Any]]]] = {}
_feed = Engine.feed


def _spy(self: Engine, packets: Packets, data: np.ndarray[Any, Any], now: float | None = None) -> Any:
    """Engine.feed, keeping what each thread's analysis fed it."""
    _fed.setdefault(threading.get_ident(), []).append((packets, data))
    return _feed(self, packets, data, now)


def column(result: Any, name: str) -> np.ndarray[Any, Any]:
    try:
        return result.columns[name]  # type: ignore[no-any-return]
    except KeyError:  # an analysis without rows has no internal columns (no slice was judged)
        assert len(result) == 0, name
        return np.zeros(0, np.int64)


def run(path: Path, reader: str) -> Run:
    _fed[threading.get_ident()] = []
    result = teardown.analyze(str(path), reader=reader)
    parts = _fed.pop(threading.get_ident())
    columns = {k: column(result, k) for k in [*COLUMN_NAMES, *INTERNAL]}
    segments = {k: np.concatenate([getattr(p, k) for p, _ in parts]) if parts else np.zeros(0) for k in SEGMENT_FIELDS}
    payloads = [bytes(d[a: a + n]) if a >= 0 else b"" for p, d in parts
                for a, n in zip(p.payload_at.tolist(), p.payload_captured.tolist())]
    cap = result.capture
    return Run(columns, segments, payloads, Counter(cap.skipped), dict(cap.carried_in), Counter(cap.handed_off))


@pytest.fixture(scope="session")
def runs() -> dict[tuple[str, str], Run]:
    """Every sample read by every reader (tshark's runs in threads beside scapy's)."""
    readers = [r for r in READERS if (r != "scapy" or HAVE_SCAPY) and (r != "pyshark" or HAVE_TSHARK)]
    jobs = sorted(((p, r) for p in SAMPLES for r in readers), key=lambda j: j[1] != "pyshark")
    with mock.patch.object(Engine, "feed", _spy), ThreadPoolExecutor(max_workers=3) as pool:
        done = {(stem(p), r): pool.submit(run, p, r) for p, r in jobs}
        return {k: f.result() for k, f in done.items()}


def same(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return all(x == y or (isinstance(x, float) and math.isnan(x) and isinstance(y, float) and math.isnan(y))
               for x, y in zip(a.ravel().tolist(), b.ravel().tolist()))


def differences(a: Run, b: Run) -> list[str]:
    if len(a.columns["incarnation"]) != len(b.columns["incarnation"]):
        return [f"{len(a.columns['incarnation'])} rows against {len(b.columns['incarnation'])}"]
    return [k for k in a.columns if not same(a.columns[k], b.columns[k])]


def base_name(sample: str) -> str:
    """The reader the others are compared with: tshark's, which shares no code with the fast
    decoder's walk (scapy's numbers carriers with it)."""
    return "pyshark" if (sample, "pyshark") not in CANNOT_READ else "scapy"


def gap_xfail(sample: str, reader: str) -> None:
    """A known gap of the reader on this sample: xfail with its reason (pass once fixed)."""
    gaps = FAST_GAPS if reader in ("auto", "fast") else SCAPY_GAPS if reader == "scapy" else {}
    if sample in gaps:
        pytest.xfail(f"{reader}: {gaps[sample]}")


def readers_of(sample: str) -> list[str]:
    return [r for r in READERS if r != base_name(sample) and (sample, r) not in CANNOT_READ]


@needs_both
@pytest.mark.parametrize("sample", [stem(p) for p in SAMPLES])
def test_every_reader_gives_the_same_flow_table(runs: dict[tuple[str, str], Run], sample: str) -> None:
    """Identical per-flow tables, evidence frames, carriers and encapsulation texts included."""
    base = runs[(sample, base_name(sample))]
    assert len(base.columns["incarnation"]) > 0
    for reader in readers_of(sample):
        diff = differences(base, runs[(sample, reader)])
        if diff:
            gap_xfail(sample, reader)
        assert not diff, f"{sample}: {base_name(sample)} and {reader} differ in {diff}"


@needs_both
@pytest.mark.parametrize("sample", [stem(p) for p in SAMPLES])
def test_every_reader_decodes_the_same_segments(runs: dict[tuple[str, str], Run], sample: str) -> None:
    """Every segment's fields (`where` aside: the fast decoder's hash, 0 from the others), the
    payload bytes handed to the flow engine, the frames skipped by reason and the carriers."""
    base = runs[(sample, base_name(sample))]
    for reader in readers_of(sample):
        other = runs[(sample, reader)]
        same_all = (all(np.array_equal(base.segments[k], other.segments[k]) for k in SEGMENT_FIELDS)
                    and base.payloads == other.payloads and base.skipped == other.skipped
                    and base.carried_in == other.carried_in)
        if not same_all:
            gap_xfail(sample, reader)
        for k in SEGMENT_FIELDS:
            assert np.array_equal(base.segments[k], other.segments[k]), f"{sample}: {reader} differs in {k}"
        assert base.payloads == other.payloads, f"{sample}: {reader}'s payload bytes differ"
        assert base.skipped == other.skipped, f"{sample}: {reader} skipped {other.skipped}, {base_name(sample)} {base.skipped}"
        assert base.carried_in == other.carried_in, f"{sample}: {reader} {other.carried_in}, {base.carried_in}"


@needs_both
@pytest.mark.parametrize("sample", sorted(ENCAPSULATED))
def test_fast_reader_reads_the_encapsulated_samples_itself(runs: dict[tuple[str, str], Run], sample: str) -> None:
    """The fast decoder walks every link type and encapsulation of the samples: auto hands
    nothing over (but frames of a link type nobody reads, to tshark), and reads what the fast
    reader reads."""
    fast, auto = runs[(sample, "fast")], runs[(sample, "auto")]
    if sample in FAST_GAPS and not len(fast.columns["incarnation"]):
        pytest.xfail(FAST_GAPS[sample])
    assert len(fast.columns["incarnation"]) > 0 and not differences(fast, auto)
    assert fast.payloads == auto.payloads and fast.skipped == auto.skipped
    unknown = {k: v for k, v in fast.skipped.items() if k.startswith("link type ")}
    assert auto.handed_off == {f"{k.replace('unsupported', 'unknown')} to tshark": v for k, v in unknown.items()}


VERDICTS = ["client_ip", "client_port", "server_ip", "server_port", "handshake", "close_kind", "half_close",
            "active_closer", "first_fin_by", "first_rst_by", "rst_class", "fin_retransmissions_client",
            "fin_retransmissions_server", "data_after_fin", "time_wait_on", "time_wait_restarts", "tw_assassination",
            "packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c", "capture_loss_bytes"]


@needs_both
@pytest.mark.parametrize("sample", RE_FRAMED)
def test_encapsulated_sample_keeps_the_verdicts_of_its_source(runs: dict[tuple[str, str], Run], sample: str) -> None:
    """Re-framing the real-kernel frames changes where they were carried, never how the
    connections ended: the same verdicts, and (one source) the same times and evidence frames."""
    got = runs[(sample, "auto")].columns
    sources = [runs[(s, "auto")].columns for s in ENCAPSULATED[sample]]
    for k in VERDICTS:
        want = np.concatenate([s[k] for s in sources])
        if sample in ("vxlan", "vlan_overlap") and k == "client_port":  # the second connection's port was rewritten to collide
            want = np.full(len(want), want[0])
        assert same(got[k], want), f"{sample} {k}: {got[k]} against {want}"
    if len(sources) == 1:
        for k in ("first_ts", "last_ts", "time_wait_end_ts"):
            assert same(got[k], sources[0][k]), k
        if frames(ENCAPSULATED_DIR / f"{sample}.pcap") == frames(CAPTURES / f"{ENCAPSULATED[sample][0]}.pcap"):
            assert same(got["evidence_frames"], sources[0]["evidence_frames"])  # frames not to skip, none added


def frames(path: Path) -> int:
    return sum(len(b) for b in open_capture(str(path), 1 << 20)) if path.exists() else -1


@pytest.mark.parametrize("sample", sorted(ENCAPSULATED))
def test_encapsulated_sample_matches_its_expected_table(sample: str, regen: bool) -> None:
    """captures/encapsulated/STEM.expected.csv, as tests/test_captures.py checks the others
    (`pytest --regen` rewrites them)."""
    (capture,) = [p for p in SAMPLES if p.parent == ENCAPSULATED_DIR and stem(p) == sample]
    matches_expected_table(capture, regen)


@pytest.mark.parametrize("sample", sorted(ENCAPSULATED))
def test_encapsulated_sample_matches_its_construction(sample: str) -> None:
    matches_construction(ENCAPSULATED_DIR / f"{sample}.truth.json")


@needs_both
def test_tunnels_keep_connections_on_the_same_4_tuple_apart(runs: dict[tuple[str, str], Run]) -> None:
    """Overlapping address spaces never mix: two VNIs carry the same inner 4-tuple at once."""
    r = runs[("vxlan", "auto")]
    c = r.columns
    assert len(set(zip(c["client_ip"], c["client_port"], c["server_ip"], c["server_port"]))) == 1
    assert c["ctx"].tolist() == [4096, 4097] and all(math.isnan(v) for v in c["vlan"])
    assert r.carried_in == {4096: "VXLAN VNI 100 198.19.0.1 <-> 198.19.0.2",
                            4097: "VXLAN VNI 200 198.19.0.1 <-> 198.19.0.2"}
    assert [f.split("/")[0] for f in c["flow_id"]] == ["c1", "c2"]
    assert c["encapsulation"].tolist() == ["eth/ipv4/vxlan:100/eth/ipv4", "eth/ipv4/vxlan:200/eth/ipv4"]
    gre = runs[("gre", "auto")]
    assert gre.carried_in == {4096: "GRE key 7 198.19.0.1 <-> 198.19.0.2"}
    assert gre.columns["encapsulation"].tolist() == ["eth/ipv4/gre:7/ipv4"]
    if "vlan_overlap" in ENCAPSULATED:  # two VLANs, one address plan: two connections, numbered by VLAN id
        v = runs[("vlan_overlap", "auto")]
        assert v.columns["vlan"].tolist() == [100.0, 200.0] and not v.carried_in
        assert [f.split("/")[0] for f in v.columns["flow_id"]] == ["vlan100", "vlan200"]
        assert v.columns["encapsulation"].tolist() == ["eth/vlan:100/ipv4", "eth/vlan:200/ipv4"]


@needs_both
@pytest.mark.parametrize("sample, encapsulation, carried_in", [
    ("mpls", "eth/mpls/ipv4", {}), ("pppoe", "eth/pppoe/ipv4", {}), ("radiotap", "", {}),
    ("mpls_multicast", "eth/mpls/ipv6", {}), ("gtpu", "eth/ipv4/gtpu/ipv4", {4096: "GTP-U 198.19.0.1 <-> 198.19.0.2"})])
def test_labels_and_link_layers_are_not_part_of_the_identity(runs: dict[tuple[str, str], Run], sample: str,
                                                             encapsulation: str, carried_in: dict[int, str]) -> None:
    """MPLS labels and GTP TEIDs differ per direction (one connection, not two; a GTP-U tunnel's
    ends are part of it); PPPoE and 802.11 are links."""
    if sample not in ENCAPSULATED:
        pytest.skip(f"no sample {sample} yet")
    r = runs[(sample, "auto")]
    c = r.columns
    assert len(c["incarnation"]) == 1 and math.isnan(c["vlan"][0])
    assert c["encapsulation"].tolist() == [encapsulation]
    assert r.carried_in == carried_in


# ---- what the user sees ------------------------------------------------------------------------

@needs_both
def test_summary_says_what_read_the_capture(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["analyze", str(ENCAPSULATED_DIR / "vxlan.pcap")]) == 0
    out = capsys.readouterr().out
    assert "handed over" not in out and "--reader" not in out
    assert "VXLAN VNI 100 198.19.0.1 <-> 198.19.0.2" in out and "VXLAN VNI 200 198.19.0.1 <-> 198.19.0.2" in out
    assert cli.main(["analyze", str(ENCAPSULATED_DIR / "unknown_link.pcapng")]) == 0
    assert "frames the fast reader does not decode were handed over: link type 147 (unknown) to tshark" in (
        capsys.readouterr().out)
    assert cli.main(["analyze", str(CAPTURES / "client_first_close.pcap")]) == 0
    out = capsys.readouterr().out
    assert "handed over" not in out and "tunnels" not in out and "--reader" not in out
    assert cli.main(["analyze", str(ENCAPSULATED_DIR / "gre.pcap"), "--reader", "tshark"]) == 0
    assert "read with --reader tshark" in capsys.readouterr().out
    # `pyshark`, the tshark reader's first name, still selects it, and the summary names what ran.
    assert cli.main(["analyze", str(ENCAPSULATED_DIR / "gre.pcap"), "--reader", "pyshark"]) == 0
    assert "read with --reader tshark" in capsys.readouterr().out


def test_unknown_reader_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="choose from auto, fast, scapy, tshark"):
        teardown.analyze(str(CAPTURES / "refused.pcap"), reader="wireshark")


def without_scapy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scapy.contrib.mpls", None)  # import scapy.contrib.mpls -> ImportError


def without_tshark(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyshark.tshark.tshark", None)
    monkeypatch.setenv("PATH", "/nonexistent")


def _on_link_type(tmp_path: Path, linktype: int, header: bytes) -> tuple[Path, int]:
    """client_first_close's IP packets behind `header` on `linktype`, and how many frames."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    n = 0
    for batch in open_capture(str(CAPTURES / "client_first_close.pcap"), 1 << 20):
        for i in range(len(batch)):
            frame = header + bytes(batch.data[batch.pos[i] + 14: batch.pos[i] + batch.caplen[i]])  # the IP packet
            sec = int(batch.ts[i])
            usec = round((float(batch.ts[i]) - sec) * 1e6)
            out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
            n += 1
    path = tmp_path / f"link{linktype}.pcap"
    path.write_bytes(b"".join(out))
    return path, n


# Apple IP over IEEE 1394 (link type 138): destination and source EUI-64, EtherType. The fast
# decoder and scapy do not read it; tshark does.
AP1394 = (138, bytes(range(16)) + b"\x08\x00")


@pytest.mark.skipif(not HAVE_TSHARK, reason="needs tshark (CI installs it)")
def test_auto_hands_over_to_tshark_without_scapy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    without_scapy(monkeypatch)
    path, n = _on_link_type(tmp_path, *AP1394)
    got = teardown.analyze(str(path))
    assert got.capture.handed_off == {"link type 138 (unknown) to tshark": n}
    want = teardown.analyze(str(path), reader="pyshark")
    assert got.flows.equals(want.flows)


@needs_both
def test_auto_hands_link_types_scapy_does_not_know_to_tshark(tmp_path: Path) -> None:
    """Link type 138 (Apple IP over IEEE 1394): no scapy layer, tshark decodes it."""
    path, n = _on_link_type(tmp_path, *AP1394)
    got = teardown.analyze(str(path))
    assert got.capture.handed_off == {"link type 138 (unknown) to tshark": n}
    want = teardown.analyze(str(CAPTURES / "client_first_close.pcap")).flows
    for k in VERDICTS:
        assert got.flows[k].tolist() == want[k].tolist(), k
    assert got.flows["link_type"].tolist() == ["link type 138"] * len(want)


@pytest.mark.skipif(not HAVE_TSHARK, reason="needs tshark (CI installs it)")
def test_a_flow_another_dissector_read_gets_its_ladder(tmp_path: Path) -> None:
    """The report reads the capture again as the analysis did (source.py), hand-off included: the
    flow of link type 138, which only tshark reads, is drawn, segment for segment as the same
    flow on Ethernet. client_first_close holds one connection of 10 segments: handshake, 7 bytes
    each way, the client's FIN, the server's FIN, the last ACK."""
    from teardown.report.ladder import ladders

    path, n = _on_link_type(tmp_path, *AP1394)
    got = teardown.analyze(str(path))
    drawn = ladders(got.capture.files, got.columns, got.options)
    plain = teardown.analyze(str(CAPTURES / "client_first_close.pcap"))
    want = ladders(plain.capture.files, plain.columns, plain.options)
    assert list(drawn) == [0]
    shape = drawn[0].shape
    assert shape["flags"] == [0x02, 0x12, 0x10, 0x18, 0x10, 0x18, 0x10, 0x11, 0x11, 0x10] and len(shape["flags"]) == n
    assert shape["len"] == [0, 0, 0, 7, 0, 7, 0, 0, 0, 0]
    assert shape == want[0].shape and drawn[0].frames == want[0].frames and drawn[0].isn == want[0].isn


@pytest.mark.skipif(not HAVE_TSHARK, reason="needs tshark (CI installs it)")
def test_a_file_only_tshark_reads_gets_its_report(tmp_path: Path) -> None:
    """A snoop file goes to tshark whole, for the table and for the report's ladders alike."""
    path = _snoop(tmp_path)
    page = tmp_path / "client.html"
    assert cli.main(["analyze", str(path), "--quiet", "--workers", "0", "-o", str(page)]) == 0
    assert '"flows":{"0":' in page.read_text()


@pytest.mark.skipif(not HAVE_TSHARK, reason="needs tshark (CI installs it)")
def test_auto_hands_a_format_the_fast_reader_does_not_read_to_tshark(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A snoop file (RFC 1761): tshark reads it whole, and the summary says so."""
    path = _snoop(tmp_path)
    n = 10  # client_first_close's frames
    got = teardown.analyze(str(path))
    assert got.capture.handed_off == {"whole files in a format the fast reader does not read, to tshark": n}
    want = teardown.analyze(str(CAPTURES / "client_first_close.pcap")).flows
    for k in VERDICTS:
        assert got.flows[k].tolist() == want[k].tolist(), k
    assert cli.main(["analyze", str(path), "--reader", "fast"]) == 2
    assert "snoop capture?" in capsys.readouterr().err


def test_auto_without_scapy_or_tshark_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    without_scapy(monkeypatch)
    without_tshark(monkeypatch)
    path, n = _on_link_type(tmp_path, *AP1394)
    assert cli.main(["analyze", str(path), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"{n} frames of link types the fast reader does not decode were skipped (link type 138 (unknown) {n})" in err
    assert "pip install scapy" in err and "apt-get install tshark" in err
    assert f"{n} frames skipped: link type 138 (unsupported)" in err  # counted as the fast reader counts them


@pytest.mark.parametrize("reader, package", [("scapy", "pip install scapy"), ("pyshark", "apt-get install tshark")])
def test_missing_reader_is_one_line_naming_the_package_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str],
                                                              reader: str, package: str) -> None:
    without_scapy(monkeypatch) if reader == "scapy" else without_tshark(monkeypatch)
    assert cli.main(["analyze", str(CAPTURES / "refused.pcap"), "--reader", reader]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and package in err and "Traceback" not in err


@pytest.mark.skipif(not HAVE_TSHARK, reason="needs tshark (CI installs it)")
def test_tshark_failing_on_a_file_is_its_message_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "notes.pcap"
    bad.write_text("not a capture at all\n")
    assert cli.main(["analyze", str(bad), "--reader", "pyshark"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tshark: The file" in err and "isn't a capture file" in err
    assert cli.main(["analyze", str(tmp_path / "missing.pcap"), "--reader", "pyshark"]) == 2
    assert "missing.pcap: no such file" in capsys.readouterr().err


@pytest.mark.skipif(not HAVE_TSHARK, reason="needs tshark (CI installs it)")
def test_tshark_on_a_capture_cut_short_warns_and_reads_up_to_the_cut(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((CAPTURES / "server_first_close.pcap").read_bytes()[:700])
    got = teardown.analyze(str(cut), reader="pyshark")
    want = teardown.analyze(str(cut), reader="fast")
    assert got.capture.frames == want.capture.frames == 5
    assert any("tshark stopped early" in w and "cut short" in w for w in got.capture.warnings)
    assert got.flows.drop(columns="capture_file").equals(want.flows.drop(columns="capture_file"))


# ---- layouts the samples lack ------------------------------------------------------------------

def _crafted(tmp_path: Path) -> dict[str, tuple[list[Any], int]]:
    from scapy.layers.inet import ICMP, TCP, UDP
    from scapy.layers.inet6 import IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
    from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q
    from scapy.packet import Raw

    full = eth() / ip() / tcp(b"z" * 1000, flags="PA")
    return {
        "qinq": ([eth() / Dot1AD(vlan=100) / Dot1Q(vlan=200) / ip() / tcp(b"abc"),
                  eth() / Dot1Q(vlan=7) / Dot1Q(vlan=8) / Dot1Q(vlan=9) / Dot1Q(vlan=10) / ip() / tcp(),
                  eth() / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / Dot1Q(vlan=4) / Dot1Q(vlan=5) / ip() / tcp()], 1),
        "sll": ([CookedLinux(proto=0x0800) / ip() / tcp(b"hi", flags="S"),
                 CookedLinux(proto=0x0806) / ARP(hwsrc="02:00:00:00:00:01", psrc="10.0.0.1", pdst="10.0.0.2"),
                 Raw(b"\0" * 15)], 113),
        "sll2": ([CookedLinuxV2(proto=0x86DD) / ip6() / tcp(b"hello"), CookedLinuxV2(proto=0x86DD) / ip6() / UDP(),
                  Raw(b"\x08\x00" + b"\0" * 17)], 276),
        "ipv6_extensions": ([ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt() / tcp(b"12345"),
                             ip6() / IPv6ExtHdrFragment(offset=100, nh=6) / Raw(b"later" * 10)], 229),
        "ipv4_lengths": ([eth() / ip(len=0, id=9) / tcp(b"x" * 3000), eth() / ip(frag=185, proto=6) / Raw(b"y" * 40),
                          eth() / ip(flags="MF") / tcp(b"first"), eth() / ip(ihl=4) / tcp()], 1),
        "snaplen": ([cut(full, 60), cut(full, 14 + 20 + 32), cut(full, 14 + 20 + 10), cut(full, 14 + 10)], 1),
        "window_scale": ([eth() / ip() / TCP(flags=f, options=[("WScale", w), ("EOL", None)])
                          for f, w in (("S", 7), ("SA", 20), ("A", 7))], 1),
        "icmp_quotes_tcp": ([eth() / ip() / ICMP(type=3, code=3) / ip(proto=6) / TCP(sport=40000, dport=8080),
                             eth() / ip() / UDP(sport=53, dport=53) / Raw(b"q")], 1),
        "short_ethernet": ([Raw(b"\0" * 13)] * 2, 1),
        "unknown_link_type": ([Raw(b"\x45" + b"\0" * 59)] * 3, 147),
    }


def _segments(path: str, reader: str) -> tuple[list[tuple[Any, ...]], Counter[str]]:
    """(fields..., payload bytes) of every segment, and the skip counts, of one reader."""
    from teardown.dissect.scapy_reader import ScapyDecoder
    from teardown.dissect.tshark_reader import TsharkReader

    skipped: Counter[str] = Counter()
    parts = []
    if reader == "pyshark":
        parts = [(c.packets, c.data) for c in TsharkReader(path, Contexts(), skipped)]
    else:
        scapy = ScapyDecoder(Contexts()) if reader == "scapy" else None
        for b in open_capture(path, 1 << 20):
            parts.append((decode(b, skipped), b.data) if scapy is None else scapy.decode(b, skipped))
    out = []
    for p, data in parts:
        for i in range(len(p)):
            at, n = int(p.payload_at[i]), int(p.payload_captured[i])
            out.append(tuple(int(getattr(p, k)[i]) for k in SEGMENT_FIELDS if k != "ts")
                       + (bytes(data[at: at + n]) if at >= 0 else b"",))
    return out, skipped


@needs_both
def test_readers_agree_on_layouts_the_samples_lack(tmp_path: Path) -> None:
    """QinQ, cooked captures, IPv6 extension headers, TSO and fragment lengths, snaplen cuts,
    window scale, ICMP-quoted headers, short frames, unknown link types: segments, payload
    bytes and skip reasons as the fast decoder has them (tests/test_decode.py)."""
    from scapy.utils import wrpcap

    got: dict[str, bool] = {}  # layout -> scapy agrees
    for name, (frames, linktype) in _crafted(tmp_path).items():
        path = str(tmp_path / f"{name}.pcap")
        wrpcap(path, frames, linktype=linktype)
        fast = _segments(path, "fast")
        assert _segments(path, "pyshark") == fast, f"{name}: pyshark"
        got[name] = _segments(path, "scapy") == fast
    for name, ok in got.items():
        if not ok:
            gap_xfail(name, "scapy")
        assert ok, f"{name}: scapy"


@needs_both
def test_an_ipv6_first_fragment_is_counted_apart_by_the_pyshark_reader(tmp_path: Path) -> None:
    """tshark gives no TCP payload length in an IPv6 first fragment: its segment is skipped
    with that reason (the fast and scapy readers decode it)."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
    from scapy.utils import wrpcap

    path = str(tmp_path / "frag6.pcap")
    wrpcap(path, [IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(offset=0, m=1) / TCP(flags="S")], linktype=229)
    assert len(_segments(path, "scapy")[0]) == len(_segments(path, "fast")[0]) == 1
    segments, skipped = _segments(path, "pyshark")
    assert not segments and skipped == {"first IPv6 fragment (tshark gives no TCP payload length in it)": 1}


def test_dissect_imports_only_earlier_stages() -> None:
    """The readers produce decode's records: they may import read and decode, never the flow
    engine, verdicts or edges (tests/test_layers.py for the rest of the pipeline)."""
    later = {"flows", "verdicts", "engine", "timewait", "analysis", "cli", "crosscheck", "report", "live"}
    for path in (ROOT / "teardown" / "dissect").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                assert node.module.split(".")[0] not in later, f"{path.name} imports {node.module}"


def _snoop(tmp_path: Path) -> Path:
    """client_first_close as a snoop file (RFC 1761), a format the fast reader does not read."""
    records = [b"snoop\0\0\0" + struct.pack(">II", 2, 4)]  # version 2, Ethernet
    for batch in open_capture(str(CAPTURES / "client_first_close.pcap"), 1 << 20):
        for i in range(len(batch)):
            frame = bytes(batch.data[batch.pos[i]: batch.pos[i] + batch.caplen[i]])
            sec = int(batch.ts[i])
            pad = b"\0" * (-len(frame) % 4)
            records.append(struct.pack(">IIIIII", int(batch.wirelen[i]), len(frame), 24 + len(frame) + len(pad), 0,
                                       sec, round((float(batch.ts[i]) - sec) * 1e6)) + frame + pad)
    path = tmp_path / "client.snoop"
    path.write_bytes(b"".join(records))
    return path
