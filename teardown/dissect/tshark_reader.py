"""A capture -> TCP packet columns, dissected by tshark (--reader tshark).

tshark reads the file itself (every format and encapsulation Wireshark knows) and prints only
the fields needed, one line per frame (`-T fields`), with its costly analyses off (sequence
analysis, reassembly). pyshark's `FileCapture` drives the same tshark but asks it for the whole
dissection tree of every packet and builds Python objects from it: that, not tshark, is what
makes it slow. So this reader runs tshark directly (found where pyshark's config says, else on
PATH) and parses its lines in bulk with pandas, a chunk of frames at a time.

Payload bytes come from `tcp.payload` into a buffer of the chunk's own, which the payload
offsets point into. Timestamps are rebuilt from tshark's decimal text with the fast reader's
arithmetic for the file's resolution, so both give the same floats.

Where each segment was carried is rebuilt without the frame's bytes: its protocol chain
(frame.protocols, e.g. eth:ethertype:vlan:ethertype:ip:gre:ip:tcp) is walked as the fast
decoder walks the bytes (`walk`, after `_decode.c` walk), and the VLAN ids, tunnel keys and
outer IP addresses are read from the fields' occurrences (`carrier`), giving the Carrier and
encapsulation text `carriers.carrier_of` gives. Frames without a segment are counted with the
fast decoder's reasons, told from the chain and, where it cannot tell (802.11 frame types, GTP
messages, fragments), from fields (`refine`).
"""

from __future__ import annotations

import csv
import ipaddress
import os
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..carriers import TUNNEL_KINDS, Carrier, Contexts, encapsulation, tunnel
from ..decode import _CARRIER_REASONS, SYN, Packets, unknown_link
from ..errors import CaptureError
from ..read import CaptureInfo, FrameBatch, FrameChecks, Interface, open_capture, open_file, times_filled
from ..read.pcap import PcapReader
from ..read.pcapng import interface_description, offset_set_aside, packet_blocks, section_header, tsresol_text
from . import (BAD_IP, BAD_TCP, LATER_FRAGMENT, LINK_HEADER_BYTES, NO_TCP_HEADER, NOT_IP, NOT_TCP, address,
               packets_from, short_link, tshark_path)

if TYPE_CHECKING:
    import pandas as pd

I64 = npt.NDArray[np.int64]

# (column, tshark field). Several occurrences of a field (outer and inner headers of a tunnel)
# come comma-separated, outermost first.
FIELDS = [
    ("frame", "frame.number"), ("time", "frame.time_epoch"), ("iface", "frame.interface_id"),
    ("cap_len", "frame.cap_len"), ("protocols", "frame.protocols"), ("vlan", "vlan.id"), ("qinq", "ieee8021ad.id"),
    ("ip_src", "ip.src"), ("ip_dst", "ip.dst"), ("ip_id", "ip.id"), ("ip_frag", "ip.frag_offset"), ("ip_mf", "ip.flags.mf"),
    ("ip_len", "ip.len"), ("ip_hdr_len", "ip.hdr_len"),
    ("ip6_src", "ipv6.src"), ("ip6_dst", "ipv6.dst"), ("ip6_frag", "ipv6.fraghdr.offset"),
    ("ip6_more", "ipv6.fraghdr.more"),
    # Where the segment was carried (carriers.py): tunnel keys, and why a frame of a link the
    # fast decoder reads in part (802.11, GTP-U) holds no segment.
    ("gre_flags", "gre.flags_and_version"), ("gre_key", "gre.key"), ("erspan", "erspan.spanid"),
    ("vxlan_flags", "vxlan.flags"), ("vni", "vxlan.vni"), ("geneve", "geneve.vni"), ("gtp", "gtp.message"),
    ("radiotap", "radiotap.length"), ("wlan_type", "wlan.fc.type"), ("wlan_subtype", "wlan.fc.subtype"),
    ("wlan_protected", "wlan.fc.protected"),
    ("sport", "tcp.srcport"), ("dport", "tcp.dstport"), ("seq", "tcp.seq_raw"), ("ack", "tcp.ack_raw"),
    ("flags", "tcp.flags"), ("window", "tcp.window_size_value"), ("payload", "tcp.len"), ("thl", "tcp.hdr_len"),
    ("tsval", "tcp.options.timestamp.tsval"), ("wscale", "tcp.options.wscale.shift"), ("bytes", "tcp.payload"),
]
# Analyses we do not need and that cost: sequence analysis, reassembly of IP fragments and TCP
# streams (each fragment and segment is wanted as it is on the wire), relative numbers.
PREFERENCES = ["tcp.analyze_sequence_numbers:FALSE", "tcp.desegment_tcp_streams:FALSE", "ip.defragment:FALSE",
               "ipv6.defragment:FALSE", "tcp.calculate_timestamps:FALSE", "tcp.relative_sequence_numbers:FALSE"]
