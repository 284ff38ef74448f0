"""Two analyses of the same service at different times -> what changed (`teardown diff`, issue 19):
per host, server endpoint and client -> endpoint, the figures of the host-level tables before
and after, and the findings lost and gained.

    metrics.py   the scopes and the figures compared, with their words and weights
    snapshot.py  one analysis's tables -> its figures per subject, and its findings
    diff.py      two snapshots -> every change, ranked biggest first
    words.py     how a figure, a change and a subject are written
    headline.py  the sentences at the top: where TIME_WAIT went, who closes first, findings
    text.py      the lines the terminal shows
    table.py     the diff as one long table (DIFF_COLUMNS), for CSV and Parquet

Pure: numpy in, numbers and text out. Reading the inputs (captures, saved results) and writing
the outputs (files, the page) is the caller's (report/diff_inputs.py, report/diff_page.py, cli).
"""

from __future__ import annotations

from ..schema import DIFF_COLUMNS, Presence, Scope
from .diff import Change, Diff, FindingChange, compare
from .headline import Headline, headline
from .metrics import METRICS, Metric, Unit
from .snapshot import Seen, Snapshot, snapshot
from .table import diff_columns
from .text import diff_lines

__all__ = ["DIFF_COLUMNS", "METRICS", "Change", "Diff", "FindingChange", "Headline", "Metric", "Presence", "Scope",
           "Seen", "Snapshot", "Unit", "compare", "diff_columns", "diff_lines", "headline", "snapshot"]
