"""The C header decoder against an independent one (scapy), on the sample captures and on
hand-crafted frames for the layouts the samples lack; skip reasons are checked exactly."""

from __future__ import annotations

import ipaddress
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teardown.carriers import Contexts
from teardown.decode import Packets, decode
from teardown.read import PAD, FrameBatch, open_capture

from .conftest import CAPTURES, examples

SAMPLES = sorted(p for p in CAPTURES.iterdir() if ".pcap" in p.name)
SCAPY_FRAMES = 200  # frames per sample compared with scapy (~2k frames/s): all of the small ones


def read(path: Path, chunk_bytes: int = 1 << 20,
         contexts: Contexts | None = None) -> tuple[Packets, Counter[str], list[FrameBatch]]:
    skipped: Counter[str] = Counter()
    batches = list(open_capture(str(path), chunk_bytes))
    contexts = Contexts() if contexts is None else contexts
    parts = [decode(b, skipped, contexts) for b in batches]
    return (Packets.concat(parts) if parts else Packets.empty()), skipped, batches


def scapy_segments(path: Path, limit: int) -> dict[int, dict[str, int]]:
    """Frame number -> the TCP segment scapy finds in it, for the first `limit` frames."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Dot1Q  # Dot1AD (QinQ's outer tag) is a subclass
    from scapy.utils import PcapReader

    out = {}
    with PcapReader(str(path)) as reader:
        for number, pkt in enumerate(reader, 1):
            if number > limit:
                break
            if TCP not in pkt:
                continue
            tcp = pkt[TCP]
            # An option cut by the snaplen comes back from scapy as bytes, not as a tuple.
            ts = [v[0] for k, v in tcp.options if k == "Timestamp" and isinstance(v, tuple)]
            ws = [v for k, v in tcp.options if k == "WScale"]
            syn = int(tcp.flags) & 0x02
            wirelen = pkt.wirelen or len(pkt)
            if IP in pkt:
                net = pkt[IP]
                ip_len = net.len or wirelen - (len(pkt) - len(net))  # 0 (TSO): the frame's length
                headers = net.ihl * 4
                src = 0xFFFF << 32 | int(ipaddress.IPv4Address(net.src))
                dst = 0xFFFF << 32 | int(ipaddress.IPv4Address(net.dst))
            else:
                net = pkt[IPv6]
                ip_len = 40 + (net.plen or wirelen - (len(pkt) - len(net.payload)))
                headers = len(net) - len(tcp)  # fixed header and extension headers
                src, dst = int(ipaddress.IPv6Address(net.src)), int(ipaddress.IPv6Address(net.dst))
            out[number] = dict(
                sport=tcp.sport, dport=tcp.dport, seq=tcp.seq, ack=tcp.ack, flags=int(tcp.flags) & 0xFF,
                window=tcp.window, payload=ip_len - headers - tcp.dataofs * 4, tsval=ts[-1] if ts else -1,
                wscale=min(ws[-1], 14) if ws and syn else -1, vlan=pkt[Dot1Q].vlan if Dot1Q in pkt else 0,
                src=src, dst=dst)
    return out


def row(p: Packets, i: int, contexts: Contexts) -> dict[str, int]:
    return dict(sport=int(p.sport[i]), dport=int(p.dport[i]), seq=int(p.seq[i]), ack=int(p.ack[i]),
                flags=int(p.flags[i]), window=int(p.window[i]), payload=int(p.payload[i]),
                tsval=int(p.tsval[i]), wscale=int(p.wscale[i]), vlan=contexts.points[int(p.ctx[i])].vlan,
                src=int(p.src_hi[i]) << 64 | int(p.src_lo[i]), dst=int(p.dst_hi[i]) << 64 | int(p.dst_lo[i]))


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_capture_matches_scapy(path: Path) -> None:
    contexts = Contexts()
    p, _, _ = read(path, contexts=contexts)
    expected = scapy_segments(path, SCAPY_FRAMES)
    assert expected, "no TCP in the sample?"
    ours = {int(f): i for i, f in enumerate(p.frame) if f <= SCAPY_FRAMES}
    assert sorted(ours) == sorted(expected)
    for frame, fields in expected.items():
        assert row(p, ours[frame], contexts) == fields, f"frame {frame}"


def test_samples_decode_the_same_in_small_chunks() -> None:
    for path in SAMPLES[:8]:
        whole, skipped, _ = read(path)
        small, skipped_small, _ = read(path, 1 << 12)
        assert skipped == skipped_small
        for name in ("frame", "seq", "payload", "tsval"):
            assert np.array_equal(getattr(whole, name), getattr(small, name))


# ---- hand-crafted frames (addresses always given: scapy would look them up, ARP included) ----

def write(tmp_path: Path, packets: list[Any], linktype: int | None = None) -> Path:
    from scapy.utils import wrpcap

    path = tmp_path / "crafted.pcap"
    wrpcap(str(path), packets, linktype=linktype)
    return path


def eth(**kw: Any) -> Any:
    from scapy.layers.l2 import Ether

    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", **kw)


def ip(**kw: Any) -> Any:
    from scapy.layers.inet import IP

    return IP(src="10.0.0.1", dst="10.0.0.2", **kw)


def ip6(**kw: Any) -> Any:
    from scapy.layers.inet6 import IPv6

    return IPv6(src="fd00::1", dst="fd00::2", **kw)


def tcp(payload: bytes = b"", **kw: Any) -> Any:
    from scapy.layers.inet import TCP
    from scapy.packet import Raw

    return TCP(sport=40000, dport=8080, seq=1000, ack=2000, window=500,
               options=[("NOP", None), ("NOP", None), ("Timestamp", (777, 1))], **kw) / Raw(payload)


def cut(frame: Any, caplen: int) -> Any:
    """`frame` as captured with a snaplen of `caplen`."""
    from scapy.packet import Raw

    short = Raw(bytes(frame)[:caplen])
    short.wirelen = len(frame)
    return short


def test_every_vlan_tag_is_part_of_the_carrier(tmp_path: Path) -> None:
    """QinQ: the pair of tags is the address space, not the outer tag alone; a single tag keeps
    its VLAN id as the carrier's number."""
    from scapy.layers.l2 import Dot1AD, Dot1Q

    frames = [eth() / Dot1AD(vlan=100) / Dot1Q(vlan=200) / ip() / tcp(b"abc"),
              eth() / Dot1AD(vlan=100) / Dot1Q(vlan=201) / ip() / tcp(),
              eth() / Dot1Q(vlan=7) / Dot1Q(vlan=8) / Dot1Q(vlan=9) / Dot1Q(vlan=10) / Dot1Q(vlan=11) / ip() / tcp(),
              eth() / Dot1Q(vlan=300) / ip() / tcp(), eth() / Dot1Q(vlan=0) / ip() / tcp()]
    contexts = Contexts()
    p, skipped, _ = read(write(tmp_path, frames), contexts=contexts)
    assert p.ctx.tolist() == [4096, 4097, 4098, 300, 0] and p.payload.tolist() == [3, 0, 0, 0, 0]
    assert [contexts.points[k].carrier.vlans for k in p.ctx.tolist()] == [
        (100, 200), (100, 201), (7, 8, 9, 10, 11), (300,), ()]
    assert contexts.points[4096].encapsulation == "eth/vlan:100/vlan:200" and not skipped