CHUNK_FRAMES = 50_000  # lines parsed at a time: bigger chunks cost memory (pandas text columns), not time
IP_TOKENS = ("ip", "ipv6")
# In a first IP fragment tshark (reassembly off) dissects the TCP header but gives no payload
# length: for IPv4 it is rebuilt from the IP lengths, as the fast decoder takes it; an IPv6
# first fragment, whose extension headers tshark does not measure for us, is counted apart.
FIRST_FRAGMENT = "first IPv6 fragment (tshark gives no TCP payload length in it)"
UNDECODED_LINK = "UNDECODED_LINK"  # walk(): tshark did not decode the link layer (reason per link type)
# walk(): reasons told apart frame by frame, from fields (see `refine`).
WLAN_FRAME = "WLAN_FRAME"  # an 802.11 frame without LLC/SNAP: short, not data, protected, or not IP
GTP_MESSAGE = "GTP_MESSAGE"  # a GTP-U message with no IP packet in it: signalling, or not IP
NO_IP_AFTER = "NO_IP_AFTER"  # an IP header with nothing, or no TCP, after it: a later fragment?
# The fast decoder's reasons for the link types and carriers it reads since (decode.py).
(SHORT_LINK, WLAN_NOT_DATA, WLAN_PROTECTED, LINK_CONTROL, TUNNEL_UNKNOWN, GTP_SIGNALLING,
 TOO_DEEP, PKTAP_UNKNOWN) = _CARRIER_REASONS
MAX_LAYERS = 24  # layers the fast decoder walks (and `describe` lists) at most (`_decode.c` MAX_LAYERS)
# The fewest bytes a frame of these link types has for the fast decoder to read its link header
# (`_decode.c` link_layer; Ethernet, SLL, SLL2 and loopback have reasons of their own).
SHORT_LINK_BYTES = {104: 4, 242: 44, 129: 5, 239: 4, 127: 8, 258: 12, 105: 2, 9: 1, 50: 1}
# The link type of the first token, for a file in a format only tshark reads (no link type of ours).
LINK_OF_TOKEN = {"eth": 1, "sll": 113, "raw": 101, "null": 0, "ppp": 9, "chdlc": 104, "nflog": 239, "wlan": 105,
                 "radiotap": 127, "ipoib": 242, "arcnet": 129, "pktap": 258}


def command(path: str, fields: list[tuple[str, str]] = FIELDS, preferences: list[str] = PREFERENCES) -> list[str]:
    argv = [tshark_path(), "-r", path, "-n", "-T", "fields", "-E", "header=n", "-E", "separator=/t",
            "-E", "occurrence=a", "-E", "aggregator=,", "-E", "quote=n"]
    for p in preferences:
        argv += ["-o", p]
    for _, name in fields:
        argv += ["-e", name]
    return argv


@dataclass(slots=True)
class Chunk:
    """Segments of a run of frames, and the bytes their payload offsets point into."""

    packets: Packets
    data: npt.NDArray[np.uint8]
    frames: int  # the last frame number read so far


# A layer of the fast decoder's walk as tshark shows it: its name in `_decode.describe`, where
# its id is ((column, occurrence) of the field), and for a tunnel the (column prefix, occurrence)
# of its outer IP header, whose addresses are its ends.
Layer = tuple[str, "tuple[str, int] | None", "tuple[str, int] | None"]


@dataclass(frozen=True, slots=True)
class Chain:
    """What a frame's protocol chain (frame.protocols) says about its TCP segment."""

    version: int  # of the IP header carrying TCP
    ip_occurrence: int  # which ip.src (or ipv6.src) occurrence that header is
    layers: tuple[Layer, ...] = ()  # after the link's, as `_decode.describe` lists them
    link_token: str = ""  # the first token: the link type when our reader knows none

    @property
    def plain(self) -> bool:
        """Carried in nothing but its link: the carrier is the interface's."""
        return not any(ident or ends for _, ident, ends in self.layers)


