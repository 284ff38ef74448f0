"""Bytes -> frame batches. `open_capture` recognises the format by its magic bytes (gzip
included) and returns a reader that yields `FrameBatch`es of a bounded size, plus what it
learnt about the capture in `CaptureInfo` (link types, span, damage)."""

from __future__ import annotations

import gzip
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

import numpy as np
import numpy.typing as npt

from ..errors import CaptureDamaged, CaptureError

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

    `data` is the chunk's bytes followed by zero padding, so a decoder may read a few bytes past
    a short frame without an index error (its validity masks discard what it read there).
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


PAD = 128  # zero bytes after each chunk: the longest header a decoder peeks at without checks


class ChunkStream:
    """A file read in chunks, keeping the unread tail of one chunk at the head of the next.

    Each chunk is read straight into a fresh, zero-padded numpy array (`data`), which the frame
    batches of that chunk share: no copy of the bytes is ever made after the read.
    """

    def __init__(self, fh: BinaryIO, chunk_bytes: int) -> None:
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
            k = self.fh.readinto(view[got:want])  # type: ignore[attr-defined]
            if not k:
                self.eof = True
                break
            got += k
        data[got: got + PAD] = 0
        self.data, self.n = data, got
        return got > tail

    def position(self) -> int:
        raw = getattr(self.fh, "fileobj", None) or self.fh  # a GzipFile reads from .fileobj
        try:
            return int(raw.tell())
        except (OSError, ValueError):  # closed, or not seekable
            return 0

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
    if compressed:
        if is_url(path):
            fh.seek(0)
            fh = gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[assignment]
        else:
            fh.close()
            fh = gzip.open(path, "rb")  # type: ignore[assignment]
        try:
            head = fh.read(4)
        except (OSError, EOFError) as e:
            raise CaptureError(path, f"damaged gzip file ({e})") from None
    if not head:
        raise CaptureError(path, "empty file" + (" inside the gzip" if compressed else ""))
    info = CaptureInfo(path=path, compressed=compressed, size_bytes=size)
    if head in PCAP_MAGICS:
        big_endian, resolution = PCAP_MAGICS[head]
        return PcapReader(fh, head, info, big_endian, resolution, chunk_bytes)
    if head == PCAPNG_MAGIC:
        return PcapngReader(fh, head, info, chunk_bytes)
    if len(head) < 4:
        raise CaptureError(path, f"too short to be a capture ({len(head)} bytes)")
    rest = fh.read(60)
    raise CaptureError(path, describe_start(head + rest))
