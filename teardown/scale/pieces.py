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

from ..carriers import Point
from ..decode import Packets
from ..options import Options
from ..read import CaptureInfo
from ..read.ranges import Cut
from ..source import Decoding, open_source

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
    decoding = Decoding(options.reader)
    byte_range = None if piece.stop is None else (piece.start, piece.stop)
    source = open_source(piece.path, decoding, options.chunk_bytes, byte_range=byte_range, resume=piece.resume)
    deal = _Dealer(n_shards)
    for packets, data in source:
        deal.add(packets, data)
    start, end = source.cut
    meta = PieceMeta(piece, source.info, start, end, deal.count, decoding.skipped, points=dict(decoding.contexts.points))
    meta.handed_off.update(decoding.handed_off)
    meta.not_decoded.update(decoding.not_decoded)
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
