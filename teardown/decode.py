"""Frame batch -> TCP packet columns (one numpy array per field), decoded in bulk.

Each header is read for all frames at once by fancy indexing; per-frame Python runs nowhere.
Frames that are not TCP, or that we cannot reach TCP in, are counted by reason and dropped.
Lengths come from the IP header, not the captured length: snaplen truncates captures and
offloaded segments exceed the MTU (TEARDOWN-RULES §What is tracked).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from .read import FrameBatch

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

# Link types (tcpdump.org/linktypes.html) and how to find the network layer in each.
ETHERNET, RAW, SLL, SLL2, NULL, LOOP, IPV4, IPV6 = 1, 101, 113, 276, 0, 108, 228, 229
RAW_ALIASES = (12, 14)  # DLT_RAW as some BSDs number it in pcap files
LINKTYPE_NAMES = {ETHERNET: "Ethernet", RAW: "raw IP", SLL: "Linux cooked (SLL)", SLL2: "Linux cooked (SLL2)",
                  NULL: "BSD loopback", LOOP: "OpenBSD loopback", IPV4: "raw IPv4", IPV6: "raw IPv6",
                  12: "raw IP", 14: "raw IP", 105: "802.11", 127: "802.11 radiotap", 9: "PPP", 104: "Cisco HDLC",
                  239: "Linux NFLOG"}
VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
IPV6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options: length in 8-byte units
IPV6_FRAGMENT, IPV6_AH, TCP = 44, 51, 6
IPV4_MAPPED = np.uint64(0xFFFF00000000)  # ::ffff:a.b.c.d, so IPv4 and IPv6 share one address space

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


@dataclass(slots=True)
class Packets:
    """Decoded TCP segments: one array per field, all of the same length."""

    frame: I64  # 1-based frame number in the capture: the evidence users look up in Wireshark
    ts: npt.NDArray[np.float64]
    ctx: npt.NDArray[np.uint32]  # where it was carried: the outermost VLAN id (0: untagged)
    ip_version: npt.NDArray[np.uint8]
    src_hi: npt.NDArray[np.uint64]
    src_lo: npt.NDArray[np.uint64]
    dst_hi: npt.NDArray[np.uint64]
    dst_lo: npt.NDArray[np.uint64]
    sport: npt.NDArray[np.uint16]
    dport: npt.NDArray[np.uint16]
    seq: npt.NDArray[np.uint32]
    ack: npt.NDArray[np.uint32]
    flags: npt.NDArray[np.uint8]
    window: npt.NDArray[np.uint16]
    payload: npt.NDArray[np.int32]
    ip_id: npt.NDArray[np.int32]  # IPv4 identification; -1 for IPv6
    tsval: npt.NDArray[np.int64]  # TCP timestamp option value; -1 when absent
    wscale: npt.NDArray[np.int8]  # window-scale option (SYNs only); -1 when absent

    def __len__(self) -> int:
        return len(self.frame)

    def take(self, idx: I64 | Mask) -> Packets:
        return Packets(*(getattr(self, f.name)[idx] for f in fields(self)))

    @staticmethod
    def concat(parts: list[Packets]) -> Packets:
        return Packets(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Packets)))

    @staticmethod
    def empty() -> Packets:
        return Packets(*(np.empty(0, _DTYPES[f.name]) for f in fields(Packets)))


_DTYPES = {"frame": np.int64, "ts": np.float64, "ctx": np.uint32, "ip_version": np.uint8, "src_hi": np.uint64,
           "src_lo": np.uint64, "dst_hi": np.uint64, "dst_lo": np.uint64, "sport": np.uint16, "dport": np.uint16,
           "seq": np.uint32, "ack": np.uint32, "flags": np.uint8, "window": np.uint16, "payload": np.int32,
           "ip_id": np.int32, "tsval": np.int64, "wscale": np.int8}


def _u8(d: npt.NDArray[np.uint8], at: I64) -> I64:
    return d[at].astype(np.int64)


def _be(d: npt.NDArray[np.uint8], at: I64, width: int) -> npt.NDArray[np.uint64]:
    """Big-endian unsigned integers of `width` bytes at each offset (one gather, one view)."""
    raw = d[at[:, None] + np.arange(width)]
    return raw.view(f">u{width}").ravel().astype(np.uint64)


@dataclass(slots=True)
class _Network:
    """Where the IP header starts in each frame, and what the link layer said about it."""

    at: I64
    ethertype: I64  # 0x0800 / 0x86DD, or 0 when the version nibble decides
    ctx: npt.NDArray[np.uint32]


def _link_layer(b: FrameBatch, skipped: Counter[str]) -> tuple[I64, _Network]:
    """Index of frames whose link layer we understand, and where their network layer starts."""
    d, pos, end = b.data, b.pos, b.pos + b.caplen.astype(np.int64)
    n = len(pos)
    at = np.full(n, -1, np.int64)
    ethertype = np.zeros(n, np.int64)
    ctx = np.zeros(n, np.uint32)
    lt = b.linktype
    eth = np.flatnonzero((lt == ETHERNET) & (b.caplen >= 14))
    if len(eth):
        off = pos[eth] + 12
        et = _be(d, off, 2).astype(np.int64)
        outer = np.zeros(len(eth), np.uint32)
        for depth in range(4):  # QinQ and deeper stacks: 4 tags is more than any real network uses
            tagged = np.isin(et, VLAN_TAGS) & (off + 6 <= end[eth])
            if not tagged.any():
                break
            vid = (_be(d, off[tagged] + 2, 2) & np.uint64(0x0FFF)).astype(np.uint32)
            if depth == 0:
                outer[tagged] = vid
            et[tagged] = _be(d, off[tagged] + 4, 2).astype(np.int64)
            off[tagged] += 4
        at[eth], ethertype[eth], ctx[eth] = off + 2, et, outer
    for linktype, header, proto_at in ((SLL, 16, 14), (SLL2, 20, 0)):
        sel = np.flatnonzero((lt == linktype) & (b.caplen >= header))
        at[sel] = pos[sel] + header
        ethertype[sel] = _be(d, pos[sel] + proto_at, 2).astype(np.int64)
    raw = np.flatnonzero(np.isin(lt, (RAW, IPV4, IPV6, *RAW_ALIASES)))
    at[raw] = pos[raw]
    loop = np.flatnonzero(np.isin(lt, (NULL, LOOP)) & (b.caplen >= 4))
    at[loop] = pos[loop] + 4  # the address family is redundant with the IP version nibble
    known = at >= 0
    for linktype in np.unique(lt[~known]).tolist():
        sel = (lt == linktype) & ~known
        if linktype in (ETHERNET, SLL, SLL2, NULL, LOOP):
            skipped[f"frame shorter than its {LINKTYPE_NAMES[linktype]} header"] += int(sel.sum())
        else:
            name = LINKTYPE_NAMES.get(linktype, "unsupported")
            skipped[f"link type {linktype} ({name})"] += int(sel.sum())
    keep = np.flatnonzero(known)
    return keep, _Network(at[keep], ethertype[keep], ctx[keep])


def decode(b: FrameBatch, skipped: Counter[str]) -> Packets:
    """TCP segments of a frame batch; what is not decoded is counted in `skipped` by reason."""
    d = b.data
    keep, net = _link_layer(b, skipped)
    at = net.at
    end = b.pos[keep] + b.caplen[keep].astype(np.int64)
    version = np.where(at < end, _u8(d, at) >> 4, 0)
    is4 = np.where(net.ethertype == 0, version == 4, (net.ethertype == ETH_IPV4) & (version == 4))
    is6 = np.where(net.ethertype == 0, version == 6, (net.ethertype == ETH_IPV6) & (version == 6))
    other = ~(is4 | is6)
    if other.any():
        skipped["not IP"] += int(other.sum())

    n = len(keep)
    proto = np.zeros(n, np.int64)
    l4 = np.zeros(n, np.int64)
    ip_payload_end = np.zeros(n, np.int64)  # offset just past the IP payload, from IP lengths
    src_hi = np.zeros(n, np.uint64)
    src_lo = np.zeros(n, np.uint64)
    dst_hi = np.zeros(n, np.uint64)
    dst_lo = np.zeros(n, np.uint64)
    ip_id = np.full(n, -1, np.int32)
    ok = np.zeros(n, bool)
    fragment = np.zeros(n, bool)  # a fragment after the first: no TCP header in it

    v4 = np.flatnonzero(is4 & (at + 20 <= end))
    if len(v4):
        a = at[v4]
        ihl = (_u8(d, a) & 0x0F) * 4
        total = _be(d, a + 2, 2).astype(np.int64)
        frag = _be(d, a + 6, 2).astype(np.int64)
        later_fragment = (frag & 0x1FFF) != 0
        fragment[v4] = later_fragment
        # TSO captures on the sending host carry total length 0: the frame's length is all we have.
        total = np.where(total == 0, b.wirelen[keep][v4].astype(np.int64) - (a - b.pos[keep][v4]), total)
        good = (ihl >= 20) & (total >= ihl) & ~later_fragment
        proto[v4] = np.where(good, _u8(d, a + 9), -1)
        l4[v4] = a + ihl
        ip_payload_end[v4] = a + total
        src_lo[v4] = IPV4_MAPPED | _be(d, a + 12, 4)
        dst_lo[v4] = IPV4_MAPPED | _be(d, a + 16, 4)
        ip_id[v4] = _be(d, a + 4, 2).astype(np.int32)
        ok[v4] = good
    v6 = np.flatnonzero(is6 & (at + 40 <= end))
    if len(v6):
        a = at[v6]
        plen = _be(d, a + 4, 2).astype(np.int64)
        nh = _u8(d, a + 6)
        src_hi[v6], src_lo[v6] = _be(d, a + 8, 8), _be(d, a + 16, 8)
        dst_hi[v6], dst_lo[v6] = _be(d, a + 24, 8), _be(d, a + 32, 8)
        off = a + 40
        good = np.ones(len(v6), bool)
        e = end[v6]
        for _ in range(8):  # extension header chain; 8 is more than any real packet carries
            ext = np.isin(nh, (*IPV6_EXTENSIONS, IPV6_FRAGMENT, IPV6_AH)) & good
            if not ext.any():
                break
            reach = off + 8 <= e
            good &= ~ext | reach
            ext &= reach
            length = np.where(nh == IPV6_AH, (_u8(d, off + 1) + 2) * 4, (_u8(d, off + 1) + 1) * 8)
            length = np.where(nh == IPV6_FRAGMENT, 8, length)
            later = ext & (nh == IPV6_FRAGMENT) & ((_be(d, off + 2, 2).astype(np.int64) & 0xFFF8) != 0)
            fragment[v6[later]] = True
            good &= ~later
            nh = np.where(ext, _u8(d, off), nh)
            off = np.where(ext, off + length, off)
        proto[v6] = np.where(good, nh, -1)
        l4[v6] = off
        ip_payload_end[v6] = np.where(plen > 0, a + 40 + plen, b.pos[keep][v6] + b.wirelen[keep][v6])
        ok[v6] = good
    skipped["IP fragment after the first"] += int(fragment.sum())
    skipped["truncated or malformed IP header"] += int(((is4 | is6) & ~ok & ~fragment).sum())
    not_tcp = ok & (proto != TCP)
    skipped["not TCP"] += int(not_tcp.sum())
    tcp = ok & (proto == TCP)
    no_header = tcp & (l4 + 20 > end)
    skipped["truncated before the TCP header"] += int(no_header.sum())
    sel = np.flatnonzero(tcp & ~no_header)

    t = l4[sel]
    thl = (_u8(d, t + 12) >> 4) * 4
    payload = ip_payload_end[sel] - t - thl
    bad = (thl < 20) | (payload < 0)
    if bad.any():
        skipped["malformed TCP header"] += int(bad.sum())
        sel, t, thl, payload = sel[~bad], t[~bad], thl[~bad], payload[~bad]
    flags = _u8(d, t + 13).astype(np.uint8)
    tsval, wscale = _options(d, t, thl, end[sel], flags)
    frames = keep[sel]
    return Packets(
        frame=b.frame[frames], ts=b.ts[frames], ctx=net.ctx[sel],
        ip_version=np.where(is4[sel], 4, 6).astype(np.uint8),
        src_hi=src_hi[sel], src_lo=src_lo[sel], dst_hi=dst_hi[sel], dst_lo=dst_lo[sel],
        sport=_be(d, t, 2).astype(np.uint16), dport=_be(d, t + 2, 2).astype(np.uint16),
        seq=_be(d, t + 4, 4).astype(np.uint32), ack=_be(d, t + 8, 4).astype(np.uint32),
        flags=flags, window=_be(d, t + 14, 2).astype(np.uint16), payload=payload.astype(np.int32),
        ip_id=ip_id[sel], tsval=tsval, wscale=wscale)


def _options(d: npt.NDArray[np.uint8], tcp: I64, thl: I64, end: I64,
             flags: npt.NDArray[np.uint8]) -> tuple[I64, npt.NDArray[np.int8]]:
    """TSval of the timestamp option (kind 8) and the window scale (kind 3), where present.

    Walks the option lists of all segments together, one option per step; segments whose
    options were cut by the snaplen keep what could be read.
    """
    n = len(tcp)
    tsval = np.full(n, -1, np.int64)
    wscale = np.full(n, -1, np.int8)
    live = np.flatnonzero(thl > 20)
    at = tcp[live] + 20
    stop = np.minimum(tcp[live] + thl[live], end[live])
    for _ in range(40):  # at most 40 option bytes, so at most 40 one-byte options
        go = at < stop
        live, at, stop = live[go], at[go], stop[go]
        if not len(live):
            break
        kind = _u8(d, at)
        length = np.where(kind == 1, 1, _u8(d, at + 1))
        ends = (kind == 0) | (length < 1) | ((kind != 1) & (length < 2)) | (at + length > stop)
        ts = (kind == 8) & (length == 10) & ~ends
        tsval[live[ts]] = _be(d, at[ts] + 2, 4).astype(np.int64)
        ws = (kind == 3) & (length == 3) & ~ends
        wscale[live[ws]] = np.minimum(_u8(d, at[ws] + 2), 14).astype(np.int8)  # RFC 7323 §2.3: capped at 14
        at = np.where(ends, stop, at + length)
    wscale[(flags & SYN) == 0] = -1  # only a SYN's window-scale option counts (RFC 7323 §2.2)
    return tsval, wscale
