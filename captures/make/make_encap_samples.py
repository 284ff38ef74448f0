#!/usr/bin/env python3
"""Encapsulation samples for the scapy and pyshark readers: real-kernel samples re-framed.

    python captures/make/make_encap_samples.py [STEM...]      # needs scapy; no root

This kernel has no gre, ipip, sit, ip6tnl, geneve, mpls, 8021q or wireless drivers (and the
samples' namespaces have no radio), so these captures are crafted: every frame of a real-kernel
sample in captures/ (made by make_samples.sh) keeps its bytes from the IP header on (the whole
Ethernet frame where the encapsulation carries Ethernet), its timestamp and its order, and is
put in the encapsulation below with scapy (or struct, where scapy has no layer). The TCP
exchanges are the kernel's; the tunnel, label, link and radio headers are ours. Each STEM gets
captures/encapsulated/STEM.pcap (or .pcapng) and STEM.truth.json (the source samples' flows and
verdicts, which re-framing cannot change). They live apart from the real-kernel samples because
the fast reader decodes few or none of them. (The kernel does have vxlan and NFLOG: the real
vxlan_kernel and nflog samples come from make_kernel_encap_samples.sh.)

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

Link layers other than Ethernet:

  ppp           simultaneous_close (PPP protocol 0x0021) then ipv6_client_first (0x0057) on link
                type 9, HDLC-like framing (0xff 0x03); LCP Configure-Request/Ack before and LCP
                Echo-Request/Reply frames (protocol 0xc021) among them, to be skipped
  cisco_hdlc    reuse_in_time_wait (two incarnations) on link type 104: address 0x0f, control 0,
                EtherType 0x0800; SLARP keepalives (0x8035, address 0x8f) from both ends
  wlan          server_first_close as 802.11 data frames with LLC/SNAP, no radiotap (link type
                105), with beacons, an ACK, a null-data frame and WPA2 (CCMP) protected data of
                another BSS in between: only the plain data frames carry the connection
  radiotap_mixed  half_close as radiotap + 802.11 QoS data (link type 127) with beacons, a probe
                response, ACKs, an RTS, a null-data frame and protected frames interleaved; one
                data frame carries the radiotap FCS flag and its 4-byte FCS
  ipoib         lost_final_ack on link type 242 (IP over InfiniBand): 20 zero bytes and the 20-byte
                destination hardware address where a GRH would be, then the RFC 4391 header
                (protocol 0x0800, 2 reserved bytes), as tcpdump and Wireshark read link type 242
  arcnet        linger_abort on link type 129 (Linux ARCNET: source, destination, 2-byte offset,
                RFC 1201 protocol ID 0xD4 = IPv4, split flag, 2-byte sequence)
  openbsd_loop  client_first_close (AF_INET 2) then ipv6_client_first (AF_INET6 24) on link type
                108: a 4-byte address family in network byte order
  pktap         tw_assassination's Ethernet frames behind Apple PKTAP v1 headers (link type 258,
                108 bytes, little-endian, pth_type_next 1 = packet, pth_dlt 1 = Ethernet)
  mixed_links   pcapng with 3 interfaces: client_first_close on Ethernet, ipv6_client_first on
                Linux SLL2 (276), linger_abort on PPP (9); started 0.15 ms apart, interleaved
  unknown_link  pcapng with 2 interfaces: linger_abort on Ethernet and, on link type 147
                (USER0), client_first_close's IPv4 packets behind a private 8-byte header: a
                reader must skip that interface, not guess (guessing would show a 2nd connection)

Tunnels, labels, VLANs (Ethernet, outer addresses 198.19.0.1/198.19.0.2 or fd19::1/fd19::2):

  mpls_multicast  ipv6_client_first under a 3-label stack with the multicast EtherType 0x8848
  ipip          lost_final_ack_client_side in IPv4-in-IPv4 (protocol 4)
  sit           ipv6_client_first in IPv6-in-IPv4 (protocol 41, 6in4)
  ip6tnl        server_first_close in IPv4-in-IPv6 (next header 4), then ipv6_client_first in
                IPv6-in-IPv6 behind the Tunnel Encapsulation Limit destination option Linux adds
                by default (next header 60, then 41)
  gre_keyseq    reuse_in_time_wait_rejected in GRE with key 9 and a sequence number (K=1, S=1),
                one sequence counter per tunnel direction
  erspan        client_first_close's Ethernet frames in ERSPAN type II (GRE 0x88BE with a
                sequence number, session 5), linger_abort's in ERSPAN type III (GRE 0x22EB,
                session 6, no optional subheader)
  geneve        lost_final_ack_after_capture's Ethernet frames in GENEVE VNI 300 (UDP 6081,
                protocol 0x6558); every other frame carries one 8-byte option
  gtpu          half_close's IPv4 packets in GTP-U G-PDUs (UDP 2152): uplink TEID 0x1001 with a
                PDU Session Container extension header, downlink TEID 0x2002 without; an echo
                request and response (to be skipped) before the connection
  vlan_mirrored  client_first_close seen twice by a SPAN port: tagged VLAN 100 and, 40-200 us
                later, VLAN 200 (a transparent bridge between the VLANs), identical IP packets:
                one connection, every frame of the copy a duplicate
  vlan_overlap  client_first_close in VLAN 100 and server_first_close (client port rewritten to
                collide) in VLAN 200, 0.2 ms later: same 4-tuple, overlapping, two connections
  unknown_encap  server_first_close plus GRE frames of an unknown protocol type (0x1234) between
                198.19.0.1 and 198.19.0.2: the connection, and those frames skipped
"""
from __future__ import annotations

import json
import random
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from scapy.contrib.mpls import MPLS
from scapy.layers.dot11 import Dot11, Dot11Beacon, Dot11Elt, Dot11ProbeResp, Dot11QoS, RadioTap
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
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
CLIENT_IP6 = "fd00::1"
VTEP6_A, VTEP6_B = "fd19::1", "fd19::2"


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
    if packet[0] >> 4 == 6:
        return bool(IPv6(packet).src == CLIENT_IP6)
    return bool(IP(packet).src == CLIENT_IP)


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


