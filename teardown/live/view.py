"""Live counts -> the terminal view on stderr: redrawn in place a few times a second with plain
ANSI escapes when stderr is a terminal, else one status line every STATUS_EVERY_S seconds."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from typing import TextIO

from ..options import Options
from ..schema import CloseKind
from ..present import endpoint
from ..read.frames import Counts
from .rows import RATE_WINDOW_S, Tallies

REDRAW_EVERY_S = 0.25
STATUS_EVERY_S = 10.0
KINDS = tuple(k.value for k in CloseKind)
CLOSERS = ("client", "server", "both", "none")
TOP = 5


@dataclass(slots=True)
class Status:
    """Everything the view shows besides the tallies."""

    iface: str
    started: float
    counts: Counts
    tcp_packets: int
    state_bytes: int
    live_tuples: int
    kernel: list[str] = field(default_factory=list)  # the kernel's sockets beside the capture (live/kernel.py)


def _n(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 or x == int(x) else f"{x:,.1f}"


def lines(s: Status, t: Tallies, options: Options, now: float) -> list[str]:
    """The view's lines (no escapes)."""
    span = min(RATE_WINDOW_S, max(now - s.started, 1e-9))
    c = s.counts
    out = [f"teardown live on {s.iface}: {now - s.started:,.0f} s, {c.frames:,} frames ({s.tcp_packets:,} TCP), "
           f"dropped: {c.kernel_drops:,} by the kernel, {c.analyzer_drops:,} by the analyzer; "
           f"state kept: {s.live_tuples:,} tuples, {s.state_bytes / 1e6:,.1f} MB"]
    recent: dict[tuple[str, str], int] = {}
    for _, kind, closer, _ in t.recent:
        recent[(kind, closer)] = recent.get((kind, closer), 0) + 1
    out.append(f"closed per second (last {RATE_WINDOW_S:g} s) / total     " + "  ".join(f"{x:>14}" for x in CLOSERS))
    for kind in KINDS:
        if not any(t.closes[(kind, cl)] for cl in CLOSERS):
            continue
        cells = [f"{_n(recent.get((kind, cl), 0) / span)}/s {t.closes[(kind, cl)]:,}" for cl in CLOSERS]
        out.append(f"  {kind:<40} " + "  ".join(f"{x:>14}" for x in cells))
    tw_s = options.behaviour_of(options.os).time_wait_s
    busiest = t.time_wait.most_common(TOP)
    out.append("TIME_WAIT now (begun since the start): "
               + (", ".join(f"{host} {k:,}" for host, k in busiest) if busiest else "none"))
    rate: dict[tuple[str, str, int], int] = {}
    for _, _, _, dest in t.recent:
        rate[dest] = rate.get(dest, 0) + 1
    lo, hi = options.port_range
    size = hi - lo + 1
    dests = t.client_time_wait.most_common(3)
    if dests:
        out.append(f"port pressure (client ports held in TIME_WAIT of {size:,}; sustainable {size / tw_s:,.0f} new/s):")
        for (client, server, port), k in dests:
            out.append(f"  {client} -> {endpoint(server, port)}  {k:,} ({k / size:.1%}), {_n(rate.get((client, server, port), 0) / span)} new/s")
    out += s.kernel
    if t.notable:
        out.append("notable: " + "; ".join(f"{label}: {label_flow}" for _, label, label_flow in list(t.notable)[-4:]))
    return out


class View:
    def __init__(self, err: TextIO, options: Options, enabled: bool) -> None:
        self.err = err
        self.options = options
        self.enabled = enabled
        self.tty = enabled and err.isatty()
        self.drawn = 0
        self.last = 0.0

    def refresh(self, s: Status, t: Tallies, now: float, force: bool = False) -> None:
        if not self.enabled:
            return
        wall = time.monotonic()
        every = REDRAW_EVERY_S if self.tty else STATUS_EVERY_S
        if not force and wall - self.last < every:
            return
        self.last = wall
        text = lines(s, t, self.options, now)
        if not self.tty:
            c = s.counts
            tw = sum(t.time_wait.values())
            self.err.write(f"live: {now - s.started:,.0f} s, {c.frames:,} frames, {c.kernel_drops:,} dropped by the "
                           f"kernel, {c.analyzer_drops:,} by the analyzer; {sum(t.closes.values()):,} closed; "
                           f"TIME_WAIT now {tw:,}\n")
            self.err.flush()
            return
        # Back to the top of the last drawing, then each line over the old one; lines are cut
        # to the terminal's width, so none wraps and the count of lines to go back up holds.
        width = shutil.get_terminal_size().columns
        up = f"\x1b[{self.drawn}F" if self.drawn else ""
        body = "".join(f"\x1b[2K{line[:width - 1]}\n" for line in text)
        clear = "\x1b[J"  # the old drawing may have had more lines
        self.err.write(up + body + clear)
        self.err.flush()
        self.drawn = len(text)
