#!/usr/bin/env python3
"""Encapsulation samples for the scapy and pyshark readers: real-kernel samples re-framed.

    python captures/make/make_encap_samples.py [STEM...]      # needs scapy; no root

This kernel has no vxlan, gre, mpls or wireless drivers (and the samples' namespaces have no
radio), so these captures are crafted: every frame of a real-kernel sample in captures/ (made
by make_samples.sh) keeps its bytes from the IP header on, its timestamp and its order, and is
put in the encapsulation below with scapy. The TCP exchanges are the kernel's; the tunnel,
label and radio headers are ours. Each STEM gets captures/encapsulated/STEM.pcap and
STEM.truth.json (the source sample's flows and verdicts, which re-framing cannot change). They
live apart from the real-kernel samples because the fast reader decodes none of them.

  vxlan     client_first_close in VNI 100 and vlan's connection (its tag removed, client port
            rewritten to collide) in VNI 200, 0.3 ms later, between VTEPs 198.19.0.1 and
            198.19.0.2: the same inner 4-tuple in two tunnels, which must stay two connections
  gre       half_close in GRE (key 7) between 198.19.0.1 and 198.19.0.2, inner IPv4 without
            Ethernet (as Linux `ip tunnel ... mode gre` sends it)
  mpls      lost_final_ack_after_capture under a two-label MPLS stack; labels differ per
            direction (16001/24001 client->server, 16002/24002 back), as LSPs do
  pppoe     server_first_close in PPPoE session 0x0011 (PPP protocol 0x0021)
  radiotap  linger_abort as 802.11 QoS data frames (to-DS from the client, from-DS towards it)
            with LLC/SNAP and a radiotap header (link type 127), as a monitor-mode capture of
            the client's wireless link would show them
"""
from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path

from scapy.contrib.mpls import MPLS
from scapy.layers.dot11 import Dot11, Dot11QoS, RadioTap
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import GRE, LLC, SNAP, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from scapy.utils import RawPcapReader

CAPTURES = Path(__file__).resolve().parent.parent
OUT = CAPTURES / "encapsulated"
VTEP_A, VTEP_B = "198.19.0.1", "198.19.0.2"  # client side, server side (198.19.0.0/16: benchmarking range)
MAC_A, MAC_B = "02:00:00:00:19:01", "02:00:00:00:19:02"
CLIENT_MAC, AP_MAC, SERVER_MAC = "02:00:00:00:11:01", "02:00:00:00:11:aa", "02:00:00:00:11:02"
CLIENT_IP = "198.18.0.1"


def frames(stem: str) -> list[tuple[int, int, bytes]]:
    """(seconds, microseconds, frame) of every record of captures/STEM.pcap."""
    out = []
    for data, meta in RawPcapReader(str(CAPTURES / f"{stem}.pcap")):
        out.append((meta.sec, meta.usec, bytes(data)))
    return out


def ip_packet(frame: bytes) -> bytes | None:
    """The IP packet of an Ethernet frame (an 802.1Q tag dropped), or None (ARP)."""
    eth = Ether(frame)
    while eth.payload is not None and type(eth.payload).__name__ == "Dot1Q":
        eth = Ether(src=eth.src, dst=eth.dst, type=eth.payload.type) / eth.payload.payload
    return bytes(eth.payload) if eth.type in (0x0800, 0x86DD) else None


def from_client(packet: bytes) -> bool:
    return IP(packet).src == CLIENT_IP


def write_pcap(path: Path, linktype: int, records: list[tuple[int, int, bytes]]) -> None:
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        for sec, usec, data in records:
            fh.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)


class Outer:
    """Outer IPv4 headers of one tunnel end: its own IP id counter, as a host keeps one."""

    def __init__(self) -> None:
        self.ids = {VTEP_A: 0x1000, VTEP_B: 0x5000}

    def ip(self, client_side: bool, proto: int) -> IP:
        src, dst = (VTEP_A, VTEP_B) if client_side else (VTEP_B, VTEP_A)
        self.ids[src] += 1
        return IP(src=src, dst=dst, id=self.ids[src], flags="DF", ttl=64, proto=proto)