def usec_of(sec: int, usec: int) -> int:
    return sec * 1_000_000 + usec


def sec_usec(us: int) -> tuple[int, int]:
    return us // 1_000_000, us % 1_000_000


def ip_frames(stem: str) -> list[tuple[int, bytes, bytes, bool]]:
    """(time in us, IP packet, Ethernet frame, from the client) of every record of STEM."""
    out = []
    for sec, usec, frame in frames(stem):
        packet = ip_packet(frame)
        assert packet is not None, stem
        out.append((usec_of(sec, usec), packet, frame, from_client(packet)))
    return out


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
    out = [(*sec_usec(t), bytes(eth(side, 0x0800) / outer.ip(side, 47) / GRE(key_present=1, key=7, proto=0x0800)
                                / Raw(packet))) for t, packet, _, side in ip_frames("half_close")]
    return out, 1, ["half_close"]


def make_mpls() -> tuple[list[tuple[int, int, bytes]], int, list[str]]:
    out = []
    for t, packet, _, side in ip_frames("lost_final_ack_after_capture"):
        transport, vpn = (16001, 24001) if side else (16002, 24002)
        out.append((*sec_usec(t), bytes(eth(side, 0x8847) / MPLS(label=transport, s=0, ttl=63)
                                        / MPLS(label=vpn, s=1, ttl=63) / Raw(packet))))
    return out, 1, ["lost_final_ack_after_capture"]


def make_pppoe() -> tuple[list[tuple[int, int, bytes]], int, list[str]]:
    out = [(*sec_usec(t), bytes(eth(side, 0x8864) / PPPoE(version=1, type=1, code=0, sessionid=0x0011)
                                / PPP(proto=0x0021) / Raw(packet)))
           for t, packet, _, side in ip_frames("server_first_close")]
    return out, 1, ["server_first_close"]


def make_radiotap() -> tuple[list[tuple[int, int, bytes]], int, list[str]]:
    out = []
    for n, (t, packet, _, side) in enumerate(ip_frames("linger_abort")):
        if side:  # client -> AP -> server's MAC: to-DS
            wlan = Dot11(type=2, subtype=8, FCfield="to_DS", addr1=AP_MAC, addr2=CLIENT_MAC, addr3=SERVER_MAC, SC=n << 4)
        else:  # server's MAC -> AP -> client: from-DS
            wlan = Dot11(type=2, subtype=8, FCfield="from_DS", addr1=CLIENT_MAC, addr2=AP_MAC, addr3=SERVER_MAC,
                         SC=n << 4)
        radio = RadioTap(present="Flags+Rate+Channel+dBm_AntSignal", Flags=0, Rate=108, ChannelFrequency=5180,
                         ChannelFlags=0x0140, dBm_AntSignal=-41 if side else -55)
        out.append((*sec_usec(t), bytes(radio / wlan / Dot11QoS(TID=0) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3)
                                        / SNAP(OUI=0, code=0x0800) / Raw(packet))))
    return out, 127, ["linger_abort"]


# ---- more link layers, tunnels and capture quirks (see the docstring) -------------------------

@dataclass
class Sample:
    """What a make_* function returns: the records (pcap: (sec, usec, frame); pcapng: (interface,
    sec, usec, frame)), the link type (pcap) or the interfaces (pcapng: (link type, name)), the
    source samples in the order of their first SYN here, per-flow additions to their truth, and
    extra top-level truth keys."""

    records: list[Any]
    linktype: int
    sources: list[str]
    interfaces: list[tuple[int, str]] = field(default_factory=list)
    flow_extra: list[dict[str, object]] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)


def between(times: list[int], i: int, k: int = 1, n: int = 1) -> int:
    """The k-th of n instants evenly spread between record i and record i + 1."""
    return times[i] + (times[i + 1] - times[i]) * k // (n + 1)


def merged(records: list[tuple[int, bytes]], extras: list[tuple[int, bytes]]) -> list[tuple[int, int, bytes]]:
    """Records and extra frames by time (an extra frame after the records of the same instant)."""
    timed = sorted([(t, 0, i, d) for i, (t, d) in enumerate(records)]
                   + [(t, 1, i, d) for i, (t, d) in enumerate(extras)], key=lambda r: r[:3])
    return [(*sec_usec(t), d) for t, _, _, d in timed]


def noise(seed: str, n: int) -> bytes:
    """n reproducible pseudo-random bytes (ciphertext, unknown payloads)."""
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(n))


