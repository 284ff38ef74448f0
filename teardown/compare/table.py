"""A diff as one long table (`-o diff.csv`, `-o diff.parquet`): a row per (scope, subject,
metric), the figures of subjects in one analysis only and the findings included, biggest change
first. Long rather than wide because the scopes have different figures; a pandas user pivots
it: `df[df.scope == "host"].pivot(index="subject", columns="metric", values="change")`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..schema import DIFF_COLUMNS, Scope
from .diff import Diff


def diff_columns(diff: Diff) -> dict[str, npt.NDArray[Any]]:
    """The table's columns (DIFF_COLUMNS) as numpy, for rows.arrow_table."""
    # Findings lost and gained lead, as in any ticket; then the figures, biggest change first;
    # the findings kept last, with the figures that did not change.
    findings: list[tuple[Any, ...]] = []
    for f in diff.findings:
        was, now = float(f.before is not None), float(f.after is not None)
        findings.append((Scope.finding.value, f.subject, f.kind, f.presence.value, was, now, now - was,
                         (now - was) / was if was else np.nan, abs(now - was), f.severity.value, f.seen.message))
    figures = [(c.metric.scope.value, c.subject, c.metric.name, c.presence.value, c.before, c.after, c.change,
                c.change / c.before if c.before and not np.isnan(c.before) else np.nan, c.score, None, None)
               for c in diff.changes]
    rows = [r for r in findings if r[8]] + figures + [r for r in findings if not r[8]]
    names = [c.name for c in DIFF_COLUMNS]
    if not rows:
        return {c.name: np.zeros(0, np.float64 if c.dtype == "Float64" else object) for c in DIFF_COLUMNS}
    out = {}
    for name, values in zip(names, zip(*rows)):
        kind = next(c.dtype for c in DIFF_COLUMNS if c.name == name)
        out[name] = np.array(values, np.float64 if kind == "Float64" else object)
    return out