def walk(protocols: str) -> Chain | str:
    """The segment's place in the layers, walked as the fast decoder walks the frame's bytes
    (`_decode.c` walk), or the fast decoder's reason there is none (or a marker of `refine`)."""
    tokens = protocols.split(":")

    def at(j: int) -> str:
        return tokens[j] if j < len(tokens) else ""

    # The link header: where the walk starts.
    i = 0
    if at(i) == "pktap":  # Apple PKTAP: the link type it names follows
        i += 1
        while at(i) == "pcap_pktdata":
            i += 1
    link = at(i)
    if link == "radiotap":
        i += 1 + (at(i + 1) == "wlan_radio")
        link = at(i)
    if link in ("eth", "sll", "raw", "null"):
        i += 1
    elif link in ("ppp", "chdlc", "nflog", "arcnet", "ipoib"):
        if at(i + 1) not in IP_TOKENS:  # LCP, IPCP, SLARP, CDP: the link talking to itself
            return LINK_CONTROL if link in ("ppp", "chdlc") else NOT_IP
        i += 1
    elif link == "wlan":
        if at(i + 1) != "llc":
            return WLAN_FRAME
        i += 2
    elif link in ("user_dlt", "data"):
        return UNDECODED_LINK
    else:  # a link type the fast decoder does not read (frames `auto` hands over): from its network layer
        while i < len(tokens) and tokens[i] not in ("ethertype", "vlan", "ieee8021ad", "mpls", "pppoes", *IP_TOKENS):
            i += 1
        if i == len(tokens):
            return NOT_IP
    layers: list[Layer] = []
    seen: Counter[str] = Counter()  # occurrences of each field's column so far

    def push(name: str, column: str | None = None, ends: tuple[str, int] | None = None) -> None:
        ident = None
        if column is not None:
            ident = (column, seen[column])
            seen[column] += 1
        if len(layers) < MAX_LAYERS - 1:  # `describe` lists the link and 23 more
            layers.append((name, ident, ends))

    depth = 0
    after_ethertype = False
    while i < len(tokens):
        t = tokens[i]
        if t == "ethertype":
            after_ethertype = True
            i += 1
            continue
        llc_named = after_ethertype
        after_ethertype = False
        depth += 1
        if depth > MAX_LAYERS:
            return TOO_DEEP
        if t in ("vlan", "ieee8021ad"):
            push("vlan", "vlan" if t == "vlan" else "qinq")
        elif t == "mpls":  # the stack, to its bottom; what follows is told by its first nibble
            push("mpls")
            if at(i + 1) not in IP_TOKENS:
                return TUNNEL_UNKNOWN if at(i + 1) else BAD_IP
        elif t == "pppoes":
            push("pppoe")
            if at(i + 1) != "ppp" or at(i + 2) not in IP_TOKENS:
                return LINK_CONTROL
            i += 1
        elif t == "eth":  # Ethernet inside a tunnel
            push("eth")
        elif t == "llc":  # 802.3 length and LLC/SNAP (EtherType 0x8870, "jumbo LLC", is not IP)
            if llc_named:
                return NOT_IP
        elif t in IP_TOKENS:
            push("ipv4" if t == "ip" else "ipv6")
            here = (t.replace("ipv6", "ip6"), seen[t])
            seen[t] += 1
            j = i + 1
            while t == "ipv6" and (at(j).startswith("ipv6.") or at(j) == "ah"):  # extension headers
                j += 1
            nxt = at(j)
            if nxt == "tcp":
                return Chain(4 if t == "ip" else 6, here[1], tuple(layers), tokens[0])
            if nxt in IP_TOKENS:  # IP-in-IP
                push("ip", None, here)
            elif nxt == "gre":
                j += 1
                if at(j) == "erspan":  # the tunnel is the ERSPAN session (its GRE header names none)
                    seen["gre"] += 1
                    push("gre")
                    push("erspan", "erspan", here)
                    j += 1
                    if at(j) != "eth":
                        return BAD_IP
                elif at(j) not in ("ip", "ipv6", "eth", "mpls"):  # GRE version 1 (PPTP), other payloads
                    return TUNNEL_UNKNOWN
                else:
                    push("gre", "gre", here)  # its key: `carrier` reads the flags of this GRE header
                i = j
                continue
            elif nxt == "udp" and at(j + 1) in ("vxlan", "geneve", "gtp"):
                kind = at(j + 1)
                j += 2
                if kind == "vxlan":
                    push("vxlan", "vni", here)
                    if at(j) != "eth":
                        return BAD_IP
                elif kind == "geneve":
                    push("geneve", "geneve", here)
                    if at(j) not in ("ip", "ipv6", "eth"):
                        return TUNNEL_UNKNOWN
                else:
                    push("gtpu", None, here)  # TEIDs differ per direction: not identity
                    if at(j) not in IP_TOKENS:
                        return GTP_MESSAGE
                i = j
                continue
            elif nxt in ("", "_ws.malformed", "_ws.short"):  # nothing after it: tshark found it cut or broken
                return BAD_IP
            else:
                return NO_IP_AFTER  # ICMP quoting a TCP header, UDP, ...: not TCP (unless a later fragment)
            i = j
            continue
        else:
            return NOT_IP
        i += 1
    return NOT_IP


def chain(protocols: str) -> Chain | str:
    """`walk`, its frame-by-frame markers answered as most frames would be."""
    c = walk(protocols)
    return {WLAN_FRAME: NOT_IP, GTP_MESSAGE: GTP_SIGNALLING, NO_IP_AFTER: NOT_TCP}.get(c, c) if isinstance(c, str) else c


