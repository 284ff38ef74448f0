"""A diff -> one self-contained HTML page for a ticket (`teardown diff BEFORE AFTER -o diff.html`):
the headline, the two analyses, the findings lost and gained, every changed figure by subject,
and the subjects found in one analysis only. The report's stylesheet and Jinja2 environment
(autoescaping, the same number filters), a few rules of its own; no script, nothing loaded."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from .. import __version__
from ..compare import Diff, Presence, Scope, Snapshot, headline
from ..compare.text import settings_text, subject_heading
from ..compare.words import ARROW, before_after, change_text, finding_name
from ..outputs import refuse_inputs
from .output import write_page
from .render import TEMPLATES, environment

SUBJECTS_SHOWN = 200  # subjects with changes on the page; every figure is in -o diff.csv
CLOSING = "</style"


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    before_after: str
    change: str


@dataclass(frozen=True, slots=True)
class Group:
    heading: str
    rows: list[Row]


def _side(s: Snapshot) -> dict[str, Any]:
    return {"label": s.label, "files": s.files, "first_ts": s.first_ts, "last_ts": s.last_ts,
            "connections": s.connections, "settings": settings_text(s), "warnings": s.warnings}


def groups(diff: Diff) -> list[Group]:
    """The changed figures of the subjects in both, by subject, the biggest change's first."""
    by: dict[tuple[Scope, str], list[Row]] = {}
    for c in diff.changes:
        if c.changed and c.presence == Presence.both:
            by.setdefault((c.metric.scope, c.subject), []).append(Row(c.metric.label, before_after(c), change_text(c)))
    return [Group(subject_heading(diff, scope, subject), rows)
            for (scope, subject), rows in list(by.items())[:SUBJECTS_SHOWN]]


def only_in(diff: Diff) -> list[tuple[str, list[str]]]:
    """('only in BEFORE: hosts', ['198.18.0.3 (600 connections)', ...]) per side and scope."""
    out = []
    for presence, side in ((Presence.before_only, diff.before), (Presence.after_only, diff.after)):
        word = "before" if presence == Presence.before_only else "after"
        for scope, what in ((Scope.host, "hosts"), (Scope.endpoint, "server endpoints"),
                            (Scope.destination, f"clients {ARROW} server endpoints")):
            subjects = diff.only_in(presence, scope)
            if subjects:
                out.append((f"Only {word}: {what}", [
                    f"{s.replace(' -> ', f' {ARROW} ')} ({side.subjects[scope][s].get('connections', 0):,.0f} "
                    "connections)" for s in subjects]))
    return out


def _severity(diff: Diff) -> str:
    """The headline's colour: the worst finding gained; green when none was gained."""
    gained = diff.findings_with(Presence.after_only)
    return gained[0].severity.value if gained else "none"


def render_diff(diff: Diff, generated_ts: float | None = None) -> str:
    css = "\n".join((TEMPLATES / name).read_text() for name in ("report.css", "diff.css"))
    if CLOSING in css.lower():
        raise ValueError(f"the stylesheets contain {CLOSING!r}, which would end their element early")
    names = [os.path.basename(s.label) for s in (diff.before, diff.after)]
    context = {
        "title": f"{names[0]} {ARROW} {names[1]}",
        "headline": headline(diff),
        "severity": _severity(diff),
        "sides": [("Before", _side(diff.before)), ("After", _side(diff.after))],
        "settings_differ": diff.settings_differ,
        "findings": [f for f in diff.findings if f.presence != Presence.both],
        "kept": [finding_name(f.kind, f.subject) for f in diff.findings_with(Presence.both)],
        "groups": groups(diff),
        "changed_subjects": len({(c.metric.scope, c.subject) for c in diff.changes
                                 if c.changed and c.presence == Presence.both}),
        "only": only_in(diff),
        "tool_version": __version__,
        "generated_ts": time.time() if generated_ts is None else generated_ts,
        "css": Markup(css),  # our own files, checked above: never text from a capture
    }
    return environment().get_template("diff.html.j2").render(context)


def write_diff_html(diff: Diff, out: str, inputs: Sequence[str]) -> int:
    """The page, whole or not at all, never over an input; the bytes written."""
    refuse_inputs(out, [out], inputs)
    return write_page(render_diff(diff), out)