def write_pcapng(path: Path, interfaces: list[tuple[int, str]], records: list[tuple[int, int, int, bytes]]) -> None:
    """SHB, one IDB per interface (default if_tsresol: microseconds), one EPB per record."""

    def option(code: int, value: bytes) -> bytes:
        return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)

    def block(kind: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
                 + option(4, b"captures/make/make_encap_samples.py") + option(0, b""))]
    for linktype, name in interfaces:
        out.append(block(1, struct.pack("<HHI", linktype, 0, 262144) + option(2, name.encode()) + option(0, b"")))
    for interface, sec, usec, data in records:
        ts = usec_of(sec, usec)
        out.append(block(6, struct.pack("<IIIII", interface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data))
    path.write_bytes(b"".join(out))


# PPP (link type 9) -------------------------------------------------------------------------

def ppp_frame(protocol: int, payload: bytes) -> bytes:
    """HDLC-like framing (RFC 1662): address 0xff, control 0x03, then the PPP protocol."""
    return struct.pack("!BBH", 0xFF, 0x03, protocol) + payload


def lcp(code: int, ident: int, data: bytes) -> bytes:
    return ppp_frame(0xC021, struct.pack("!BBH", code, ident, 4 + len(data)) + data)


def make_ppp() -> Sample:
    first, second = ip_frames("simultaneous_close"), ip_frames("ipv6_client_first")
    records = [(t, ppp_frame(0x0057 if p[0] >> 4 == 6 else 0x0021, p)) for t, p, _, _ in first + second]
    times = [t for t, _ in records]
    magic_a, magic_b = 0x5EED0001, 0x5EED0002
    options_a = struct.pack("!BBHBBI", 1, 4, 1500, 5, 6, magic_a)  # MRU 1500, Magic-Number
    options_b = struct.pack("!BBHBBI", 1, 4, 1500, 5, 6, magic_b)
    t0, gap = times[0], len(first) - 1  # gap: the last frame of the first connection
    extras = [(t0 - 40_000, lcp(1, 1, options_a)), (t0 - 39_800, lcp(1, 1, options_b)),  # Configure-Request
              (t0 - 39_700, lcp(2, 1, options_b)), (t0 - 39_600, lcp(2, 1, options_a)),  # Configure-Ack
              # Echo-Request/Reply inside the first connection's 0.3 s pause before the FINs ...
              (between(times, 6, 1, 3), lcp(9, 2, struct.pack("!I", magic_a))),
              (between(times, 6, 2, 3), lcp(10, 2, struct.pack("!I", magic_b))),
              # ... and 10 s after it, between the two connections
              (times[gap] + 10_000_000, lcp(9, 3, struct.pack("!I", magic_a))),
              (times[gap] + 10_000_300, lcp(10, 3, struct.pack("!I", magic_b)))]
    assert times[gap] + 10_000_300 < times[gap + 1]
    return Sample(merged(records, extras), 9, ["simultaneous_close", "ipv6_client_first"],
                  extra={"frames_to_skip": {"PPP LCP (protocol 0xc021)": len(extras)}})


# Cisco HDLC (link type 104) ----------------------------------------------------------------

def slarp_keepalive(mine: int, yours: int, uptime_ms: int) -> bytes:
    """Address 0x8f (multicast), control 0, protocol 0x8035; 18 bytes: type 2 (keepalive), my
    sequence, your sequence, reliability 0xffff, uptime (as Linux hdlc_cisco sends them)."""
    return struct.pack("!BBH", 0x8F, 0x00, 0x8035) + struct.pack("!IIIHI", 2, mine, yours, 0xFFFF, uptime_ms)


def make_cisco_hdlc() -> Sample:
    src = ip_frames("reuse_in_time_wait")
    records = [(t, struct.pack("!BBH", 0x0F, 0x00, 0x0800) + p) for t, p, _, _ in src]
    times = [t for t, _ in records]
    # the largest pause (0.5 s between the two incarnations) gets a keepalive from each end
    pause = max(range(len(times) - 1), key=lambda i: times[i + 1] - times[i])
    extras = [(times[0] - 3_000, slarp_keepalive(41, 17, 4_100_000)),
              (times[0] - 2_800, slarp_keepalive(18, 41, 3_950_000)),
              (between(times, pause, 1, 3), slarp_keepalive(42, 18, 4_110_000)),
              (between(times, pause, 2, 3), slarp_keepalive(19, 42, 3_960_000)),
              (times[-1] + 9_000, slarp_keepalive(43, 19, 4_120_000))]
    return Sample(merged(records, extras), 104, ["reuse_in_time_wait"],
                  extra={"frames_to_skip": {"SLARP keepalive (0x8035)": len(extras)}})


# 802.11 without and with radiotap (link types 105, 127) -------------------------------------

OTHER_BSSID, OTHER_STA = "02:00:00:00:22:aa", "02:00:00:00:22:01"  # a WPA2 network on the same channel


def wlan_data(to_ds: bool, seq: int, qos: bool) -> Dot11:
    """A data frame of the client's open BSS: client -> AP -> server's MAC (to-DS), or back."""
    subtype = 8 if qos else 0
    if to_ds:
        return Dot11(type=2, subtype=subtype, FCfield=0x01, addr1=AP_MAC, addr2=CLIENT_MAC, addr3=SERVER_MAC,
                     SC=seq << 4)
    return Dot11(type=2, subtype=subtype, FCfield=0x02, addr1=CLIENT_MAC, addr2=AP_MAC, addr3=SERVER_MAC, SC=seq << 4)


def beacon(tsf_us: int, seq: int) -> bytes:
    return bytes(Dot11(type=0, subtype=8, addr1="ff:ff:ff:ff:ff:ff", addr2=AP_MAC, addr3=AP_MAC, SC=seq << 4)
                 / Dot11Beacon(timestamp=tsf_us, beacon_interval=100, cap="ESS+short-slot")
                 / Dot11Elt(ID=0, info=b"teardown-lab") / Dot11Elt(ID=1, info=b"\x8c\x12\x98\x24\xb0\x48\x60\x6c")
                 / Dot11Elt(ID=3, info=b"\x24"))


def ack(receiver: str) -> bytes:
    return bytes(Dot11(type=1, subtype=13, addr1=receiver))


def null_data(seq: int) -> bytes:
    """Null function (no data), to-DS with the power-management bit: the client going to doze."""
    return bytes(Dot11(type=2, subtype=4, FCfield=0x11, addr1=AP_MAC, addr2=CLIENT_MAC, addr3=AP_MAC, SC=seq << 4))


def protected(n: int, to_ds: bool) -> bytes:
    """A CCMP-protected data frame of the other BSS: CCMP header, ciphertext, MIC (no LLC/SNAP
    in clear, so nothing to decode)."""
    if to_ds:
        hdr = Dot11(type=2, subtype=8, FCfield=0x41, addr1=OTHER_BSSID, addr2=OTHER_STA, addr3=OTHER_BSSID,
                    SC=(300 + n) << 4)
    else:
        hdr = Dot11(type=2, subtype=8, FCfield=0x42, addr1=OTHER_STA, addr2=OTHER_BSSID, addr3=OTHER_BSSID,
                    SC=(700 + n) << 4)
    pn = 0x2A00 + n
    ccmp = struct.pack("<BBBB", pn & 0xFF, (pn >> 8) & 0xFF, 0, 0x20) + struct.pack("<I", 0)
    return bytes(hdr / Dot11QoS(TID=0)) + ccmp + noise(f"ccmp{n}", 64 + 8 * n) + noise(f"mic{n}", 8)


def make_wlan() -> Sample:
    src = ip_frames("server_first_close")
    seqs = {True: 1000, False: 2000}  # one sequence counter per transmitter (client, AP)
    records = []
    for t, p, _, side in src:
        seqs[side] += 1
        records.append((t, bytes(wlan_data(side, seqs[side], qos=False) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3)
                                 / SNAP(OUI=0, code=0x0800) / Raw(p))))
    times = [t for t, _ in records]
    extras = [(times[0] - 30_000, beacon(times[0] - 30_000, 3001)),
              (between(times, 3), ack(CLIENT_MAC)),  # the AP acknowledges the client's request
              (between(times, 7, 1, 3), beacon(between(times, 7, 1, 3), 3002)),  # in the 4 ms before the client's FIN
              (between(times, 7, 2, 3), protected(1, to_ds=True)),
              (between(times, 8), protected(2, to_ds=False)),
              (times[-1] + 2_000, null_data(seqs[True] + 1)),
              (times[-1] + 72_400, beacon(times[-1] + 72_400, 3003))]
    return Sample(merged(records, extras), 105, ["server_first_close"],
                  extra={"frames_to_skip": {"802.11 beacon": 3, "802.11 ACK": 1, "802.11 null data": 1,
                                            "802.11 protected data (CCMP)": 2}})


