"""Tables -> one self-contained HTML file: the report engineers attach to an incident ticket.

    data.py     an analysis -> what the report shows (ReportData)
    facts.py    the header: capture files, settings, tool
    verdict.py  headline numbers and the ranked findings
    charts.py   the charts' geometry, from the tables
    flags.py    which findings each flow shows
    table.py    the per-flow table as compact JSON columns
    ladder.py   segments of chosen flows, read again from the capture
    states.py   each side's TCP state along a ladder
    render.py   all of it -> the page (templates/ beside it)
    output.py   the page -> a file: default name, never over an input
    saved.py    a result saved as Parquet, with what the report needs in its metadata
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .data import ReportData, from_analysis
    from .output import default_path, write_html
    from .render import render_html
    from .saved import read_parquet, write_parquet

# Where each name lives, imported on first use: writing a table (files.py) needs none of the
# page's machinery (jinja2, the templates: 60 ms of every -o flows.csv).
_HOME = {"ReportData": "data", "from_analysis": "data", "default_path": "output", "write_html": "output",
         "render_html": "render", "read_parquet": "saved", "write_parquet": "saved"}

__all__ = ["ReportData", "default_path", "from_analysis", "read_parquet", "render_html",
           "write_html", "write_parquet"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
