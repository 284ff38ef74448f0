"""Report data -> the one HTML file: Jinja2 templates with autoescaping, the stylesheet and the
script inlined, and the data for the script as JSON that cannot end its <script> element.

Nothing in the page asks for anything over the network: no fonts, no images, no links to
load. Text from the capture (file names, addresses, notes) reaches the page only through
autoescaped template variables or JSON read by the script and written with textContent.
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import numpy.typing as npt
from markupsafe import Markup

from .. import times
from ..analysis import CaptureLoss
from ..options import OS_BEHAVIOUR, OsProfile
from ..schema import FLOW_COLUMNS
from . import charts, ladder_svg, verdict
from .data import ReportData
from .facts import Facts
from .flags import FLAGS, LADDER_BITS, flag_bits
from .ladder import SEGMENT_BUDGET, pack
from .listing import LISTED_COLUMNS, Filters, filters_of, listing
from .reuse import as_drawn
from .table import DEFAULT_VISIBLE, Values, encode_flows, encode_values, help_of

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC_LADDERS = 6  # ladders drawn into the page itself: one per finding, the first flow of each


def script_json(data: Any) -> Markup:
    """JSON for a <script type="application/json"> element: `<`, `>` and `&` are written as
    \\u escapes, so no text from the capture can close the element or open a comment."""
    # No cycles to look for in data built here: not checking saves a fifth of the time.
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _asset(name: str, closing: str) -> Markup:
    text = (TEMPLATES / name).read_text()
    if closing in text.lower():
        raise ValueError(f"{name} contains {closing!r}, which would end its element early")
    return Markup(text)


# Filters the templates use to write numbers and times the same way everywhere.
def thousands(n: float) -> str:
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.1f}"


def utc(ts: float | None, with_date: bool = True) -> str:
    if ts is None:
        return "unknown"
    return times.utc(ts, "%Y-%m-%d %H:%M:%S.%f UTC" if with_date else "%H:%M:%S.%f")


def size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def seconds(s: float) -> str:
    if float(s).is_integer():
        return f"{s:,.0f} s"
    if s >= 120:
        return f"{s / 60:,.1f} min"
    if s >= 1:
        return f"{s:,.3f} s"
    return f"{s * 1e3:,.3f} ms"


def percent(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 or share == 0 else "<1%"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(thousands=thousands, utc=utc, size=size, seconds=seconds, percent=percent)
    return env


def _title(facts: Facts) -> str:
    names = [os.path.basename(f.path) for f in facts.files]
    return names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"


def page_data(data: ReportData, bits: npt.NDArray[np.int64] | None = None) -> dict[str, Any]:
    """What the page's scripts read: the table's columns, each flow's findings (`bits`, when
    the caller has them: flag_bits), the ladders."""
    first = data.facts.first_ts if data.facts.first_ts is not None else 0.0
    t0_us = int(round(first * 1e6))
    bits = flag_bits(data.columns) if bits is None else bits
    groups = [{"flag": f.name, "label": f.label, "bit": i} for i, f in enumerate(FLAGS)
              if f.ladder and (bits >> i & 1).any()]
    return {
        "t0_us": t0_us,
        "n": data.flows.num_rows,
        "columns": encode_flows(data.flows, data.columns, t0_us),
        "flags": {"names": [f.name for f in FLAGS], "labels": [f.label for f in FLAGS],
                  "bits": encode_values(Values.whole(bits.astype(np.int64)))},
        "visible": DEFAULT_VISIBLE,
        "ladders": pack(data.ladders),
        "featured": groups,
        "capture_last_ts": data.facts.last_ts,
        "csv_name": os.path.splitext(_title(data.facts))[0] + "-flows.csv",
        "files": {name: list(numbers) for name, numbers in data.facts.frame_numbering().items()},
    }


@dataclass(frozen=True, slots=True)
class StaticLadder:
    flag: str
    label: str
    flows: int  # flows carrying the flag
    row: int  # the one drawn
    title: str
    svg: Markup
    filters: Filters


def static_ladders(data: ReportData, bits: npt.NDArray[np.int64]) -> list[StaticLadder]:
    """The first drawn flow of each flag, in FLAGS' order, up to STATIC_LADDERS of them."""
    out: list[StaticLadder] = []
    numbering = data.facts.frame_numbering()
    for i, flag in enumerate(FLAGS):
        rows = np.flatnonzero(bits >> i & 1).tolist()
        drawn = [r for r in rows if r in data.ladders]
        if not drawn or len(out) == STATIC_LADDERS:
            continue
        r = drawn[0]
        row = ladder_svg.row_of(data.flows, r)
        said = {k: "unknown" if row[k] is None else row[k] for k in ("close_kind", "active_closer", "time_wait_on")}
        title = (f"{row['flow_id']} · {said['close_kind']} · closed first by {said['active_closer']} · "
                 f"TIME_WAIT on {said['time_wait_on']}")
        out.append(StaticLadder(flag.name, flag.label, len(rows), r, title,
                                ladder_svg.draw(as_drawn(data.ladders, r, data.columns), row, data.facts.last_ts),
                                filters_of(data.columns, numbering, r)))
    return out


