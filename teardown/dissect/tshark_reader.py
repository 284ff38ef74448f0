"""A capture -> TCP packet columns, dissected by tshark (--reader pyshark).

tshark reads the file itself (every format and encapsulation Wireshark knows) and prints only
the fields needed, one line per frame (`-T fields`), with its costly analyses off (sequence
analysis, reassembly). pyshark's `FileCapture` drives the same tshark but asks it for the whole
dissection tree of every packet and builds Python objects from it: that, not tshark, is what
makes it slow. So this reader runs tshark directly (found where pyshark's config says, else on
PATH) and parses its lines in bulk with pandas, a chunk of frames at a time.

Payload bytes come from `tcp.payload` into a buffer of the chunk's own, which the payload
offsets point into. Timestamps are rebuilt from tshark's decimal text with the fast reader's
arithmetic for the file's resolution, so both give the same floats.
"""

from __future__ import annotations

import csv
import gzip
import os
import struct
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..decode import SYN, Packets
from ..errors import CaptureError
from ..read import GZIP_MAGIC, PCAP_MAGICS, PCAPNG_MAGIC, CaptureInfo, FrameBatch, Interface, open_capture
from . import (BAD_IP, BAD_TCP, LATER_FRAGMENT, LINK_HEADER_BYTES, NO_TCP_HEADER, NOT_IP, NOT_TCP, Contexts, Tunnel,
               address, packets_from, short_link, tshark_path, tunnel, unknown_link)

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
    ("vni", "vxlan.vni"), ("gre_key", "gre.key"),
    ("sport", "tcp.srcport"), ("dport", "tcp.dstport"), ("seq", "tcp.seq_raw"), ("ack", "tcp.ack_raw"),
    ("flags", "tcp.flags"), ("window", "tcp.window_size_value"), ("payload", "tcp.len"), ("thl", "tcp.hdr_len"),
    ("tsval", "tcp.options.timestamp.tsval"), ("wscale", "tcp.options.wscale.shift"), ("bytes", "tcp.payload"),
]
# Analyses we do not need and that cost: sequence analysis, reassembly of IP fragments and TCP
# streams (each fragment and segment is wanted as it is on the wire), relative numbers.
PREFERENCES = ["tcp.analyze_sequence_numbers:FALSE", "tcp.desegment_tcp_streams:FALSE", "ip.defragment:FALSE",
               "ipv6.defragment:FALSE", "tcp.calculate_timestamps:FALSE", "tcp.relative_sequence_numbers:FALSE"]
CHUNK_FRAMES = 50_000  # lines parsed at a time: bigger chunks cost memory (pandas text columns), not time
MAX_VLAN_TAGS = 4  # as the fast decoder (and scapy_reader) unwrap
IP_TOKENS = ("ip", "ipv6")
TAG_TOKENS = {"vlan": "vlan", "ieee8021ad": "qinq"}  # 802.1Q and 802.1ad tags -> the column of their ids
# In a first IP fragment tshark (reassembly off) dissects the TCP header but gives no payload
# length: for IPv4 it is rebuilt from the IP lengths, as the fast decoder takes it; an IPv6
# first fragment, whose extension headers tshark does not measure for us, is counted apart.
FIRST_FRAGMENT = "first IPv6 fragment (tshark gives no TCP payload length in it)"
UNDECODED_LINK = "UNDECODED_LINK"  # chain(): tshark did not decode the link layer (reason per link type)
TUNNEL_TOKENS = {"vxlan": "VXLAN", "gre": "GRE"}


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


@dataclass(frozen=True, slots=True)
class Chain:
    """What a frame's protocol chain (frame.protocols) says about its TCP segment."""

    version: int  # of the IP header carrying TCP
    ip_occurrence: int  # which ip.src (or ipv6.src) occurrence that header is
    tunnel_kind: str | None = None
    tunnel_version: int = 4  # of the tunnel's outer IP header
    tunnel_occurrence: int = 0
    outer_tag: str | None = None  # column of the outermost 802.1Q/802.1ad tag's id, before the network layer


