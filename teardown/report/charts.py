"""Report tables -> the geometry of its charts, drawn as inline SVG by templates/charts.html.j2.

Charts are computed here rather than in the browser so they print, show without JavaScript,
and can be checked against the analysis tables in unit tests: every chart keeps the numbers it
draws (`value`, `peak`, `limit`) beside the pixels. Times on the axes are UTC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..present import endpoint
from ..rows import TableColumns
from ..schema import CloseKind
from ..times import CLOCK, utc
from ..timewait.occupancy import window_peaks

Columns = Mapping[str, npt.NDArray[Any]]  # a table's columns as numpy (rows.TableColumns)

BAR_WIDTH_PX = 330  # the longest bar; labels sit left of the bars (200 px), numbers right
PLOT = {"width": 760, "height": 250, "left": 64, "right": 16, "top": 14, "bottom": 34}  # fits A4 at 11 pt
POINTS = 600  # a series is cut to this many steps (the largest value of each stays): a pixel each
TOP_HOSTS = 4  # lines in the occupancy chart
TOP_DESTINATIONS = 3  # lines in the rate chart
TOP_SERVERS = 8  # bars in the who-closes-first chart
CEILING_MATTERS = 0.1  # draw the port-range ceiling when a peak reaches this share of it
CLOSE_KIND_TEXT = {
    CloseKind.fin: "orderly FIN exchange",
    CloseKind.simultaneous: "simultaneous close",
    CloseKind.rst: "aborted by RST",
    CloseKind.fin_then_rst: "FIN, then RST",
    CloseKind.refused: "refused (RST to SYN)",
    CloseKind.handshake_reset: "SYN-ACK answered by RST",
    CloseKind.unanswered: "unanswered SYN",
    CloseKind.unknown: "SYN, its answer not in the capture",
    CloseKind.open: "still open at capture end",
}  # a kind added to the schema before it has words here shows as its own name (close_kinds)
CLOSER_PARTS = [("server_closed_first_share", "server", "server first"),
                ("client_closed_first_share", "client", "client first"),
                ("simultaneous_share", "simultaneous", "simultaneous"),
                ("aborted_share", "rst", "aborted")]


@dataclass(frozen=True, slots=True)
class Part:
    key: str  # CSS class suffix
    label: str
    value: float  # a count, or a share for stacked bars
    x_px: float
    width_px: float


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    parts: list[Part]
    text: str  # the numbers, written right of the bar


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    bars: list[Bar]
    total: int
    unit: str  # what `total` counts
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css key, label)


def close_kinds(flows: Columns) -> BarChart:
    """Connections per close kind, in the schema's order; kinds that did not occur are left out."""
    counts = {k.value: int((flows["close_kind"] == k.value).sum()) for k in CloseKind}
    total = sum(counts.values())
    largest = max(counts.values(), default=0)
    text = {k.value: CLOSE_KIND_TEXT.get(k, k.value) for k in CloseKind}
    bars = [Bar(text[k], [Part(k, text[k], v, 0.0, _length(v, largest))], f"{v:,} · {percent(v / total)}")
            for k, v in counts.items() if v]
    return BarChart("How the connections ended", bars, total, "connections")


def who_closes_first(servers: TableColumns) -> BarChart | None:
    """Per server endpoint (the busiest first): shares closed first by the server, by the
    client, simultaneously, or aborted, stacked to the connections that closed."""
    closed = np.nan_to_num(np.asarray(servers["closed"], np.float64))
    rows = np.flatnonzero(closed > 0)
    rows = rows[np.argsort(-np.asarray(servers["connections"], np.float64)[rows], kind="stable")]
    if not len(rows):
        return None
    bars = []
    for r in rows[:TOP_SERVERS].tolist():
        row = servers.row(r)
        x = 0.0
        parts = []
        for column, key, label in CLOSER_PARTS:
            share = _float(row[column]) or 0.0
            width = round(BAR_WIDTH_PX * share, 1)
            if share > 0:
                parts.append(Part(key, label, share, x, max(width, 1.0)))
            x += width
        text = " · ".join(f"{p.label} {percent(p.value)}" for p in parts)
        bars.append(Bar(f"{endpoint(row['server_ip'], row['server_port'])} ({int(row['connections']):,})", parts, text))
    more = len(rows) - TOP_SERVERS
    title = "Who closes first, per server endpoint" + (f" (the {TOP_SERVERS} busiest of {len(rows)})" if more > 0 else "")
    return BarChart(title, bars, int(closed.sum()), "closed connections",
                    [(key, label) for _, key, label in CLOSER_PARTS])


