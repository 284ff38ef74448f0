"""Intervals per group -> a step series of how many are open at each instant, and its peaks.

Used for TIME_WAIT sockets per host or server endpoint, and for client ports held per
destination. All groups at once: each (group, instant) becomes one int64 key that orders as
the pair does, so starts and ends are two sorted arrays of keys, and a group's count at an
instant is the starts up to it less the ends up to it (the earlier groups' starts and ends
cancel out) (docs/rules.md "Host-level views"). Keys and two binary searches need about a
third of the memory of sorting +1/-1 events by (group, time, kind): a million TIME_WAIT
intervals take ~60 MB of temporaries here, ~150 MB that way.
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


def _flip(bits: Ints) -> Ints:
    """A double's bits as an int64 that orders as the double does, in place: a non-negative
    double's bits already do; a negative one's order backwards, so all but their sign bit are
    flipped. Its own inverse."""
    np.bitwise_xor(bits, np.int64(0x7FFF_FFFF_FFFF_FFFF), out=bits, where=bits < 0)
    return bits


@dataclass(frozen=True, slots=True)
class _Keys:
    """(group, time) pairs as one int64 each, ordered and equal exactly as the pairs are:
    group * span + the time's key.

    A time's key is its position among the doubles from the least time on (`_flip`): exact,
    and no sort. A day of capture at today's epoch spans ~2^39 doubles, leaving room for
    millions of groups; where the product overflows (times from 0 to an epoch date in one
    crafted file), a time's key is its rank among the distinct times instead, at the cost of
    sorting them all."""

    span: int
    low: int
    distinct: Floats | None  # rank -> time, where keys are ranks

    @staticmethod
    def of(groups: int, *times: Floats) -> _Keys:
        bounds = np.array([min(float(t.min()) for t in times), max(float(t.max()) for t in times)])
        low, high = (int(k) for k in _flip((bounds + 0.0).view(np.int64)))
        if max(groups, 1) * (high - low + 1) < 1 << 62:
            return _Keys(high - low + 1, low, None)
        distinct = np.unique(np.concatenate(times))
        return _Keys(len(distinct), 0, distinct)

    def key(self, group: Ints, t: Floats) -> Ints:
        # + 0.0 makes -0.0 into 0.0, which compares equal to it
        at: Ints = np.searchsorted(self.distinct, t) if self.distinct is not None else _flip((t + 0.0).view(np.int64))
        at -= self.low
        at += group * self.span
        return at

    def split(self, key: Ints) -> tuple[Ints, Floats]:
        """Keys back into (group, time); the times are written over the keys (a million
        intervals' series is 16 MB an array: no copy to spare)."""
        group = key // self.span
        key -= group * self.span
        if self.distinct is not None:
            return group, self.distinct[key]
        key += self.low
        return group, _flip(key).view(np.float64)


def step_series(group: Ints, start: Floats, end: Floats) -> StepSeries:
    """Count the intervals [start, end) open at each instant, per group.

    An interval that ends at the instant another starts does not overlap it: at equal times
    ends are applied before starts, so a socket that leaves TIME_WAIT when a new connection
    takes over its 4-tuple is never counted twice. Empty intervals (end <= start, e.g. a
    TIME_WAIT assassinated at the instant it began) occupy nothing and are dropped.
    """
    keep = end > start
    group, start, end = group[keep], start[keep], end[keep]
    if len(group) == 0:
        return StepSeries(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))
    keys = _Keys.of(int(group.max()) + 1, start, end)
    starts, ends = np.sort(keys.key(group, start)), np.sort(keys.key(group, end))
    del group, start, end
    instants = np.concatenate([starts, ends])
    instants.sort(kind="stable")  # two sorted runs: timsort merges them in one pass
    instants = instants[np.r_[True, instants[1:] != instants[:-1]]]
    # The count once every event at the instant is applied: ends at an instant a start shares
    # are counted (side="right") along with it, so the two never overlap.
    count = np.searchsorted(starts, instants, side="right")
    count -= np.searchsorted(ends, instants, side="right")
    del starts, ends
    group, ts = keys.split(instants)
    return StepSeries(group, ts, count)


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
    keys = _Keys.of(groups, ts, ts + window_s)
    events = np.sort(keys.key(group, ts))
    g, t = keys.split(events.copy())
    # The events of the same group before each window's end, less those before its start.
    inside = np.searchsorted(events, keys.key(g, t + window_s), side="left") - np.arange(len(t))
    firsts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    best[g[firsts]] = np.maximum.reduceat(inside, firsts)
    at_best = np.flatnonzero(inside == best[g])
    first_group, first_idx = np.unique(g[at_best], return_index=True)
    best_ts[first_group] = t[at_best[first_idx]]
    return best, best_ts