def radiotap(signal: int, fcs: bool = False) -> RadioTap:
    return RadioTap(present="Flags+Rate+Channel+dBm_AntSignal", Flags=0x10 if fcs else 0, Rate=108,
                    ChannelFrequency=5180, ChannelFlags=0x0140, dBm_AntSignal=signal)


def make_radiotap_mixed() -> Sample:
    src = ip_frames("half_close")
    seqs = {True: 500, False: 1500}
    fcs_at = 12  # the server's fourth chunk after the client's FIN: radiotap FCS flag + 4-byte FCS
    records = []
    for n, (t, p, _, side) in enumerate(src):
        seqs[side] += 1
        wlan = bytes(wlan_data(side, seqs[side], qos=True) / Dot11QoS(TID=0) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3)
                     / SNAP(OUI=0, code=0x0800) / Raw(p))
        fcs = n == fcs_at
        if fcs:
            wlan += struct.pack("<I", zlib.crc32(wlan))
        records.append((t, bytes(radiotap(-41 if side else -55, fcs)) + wlan))
    times = [t for t, _ in records]
    rt = bytes(radiotap(-48))
    probe = bytes(Dot11(type=0, subtype=5, addr1=OTHER_STA, addr2=AP_MAC, addr3=AP_MAC, SC=4001 << 4)
                  / Dot11ProbeResp(timestamp=times[1], beacon_interval=100, cap="ESS+short-slot")
                  / Dot11Elt(ID=0, info=b"teardown-lab") / Dot11Elt(ID=3, info=b"\x24"))
    rts = bytes(Dot11(type=1, subtype=11, ID=0x00F0, addr1=AP_MAC, addr2=CLIENT_MAC))
    extras = [(times[0] - 20_000, rt + beacon(times[0] - 20_000, 4000)),
              (between(times, 1), rt + probe),
              (between(times, 3, 1, 3), rt + ack(CLIENT_MAC)),  # the request, acknowledged by the AP
              (between(times, 6, 1, 3), rt + ack(AP_MAC)),  # the AP's first chunk, acknowledged by the client
              (between(times, 6, 2, 3), rt + rts),  # before the client's (TCP) ACK
              (between(times, 8), rt + beacon(between(times, 8), 4002)),
              (between(times, 10), rt + protected(1, to_ds=True)),
              (between(times, 14), rt + protected(2, to_ds=False)),
              (between(times, 16), rt + beacon(between(times, 16), 4003)),
              (between(times, 19), rt + null_data(seqs[True] + 1)),
              (times[-1] + 25_000, rt + beacon(times[-1] + 25_000, 4004))]
    return Sample(merged(records, extras), 127, ["half_close"],
                  extra={"frames_to_skip": {"802.11 beacon": 4, "802.11 probe response": 1, "802.11 ACK": 2,
                                            "802.11 RTS": 1, "802.11 null data": 1, "802.11 protected data (CCMP)": 2},
                         "fcs_frame": fcs_at + 1 + sum(1 for t, _ in extras if t < times[fcs_at])})


# IP over InfiniBand, ARCNET, OpenBSD loopback, PKTAP -------------------------------------------

# IPoIB hardware addresses (RFC 4391 §9.1.1: flags and 24-bit QPN, then the port GID)
IB_CLIENT = bytes.fromhex("00000048") + bytes.fromhex("fe800000000000000002c90300a1b2c1")
IB_SERVER = bytes.fromhex("00000049") + bytes.fromhex("fe800000000000000002c90300a1b2c2")


def make_ipoib() -> Sample:
    """Link type 242 as tcpdump (print-ipoib.c) and Wireshark (packet-ipoib.c) read it: 40 bytes
    where a valid GRH would be (here, as Linux hands them over, the first 20 zero and the next 20
    the destination hardware address), then the RFC 4391 §6 header: protocol type 0x0800 and 2
    reserved bytes."""
    src = ip_frames("lost_final_ack")
    return Sample([(*sec_usec(t), bytes(20) + (IB_SERVER if side else IB_CLIENT) + struct.pack("!HH", 0x0800, 0) + p)
                   for t, p, _, side in src], 242, ["lost_final_ack"])


def make_arcnet() -> Sample:
    """Linux ARCNET header (struct archdr): source and destination station, the 2-byte offset
    the driver fills in (short packet: 256 - length, 0; long: 0, 512 - length), then the RFC 1201
    soft header: protocol ID 0xD4 (IPv4), split flag 0, a 2-byte sequence per sender."""
    out, seqs = [], {True: 0x0100, False: 0x0200}
    for t, p, _, side in ip_frames("linger_abort"):
        seqs[side] += 1
        length = 4 + len(p)
        offset = bytes([256 - length, 0]) if length <= 253 else bytes([0, 512 - length])
        stations = bytes([0x11, 0x22] if side else [0x22, 0x11])
        hdr = stations + offset + struct.pack("!BBH", 0xD4, 0, seqs[side])
        out.append((*sec_usec(t), hdr + p))
    return Sample(out, 129, ["linger_abort"])