def chain(protocols: str) -> Chain | str:
    """The segment's place in the layers, or the fast decoder's reason there is none."""
    tokens = protocols.split(":")
    if "tcp" not in tokens:
        ips = [j for j, t in enumerate(tokens) if t in IP_TOKENS]
        if not ips:
            return UNDECODED_LINK if tokens[0] in ("user_dlt", "data") else NOT_IP
        # Nothing dissected after an IP header: tshark found it cut or broken.
        return BAD_IP if tokens[ips[-1] + 1:] in ([], ["_ws.malformed"]) else NOT_TCP
    before = tokens[: tokens.index("tcp")]
    if any(t.startswith("icmp") for t in before):  # a TCP header quoted in an ICMP error
        return NOT_TCP
    ips = [j for j, t in enumerate(before) if t in IP_TOKENS]
    if not ips:
        return NOT_IP
    tags = [t for t in before[: ips[0]] if t in TAG_TOKENS]
    if len(tags) > MAX_VLAN_TAGS:
        return NOT_IP
    net = ips[-1]
    # The first tunnel: a VXLAN or GRE header, or an IP header right inside another (IP-in-IP).
    kind, outer = None, -1
    for j, t in enumerate(before):
        if t in TUNNEL_TOKENS and any(i < j for i in ips):
            kind, outer = TUNNEL_TOKENS[t], max(i for i in ips if i < j)
            break
        if t in IP_TOKENS and j != ips[0]:
            kind, outer = "IP-in-IP", max(i for i in ips if i < j)
            break
    return Chain(4 if before[net] == "ip" else 6, before[:net].count(before[net]), kind,
                 4 if kind is None or before[outer] == "ip" else 6,
                 before[:outer].count(before[outer]) if kind else 0, TAG_TOKENS[tags[0]] if tags else None)


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
            offset = np.array([i.ts_offset_s for i in self.interfaces], np.int64)
            known = iface < len(units)
            iface = np.where(known, iface, 0)
            per_s, off = units[iface], offset[iface]
            # Units of a power-of-ten resolution, exactly; the nearest unit for binary ones.
            frac = np.where(1_000_000_000 % per_s == 0, ns // np.maximum(1_000_000_000 // per_s, 1),
                            (ns * per_s + 500_000_000) // 1_000_000_000)
            out: npt.NDArray[np.float64] = ((sec - off).astype(np.float64) + frac.astype(np.float64)
                                            / per_s.astype(np.uint64) + off.astype(np.float64))
            return out
        return sec.astype(np.float64) + ns.astype(np.float64) * 1e-9


def clock_of(path: str) -> tuple[Clock, CaptureInfo | None]:
    """The file's timestamp arithmetic, and what our own reader learnt of it (None when our
    reader cannot read it: a format only tshark knows)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head[:2] == GZIP_MAGIC:
            with gzip.open(path, "rb") as gz:
                head = gz.read(4)
    except (OSError, EOFError):
        return Clock(""), None
    if head in PCAP_MAGICS:
        reader = open_capture(path, 1 << 16)
        reader.close()
        return Clock("pcap", PCAP_MAGICS[head][1]), reader.info
    if head == PCAPNG_MAGIC:  # resolutions are per interface, and interfaces may come late
        try:
            reader = open_capture(path, 8 << 20)
            for _ in reader:
                pass
        except CaptureError:
            return Clock(""), None
        return Clock("pcapng", interfaces=reader.info.interfaces), reader.info
    return Clock(""), None


def check_readable(path: str) -> None:
    """The fast reader's errors for a file that is not there (tshark's own are less clear)."""
    if os.path.isdir(path):
        raise CaptureError(path, "is a directory; give a capture file (or a glob of them)")
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise CaptureError(path, "no such file") from None
    except PermissionError:
        raise CaptureError(path, "permission denied; check the file's mode or run with access to it") from None
    except OSError as e:
        raise CaptureError(path, f"cannot open: {e.strerror}") from None


class TsharkReader:
    """One capture file dissected by tshark, as chunks of segments."""

    def __init__(self, path: str, contexts: Contexts, skipped: Counter[str]) -> None:
        check_readable(path)
        self.path = path
        self.contexts = contexts
        self.skipped = skipped
        self.clock, ours = clock_of(path)
        self.info = CaptureInfo(path=path, format=self.clock.format or "read by tshark",
                                compressed=ours.compressed if ours else False,
                                size_bytes=os.path.getsize(path), interfaces=ours.interfaces if ours else [])

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
        if len(frame):
            info.frames = int(frame[-1])
            info.first_ts = float(ts[0]) if info.first_ts is None else info.first_ts
            info.last_ts = float(np.nanmax(ts))
            self._count_link_types(iface)
        packets, data = segments(table, ts, frame, self.contexts, self.skipped, self._linktypes(iface))
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
             skipped: Counter[str], linktype: I64 | None = None) -> tuple[Packets, npt.NDArray[np.uint8]]:
    """The TCP segments among a chunk's frames, in the fast decoder's columns; `linktype`
    (per frame, -1 where unknown) lets frames be counted by the fast decoder's link reasons."""
    import pandas as pd

    codes, chains = pd.factorize(table["protocols"])
    parsed = [chain(c) for c in chains]
    is_tcp = np.array([isinstance(c, Chain) for c in parsed] or [False], bool)[codes] if len(codes) else np.zeros(0, bool)
    lt = np.full(len(codes), -1, np.int64) if linktype is None else linktype
    # A frame shorter than its link header is that, whatever tshark made of it.
    short = np.zeros(len(codes), bool)
    for link, size in LINK_HEADER_BYTES.items():
        short |= (lt == link) & (table["cap_len"].to_numpy(np.int64) < size)
    for link in np.unique(lt[short]).tolist():
        skipped[short_link(link)] += int((short & (lt == link)).sum())
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
        n = int(rows.sum())
        if reason == NOT_TCP:
            later = (first_occurrence(table["ip_frag"][rows]).replace("", "0").astype(np.int64).to_numpy() > 0) | (
                first_occurrence(table["ip6_frag"][rows]).replace("", "0").astype(np.int64).to_numpy() > 0)
            if later.any():
                skipped[LATER_FRAGMENT] += int(later.sum())
            n -= int(later.sum())
        if n:
            skipped[reason] += n
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
    cols: dict[str, Any] = {"frame": frame[sel], "ts": ts[sel]}
    ver = np.zeros(n, np.int64)
    src, dst = np.empty(n, object), np.empty(n, object)
    ip_id = np.full(n, -1, np.int64)
    tunnel_of: list[tuple[int, Tunnel | None]] = [(0, None)] * n
    row_codes = codes[sel]
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
        vlans = (first_occurrence(part[c.outer_tag]).replace("", "0").astype(np.int64).to_numpy() if c.outer_tag
                 else np.zeros(len(rows), np.int64))
        if c.tunnel_kind is None:
            for r, v in zip(rows.tolist(), vlans.tolist()):
                tunnel_of[r] = (v, None)
            continue
        outer = "ip" if c.tunnel_version == 4 else "ip6"
        a = nth_occurrence(part[f"{outer}_src"], c.tunnel_occurrence).tolist()
        b = nth_occurrence(part[f"{outer}_dst"], c.tunnel_occurrence).tolist()
        keys: list[int | None] = [None] * len(rows)
        if c.tunnel_kind == "VXLAN":
            keys = [int(x) if x else None for x in first_occurrence(part["vni"]).tolist()]
        elif c.tunnel_kind == "GRE":
            keys = [int(x, 16) if x else None for x in first_occurrence(part["gre_key"]).tolist()]
        for r, v, x, y, key in zip(rows.tolist(), vlans.tolist(), a, b, keys):
            tunnel_of[r] = (v, tunnel(c.tunnel_kind, x, y, key, v))
    # Tunnels are numbered in the order of their first segment, as the other readers do.
    cols["ctx"] = np.array([contexts.ctx(v, tun) for v, tun in tunnel_of], np.int64)
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
    temporary pcapng (one interface per link type) whose frame k is `which[k - 1]`."""
    with tempfile.NamedTemporaryFile(suffix=".pcapng") as tmp:
        tmp.write(_pcapng(batch, which))
        tmp.flush()
        reader = TsharkReader(tmp.name, contexts, skipped)
        parts = [(c.packets, c.data) for c in reader]
    from . import merge

    packets, data = merge(parts) if parts else (Packets.empty(), np.zeros(0, np.uint8))
    # Back to the batch's frame numbers and timestamps (exact, whatever the temporary file kept).
    at = packets.frame - 1
    packets.frame = batch.frame[which[at]]
    packets.ts = batch.ts[which[at]]
    return packets, data


def _pcapng(batch: FrameBatch, which: I64) -> bytes:
    linktypes = sorted(set(batch.linktype[which].tolist()))
    out = [struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)]
    for lt in linktypes:
        out.append(struct.pack("<IIHHII", 1, 20, lt, 0, 0, 20))
    view = batch.data.data  # a memoryview: slices without copies
    for i in which.tolist():
        frame = view[int(batch.pos[i]): int(batch.pos[i]) + int(batch.caplen[i])].tobytes()
        units = int(round(float(batch.ts[i]) * 1e6))
        pad = b"\0" * (-len(frame) % 4)
        total = 32 + len(frame) + len(pad)
        out.append(struct.pack("<IIIIIII", 6, total, linktypes.index(int(batch.linktype[i])), units >> 32,
                               units & 0xFFFFFFFF, len(frame), int(batch.wirelen[i])) + frame + pad
                   + struct.pack("<I", total))
    return b"".join(out)
