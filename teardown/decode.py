"""Frame batch -> TCP packet columns (one numpy array per field).

The headers are read by the C decoder in `_decode.c`, one pass over the frames into arrays
preallocated here (see README, "Why a C walker"); this module holds the columns, the skip
reasons and the link type names. Frames that are not TCP, or that we cannot reach TCP in, are
counted by reason and dropped. Lengths come from the IP header, not the captured length:
snaplen truncates captures and offloaded segments exceed the MTU (TEARDOWN-RULES §What is
tracked).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from ._decode import N_REASONS, decode as _decode  # type: ignore[import-not-found]
from .read import FrameBatch

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

# Link types (tcpdump.org/linktypes.html): the names are for skip reasons and summaries; how to
# reach the network layer in each is in _decode.c.
ETHERNET, RAW, SLL, SLL2, NULL, LOOP, IPV4, IPV6 = 1, 101, 113, 276, 0, 108, 228, 229
RAW_ALIASES = (12, 14)  # DLT_RAW as some BSDs number it in pcap files
LINKTYPE_NAMES = {ETHERNET: "Ethernet", RAW: "raw IP", SLL: "Linux cooked (SLL)", SLL2: "Linux cooked (SLL2)",
                  NULL: "BSD loopback", LOOP: "OpenBSD loopback", IPV4: "raw IPv4", IPV6: "raw IPv6",
                  12: "raw IP", 14: "raw IP", 105: "802.11", 127: "802.11 radiotap", 9: "PPP", 104: "Cisco HDLC",
                  239: "Linux NFLOG"}

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
    # Offset in the batch's `data` where the TCP payload starts: valid only while that batch
    # lives. Up to `payload` bytes follow it on the wire, fewer (or none) may have been captured.
    payload_at: I64
    payload_captured: npt.NDArray[np.int32]  # how many payload bytes the capture holds there

    def __len__(self) -> int:
        return len(self.frame)

    def take(self, idx: I64 | Mask | slice) -> Packets:
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
           "ip_id": np.int32, "tsval": np.int64, "wscale": np.int8, "payload_at": np.int64,
           "payload_captured": np.int32}
_FIELDS = tuple(f.name for f in fields(Packets))  # the C decoder's output order (enum out in _decode.c)

# Why frames were not decoded, in the order the C decoder counts them (enum reason in _decode.c):
# the network and transport layers, then frames shorter than their link header, then (last,
# counted together in C and named per link type here) link types we do not decode.
_IP_REASONS = ("not IP", "IP fragment after the first", "truncated or malformed IP header", "not TCP",
               "truncated before the TCP header", "malformed TCP header")
_SHORT = (ETHERNET, SLL, SLL2, NULL, LOOP)
_SHORT_REASONS = tuple(f"frame shorter than its {LINKTYPE_NAMES[lt]} header" for lt in _SHORT)
_UNKNOWN = len(_IP_REASONS) + len(_SHORT)
if N_REASONS != _UNKNOWN + 1:
    raise ImportError("teardown._decode is out of date with decode.py: rebuild it (pip install -e .)")
_SUPPORTED = np.array((ETHERNET, RAW, SLL, SLL2, NULL, LOOP, IPV4, IPV6, *RAW_ALIASES), np.uint16)


def decode(b: FrameBatch, skipped: Counter[str]) -> Packets:
    """TCP segments of a frame batch; what is not decoded is counted in `skipped` by reason."""
    n = len(b)
    out = [np.empty(n, _DTYPES[name]) for name in _FIELDS]
    counts = np.zeros(N_REASONS, np.int64)
    c = np.ascontiguousarray  # no copy when, as from the readers, the dtype is right already
    segments: int = _decode(b.data, c(b.pos, np.int64), c(b.caplen, np.uint32), c(b.wirelen, np.uint32),
                            c(b.linktype, np.uint16), c(b.frame, np.int64), c(b.ts, np.float64), tuple(out), counts)
    if counts.any():
        _count(b, counts, skipped)
    if segments < n // 2:  # mostly not TCP: do not let the short columns pin room for every frame
        return Packets(*(a[:segments].copy() for a in out))
    return Packets(*(a[:segments] for a in out))


def _count(b: FrameBatch, counts: I64, skipped: Counter[str]) -> None:
    """Adds the nonzero counts to `skipped`, in the order the numpy decoder this replaced first
    counted them (it matters only to ties in `most_common`): link layer reasons by link type, then
    the network and transport ones."""
    link = [(lt, reason, int(k)) for lt, reason, k in zip(_SHORT, _SHORT_REASONS, counts[len(_IP_REASONS):])]
    if counts[_UNKNOWN]:
        lts, per = np.unique(b.linktype[~np.isin(b.linktype, _SUPPORTED)], return_counts=True)
        link += [(lt, f"link type {lt} ({LINKTYPE_NAMES.get(lt, 'unsupported')})", k)
                 for lt, k in zip(lts.tolist(), per.tolist())]
    for _, reason, k in sorted(link):
        if k:
            skipped[reason] += k
    for reason, k in zip(_IP_REASONS, counts.tolist()):
        if k:
            skipped[reason] += k
