"""Bytes -> frame batches. `open_capture` recognises the format by its magic bytes (gzip
included) and returns a reader that yields `FrameBatch`es of a bounded size, plus what it
learnt about the capture in `CaptureInfo` (link types, span, damage, and warnings for what its
record headers say that no real capture has)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

import numpy as np
import numpy.typing as npt

from ..errors import CaptureDamaged, CaptureError
from .gunzip import Gunzip

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": (False, 1e-6), b"\xa1\xb2\xc3\xd4": (True, 1e-6),
    b"\x4d\x3c\xb2\xa1": (False, 1e-9), b"\xa1\xb2\x3c\x4d": (True, 1e-9),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"

# What a file that is not a capture probably is, from its first bytes: for the error message.
KNOWN_MAGICS = [
    (b"PK\x03\x04", "a zip archive?", "unzip it first"),
    (b"BZh", "a bzip2 file?", "bunzip2 it first"),
    (b"\xfd7zXZ\x00", "an xz file?", "unxz it first"),
    (b"(\xb5/\xfd", "a zstd file?", "unzstd it first"),
    (b"7z\xbc\xaf", "a 7-zip archive?", "extract it first"),
    (b"%PDF", "a PDF document?", "give the capture itself"),
    (b"\x7fELF", "an executable?", "give a capture file"),
    (b"\x00\x00\x00\x00\x00\x00\x00\x00", "an empty or zeroed file?", "give a pcap or pcapng file"),
    (b"\x52\x54\x53\x53", "a Windows NetMon capture?", "convert it with editcap -F pcapng"),
    (b"snoop\x00\x00\x00", "a snoop capture?", "convert it with editcap -F pcapng"),
]


@dataclass(slots=True)
class FrameBatch:
    """Frames read from one chunk: where each starts in `data` and its record header.

    `data` is the chunk's bytes followed by PAD zero bytes. No decoder relies on them: _decode.c
    checks every read against the frame's captured length. They are a margin left from the numpy
    decoder, which read past short frames; cheap, so not worth a second copy of each chunk to drop.
    """

    data: npt.NDArray[np.uint8]
    pos: npt.NDArray[np.int64]
    caplen: npt.NDArray[np.uint32]
    wirelen: npt.NDArray[np.uint32]
    ts: npt.NDArray[np.float64]
    linktype: npt.NDArray[np.uint16]
    iface: npt.NDArray[np.uint16]
    frame: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.pos)


@dataclass(slots=True)
class Interface:
    linktype: int
    snaplen: int
    name: str = ""
    ts_units_per_s: int = 1_000_000
    ts_offset_s: int = 0
    # A pcapng description's if_tsresol byte and if_tsoffset where no real capture's can be
    # (pcapng.py `_options`): set aside, so the times are read without them. tshark applies
    # them as written.
    unusable_tsresol: int | None = None
    unusable_tsoffset_s: int | None = None

    def label(self, index: int) -> str:
        """'interface 0 (eth0)', as warnings name it."""
        return f"interface {index}" + (f" ({self.name})" if self.name else "")


@dataclass(slots=True)
class Mark:
    """A place in a file its writer noted (live --write): the frames written before it, and the
    least and greatest time of the frames from here to the next mark, so that a reader wanting
    a few flows reads only the stretches that can hold them (the report's ladders)."""

    offset: int  # where a packet block starts
    frames: int  # frames before it, counted from the capture's first (numbers run on over a rotation)
    first_ts: float
    last_ts: float
    interfaces: int  # interfaces described before it


@dataclass(slots=True)
class CaptureInfo:
    """What the reader learnt about one capture file."""

    path: str
    format: str = ""
    compressed: bool = False
    size_bytes: int = 0
    frames: int = 0
    interfaces: list[Interface] = field(default_factory=list)
    linktype_frames: Counter[int] = field(default_factory=Counter)
    first_ts: float | None = None
    last_ts: float | None = None
    damage: CaptureDamaged | None = None
    warnings: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)  # from the writer; none for a file read
    sha256: str | None = None  # from the writer, which hashed what it wrote; None: hash the file
    frames_before: int = 0  # frames of its capture in the files before it: its own are numbered on from there
    capture: int = 0  # which capture of the run it belongs to (the rows' `capture`)


# Lengths and times a record header may give that no real capture has.
MAX_ORIGINAL_BYTES = 16 << 20  # the longest frame: 64 KiB IP packets, 512 KiB BIG TCP (GSO) segments; 16 MiB is room
LAST_TS = 253_402_300_800.0  # 10000-01-01T00:00:00Z; later (or before 1970) is no capture's time