def rate(per_second: float) -> str:
    """"470/s", "6,166/s", "0.83/s": as many digits as a small rate needs."""
    return f"{per_second:,.0f}/s" if per_second >= 10 else f"{per_second:.2g}/s"


def percent(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 or share == 0 else "<1%"


def _length(value: float, largest: float) -> float:
    """Bar length in pixels; a non-zero value always gets a visible sliver."""
    if largest <= 0 or value <= 0:
        return 0.0
    return max(2.0, round(BAR_WIDTH_PX * value / largest, 1))


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    path: str  # SVG path data
    peak: float  # the largest value drawn (equals the table's peak)
    peak_ts: float | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Limit:
    label: str
    value: float
    y_px: float


@dataclass(frozen=True, slots=True)
class LineChart:
    title: str
    lines: list[Line]
    limits: list[Limit]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    capture_end_px: float | None
    note: str = ""
    size: dict[str, int] = field(default_factory=lambda: dict(PLOT))


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def cut_steps(ts: Sequence[float] | npt.NDArray[np.float64], count: Sequence[float] | npt.NDArray[np.float64],
              start: float, end: float, points: int = POINTS) -> tuple[list[float], list[float]]:
    """A step series (count holds from ts[i] to ts[i+1]) as `points` steps over [start, end],
    each the largest value held anywhere in its slice, so peaks survive; then its last step."""
    t = np.asarray(ts, np.float64)
    c = np.asarray(count, np.float64)
    if len(t) <= points:
        return t.tolist(), c.tolist()
    edges = np.linspace(start, end, points + 1)
    held_at_edge = np.concatenate([[0.0], c])[np.searchsorted(t, edges[:-1], side="right")]
    slice_of = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, points - 1)
    inside = np.full(points, -np.inf)
    np.maximum.at(inside, slice_of, c)
    # The last step stays exact: a series ends where the last TIME_WAIT does, at zero.
    return [*edges[:-1].tolist(), float(t[-1])], [*np.maximum(held_at_edge, inside).tolist(), float(c[-1])]


