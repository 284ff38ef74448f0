"""A diff -> the few sentences that head it: where TIME_WAIT went, who closes first now, the
ports, and the findings lost and gained. Each says its numbers, before → after."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..schema import Presence, Scope
from .diff import Change, Diff, FindingChange
from .snapshot import CAPTURE
from .words import ARROW, before_after, finding_name, role

FINDINGS_NAMED = 5  # findings named in a headline sentence; the rest are counted
SHARE_MOVED = 0.01  # a share moving less than a point is not news
PORTS_NOTED = 0.01  # port utilisation is news from 1 % of the range on, before or after


@dataclass(frozen=True, slots=True)
class Headline:
    time_wait: str
    closes: str
    ports: str  # empty when the ports did not change
    findings: str

    def sentences(self) -> list[str]:
        return [s for s in (self.time_wait, self.closes, self.ports, self.findings) if s]


def headline(diff: Diff) -> Headline:
    return Headline(time_wait_moved(diff), closes_moved(diff), ports_moved(diff), findings_moved(diff))


def _of(diff: Diff, scope: Scope, name: str) -> list[Change]:
    return [c for c in diff.changes if c.metric.scope == scope and c.metric.name == name]


def _host(diff: Diff, c: Change) -> str:
    """'the server 198.18.0.2'."""
    return f"{role(diff.before.figures(Scope.host, c.subject), diff.after.figures(Scope.host, c.subject))} {c.subject}"


def _was_now(c: Change) -> str:
    was = 0.0 if math.isnan(c.before) else c.before
    now = 0.0 if math.isnan(c.after) else c.after
    return f"{was:,.0f} {ARROW} {now:,.0f}"


def time_wait_moved(diff: Diff) -> str:
    """'TIME_WAIT moved from the server 198.18.0.2 (peak 2,000 → 0) to the client 198.18.0.1 (0 → 4)':
    the host whose peak fell most, and the one whose peak rose most."""
    peaks = [c for c in _of(diff, Scope.host, "time_wait_peak") if not math.isnan(c.change) and c.change]
    fell = min(peaks, key=lambda c: (c.change, c.subject), default=None)
    rose = max(peaks, key=lambda c: (c.change, c.subject), default=None)
    fell = fell if fell is not None and fell.change < 0 else None
    rose = rose if rose is not None and rose.change > 0 else None
    if fell and rose:
        return (f"TIME_WAIT moved from {_host(diff, fell)} (peak {_was_now(fell)}) "
                f"to {_host(diff, rose)} ({_was_now(rose)})")
    if fell:
        return f"TIME_WAIT fell on {_host(diff, fell)} (peak {_was_now(fell)}); no host's peak rose"
    if rose:
        return f"TIME_WAIT rose on {_host(diff, rose)} (peak {_was_now(rose)}); no host's peak fell"
    highest = _of(diff, Scope.capture, "time_wait_peak")
    return f"TIME_WAIT peaks unchanged (highest of a host {before_after(highest[0])})" if highest else \
        "TIME_WAIT peaks unchanged"


def closes_moved(diff: Diff) -> str:
    """'2,000 → 4 connections; closed first by the server 100 % → 0 %, by the client 0 % → 100 %'."""
    figures = {c.metric.name: c for c in diff.changes if c.metric.scope == Scope.capture and c.subject == CAPTURE}
    text = f"connections {before_after(figures['connections'])}" if "connections" in figures else "connections"
    moved = [c for name, c in figures.items() if name.endswith("_share") and _moved(c)]
    moved.sort(key=lambda c: -_size(c))
    if moved:
        said = [f"{c.metric.label} {before_after(c)}" for c in moved]
        # 'closed first by the server 100 % → 0 %, by the client 0 % → 100 %'
        said = [s.replace("closed first ", "", 1) if i and moved[i - 1].metric.label.startswith("closed first")
                and s.startswith("closed first") else s for i, s in enumerate(said)]
        text += "; " + ", ".join(said)
    elif any(name.endswith("_share") for name in figures):
        text += "; who closes first unchanged"
    return text[0].upper() + text[1:]


def _size(c: Change) -> float:
    """How far a share moved; from or to n/a (no connection closed): as far as the other side's."""
    if not math.isnan(c.change):
        return abs(c.change)
    return max((v for v in (c.before, c.after) if not math.isnan(v)), default=0.0)


def _moved(c: Change) -> bool:
    return _size(c) >= SHARE_MOVED


def ports_moved(diff: Diff) -> str:
    """The busiest client's ports, when they moved: utilisation and time to exhaustion."""
    figures = {c.metric.name: c for c in diff.changes if c.metric.scope == Scope.capture and c.subject == CAPTURE}
    use, left = figures.get("port_utilisation_peak"), figures.get("seconds_to_exhaustion")
    parts = []
    busiest = max((v for v in (use.before, use.after) if not math.isnan(v)), default=0.0) if use else 0.0
    if use and busiest >= PORTS_NOTED and (math.isnan(use.change) or abs(use.change) >= PORTS_NOTED):
        parts.append(f"the busiest client's ports in use peaked at {before_after(use)} of its range")
    if left and left.changed:
        parts.append(f"time to exhaustion {before_after(left)}")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] if text else ""


def _named(found: list[FindingChange]) -> str:
    named = ", ".join(finding_name(f.kind, f.subject) for f in found[:FINDINGS_NAMED])
    rest = len(found) - FINDINGS_NAMED
    return named + (f" and {rest:,} more" if rest > 0 else "") if found else "none"


def findings_moved(diff: Diff) -> str:
    """'findings lost: server-close 198.18.0.2:8080; gained: none'."""
    lost, gained = diff.findings_with(Presence.before_only), diff.findings_with(Presence.after_only)
    if not lost and not gained:
        kept = len(diff.findings_with(Presence.both))
        return f"Findings unchanged ({kept:,})" if kept else "No findings before or after"
    return f"Findings lost: {_named(lost)}; gained: {_named(gained)}"

