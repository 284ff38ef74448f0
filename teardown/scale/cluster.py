"""Capture paths -> an `Analysis`, computed on a Dask cluster (local processes, or remote).

Two rounds of tasks. First every piece (a file, or a byte range of a big one) is read, decoded
and dealt into shards by 4-tuple (pieces.py); ranges whose first record was guessed wrong are
read again from where the previous range really ended. Then each shard of each capture is judged
by an engine of its own (combine.py): where its piece was read when the capture is one piece,
else on each worker in turn. The driver only puts the rows together and computes the host views,
as a single process would.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..analysis import Analysis, CaptureSummary, Progress, concat_rows
from ..carriers import Contexts
from ..errors import UsageError
from ..options import Options, ReaderKind
from ..source import Decoding
from .combine import (FileRead, ShardJob, ShardRows, captures_of, file_of, finish, frame_offsets, judge_shard,
                      number_carriers, reading_order)
from .pieces import Piece, PieceMeta, PieceResult, Shard, read_piece

if TYPE_CHECKING:
    from distributed import Client, Future

MIN_RANGE_BYTES = 16 << 20  # smaller ranges cost more in tasks than they give
MAX_RANGE_BYTES = 256 << 20  # bounds the memory of one task: ~2.5 M segments
SHARD_SEGMENTS = 8_000_000  # a shard's segments are held at once while judged: ~1 GB


def analyze_on_cluster(paths: list[str], options: Options, workers: int | None = None, scheduler: str | None = None,
                       progress: Progress | None = None, tell: Callable[[str], None] | None = None) -> Analysis:
    """`analyze` on `workers` local processes, or on the Dask cluster at `scheduler`."""
    client, where = _client(workers, scheduler)
    if tell:
        tell(f"running on {where}; dashboard {client.dashboard_link}")
    try:
        result = run(client, paths, options, progress)
        result.capture.cluster = where
        return result
    finally:
        cluster = client.cluster
        client.close()
        if cluster is not None and scheduler is None:
            cluster.close()


def _client(workers: int | None, scheduler: str | None) -> tuple[Client, str]:
    """A client of the cluster at `scheduler`, or of a new local one; and what it is, in words."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("--workers and --scheduler need Dask: pip install 'dask[distributed]'") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout=5)
        except (OSError, TimeoutError, ValueError) as e:
            raise UsageError(f"--scheduler {scheduler}: cannot reach it ({e})") from None
        return client, f"the Dask cluster at {scheduler} ({len(client.scheduler_info()['workers'])} workers)"
    n = workers or os.cpu_count() or 1
    # One thread per process: the engine holds the GIL, and each process its own flow table.
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers, and glibc then stops raising its
    # mmap threshold: every large array is mapped afresh and page-faults in, which made each task
    # 2-3x slower. Unset, memory freed by a task is reused by the next.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=50)
    return Client(cluster), f"a local Dask cluster of {n} worker process{'es' if n > 1 else ''}"


def _probe(path: str) -> tuple[int, bool]:
    """Size and whether it is compressed, read where the workers are."""
    from ..read import open_capture

    reader = open_capture(path, 1 << 12)
    try:
        return reader.info.size_bytes, reader.info.compressed
    finally:
        reader.close()