def test_linux_cooked_sll(tmp_path: Path) -> None:
    from scapy.layers.l2 import ARP, CookedLinux
    from scapy.packet import Raw

    frames = [CookedLinux(proto=0x0800) / ip() / tcp(b"hi", flags="S"),
              CookedLinux(proto=0x0806) / ARP(hwsrc="02:00:00:00:00:01", psrc="10.0.0.1", pdst="10.0.0.2"),
              Raw(b"\0" * 15)]
    p, skipped, _ = read(write(tmp_path, frames, 113))
    assert p.tsval.tolist() == [777] and p.payload.tolist() == [2] and p.flags.tolist() == [0x02]
    assert skipped == {"not IP": 1, "frame shorter than its Linux cooked (SLL) header": 1}


def test_linux_cooked_sll2(tmp_path: Path) -> None:
    from scapy.layers.inet import UDP
    from scapy.layers.l2 import CookedLinuxV2
    from scapy.packet import Raw

    frames = [CookedLinuxV2(proto=0x86DD) / ip6() / tcp(b"hello"), CookedLinuxV2(proto=0x86DD) / ip6() / UDP(),
              Raw(b"\x08\x00" + b"\0" * 17)]
    p, skipped, _ = read(write(tmp_path, frames, 276))
    assert p.ip_version.tolist() == [6] and p.payload.tolist() == [5] and p.sport.tolist() == [40000]
    assert (int(p.dst_hi[0]) << 64 | int(p.dst_lo[0])) == int(ipaddress.IPv6Address("fd00::2"))
    assert skipped == {"not TCP": 1, "frame shorter than its Linux cooked (SLL2) header": 1}