class FrameChecks:
    """What the record headers of a file say that no real capture has, counted per kind over the
    file and told in one warning per kind: how many frames, the first, what it showed.

    Each warning is rewritten in `info.warnings` as its count grows, so it is complete however
    far the file is read (a byte range stops part-way)."""

    def __init__(self, info: CaptureInfo) -> None:
        self.info = info
        self.frames: Counter[str] = Counter()
        self.first: dict[str, str] = {}  # kind -> its first frame and what it showed
        self.said: dict[str, int] = {}  # kind -> where its warning is in info.warnings
        self.latest_ts = -np.inf  # the latest time of the frames so far
        self.most_back_s = 0.0

    def wire_lengths(self, caplen: npt.NDArray[np.uint32], wirelen: npt.NDArray[np.uint32], first_frame: int) -> None:
        """Original lengths over MAX_ORIGINAL_BYTES or under the captured length (fuzzed or broken
        writers; 2^31 and more once made negative byte counts) become the captured length, in place."""
        bad = (wirelen > MAX_ORIGINAL_BYTES) | (wirelen < caplen)
        if not bad.any():
            return
        i = int(np.argmax(bad))
        self._tally("wirelen", int(bad.sum()), f"frame {first_frame + i:,}: {int(wirelen[i]):,} bytes, "
                    f"{int(caplen[i]):,} captured",
                    "{n} with an original length that cannot be (over 16 MiB, or under the captured length; "
                    "first: {first}): read as the captured length")
        wirelen[bad] = caplen[bad]

    def undescribed_interfaces(self, bad: npt.NDArray[np.bool_], first_frame: int) -> None:
        self._tally("iface", int(bad.sum()), f"frame {first_frame + int(np.argmax(bad)):,}",
                    "{n} naming an interface that was never described (first: {first}): read as the "
                    "section's first interface")

    def impossible_times(self, ts: npt.NDArray[np.float64], first_frame: int) -> npt.NDArray[np.bool_]:
        """Frames timestamped before 1970 or after year 9999 (a broken if_tsoffset, a corrupt
        timestamp): counted, and returned for the reader to give them the time before them."""
        bad = (ts < 0) | (ts >= LAST_TS)
        if bad.any():
            i = int(np.argmax(bad))
            when = "before 1970" if ts[i] < 0 else "after year 9999"
            self._tally("time", int(bad.sum()), f"frame {first_frame + i:,} at {ts[i]:,.0f} s since 1970, {when}",
                        "{n} with a time no capture has (first: {first}): given the time of the frame before")
        return bad

    def time_order(self, ts: npt.NDArray[np.float64], first_frame: int) -> None:
        """Frames timestamped earlier than a frame before them by more than ORDER_JITTER_S (a
        clock stepped back, files merged out of order): told, not reordered; verdicts follow the
        capture's order."""
        if not len(ts):
            return
        if ts[0] >= self.latest_ts and (ts[1:] >= ts[:-1]).all():  # in order (no NaN): one cheap pass
            self.latest_ts = float(ts[-1])
            return
        latest = np.fmax.accumulate(ts)  # fmax: a missing (NaN) time orders nothing
        before = np.empty_like(ts)
        before[0] = self.latest_ts
        np.fmax(latest[:-1], self.latest_ts, out=before[1:])
        self.latest_ts = max(self.latest_ts, float(latest[-1]))
        back = ts < before - ORDER_JITTER_S
        if not back.any():
            return
        self.most_back_s = max(self.most_back_s, float(np.max((before - ts)[back])))
        self._tally("order", int(back.sum()), f"frame {first_frame + int(np.argmax(back)):,}",
                    "{n} timestamped earlier than a frame before (first: {first}; at most "
                    f"{self.most_back_s:,.6f} s earlier): read in capture order")

    def _tally(self, kind: str, frames: int, first: str, warning: str) -> None:
        """Count `frames` more of `kind`; `warning` has {n} ("3 frames") and {first} to fill in."""
        self.frames[kind] += frames
        n = self.frames[kind]
        text = warning.format(n=f"{n:,} frame{'s' if n != 1 else ''}", first=self.first.setdefault(kind, first))
        at = self.said.setdefault(kind, len(self.info.warnings))
        if at == len(self.info.warnings):
            self.info.warnings.append(text)
        else:
            self.info.warnings[at] = text