def plan(paths: list[str], sizes: list[tuple[int, bool]], options: Options, workers: int) -> list[Piece]:
    """Files, and byte ranges of the big uncompressed ones: about two pieces per worker."""
    total = sum(size for size, _ in sizes)
    target = min(max(total // (2 * workers), MIN_RANGE_BYTES), MAX_RANGE_BYTES)
    pieces = []
    for i, (path, (size, compressed)) in enumerate(zip(paths, sizes)):
        n = math.ceil(size / target) if size > 1.5 * target else 1
        if n == 1 or compressed or options.reader is ReaderKind.tshark:
            pieces.append(Piece(path, i))
            continue
        cuts = [size * k // n for k in range(n + 1)]
        pieces += [Piece(path, i, k, cuts[k], cuts[k + 1] if k + 1 < n else size + 1) for k in range(n)]
    return pieces


def run(client: Client, paths: list[str], options: Options, progress: Progress | None = None,
        pieces: list[Piece] | None = None) -> Analysis:
    """`analyze_on_cluster` with a client of one's own; `pieces` replaces the plan (tests)."""
    # A cluster still starting, or a worker its nanny is restarting, shows no workers for a
    # moment: wait for one, and place shards only on workers known (else the scheduler places them).
    client.wait_for_workers(1)
    addresses = sorted(client.scheduler_info()["workers"])
    workers = max(len(addresses), 1)
    sizes = client.gather(client.map(_probe, paths, pure=False))
    pieces = pieces or plan(paths, sizes, options, workers)
    total = sum(size for size, _ in sizes)
    n_shards = max(2 * workers, math.ceil(total / 100 / SHARD_SEGMENTS))
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], 2 * total)

    metas, shards = _read_all(client, pieces, options, n_shards, sizes, advance)
    files = [file_of(metas[i]) for i in sorted(metas)]
    ordered = reading_order(files)
    captures = captures_of(ordered)
    contexts, carriers = number_carriers(ordered)
    from distributed import as_completed

    jobs: list[tuple[int, ShardJob, Future[Any]]] = []
    for c, capture in enumerate(captures):
        before, names, first_frames = frame_offsets(capture)
        for f, frames_before in zip(capture, first_frames):
            f.info.frames_before, f.info.capture = frames_before, c
        parts = [p for f in capture for p in f.pieces]
        job = ShardJob(options, [before[id(p)] for p in parts], [carriers[id(p)] for p in parts], contexts.points,
                       [p.info.last_ts for p in parts], names, first_frames, c)
        weight = sum(f.info.size_bytes for f in capture) // n_shards
        for s in range(n_shards):
            inputs = [shards[id(p)][s] for p in parts]
            # A shard gathered from pieces on several workers is judged on the worker of its
            # turn: left to itself, the scheduler puts every shard where the data ties first.
            place = {} if len(parts) == 1 or not addresses else {
                "workers": [addresses[len(jobs) % len(addresses)]], "allow_other_workers": True}
            jobs.append((c, job, client.submit(judge_shard, job, *inputs, pure=False, **place)))
    where = {future.key: i for i, (_, _, future) in enumerate(jobs)}
    judged: dict[int, ShardRows] = {}
    for future in as_completed([future for _, _, future in jobs]):
        judged[where[future.key]] = pickle.loads(future.result())
        advance(weight)
        future.release()
    rows = []
    for c in range(len(captures)):
        mine = [i for i, (k, _, _) in enumerate(jobs) if k == c]
        rows += finish([judged[i] for i in mine], options, jobs[mine[0]][1])
    summary = _summary(ordered, captures, options, contexts, total)
    summary.cluster = f"a Dask cluster of {workers} worker{'s' if workers > 1 else ''}"
    flows, summary.copies = concat_rows(rows, contexts.points)
    return Analysis(flows, summary, options)


def _read_all(client: Client, pieces: list[Piece], options: Options, n_shards: int, sizes: list[tuple[int, bool]],
              advance: Callable[[int], None]) -> tuple[dict[int, list[PieceMeta]], dict[int, list[Future[Any]]]]:
    """Every piece read; ranges checked against their neighbours (and read again where the
    guess of their first record was wrong). Per file, its pieces' metadata in order; per piece
    (by id of its metadata), the futures of its shards."""
    from distributed import as_completed

    def submit(piece: Piece) -> tuple[Future[Any], Future[Any], list[Future[Any]]]:
        result = client.submit(read_piece, piece, options, n_shards, pure=False)
        return client.submit(_meta, result, pure=False), result, [
            client.submit(_shard, result, s, pure=False) for s in range(n_shards)]

    submitted = {piece: submit(piece) for piece in pieces}
    by_key = {meta.key: piece for piece, (meta, _, _) in submitted.items()}
    got: dict[Piece, PieceMeta] = {}
    for future in as_completed([m for m, _, _ in submitted.values()]):
        piece = by_key[future.key]
        got[piece] = future.result()
        advance(_piece_bytes(piece, sizes))
    shards_of: dict[int, list[Future[Any]]] = {}
    by_file: dict[int, list[PieceMeta]] = {}
    for piece in pieces:  # in file and range order
        meta = got[piece]
        _, result, shard_futures = submitted[piece]
        chain = by_file.setdefault(piece.file_index, [])
        if chain:
            end = chain[-1].end
            if end is None:  # the file ended, or was damaged, in an earlier range: a whole read stops there
                continue
            if not end.same_place(meta.start or end):
                redo = Piece(piece.path, piece.file_index, piece.range_index, piece.start, piece.stop, resume=end)
                del submitted[piece]  # what it read is not wanted
                meta_future, result, shard_futures = submit(redo)
                meta = meta_future.result()
        chain.append(meta)
        shards_of[id(meta)] = shard_futures
        result.release()  # its shards stay where they are until judged
    return by_file, shards_of


def _piece_bytes(piece: Piece, sizes: list[tuple[int, bool]]) -> int:
    size = sizes[piece.file_index][0]
    return size if piece.stop is None else min(piece.stop, size) - piece.start


def _meta(result: PieceResult) -> PieceMeta:
    return result.meta


def _shard(result: PieceResult, s: int) -> Shard:
    return result.shards[s]


def _summary(ordered: list[FileRead], captures: list[list[FileRead]], options: Options, contexts: Contexts,
             total: int) -> CaptureSummary:
    summary = CaptureSummary(bytes_total=total, bytes_before=total, reader=options.reader.value,
                             continuous=len(captures) == 1)
    decoding = Decoding(options.reader, contexts)  # for its warnings on what `auto` could hand to nothing
    for f in ordered:  # each knows its capture (run sets it before this)
        summary.files.append(f.info)
        for p in f.pieces:
            summary.tcp_packets += p.tcp_packets
            summary.skipped.update(p.skipped)
            summary.handed_off.update(p.handed_off)
            decoding.not_decoded.update(p.not_decoded)
    summary.carried_in = contexts.described()
    summary.reader_warnings += decoding.warnings()
    return summary