def make_openbsd_loop() -> Sample:
    out = []
    for stem in ("client_first_close", "ipv6_client_first"):
        for t, p, _, _ in ip_frames(stem):
            out.append((*sec_usec(t), struct.pack("!I", 24 if p[0] >> 4 == 6 else 2) + p))
    return Sample(out, 108, ["client_first_close", "ipv6_client_first"])


def pktap_header(outgoing: bool, pid: int, comm: bytes) -> bytes:
    """Apple's struct pktap_header (v1, 108 bytes, host byte order = little-endian)."""
    return struct.pack("<III24sIIIIi20sIHHi20s",
                       108,            # pth_length
                       1,              # pth_type_next: PTH_TYPE_PACKET
                       1,              # pth_dlt: DLT_EN10MB
                       b"en0",         # pth_ifname
                       2 if outgoing else 1,  # pth_flags: PTH_FLAG_DIR_OUT / PTH_FLAG_DIR_IN
                       2,              # pth_protocol_family: AF_INET
                       14, 0,          # pth_frame_pre_length (Ethernet header), pth_frame_post_length
                       pid, comm,      # pth_pid, pth_comm (17 bytes + padding)
                       0, 6, 0,        # pth_svc, pth_iftype (IFT_ETHER), pth_ifunit
                       pid, comm)      # pth_epid, pth_ecomm


def make_pktap() -> Sample:
    out = []
    for t, p, frame, side in ip_frames("tw_assassination"):
        rst_to_time_wait = not side and bool(IP(p)[TCP].flags & 0x04)
        pid, comm = (-1, b"") if rst_to_time_wait else (2345, b"python3")  # the crafted RSTs meet no socket
        out.append((*sec_usec(t), pktap_header(side, pid, comm) + frame))
    return Sample(out, 258, ["tw_assassination"])


def sll2(protocol: int, ifindex: int, packet_type: int, mac: bytes) -> bytes:
    """Linux cooked v2 header: protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address."""
    return struct.pack("!HHIHBB8s", protocol, 0, ifindex, 1, packet_type, 6, mac)


def make_mixed_links() -> Sample:
    first, second, third = ip_frames("client_first_close"), ip_frames("ipv6_client_first"), ip_frames("linger_abort")
    t0 = first[0][0]
    records = [(t, 0, frame) for t, _, frame, _ in first]
    for t, p, frame, side in second:  # SLL2 as `tcpdump -i any` on the client: outgoing 4, to us 0
        records.append((t0 + 150 + t - second[0][0], 1, sll2(0x86DD, 2, 4 if side else 0, frame[6:12]) + p))
    for t, p, _, _ in third:
        records.append((t0 + 300 + t - third[0][0], 2, ppp_frame(0x0021, p)))
    records.sort(key=lambda r: r[0])
    return Sample([(i, *sec_usec(t), d) for t, i, d in records], 0,
                  ["client_first_close", "ipv6_client_first", "linger_abort"],
                  interfaces=[(1, "eth0"), (276, "any"), (9, "ppp0")])


def make_unknown_link() -> Sample:
    first, hidden = ip_frames("linger_abort"), ip_frames("client_first_close")
    t0 = first[0][0]
    records = [(t, 0, frame) for t, _, frame, _ in first]
    for n, (t, p, _, _) in enumerate(hidden):
        records.append((t0 + 100 + t - hidden[0][0], 1, b"TDU0" + struct.pack("!I", n) + p))
    records.sort(key=lambda r: r[0])
    return Sample([(i, *sec_usec(t), d) for t, i, d in records], 0, ["linger_abort"],
                  interfaces=[(1, "eth0"), (147, "user0")],
                  extra={"frames_to_skip": {"link type 147 (USER0), interface 1": len(hidden)}})


# Tunnels and labels -----------------------------------------------------------------------------

def outer6(client_side: bool, nh: int, payload: bytes) -> bytes:
    src, dst = (VTEP6_A, VTEP6_B) if client_side else (VTEP6_B, VTEP6_A)
    return bytes(eth(client_side, 0x86DD) / IPv6(src=src, dst=dst, nh=nh, hlim=64) / Raw(payload))


def make_mpls_multicast() -> Sample:
    out = []
    for t, p, _, side in ip_frames("ipv6_client_first"):
        labels = (17001, 18001, 19001) if side else (17002, 18002, 19002)
        out.append((*sec_usec(t), bytes(eth(side, 0x8848) / MPLS(label=labels[0], s=0, ttl=63)
                                        / MPLS(label=labels[1], s=0, ttl=63) / MPLS(label=labels[2], s=1, ttl=63)
                                        / Raw(p))))
    return Sample(out, 1, ["ipv6_client_first"])


def make_ipip() -> Sample:
    outer = Outer()
    return Sample([(*sec_usec(t), bytes(eth(side, 0x0800) / outer.ip(side, 4) / Raw(p)))
                   for t, p, _, side in ip_frames("lost_final_ack_client_side")], 1, ["lost_final_ack_client_side"])


def make_sit() -> Sample:
    outer = Outer()
    return Sample([(*sec_usec(t), bytes(eth(side, 0x0800) / outer.ip(side, 41) / Raw(p)))
                   for t, p, _, side in ip_frames("ipv6_client_first")], 1, ["ipv6_client_first"])


# Linux ip6_tunnel's default Tunnel Encapsulation Limit option (limit 4) and a PadN, in a
# destination options header whose next header is the inner IPv6 (41).
ENCAP_LIMIT_DSTOPT = bytes([41, 0, 4, 1, 4, 1, 1, 0])


def make_ip6tnl() -> Sample:
    out = [(*sec_usec(t), outer6(side, 4, p)) for t, p, _, side in ip_frames("server_first_close")]
    out += [(*sec_usec(t), outer6(side, 60, ENCAP_LIMIT_DSTOPT + p))
            for t, p, _, side in ip_frames("ipv6_client_first")]
    return Sample(out, 1, ["server_first_close", "ipv6_client_first"])


