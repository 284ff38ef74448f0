"""Frame batch -> TCP packet columns (one numpy array per field).

The headers are read by the C decoder in `_decode.c`, one pass over the frames into arrays
preallocated here (see README, "Why a C walker"); this module holds the columns, the skip
reasons and the link type names. Frames that are not TCP, or that we cannot reach TCP in, are
counted by reason and dropped. Lengths come from the IP header, not the captured length:
snaplen truncates captures and offloaded segments exceed the MTU (docs/rules.md "Per-direction
state").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from ._decode import N_REASONS, decode as _decode  # type: ignore[import-not-found]
from .carriers import Contexts, carrier_of
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
                  239: "Linux NFLOG", 50: "PPP in HDLC framing", 242: "IP over InfiniBand",
                  129: "Linux ARCNET", 258: "Apple PKTAP"}

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


@dataclass(slots=True)
class Packets:
    """Decoded TCP segments: one array per field, all of the same length."""

    frame: I64  # 1-based frame number in the capture: the evidence users look up in Wireshark
    ts: npt.NDArray[np.float64]
    ctx: npt.NDArray[np.uint32]  # where it was carried: a number of carriers.Contexts (VLAN id if only that)
    where: npt.NDArray[np.uint64]  # the fast decoder's hash of the carrier (0: plain); 0 from other readers
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


_DTYPES = {"frame": np.int64, "ts": np.float64, "ctx": np.uint32, "where": np.uint64, "ip_version": np.uint8, "src_hi": np.uint64,
           "src_lo": np.uint64, "dst_hi": np.uint64, "dst_lo": np.uint64, "sport": np.uint16, "dport": np.uint16,
           "seq": np.uint32, "ack": np.uint32, "flags": np.uint8, "window": np.uint16, "payload": np.int32,
           "ip_id": np.int32, "tsval": np.int64, "wscale": np.int8, "payload_at": np.int64,
           "payload_captured": np.int32}
_FIELDS = tuple(f.name for f in fields(Packets))
_C_FIELDS = tuple(name for name in _FIELDS if name != "ctx")  # the C decoder's output order (enum out)

# Why frames were not decoded, in the order the C decoder counts them (enum reason in _decode.c):
# the network and transport layers, then frames shorter than their link header, then (last,
# counted together in C and named per link type here) link types we do not decode.
_IP_REASONS = ("not IP", "IP fragment after the first", "truncated or malformed IP header", "not TCP",
               "truncated before the TCP header", "malformed TCP header")
_SHORT = (ETHERNET, SLL, SLL2, NULL, LOOP)
_SHORT_REASONS = tuple(f"frame shorter than its {LINKTYPE_NAMES[lt]} header" for lt in _SHORT)
_UNKNOWN = len(_IP_REASONS) + len(_SHORT)
# ... and the reasons of the link types and carriers read since (enum reason, after UNKNOWN_LINKTYPE).
_CARRIER_REASONS = ("frame shorter than its link header", "802.11 management, control or null frame",
                    "802.11 protected frame (payload encrypted)", "link control frame (PPP LCP, SLARP, ...)",
                    "tunnel payload of an unknown kind", "GTP-U signalling (no user data)",
                    "more than 24 layers of encapsulation", "Apple PKTAP frame of a link type not read")
if N_REASONS != _UNKNOWN + 1 + len(_CARRIER_REASONS):
    raise ImportError("teardown._decode is out of date with decode.py: rebuild it (pip install -e .)")
SUPPORTED = (ETHERNET, RAW, SLL, SLL2, NULL, LOOP, IPV4, IPV6, *RAW_ALIASES, 9, 50, 104, 239, 105, 127, 242, 129,
             258)
_SUPPORTED = np.array(SUPPORTED, np.uint16)


def unknown_link(linktype: int) -> str:
    """The reason for a frame of a link type we do not read."""
    return f"link type {linktype} ({LINKTYPE_NAMES.get(linktype, 'unsupported')})"


def skip_reason(code: int, linktype: int) -> str:
    """The text of the C walker's skip reason `code` (enum reason) for a frame of `linktype`."""
    return unknown_link(linktype) if code == _UNKNOWN else (*_IP_REASONS, *_SHORT_REASONS, "", *_CARRIER_REASONS)[code]