def _charts(data: ReportData) -> dict[str, Any]:
    facts, tables = data.facts, data.tables
    start = facts.first_ts if facts.first_ts is not None else 0.0
    end = facts.last_ts if facts.last_ts is not None else start
    low, high = facts.port_range
    out: dict[str, Any] = {"close_kinds": charts.close_kinds(data.columns), "occupancy": None, "rate": None,
                           "who_first": None}
    if "hosts" in tables:
        out["occupancy"] = charts.occupancy(data.columns_of("hosts"), data.series, start, end, high - low + 1)
    if "destinations" in tables:
        out["rate"] = charts.connection_rate(data.columns, data.columns_of("destinations"), start, end)
    if "servers" in tables:
        out["who_first"] = charts.who_closes_first(data.columns_of("servers"))
    return out


def render_html(data: ReportData, generated_ts: float | None = None) -> str:
    facts = data.facts
    profile = OsProfile(facts.os_profile)
    low, high = facts.port_range
    # The same count the analysis summary makes; a saved table (teardown report) has only its flows.
    lost = CaptureLoss.of(data.columns)
    found = verdict.findings(data)
    bits = flag_bits(data.columns)
    context = {
        "title": _title(facts),
        "facts": facts,
        "behaviour": OS_BEHAVIOUR[profile],
        "ports": high - low + 1,
        "generated_ts": time.time() if generated_ts is None else generated_ts,
        "lost_flows": lost.connections,
        "lost_bytes": lost.bytes,
        "n_flows": data.flows.num_rows,
        "n_ladders": len(data.ladders),
        "segment_budget": SEGMENT_BUDGET,
        "figures": verdict.figures(data, found),
        "findings": found,
        "headline": verdict.headline(data, found),
        "flagged": int((bits != 0).sum()),
        "listing": listing(data.columns, bits, data.facts.frame_numbering()),
        "static_ladders": static_ladders(data, bits),
        "ladder_flows": int((bits & LADDER_BITS != 0).sum()),
        "listed_columns": LISTED_COLUMNS,
        "charts": _charts(data),
        "columns": [(c.name, help_of(c)) for c in FLOW_COLUMNS],
        "css": _asset("report.css", "</style"),
        "scripts": [_asset(name, "</script") for name in ("report-data.js", "ladder.js", "table.js")],
        "data_json": script_json(page_data(data, bits)),
    }
    return page_template().render(context)


@functools.cache
def page_template() -> jinja2.Template:
    """The page's template, compiled once (0.15 s: a run that writes a report has it compiled on
    a second core while the capture is read)."""
    return environment().get_template("report.html.j2")
