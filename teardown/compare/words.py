"""How a diff writes a figure, a change and a subject: one place, so the terminal and the page
read alike ("2,000 → 0 (-2,000, -100 %)", "closed first by the server 100 % → 0 % (-100 pts)")."""

from __future__ import annotations

import math

from ..schema import Presence, Scope
from ..timewait.finding import percent
from .diff import Change
from .metrics import Metric, Unit
from .snapshot import Figures

ARROW = "→"


def value_text(m: Metric, value: float, absent: bool = False) -> str:
    """One figure; `absent`: its subject is not in that analysis."""
    if absent:
        return "absent"
    if math.isnan(value):
        return "never" if m.unit == Unit.seconds else "n/a"
    if m.unit == Unit.share:
        return percent(value)
    if m.unit == Unit.fraction:
        return f"{value * 100:.1f} %" if value == 0 or value >= 0.001 else "< 0.1 %"
    if m.unit == Unit.rate:
        return f"{value:,.1f}/s"
    if m.unit == Unit.seconds:
        return f"{value:,.1f} s"
    return f"{value:,.0f}"


def change_text(c: Change) -> str:
    """The change itself: '-2,000 (-100 %)', '+35 pts', '' where it is no number (never → 40 s)."""
    d = c.change
    if math.isnan(d):
        return ""
    m = c.metric
    if m.unit in (Unit.share, Unit.fraction):
        return f"{_signed(d * 100, '.1f' if abs(d) < 0.01 else '.0f')} pts"
    if m.unit == Unit.rate:
        return f"{_signed(d, ',.1f')}/s"
    if m.unit == Unit.seconds:
        return f"{_signed(d, ',.1f')} s"
    text = _signed(d, ",.0f")
    was = (0.0 if math.isnan(c.after) else c.after) - d  # an absent subject counted as 0
    if was:
        text += f" ({_signed(d / abs(was) * 100, ',.0f')} %)"
    return text


def _signed(x: float, spec: str) -> str:
    return f"+{x:{spec}}" if x > 0 else f"-{-x:{spec}}" if x < 0 else f"{0:{spec}}"


def before_after(c: Change) -> str:
    """'2,000 → 0'."""
    return (f"{value_text(c.metric, c.before, c.presence == Presence.after_only)} {ARROW} "
            f"{value_text(c.metric, c.after, c.presence == Presence.before_only)}")


def role(before: Figures | None, after: Figures | None) -> str:
    """A host as the headline names it: 'the server', 'the client' (by the side it takes in most
    of its connections, over both analyses), else 'the host'."""
    served = sum((f or {}).get("connections_as_server", 0.0) for f in (before, after))
    opened = sum((f or {}).get("connections_as_client", 0.0) for f in (before, after))
    return "the server" if served > opened else "the client" if opened > served else "the host"


SCOPE_WORDS = {Scope.capture: "all connections", Scope.host: "host", Scope.endpoint: "server endpoint",
               Scope.destination: "client → server endpoint", Scope.finding: "finding"}


def subject_text(scope: Scope, subject: str) -> str:
    """'server endpoint 198.18.0.2:8080', 'all connections'."""
    if scope == Scope.capture:
        return SCOPE_WORDS[scope]
    return f"{SCOPE_WORDS[scope]} {subject.replace(' -> ', f' {ARROW} ')}"


def finding_name(kind: str, subject: str) -> str:
    """'server-close 198.18.0.2:8080'; a finding about the whole capture by its kind alone."""
    return kind if subject == "capture" else f"{kind} {subject}"