def make_gre_keyseq() -> Sample:
    outer, seqs, out = Outer(), {True: 0, False: 0}, []
    for t, p, _, side in ip_frames("reuse_in_time_wait_rejected"):
        seqs[side] += 1
        gre = struct.pack("!HHII", 0x3000, 0x0800, 9, seqs[side])  # K and S set: key, then sequence number
        out.append((*sec_usec(t), bytes(eth(side, 0x0800) / outer.ip(side, 47) / Raw(gre + p))))
    return Sample(out, 1, ["reuse_in_time_wait_rejected"])


def make_erspan() -> Sample:
    """One-way, as mirroring is: the switch (198.19.0.1) sends copies of the frames of its source
    ports to the collector (198.19.0.2), one GRE sequence counter per session."""
    outer, out = Outer(), []
    for n, (t, _, frame, _) in enumerate(ip_frames("client_first_close")):  # type II, session 5
        gre = struct.pack("!HHI", 0x1000, 0x88BE, n)
        erspan = struct.pack("!II", (1 << 28) | (10 << 16) | 5, 3)  # ver 1, VLAN 10, COS 0, En 0, T 0; index 3
        out.append((*sec_usec(t), bytes(eth(True, 0x0800) / outer.ip(True, 47) / Raw(gre + erspan + frame))))
    for n, (t, _, frame, side) in enumerate(ip_frames("linger_abort")):  # type III, session 6
        gre = struct.pack("!HHI", 0x1000, 0x22EB, n)
        # after SGT 0: P 1, FT 0 (Ethernet), HW ID 1, D (0 ingress, 1 egress), Gra 0 (100 us), O 0
        word3 = (1 << 15) | (0 << 10) | (1 << 4) | ((0 if side else 1) << 3)
        erspan = struct.pack("!IIHH", (2 << 28) | (10 << 16) | 6, (t // 100) & 0xFFFFFFFF, 0, word3)
        out.append((*sec_usec(t), bytes(eth(True, 0x0800) / outer.ip(True, 47) / Raw(gre + erspan + frame))))
    return Sample(out, 1, ["client_first_close", "linger_abort"])


def make_geneve() -> Sample:
    outer, out = Outer(), []
    for n, (t, _, frame, side) in enumerate(ip_frames("lost_final_ack_after_capture")):
        option = struct.pack("!HBBI", 0xFFFF, 0x01, 1, 0x0000ABCD) if n % 2 else b""  # class, type, length 1 (4 bytes)
        geneve = struct.pack("!BBHI", len(option) // 4, 0, 0x6558, 300 << 8) + option
        sport = 49152 + zlib.crc32(frame[26:38]) % 16384
        out.append((*sec_usec(t), bytes(eth(side, 0x0800) / outer.ip(side, 17) / UDP(sport=sport, dport=6081)
                                        / Raw(geneve + frame))))
    return Sample(out, 1, ["lost_final_ack_after_capture"])


def gtp(message: int, teid: int, body: bytes, extension: bytes = b"", seq: int | None = None) -> bytes:
    """GTPv1-U: version 1, PT 1; the optional 4 bytes (sequence, N-PDU, next extension type) are
    there when E or S is set."""
    if not extension and seq is None:
        return struct.pack("!BBHI", 0x30, message, len(body), teid) + body
    flags = 0x30 | (0x04 if extension else 0) | (0x02 if seq is not None else 0)
    rest = struct.pack("!HBB", seq or 0, 0, 0x85 if extension else 0) + extension + body
    return struct.pack("!BBHI", flags, message, len(rest), teid) + rest


# PDU Session Container (TS 38.415): length 1 (4 bytes), UL PDU SESSION INFORMATION (type 1),
# QFI 9, no next extension.
PDU_SESSION_UL = bytes([1, 0x10, 9, 0])


def make_gtpu() -> Sample:
    """gNB 198.19.0.1 (the client's side) <-> UPF 198.19.0.2; a G-PDU carries the receiver's TEID."""
    outer, records = Outer(), []
    src = ip_frames("half_close")
    for t, p, _, side in src:
        body = gtp(0xFF, 0x1001, p, PDU_SESSION_UL) if side else gtp(0xFF, 0x2002, p)
        records.append((t, bytes(eth(side, 0x0800) / outer.ip(side, 17) / UDP(sport=2152, dport=2152) / Raw(body))))
    t0 = src[0][0]
    extras = [(t0 - 50_000, bytes(eth(False, 0x0800) / outer.ip(False, 17) / UDP(sport=2152, dport=2152)
                                  / Raw(gtp(1, 0, b"", seq=0x0101)))),  # echo request from the UPF
              (t0 - 49_900, bytes(eth(True, 0x0800) / outer.ip(True, 17) / UDP(sport=2152, dport=2152)
                                  / Raw(gtp(2, 0, b"\x0e\x00", seq=0x0101))))]  # echo response, Recovery IE
    return Sample(merged(records, extras), 1, ["half_close"],
                  extra={"frames_to_skip": {"GTP-U echo request/response": 2}})


# VLANs, SPAN copies, unknown encapsulations ----------------------------------------------------

def tagged(frame: bytes, vid: int) -> bytes:
    frame = _untagged(frame)
    return frame[:12] + struct.pack("!HH", 0x8100, vid) + frame[12:]


def make_vlan_mirrored() -> Sample:
    src = ip_frames("client_first_close")
    delays = [40 + (n * 67) % 161 for n in range(len(src))]  # 40..200 us, varied
    records = [(t, 0, tagged(frame, 100)) for t, _, frame, _ in src]
    records += [(t + d, 1, tagged(frame, 200)) for (t, _, frame, _), d in zip(src, delays)]
    records.sort(key=lambda r: r[:2])
    return Sample([(*sec_usec(t), d) for t, _, d in records], 1, ["client_first_close"],
                  flow_extra=[{"duplicates_seen": len(src), "vlans_seen": [100, 200]}],
                  extra={"duplicates_seen": len(src), "copy_delays_us": delays})


def make_vlan_overlap() -> Sample:
    first, second = ip_frames("client_first_close"), ip_frames("server_first_close")
    port = IP(first[0][1]).sport
    records = [(t, tagged(frame, 100)) for t, _, frame, _ in first]
    records += [(first[0][0] + 200 + t - second[0][0], tagged(frame[:14] + rewrite_client_port(p, port), 200))
                for t, p, frame, _ in second]
    records.sort(key=lambda r: r[0])
    return Sample([(*sec_usec(t), d) for t, d in records], 1, ["client_first_close", "server_first_close"],
                  flow_extra=[{"vlan": 100}, {"vlan": 200, "client_port": port}])


def make_unknown_encap() -> Sample:
    outer = Outer()
    src = ip_frames("server_first_close")
    records = [(t, frame) for t, _, frame, _ in src]
    times = [t for t, _ in records]

    def unknown(n: int, side: bool) -> bytes:
        gre = struct.pack("!HH", 0, 0x1234)
        return bytes(eth(side, 0x0800) / outer.ip(side, 47) / Raw(gre + noise(f"gre{n}", 40 + 4 * n)))

    extras = [(times[0] - 5_000, unknown(0, True)), (between(times, 2), unknown(1, False)),
              (between(times, 5), unknown(2, True)), (between(times, 7), unknown(3, False)),
              (times[-1] + 3_000, unknown(4, True))]
    return Sample(merged(records, extras), 1, ["server_first_close"],
                  extra={"frames_to_skip": {"GRE protocol type 0x1234": len(extras)}})



Made = tuple[list[tuple[int, int, bytes]], int, list[str]]
SAMPLES: dict[str, Callable[[], Made | Sample]] = {"vxlan": make_vxlan, "gre": make_gre, "mpls": make_mpls, "pppoe": make_pppoe, "radiotap": make_radiotap,
           "ppp": make_ppp, "cisco_hdlc": make_cisco_hdlc, "wlan": make_wlan, "radiotap_mixed": make_radiotap_mixed,
           "ipoib": make_ipoib, "arcnet": make_arcnet, "openbsd_loop": make_openbsd_loop, "pktap": make_pktap,
           "mixed_links": make_mixed_links, "unknown_link": make_unknown_link, "mpls_multicast": make_mpls_multicast,
           "ipip": make_ipip, "sit": make_sit, "ip6tnl": make_ip6tnl, "gre_keyseq": make_gre_keyseq,
           "erspan": make_erspan, "geneve": make_geneve, "gtpu": make_gtpu, "vlan_mirrored": make_vlan_mirrored,
           "vlan_overlap": make_vlan_overlap, "unknown_encap": make_unknown_encap}
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
    "ppp": "simultaneous_close's packets as PPP protocol 0x0021, then ipv6_client_first's as 0x0057, on link type 9 "
           "(PPP in HDLC-like framing: 0xff 0x03, then the 2-byte protocol); LCP frames (protocol 0xc021) to be "
           "skipped: Configure-Request/Ack before the first connection, Echo-Request/Reply inside its 0.3 s pause "
           "and 10 s after it",
    "cisco_hdlc": "on link type 104 (Cisco HDLC: address 0x0f, control 0x00, EtherType 0x0800), both incarnations; "
                  "SLARP keepalives (address 0x8f, protocol 0x8035, 18 bytes as Linux hdlc_cisco sends them) from "
                  "both ends before, in the 0.5 s pause between the incarnations and after, to be skipped",
    "wlan": "as 802.11 data frames without radiotap (link type 105, no FCS): to-DS from the client, from-DS towards "
            "it, LLC/SNAP, one sequence counter per transmitter; interleaved with frames that carry no TCP and must "
            "be skipped: 3 beacons of the client's BSS, an ACK control frame, a null-data frame (power management) "
            "and 2 CCMP-protected QoS data frames of another BSS (random bytes as ciphertext)",
    "radiotap_mixed": "as radiotap + 802.11 QoS data frames with LLC/SNAP (link type 127), interleaved with "
                      "radiotap frames that carry no TCP: 4 beacons, a probe response, 2 ACKs, an RTS, a null-data "
                      "frame and 2 CCMP-protected data frames of another BSS; the data frame named by fcs_frame "
                      "(the server's fourth chunk after the client's FIN) has the radiotap Flags FCS bit (0x10) and "
                      "ends with its 4-byte FCS (CRC-32 of the 802.11 frame)",
    "ipoib": "on link type 242 (IP over InfiniBand) as tcpdump and Wireshark read it: 40 bytes where a GRH would be "
             "(20 zero bytes, then the 20-byte destination hardware address: QPN and port GID), then the RFC 4391 "
             "section 6 header (2-byte protocol type 0x0800, 2 reserved bytes), then the IPv4 packet",
    "arcnet": "on link type 129 (Linux ARCNET: source station 0x11 (client) or 0x22, destination station, the 2-byte "
              "offset the driver fills in, then the RFC 1201 header: protocol ID 0xD4 = IPv4, split flag 0, a 2-byte "
              "sequence per sender)",
    "openbsd_loop": "on link type 108 (OpenBSD loopback: 4-byte address family in network byte order, AF_INET = 2 "
                    "for client_first_close's packets, AF_INET6 = 24 for ipv6_client_first's)",
    "pktap": "the Ethernet frames unchanged behind Apple PKTAP v1 headers (link type 258; 108 bytes, little-endian: "
             "pth_length 108, pth_type_next 1 = packet, pth_dlt 1 = Ethernet, pth_ifname en0, direction flags, "
             "AF_INET, pre-length 14, process python3 pid 2345, or pid -1 for the crafted RSTs)",
    "mixed_links": "in one pcapng with three interfaces of different link types: client_first_close's Ethernet frames "
                   "on interface 0 (Ethernet, eth0), ipv6_client_first's packets on interface 1 (Linux SLL2, 276: "
                   "packet type 4 outgoing / 0 to us, the sender's MAC) starting 0.15 ms after the first SYN, and "
                   "linger_abort's on interface 2 (PPP, 9, 0xff 0x03 0x0021) starting 0.3 ms after it: the records "
                   "interleave by timestamp (the later connections are shifted in time, their spacing kept)",
    "unknown_link": "in a pcapng with two interfaces: linger_abort's Ethernet frames on interface 0 (Ethernet) and, "
                    "on interface 1 (link type 147, USER0), client_first_close's IPv4 packets behind a private 8-byte "
                    "header ('TDU0', frame number), shifted to start 0.1 ms after linger_abort's SYN: link type 147 "
                    "has no defined meaning, so a reader must skip those frames (guessing would show a second "
                    "connection); one connection",
    "mpls_multicast": "under a three-label MPLS stack with the multicast EtherType 0x8848 (bottom-of-stack bit on the "
                      "third label only), inner IPv6; labels 17001/18001/19001 client->server, 17002/18002/19002 back",
    "ipip": "in IPv4-in-IPv4 (protocol 4) between 198.19.0.1 and 198.19.0.2 inside Ethernet",
    "sit": "in IPv6-in-IPv4 (6in4, protocol 41) between 198.19.0.1 and 198.19.0.2 inside Ethernet",
    "ip6tnl": "server_first_close's IPv4 packets in IPv4-in-IPv6 (next header 4) and ipv6_client_first's IPv6 packets "
              "in IPv6-in-IPv6 between fd19::1 and fd19::2 inside Ethernet; the IPv6-in-IPv6 packets carry the "
              "destination options header Linux ip6_tunnel adds by default (next header 60: Tunnel Encapsulation "
              "Limit 4 and a PadN, then next header 41)",
    "gre_keyseq": "in GRE with key 9 and sequence numbers (flags C=0 K=1 S=1), one sequence counter per tunnel "
                  "direction starting at 1, between 198.19.0.1 and 198.19.0.2, inner IPv4 without Ethernet",
    "erspan": "the Ethernet frames unchanged, mirrored by a switch (198.19.0.1) to a collector (198.19.0.2), one way: "
              "client_first_close's in ERSPAN type II (GRE protocol 0x88BE with S=1 and a sequence number, 8-byte "
              "header: version 1, VLAN 10, session 5, index 3), linger_abort's in ERSPAN type III (GRE 0x22EB with "
              "a sequence number, 12-byte header: version 2, VLAN 10, session 6, timestamp in 100 us units, P=1, "
              "FT=0 Ethernet, direction per frame, no optional subheader)",
    "geneve": "the Ethernet frames unchanged in GENEVE VNI 300 (UDP port 6081, protocol type 0x6558) between "
              "198.19.0.1 and 198.19.0.2; every other frame carries one option (class 0xFFFF, type 1, 4 bytes of "
              "data: option length 2 in the base header)",
    "gtpu": "in GTP-U G-PDUs (UDP 2152, version 1, PT 1, message type 0xFF) between a gNB (198.19.0.1, client side) "
            "and a UPF (198.19.0.2), inner IPv4 without Ethernet: uplink TEID 0x1001 with the E flag and a PDU Session "
            "Container extension header (type 0x85, length 1, UL PDU SESSION INFORMATION, QFI 9, next type 0), "
            "downlink TEID 0x2002 without extension headers; a GTP-U echo request (type 1) and response (type 2, "
            "Recovery IE) 50 ms before the connection, to be skipped",
    "vlan_mirrored": "each Ethernet frame twice, as a SPAN port mirroring VLANs 100 and 200 on both sides of a "
                     "transparent bridge sees it: tagged VLAN 100, then the identical frame (same IP id, seq, ack) "
                     "tagged VLAN 200 40-200 us later (copy_delays_us); records in time order, the copies "
                     "interleaving with the next frames: one connection, no retransmission, every frame of the copy "
                     "a duplicate (duplicates_seen)",
    "vlan_overlap": "client_first_close's Ethernet frames tagged VLAN 100, and server_first_close's tagged VLAN 200 "
                    "with the client port rewritten to client_first_close's (the addresses were already equal; "
                    "checksums not fixed), shifted to start 0.2 ms after the first SYN: two different connections on "
                    "the same 4-tuple overlapping in time, two rows",
    "unknown_encap": "the Ethernet frames unchanged, interleaved with 5 GRE frames between 198.19.0.1 and 198.19.0.2 "
                     "whose protocol type (0x1234) nothing defines, carrying random bytes: the connection, and those "
                     "frames skipped",
}


def truth(stem: str, sample: Sample) -> dict[str, object]:
    sources = sample.sources
    flows: list[dict[str, object]] = []
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
    for flow, extra in zip(flows, sample.flow_extra):
        flow.update(extra)
    suffix = "pcapng" if sample.interfaces else "pcap"
    return {
        "capture": f"encapsulated/{stem}.{suffix}",
        "how": (f"Crafted by captures/make/make_encap_samples.py from the real-kernel sample(s) "
                f"{', '.join(s + '.pcap' for s in sources)}: {HOW[stem]}. Frames keep their IP packets, "
                "timestamps and order; only the encapsulation is ours."),
        "kernel": kernel,
        "sources": sources,
        **({"interfaces": [{"linktype": lt, "name": name} for lt, name in sample.interfaces]}
           if sample.interfaces else {}),
        **sample.extra,
        "flows": flows,
        "kernel_observations": observations,
    }


def main(stems: list[str]) -> None:
    for stem in stems or list(SAMPLES):
        made = SAMPLES[stem]()
        sample = made if isinstance(made, Sample) else Sample(list(made[0]), made[1], made[2])
        OUT.mkdir(exist_ok=True)
        if sample.interfaces:
            write_pcapng(OUT / f"{stem}.pcapng", sample.interfaces, sample.records)
        else:
            write_pcap(OUT / f"{stem}.pcap", sample.linktype, sample.records)
        (OUT / f"{stem}.truth.json").write_text(json.dumps(truth(stem, sample), indent=2) + "\n")
        print(f"{stem}: {len(sample.records)} frames from {', '.join(sample.sources)}")


if __name__ == "__main__":
    main(sys.argv[1:])