def eth(client_side: bool, ethertype: int) -> Ether:
    return Ether(src=MAC_A if client_side else MAC_B, dst=MAC_B if client_side else MAC_A, type=ethertype)


def rewrite_client_port(packet: bytes, new_port: int) -> bytes:
    """The packet with the client's port replaced (TCP checksum left as captured: unchecked)."""
    ip = IP(packet)
    ihl = ip.ihl * 4
    tcp = bytearray(packet[ihl:])
    at = 0 if ip.src == CLIENT_IP else 2
    tcp[at: at + 2] = struct.pack("!H", new_port)
    return packet[:ihl] + bytes(tcp)


def make_vxlan() -> tuple[list[tuple[int, int, bytes]], int, list[str]]:
    outer = Outer()
    first, second = frames("client_first_close"), frames("vlan")
    port = IP(ip_packet(first[0][2])).payload.sport
    second_client_mac = next(Ether(f).src for _, _, f in second if (p := ip_packet(f)) and from_client(p))
    t0 = first[0][0] * 1_000_000 + first[0][1]
    s0 = second[0][0] * 1_000_000 + second[0][1]
    timed = [(sec * 1_000_000 + usec, 100, f) for sec, usec, f in first]
    # vlan's frames start 0.3 ms after client_first_close's (after its handshake), keeping their
    # own spacing: the two connections interleave.
    timed += [(t0 + 300 + (sec * 1_000_000 + usec - s0), 200, f) for sec, usec, f in second]
    timed.sort(key=lambda r: r[0])
    out = []
    for us, vni, frame in timed:
        packet = ip_packet(frame)
        if packet is None:  # ARP: carried as the Ethernet frame it was, untagged
            inner = _untagged(frame)
            client_side = Ether(frame).src == second_client_mac
        else:
            if vni == 200:
                packet = rewrite_client_port(packet, port)
            client_side = from_client(packet)
            inner = bytes(Ether(src=CLIENT_MAC if client_side else SERVER_MAC,
                                dst=SERVER_MAC if client_side else CLIENT_MAC, type=0x0800) / Raw(packet))
        # The source port is a hash of the inner flow, as VTEPs spread flows over ECMP paths.
        sport = 49152 + zlib.crc32(inner[26:38] if packet is not None else b"arp") % 16384
        outer_frame = (eth(client_side, 0x0800) / outer.ip(client_side, 17) / UDP(sport=sport, dport=4789)
                       / VXLAN(flags=0x08, vni=vni) / Raw(inner))
        out.append((us // 1_000_000, us % 1_000_000, bytes(outer_frame)))
    return out, 1, ["client_first_close", "vlan"]


def _untagged(frame: bytes) -> bytes:
    return frame[:12] + frame[16:] if frame[12:14] == b"\x81\x00" else frame


def make_gre() -> tuple[list[tuple[int, int, bytes]], int, list[str]]:
    outer = Outer()
    out = []
    for sec, usec, frame in frames("half_close"):
        packet = ip_packet(frame)
        assert packet is not None
        side = from_client(packet)
        out.append((sec, usec, bytes(eth(side, 0x0800) / outer.ip(side, 47)
                                     / GRE(key_present=1, key=7, proto=0x0800) / Raw(packet))))
    return out, 1, ["half_close"]


def make_mpls() -> tuple[list[tuple[int, int, bytes]], int, list[str]]:
    out = []
    for sec, usec, frame in frames("lost_final_ack_after_capture"):
        packet = ip_packet(frame)
        assert packet is not None
        side = from_client(packet)
        transport, vpn = (16001, 24001) if side else (16002, 24002)
        out.append((sec, usec, bytes(eth(side, 0x8847) / MPLS(label=transport, s=0, ttl=63)
                                     / MPLS(label=vpn, s=1, ttl=63) / Raw(packet))))
    return out, 1, ["lost_final_ack_after_capture"]


def make_pppoe() -> tuple[list[tuple[int, int, bytes]], int, list[str]]:
    out = []
    for sec, usec, frame in frames("server_first_close"):
        packet = ip_packet(frame)
        assert packet is not None
        side = from_client(packet)
        out.append((sec, usec, bytes(eth(side, 0x8864) / PPPoE(version=1, type=1, code=0, sessionid=0x0011)
                                     / PPP(proto=0x0021) / Raw(packet))))
    return out, 1, ["server_first_close"]


def make_radiotap() -> tuple[list[tuple[int, int, bytes]], int, list[str]]:
    out = []
    for n, (sec, usec, frame) in enumerate(frames("linger_abort")):
        packet = ip_packet(frame)
        assert packet is not None
        side = from_client(packet)
        if side:  # client -> AP -> server's MAC: to-DS
            wlan = Dot11(type=2, subtype=8, FCfield="to_DS", addr1=AP_MAC, addr2=CLIENT_MAC, addr3=SERVER_MAC, SC=n << 4)
        else:  # server's MAC -> AP -> client: from-DS
            wlan = Dot11(type=2, subtype=8, FCfield="from_DS", addr1=CLIENT_MAC, addr2=AP_MAC, addr3=SERVER_MAC,
                         SC=n << 4)
        radio = RadioTap(present="Flags+Rate+Channel+dBm_AntSignal", Flags=0, Rate=108, ChannelFrequency=5180,
                         ChannelFlags=0x0140, dBm_AntSignal=-41 if side else -55)
        out.append((sec, usec, bytes(radio / wlan / Dot11QoS(TID=0) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3)
                                     / SNAP(OUI=0, code=0x0800) / Raw(packet))))
    return out, 127, ["linger_abort"]


SAMPLES = {"vxlan": make_vxlan, "gre": make_gre, "mpls": make_mpls, "pppoe": make_pppoe, "radiotap": make_radiotap}
HOW = {
    "vxlan": "client_first_close's connection in VXLAN VNI 100 and vlan's (its 802.1Q tag removed, the client port "
             "rewritten to client_first_close's) in VNI 200, starting 0.3 ms later (interleaved), between VTEPs "
             "198.19.0.1 and 198.19.0.2 (UDP port 4789): the same inner 4-tuple in two tunnels, two connections",
    "gre": "in GRE (key 7) between 198.19.0.1 and 198.19.0.2, inner IPv4 without Ethernet",
    "mpls": "under a two-label MPLS stack; the labels differ per direction (16001/24001 client->server, "
            "16002/24002 back), as LSPs do",
    "pppoe": "in PPPoE session 0x0011 (PPP protocol 0x0021)",
    "radiotap": "as 802.11 QoS data frames (to-DS from the client, from-DS towards it) with LLC/SNAP and a "
                "radiotap header (link type 127), as a monitor-mode capture of the client's wireless link shows them",
}


def truth(stem: str, sources: list[str]) -> dict[str, object]:
    flows = []
    kernel = ""
    observations = {}
    for source in sources:
        t = json.loads((CAPTURES / f"{source}.truth.json").read_text())
        kernel = t["kernel"]
        observations[source] = t.get("kernel_observations", {})
        for flow in t["flows"]:
            flow = {k: v for k, v in flow.items() if k != "vlan"}  # vlan's tag is not carried over
            if flows and stem == "vxlan":
                flow["client_port"] = flows[0]["client_port"]
            flows.append(flow)
    return {
        "capture": f"encapsulated/{stem}.pcap",
        "how": (f"Crafted by captures/make/make_encap_samples.py from the real-kernel sample(s) "
                f"{', '.join(s + '.pcap' for s in sources)}: {HOW[stem]}. Frames keep their IP packets, "
                "timestamps and order; only the encapsulation is ours."),
        "kernel": kernel,
        "sources": sources,
        "flows": flows,
        "kernel_observations": observations,
    }


def main(stems: list[str]) -> None:
    for stem in stems or list(SAMPLES):
        records, linktype, sources = SAMPLES[stem]()
        OUT.mkdir(exist_ok=True)
        write_pcap(OUT / f"{stem}.pcap", linktype, records)
        (OUT / f"{stem}.truth.json").write_text(json.dumps(truth(stem, sources), indent=2) + "\n")
        print(f"{stem}.pcap: {len(records)} frames from {', '.join(sources)}")


if __name__ == "__main__":
    main(sys.argv[1:])
