"""Capture paths -> an `Analysis`: the per-flow table and what was learnt about the captures.

Several paths are read as one continuous capture when they are pieces of one (each starts
where the previous ended, as `tcpdump -C/-G` rotation writes them), else each on its own.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .carriers import Contexts, Point
from .copies import SetAside, set_aside
from .decode import LINKTYPE_NAMES
from .engine import Engine
from .errors import UsageError
from .options import Options, OsProfile, ReaderKind
from .packed import Held, pack, unpack
from .present import FlowColumns, joined
from .read import CaptureInfo, open_capture, time_span
from .rows import ROWS_PER_BATCH, arrow_batches, arrow_table, dataframe
from .schema import COLUMN_NAMES, FLOW_COLUMNS, INTERNAL_COLUMNS, POINT_COLUMNS, TABLES
from .source import Decoding, open_source
from .timewait import HostViews, host_views
from .verdicts import EVIDENCE_LABELS, RUNS_ON_NOTE, Columns

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

Progress = Callable[[int, int], None]  # (bytes read so far, total bytes)


@dataclass(frozen=True, slots=True)
class CaptureLoss:
    """Capture loss over the run (docs/rules.md "Honesty about the capture point"): bytes the
    peers acknowledged that the capture never saw, and the connections missing any."""

    bytes: int = 0
    connections: int = 0

    @classmethod
    def of(cls, columns: Mapping[str, npt.NDArray[Any]]) -> CaptureLoss:
        lost = np.asarray(columns["capture_loss_bytes"], np.float64)  # NaN where one-sided: not judged
        return cls(int(np.nansum(lost)), int(np.count_nonzero(lost > 0)))


@dataclass(frozen=True, slots=True)
class JoinedPoints:
    """Two captures of one path joined into one analysis (points/join.py, docs/rules.md "Two
    capture points"): the first point's clock is the analysis's."""

    names: tuple[str, str]  # the files of the first point's capture, then the other's
    offset_s: float  # the other's clock minus the first's
    uncertainty_s: float  # half the width of the interval the offset lies in (NaN: unknown)
    segments: int  # seen at both points: what the offset rests on
    both: int  # connections seen at both points
    only: tuple[int, int]  # connections seen at one point only, each point's
    first_nearer_client: int  # connections whose client the first point is nearer
    lost: dict[str, Counter[str]]  # "c2s" / "s2c" -> what the segments were -> lost between the points


@dataclass(slots=True)
class CaptureSummary:
    """What was read: per file, and the counts of what was skipped and why."""

    files: list[CaptureInfo] = field(default_factory=list)
    tcp_packets: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    continuous: bool = True  # several files read as one capture
    bytes_total: int = 0  # size of all the files, for progress
    bytes_before: int = 0  # size of the files read completely
    reader: str = ReaderKind.auto.value  # --reader
    handed_off: Counter[str] = field(default_factory=Counter)  # auto: frames given to scapy/tshark, by kind
    carried_in: dict[int, str] = field(default_factory=dict)  # ctx >= 4096 -> the carrier it numbers
    reader_warnings: list[str] = field(default_factory=list)
    copies: SetAside = field(default_factory=SetAside)  # connections seen at several points: the copies dropped
    joined: list[JoinedPoints] = field(default_factory=list)  # captures of one path joined (points/join.py)
    cluster: str = ""  # where it ran when not in this process ("a local Dask cluster of 2 workers")
    loss: CaptureLoss = field(default_factory=CaptureLoss)  # set with the flows (Analysis)

    @property
    def frames(self) -> int:
        return sum(f.frames for f in self.files)

    @property
    def file_captures(self) -> list[int]:
        """Which capture of the run each file is part of (the rows' `capture`): files that
        continue each other are one, whose frame numbers run on across them; each other starts
        from 1."""
        return [f.capture for f in self.files]

    @property
    def first_ts(self) -> float | None:
        return time_span(self.files)[0]

    @property
    def last_ts(self) -> float | None:
        return time_span(self.files)[1]

    @property
    def link_types(self) -> dict[str, int]:
        total: Counter[int] = Counter()
        for f in self.files:
            total.update(f.linktype_frames)
        return {f"{k} ({LINKTYPE_NAMES.get(k, 'unknown')})": v for k, v in sorted(total.items())}

    @property
    def warnings(self) -> list[str]:
        out = []
        for f in self.files:
            out += [f"{f.path}: {w}" for w in f.warnings]
            if f.damage is not None:
                out.append(f"{f.damage}; analyzed up to there")
        out += self.reader_warnings
        out += [f"{v:,} frames skipped: {k}" for k, v in self.skipped.most_common() if v]
        return out


class Analysis:
    """The result of `analyze`: `.flows` (one row per incarnation) and `.capture` (metadata)."""

    def __init__(self, columns: FlowColumns, capture: CaptureSummary, options: Options) -> None:
        self.columns = columns
        self.capture = capture
        capture.loss = CaptureLoss.of(columns)
        self.options = options
        self._host_views: HostViews | None = None
        self._arrow: dict[str, pa.Table] = {}
        self._frames: dict[str, pd.DataFrame] = {}

    def __len__(self) -> int:
        return len(self.columns["incarnation"])

    @property
    def flows(self) -> pd.DataFrame:
        """The per-flow table with the schema's dtypes (categoricals, nullable ints)."""
        return self.dataframe("flows")

    @property
    def host_views(self) -> HostViews:
        """TIME_WAIT as a resource (docs/rules.md "Host-level views"), as numpy tables and
        findings; computed on first use."""
        if self._host_views is None:
            self._host_views = host_views(self.columns, self.capture.first_ts, self.capture.last_ts, self.options)
        return self._host_views

    def table(self, name: str) -> pa.Table:
        """Table `name` of schema.TABLES as Arrow, made once: what every file and DataFrame is
        written from."""
        if name not in self._arrow:
            self._arrow[name] = arrow_table(self._columns_of(name), TABLES[name])
        return self._arrow[name]

    def batches(self, name: str, rows: int = ROWS_PER_BATCH) -> Iterator[pa.Table]:
        """`table(name)` in slices of `rows` rows, each made as it is read: a file is written
        from them without the whole table in Arrow at once."""
        return arrow_batches(self._columns_of(name), TABLES[name], rows)

    def _columns_of(self, name: str) -> Mapping[str, npt.NDArray[Any]]:
        if name == "flows":
            return self.columns
        v = self.host_views
        return {"hosts": v.hosts_table, "destinations": lambda: v.tables.destinations,
                "servers": lambda: v.tables.servers, "findings": v.findings_table}[name]()

    def dataframe(self, name: str) -> pd.DataFrame:
        """Table `name` as pandas, made once."""
        if name not in self._frames:
            self._frames[name] = dataframe(self.table(name))
        return self._frames[name]

    @property
    def hosts(self) -> pd.DataFrame:
        """Per host: connections, who closed first, TIME_WAIT held (total, peak, when, with whom)."""
        return self.dataframe("hosts")

    @property
    def destinations(self) -> pd.DataFrame:
        """Per client -> server endpoint: ephemeral ports held, rates, time to exhaustion."""
        return self.dataframe("destinations")

    @property
    def servers(self) -> pd.DataFrame:
        """Per server endpoint: shares of who closed first, the server's TIME_WAIT, the cause."""
        return self.dataframe("servers")

    @property
    def findings(self) -> pd.DataFrame:
        """Plain-language findings with severity and advice, most severe first."""
        return self.dataframe("findings")

    def time_wait_series(self, host: str) -> pd.DataFrame:
        """TIME_WAIT sockets held by `host` ("198.18.0.2"), or by the server of one endpoint
        ("198.18.0.2:8080"), as a step series: `time_wait` holds from `ts` until the next row."""
        import pandas as pd

        ts, count = self.host_views.series(host)
        return pd.DataFrame({"ts": ts, "time_wait": count})


def _empty_columns() -> Columns:
    out: Columns = {}
    for c in FLOW_COLUMNS:
        kind = c.dtype if isinstance(c.dtype, str) else "category"
        out[c.name] = np.zeros(0, {"Float64": np.float64, "Int64": np.int64, "boolean": bool}.get(kind, object))
    out.update(close_cause=np.zeros(0, np.int8), first_frame=np.zeros(0, np.int64), last_frame=np.zeros(0, np.int64),
               file_frames=np.zeros((0, 2), np.int64),
               evidence=np.zeros((0, len(EVIDENCE_LABELS)), np.int64), note_bits=np.zeros(0, np.int64),
               capture=np.zeros(0, np.int64), ctx=np.zeros(0, np.uint32), first_seq=np.zeros((0, 2), np.int64))
    return out


def concat_rows(slices: Sequence[Mapping[str, Held]], points: Mapping[int, Point]) -> tuple[FlowColumns, SetAside]:
    """The rows of all slices (packed or not), in time order, as one table, with the copies of
    connections seen at several points set aside (copies.py)."""
    names = COLUMN_NAMES + list(INTERNAL_COLUMNS)
    parts: list[dict[str, Held]] = [dict(s) for s in slices]  # FlowColumns takes the columns out as it reads them
    if not parts:
        return FlowColumns([dict(_empty_columns())], names, points=points), SetAside()
    order = np.lexsort((joined(parts, "first_frame"), joined(parts, "first_ts")))
    if not any(unpack(p["ctx"]).any() for p in parts):  # one point: nothing can be a copy
        return FlowColumns(parts, names, order, points), SetAside()
    whole = {k: joined(parts, k)[order] for k in parts[0]}
    keep, report = set_aside(whole, points)
    return FlowColumns([{k: v[keep] for k, v in whole.items()}], names, points=points), report


# A rotated piece may start a little before the previous one ended: tcpdump writes buffered
# packets with their capture time after switching files.
ROTATION_SLACK_S = 1.0


def _first_ts(path: str) -> float | None:
    """The first packet's timestamp, reading as little of the file as possible."""
    reader = open_capture(path, 1 << 16)
    try:
        for batch in reader:
            if len(batch):
                return float(batch.ts[0])
        return None
    finally:
        reader.close()


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:  # reported with a proper message when the file is opened
        return 0


@dataclass(slots=True)
class _Capture:
    """Files read as one capture: one engine, frame numbers running on across the files."""

    engine: Engine[dict[str, Held]]  # rows packed on the judging thread, to be held until the run ends
    index: int = 0  # which capture of the run
    names: list[str] = field(default_factory=list)  # file names, in reading order
    first_frames: list[int] = field(default_factory=list)  # frame number before each file's first
    frames: int = 0

    def tag(self, part: dict[str, Held]) -> dict[str, Held]:
        """A judged slice (packed), its files named."""
        named = name_files({name: unpack(part[name]) for name in ("first_frame", "last_frame", "note_bits")},
                           self.names, self.first_frames, self.index)
        part.update(pack({name: named[name] for name in ("capture_file", "capture", "file_frames", "note_bits",
                                                          *POINT_COLUMNS)}))
        return part


def name_files(part: Columns, names: list[str], first_frames: list[int], capture: int) -> Columns:
    """Name the file holding each row's first segment (`first_frames`: frames before each file)
    and the capture of the run it belongs to; give the row's first and last frame in that file
    as the file numbers them (`file_frames`: display filters are written from them), and note
    a row running on past the file's end (where `note_bits` are given)."""
    starts = np.array(first_frames, np.int64)
    at = np.maximum(np.searchsorted(starts, part["first_frame"], side="left") - 1, 0)
    # A file ends where the next begins. The file being read has no end yet: a row first seen in
    # it has no later frame than those read so far, all in it.
    ends = np.append(starts[1:], np.iinfo(np.int64).max)[at]
    before, last = starts[at], np.asarray(part["last_frame"], np.int64)
    first = np.asarray(part["first_frame"], np.int64)
    part["capture_file"] = np.array(names, dtype=object)[at]
    part["capture"] = np.full(len(at), capture, np.int64)
    # One point until captures of one path are joined (points/join.py): the columns that say so empty.
    part["seen_at"], part["lost_between"] = np.full(len(at), None, object), np.full(len(at), None, object)
    for name in ("clock_offset_s", "lost_between_c2s", "lost_between_s2c"):
        part[name] = np.full(len(at), np.nan)
    part["file_frames"] = np.stack([first - before, np.minimum(last, ends) - before], axis=1)
    if "note_bits" in part:
        part["note_bits"] = np.asarray(part["note_bits"], np.int64) | (last > ends).astype(np.int64) << RUNS_ON_NOTE
    return part


def analyze(path: str | list[str], options: Options | None = None, progress: Progress | None = None,
            points: bool = False, **settings: Any) -> Analysis:
    """Analyze one capture, or several pieces of one, into an `Analysis`. With `points`, each
    file is a capture of its own, in the order given (the same traffic at several points of its
    path, for points.join_points: clocks apart by more than a file's span would otherwise make
    the files look like pieces of one capture, the second starting where the first ended).

    `settings` are the fields of `Options` (os="macos", time_wait_s=30, ...), for convenience.
    """
    paths = [path] if isinstance(path, str) else list(path)
    if not paths:
        raise UsageError("no capture given")
    options = options or Options()
    if settings:
        if "os" in settings:
            settings["os"] = OsProfile(settings["os"])
        if isinstance(settings.get("port_range"), str):
            settings["port_range"] = Options.parse_port_range(settings["port_range"])
        if isinstance(settings.get("reader"), str):
            if settings["reader"] not in ReaderKind.__members__:
                raise UsageError(f"reader {settings['reader']!r}: choose from {', '.join(ReaderKind)}")
            settings["reader"] = ReaderKind(settings["reader"])
        try:
            options = replace(options, **settings)
        except TypeError as e:
            raise UsageError(str(e)) from None
    # Pieces of one capture (tcpdump -C/-G rotation) are read in time order as one capture, each
    # starting where the previous ended; a file starting earlier than that is a capture of its
    # own, read with a fresh engine and frame numbers from 1.
    starts = [(_first_ts(p), i, p) for i, p in enumerate(paths)] if len(paths) > 1 else [(None, 0, paths[0])]
    ordered = starts if points else sorted(starts, key=lambda s: (s[0] is None, s[0] or 0.0, s[1]))
    summary = CaptureSummary(bytes_total=sum(_size(p) for p in paths), reader=options.reader.value)
    contexts = Contexts()  # tunnels, numbered alike in every file of the run
    decoding = Decoding(options.reader, contexts, summary.skipped)
    aside = (os.cpu_count() or 1) > 1  # judge on a second core while this one reads and feeds
    capture = _Capture(Engine(options, contexts, aside, pack))
    parts: list[dict[str, Held]] = []
    last_ts: float | None = None
    for first_ts, _, path_ in ordered:
        if (points and summary.files) or (last_ts is not None and first_ts is not None
                                          and first_ts < last_ts - ROTATION_SLACK_S):
            parts += [capture.tag(p) for p in capture.engine.finish()]
            capture = _Capture(Engine(options, contexts, aside, pack), capture.index + 1)
            summary.continuous = False
        parts += [capture.tag(p) for p in _run_file(path_, capture, summary, options, progress, decoding)]
        last_ts = summary.files[-1].last_ts if summary.files[-1].last_ts is not None else last_ts
    parts += [capture.tag(p) for p in capture.engine.finish()]
    summary.carried_in = contexts.described()
    summary.handed_off.update(decoding.handed_off)
    summary.reader_warnings += decoding.warnings()
    flows, summary.copies = concat_rows(parts, contexts.points)
    return Analysis(flows, summary, options)


def _run_file(path: str, capture: _Capture, summary: CaptureSummary, options: Options,
              progress: Progress | None, decoding: Decoding) -> Iterator[dict[str, Held]]:
    # Frame numbers run on across the pieces of one capture: the engine orders by them.
    frames_before = capture.frames
    source = open_source(path, decoding, options.chunk_bytes, frames_before)
    info = source.info
    capture.names.append(os.path.basename(path))
    capture.first_frames.append(frames_before)
    info.frames_before, info.capture = frames_before, capture.index
    summary.files.append(info)
    for packets, data in source:
        capture.frames = frames_before + info.frames
        summary.tcp_packets += len(packets)
        yield from capture.engine.feed(packets, data, now=info.last_ts)
        if progress is not None:
            progress(summary.bytes_before + source.position(), summary.bytes_total)
    # The next file's numbers start after this one's last frame: taken once the file is read, as
    # no reader need count a batch before handing it over.
    capture.frames = frames_before + info.frames
    summary.bytes_before += info.size_bytes
    if progress is not None:
        progress(summary.bytes_before, summary.bytes_total)
