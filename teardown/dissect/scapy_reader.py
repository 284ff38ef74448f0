"""Frame batches -> TCP packet columns, every frame dissected by scapy's layers (--reader scapy,
and the frames `auto` hands over).

The records come from our own walker, so frame numbers, timestamps, link types and damage are
exactly the fast reader's, and payload offsets point into the batch's bytes. scapy builds an
object per layer (a few thousand frames a second). Where scapy has no layer for a link type or
tunnel on the way to TCP (ARCNET, Cisco HDLC, IPoIB, NFLOG, PKTAP, GENEVE, GTP-U, ERSPAN, MPLS
multicast, ...), our C walker (`_decode.locate`) says where the innermost IP header starts and
scapy dissects IP and TCP from there; where scapy knows more than the walker (VXLAN on other
ports), scapy's reading stands. The lengths and skip reasons follow the fast decoder's rules, so
both give the same columns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

from .._decode import locate  # type: ignore[import-not-found]
from ..carriers import Carrier, Tunnel, carrier_of, tunnel
from ..decode import SYN, Packets, skip_reason
from ..errors import ReaderUnavailable
from ..read import FrameBatch
from . import (BAD_IP, BAD_TCP, LATER_FRAGMENT, LINK_HEADER_BYTES, NO_TCP_HEADER, NOT_IP, NOT_TCP, SCAPY_INSTALL,
               Contexts, address, packets_from)

I64 = npt.NDArray[np.int64]

ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x0800, 0x86DD
INT32_MAX = 2**31 - 1  # the largest payload Packets.payload holds
MALFORMED = "malformed link layer (scapy could not dissect it)"


def load_scapy() -> SimpleNamespace:
    """The scapy layers used, imported once (about 1 s); ReaderUnavailable without scapy."""
    try:
        import scapy.contrib.mpls  # noqa: F401  # binds EtherType 0x8847 (and GRE's) to MPLS
        import scapy.layers.dot11 as dot11
        import scapy.layers.inet as inet
        import scapy.layers.inet6 as inet6
        import scapy.layers.l2 as l2
        import scapy.layers.ppp  # noqa: F401  # binds PPPoE sessions and PPP to IP
        import scapy.layers.vxlan as vxlan
        import scapy.packet as packet
        from scapy.config import conf
    except ImportError:
        raise ReaderUnavailable(f"the scapy reader needs scapy; install it: {SCAPY_INSTALL}") from None
    link = dict(conf.l2types.num2layer)
    link.setdefault(14, inet6.IPv46)  # DLT_RAW as some BSDs number it (the fast decoder's alias too)
    icmp6_errors = (inet6.ICMPv6DestUnreach, inet6.ICMPv6PacketTooBig, inet6.ICMPv6TimeExceeded,
                    inet6.ICMPv6ParamProblem)
    return SimpleNamespace(
        link=link, TCP=inet.TCP, IP=inet.IP, IPv6=inet6.IPv6, Dot1Q=l2.Dot1Q, Dot1AD=l2.Dot1AD,
        VXLAN=vxlan.VXLAN, GRE=l2.GRE, RadioTap=dot11.RadioTap, Fragment6=inet6.IPv6ExtHdrFragment,
        # A TCP header quoted in an ICMP error is not a segment of the connection.
        stop_icmp=(inet.ICMP, *icmp6_errors), ends=(packet.Raw, packet.Padding, packet.NoPayload))


@dataclass(slots=True)
class Segment:
    """What a frame's layers say about its TCP segment (the fast decoder's fields)."""

    vlan: int  # outermost VLAN id scapy saw (0: none)
    carried: Tunnel | None  # the first tunnel scapy saw
    ip_version: int
    src: str
    dst: str
    tcp: Any
    payload: int
    ip_id: int
    tcp_at: int  # where the TCP header starts in the frame; -1 when it could not be placed
    thl: int


class ScapyDecoder:
    """Frames of our walker's batches -> Packets, dissected by scapy."""

    def __init__(self, contexts: Contexts) -> None:
        self.contexts = contexts
        self.layers = load_scapy()

    def knows(self, linktype: int) -> bool:
        return linktype in self.layers.link

    def report(self) -> tuple[Counter[str], list[str]]:
        return Counter(), []

    def decode(self, batch: FrameBatch, skipped: Counter[str],
               which: I64 | None = None) -> tuple[Packets, npt.NDArray[np.uint8]]:
        """TCP segments of the batch's frames (of `which` only, when given); what is not decoded
        is counted in `skipped` by reason. Payload offsets point into `batch.data`."""
        idx = np.arange(len(batch)) if which is None else which
        rows: dict[str, list[Any]] = {k: [] for k in (
            "frame", "ts", "ctx", "where", "ip_version", "src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport", "seq", "ack",
            "flags", "window", "payload", "ip_id", "tsval", "wscale", "payload_at", "payload_captured")}
        view = batch.data.data  # a memoryview: slices without copies
        for i in idx.tolist():
            start, cap, lt = int(batch.pos[i]), int(batch.caplen[i]), int(batch.linktype[i])
            wirelen, iface = int(batch.wirelen[i]), int(batch.iface[i])
            frame = view[start: start + cap].tobytes()
            seg = self.segment(frame, wirelen, lt)
            if isinstance(seg, str):
                skipped[seg] += 1
                continue
            # Where it was carried, as the fast decoder says it for the same bytes; scapy's own
            # reading where our walker cannot go.
            where, text = carrier_of(frame, lt, iface)
            if not text and (seg.vlan or seg.carried is not None):
                where = Carrier(iface, lt, (seg.vlan,) if seg.vlan else (), (seg.carried,) if seg.carried else ())
            ctx = self.contexts.ctx(where, text)
            t = seg.tcp
            flags = int(t.flags) & 0xFF
            # Options as scapy reads them; one cut by the snaplen comes back as bytes, not a tuple.
            ts = [v[0] for k, v in t.options if k == "Timestamp" and isinstance(v, tuple)]
            ws = [v for k, v in t.options if k == "WScale" and isinstance(v, int)]
            (sh, sl), (dh, dl) = address(seg.src), address(seg.dst)
            payload_at = -1 if seg.tcp_at < 0 else start + seg.tcp_at + seg.thl
            captured = 0 if seg.tcp_at < 0 else max(0, min(seg.payload, cap - seg.tcp_at - seg.thl))
            for key, value in (("frame", batch.frame[i]), ("ts", batch.ts[i]), ("ctx", ctx), ("where", 0),
                               ("ip_version", seg.ip_version), ("src_hi", sh), ("src_lo", sl), ("dst_hi", dh),
                               ("dst_lo", dl), ("sport", t.sport), ("dport", t.dport), ("seq", t.seq),
                               ("ack", t.ack), ("flags", flags), ("window", t.window), ("payload", seg.payload),
                               ("ip_id", seg.ip_id), ("tsval", ts[-1] if ts else -1),
                               # only a SYN's window scale counts; above 14 means 14 (RFC 7323 §2.2-2.3)
                               ("wscale", min(ws[-1], 14) if ws and flags & SYN else -1),
                               ("payload_at", payload_at), ("payload_captured", captured)):
                rows[key].append(value)
        return packets_from(rows), batch.data

    def segment(self, frame: bytes, wirelen: int, linktype: int) -> Segment | str:
        """The TCP segment of a frame, or why there is none (the fast decoder's reasons).

        scapy dissects the frame; where it has no layer for a link type or tunnel on the way,
        our walker (`_decode.locate`) finds the innermost IP header and scapy dissects from
        there. A frame our walker skips is counted for the walker's reason, as the fast reader
        counts it, unless scapy finds TCP in it."""
        located, reason = locate(frame, linktype, wirelen)
        cls = self.layers.link.get(linktype)
        seg: Segment | str = NOT_TCP
        if cls is not None and len(frame) >= LINK_HEADER_BYTES.get(linktype, 0):
            try:
                seg = self._walk(cls(frame), frame, wirelen)
            except Exception:  # scapy raises what its layers raise; the frame is counted, not fatal
                seg = MALFORMED
        if isinstance(seg, Segment) or located < 0:
            return seg if isinstance(seg, Segment) else skip_reason(reason, linktype)
        inner = frame[located:]
        try:
            found = self._walk((self.layers.IP if inner[0] >> 4 == 4 else self.layers.IPv6)(inner), inner,
                               wirelen - located)
        except Exception:
            return MALFORMED
        if isinstance(found, Segment) and found.tcp_at >= 0:
            found.tcp_at += located
        return found

    def _walk(self, top: Any, frame: bytes, wirelen: int) -> Segment | str:
        """The TCP segment in a dissected frame, or why there is none. Walks the layers outside
        in, keeping the outermost VLAN, the first tunnel and the innermost IP header before TCP,
        and where each header starts."""
        L = self.layers
        cap = len(frame)
        vlan = tags = 0
        net: Any = None
        net_at = 0
        carried: Tunnel | None = None
        later_fragment = False
        at = 0
        layer, above = top, None
        while type(layer) is not L.TCP:
            kind = type(layer)
            if isinstance(layer, L.ends):
                return _why_not(net, net_at, above, cap, later_fragment, L)
            if isinstance(layer, L.stop_icmp):
                return NOT_TCP
            if kind is L.Dot1Q or kind is L.Dot1AD:
                tags += 1
                if tags == 1:
                    vlan = int(layer.vlan)
            elif kind is L.IP or kind is L.IPv6:
                if layer.version != (4 if kind is L.IP else 6):
                    return NOT_IP
                if net is not None and carried is None:
                    carried = tunnel("IP-in-IP", net.src, net.dst, None)
                net, net_at = layer, at
                later_fragment = kind is L.IP and bool(layer.frag)
            elif kind is L.Fragment6:
                later_fragment = bool(layer.offset)
            elif kind is L.VXLAN and carried is None and net is not None:
                carried = tunnel("VXLAN", net.src, net.dst, int(layer.vni))
            elif kind is L.GRE and carried is None and net is not None:
                carried = tunnel("GRE", net.src, net.dst, int(layer.key) if layer.key_present else None)
            # Each layer's header is what it consumed; radiotap also skips fields it does not
            # decode, up to its length field.
            at += int(layer.len) if kind is L.RadioTap else len(layer.raw_packet_cache or b"")
            layer, above = layer.payload, layer
        if net is None:
            return NOT_IP
        if net_at + (20 if net.version == 4 else 40) > cap:
            return BAD_IP
        if net.version == 4:
            ihl = int(net.ihl or 0) * 4
            # TSO captures on the sending host carry total length 0: the frame's length is all there is.
            total = int(net.len) if net.len else wirelen - net_at
            if ihl < 20 or total < ihl:
                return BAD_IP
            ip_end, ip_id = net_at + total, int(net.id)
        else:
            ip_end, ip_id = (net_at + 40 + int(net.plen) if net.plen else wirelen), -1  # 0: jumbogram or TSO
        tcp = layer
        if at + 20 > cap:
            return NO_TCP_HEADER
        thl = int(tcp.dataofs or 0) * 4
        payload = ip_end - at - thl
        if thl < 20 or payload < 0:
            return BAD_TCP
        if payload > INT32_MAX:  # as the fast decoder says it (_decode.c): no int32 column holds it
            return BAD_IP
        head = tcp.raw_packet_cache or b""
        # A layer whose length we misjudged (802.11 with an FCS: scapy's layer takes the trailer
        # too): the TCP header is where its bytes are.
        placed = at if frame[at: at + len(head)] == head else frame.find(head) if len(head) >= 20 else -1
        return Segment(vlan, carried, int(net.version), str(net.src), str(net.dst), tcp, payload, ip_id, placed, thl)


def _why_not(net: Any, net_at: int, above: Any, cap: int, later_fragment: bool, L: SimpleNamespace) -> str:
    """The fast decoder's reason for a frame whose layers end before a TCP header."""
    if net is None:
        # The link layer announced IP but scapy could not dissect it: a cut or broken header.
        announced = getattr(above, "type", None) if above is not None else None
        if announced is None and above is not None:
            announced = getattr(above, "proto", None)
        return BAD_IP if announced in (ETHERTYPE_IPV4, ETHERTYPE_IPV6) else NOT_IP
    if net_at + (20 if net.version == 4 else 40) > cap:
        return BAD_IP
    if later_fragment:
        return LATER_FRAGMENT
    if net.version == 4:
        ihl = int(net.ihl or 0) * 4
        if ihl < 20 or (net.len and int(net.len) < ihl):
            return BAD_IP
        return NO_TCP_HEADER if int(net.proto) == 6 and above is net else NOT_TCP
    next_header = getattr(above, "nh", None)
    return NO_TCP_HEADER if next_header == 6 else NOT_TCP