def decode(b: FrameBatch, skipped: Counter[str], contexts: Contexts | None = None) -> Packets:
    """TCP segments of a frame batch; what is not decoded is counted in `skipped` by reason.
    Carriers are numbered in `contexts`, which must be the same for every batch of a run."""
    n = len(b)
    out = {name: np.empty(n, _DTYPES[name]) for name in _FIELDS}
    counts = np.zeros(N_REASONS, np.int64)
    c = np.ascontiguousarray  # no copy when, as from the readers, the dtype is right already
    segments: int = _decode(b.data, c(b.pos, np.int64), c(b.caplen, np.uint32), c(b.wirelen, np.uint32),
                            c(b.linktype, np.uint16), c(b.iface, np.uint16), c(b.frame, np.int64),
                            c(b.ts, np.float64), tuple(out[name] for name in _C_FIELDS), counts)
    if counts.any():
        _count(b, counts, skipped)
    # Mostly not TCP: do not let the short columns pin room for every frame.
    copy = segments < n // 2
    p = Packets(**{name: a[:segments].copy() if copy else a[:segments] for name, a in out.items()})
    p.ctx = number_carriers(p, b, Contexts() if contexts is None else contexts)
    return p


def number_carriers(p: Packets, b: FrameBatch, contexts: Contexts) -> npt.NDArray[np.uint32]:
    """`Packets.ctx` from the C decoder's carrier hashes: each distinct (hash, link type) of the
    batch is looked up once, and described from one of its frames the first time it is seen."""
    if not len(p):
        return np.zeros(0, np.uint32)
    lt = b.linktype
    one_link_type = int(lt.min()) == int(lt.max())
    if one_link_type and int(p.where.min()) == int(p.where.max()):  # one carrier: the usual capture
        return np.full(len(p), _ctx(int(p.where[0]) ^ int(lt[0]), p, b, 0, contexts), np.uint32)
    at = np.searchsorted(b.frame, p.frame)  # a batch's frames are in ascending order
    key = p.where ^ lt[at].astype(np.uint64)  # the hash's low bits are random: xor keeps keys apart
    unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    numbers = np.zeros(len(unique), np.uint32)
    for j in np.argsort(first).tolist():  # new carriers numbered in the order the batch shows them
        numbers[j] = _ctx(int(unique[j]), p, b, int(first[j]), contexts)
    return numbers[inverse]


def _ctx(key: int, p: Packets, b: FrameBatch, segment: int, contexts: Contexts) -> int:
    k: int | None = contexts.by_where.get(key)
    if k is None:
        i = int(np.searchsorted(b.frame, p.frame[segment]))
        frame = b.data[b.pos[i]: b.pos[i] + b.caplen[i]].tobytes()
        carrier, text = carrier_of(frame, int(b.linktype[i]), int(b.iface[i]))
        k = contexts.by_where[key] = contexts.ctx(carrier, text)
    return k


def _count(b: FrameBatch, counts: I64, skipped: Counter[str]) -> None:
    """Adds the nonzero counts to `skipped`, in the order the numpy decoder this replaced first
    counted them (it matters only to ties in `most_common`): link layer reasons by link type, then
    the network and transport ones."""
    link = [(lt, reason, int(k)) for lt, reason, k in zip(_SHORT, _SHORT_REASONS, counts[len(_IP_REASONS):])]
    for reason, k in zip(_CARRIER_REASONS, counts[_UNKNOWN + 1:].tolist()):
        if k:
            link.append((-1, reason, k))
    if counts[_UNKNOWN]:
        lts, per = np.unique(b.linktype[~np.isin(b.linktype, _SUPPORTED)], return_counts=True)
        link += [(lt, unknown_link(lt), k) for lt, k in zip(lts.tolist(), per.tolist())]
    for _, reason, k in sorted(link):
        if k:
            skipped[reason] += k
    for reason, k in zip(_IP_REASONS, counts.tolist()):
        if k:
            skipped[reason] += k
