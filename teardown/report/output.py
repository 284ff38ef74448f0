"""Report data -> the HTML file on disk: the default name under reports/, and never over a file
the run reads (a capture, or the saved result `teardown report` renders)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import UsageError
from .data import ReportData
from .files import whole_file
from .render import render_html

REPORTS = "reports"
INPUT_SUFFIXES = (".gz", ".pcap", ".pcapng", ".cap", ".parquet")


def default_path(inputs: Sequence[str]) -> str:
    """reports/NAME.html, NAME the first input's file name without its capture suffixes."""
    name = os.path.basename(inputs[0]) if inputs else "capture"
    while name.lower().endswith(INPUT_SUFFIXES):
        name = name[: name.rfind(".")]
    return os.path.join(REPORTS, f"{name or 'capture'}.html")


def refuse_inputs(out: str, inputs: Sequence[str], option: str = "-o") -> None:
    """UsageError when `out` is one of `inputs`: a report never replaces what it was made from."""
    target = Path(out)
    if not target.exists():
        return
    for given in inputs:
        try:
            same = target.samefile(given)
        except OSError:
            continue
        if same:
            raise UsageError(f"{option} {out}: is an input of this run ({given}); choose another output name")


def write_html(data: ReportData, out: str, inputs: Sequence[str]) -> int:
    """Render and write the report, whole or not at all; the bytes written."""
    refuse_inputs(out, inputs)
    html = render_html(data).encode("utf-8")
    with whole_file(out) as fh:
        fh.write(html)
    return len(html)
