"""Report data -> the HTML file on disk: the default name under reports/, and never over a file
the run reads (a capture, or the saved result `teardown report` renders)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..outputs import atomic_output, refuse_inputs
from .data import ReportData
from .render import render_html

REPORTS = "reports"
INPUT_SUFFIXES = (".gz", ".pcap", ".pcapng", ".cap", ".parquet")


def default_path(inputs: Sequence[str]) -> str:
    """reports/NAME.html, NAME the first input's file name without its capture suffixes."""
    name = os.path.basename(inputs[0]) if inputs else "capture"
    while name.lower().endswith(INPUT_SUFFIXES):
        name = name[: name.rfind(".")]
    return os.path.join(REPORTS, f"{name or 'capture'}.html")


def write_html(data: ReportData, out: str, inputs: Sequence[str]) -> int:
    """Render and write the report, whole or not at all; the bytes written."""
    refuse_inputs(out, [out], inputs)
    return write_page(render_html(data), out)


def write_page(page: str, out: str) -> int:
    """An HTML page written whole or not at all (the caller refused inputs); the bytes written."""
    html = page.encode("utf-8")
    with atomic_output(out) as fh:
        fh.write(html)
    return len(html)
