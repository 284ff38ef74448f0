"""Judged rows, provisional and final -> JSON lines (--jsonl) and the live counts the terminal
view shows: connections closed by kind and closer, TIME_WAIT held now per host and per client ->
destination, the latest notable flows.

An incarnation is written once its teardown is over (both FINs acknowledged, or reset), then
again, with `"update": true`, whenever a later event changes its row or its TIME_WAIT ends,
and once more if the final row differs from the last one written. To tell what changed, each
incarnation written keeps only a hash of its row until the engine hands out its final row.
"""

from __future__ import annotations

import heapq
import json
import math
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TextIO

import numpy as np

from ..analysis import name_files
from ..carriers import Point
from ..schema import COLUMN_NAMES, FLOW_COLUMNS
from ..present import flow_ids, text_columns
from ..timewait.tables import host_labels
from ..verdicts import Columns
from .kept import KeptRows

RATE_WINDOW_S = 10.0  # closes per second are averaged over this window
NOTABLE_KEPT = 8


class Event(StrEnum):
    """Why a JSON line was written (its `event` field)."""

    teardown = "teardown"  # the teardown is over: both FINs acknowledged, or reset
    changed = "changed"  # a later segment changed the row (retransmitted FIN, RST, reuse, ...)
    time_wait_ended = "time_wait_ended"  # the TIME_WAIT estimated for it has ended
    retired = "retired"  # never torn down, given up by the engine (unanswered, idle, FIN from one side)
    stopped = "stopped"  # the capture stopped: its state so far


@dataclass(slots=True)
class Shown:
    """What was written about one incarnation, until its final row."""

    digest: int
    tw_end: float  # NaN: no TIME_WAIT held
    holders: tuple[str, ...]  # hosts holding its TIME_WAIT
    destination: tuple[str, str, int] | None  # (client, server, port) when the client holds one
    counted: bool = False
    version: int = 0
    notable: frozenset[str] = frozenset()


@dataclass(slots=True)
class Tallies:
    closes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (close_kind, active_closer)
    time_wait: Counter[str] = field(default_factory=Counter)  # host label (vlan10/ip, c2/ip, ip) -> TIME_WAIT held now
    client_time_wait: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # destination -> held now
    time_wait_total: Counter[str] = field(default_factory=Counter)  # "client" / "server" holders
    notable_total: Counter[str] = field(default_factory=Counter)
    recent: deque[tuple[float, str, str, tuple[str, str, int]]] = field(default_factory=deque)  # (ts, kind, closer, dest)
    notable: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=NOTABLE_KEPT))
    written: int = 0
    updates: int = 0


def _notable(row: dict[str, Any]) -> frozenset[str]:
    found = set()
    if row["tw_assassination"]:
        found.add("TIME_WAIT assassinated")
    if (row["fin_retransmissions_client"] or 0) + (row["fin_retransmissions_server"] or 0):
        found.add("FIN retransmitted")
    if row["reuses_tuple_in_time_wait"]:
        found.add(f"4-tuple reused in TIME_WAIT ({row['reuse_verdict']})")
    if row["close_kind"] in ("rst", "fin_then_rst"):
        found.add(f"{row['close_kind']} by {row['first_rst_by']} ({row['rst_class']})")
    return frozenset(found)


# Without --jsonl only these columns are looked at: what the view counts, and enough to see a
# change (any later segment changes a packet count or last_ts). Converting every column of
# every row costs more than the verdicts.
VIEW_COLUMNS = ("incarnation", "client_ip", "client_port", "server_ip", "server_port", "vlan", "close_kind",
                "active_closer", "time_wait_on", "time_wait_end_ts", "tw_assassination", "fin_retransmissions_client",
                "fin_retransmissions_server", "reuses_tuple_in_time_wait", "reuse_verdict", "first_rst_by",
                "rst_class", "packets_c2s", "packets_s2c", "last_ts")
_BY_NAME = {c.name: c for c in FLOW_COLUMNS}


def _plain(cols: Columns, names: tuple[str, ...] | list[str]) -> list[list[Any]]:
    """The columns `names` as lists of JSON-ready values (None for empty)."""
    out = []
    for c in (_BY_NAME[name] for name in names):
        x = cols[c.name]
        if c.dtype == "Float64" or (c.dtype == "Int64" and x.dtype.kind == "f"):
            vals: list[Any] = x.tolist()
            conv = int if c.dtype == "Int64" else float
            out.append([None if v != v else conv(v) for v in vals])
        elif x.dtype == object:
            out.append([None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in x.tolist()])
        else:
            out.append(x.tolist())
    return out