def test_raw_ipv6_extension_headers_and_fragments(tmp_path: Path) -> None:
    from scapy.layers.inet6 import IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
    from scapy.layers.ipsec import AH
    from scapy.packet import Raw

    frames = [ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt() / tcp(b"12345"),
              ip6() / IPv6ExtHdrFragment(offset=0, m=1) / tcp(b"first", flags="S"),
              ip6() / AH(nh=6, payloadlen=4, icv=b"\0" * 12) / tcp(b"ah"),
              ip6() / IPv6ExtHdrFragment(offset=100, nh=6) / Raw(b"later" * 10)]
    p, skipped, batches = read(write(tmp_path, frames, 229))
    assert p.frame.tolist() == [1, 2, 3] and p.payload.tolist() == [5, 5, 2]
    assert p.seq.tolist() == [1000] * 3 and p.tsval.tolist() == [777] * 3 and p.ip_id.tolist() == [-1] * 3
    assert skipped == {"IP fragment after the first": 1}
    data = batches[0].data  # where the flow engine will copy first payload bytes from
    assert bytes(data[p.payload_at[0]: p.payload_at[0] + 5]) == b"12345"
    assert bytes(data[p.payload_at[2]: p.payload_at[2] + 2]) == b"ah"


def test_ipv4_tso_total_length_zero_fragments_and_bad_header_length(tmp_path: Path) -> None:
    from scapy.packet import Raw

    frames = [eth() / ip(len=0, id=9) / tcp(b"x" * 3000), eth() / ip(frag=185, proto=6) / Raw(b"y" * 40),
              eth() / ip(flags="MF") / tcp(b"first"), eth() / ip(ihl=4) / tcp()]
    p, skipped, _ = read(write(tmp_path, frames))
    assert p.payload.tolist() == [3000, 5]  # TSO's total length 0: from the frame's length
    assert p.ip_id.tolist() == [9, 1] and p.src_lo[0] == 0xFFFF_0A00_0001 and p.src_hi[0] == 0
    assert skipped == {"IP fragment after the first": 1, "truncated or malformed IP header": 1}


def test_snaplen_truncated_frames_use_ip_lengths(tmp_path: Path) -> None:
    full = eth() / ip() / tcp(b"z" * 1000, flags="PA")
    frames = [cut(full, 60), cut(full, 14 + 20 + 32), cut(full, 14 + 20 + 10), cut(full, 14 + 10)]
    p, skipped, _ = read(write(tmp_path, frames, 1))
    assert p.payload.tolist() == [1000, 1000]  # from the IP header, not the bytes captured
    assert p.tsval.tolist() == [-1, 777]  # the option cut by the snaplen is not read
    assert skipped == {"truncated before the TCP header": 1, "truncated or malformed IP header": 1}


def test_window_scale_counts_on_syns_only_and_is_capped(tmp_path: Path) -> None:
    from scapy.layers.inet import TCP

    frames = [eth() / ip() / TCP(flags=f, options=[("WScale", w), ("EOL", None)]) for f, w in
              (("S", 7), ("SA", 20), ("A", 7))]
    p, skipped, _ = read(write(tmp_path, frames))
    assert p.wscale.tolist() == [7, 14, -1] and p.tsval.tolist() == [-1] * 3 and not skipped


def test_unknown_and_short_link_types(tmp_path: Path) -> None:
    from scapy.packet import Raw

    p, skipped, _ = read(write(tmp_path, [Raw(b"\x45" + b"\0" * 59)] * 3, 147))
    assert len(p) == 0 and skipped == {"link type 147 (unsupported)": 3}
    p, skipped, _ = read(write(tmp_path, [Raw(b"\0" * 13)] * 2, 1))
    assert len(p) == 0 and skipped == {"frame shorter than its Ethernet header": 2}


# ---- damaged frames ---------------------------------------------------------------------------

TEMPLATE = bytes.fromhex(  # Ethernet / IPv4 / TCP with NOP, NOP, timestamp; 4 payload bytes
    "02000000000202000000000108004500003800014000400600000a0000010a000002"
    "9c401f90000003e8000007d0801801f4000000000101080a000003090000000161626364")


def test_the_damage_template_decodes(tmp_path: Path) -> None:
    contexts = Contexts()
    p, skipped, _ = read(write(tmp_path, [cut(TEMPLATE, len(TEMPLATE))], 1), contexts=contexts)
    assert row(p, 0, contexts) | {"ip_id": int(p.ip_id[0])} == dict(
        sport=40000, dport=8080, seq=1000, ack=2000, flags=0x18, window=500, payload=4, tsval=777, wscale=-1,
        vlan=0, src=0xFFFF_0A00_0001, dst=0xFFFF_0A00_0002, ip_id=1)
    assert not skipped


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 1, 1, 101, 108, 113, 229, 276, 147, 9, 104, 239, 105, 127, 242,
                                           129, 258]),
                          st.lists(st.tuples(st.integers(0, len(TEMPLATE) - 1), st.integers(0, 255)), max_size=4),
                          st.integers(0, len(TEMPLATE)), st.integers(0, 1 << 20)), min_size=1, max_size=20))
