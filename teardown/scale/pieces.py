"""One piece of the input (a file, or a byte range of one) -> its segments, dealt into shards.

This is the first step of a run on many processes, and runs in a worker: the piece is read and
decoded like any file, and each segment goes to the shard of its 4-tuple, so that every
connection is judged whole by one shard later (combine.py). Frame numbers and tunnel numbers are
still the piece's own here; only once every piece is read are they known for the whole capture.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from ..analysis import segments
from ..decode import Packets
from ..carriers import Contexts, Point
from ..dissect import WHOLE_FILE_TO_TSHARK, frame_decoder, other_format
from ..errors import CaptureError
from ..options import Options, ReaderKind
from ..read import CaptureInfo, open_capture
from ..read.ranges import Cut, open_range

HEAD_BYTES = 256  # payload the flow table keeps per direction (_flows.c): more is never read
U64 = npt.NDArray[np.uint64]
_M1, _M2, _M3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True, slots=True)
class Piece:
    """A file (`stop` None), or the records of one that start in [start, stop)."""

    path: str
    file_index: int  # in the order given
    range_index: int = 0
    start: int = 0
    stop: int | None = None
    resume: Cut | None = None  # read from exactly here (a range whose first guess was wrong)

    @property
    def whole(self) -> bool:
        return self.stop is None


@dataclass(slots=True)
class Shard:
    """The segments of one shard of a piece, with the first payload bytes of each."""

    columns: dict[str, npt.NDArray[Any]]  # Packets' fields; payload_at points into `heads`
    heads: npt.NDArray[np.uint8]

    def __len__(self) -> int:
        return len(self.columns["frame"])

    def packets(self) -> Packets:
        return Packets(**self.columns)


@dataclass(slots=True)
class PieceMeta:
    """What the driver needs of a piece to put pieces together, small enough to gather."""

    piece: Piece
    info: CaptureInfo  # frames and damage counted within the piece
    start: Cut | None  # the first record read (None: read whole)
    end: Cut | None  # where the next range must start; None when the file ended here
    tcp_packets: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    handed_off: Counter[str] = field(default_factory=Counter)
    not_decoded: Counter[str] = field(default_factory=Counter)
    points: dict[int, Point] = field(default_factory=dict)  # the piece's own carrier numbers


@dataclass(slots=True)
class PieceResult:
    meta: PieceMeta
    shards: list[Shard]


def shard_of(p: Packets, n_shards: int) -> U64:
    """Each segment's shard: a hash of its two endpoints, the same in both directions, so that
    every segment of a 4-tuple (whatever tunnel carried it) goes to one shard."""
    with np.errstate(over="ignore"):
        ends = [(p.src_hi * _M1) ^ (p.src_lo * _M2) ^ (p.sport.astype(np.uint64) * _M3),
                (p.dst_hi * _M1) ^ (p.dst_lo * _M2) ^ (p.dport.astype(np.uint64) * _M3)]
        h = _mix(_mix(ends[0]) + _mix(ends[1]))
    return h % np.uint64(n_shards)


def _mix(x: U64) -> U64:
    x = x ^ (x >> np.uint64(30))
    x = x * _M2
    x = x ^ (x >> np.uint64(27))
    x = x * _M3
    return x ^ (x >> np.uint64(31))


def read_piece(piece: Piece, options: Options, n_shards: int) -> PieceResult:
    """Read and decode `piece`, dealing its segments into `n_shards` shards by 4-tuple."""
    contexts = Contexts()
    decoder = frame_decoder(options.reader, contexts)
    skipped: Counter[str] = Counter()
    start = end = None
    if options.reader is ReaderKind.pyshark:
        return _read_tshark(piece, contexts, n_shards)
    try:
        if piece.whole:
            reader: Any = open_capture(piece.path, options.chunk_bytes)
        else:
            assert piece.stop is not None
            reader = open_range(piece.path, piece.start, piece.stop, options.chunk_bytes, piece.resume)
            start = reader.start
    except CaptureError as e:
        if options.reader is not ReaderKind.auto or not other_format(e):
            raise
        try:  # a format only tshark reads (as in analysis._run_file)
            result = _read_tshark(piece, contexts, n_shards)
        except CaptureError:
            raise e from None
        result.meta.handed_off[WHOLE_FILE_TO_TSHARK] += result.meta.info.frames
        return result
    deal = _Dealer(n_shards)
    for packets, data in segments(reader, skipped, decoder, contexts):
        deal.add(packets, data)
    info: CaptureInfo = reader.info
    if not piece.whole:
        info.frames = reader.frames
        end = reader.end
    if info.damage is not None and info.frames == 0 and piece.range_index == 0 and piece.resume is None:
        raise info.damage
    meta = PieceMeta(piece, info, start, end, deal.count, skipped, points=dict(contexts.points))
    handed_off, not_decoded = getattr(decoder, "handed_off", Counter()), getattr(decoder, "not_decoded", Counter())
    meta.handed_off.update(handed_off)
    meta.not_decoded.update(not_decoded)
    return deal.finish(meta)


def _read_tshark(piece: Piece, contexts: Contexts, n_shards: int) -> PieceResult:
    from ..dissect.tshark_reader import TsharkReader

    skipped: Counter[str] = Counter()
    reader = TsharkReader(piece.path, contexts, skipped)
    deal = _Dealer(n_shards)
    for chunk in reader:
        deal.add(chunk.packets, chunk.data)
    meta = PieceMeta(piece, reader.info, None, None, deal.count, skipped, points=dict(contexts.points))
    return deal.finish(meta)


class _Dealer:
    """Deals segments into shards as batches come, keeping each one's first HEAD_BYTES."""

    def __init__(self, n_shards: int) -> None:
        self.n = n_shards
        self.parts: list[list[Shard]] = [[] for _ in range(n_shards)]
        self.count = 0

    def add(self, p: Packets, data: npt.NDArray[np.uint8]) -> None:
        if not len(p):
            return
        self.count += len(p)
        if self.n == 1:
            self.parts[0].append(_packed(p, data))
            return
        shard = shard_of(p, self.n)
        order = np.argsort(shard, kind="stable")
        bounds = np.searchsorted(shard[order], np.arange(self.n + 1, dtype=np.uint64))
        p = p.take(order)
        for s in range(self.n):
            if bounds[s + 1] > bounds[s]:
                self.parts[s].append(_packed(p.take(slice(bounds[s], bounds[s + 1])), data))

    def finish(self, meta: PieceMeta) -> PieceResult:
        return PieceResult(meta, [_joined(parts) for parts in self.parts])


