"""Two snapshots -> what changed (`Diff`): every figure of every subject before and after, ranked
biggest change first, and the findings lost, gained and kept.

The ranking puts first what an engineer reading a ticket wants first: a change large against the
figure itself (2,000 -> 0 before 2,000 -> 1,900), concerning many connections (a share moving
over 2,000 closed connections before one over 4), of a figure that matters most (TIME_WAIT,
ports, who closes first before plain counts): score = weight x relative size x log10(10 + how
many connections or sockets the change concerns).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..schema import Presence, Scope, Severity
from ..timewait.finding import SEVERITY_RANK
from .metrics import METRICS, SCOPE_WEIGHT, Metric, Unit
from .snapshot import Figures, Seen, Snapshot

NAN = float("nan")


@dataclass(frozen=True, slots=True)
class Change:
    """One figure of one subject, before and after (NaN: empty, or the subject absent)."""

    metric: Metric
    subject: str
    presence: Presence
    before: float
    after: float
    change: float  # after - before; an absent subject counts 0 where the metric says so; NaN: not a number
    score: float  # how big the change is: the ranking (0 when nothing changed)

    @property
    def changed(self) -> bool:
        return self.score > 0


@dataclass(frozen=True, slots=True)
class FindingChange:
    kind: str
    subject: str
    presence: Presence  # before_only: lost; after_only: gained; both: kept
    before: Seen | None
    after: Seen | None

    @property
    def seen(self) -> Seen:
        """As the later analysis states it, when it does."""
        seen = self.after or self.before
        assert seen is not None
        return seen

    @property
    def severity(self) -> Severity:
        return self.seen.severity


@dataclass(frozen=True, slots=True)
class Diff:
    before: Snapshot
    after: Snapshot
    changes: list[Change]  # every figure of every subject in either, biggest change first
    findings: list[FindingChange]  # most severe first

    def only_in(self, presence: Presence, scope: Scope) -> list[str]:
        """The subjects of `scope` found in one analysis only, busiest first."""
        side = self.before if presence == Presence.before_only else self.after
        subjects = [s for s in side.subjects.get(scope, {}) if self._presence(scope, s) == presence]
        return sorted(subjects, key=lambda s: -side.subjects[scope][s].get("connections", 0.0))

    def _presence(self, scope: Scope, subject: str) -> Presence:
        return _presence(self.before.figures(scope, subject), self.after.figures(scope, subject))

    def findings_with(self, presence: Presence) -> list[FindingChange]:
        return [f for f in self.findings if f.presence == presence]

    @property
    def settings_differ(self) -> bool:
        return _settings(self.before) != _settings(self.after)


def _settings(s: Snapshot) -> tuple[object, ...]:
    o = s.options
    return o.os, o.time_wait_s, o.host_os, o.port_range


def compare(before: Snapshot, after: Snapshot) -> Diff:
    """Every figure of every subject in either snapshot, and every finding in either."""
    changes = []
    for scope in Scope:
        if scope == Scope.finding:
            continue
        metrics = [m for m in METRICS if m.scope == scope]
        old, new = before.subjects.get(scope, {}), after.subjects.get(scope, {})
        for subject in [*old, *(s for s in new if s not in old)]:
            a, b = old.get(subject), new.get(subject)
            names = set(a or {}) | set(b or {})
            changes += [_change(m, subject, a, b) for m in metrics if m.name in names]
    order = {m: i for i, m in enumerate(METRICS)}
    changes.sort(key=lambda c: (-c.score, order[c.metric], c.subject))
    return Diff(before, after, changes, _findings(before, after))


def _presence(a: object | None, b: object | None) -> Presence:
    return Presence.both if a is not None and b is not None else Presence.before_only if a is not None \
        else Presence.after_only


def _change(m: Metric, subject: str, a: Figures | None, b: Figures | None) -> Change:
    before, after = _value(m, a), _value(m, b)
    # What the change is counted against: 0 for a subject that was not there, where it means none.
    was = 0.0 if a is None and m.absent_is_zero else before
    now = 0.0 if b is None and m.absent_is_zero else after
    # A share or a time of a subject in one analysis only did not change: it has no other value.
    score = _score(m, was, now, _base(m, a), _base(m, b)) if a is not None and b is not None or m.absent_is_zero \
        else 0.0
    return Change(m, subject, _presence(a, b), before, after, now - was, round(score, 4))


def _value(m: Metric, figures: Figures | None) -> float:
    """NaN for an absent subject; 0 for a count its snapshot leaves out (a close kind it had none of)."""
    if figures is None:
        return NAN
    return figures.get(m.name, 0.0 if m.absent_is_zero else NAN)


def _base(m: Metric, figures: Figures | None) -> float:
    if not m.base or figures is None:
        return 0.0
    base = figures.get(m.base, 0.0)
    return 0.0 if math.isnan(base) else base


def _score(m: Metric, was: float, now: float, base_was: float, base_now: float) -> float:
    weight = m.weight * SCOPE_WEIGHT[m.scope]
    if math.isnan(was) and math.isnan(now):
        return 0.0
    if math.isnan(was) or math.isnan(now):  # it came or went ("never" -> 30 s to exhaustion)
        return weight * math.log10(10 + max(base_was, base_now))
    delta = abs(now - was)
    if delta == 0:
        return 0.0
    if m.unit == Unit.share:
        relative, concerns = delta, delta * max(base_was, base_now)
    else:
        relative = delta / max(abs(was), abs(now))
        concerns = delta if m.unit in (Unit.count, Unit.rate) else 0.0
    return weight * relative * math.log10(10 + concerns)


def _findings(before: Snapshot, after: Snapshot) -> list[FindingChange]:
    keys = [*before.findings, *(k for k in after.findings if k not in before.findings)]
    out = []
    for key in keys:
        was, now = before.findings.get(key), after.findings.get(key)
        out.append(FindingChange(key[0], key[1], _presence(was, now), was, now))
    return sorted(out, key=lambda f: (SEVERITY_RANK[f.severity], f.kind, f.subject))