class _Frame:
    """Data -> pixel mapping of one plot."""

    def __init__(self, x0: float, x1: float, y1: float) -> None:
        # A capture of one instant still gets a width; so does one whose times are so large
        # (a damaged pcapng's offset) that x0 + 1e-6 rounds back to x0.
        self.x0, self.span = x0, max(x1 - x0, 1e-6)
        self.x1 = x0 + self.span
        self.y1 = max(y1, 1.0)
        p = PLOT
        self.w = p["width"] - p["left"] - p["right"]
        self.h = p["height"] - p["top"] - p["bottom"]

    def x(self, t: float) -> float:
        return round(PLOT["left"] + self.w * (t - self.x0) / self.span, 1)

    def y(self, v: float) -> float:
        return round(PLOT["top"] + self.h * (1 - v / self.y1), 1)

    def steps(self, ts: Sequence[float], values: Sequence[float], until: float) -> str:
        if not len(ts):
            return ""
        out = [f"M{self.x(ts[0])},{self.y(0)}"]
        for i, (t, v) in enumerate(zip(ts, values)):
            nxt = ts[i + 1] if i + 1 < len(ts) else until
            out.append(f"L{self.x(t)},{self.y(v)}L{self.x(nxt)},{self.y(v)}")
        return "".join(out)

    def x_ticks(self) -> list[tuple[float, str]]:
        """Round instants (UTC clock times) across the plot."""
        span = self.span
        out = []
        for t in nice_ticks(self.x0, self.x1, 6):
            out.append((self.x(t), utc(t, CLOCK) if span >= 5 else utc(t, "%H:%M:%S.%f")[:-3]))
        return out

    def y_ticks(self) -> list[tuple[float, str]]:
        return [(self.y(v), f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}") for v in nice_ticks(0, self.y1, 4)]


def occupancy(hosts: Columns, series: dict[str, tuple[list[float], list[float]]],
              capture_start: float, capture_end: float, port_range: int) -> LineChart | None:
    """TIME_WAIT sockets held over time by the hosts with the highest peaks; the port-range
    ceiling where a peak comes near it (a client's TIME_WAITs hold its ephemeral ports)."""
    peak_at = {str(h): _float(ts) for h, ts in zip(hosts["host"].tolist(), hosts["time_wait_peak_ts"].tolist())}
    # Highest peak first; an empty peak last, as a sort that puts missing values last would.
    by_peak = np.argsort(-np.nan_to_num(np.asarray(hosts["time_wait_peak"], np.float64), nan=-np.inf), kind="stable")
    top = [h for h in np.asarray(hosts["host"], object)[by_peak].tolist() if h in series and series[h][0]][:TOP_HOSTS]
    if not top:
        return None
    end = max(max(series[h][0]) for h in top)
    peak = max(max(series[h][1]) for h in top)
    ceiling = peak >= CEILING_MATTERS * port_range
    last = max(end, capture_end)
    frame = _Frame(capture_start, last + 0.02 * (last - capture_start), max(peak, port_range if ceiling else 0) * 1.08)
    lines = []
    for h in top:
        ts, values = series[h]
        lines.append(Line(str(h), frame.steps(ts, values, frame.x1), max(values), peak_at[h], f"peak {max(values):,.0f}"))
    limits = [Limit(f"ephemeral ports: {port_range:,}", port_range, frame.y(port_range))] if ceiling else []
    note = "" if ceiling else f"The port-range ceiling ({port_range:,} ports per client and destination) is far above."
    return LineChart("TIME_WAIT sockets held, per host", lines, limits, frame.x_ticks(),
                     frame.y_ticks(), frame.x(capture_end), note)


def connection_rate(flows: Columns, destinations: TableColumns, capture_start: float,
                    capture_end: float) -> LineChart | None:
    """New connections per second in the whole capture (where it has several destinations: a
    scan spread over many ports shows only here), and toward the busiest destinations, against
    the rate their port range sustains when the client closes first (range ÷ TIME_WAIT length)."""
    if not len(destinations["client_ip"]):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        load = np.asarray(destinations["observed_rate_peak"], np.float64) / np.asarray(destinations["sustainable_rate"],
                                                                                      np.float64)
    ranked = np.argsort(-np.nan_to_num(load, nan=-np.inf), kind="stable")[:TOP_DESTINATIONS]
    top = [destinations.row(r) for r in ranked.tolist()]
    span = max(capture_end - capture_start, 1.0)
    width = max(1.0, span / 240)  # seconds per step: 1 s as the table's window, wider for long captures
    edges = capture_start + np.arange(0, span + width, width)
    lines, highest = [], 0.0
    series: list[tuple[Any, npt.NDArray[np.float64], float, float | None]] = []  # (destination or None: all)
    first_ts = np.asarray(flows["first_ts"], np.float64)
    if len(destinations["client_ip"]) > 1:  # the whole capture first: a burst or a scan spread over many ports shows here
        opened = first_ts[~np.asarray(flows["roles_inferred"], bool)]
        counts, _ = np.histogram(opened, bins=edges)
        peak, peak_ts = window_peaks(np.zeros(len(opened), np.int64), np.sort(opened), 1, 1.0)
        highest = max(float(counts.max(initial=0)) / width, float(peak[0]))
        series.append((None, counts / width, float(peak[0]), float(peak_ts[0]) if len(opened) else None))
    for d in top:
        mine = (flows["client_ip"] == d["client_ip"]) & (flows["server_ip"] == d["server_ip"]) \
            & (flows["server_port"] == d["server_port"])
        counts, _ = np.histogram(first_ts[mine], bins=edges)
        per_second = counts / width
        highest = max(highest, float(per_second.max(initial=0)), float(d["observed_rate_peak"]))
        series.append((d, per_second, float(d["observed_rate_peak"]), _float(d["observed_rate_peak_ts"])))
    sustainable = sorted({round(float(d["sustainable_rate"]), 2) for d in top})
    # A limit far above the data would flatten it to a line at zero: scale to the data and say so.
    drawn = [s for s in sustainable if s <= highest / CEILING_MATTERS]
    frame = _Frame(capture_start, capture_start + len(edges[:-1]) * width, max(highest, *drawn, 0.0) * 1.1)
    for d, per_second, peak_rate, peak_at in series:
        label = "all connections" if d is None else f"{d['client_ip']} → {endpoint(d['server_ip'], d['server_port'])}"
        lines.append(Line(label, frame.steps(edges[:-1].tolist(), per_second.tolist(), frame.x1), peak_rate, peak_at,
                          f"peak {rate(peak_rate)} in 1 s"))
    limits = [Limit(f"sustainable: {rate(s)}", s, frame.y(s)) for s in drawn]
    step = "1 s" if width == 1.0 else f"{width:,.1f} s"
    far = [rate(s) for s in sustainable if s not in drawn]
    above = f" The sustainable rate ({', '.join(far)}) is far above the peak, so not drawn." if far else ""
    return LineChart("New connections per second, against the sustainable rate", lines, limits, frame.x_ticks(), frame.y_ticks(), None,
                     f"Counted in {step} steps. Sustainable rate: ephemeral ports ÷ the client's TIME_WAIT length, "
                     f"when the client closes first.{above}")


def _float(v: Any) -> float | None:
    return None if v is None or v != v else float(v)  # empty: None, or NaN
