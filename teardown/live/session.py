"""One `teardown live` run: a capture source -> the engine, batch after batch -> JSON lines, the
terminal view and, at the stop, the final rows.

Every BATCH_S the frames received are taken from the source (its thread keeps reading
meanwhile), decoded as offline `--reader auto` decodes them (source.py: frames of link types
the fast decoder does not read go to scapy or tshark) and fed to the same `Engine` as offline
analysis, with the wall clock as `now`: rows that nothing can change any more come out as they
do offline, and the rows whose teardown just completed come out provisionally
(`Engine.provisional`).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import FrameType
from typing import TextIO

import numpy as np

from ..analysis import Analysis, CaptureSummary, concat_rows
from ..carriers import Point
from ..decode import Packets
from ..engine import Engine
from ..errors import UsageError
from ..options import Options, ReaderKind
from ..packed import Held
from ..read import CaptureInfo, Interface
from ..read.frames import NS_PER_S, Counts
from ..read.rotation import Rotation, Written
from ..source import Decoding, LiveSource, Segments, open_interface
from .every import Rewriter
from .kernel import KernelSide
from .rows import Event, Tallies, Tracker
from ..terminal import closes_text
from .view import CLOSERS, KINDS, Status, View

BATCH_S = 0.15  # frames go to the engine this often: the JSON lines' delay after a teardown
IFACE_CHECK_S = 1.0
IFF_UP = 0x1
READERS = ("scapy", "dumpcap")
FORMER_NAMES = {"pyshark": "dumpcap"}  # what `--reader dumpcap` was first called: still accepted
DEFAULT_SNAPLEN = 262144  # as tcpdump's default


@dataclass(frozen=True, slots=True)
class LiveSettings:
    iface: str
    bpf: str = "tcp"
    duration_s: float | None = None
    count: int | None = None
    write: str | None = None  # pcapng file for the raw frames
    write_rotation: Rotation | None = None  # --write-size, --write-files: a set of files (read/rotation.py)
    ifaces: tuple[str, ...] = ()  # the interfaces of -i (["any"]: every one); `iface` names them all
    jsonl: bool = False
    reader: str = "scapy"
    keep_rows: bool = False  # keep every final row for -o
    view: bool = True
    snaplen: int = DEFAULT_SNAPLEN
    kernel: bool = True  # the kernel's sockets beside the capture (live/kernel.py); --no-kernel

    def __post_init__(self) -> None:
        object.__setattr__(self, "reader", FORMER_NAMES.get(self.reader, self.reader))
        object.__setattr__(self, "ifaces", self.ifaces or (self.iface,))
        if self.reader not in READERS:
            raise UsageError(f"--reader {self.reader}: choose one of {', '.join(READERS)}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise UsageError(f"--duration must be a positive number of seconds, not {self.duration_s}")
        if self.count is not None and self.count < 1:
            raise UsageError(f"--count must be at least 1, not {self.count}")


@dataclass(slots=True)
class LiveResult:
    settings: LiveSettings
    started: float
    ended: float
    stop_reason: str
    counts: Counts
    tcp_packets: int
    skipped: Counter[str]
    tallies: Tallies
    rows: list[dict[str, Held]]  # final rows, packed (only with keep_rows)
    points: dict[int, Point]  # the carriers the rows' ctx number
    linktype: int
    first_ts: float | None
    last_ts: float | None
    state: dict[str, int] = field(default_factory=dict)  # the most state held at once
    handed_off: Counter[str] = field(default_factory=Counter)  # frames decoded by scapy or tshark, by kind
    reader_warnings: list[str] = field(default_factory=list)
    kernel_lines: list[str] = field(default_factory=list)  # the kernel beside the capture, at the stop
    interfaces: list[Interface] = field(default_factory=list)  # numbered as the frames' and --write's
    written: list[Written] = field(default_factory=list)  # --write's files kept, oldest first
    linktype_frames: Counter[int] = field(default_factory=Counter)


def open_source(s: LiveSettings, decoding: Decoding) -> LiveSource:
    """The capture source, opened and checked (interface, permission, filter): errors come here,
    before anything is printed. `--reader dumpcap` captures with dumpcap, as pyshark would."""
    return open_interface(list(s.ifaces), decoding, "dumpcap" if s.reader == "dumpcap" else "scapy", s.bpf,
                          s.snaplen, s.count, s.write, s.write_rotation)


def _ifaces_gone(s: LiveSettings) -> str | None:
    """Why one of the interfaces named cannot capture any more, or None (`any` has no end)."""
    return next((why for iface in s.ifaces if iface != "any" and (why := _iface_gone(iface))), None)


def _iface_gone(iface: str) -> str | None:
    """Why the interface cannot capture any more, or None (Linux sysfs)."""
    try:
        with open(f"/sys/class/net/{iface}/flags") as fh:
            flags = int(fh.read().strip(), 16)
    except FileNotFoundError:
        return f"interface {iface} disappeared"
    except (OSError, ValueError):
        return None
    return None if flags & IFF_UP else f"interface {iface} went down"


class _Stop:
    """SIGINT and SIGTERM end the capture (cleanly) instead of the process."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""
        self.saved: dict[int, object] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, sig: int, _frame: FrameType | None) -> None:
        self.reason = "interrupted (Ctrl-C)" if sig == signal.SIGINT else "terminated (SIGTERM)"
        self.event.set()

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def run(s: LiveSettings, options: Options, out: TextIO, err: TextIO, every: Rewriter[LiveResult] | None = None) -> LiveResult:
    engine = Engine(options)
    decoding = Decoding(ReaderKind.auto, engine.contexts)
    source = open_source(s, decoding)
    engine.track_changes()
    name = os.path.basename(s.write) if s.write else f"{s.iface} (live)"
    tracker = Tracker(out if s.jsonl else None, name, s.keep_rows)
    tracker.points = engine.contexts.points
    if s.write_rotation is not None:
        tracker.files = lambda: ([os.path.basename(f.path) for f in source.frames.written],
                                 [f.first_frame for f in source.frames.written])
    view = View(err, options, s.view)
    started = time.time()
    kernel = KernelSide(list(s.ifaces), s.bpf, started) if s.kernel else None
    tcp = 0
    most: dict[str, int] = {"bytes": 0, "live_tuples": 0}

    def status(now: float) -> Status:
        stats = engine.table.stats()
        for k in most:
            most[k] = max(most[k], stats[k])
        return Status(s.iface, started, source.counts, tcp, stats["bytes"], stats["live_tuples"],
                      kernel.lines(tracker.t, source.counts) if kernel else [])

    def so_far() -> LiveResult:
        """The result as a stop now would give it: for --every's forked child only, since
        `finish` empties the engine (live/every.py)."""
        now = time.time()
        tracker.out = None  # the parent's JSON lines are not written again
        for cols in engine.finish():
            tracker.final(cols, now, Event.stopped)
        return result_of(now, "still running (--every)", [])

    def result_of(now: float, reason: str, kernel_lines: list[str]) -> LiveResult:
        result = LiveResult(s, started, now, reason, source.counts, tcp, decoding.skipped, tracker.t,
                            tracker.final_rows.parts() if tracker.final_rows is not None else [],
                            engine.contexts.points, source.frames.linktype, source.info.first_ts, source.info.last_ts,
                            most, decoding.handed_off, decoding.warnings(), kernel_lines)
        result.interfaces, result.written = list(source.frames.interfaces), source.frames.written
        result.linktype_frames = source.info.linktype_frames
        return result

    def step(segments: Segments | None, now: float) -> None:
        nonlocal tcp
        if segments is not None:
            packets, data = segments
            tcp += len(packets)
            for cols in engine.feed(packets, data, now=now):
                tracker.final(cols, now, Event.retired)
        else:
            for cols in engine.feed(_NO_PACKETS, _NO_DATA, now=now):
                tracker.final(cols, now, Event.retired)
        tracker.provisional(engine.provisional(), now)
        tracker.tick(now)
        tracker.flush()

    reason = ""
    with _Stop() as stop:
        source.frames.start()
        deadline = None if s.duration_s is None else time.monotonic() + s.duration_s
        next_check = time.monotonic() + IFACE_CHECK_S
        try:
            while True:
                wait = BATCH_S if deadline is None else max(0.0, min(BATCH_S, deadline - time.monotonic()))
                stop.event.wait(wait)
                now = time.time()
                step(source.take(), now)
                source.frames.refresh_counts()
                if kernel is not None:
                    kernel.tick(now, tracker.t, out if s.jsonl else None)
                view.refresh(status(now), tracker.t, now)
                if every is not None:
                    every.tick(so_far)
                if stop.event.is_set():
                    reason = stop.reason
                elif source.frames.stopped.is_set():
                    reason = source.frames.stop_reason or f"{s.count:,} frames captured (--count)"
                elif deadline is not None and time.monotonic() >= deadline:
                    reason = f"{s.duration_s:g} s elapsed (--duration)"
                elif time.monotonic() >= next_check:
                    next_check = time.monotonic() + IFACE_CHECK_S
                    reason = _ifaces_gone(s) or ""
                if reason:
                    break
        finally:
            source.frames.stop()
    now = time.time()
    step(source.take(), now)  # what arrived before the stop
    view.refresh(status(now), tracker.t, now, force=True)
    kernel_lines = kernel.stop(now, tracker.t, source.counts, out if s.jsonl else None) if kernel else []
    for cols in engine.finish():
        tracker.final(cols, now, Event.stopped)
    tracker.flush()
    source.frames.close()
    result = result_of(now, reason, kernel_lines)
    if tracker.final_rows is not None:
        tracker.final_rows.close()
    return result


