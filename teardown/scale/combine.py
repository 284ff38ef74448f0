"""Pieces read apart -> the captures they make up, and each shard of a capture judged whole.

Once every piece is read, what was each piece's own becomes the capture's: files are put in
reading order and grouped into captures exactly as `analysis.analyze` does, frame numbers run on
across them, and tunnels are numbered in order of first appearance in the whole run. A shard
then feeds its segments, in capture order, to an engine of its own: it holds whole 4-tuples, so
its verdicts are those of one process reading everything, but for one fact no shard has alone:
how many peers each port has, which decides the roles of connections seen without a handshake.
Those few are judged last, with the counts of all shards.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..analysis import ROTATION_SLACK_S, name_files
from ..carriers import Contexts, Point
from ..engine import Engine
from ..flows import NONE, Records
from ..options import Options
from ..present import readable
from ..read import CaptureInfo
from ..verdicts import Columns, judge
from .pieces import PieceMeta, Shard

I64 = npt.NDArray[np.int64]
FRAME_BITS = 40  # a port's first sightings are kept as port << 40 | frame


@dataclass(slots=True)
class FileRead:
    """One input file, put together from the pieces it was read in."""

    index: int
    info: CaptureInfo
    pieces: list[PieceMeta]


def file_of(pieces: list[PieceMeta]) -> FileRead:
    """A file from its pieces, which follow one another exactly (checked by the caller)."""
    first = pieces[0]
    info = CaptureInfo(path=first.info.path, format=first.info.format, compressed=first.info.compressed,
                       size_bytes=first.info.size_bytes, interfaces=list(pieces[-1].info.interfaces),
                       comments=list(first.info.comments))
    for p in pieces:
        if p.info.damage is not None:
            d = p.info.damage
            info.damage = type(d)(d.path, d.offset, info.frames + d.packets_read, d.what)
        info.frames += p.info.frames
        info.linktype_frames.update(p.info.linktype_frames)
        info.warnings += [w for w in p.info.warnings if w not in info.warnings]
        if p.info.first_ts is not None:
            info.first_ts = p.info.first_ts if info.first_ts is None else info.first_ts
            info.last_ts = p.info.last_ts
    return FileRead(first.piece.file_index, info, pieces)


def reading_order(files: list[FileRead]) -> list[FileRead]:
    """As `analyze` reads them: by first timestamp (files without one last), then as given."""
    if len(files) == 1:
        return files
    return sorted(files, key=lambda f: (f.info.first_ts is None, f.info.first_ts or 0.0, f.index))


def captures_of(ordered: list[FileRead]) -> list[list[FileRead]]:
    """Files read as one capture: each starts where the previous ended (see `analyze`)."""
    out: list[list[FileRead]] = []
    last_ts: float | None = None
    for f in ordered:
        first_ts = f.info.first_ts
        if not out or last_ts is not None and first_ts is not None and first_ts < last_ts - ROTATION_SLACK_S:
            out.append([])
        out[-1].append(f)
        last_ts = f.info.last_ts if f.info.last_ts is not None else last_ts
    return out


def number_carriers(ordered: list[FileRead]) -> tuple[Contexts, dict[int, npt.NDArray[np.uint32]]]:
    """Carriers numbered in order of first appearance over the run, as `analyze` numbers them;
    per piece (by id), a lookup from its own numbers to the run's."""
    contexts = Contexts()
    maps: dict[int, npt.NDArray[np.uint32]] = {}
    for f in ordered:
        for p in f.pieces:
            lookup = np.zeros(max(p.points, default=0) + 1, np.uint32)
            for local, point in p.points.items():
                lookup[local] = contexts.ctx(point.carrier, point.encapsulation)
            maps[id(p)] = lookup
    return contexts, maps


@dataclass(slots=True)
class PortPeers:
    """Each port's distinct peers up to a frame, over the whole capture: what the flow table
    counts (`port_peers` in _flows.c) when one process sees every 4-tuple."""

    sightings: I64  # sorted port << FRAME_BITS | frame: where each 4-tuple was first seen, per port

    def count(self, port: I64, frame: I64) -> I64:
        base = port << FRAME_BITS
        upto = base | np.clip(frame, 0, (1 << FRAME_BITS) - 1)
        counts: I64 = np.searchsorted(self.sightings, upto, "right") - np.searchsorted(self.sightings, base, "left")
        return counts

    def __call__(self, rec: Records) -> Records:
        """The records with the counts at each incarnation's last segment, as _flows.c takes them."""
        last = rec["last_frame"].max(axis=1)
        out = dict(rec)
        out["port_peers_a"] = self.count(rec["a_port"].astype(np.int64), last)
        out["port_peers_b"] = self.count(rec["b_port"].astype(np.int64), last)
        return out