def test_damaged_frames_are_segments_or_skipped_once(raw: list[tuple[int, list[tuple[int, int]], int, int]]) -> None:
    """A valid frame with bytes changed, cut short and under any link type: each frame becomes a
    segment or one skip count, and a payload offset lies a TCP header or more past its frame's start."""
    frames = []
    for _, changes, caplen, _ in raw:
        f = bytearray(TEMPLATE)
        for at, value in changes:
            f[at] = value
        frames.append(bytes(f[:caplen]))
    lengths = np.array([len(f) for f in frames], np.int64)
    pos = np.cumsum(lengths) - lengths
    n = len(frames)
    batch = FrameBatch(np.frombuffer(b"".join(frames) + bytes(PAD), np.uint8), pos, lengths.astype(np.uint32),
                       np.array([w for *_, w in raw], np.uint32), np.zeros(n),
                       np.array([lt for lt, *_ in raw], np.uint16), np.zeros(n, np.uint16),
                       np.arange(1, n + 1, dtype=np.int64))
    skipped: Counter[str] = Counter()
    p = decode(batch, skipped)
    assert len(p) + sum(skipped.values()) == n and all(v > 0 for v in skipped.values())
    assert np.all(p.payload_at >= pos[p.frame - 1] + 20)


def _encapsulated_frames() -> list[tuple[int, bytes]]:
    """The first frames of every encapsulation sample, with their link types: real layouts of
    every link type and tunnel the walker reads, to damage."""
    out = []
    for path in sorted((CAPTURES / "encapsulated").iterdir()):
        if ".pcap" not in path.name:
            continue
        reader = open_capture(str(path), 1 << 20)
        try:
            b = next(iter(reader))
        finally:
            reader.close()
        out += [(int(b.linktype[i]), bytes(b.data[b.pos[i]: b.pos[i] + b.caplen[i]])) for i in range(min(len(b), 6))]
    return out


ENCAPSULATED_FRAMES = _encapsulated_frames()


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(ENCAPSULATED_FRAMES) - 1),
                          st.lists(st.tuples(st.integers(0, 160), st.integers(0, 255)), max_size=4),
                          st.integers(0, 400), st.integers(0, 1 << 16)), min_size=1, max_size=20))
def test_damaged_encapsulated_frames_are_segments_or_skipped_once(
        raw: list[tuple[int, list[tuple[int, int]], int, int]]) -> None:
    """The same with every link type and tunnel: bytes of the headers changed, frames cut at any
    length; `describe`, which names a carrier from one frame, takes them all too."""
    from teardown._decode import describe  # type: ignore[import-not-found]

    frames, linktypes = [], []
    for k, changes, caplen, _ in raw:
        lt, template = ENCAPSULATED_FRAMES[k]
        f = bytearray(template)
        for at, value in changes:
            if at < len(f):
                f[at] = value
        frames.append(bytes(f[:caplen]))
        linktypes.append(lt)
        assert isinstance(describe(frames[-1], lt), list)
    lengths = np.array([len(f) for f in frames], np.int64)
    pos = np.cumsum(lengths) - lengths
    n = len(frames)
    batch = FrameBatch(np.frombuffer(b"".join(frames) + bytes(PAD), np.uint8), pos, lengths.astype(np.uint32),
                       np.array([w for *_, w in raw], np.uint32), np.zeros(n), np.array(linktypes, np.uint16),
                       np.zeros(n, np.uint16), np.arange(1, n + 1, dtype=np.int64))
    skipped: Counter[str] = Counter()
    p = decode(batch, skipped)
    assert len(p) + sum(skipped.values()) == n and all(v > 0 for v in skipped.values())
    assert np.all(p.payload_at >= pos[p.frame - 1] + 20)
    # the payload bytes said to be captured lie inside the frame (a header cut short has none)
    assert np.all((p.payload_captured == 0) | (p.payload_at + p.payload_captured <= pos[p.frame - 1] + lengths[p.frame - 1]))


def test_every_encapsulation_sample_is_decoded_by_the_fast_reader() -> None:
    """No frame of the samples that holds TCP is left to another reader."""
    for path in sorted((CAPTURES / "encapsulated").iterdir()):
        if ".pcap" not in path.name:
            continue
        p, skipped, _ = read(path)
        assert len(p), path.name
        assert not any(k.startswith(("link type 9 ", "link type 1 ")) for k in skipped), (path.name, skipped)