_NO_PACKETS = Packets.empty()
_NO_DATA = np.zeros(0, np.uint8)


def analysis_of(r: LiveResult, options: Options) -> Analysis:
    """The final rows as an `Analysis`, as `analyze` would give for the --write file."""
    path = r.written[0].path if r.written else r.settings.write or f"{r.settings.iface} (live)"
    info = CaptureInfo(path=path, format="pcapng" if r.settings.write else "live", frames=r.counts.frames,
                       linktype_frames=_linktype_frames(r), first_ts=r.first_ts, last_ts=r.last_ts)
    if r.settings.write:
        info.interfaces = [Interface(i.linktype, i.snaplen, i.name, NS_PER_S) for i in r.interfaces] or [
            Interface(r.linktype, r.settings.snaplen, r.settings.iface, NS_PER_S)]
    if r.counts.kernel_drops or r.counts.analyzer_drops:
        info.warnings.append(f"{r.counts.kernel_drops:,} frames dropped by the kernel, {r.counts.analyzer_drops:,} "
                             "by the analyzer (live capture)")
    # A rotation's files: the counts are the capture's, on its first file (the report's ladders
    # read every file, frame numbers running on).
    rest = [CaptureInfo(path=f.path, format="pcapng", interfaces=info.interfaces) for f in r.written[1:]]
    for file, written in zip([info, *rest], r.written):
        _as_written(file, written)
        file.frames_before = written.first_frame
    summary = CaptureSummary(files=[info, *rest], tcp_packets=r.tcp_packets, skipped=r.skipped,
                             handed_off=r.handed_off, reader_warnings=r.reader_warnings)
    flows, summary.copies = concat_rows(r.rows, r.points)
    return Analysis(flows, summary, options)