class Tracker:
    def __init__(self, out: TextIO | None, capture_file: str, keep_rows: bool) -> None:
        self.out = out
        self.capture_file = capture_file
        # With --write-size: the files written and the frames before each, to name the file
        # holding each row's first segment as `analyze` of the set does.
        self.files: Callable[[], tuple[list[str], list[int]]] | None = None
        self.final_rows = KeptRows() if keep_rows else None  # final rows, for -o
        self.points: Mapping[int, Point] = {}  # the engine's carriers, which the display filters tell apart
        # By flow_id, with or without --jsonl: its carrier prefix keeps one 4-tuple in two
        # tunnels or VLANs two connections, as the tables count them.
        self.shown: dict[str, Shown] = {}
        self.ends: list[tuple[float, int, str]] = []  # heap: (TIME_WAIT end, version, flow_id)
        self.versions = 0  # each row seen gets a new one: the heap's entries of older rows are void
        self.t = Tallies()

    def _rows(self, cols: Columns) -> tuple[list[str], list[dict[str, Any]], list[tuple[str, str]]]:
        """Each row's flow_id, its values as a dict, and its client's and server's host labels
        (with the carrier's prefix, vlan10/ or c2/, as the host tables name hosts)."""
        hosts = list(zip(host_labels(np.asarray(cols["client_ip"], object), cols["ctx"]).tolist(),
                         host_labels(np.asarray(cols["server_ip"], object), cols["ctx"]).tolist()))
        name_files(cols, *(self.files() if self.files is not None else ([self.capture_file], [0])), 0)
        if self.out is None:
            rows = [dict(zip(VIEW_COLUMNS, values)) for values in zip(*_plain(cols, VIEW_COLUMNS))]
            return flow_ids(cols).to_pylist(), rows, hosts
        cols.update(text_columns(cols, self.points))
        return cols["flow_id"].tolist(), [dict(zip(COLUMN_NAMES, v)) for v in zip(*_plain(cols, COLUMN_NAMES))], hosts

    def provisional(self, cols: Columns | None, now: float) -> None:
        """Rows whose teardown is over, as they stand now."""
        if cols is None:
            return
        for flow_id, row, hosts in zip(*self._rows(cols)):
            self._see(flow_id, row, hosts, now, Event.teardown)

    def final(self, cols: Columns, now: float, first_event: Event) -> None:
        """Rows nothing can change any more: written if new or changed, then forgotten."""
        if not len(cols["incarnation"]):
            return
        for flow_id, row, hosts in zip(*self._rows(cols)):
            self._see(flow_id, row, hosts, now, first_event)
            shown = self.shown.pop(flow_id)
            if shown.counted:
                self._count(shown, -1)
        if self.final_rows is not None:
            self.final_rows.add(cols)

    def _see(self, flow_id: str, row: dict[str, Any], hosts: tuple[str, str], now: float, first_event: Event) -> None:
        digest = hash(tuple(row.values()))
        old = self.shown.get(flow_id)
        if old is not None and old.digest == digest:
            return
        tw_end = row["time_wait_end_ts"]
        holder = row["time_wait_on"]
        client, server = hosts
        holders = () if tw_end is None else {
            "client": (client,), "server": (server,), "both": (client, server)}.get(holder, ())
        dest = (client, server, row["server_port"])
        shown = Shown(digest, math.nan if tw_end is None else tw_end, holders,
                      dest if holder in ("client", "both") else None)
        notable = _notable(row)
        shown.notable = notable
        if old is None:
            self.t.closes[(row["close_kind"], row["active_closer"])] += 1
            self.t.recent.append((now, row["close_kind"], row["active_closer"], dest))
            if holders:
                self.t.time_wait_total[holder] += 1
            event = first_event
        else:
            event = Event.changed
            if old.counted:
                self._count(old, -1)
        for label in sorted(notable - (old.notable if old is not None else frozenset())):
            self.t.notable.append((now, label, flow_id))
            self.t.notable_total[label.split(" (")[0]] += 1
        self.versions += 1
        shown.version = self.versions
        self.shown[flow_id] = shown
        if holders and shown.tw_end > now:
            self._count(shown, 1)
            heapq.heappush(self.ends, (shown.tw_end, shown.version, flow_id))
        self._write(row, event, old is not None)

    def _count(self, shown: Shown, sign: int) -> None:
        """Count (or uncount) its TIME_WAIT for its holders and, when the client holds one, for
        the client's destination."""
        for host in shown.holders:
            self.t.time_wait[host] += sign
            if not self.t.time_wait[host]:
                del self.t.time_wait[host]
        if shown.destination is not None:
            self.t.client_time_wait[shown.destination] += sign
            if not self.t.client_time_wait[shown.destination]:
                del self.t.client_time_wait[shown.destination]
        shown.counted = sign > 0

    def tick(self, now: float) -> None:
        """TIME_WAITs that ended by `now`: no longer counted, and written as an update."""
        while self.ends and self.ends[0][0] <= now:
            _, version, flow_id = heapq.heappop(self.ends)
            shown = self.shown.get(flow_id)
            if shown is None or shown.version != version or not shown.counted:
                continue
            self._count(shown, -1)
            if self.out is not None:
                self.out.write(json.dumps({"flow_id": flow_id, "update": True, "event": Event.time_wait_ended.value,
                                           "time_wait_end_ts": shown.tw_end}) + "\n")
                self.t.updates += 1
        while self.t.recent and self.t.recent[0][0] < now - RATE_WINDOW_S:
            self.t.recent.popleft()

    def _write(self, row: dict[str, Any], event: Event, update: bool) -> None:
        if update:
            self.t.updates += 1
        else:
            self.t.written += 1
        if self.out is None:
            return
        line = {"flow_id": row["flow_id"], "update": update, "event": event.value}
        line.update(row)
        self.out.write(json.dumps(line) + "\n")

    def flush(self) -> None:
        if self.out is not None:
            self.out.flush()

    def kept(self) -> dict[str, int]:
        """State held for what was written: incarnations awaiting their final row."""
        return {"incarnations_written_not_final": len(self.shown), "time_wait_timers": len(self.ends)}