def refine(reason: str, part: pd.DataFrame, cap: I64) -> list[str]:
    """The fast decoder's reason for each frame of `part` (rows of one protocol chain, `cap` their
    captured lengths) for which `walk` gave `reason`."""
    n = len(part)
    if reason == WLAN_FRAME:  # _decode.c link_layer, 802.11: not data, null data, protected, short
        wlan = cap - first_occurrence(part["radiotap"]).replace("", "0").astype(np.int64).to_numpy()
        kind = np.array([number(x) if x else -1 for x in first_occurrence(part["wlan_type"]).tolist()], np.int64)
        sub = np.array([number(x) or 0 for x in first_occurrence(part["wlan_subtype"]).tolist()], np.int64)
        protected = first_occurrence(part["wlan_protected"]).isin(["1", "True"]).to_numpy()
        out = np.select([wlan < 2, (kind != 2) | ((sub & 4) != 0), protected, wlan < 24],
                        [SHORT_LINK, WLAN_NOT_DATA, WLAN_PROTECTED, SHORT_LINK], NOT_IP)
        return [str(x) for x in out]
    if reason == GTP_MESSAGE:  # a G-PDU (255) carries user data; echo, error indication, end marker do not
        message = last_occurrence(part["gtp"]).tolist()
        return [NOT_IP if m and int(m, 0) == 0xFF else GTP_SIGNALLING for m in message]
    if reason in (NO_IP_AFTER, BAD_IP):  # a fragment after the first holds no TCP header
        later = np.zeros(n, bool)
        for column in ("ip_frag", "ip6_frag"):
            values = part[column].tolist()
            later |= np.array([any(v and int(v) > 0 for v in x.split(",")) if x else False for x in values], bool)
        base = NOT_TCP if reason == NO_IP_AFTER else BAD_IP
        return [LATER_FRAGMENT if x else base for x in later.tolist()]
    return [reason] * n


def carrier(c: Chain, row: dict[str, list[str]], iface: int, link_type: int) -> tuple[Carrier, str]:
    """The Carrier and encapsulation text of one segment, as `carriers.carrier_of` gives them
    from the frame's bytes. `row` holds the frame's field occurrences by column."""
    described: list[tuple[str, int | None, object]] = [("link", link_type, None)]
    vlans, tunnels = [], []
    for name, ident, ends in c.layers:
        value = None
        if ident is not None:
            column, k = ident
            if column == "gre":  # the k-th GRE header: a key where its K flag is set (gre.key skips the others)
                keyed = [bool((number(f) or 0) & 0x2000) for f in row["gre_flags"]]
                value = number(occurrence(row["gre_key"], sum(keyed[:k]))) if k < len(keyed) and keyed[k] else None
            else:
                value = number(occurrence(row[column], k))
                if column == "vni":  # the VNI counts only with the I flag
                    value = value if (number(occurrence(row["vxlan_flags"], k)) or 0) & 0x0800 else None
        described.append((name, value, ends))
        if name == "vlan" and value:
            vlans.append(value)
        if ends is not None:
            prefix, k = ends
            a, b = (occurrence(row[f"{prefix}_{side}"], k) for side in ("src", "dst"))
            tunnels.append(tunnel(TUNNEL_KINDS[name], unmapped(a), unmapped(b), value))
    return Carrier(iface, link_type, tuple(vlans), tuple(tunnels)), encapsulation(described)


def occurrence(values: list[str], k: int) -> str:
    return values[k] if k < len(values) else ""


def number(text: str) -> int | None:
    """A field's value as tshark prints it, decimal or hex ('0x0000012c')."""
    return None if not text else int(text, 16) if text.startswith("0x") else int(text)


def unmapped(text: str) -> str:
    """An outer address as the fast decoder writes it: IPv4-mapped IPv6 as IPv4."""
    if ":" in text and "." in text:
        mapped = ipaddress.IPv6Address(text).ipv4_mapped
        return str(mapped) if mapped else text
    return text