def times_filled(ts: npt.NDArray[np.float64], missing: npt.NDArray[np.bool_], before: float) -> npt.NDArray[np.float64]:
    """Each frame without a usable time of its own (a Simple Packet Block has none; an
    impossible one is none) given the time of the frame before it: `before` for the first of the
    batch, or, when nothing came before (NaN), the first usable time after it (1970 if none)."""
    if not missing.any():
        return ts
    at = np.where(missing, -1, np.arange(len(ts)))
    np.maximum.accumulate(at, out=at)
    if np.isnan(before):
        usable = np.flatnonzero(~missing)
        before = float(ts[usable[0]]) if len(usable) else 0.0
    return np.where(at >= 0, ts[np.maximum(at, 0)], before)


class Timed(Protocol):
    @property
    def first_ts(self) -> float | None: ...

    @property
    def last_ts(self) -> float | None: ...


def time_span(files: Iterable[Timed]) -> tuple[float | None, float | None]:
    """Earliest first and latest last timestamp over the files that have packets."""
    firsts = [f.first_ts for f in files if f.first_ts is not None]
    lasts = [f.last_ts for f in files if f.last_ts is not None]
    return (min(firsts) if firsts else None, max(lasts) if lasts else None)


class Reader(Protocol):
    info: CaptureInfo

    def __iter__(self) -> Iterator[FrameBatch]: ...

    def close(self) -> None:
        """Close the file (reading to the end closes it too)."""

    def position(self) -> int:
        """Bytes of the file read so far (of the compressed file, for a gzipped one)."""


# Frames stamped on several CPUs or interfaces reach the file a little out of time order: 44 us
# on the loopback benchmark, 2.7 ms in a two-interface dumpcap capture. That is how capturing
# works, changes no verdict (they follow sequence numbers and capture order), and is not told;
# a step back larger than this is a clock or a merge gone wrong, and is.
ORDER_JITTER_S = 0.010

PAD = 128  # zero bytes after each chunk (FrameBatch): a margin, not relied on by any decoder


class ChunkStream:
    """A file read in chunks, keeping the unread tail of one chunk at the head of the next.

    Each chunk is read straight into a fresh, zero-padded numpy array (`data`), which the frame
    batches of that chunk share: no copy of the bytes is ever made after the read.
    """

    def __init__(self, fh: BinaryIO | Gunzip, chunk_bytes: int) -> None:
        self.fh = fh
        self.chunk_bytes = chunk_bytes
        self.data = np.zeros(PAD, np.uint8)
        self.n = 0  # valid bytes in data
        self.base = 0  # file offset of data[0]
        self.eof = False

    @property
    def buf(self) -> memoryview:
        """The bytes read and not yet dropped."""
        return self.data.data[: self.n]

    def prime(self, head: bytes) -> None:
        """Start with bytes already read from the file (its magic number)."""
        self.data = np.zeros(len(head) + PAD, np.uint8)
        self.data[: len(head)] = np.frombuffer(head, np.uint8)
        self.n = len(head)

    def fill(self, keep_from: int) -> bool:
        """Drop data[:keep_from], read another chunk; False when the file has no more bytes."""
        self.base += keep_from
        tail = self.n - keep_from
        if self.eof:
            self.data, self.n = self.data[keep_from:].copy(), tail
            return False
        want = max(self.chunk_bytes, 2 * tail)
        data = np.empty(want + PAD, np.uint8)
        data[:tail] = self.data[keep_from: self.n]
        got = tail
        view = data.data
        while got < want:
            k = self.fh.readinto(view[got:want])  # type: ignore[union-attr]  # every binary file has it
            if not k:
                self.eof = True
                break
            got += k
        data[got: got + PAD] = 0
        self.data, self.n = data, got
        return got > tail

    def position(self) -> int:
        try:
            return self.fh.compressed_position() if isinstance(self.fh, Gunzip) else int(self.fh.tell())
        except (OSError, ValueError):  # closed, or not seekable
            return 0

    def ended_early(self, path: str, offset: int, frames: int, inside: str) -> CaptureDamaged | None:
        """The damage when the bytes ran out at `offset` (into `buf`) with `frames` read: a
        file cut inside `inside` (a record, a block), or a gzip stream that stopped early. None
        when the file simply ended."""
        cut = offset < self.n
        gzip_damage = self.fh.damage if isinstance(self.fh, Gunzip) else None
        if gzip_damage is not None:
            # The offset CaptureDamaged gives is in the decompressed capture; the gzip's own is said first.
            problem = f"{gzip_damage}; the decompressed capture ends" + (f" inside {inside}" if cut else "")
        elif cut:
            problem = f"file ends inside {inside} (truncated)"
        else:
            return None
        return CaptureDamaged(path, self.base + offset, frames, problem)

    def padded(self) -> npt.NDArray[np.uint8]:
        """The chunk's bytes followed by PAD zero bytes (the array itself, not a copy)."""
        return self.data


