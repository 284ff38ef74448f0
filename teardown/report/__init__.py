"""Tables -> one self-contained HTML file: the report engineers attach to an incident ticket.

    facts.py    the header: capture files, settings, tool
    flags.py    which findings each flow shows
    table.py    the per-flow table as compact JSON columns
    ladder.py   segments of chosen flows, read again from the capture
    states.py   each side's TCP state along a ladder
    charts.py   the charts' geometry, from the tables
    render.py   all of it -> the page (templates/ beside it)
    saved.py    a result saved as Parquet, with what the report needs in its metadata
"""

from __future__ import annotations

from .render import ReportData, from_analysis, render_html

__all__ = ["ReportData", "from_analysis", "render_html"]
