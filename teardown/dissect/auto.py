"""Frame batches -> TCP packet columns: the fast decoder first, then the frames it cannot decode
that are worth a closer look handed to scapy (or, for what scapy does not know either, tshark).

Worth a look: a link type the fast decoder does not read (802.11 radiotap, PPP, ...); an
EtherType of MPLS or a PPPoE session; an IP packet carrying GRE or IP-in-IP, or UDP to the
VXLAN port. They are found by reading a few header bytes of the skipped frames in bulk, so a
capture the fast decoder reads whole costs nothing more. The skip counts stay exact: the fast
decoder's reasons for the handed-over frames are taken back, and the other decoder counts its
own. Everything handed over is counted by kind for the summary, which says so.
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property

import numpy as np
import numpy.typing as npt

from ..decode import LINKTYPE_NAMES, Packets, decode
from ..errors import ReaderUnavailable
from ..read import FrameBatch
from . import SCAPY_INSTALL, TSHARK_INSTALL, Contexts, have_tshark, merge
from .scapy_reader import ScapyDecoder

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

# What the fast decoder reads (decode._SUPPORTED): Ethernet, raw IP (and its aliases), SLL,
# SLL2, BSD and OpenBSD loopback.
FAST_LINK_TYPES = (1, 101, 113, 276, 0, 108, 228, 229, 12, 14)
VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
ETHERTYPES = {0x8847: "MPLS", 0x8848: "MPLS", 0x8864: "PPPoE"}
IP_PROTOCOLS = {47: "GRE", 4: "IP-in-IP", 41: "IP-in-IP"}
VXLAN_PORT = 4789  # IANA; the port both scapy and tshark dissect as VXLAN
KINDS = ("", "MPLS", "PPPoE", "GRE", "IP-in-IP", "VXLAN")  # kind codes of `candidates`


def candidates(b: FrameBatch, idx: I64) -> tuple[I64, list[str]]:
    """Which of the frames `idx` (skipped by the fast decoder) may hold TCP in an encapsulation
    it does not decode, and what each is ("VXLAN", "link type 127 (802.11 radiotap)", ...).

    Reads the link and network headers as the fast decoder does (`_decode.c`), in bulk."""
    d, lt = b.data, b.linktype[idx].astype(np.int64)
    pos, cap = b.pos[idx], b.caplen[idx].astype(np.int64)
    kind = np.zeros(len(idx), np.int64)

    def u8(at: I64) -> I64:
        return d[np.clip(at, 0, len(d) - 1)].astype(np.int64)

    def u16(at: I64) -> I64:
        return u8(at) << 8 | u8(at + 1)

    unknown = ~np.isin(lt, FAST_LINK_TYPES)
    # Network layer offset and EtherType (0: the version nibble decides), per link type.
    net = np.full(len(idx), -1, np.int64)
    et = np.zeros(len(idx), np.int64)
    eth = (lt == 1) & (cap >= 14)
    off = np.full(len(idx), 12, np.int64)
    et = np.where(eth, u16(pos + 12), et)
    for _ in range(4):  # QinQ: as many tags as the fast decoder unwraps
        tagged = eth & np.isin(et, VLAN_TAGS) & (off + 6 <= cap)
        et = np.where(tagged, u16(pos + off + 4), et)
        off = np.where(tagged, off + 4, off)
    net = np.where(eth, off + 2, net)
    sll, sll2 = (lt == 113) & (cap >= 16), (lt == 276) & (cap >= 20)
    et = np.where(sll, u16(pos + 14), np.where(sll2, u16(pos), et))
    net = np.where(sll, 16, np.where(sll2, 20, net))
    net = np.where(np.isin(lt, (101, 228, 229, 12, 14)), 0, net)
    net = np.where(np.isin(lt, (0, 108)) & (cap >= 4), 4, net)
    for code, name in ETHERTYPES.items():
        kind = np.where((net >= 0) & (et == code), KINDS.index(name), kind)
    version = np.where((net >= 0) & (net < cap), u8(pos + net) >> 4, 0)
    v4 = (version == 4) & np.isin(et, (0, 0x0800)) & (net + 20 <= cap)
    v4 &= (u16(pos + net + 6) & 0x1FFF) == 0  # a later fragment carries no header to look at
    v6 = (version == 6) & np.isin(et, (0, 0x86DD)) & (net + 40 <= cap)
    proto = np.where(v4, u8(pos + net + 9), np.where(v6, u8(pos + net + 6), -1))
    l4 = np.where(v4, net + (u8(pos + net) & 0x0F) * 4, net + 40)
    for code, name in IP_PROTOCOLS.items():
        kind = np.where((v4 | v6) & (proto == code), KINDS.index(name), kind)
    udp = (v4 | v6) & (proto == 17) & (l4 + 4 <= cap)
    vxlan = udp & ((u16(pos + l4 + 2) == VXLAN_PORT) | (u16(pos + l4) == VXLAN_PORT))
    kind = np.where(vxlan, KINDS.index("VXLAN"), kind)
    chosen = unknown | (kind > 0)
    names = [f"link type {t} ({LINKTYPE_NAMES.get(t, 'unknown')})" if u else KINDS[k]
             for t, u, k in zip(lt[chosen].tolist(), unknown[chosen].tolist(), kind[chosen].tolist())]
    return idx[chosen], names


class AutoDecoder:
    """The fast decoder, and a hand-off of what it cannot decode (see the module comment)."""

    def __init__(self, contexts: Contexts) -> None:
        self.contexts = contexts
        self.handed_off: Counter[str] = Counter()  # "VXLAN to scapy" -> frames
        self.not_decoded: Counter[str] = Counter()  # frames nothing could be handed to, by kind

    @cached_property
    def scapy(self) -> ScapyDecoder | None:
        """Loaded at the first frame to hand over: importing scapy costs about a second."""
        try:
            return ScapyDecoder(self.contexts)
        except ReaderUnavailable:
            return None

    @cached_property
    def tshark(self) -> bool:
        return have_tshark()

    def decode(self, batch: FrameBatch, skipped: Counter[str]) -> tuple[Packets, U8]:
        local: Counter[str] = Counter()
        packets = decode(batch, local)
        if not local:
            return packets, batch.data
        undecoded = np.ones(len(batch), bool)
        undecoded[packets.frame - batch.frame[0]] = False  # a batch's frames are numbered in a run
        idx, kinds = candidates(batch, np.flatnonzero(undecoded))
        if not len(idx) or (self.scapy is None and not self.tshark):
            self.not_decoded.update(kinds)
            skipped.update(local)
            return packets, batch.data
        # Take back the fast decoder's counts for the frames handed over: the others count them.
        again: Counter[str] = Counter()
        decode(_subset(batch, idx), again)
        local.subtract(again)
        parts = [(packets, batch.data)]
        to_tshark = idx
        if self.scapy is not None:
            known = np.array([self.scapy.knows(int(t)) for t in batch.linktype[idx]], bool)
            parts.append(self.scapy.decode(batch, local, idx[known]))
            self.handed_off.update(f"{k} to scapy" for k, ok in zip(kinds, known.tolist()) if ok)
            to_tshark, kinds = idx[~known], [k for k, ok in zip(kinds, known.tolist()) if not ok]
        if len(to_tshark):
            if self.tshark:
                from .tshark_reader import decode_frames

                parts.append(decode_frames(batch, to_tshark, self.contexts, local))
                self.handed_off.update(f"{k} to tshark" for k in kinds)
            else:
                self.not_decoded.update(kinds)
                local.update(_recount(batch, to_tshark))  # skipped after all, for the fast decoder's reasons
        skipped.update(+local)
        return merge(parts)

    def report(self) -> tuple[Counter[str], list[str]]:
        return self.handed_off, self.warnings()

    def warnings(self) -> list[str]:
        """What could not be handed over, and how to fix that."""
        if not self.not_decoded:
            return []
        what = ", ".join(f"{k} {v:,}" for k, v in self.not_decoded.most_common())
        missing = [] if self.scapy is not None else [f"scapy ({SCAPY_INSTALL})"]
        missing += [] if self.tshark else [f"tshark ({TSHARK_INSTALL})"]
        return [f"{sum(self.not_decoded.values()):,} frames in encapsulations the fast reader does not decode were "
                f"skipped ({what}); install {' or '.join(missing)} to read them"]


def _subset(b: FrameBatch, idx: I64) -> FrameBatch:
    return FrameBatch(b.data, b.pos[idx], b.caplen[idx], b.wirelen[idx], b.ts[idx], b.linktype[idx], b.iface[idx],
                      b.frame[idx])


def _recount(b: FrameBatch, idx: I64) -> Counter[str]:
    """The fast decoder's skip reasons for some frames."""
    counts: Counter[str] = Counter()
    decode(_subset(b, idx), counts)
    return counts