def describe_start(head: bytes) -> str:
    """'starts with 50 4b 03 04, a zip archive?; unzip it first' for a file that is no capture."""
    shown = " ".join(f"{b:02x}" for b in head[:4])
    for magic, what, todo in KNOWN_MAGICS:
        if head.startswith(magic):
            return f"not a pcap or pcapng file (starts with {shown}, {what}); {todo}"
    if head[:1] in (b"<", b"{", b"[") or head[:64].isascii() and head[:64].strip():
        return f"not a pcap or pcapng file (starts with {shown}, text); give a binary capture file"
    return f"not a pcap or pcapng file (starts with {shown}); give a capture written by tcpdump, dumpcap or Wireshark"


def open_file(path: str) -> BinaryIO:
    """A local file opened for reading, or a CaptureError saying in a line why it cannot be."""
    if os.path.isdir(path):
        raise CaptureError(path, "is a directory; give a capture file (or a glob of them)")
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise CaptureError(path, "no such file") from None
    except PermissionError:
        raise CaptureError(path, "permission denied; check the file's mode or run with access to it") from None
    except OSError as e:
        raise CaptureError(path, f"cannot open: {e.strerror}") from None


def open_capture(path: str, chunk_bytes: int) -> Reader:
    """Open `path` (pcap, pcapng, or either gzipped) for streaming; CaptureError if unreadable."""
    if is_url(path):
        return _open_url(path, chunk_bytes)
    fh = open_file(path)
    try:
        return _recognise(path, fh, chunk_bytes)
    except BaseException:
        fh.close()
        raise


def is_url(path: str) -> bool:
    """An fsspec address (s3://bucket/key, file:///path, ...) rather than a local path."""
    scheme, sep, _ = path.partition("://")
    return bool(sep) and scheme.replace("+", "").replace("-", "").isalnum() and len(scheme) > 1


def _open_url(path: str, chunk_bytes: int) -> Reader:
    """Open an fsspec URL: the workers of a cluster read object stores the same way as files."""
    try:
        from fsspec.core import url_to_fs  # type: ignore[import-untyped]
    except ImportError:
        raise CaptureError(path, "reading URLs needs fsspec: pip install fsspec") from None
    try:
        fs, inner = url_to_fs(path)
        size = int(fs.size(inner))
        fh: BinaryIO = fs.open(inner, "rb")
    except ImportError as e:
        raise CaptureError(path, f"cannot read this kind of URL here ({e})") from None
    except FileNotFoundError:
        raise CaptureError(path, "no such file") from None
    except (OSError, ValueError) as e:
        raise CaptureError(path, f"cannot open: {e}") from None
    try:
        return _recognise(path, fh, chunk_bytes, size)
    except BaseException:
        fh.close()
        raise


def _recognise(path: str, fh: BinaryIO, chunk_bytes: int, size: int | None = None) -> Reader:
    from .pcap import PcapReader
    from .pcapng import PcapngReader

    size = os.fstat(fh.fileno()).st_size if size is None else size
    head = fh.read(4)
    compressed = head[:2] == GZIP_MAGIC
    source: BinaryIO | Gunzip = Gunzip(fh, head) if compressed else fh
    if compressed:
        head = source.read(4)
    info = CaptureInfo(path=path, compressed=compressed, size_bytes=size)
    if head in PCAP_MAGICS:
        big_endian, resolution = PCAP_MAGICS[head]
        return PcapReader(source, head, info, big_endian, resolution, chunk_bytes)
    if head == PCAPNG_MAGIC:
        return PcapngReader(source, head, info, chunk_bytes)
    rest = source.read(60)
    if isinstance(source, Gunzip) and source.damage is not None:  # nothing, or nonsense, before the damage
        raise CaptureError(path, f"{source.damage}; no capture could be read from it")
    if not head:
        raise CaptureError(path, "empty file" + (" inside the gzip" if compressed else ""))
    if len(head) < 4:
        raise CaptureError(path, f"too short to be a capture ({len(head)} bytes)")
    raise CaptureError(path, describe_start(head + rest))
