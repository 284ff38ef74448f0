"""Report tables -> the geometry of its charts, drawn as inline SVG by templates/charts.html.j2.

Charts are computed here rather than in the browser so they print, show without JavaScript,
and can be checked against the analysis tables in unit tests. Every chart keeps the numbers it
draws (`value`, `label`) beside the pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..schema import CloseKind

if TYPE_CHECKING:
    import pandas as pd

BAR_WIDTH_PX = 420  # the longest bar; labels sit left of the bars, numbers right
CLOSE_KIND_TEXT = {
    CloseKind.fin: "orderly FIN exchange",
    CloseKind.simultaneous: "simultaneous close",
    CloseKind.rst: "aborted by RST",
    CloseKind.fin_then_rst: "FIN, then RST",
    CloseKind.refused: "refused (RST to SYN)",
    CloseKind.unanswered: "unanswered SYN",
    CloseKind.open: "still open at capture end",
}


@dataclass(frozen=True, slots=True)
class Bar:
    key: str  # the value in the table (close kind), used as a CSS class
    label: str
    value: int
    share: float  # of the chart's total
    width_px: float


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    bars: list[Bar]
    total: int
    note: str = ""


def close_kinds(flows: pd.DataFrame) -> BarChart:
    """Connections per close kind, in the schema's order; kinds that did not occur are left out."""
    counts = flows["close_kind"].value_counts()
    total = int(counts.sum())
    largest = max((int(v) for v in counts), default=0)
    bars = [Bar(kind.value, CLOSE_KIND_TEXT[kind], int(counts.get(kind.value, 0)),
                int(counts.get(kind.value, 0)) / total if total else 0.0,
                _length(int(counts.get(kind.value, 0)), largest))
            for kind in CloseKind if counts.get(kind.value, 0)]
    return BarChart("How the connections ended", bars, total)


def _length(value: float, largest: float) -> float:
    """Bar length in pixels; a non-zero value always gets a visible sliver."""
    if largest <= 0 or value <= 0:
        return 0.0
    return max(2.0, round(BAR_WIDTH_PX * value / largest, 1))


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]
