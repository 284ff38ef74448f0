"""One byte range of an uncompressed capture -> the frame batches of the records that start in it.

A big file is cut into ranges read in parallel (`teardown.scale`). A range's first record is
found by looking for a run of plausible record headers after its start offset; that guess is
checked later against where the previous range really ended (`Cut`), and a range that guessed
wrong is read again from the right place, so the frames are exactly those of a whole-file read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

import numpy as np
import numpy.typing as npt

from . import CaptureInfo, FrameBatch, Interface, Reader, open_capture
from .pcap import PcapReader
from .pcapng import IDB, MAX_BLOCK_BYTES, SHB, PcapngReader, section_order

SCAN_BYTES = 4 << 20  # how far past a range's start its first record is looked for
CHAIN = 8  # plausible headers in a row that make a record boundary
PACKET_BLOCKS = (2, 3, 6)  # pcapng: obsolete, simple and enhanced packet blocks
KNOWN_BLOCKS = (*PACKET_BLOCKS, IDB, 4, 5, 9, 10, 0x0BAD, 0x40000BAD, SHB)  # the spec's block types
MAX_WIRE_BYTES = 1 << 18  # an offloaded segment is at most 64 KiB; more is no record header


@dataclass(frozen=True, slots=True)
class Cut:
    """A record boundary and what a reader must know there: the pcapng interfaces described
    before it (with the section's byte order and first interface), nothing more for pcap."""

    offset: int
    interfaces: tuple[Interface, ...] = ()
    swapped: bool = False
    section_first_iface: int = 0

    def same_place(self, other: Cut) -> bool:
        return (self.offset, len(self.interfaces), self.swapped, self.section_first_iface) == (
            other.offset, len(other.interfaces), other.swapped, other.section_first_iface)


@dataclass(slots=True)
class RangeReader:
    """Frame batches of the records that start at `start` (a `Cut`) and before `stop`.

    After iterating, `end` is the boundary where the next range must start (None when the file
    ended, or was damaged, inside this range)."""

    reader: Reader
    start: Cut
    stop: int
    end: Cut | None = None
    frames: int = field(default=0)

    @property
    def info(self) -> CaptureInfo:
        return self.reader.info

    def close(self) -> None:
        self.reader.close()

    def position(self) -> int:
        return self.reader.position()

    def __iter__(self) -> Iterator[FrameBatch]:
        stream = self.reader.stream  # type: ignore[attr-defined]
        for batch in self.reader:
            at = stream.base + _record_starts(self.reader, batch)  # file offsets of the records
            cut = int(np.searchsorted(at, self.stop))
            if cut < len(batch):
                self.end = _cut_here(self.reader, int(at[cut]))
                if cut:
                    self.frames += cut
                    yield _head(batch, cut)
                self.reader.info.frames = self.frames
                self.reader.close()
                return
            self.frames += len(batch)
            yield batch
        damage = self.reader.info.damage
        if damage is not None and damage.offset >= self.stop:  # the next range's to report
            self.reader.info.damage = None
            self.end = _cut_here(self.reader, damage.offset)


def _record_starts(reader: Reader, b: FrameBatch) -> npt.NDArray[np.int64]:
    """Where each record's header starts in the batch's data (`pos` is where its frame does)."""
    if not isinstance(reader, PcapngReader):
        return b.pos - 16
    # pcapng: an enhanced (or obsolete) packet block's frame follows 28 bytes of header, a
    # simple packet block's 12.
    at = np.maximum(b.pos - 28, 0)
    words = b.data[at[:, None] + np.arange(4)].astype(np.uint32) @ (np.array([1, 1 << 8, 1 << 16, 1 << 24], np.uint32)
                                                                      if not reader.swapped else
                                                                      np.array([1 << 24, 1 << 16, 1 << 8, 1], np.uint32))
    enhanced = (b.pos >= 28) & np.isin(words, (2, 6))
    return np.where(enhanced, b.pos - 28, b.pos - 12)


def _head(b: FrameBatch, n: int) -> FrameBatch:
    return FrameBatch(b.data, b.pos[:n], b.caplen[:n], b.wirelen[:n], b.ts[:n], b.linktype[:n], b.iface[:n],
                      b.frame[:n])


def _cut_here(reader: Reader, offset: int) -> Cut:
    if isinstance(reader, PcapngReader):
        return Cut(offset, tuple(reader.info.interfaces), reader.swapped, reader.section_first_iface)
    return Cut(offset)


def open_range(path: str, start: int, stop: int, chunk_bytes: int, resume: Cut | None = None) -> RangeReader:
    """The records of `path` that start in [start, stop): from `resume` exactly when given, else
    from the first record boundary found at or after `start` (the file's first record for 0)."""
    reader = open_capture(path, chunk_bytes)
    try:
        if reader.info.compressed:
            raise ValueError(f"{path}: a compressed file cannot be read by byte ranges")
        if resume is None and start == 0:
            return RangeReader(reader, _cut_here(reader, _first_record(reader)), stop)
        if resume is None:
            _read_descriptions(reader)
            found = _find_boundary(reader, start)
            resume = _cut_here(reader, found if found is not None else reader.info.size_bytes)
        _seek(reader, resume)
        return RangeReader(reader, resume, stop)
    except BaseException:
        reader.close()
        raise


def _first_record(reader: Reader) -> int:
    return 24 if isinstance(reader, PcapReader) else 0


def _read_descriptions(reader: Reader) -> None:
    """pcapng: read the section header and interface blocks before the first packet block."""
    if not isinstance(reader, PcapngReader):
        return
    fh = cast(BinaryIO, reader.fh)  # a plain file: open_range refuses compressed ones
    fh.seek(0)
    buf = memoryview(fh.read(SCAN_BYTES))
    off = 0
    while off + 8 <= len(buf):
        if struct.unpack_from(">I" if reader.swapped else "<I", buf, off)[0] in PACKET_BLOCKS:  # the section's order
            break
        length, problem = reader._block(buf, off)
        if problem or not length:
            break
        off += length


def _seek(reader: Reader, at: Cut) -> None:
    """Make `reader` go on from `at` as if it had read the file up to there."""
    if isinstance(reader, PcapngReader):
        reader.info.interfaces = list(at.interfaces)
        reader.swapped, reader.section_first_iface = at.swapped, at.section_first_iface
        reader.last_ts = float("nan")
    stream = reader.stream  # type: ignore[attr-defined]
    reader.fh.seek(at.offset)  # type: ignore[attr-defined]
    stream.data, stream.n, stream.base, stream.eof = np.zeros(128, np.uint8), 0, at.offset, False


def _find_boundary(reader: Reader, start: int) -> int | None:
    """The first offset >= start where CHAIN plausible record headers follow one another (or
    run to the end of the file); None when there is none in SCAN_BYTES."""
    fh = reader.fh  # type: ignore[attr-defined]
    fh.seek(start)
    buf = fh.read(SCAN_BYTES)
    at_eof = len(buf) < SCAN_BYTES
    step = 4 if isinstance(reader, PcapngReader) else 1
    first = (-start) % step
    for c in range(first, len(buf), step):
        if _chain(reader, buf, c, at_eof):
            return start + c
    return None


def _chain(reader: Reader, buf: bytes, at: int, at_eof: bool) -> bool:
    order = ">" if reader.swapped else "<"  # type: ignore[attr-defined]
    for _ in range(CHAIN):
        if at == len(buf) and at_eof:
            return True
        record = _record_length(reader, buf, at, order)
        if record is None:
            return False
        length, order = record
        at += length
        if at > len(buf):
            return not at_eof  # runs past what was read: plausible so far
    return True


def _record_length(reader: Reader, buf: bytes, at: int, order: str) -> tuple[int, str] | None:
    """The length of the record at `at` in byte order `order`, and the byte order of the records
    after it (a pcapng section header sets its own); None when no record header is there."""
    if isinstance(reader, PcapReader):
        if at + 16 > len(buf):
            return None
        _sec, frac, caplen, wirelen = struct.unpack_from(order + "IIII", buf, at)
        limit = 1_000_000_000 if reader.resolution < 1e-6 else 1_000_000
        if frac >= limit or caplen > reader.max_caplen or caplen > wirelen or wirelen > MAX_WIRE_BYTES:
            return None
        return 16 + int(caplen), order
    if at + 12 > len(buf):
        return None
    if struct.unpack_from("<I", buf, at)[0] == SHB:  # a new section: in its own byte order
        order = section_order(buf, at) or order
    btype, total = struct.unpack_from(order + "II", buf, at)
    if btype not in KNOWN_BLOCKS or total < 12 or total % 4 or total > MAX_BLOCK_BYTES:
        return None
    if at + total <= len(buf) and struct.unpack_from(order + "I", buf, at + total - 4)[0] != total:
        return None
    return int(total), order
