"""Intervals per group -> a step series of how many are open at each instant, and its peaks.

Used for TIME_WAIT sockets per host or server endpoint, and for client ports held per
destination. All groups at once: interval endpoints become +1/-1 events, sorted by (group,
time, end before start), and one cumulative sum gives every group's count, because each
group's events add up to zero (docs/rules.md "Host-level views").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class StepSeries:
    """Each group's count of open intervals, sorted by group then time: `count[i]` holds from
    `ts[i]` until the group's next change. Only instants where the count changes are kept."""

    group: Ints
    ts: Floats
    count: Ints

    def of(self, group: int) -> tuple[Floats, Ints]:
        """One group's (ts, count) step series."""
        lo, hi = np.searchsorted(self.group, [group, group + 1])
        return self.ts[lo:hi], self.count[lo:hi]


def step_series(group: Ints, start: Floats, end: Floats) -> StepSeries:
    """Count the intervals [start, end) open at each instant, per group.

    An interval that ends at the instant another starts does not overlap it: at equal times
    ends are applied before starts, so a socket that leaves TIME_WAIT when a new connection
    takes over its 4-tuple is never counted twice. Empty intervals (end <= start, e.g. a
    TIME_WAIT assassinated at the instant it began) occupy nothing and are dropped.
    """
    keep = end > start
    group, start, end = group[keep], start[keep], end[keep]
    n = len(group)
    if n == 0:
        return StepSeries(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))
    g = np.concatenate([group, group])
    t = np.concatenate([start, end])
    delta = np.concatenate([np.ones(n, np.int64), np.full(n, -1, np.int64)])
    order = np.lexsort((delta, t, g))
    g, t = g[order], t[order]
    count = np.cumsum(delta[order])
    # Keep the settled value after the last event of each (group, instant).
    last = np.ones(len(g), bool)
    last[:-1] = (g[1:] != g[:-1]) | (t[1:] != t[:-1])
    return StepSeries(g[last], t[last], count[last])


def peaks(series: StepSeries, groups: int) -> tuple[Ints, Floats]:
    """Per group: the highest count and the first instant it was reached (0 and NaN for a group
    without intervals)."""
    peak = np.zeros(groups, np.int64)
    peak_ts = np.full(groups, np.nan)
    if len(series.group) == 0:
        return peak, peak_ts
    firsts = np.flatnonzero(np.r_[True, series.group[1:] != series.group[:-1]])
    present = series.group[firsts]
    peak[present] = np.maximum.reduceat(series.count, firsts)
    at_peak = np.flatnonzero(series.count == peak[series.group])
    first_group, first_idx = np.unique(series.group[at_peak], return_index=True)
    peak_ts[first_group] = series.ts[at_peak[first_idx]]
    return peak, peak_ts


def covering(group: Ints, start: Floats, end: Floats, at: Floats) -> npt.NDArray[np.bool_]:
    """Which intervals are open at their group's instant `at[group]` (start <= t < end)."""
    t = at[group]
    return (start <= t) & (t < end)


def window_peaks(group: Ints, ts: Floats, groups: int, window_s: float) -> tuple[Ints, Floats]:
    """Per group: the most events in any window [t, t + window_s) starting at an event, and
    that window's start (0 and NaN for a group without events)."""
    best = np.zeros(groups, np.int64)
    best_ts = np.full(groups, np.nan)
    if len(group) == 0:
        return best, best_ts
    order = np.lexsort((ts, group))
    g, t = group[order], ts[order]
    # Ranks of the event times and of the window ends on one scale: exact comparisons.
    ranks = np.unique(np.concatenate([t, t + window_s]), return_inverse=True)[1].astype(np.int64)
    scale = len(ranks) + 1
    key = g * scale + ranks[: len(t)]
    inside = np.searchsorted(key, g * scale + ranks[len(t):], side="left") - np.arange(len(t))
    firsts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    best[g[firsts]] = np.maximum.reduceat(inside, firsts)
    at_best = np.flatnonzero(inside == best[g])
    first_group, first_idx = np.unique(g[at_best], return_index=True)
    best_ts[first_group] = t[at_best[first_idx]]
    return best, best_ts