def port_peers(rows: list[Columns], held: list[Records]) -> PortPeers:
    """`PortPeers` from the first incarnation of every 4-tuple: in the rows judged, and in the
    records held back."""
    frames, ports = [], []
    for part in rows:
        first = part["incarnation"] == 0
        frames.append(part["first_frame"][first])
        ports.append(np.stack([part["client_port"][first], part["server_port"][first]], axis=1).astype(np.int64))
    for rec in held:
        first = (rec["index_in_tuple"] == 0) & (rec["context"] == 0)
        seen = np.where(rec["first_frame"][first] == NONE, np.iinfo(np.int64).max, rec["first_frame"][first])
        frames.append(seen.min(axis=1))
        ports.append(np.stack([rec["a_port"][first], rec["b_port"][first]], axis=1).astype(np.int64))
    if not frames:
        return PortPeers(np.zeros(0, np.int64))
    frame, port = np.concatenate(frames).astype(np.int64), np.concatenate(ports)
    both = port[:, 0] != port[:, 1]
    sightings = np.concatenate([port[:, 0] << FRAME_BITS | frame, port[both, 1] << FRAME_BITS | frame[both]])
    return PortPeers(np.sort(sightings))


def frame_offsets(files: list[FileRead]) -> tuple[dict[int, int], list[str], list[int]]:
    """Frames before each piece (by id) in the capture; its files' names and first frames."""
    before: dict[int, int] = {}
    names, first_frames = [], []
    frames = 0
    for f in files:
        names.append(os.path.basename(f.info.path))
        first_frames.append(frames)
        for p in f.pieces:
            before[id(p)] = frames
            frames += p.info.frames
    return before, names, first_frames


@dataclass(slots=True)
class ShardJob:
    """What one shard of one capture needs besides its segments (given in capture order)."""

    options: Options
    frames_before: list[int]  # per part
    carriers: list[npt.NDArray[np.uint32]]  # per part: its carrier numbers -> the run's
    points: dict[int, Point]  # the run's carriers
    now: list[float | None]  # per part: its piece's last timestamp
    names: list[str]
    first_frames: list[int]
    capture: int  # which capture of the run


@dataclass(slots=True)
class ShardRows:
    """A shard's rows, and the records of 4-tuples whose roles must be inferred: judged once
    every shard is done (`finish`), when each port's peers are known for the whole capture."""

    rows: list[Columns]
    held: list[Records]


def judge_shard(job: ShardJob, *parts: Shard) -> bytes:
    """The rows of a shard's connections (runs in a worker), as a pickled `ShardRows`: one
    frame for Dask to send, where the rows' hundreds of arrays took it ~1 s per 100 MB."""
    engine = Engine(job.options)  # judged with job.points: the run's carriers
    out = ShardRows([], [])

    def take(records: Records) -> None:
        inferred = (records["pure_syn_dir"] < 0) & (records["synack_dir"] < 0)
        if inferred.any():  # the whole 4-tuple waits: a later incarnation's verdicts rest on it
            later = np.isin(records["tuple_uid"], records["tuple_uid"][inferred])
            out.held.append({k: v[later] for k, v in records.items()})
            records = {k: v[~later] for k, v in records.items()}
            if not len(records["context"]):
                return
        out.rows.append(name_files(readable(judge(records, job.options), job.points), job.names, job.first_frames, job.capture))

    for part, before, carriers, now in zip(parts, job.frames_before, job.carriers, job.now):
        packets = part.packets()
        if len(packets):
            packets.frame = packets.frame + before
            packets.ctx = carriers[packets.ctx]
        for records in engine.records(packets, part.heads, now):
            take(records)
    for records in engine.table.finish():
        take(records)
    return pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)


def finish(shards: list[ShardRows], options: Options, job: ShardJob) -> list[Columns]:
    """Every row of one capture: the shards' own, and those held back, now judged."""
    rows = [part for s in shards for part in s.rows]
    held = [rec for s in shards for rec in s.held]
    if held:
        peers = port_peers(rows, held)
        rows += [name_files(readable(judge(peers(rec), options), job.points), job.names, job.first_frames, job.capture) for rec in held]
    return rows
