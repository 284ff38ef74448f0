"""pcapng files and streams: read into frame batches, written from them, cut into blocks.

Reading: packet blocks are walked by the C walker; section headers, interface descriptions
(link type, timestamp resolution and offset), comments and every other block are handled here,
once per block rather than once per packet; `PcapngReader.blocks` walks the same way keeping
each block whole, for a copy of the file (wireshark/). Writing (live --write, the frames `auto`
hands to tshark, a block given a comment) and cutting a stream into whole blocks (dumpcap's
pipe) are at the end: each block's layout is written once, here."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from ..errors import CaptureDamaged
from . import LAST_TS, CaptureInfo, ChunkStream, FrameBatch, FrameChecks, Interface, times_filled
from ._walk import walk_pcapng  # type: ignore[import-not-found]
from .gunzip import Gunzip
from .rotation import CaptureFiles, Rotation

NEED_MORE, CORRUPT, FULL, OTHER_BLOCK = 0, 1, 2, 3
SHB, IDB, ISB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000005, 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_END, OPT_COMMENT, OPT_IF_NAME, OPT_IF_TSRESOL, OPT_IF_FCSLEN, OPT_IF_TSOFFSET = 0, 1, 2, 9, 13, 14
MAX_OPTION_BYTES = 0xFFFF  # an option's value: its length is 16 bits
SHB_OPTIONS_AT = 24  # a section header's options: after its type, length, magic, version and section length
ISB_STARTTIME, ISB_ENDTIME, ISB_IFRECV, ISB_IFDROP = 2, 3, 4, 5
NS_TSRESOL = 9  # if_tsresol: 10^-9 s
# The finest if_tsresol read: 2^-30 s (about tshark's nanosecond; the tshark reader's clock
# multiplies its nanoseconds by the units a second, which must stay in int64) and 10^-18 s
# (10^19 units a second overflow int64).
FINEST_TSRESOL_BINARY, FINEST_TSRESOL_DECIMAL = 30, 18
SIMPLE_PACKET = 0xFFFFFFFF  # the walker's interface id for a Simple Packet Block (_walk.c)
RECORDS_PER_CALL = 1 << 18
MAX_BLOCK_BYTES = 64 << 20  # a bigger block is corrupt: no real writer makes one


class PcapngReader:
    def __init__(self, fh: BinaryIO | Gunzip, magic: bytes, info: CaptureInfo, chunk_bytes: int) -> None:
        self.fh = fh
        self.info = info
        info.format = "pcapng"
        self.stream = ChunkStream(fh, chunk_bytes)
        self.stream.prime(magic)
        self.swapped = False
        self.section_first_iface = 0  # interface ids restart in each section
        self.last_ts = float("nan")  # the time of the last frame read; none yet
        self.checks = FrameChecks(info)

    def _damaged(self, offset: int, frames: int, problem: str) -> None:
        self.info.damage = CaptureDamaged(self.info.path, self.stream.base + offset, frames, problem)

    def _block(self, buf: memoryview, off: int) -> tuple[int, str | None]:
        """Read the non-packet block at `off`; return its length, or 0 and what is wrong."""
        if len(buf) - off < 12:
            return 0, None
        btype = struct.unpack_from("<I", buf, off)[0]
        if btype == SHB:
            order_of_section = section_order(buf, off)
            if order_of_section is None:
                return 0, "section header with an unknown byte-order magic"
            self.swapped = order_of_section == ">"
            self.section_first_iface = len(self.info.interfaces)
        order = ">" if self.swapped else "<"
        btype, total = struct.unpack_from(order + "II", buf, off)
        if total < 12 or total % 4 or total > MAX_BLOCK_BYTES:
            return 0, f"corrupt block length {total:,}"
        if len(buf) - off < total:
            return 0, None
        if struct.unpack_from(order + "I", buf, off + total - 4)[0] != total:
            return 0, f"block length {total:,} does not match its trailer"
        body = bytes(buf[off + 8: off + total - 4])
        if btype == SHB:
            self._options(body[16:], order, None)
        elif btype == IDB:
            if len(body) < 8:
                return 0, "interface description block too short"
            linktype, _, snaplen = struct.unpack_from(order + "HHI", body)
            iface = Interface(linktype, snaplen)
            self._options(body[8:], order, iface)
            self.info.warnings += set_aside(iface, len(self.info.interfaces))
            self.info.interfaces.append(iface)
        return total, None

    def _options(self, raw: bytes, order: str, iface: Interface | None) -> None:
        at = 0
        while at + 4 <= len(raw):
            code, length = struct.unpack_from(order + "HH", raw, at)
            value = raw[at + 4: at + 4 + length]
            at += 4 + (length + 3) // 4 * 4
            if code == 0:
                break
            if code == OPT_COMMENT:
                self.info.comments.append(value.decode("utf-8", "replace"))
            elif iface is not None and code == OPT_IF_NAME:
                iface.name = value.decode("utf-8", "replace")
            elif iface is not None and code == OPT_IF_TSRESOL and length >= 1:
                exp, binary = value[0] & 0x7F, bool(value[0] & 0x80)  # MSB: a power of 2, else of 10 (spec)
                if exp <= (FINEST_TSRESOL_BINARY if binary else FINEST_TSRESOL_DECIMAL):
                    iface.ts_units_per_s = 2 ** exp if binary else 10 ** exp
                else:
                    iface.unusable_tsresol = value[0]
            elif iface is not None and code == OPT_IF_TSOFFSET and length >= 8:
                offset = struct.unpack_from(order + "q", value)[0]
                # An offset past the whole span of real times moves every timestamp out of it.
                if abs(offset) < LAST_TS:
                    iface.ts_offset_s = offset
                else:
                    iface.unusable_tsoffset_s = offset

    def _timestamps(self, hi: npt.NDArray[Any], lo: npt.NDArray[Any], local_iface: npt.NDArray[Any],
                    first_frame: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint16]]:
        """Seconds since the epoch from each interface's units. A frame without a time of its
        own takes the time of the frame before it: a Simple Packet Block has none, and a time
        before 1970 or after year 9999 is none either. Such a frame is kept rather than dropped:
        its flags, sequence and acknowledgment numbers are intact and decide verdicts, and a
        frame dropped would look like capture loss and shift the frame numbers of a byte range."""
        units = (hi.astype(np.uint64) << np.uint64(32)) | lo.astype(np.uint64)
        simple = local_iface == SIMPLE_PACKET
        iface = np.where(simple, 0, local_iface).astype(np.int64) + self.section_first_iface
        known = len(self.info.interfaces)
        bad = iface >= known
        if bad.any():
            self.checks.undescribed_interfaces(bad, first_frame)
            iface[bad] = self.section_first_iface if self.section_first_iface < known else 0
        per_s = np.array([i.ts_units_per_s for i in self.info.interfaces] or [1_000_000], dtype=np.uint64)[iface]
        offset = np.array([i.ts_offset_s for i in self.info.interfaces] or [0], dtype=np.float64)[iface]
        ts = (units // per_s).astype(np.float64) + (units % per_s).astype(np.float64) / per_s + offset
        if simple.any():
            ts[simple] = np.nan
        ts = times_filled(ts, simple | self.checks.impossible_times(ts, first_frame), self.last_ts)
        self.checks.time_order(ts, first_frame)
        if len(ts):
            self.last_ts = float(ts[-1])
        return ts, iface.astype(np.uint16)

    def close(self) -> None:
        self.fh.close()

    def position(self) -> int:
        return self.stream.position()

    def __iter__(self) -> Iterator[FrameBatch]:
        stream, info = self.stream, self.info
        frames = 0
        offset = 0
        while True:
            try:
                more = stream.fill(offset)
            except OSError as e:
                self._damaged(len(stream.buf), frames, f"read error ({e.strerror or e})")
                more = False
            offset = 0
            data = stream.padded()
            payload = data.data[: len(stream.buf)]
            parts = []
            walked = frames  # frames read, those of this chunk's parts included
            while info.damage is None:
                snaplen0 = info.interfaces[self.section_first_iface].snaplen if len(info.interfaces) > self.section_first_iface else 0
                out = [np.empty(RECORDS_PER_CALL, dt) for dt in (np.int64, np.uint32, np.uint32, np.uint32, np.uint32, np.uint32)]
                n, offset, status = walk_pcapng(payload, offset, self.swapped, snaplen0 or 0xFFFFFFFF, *out)
                if n:
                    ts, iface = self._timestamps(out[3][:n], out[4][:n], out[5][:n], walked + 1)
                    parts.append((out[0][:n], out[1][:n], out[2][:n], ts, iface))
                    walked += n
                if status == FULL:
                    continue
                if status == OTHER_BLOCK:
                    length, problem = self._block(stream.buf, offset)
                    if problem:
                        self._damaged(offset, walked, problem)
                    elif length:
                        offset += length
                        continue
                    break
                if status == CORRUPT:
                    self._damaged(offset, walked, "corrupt packet block")
                break
            if parts:
                pos, caplen, wirelen, ts, iface = (np.concatenate(c) for c in zip(*parts))
                n = len(pos)
                self.checks.wire_lengths(caplen, wirelen, frames + 1)
                linktypes = np.array([i.linktype for i in info.interfaces] or [0], dtype=np.uint16)
                batch = FrameBatch(
                    data=data, pos=pos, caplen=caplen, wirelen=wirelen, ts=ts, linktype=linktypes[iface],
                    iface=iface, frame=np.arange(frames + 1, frames + n + 1, dtype=np.int64))
                frames += n
                info.frames = frames  # counted before it is handed over, as pcap.py does
                yield batch
            if info.damage is not None:
                break
            if not more:
                info.damage = stream.ended_early(info.path, offset, frames, "a block")
                break
        self.fh.close()

    def blocks(self) -> Iterator[Blocks]:
        """The file's blocks, whole and in file order, a chunk at a time, as places in the chunk's
        bytes: for copying the file (wireshark/), where `__iter__` decodes its frames. Packet
        blocks are walked by the same C walker and numbered as `__iter__` numbers them; every
        other block is read by `_block` (a section's byte order, its interfaces) and checked as
        there, so the walk ends where reading the frames ends, at the same damage."""
        stream = self.stream
        frames, offset = 0, 0
        while True:
            try:
                more = stream.fill(offset)
            except OSError:  # where reading the frames stops too (told there)
                return
            offset = 0
            payload = stream.padded().data[: len(stream.buf)]
            found = _FoundBlocks()
            while True:
                out = [np.empty(RECORDS_PER_CALL, dt) for dt in (np.int64, np.uint32, np.uint32, np.uint32, np.uint32, np.uint32)]
                n, end, status = walk_pcapng(payload, offset, self.swapped, 0xFFFFFFFF, *out)
                if n:
                    found.packets(out[0][:n], out[1][:n], out[5][:n] == SIMPLE_PACKET, end, frames, self.swapped)
                    frames += n
                offset = end
                if status == FULL:
                    continue
                problem = None
                if status == OTHER_BLOCK:
                    length, problem = self._block(stream.buf, offset)  # a section header sets self.swapped
                    if length:
                        kind = struct.unpack_from(">I" if self.swapped else "<I", stream.buf, offset)[0]
                        found.other(offset, offset + length, kind, self.swapped)
                        offset += length
                        continue
                break
            if found.start:
                yield found.made(stream.buf)
            if status == CORRUPT or problem or not more:
                return



@dataclass(slots=True)
class Blocks:
    """Whole blocks of a pcapng file read from one chunk, one after another: block i is
    `data[start[i]:end[i]]`."""

    data: memoryview
    start: npt.NDArray[np.int64]
    end: npt.NDArray[np.int64]
    frame: npt.NDArray[np.int64]  # a packet block's frame number in the file (from 1); 0 for other blocks
    kind: npt.NDArray[np.uint32]  # the type of other blocks (SHB, IDB, ...); 0 for packet blocks
    simple: npt.NDArray[np.bool_]  # a Simple Packet Block: it has no options, so none can be added
    caplen: npt.NDArray[np.int64]  # a packet block's captured bytes (its options follow them)
    big_endian: npt.NDArray[np.bool_]  # the block's section is in big-endian byte order

    def __len__(self) -> int:
        return len(self.start)


class _FoundBlocks:
    """The places of the blocks found in one chunk, gathered run by run for `Blocks`."""

    def __init__(self) -> None:
        self.start: list[npt.NDArray[np.int64]] = []
        self.end: list[npt.NDArray[np.int64]] = []
        self.frame: list[npt.NDArray[np.int64]] = []
        self.kind: list[npt.NDArray[np.uint32]] = []
        self.simple: list[npt.NDArray[np.bool_]] = []
        self.caplen: list[npt.NDArray[np.int64]] = []
        self.big_endian: list[npt.NDArray[np.bool_]] = []

    def packets(self, pos: npt.NDArray[Any], caplen: npt.NDArray[Any], simple: npt.NDArray[np.bool_],
                end: int, frames_before: int, swapped: bool) -> None:
        """A run of packet blocks the walker found: each starts its head before its frame and
        ends where the next starts; the run ends at `end`."""
        n = len(pos)
        start = pos.astype(np.int64) - np.where(simple, 12, 28)  # Simple: type, length, original length; else 28 bytes
        self.start.append(start)
        self.end.append(np.r_[start[1:], end].astype(np.int64))
        self.frame.append(np.arange(frames_before + 1, frames_before + n + 1, dtype=np.int64))
        self.kind.append(np.zeros(n, np.uint32))
        self.simple.append(simple.copy())
        self.caplen.append(caplen.astype(np.int64))
        self.big_endian.append(np.full(n, swapped))

    def other(self, start: int, end: int, kind: int, swapped: bool) -> None:
        for column, value in ((self.start, start), (self.end, end), (self.frame, 0), (self.caplen, 0)):
            column.append(np.array([value], np.int64))
        self.kind.append(np.array([kind], np.uint32))
        self.simple.append(np.zeros(1, bool))
        self.big_endian.append(np.array([swapped]))

    def made(self, data: memoryview) -> Blocks:
        return Blocks(data, start=np.concatenate(self.start), end=np.concatenate(self.end),
                      frame=np.concatenate(self.frame), kind=np.concatenate(self.kind),
                      simple=np.concatenate(self.simple), caplen=np.concatenate(self.caplen),
                      big_endian=np.concatenate(self.big_endian))


def section_order(buf: memoryview | bytes | bytearray, at: int) -> str | None:
    """The struct byte order ("<" or ">") of the section whose header block starts at `at` (its
    first 12 bytes there), from its byte-order magic; None when the magic is neither."""
    for order in "<>":
        if struct.unpack_from(order + "I", buf, at + 8)[0] == BYTE_ORDER_MAGIC:
            return order
    return None


def set_aside(iface: Interface, index: int) -> list[str]:
    """Warnings for what an interface description says that its times are read without."""
    out = []
    if iface.unusable_tsresol is not None:
        out.append(f"{iface.label(index)}: if_tsresol of {tsresol_text(iface.unusable_tsresol)} is finer than "
                   f"can be read (2^-{FINEST_TSRESOL_BINARY} or 10^-{FINEST_TSRESOL_DECIMAL} s at most); its times "
                   "read in microseconds, the pcapng default")
    return out + offset_set_aside(iface, index)


def offset_set_aside(iface: Interface, index: int) -> list[str]:
    if iface.unusable_tsoffset_s is None:
        return []
    return [f"{iface.label(index)}: if_tsoffset of {iface.unusable_tsoffset_s:,} s would put every time before "
            "1970 or after year 9999; read without it"]


def tsresol_text(option: int) -> str:
    """An if_tsresol option byte as the resolution it gives: '10^-6 s', '2^-20 s'."""
    return f"{2 if option & 0x80 else 10}^-{option & 0x7F} s"


# ---- writing: each block's layout once, little-endian unless a section is read in its own order -----

def option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def block(kind: int, body: bytes, order: str = "<") -> bytes:
    total = 12 + len(body)
    return struct.pack(order + "II", kind, total) + body + struct.pack(order + "I", total)


def comment_bytes(text: str | bytes) -> bytes:
    """A comment's UTF-8, cut (at a character, with an ellipsis) to what an option's 16-bit
    length holds."""
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) <= MAX_OPTION_BYTES:
        return raw
    return raw[: MAX_OPTION_BYTES - 3].decode("utf-8", "ignore").encode() + "\u2026".encode()


def section_header(comment: str | None = None) -> bytes:
    """A section of unknown length (-1), version 1.0."""
    options = b"" if comment is None else option(OPT_COMMENT, comment_bytes(comment)) + option(OPT_END, b"")
    return block(SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + options)


def interface_description(linktype: int, snaplen: int, name: str | None = None, tsresol: int | None = None,
                          fcslen: int | None = None) -> bytes:
    """An interface; without `tsresol` its times are in microseconds (the pcapng default);
    `fcslen`: the bytes of frame check sequence each frame ends with, where known."""
    options = b"" if name is None else option(OPT_IF_NAME, name.encode())
    options += b"" if tsresol is None else option(OPT_IF_TSRESOL, bytes([tsresol]))
    options += b"" if fcslen is None else option(OPT_IF_FCSLEN, bytes([fcslen]))
    return block(IDB, struct.pack("<HHI", linktype, 0, snaplen) + (options + option(OPT_END, b"") if options else b""))


_OPTION_HEAD = struct.Struct("<HH")
_END_OF_OPTIONS = struct.pack("<HH", OPT_END, 0)


def comment_options(text: str | bytes) -> bytes:
    """An option list holding one comment (opt_comment), ended as the format asks: `option`'s
    layout, made in one step (a copy may give 400,000 frames a comment)."""
    raw = comment_bytes(text)
    return _OPTION_HEAD.pack(OPT_COMMENT, len(raw)) + raw + b"\0" * (-len(raw) % 4) + _END_OF_OPTIONS


def packet_blocks(batch: FrameBatch, which: npt.NDArray[np.int64], units: npt.NDArray[np.int64],
                  iface: npt.NDArray[np.int64], options: Mapping[int, bytes] | None = None) -> bytes:
    """An Enhanced Packet Block for each frame `which` of `batch`, with its time in the
    interface's `units` and the interface's number in the section, built in bulk; `options`:
    the option list (comment_options) of some of them, by their position in `which`."""
    n = len(which)
    caplen = batch.caplen[which].astype(np.int64)
    size = packet_block_sizes(caplen)
    if options:
        at = np.fromiter(options, np.int64, len(options))
        size[at] += np.fromiter(map(len, options.values()), np.int64, len(options))
    start = np.zeros(n + 1, np.int64)
    np.cumsum(size, out=start[1:])
    out = np.zeros(int(start[-1]), np.uint8)
    words = out.view("<u4")
    header = np.stack([np.full(n, EPB), size, iface, units >> 32, units & 0xFFFFFFFF, caplen,
                       batch.wirelen[which].astype(np.int64)], axis=1).astype("<u4")
    at_word = start[:-1] // 4
    for k in range(7):
        words[at_word + k] = header[:, k]
    words[(start[1:] // 4) - 1] = size.astype("<u4")
    data, dst = batch.data.data, out.data
    for a, p, c in zip((start[:-1] + 28).tolist(), batch.pos[which].tolist(), caplen.tolist()):
        dst[a: a + c] = data[p: p + c]
    if options:
        options_at = start[:-1] + packet_block_sizes(caplen) - 4  # after the padded frame
        for i, value in options.items():
            a = int(options_at[i])
            dst[a: a + len(value)] = value
    return out.tobytes()


def packet_block_sizes(caplen: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """The size of each frame's Enhanced Packet Block: 32 bytes around its data, padded to 4."""
    return 32 + ((caplen.astype(np.int64) + 3) & ~3)


def with_comment(whole: bytes | memoryview, options_at: int, order: str, text: str | bytes) -> bytes:
    """A block read from a file (`whole`, in its section's byte order), the same but for a
    comment (opt_comment) put first among its options, which start at `options_at`: what it
    held is kept as it was, its lengths grow by the comment's."""
    body = bytes(whole[options_at: len(whole) - 4])
    added = option(OPT_COMMENT, comment_bytes(text), order) + (b"" if body else option(OPT_END, b"", order))
    total = len(whole) + len(added)
    return (struct.pack(order + "II", struct.unpack_from(order + "I", whole)[0], total)
            + bytes(whole[8: options_at]) + added + body + struct.pack(order + "I", total))


def packet_options_at(caplen: int) -> int:
    """Where the options of an Enhanced (or obsolete) Packet Block start: after its 28-byte
    head and its frame, padded to 4 bytes."""
    return 28 + ((caplen + 3) & ~3)


def section_of_unknown_length(whole: bytes | memoryview, order: str, comment: str | None = None) -> bytes:
    """A section header read from a file, its section length set to unknown (-1: the blocks
    after it are about to change size) and `comment` put first among its options."""
    head = bytearray(whole if comment is None else with_comment(whole, SHB_OPTIONS_AT, order, comment))
    struct.pack_into(order + "q", head, 16, -1)
    return bytes(head)


def interface_statistics(first_ns: int | None, last_ns: int, received: int, dropped: int,
                         comment: str | None = None) -> bytes:
    """Interface 0's statistics at `last_ns`: frames received and dropped by the kernel."""
    def stamp(ns: int) -> bytes:
        return struct.pack("<II", ns >> 32, ns & 0xFFFFFFFF)

    body = struct.pack("<I", 0) + stamp(last_ns)
    if first_ns is not None:
        body += option(ISB_STARTTIME, stamp(first_ns)) + option(ISB_ENDTIME, stamp(last_ns))
    body += option(ISB_IFRECV, struct.pack("<Q", received)) + option(ISB_IFDROP, struct.pack("<Q", dropped))
    body += (b"" if comment is None else option(OPT_COMMENT, comment.encode())) + option(OPT_END, b"")
    return block(ISB, body)


class PcapngWriter:
    """Frames -> pcapng (live --write): one section, an interface description per interface
    captured (nanosecond timestamps), written before the first frame that needs it, an Enhanced
    Packet Block per frame with its interface's number, and at the end the capture's statistics
    (frames received and dropped by the kernel). Written and flushed batch by batch, so a stop at
    any moment leaves a readable file; with a `Rotation`, a set of files (read/rotation.py).

    The file replaces any previous one once the capture has started (interface open, filter
    compiled: a failed start leaves it untouched), with its header already in it
    (outputs.Staged), and grows under its own name, so it can be read while the capture runs."""

    def __init__(self, path: str, interfaces: list[Interface], comment: str, rotation: Rotation | None = None) -> None:
        self.interfaces = interfaces  # the source's list: it grows as interfaces show up (-i any)
        self.described = len(interfaces)
        self.head = section_header(comment) + b"".join(map(_description, interfaces))
        self.files = CaptureFiles(path, rotation, self.head)
        self.first_ns: int | None = None
        self.last_ns = 0
        self.frames = 0

    def write(self, batch: FrameBatch, ts_ns: npt.NDArray[np.int64]) -> None:
        n = len(batch)
        if not n:
            return
        if len(self.interfaces) > self.described:  # described before their first frame, in every later file too
            new = b"".join(map(_description, self.interfaces[self.described:]))
            self.described = len(self.interfaces)
            self.head += new
            self.files.write(new, np.array([len(new)], np.int64), lambda: self.head[: -len(new)], np.zeros(1, bool))
        sizes = packet_block_sizes(batch.caplen)
        self.files.write(packet_blocks(batch, np.arange(n), ts_ns, batch.iface.astype(np.int64)),
                         np.cumsum(sizes), lambda: self.head, ts=batch.ts, interfaces=self.described)
        if self.first_ns is None:
            self.first_ns = int(ts_ns[0])
        self.last_ns = int(ts_ns[-1])
        self.frames += n

    def close(self, received: int, dropped: int) -> None:
        """End with the statistics: frames received and dropped by the kernel, on interface 0
        (one capture socket counts them for every interface, which a comment says)."""
        several = len(self.interfaces) > 1
        comment = f"received and dropped by one capture socket over all {len(self.interfaces)} interfaces" if several else None
        self.files.close(interface_statistics(self.first_ns, self.last_ns, received, dropped, comment))


def _description(iface: Interface) -> bytes:
    return interface_description(iface.linktype, iface.snaplen, iface.name or None, NS_TSRESOL)


# ---- cutting: a stream arriving in pieces -> whole blocks --------------------------------------

class BlockCutter:
    """A pcapng stream read from a pipe in pieces of any size (dumpcap's) -> its whole packet
    blocks, and `head`, the section header and interface descriptions that must come before
    them for a reader: each cut is read as a little file of its own (read/dumpcap.py)."""

    def __init__(self) -> None:
        self.order = "<"
        self.head = b""
        self.linktype = 1  # of the last interface described (one interface per capture here)

    def cut(self, buf: bytearray) -> bytes:
        """The whole packet blocks at the start of `buf`, removed from it."""
        at = 0
        blocks = []
        self.ends: list[int] = []  # where each block returned ends in the bytes returned
        while len(buf) - at >= 12:
            if struct.unpack_from("<I", buf, at)[0] == SHB:  # the same either way round
                self.order = section_order(buf, at) or self.order
            kind, total = struct.unpack_from(self.order + "II", buf, at)
            if total < 12 or len(buf) - at < total:
                break
            whole = bytes(buf[at: at + total])
            if kind == SHB:
                self.head = whole
            elif kind == IDB:
                self.head += whole
                self.linktype = struct.unpack_from(self.order + "H", whole, 8)[0]
            else:
                blocks.append(whole)
                self.ends.append((self.ends[-1] if self.ends else 0) + total)
            at += total
        del buf[:at]
        return b"".join(blocks)