def _packed(p: Packets, data: npt.NDArray[np.uint8]) -> Shard:
    """The segments with their captured payload cut to HEAD_BYTES and copied out of `data`."""
    kept = np.clip(np.minimum(p.payload_captured, HEAD_BYTES), 0, None).astype(np.int64)
    kept[p.payload_at < 0] = 0
    starts = np.concatenate([[0], np.cumsum(kept)[:-1]]) if len(kept) else kept
    total = int(kept.sum())
    within = np.arange(total, dtype=np.int64) - np.repeat(starts, kept)
    heads = data[np.repeat(p.payload_at, kept) + within] if total else np.zeros(0, np.uint8)
    columns = {f.name: getattr(p, f.name) for f in fields(Packets)}
    columns["payload_at"] = np.where(kept > 0, starts, -1)
    columns["payload_captured"] = kept.astype(np.int32)
    return Shard(columns, heads)


def _joined(parts: list[Shard]) -> Shard:
    if not parts:
        return Shard({f.name: getattr(Packets.empty(), f.name) for f in fields(Packets)}, np.zeros(0, np.uint8))
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [len(s.heads) for s in parts[:-1]])
    columns = {name: np.concatenate([s.columns[name] for s in parts]) for name in parts[0].columns}
    at = np.concatenate([np.where(s.columns["payload_at"] >= 0, s.columns["payload_at"] + o, -1)
                         for s, o in zip(parts, offsets)])
    columns["payload_at"] = at
    return Shard(columns, np.concatenate([s.heads for s in parts]))
