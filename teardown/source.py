"""A capture file, an fsspec URL, a byte range of a file, a tshark pipe or an interface -> the
capture's facts (`read.CaptureInfo`) and batches of decoded TCP segments. The one way in, for
the analysis, the cluster's pieces, crosscheck, the report's ladders and live.

`Decoding` is what stays the same over a run (the decoder `--reader` asks for, the carriers
numbered alike in every file, the counts of what was skipped or handed over); `open_source`
opens one file of the run. With `--reader auto`, frames of link types the fast decoder does not
read go to scapy or tshark (dissect/auto.py), and a whole file of a format the fast reader does
not read goes to tshark.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import numpy.typing as npt

from .carriers import Contexts
from .decode import Packets, decode
from .dissect import WHOLE_FILE_TO_TSHARK, FrameDecoder, frame_decoder, other_format
from .errors import CaptureError
from .options import ReaderKind
from .read import CaptureInfo, FrameBatch, Reader, open_capture
from .read.frames import Counts, FrameSource
from .read.ranges import Cut, RangeReader, open_range
from .read.rotation import Rotation

U8 = npt.NDArray[np.uint8]
Segments = tuple[Packets, U8]  # a batch's segments and the bytes their payload offsets point into


@dataclass(slots=True)
class Decoding:
    """How frames become segments over one run: one decoder, one numbering of carriers, and
    what was skipped (by reason) or handed to another dissector (by kind) in every file."""

    reader: ReaderKind
    contexts: Contexts = field(default_factory=Contexts)
    skipped: Counter[str] = field(default_factory=Counter)
    whole_files: Counter[str] = field(default_factory=Counter)  # frames of files tshark read in place of us
    decoder: FrameDecoder | None = field(init=False)

    def __post_init__(self) -> None:
        self.decoder = frame_decoder(self.reader, self.contexts)  # tshark missing: said before reading

    def decode(self, batch: FrameBatch) -> Segments:
        if self.decoder is None:
            return decode(batch, self.skipped, self.contexts), batch.data
        return self.decoder.decode(batch, self.skipped)

    @property
    def handed_off(self) -> Counter[str]:
        """Frames read by scapy or tshark in place of the fast decoder, by kind."""
        return self.whole_files + (self.decoder.report()[0] if self.decoder is not None else Counter())

    @property
    def not_decoded(self) -> Counter[str]:
        """Frames `auto` could hand to nothing (scapy and tshark missing), by kind: the decoder's
        own count, which its warnings are made from."""
        return cast("Counter[str]", getattr(self.decoder, "not_decoded", Counter()))

    def warnings(self) -> list[str]:
        return self.decoder.report()[1] if self.decoder is not None else []


class Source:
    """One capture file (or a byte range of one) opened: `info` fills in as the batches of
    segments are read. Frame numbers start after `frames_before` (the files before it in one
    capture); a file damaged before its first frame raises its damage at the end."""

    def __init__(self, info: CaptureInfo, batches: Iterator[Segments], reader: Reader | RangeReader | None,
                 first_record: bool) -> None:
        self.info = info
        self._batches = batches
        self._reader = reader
        self._first_record = first_record  # reads from the file's first record: no frame there is damage

    def __iter__(self) -> Iterator[Segments]:
        yield from self._batches
        if self._first_record and self.info.damage is not None and self.info.frames == 0:
            raise self.info.damage

    def position(self) -> int:
        """Bytes of the file read so far (for progress; 0 while tshark reads it)."""
        return self._reader.position() if self._reader is not None else 0

    @property
    def cut(self) -> tuple[Cut | None, Cut | None]:
        """A byte range's first record and where the next range must start (after reading);
        (None, None) for a whole file."""
        if isinstance(self._reader, RangeReader):
            return self._reader.start, self._reader.end
        return None, None


def open_source(path: str, decoding: Decoding, chunk_bytes: int, frames_before: int = 0,
                byte_range: tuple[int, int] | None = None, resume: Cut | None = None) -> Source:
    """`path` (a file or an fsspec URL; of it only the records starting in `byte_range` when
    given, from `resume` exactly when given) opened for `decoding`."""
    if decoding.reader is ReaderKind.tshark:
        return _tshark_source(path, decoding, frames_before)
    try:
        if byte_range is None:
            reader: Reader | RangeReader = open_capture(path, chunk_bytes)
        else:
            reader = open_range(path, byte_range[0], byte_range[1], chunk_bytes, resume)
    except CaptureError as e:
        if decoding.reader is not ReaderKind.auto or not other_format(e):
            raise
        # A format the fast reader does not read (snoop, ERF, ...): tshark reads the whole file,
        # or the fast reader's own message stands.
        try:
            return _tshark_source(path, decoding, frames_before, refused=e)
        except CaptureError:
            raise e from None
    first_record = byte_range is None or (byte_range[0] == 0 and resume is None)
    return Source(reader.info, _decoded(reader, decoding, frames_before), reader, first_record)


def _decoded(reader: Reader | RangeReader, decoding: Decoding, frames_before: int) -> Iterator[Segments]:
    """The segments of each batch, with the link types and time span noted in `reader.info`."""
    info = reader.info
    for batch in reader:
        if len(batch) == 0:
            continue
        batch.frame += frames_before
        lt, counts = np.unique(batch.linktype, return_counts=True)
        for k, v in zip(lt.tolist(), counts.tolist()):
            info.linktype_frames[k] += v
        info.first_ts = float(batch.ts[0]) if info.first_ts is None else info.first_ts
        info.last_ts = float(np.nanmax(batch.ts))
        yield decoding.decode(batch)
    if isinstance(reader, RangeReader):
        info.frames = reader.frames  # the range's own, not the whole file's


def _tshark_source(path: str, decoding: Decoding, frames_before: int, refused: CaptureError | None = None) -> Source:
    """tshark reads and dissects the whole file (--reader tshark, or `auto` for another format,
    where tshark failing too leaves the fast reader's message `refused`)."""
    from .dissect.tshark_reader import TsharkReader

    reader = TsharkReader(path, decoding.contexts, decoding.skipped)

    def batches() -> Iterator[Segments]:
        try:
            for chunk in reader:
                chunk.packets.frame += frames_before
                yield chunk.packets, chunk.data
        except CaptureError:
            if refused is None:
                raise
            raise refused from None
        if refused is not None:
            decoding.whole_files[WHOLE_FILE_TO_TSHARK] += reader.info.frames

    return Source(reader.info, batches(), None, first_record=False)


class LiveSource:
    """An interface being captured (read/sniffer.py or read/dumpcap.py): the frames received
    since the last `take`, decoded as a file's are, and the capture's facts in `info`."""

    def __init__(self, frames: FrameSource, decoding: Decoding, info: CaptureInfo) -> None:
        self.frames = frames
        self.decoding = decoding
        self.info = info

    @property
    def counts(self) -> Counts:
        return self.frames.counts

    def take(self) -> Segments | None:
        """The segments of the frames received since the last take (None when there are none)."""
        batch = self.frames.take()
        if batch is None or not len(batch):
            return None
        info = self.info
        info.frames += len(batch)
        lt, counts = np.unique(batch.linktype, return_counts=True)
        for k, v in zip(lt.tolist(), counts.tolist()):
            info.linktype_frames[k] += v
        info.first_ts = float(batch.ts[0]) if info.first_ts is None else info.first_ts
        info.last_ts = float(np.nanmax(batch.ts))
        return self.decoding.decode(batch)


def open_interface(ifaces: list[str], decoding: Decoding, capture: str, bpf: str, snaplen: int, count: int | None,
                   write: str | None, rotation: Rotation | None = None) -> LiveSource:
    """The interfaces `ifaces` (or every one: ["any"]) captured by `capture` ("scapy": a packet
    socket, "dumpcap": Wireshark's capture program), opened and checked (interface, permission,
    filter): errors come here, before anything is printed. --write's file (or files, rotated)
    gets the raw frames, each with its interface."""
    if capture == "dumpcap":
        from .read.dumpcap import DumpcapSource

        frames: FrameSource = DumpcapSource(ifaces, bpf, snaplen, count, write, rotation)
    else:
        from .read.sniffer import ScapySource

        frames = ScapySource(ifaces, bpf, snaplen, count, write, rotation)
    return LiveSource(frames, decoding, CaptureInfo(path=f"{','.join(ifaces)} (live)", format="live"))