def _as_written(info: CaptureInfo, written: Written) -> None:
    """What the writer knows of a file: its size and hash as written so far (an --every child's:
    at the fork, while the file goes on growing), and its marks, which the report's ladders
    read by (report/ladder.py)."""
    info.size_bytes = written.size if written.size is not None else _size(written.path)
    info.sha256, info.marks = written.sha256, list(written.marks)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:  # a rotation's file deleted since (--write-files)
        return 0


def _linktype_frames(r: LiveResult) -> Counter[int]:
    """Frames by link type (a result made while running has none: all of the first interface's)."""
    return Counter(r.linktype_frames) or Counter({r.linktype: r.counts.frames})


def summary_lines(r: LiveResult) -> list[str]:
    """What the capture saw, at the stop: frames, drops, state kept, connections by close kind
    and closer, notable flows."""
    c, t = r.counts, r.tallies
    lines_ = [f"{r.settings.iface}: {c.frames:,} frames, {r.tcp_packets:,} TCP segments in {r.ended - r.started:,.1f} s; "
              f"stopped: {r.stop_reason}",
              f"dropped: {c.kernel_drops:,} frames by the kernel, {c.analyzer_drops:,} by the analyzer",
              f"state kept at most: {r.state['live_tuples']:,} connections (4-tuples), {r.state['bytes'] / 1e6:,.1f} MB",
              f"{closes_text(t.closes)}",
              f"{sum(t.closes.values()):,} connections (incarnations) written; "
              f"TIME_WAIT on client/server: {t.time_wait_total['client'] + t.time_wait_total['both']:,}/"
              f"{t.time_wait_total['server'] + t.time_wait_total['both']:,}"]
    if t.closes:
        lines_.append("")
        lines_.append("close kind        connections  client closed  server closed  both")
        for kind in KINDS:
            k = sum(t.closes[(kind, cl)] for cl in CLOSERS)
            if k:
                lines_.append(f"{kind:<17} {k:>11,}  {t.closes[(kind, 'client')]:>13,}  {t.closes[(kind, 'server')]:>13,}  "
                              f"{t.closes[(kind, 'both')]:>4,}")
    if t.notable_total:
        lines_.append("")
        lines_.append("notable: " + ", ".join(f"{label} {k:,}" for label, k in t.notable_total.most_common()))
    if r.kernel_lines:
        lines_ += ["", *r.kernel_lines]
    return lines_