@dataclass(slots=True)
class Clock:
    """How the fast reader turns a file's timestamps into float seconds, to do the same."""

    format: str  # "pcap", "pcapng", or "" (another format: tshark's nanoseconds as they are)
    resolution: float = 1e-6  # pcap
    interfaces: list[Interface] = field(default_factory=list)  # pcapng

    def seconds(self, sec: I64, ns: I64, iface: I64) -> npt.NDArray[np.float64]:
        if self.format == "pcap":
            units_per_s = int(round(1 / self.resolution))
            return sec.astype(np.float64) + (ns // (1_000_000_000 // units_per_s)).astype(np.float64) * self.resolution
        if self.format == "pcapng" and self.interfaces:
            units = np.array([i.ts_units_per_s for i in self.interfaces], np.int64)
            # tshark adds the offset the file gives, even one the fast reader sets aside: taken
            # back off (int64 arithmetic wraps as tshark's did), and the fast reader's added.
            written = np.array([i.ts_offset_s if i.unusable_tsoffset_s is None else i.unusable_tsoffset_s
                                for i in self.interfaces], np.int64)
            offset = np.array([i.ts_offset_s for i in self.interfaces], np.int64)
            known = iface < len(units)
            iface = np.where(known, iface, 0)
            per_s, off = units[iface], offset[iface]
            # Units of a power-of-ten resolution, exactly (coarser or finer than tshark's
            # nanoseconds); the nearest unit for binary ones (at most 2^30 per second: no overflow).
            coarser, finer = 1_000_000_000 % per_s == 0, per_s % 1_000_000_000 == 0
            frac = np.select([coarser, finer], [ns // np.maximum(1_000_000_000 // per_s, 1),
                                                ns * np.maximum(per_s // 1_000_000_000, 1)],
                             (ns * np.where(coarser | finer, 0, per_s) + 500_000_000) // 1_000_000_000)
            out: npt.NDArray[np.float64] = ((sec - written[iface]).astype(np.float64) + frac.astype(np.float64)
                                            / per_s.astype(np.uint64) + off.astype(np.float64))
            return out
        return sec.astype(np.float64) + ns.astype(np.float64) * 1e-9


def clock_of(path: str) -> tuple[Clock, CaptureInfo | None]:
    """The file's timestamp arithmetic, and what our own reader learnt of it (None when our
    reader cannot read it: a format only tshark knows)."""
    try:
        reader = open_capture(path, 8 << 20)
        if isinstance(reader, PcapReader):
            reader.close()
            return Clock("pcap", reader.resolution), reader.info
        for _ in reader:  # pcapng: resolutions are per interface, and interfaces may come late
            pass
    except CaptureError:
        return Clock(""), None
    return Clock("pcapng", interfaces=reader.info.interfaces), reader.info


def times_set_aside(interfaces: list[Interface]) -> list[str]:
    """The fast reader's warnings for what interface descriptions say that times are read
    without, as they stand for tshark: its offsets are taken back off (`Clock`), but a timestamp
    resolution it applied leaves times that cannot be turned back into the fast reader's."""
    out = []
    for k, iface in enumerate(interfaces):
        out += offset_set_aside(iface, k)
        if iface.unusable_tsresol is not None:
            out.append(f"{iface.label(k)}: tshark reads its times with its if_tsresol of "
                       f"{tsresol_text(iface.unusable_tsresol)}, which the fast reader sets aside (reading "
                       "microseconds): the times differ")
    return out


def check_readable(path: str) -> None:
    """The fast reader's errors for a file that is not there (tshark's own are less clear)."""
    open_file(path).close()


class TsharkReader:
    """One capture file dissected by tshark, as chunks of segments."""

    def __init__(self, path: str, contexts: Contexts, skipped: Counter[str], ifaces: list[int] | None = None) -> None:
        """`ifaces`: the interface each of the file's interfaces stands for (`decode_frames`)."""
        check_readable(path)
        self.path = path
        self.ifaces = ifaces
        self.contexts = contexts
        self.skipped = skipped
        self.clock, ours = clock_of(path)
        self.info = CaptureInfo(path=path, format=self.clock.format or "read by tshark",
                                compressed=ours.compressed if ours else False,
                                size_bytes=os.path.getsize(path), interfaces=ours.interfaces if ours else [])
        self.info.warnings += times_set_aside(self.info.interfaces)
        self.checks = FrameChecks(self.info)
        self.last_ts = float("nan")  # the time of the last frame read; none yet

    def __iter__(self) -> Iterator[Chunk]:
        with tempfile.TemporaryFile() as errors:
            proc = start_tshark(command(self.path), errors)
            try:
                assert proc.stdout is not None
                for table in read_lines(proc.stdout):
                    try:
                        chunk = self._chunk(table)
                    except ValueError as e:  # tshark took a damaged file for some other format
                        raise CaptureError(self.path, f"tshark read it, but not as a capture: {e}") from None
                    yield chunk
            finally:
                stop_tshark(proc)
            message = tshark_message(errors)
        if proc.returncode:
            if not self.info.frames:
                raise CaptureError(self.path, f"tshark: {message or f'exit status {proc.returncode}'}")
            self.info.warnings.append(f"tshark stopped early ({message.rstrip('.')}); analyzed the "
                                      f"{self.info.frames:,} frames before that")

    def _chunk(self, table: pd.DataFrame) -> Chunk:
        frame = table["frame"].to_numpy(np.int64)
        sec, ns = split_time(table["time"])
        iface = table["iface"].replace("", "0").to_numpy(np.int64) if len(table) else np.zeros(0, np.int64)
        ts = self.clock.seconds(sec, ns, iface)
        info = self.info
        if len(frame):  # times checked as the fast reader checks them (read.FrameChecks)
            ts = times_filled(ts, self.checks.impossible_times(ts, int(frame[0])), self.last_ts)
            self.checks.time_order(ts, int(frame[0]))
            self.last_ts = float(ts[-1])
            info.frames = int(frame[-1])
            info.first_ts = float(ts[0]) if info.first_ts is None else info.first_ts
            info.last_ts = float(np.nanmax(ts))
            self._count_link_types(iface)
        real = np.array(self.ifaces, np.int64)[np.minimum(iface, len(self.ifaces) - 1)] if self.ifaces else iface
        packets, data = segments(table, ts, frame, self.contexts, self.skipped, self._linktypes(iface), real)
        return Chunk(packets, data, info.frames)

    def _linktypes(self, iface: I64) -> I64:
        """Each frame's link type where our reader learnt the interfaces, else -1."""
        interfaces = self.info.interfaces
        if not interfaces:
            return np.full(len(iface), -1, np.int64)
        known = np.array([i.linktype for i in interfaces], np.int64)
        return known[np.minimum(iface, len(known) - 1)]

    def _count_link_types(self, iface: I64) -> None:
        interfaces = self.info.interfaces
        if not interfaces:
            return
        ids, counts = np.unique(iface, return_counts=True)
        for i, k in zip(ids.tolist(), counts.tolist()):
            self.info.linktype_frames[interfaces[min(i, len(interfaces) - 1)].linktype] += k


def read_lines(stream: IO[bytes]) -> Iterator[pd.DataFrame]:
    """tshark's lines as tables of text, CHUNK_FRAMES rows at a time."""
    import pandas as pd

    names = [c for c, _ in FIELDS]
    reader = pd.read_csv(stream, sep="\t", header=None, names=names, dtype=str, quoting=csv.QUOTE_NONE,
                         na_filter=False, chunksize=CHUNK_FRAMES, engine="c")
    try:
        yield from reader
    except pd.errors.EmptyDataError:  # no frame at all
        return


def split_time(text: pd.Series[str]) -> tuple[I64, I64]:
    """'1795947089.596635323' -> (1795947089, 596635323): whole seconds and nanoseconds."""
    if not len(text):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    parts = text.str.split(".", n=1, expand=True)
    sec = parts[0].to_numpy(np.int64)
    frac = parts[1].fillna("0").str.ljust(9, "0").str[:9] if parts.shape[1] > 1 else None
    ns = frac.to_numpy(np.int64) if frac is not None else np.zeros(len(sec), np.int64)
    return sec, ns


def segments(table: pd.DataFrame, ts: npt.NDArray[np.float64], frame: I64, contexts: Contexts,
             skipped: Counter[str], linktype: I64 | None = None,
             iface: I64 | None = None) -> tuple[Packets, npt.NDArray[np.uint8]]:
    """The TCP segments among a chunk's frames, in the fast decoder's columns; `linktype`
    (per frame, -1 where unknown) lets frames be counted by the fast decoder's link reasons and
    carriers be numbered as it numbers them, with `iface` (per frame; tshark's when None)."""
    import pandas as pd

    codes, chains = pd.factorize(table["protocols"])
    parsed = [walk(c) for c in chains]
    is_tcp = np.array([isinstance(c, Chain) for c in parsed] or [False], bool)[codes] if len(codes) else np.zeros(0, bool)
    lt = np.full(len(codes), -1, np.int64) if linktype is None else linktype
    if iface is None:
        iface = table["iface"].replace("", "0").to_numpy(np.int64) if len(table) else np.zeros(0, np.int64)
    cap = table["cap_len"].to_numpy(np.int64) if len(table) else np.zeros(0, np.int64)
    # A frame shorter than its link header is that, whatever tshark made of it.
    short = np.zeros(len(codes), bool)
    for link, size in LINK_HEADER_BYTES.items():
        short |= (lt == link) & (cap < size)
    for link in np.unique(lt[short]).tolist():
        skipped[short_link(link)] += int((short & (lt == link)).sum())
    short_other = np.zeros(len(codes), bool)
    for link, size in SHORT_LINK_BYTES.items():
        short_other |= (lt == link) & (cap < size)
    if short_other.any():
        skipped[SHORT_LINK] += int(short_other.sum())
    short |= short_other
    is_tcp &= ~short
    # Frames without a segment, counted by reason (fragments say so in their headers).
    for k in np.unique(codes[~is_tcp & ~short]).tolist():
        reason = parsed[k]
        assert isinstance(reason, str)
        rows = (codes == k) & ~short
        if reason == UNDECODED_LINK:
            for link in np.unique(lt[rows]).tolist():
                skipped[unknown_link(link) if link >= 0 else NOT_IP] += int((rows & (lt == link)).sum())
            continue
        skipped.update(refine(reason, table[rows], cap[rows]))
    sel = np.flatnonzero(is_tcp)
    t = table.iloc[sel]
    header = (t["sport"] != "") & (t["seq"] != "") & (t["flags"] != "") & (t["window"] != "") & (t["thl"] != "")
    if not header.all():
        skipped[NO_TCP_HEADER] += int((~header).sum())
    t = t.copy()
    no_length = (header & (t["payload"] == "")).to_numpy()
    first4 = no_length & last_occurrence(t["ip_mf"]).isin(["1", "True"]).to_numpy()
    first6 = no_length & ~first4 & last_occurrence(t["ip6_more"]).isin(["1", "True"]).to_numpy()
    if first4.any():  # the fragment's own payload, from its IP lengths (innermost IPv4 header)
        f4 = t[first4]
        ip_len, ihl = last_occurrence(f4["ip_len"]), last_occurrence(f4["ip_hdr_len"])
        thl = first_occurrence(f4["thl"])
        t.loc[first4, "payload"] = (ip_len.astype(np.int64) - ihl.astype(np.int64) - thl.astype(np.int64)).astype(str)
    bad = no_length & ~first4 & ~first6
    for why, mask in ((FIRST_FRAGMENT, first6), (BAD_TCP, bad)):
        if mask.any():
            skipped[why] += int(mask.sum())
    keep = header.to_numpy() & ~first6 & ~bad
    sel, t = sel[keep], t[keep]
    n = len(sel)
    cols: dict[str, Any] = {"frame": frame[sel], "ts": ts[sel], "where": np.zeros(n, np.uint64)}
    ver = np.zeros(n, np.int64)
    src, dst = np.empty(n, object), np.empty(n, object)
    ip_id = np.full(n, -1, np.int64)
    # Where each segment was carried: a key per segment that tells carriers apart, described once.
    where_key = np.empty(n, object)
    row_codes = codes[sel]
    seg_lt, seg_iface = lt[sel], iface[sel]
    for k in np.unique(row_codes).tolist():
        c = parsed[k]
        assert isinstance(c, Chain)
        rows = np.flatnonzero(row_codes == k)
        part = t.iloc[rows]
        ver[rows] = c.version
        prefix = "ip" if c.version == 4 else "ip6"
        src[rows] = nth_occurrence(part[f"{prefix}_src"], c.ip_occurrence).to_numpy(object)
        dst[rows] = nth_occurrence(part[f"{prefix}_dst"], c.ip_occurrence).to_numpy(object)
        if c.version == 4:
            ip_id[rows] = hex_values(nth_occurrence(part["ip_id"], c.ip_occurrence))
        links = np.where(seg_lt[rows] >= 0, seg_lt[rows], LINK_OF_TOKEN.get(c.link_token, 1))
        if c.plain:  # the carrier is the interface's: no field to read
            for r, i, link in zip(rows.tolist(), seg_iface[rows].tolist(), links.tolist()):
                where_key[r] = (k, i, link)
            continue
        columns = tuple(sorted({col for _, ident, _ in c.layers if ident for col in KEY_COLUMNS[ident[0]]}
                         | {f"{e[0]}_{side}" for _, _, e in c.layers if e for side in ("src", "dst")}))
        values = zip(*(part[col].tolist() for col in columns))
        for r, i, link, v in zip(rows.tolist(), seg_iface[rows].tolist(), links.tolist(), values):
            where_key[r] = (k, i, link, columns, v)
    # Carriers are numbered in the order of their first segment, as the other readers do.
    first: dict[tuple[Any, ...], int] = {}
    key_codes = np.array([first.setdefault(key, len(first)) for key in where_key.tolist()], np.int64)
    numbers = []
    for key in first:
        c = parsed[key[0]]
        assert isinstance(c, Chain)
        fields_of = {} if len(key) == 3 else {col: v.split(",") if v else [] for col, v in zip(key[3], key[4])}
        numbers.append(contexts.ctx(*carrier(c, _Fields(fields_of), key[1], key[2])))
    cols["ctx"] = np.array(numbers, np.int64)[key_codes] if n else np.zeros(0, np.int64)
    cols["ip_version"] = ver
    # Each distinct address converted once.
    codes_ends, texts = pd.factorize(np.concatenate([src, dst]))
    halves = np.array([address(str(a)) for a in texts] or [(0, 0)], np.uint64)[codes_ends]
    for j, name in enumerate(("src_hi", "src_lo", "dst_hi", "dst_lo")):
        cols[name] = halves[(j // 2) * n: (j // 2 + 1) * n, j % 2]
    for name in ("sport", "dport", "seq", "ack", "window", "payload"):
        cols[name] = first_occurrence(t[name]).astype(np.int64).to_numpy()
    cols["flags"] = hex_values(first_occurrence(t["flags"])) & 0xFF
    cols["ip_id"] = ip_id
    cols["tsval"] = last_occurrence(t["tsval"]).replace("", "-1").astype(np.int64).to_numpy()
    ws = last_occurrence(t["wscale"]).replace("", "-1").astype(np.int64).to_numpy()
    # Only a SYN's window scale counts; above 14 means 14 (RFC 7323 §2.2-2.3).
    cols["wscale"] = np.where((cols["flags"] & SYN) != 0, np.minimum(ws, 14), -1)
    hexes = first_occurrence(t["bytes"]).tolist()
    lengths = np.array([len(h) // 2 for h in hexes], np.int64)
    data = np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8) if n else np.zeros(0, np.uint8)
    starts = np.cumsum(lengths) - lengths
    cols["payload_at"] = np.where(lengths > 0, starts, -1)
    cols["payload_captured"] = lengths
    return packets_from(cols), data


# The columns a layer's id is read from (`carrier`).
KEY_COLUMNS = {"vlan": ("vlan",), "qinq": ("qinq",), "gre": ("gre_flags", "gre_key"), "erspan": ("erspan",),
               "vni": ("vni", "vxlan_flags"), "geneve": ("geneve",)}


class _Fields(dict[str, list[str]]):
    """A frame's field occurrences by column; a column not read is empty."""

    def __missing__(self, key: str) -> list[str]:
        return []


def first_occurrence(s: pd.Series[str]) -> pd.Series[str]:
    """The first occurrence of each value (the outermost header's)."""
    return s.str.split(",", n=1).str[0] if s.str.contains(",", regex=False).any() else s


def last_occurrence(s: pd.Series[str]) -> pd.Series[str]:
    return s.str.rsplit(",", n=1).str[-1] if s.str.contains(",", regex=False).any() else s


def nth_occurrence(s: pd.Series[str], k: int) -> pd.Series[str]:
    if k == 0:
        return first_occurrence(s)
    return s.str.split(",").str[k].fillna("")


def hex_values(s: pd.Series[str]) -> I64:
    """'0x0012' -> 18, each distinct value converted once."""
    values, back = np.unique(s.to_numpy(str), return_inverse=True)
    return np.array([int(v, 16) if v else -1 for v in values.tolist()] or [0], np.int64)[back.ravel()]


def start_tshark(argv: list[str], errors: IO[bytes]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL)
    except OSError as e:
        from ..errors import ReaderUnavailable
        from . import TSHARK_INSTALL

        raise ReaderUnavailable(f"cannot run tshark ({e.strerror}); install it: {TSHARK_INSTALL}") from None


def stop_tshark(proc: subprocess.Popen[bytes]) -> None:
    """Reap tshark; closing its pipe first stops it if we stopped reading early."""
    if proc.stdout is not None and not proc.stdout.closed:
        proc.stdout.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tshark_message(errors: IO[bytes]) -> str:
    """tshark's error text, without its warning about running as root."""
    errors.seek(0)
    lines = errors.read().decode("utf-8", "replace").splitlines()
    kept = [ln.strip().removeprefix("tshark: ") for ln in lines if ln.strip() and "could be dangerous" not in ln]
    return " ".join(kept)


# ---- frames handed over by `auto`: written to a temporary pcapng, read back by tshark ----------

def decode_frames(batch: FrameBatch, which: I64, contexts: Contexts,
                  skipped: Counter[str]) -> tuple[Packets, npt.NDArray[np.uint8]]:
    """The segments of some frames of a batch, dissected by tshark: they are written to a
    temporary pcapng (one interface per interface and link type of theirs) whose frame k is
    `which[k - 1]`."""
    points = sorted(set(zip(batch.iface[which].tolist(), batch.linktype[which].tolist())))
    with tempfile.NamedTemporaryFile(suffix=".pcapng") as tmp:
        # Microsecond times (the default resolution) will do: the batch's own are put back below.
        iface = np.array([points.index(p) for p in zip(batch.iface[which].tolist(), batch.linktype[which].tolist())],
                         np.int64)
        tmp.write(section_header() + b"".join(interface_description(lt, 0) for _, lt in points)
                  + packet_blocks(batch, which, np.round(batch.ts[which] * 1e6).astype(np.int64), iface))
        tmp.flush()
        reader = TsharkReader(tmp.name, contexts, skipped, [i for i, _ in points])
        parts = [(c.packets, c.data) for c in reader]
    from . import merge

    packets, data = merge(parts) if parts else (Packets.empty(), np.zeros(0, np.uint8))
    # Back to the batch's frame numbers and timestamps (exact, whatever the temporary file kept).
    at = packets.frame - 1
    packets.frame = batch.frame[which[at]]
    packets.ts = batch.ts[which[at]]
    return packets, data
