"""A diff -> the lines `teardown diff` prints: what was compared, the headline, the biggest
changes grouped by subject (the subject with the biggest change first), the subjects found in
one analysis only, and the findings lost and gained. Plain text: the caller wraps the lines to
its width (`hanging_indent` says where a wrapped line goes on) and colours what it likes."""

from __future__ import annotations

from collections.abc import Iterable

from ..schema import Presence, Scope, Severity
from ..times import utc
from ..timewait.finding import plural
from .diff import Change, Diff, FindingChange
from .headline import headline
from .snapshot import Snapshot
from .words import ARROW, before_after, change_text, finding_name, role, subject_text

SUBJECTS_SHOWN = 8  # subjects with changes shown; the rest are in the table (-o diff.csv)
CHANGES_SHOWN = 6  # changes shown per subject
ONLY_SHOWN = 10  # subjects named per "only in" line
LABEL_WIDTH = 38
VALUES_WIDTH = 24


def diff_lines(diff: Diff) -> list[str]:
    lines = [*input_lines(diff), ""]
    lines += [s + "." for s in headline(diff).sentences()]
    lines += ["", *change_lines(diff)]
    only = only_lines(diff)
    lines += ["", *only] if only else []
    lines += finding_lines(diff)
    return lines


def input_lines(diff: Diff) -> list[str]:
    lines = [f"before: {_input(diff.before)}", f"after:  {_input(diff.after)}"]
    lines += [f"warning: {word}: {w}" for word, side in (("before", diff.before), ("after", diff.after))
              for w in side.warnings]
    if diff.settings_differ:
        lines += [f"settings before: {settings_text(diff.before)}", f"settings after:  {settings_text(diff.after)}",
                  "warning: the two analyses ran with different settings: part of the TIME_WAIT and port "
                  "figures' change comes from that alone"]
    else:
        lines.append(f"settings (both): {settings_text(diff.before)}")
    return lines


def _input(s: Snapshot) -> str:
    span = ""
    if s.first_ts is not None and s.last_ts is not None:
        span = f", {utc(s.first_ts)} UTC + {s.last_ts - s.first_ts:,.3f} s"
    return f"{s.label}: {plural(s.connections, 'connection')}{span}"


def settings_text(s: Snapshot) -> str:
    """'linux profile, TIME_WAIT 60 s, ports 32768-60999'."""
    o = s.options
    tw = o.behaviour_of(o.os).time_wait_s
    low, high = o.port_range
    hosts = "".join(f", {host} {profile.value}" for host, profile in o.host_os)
    return f"{o.os.value} profile, TIME_WAIT {tw:g} s, ports {low}-{high}{hosts}"


def _grouped(changes: Iterable[Change]) -> dict[tuple[Scope, str], list[Change]]:
    """The changes of subjects in both analyses, by subject, in the order of each's biggest."""
    out: dict[tuple[Scope, str], list[Change]] = {}
    for c in changes:
        if c.changed and c.presence == Presence.both:
            out.setdefault((c.metric.scope, c.subject), []).append(c)
    return out


def subject_heading(diff: Diff, scope: Scope, subject: str) -> str:
    """'host 198.18.0.2 (the server)'."""
    if scope != Scope.host:
        return subject_text(scope, subject)
    played = role(diff.before.figures(scope, subject), diff.after.figures(scope, subject))
    return f"{subject_text(scope, subject)} ({played})"


def change_lines(diff: Diff) -> list[str]:
    groups = _grouped(diff.changes)
    if not groups:
        return ["no figure changed of all connections, nor of the hosts and server endpoints both analyses hold"]
    lines = [f"changes, biggest first (before {ARROW} after, change)"]
    for (scope, subject), changes in list(groups.items())[:SUBJECTS_SHOWN]:
        lines.append(f"  {subject_heading(diff, scope, subject)}")
        for c in changes[:CHANGES_SHOWN]:
            line = f"    {c.metric.label:<{LABEL_WIDTH}} {before_after(c):<{VALUES_WIDTH}} {change_text(c)}"
            lines.append(line.rstrip())
        if len(changes) > CHANGES_SHOWN:
            lines.append(f"    ... and {plural(len(changes) - CHANGES_SHOWN, 'more change')}")
    rest = list(groups.values())[SUBJECTS_SHOWN:]
    if rest:
        lines.append(f"  ... and {plural(sum(map(len, rest)), 'more change')} of "
                     f"{plural(len(rest), 'more subject')}: every figure is in the table (-o diff.csv)")
    return lines


def only_lines(diff: Diff) -> list[str]:
    """'only in before: server endpoint 198.18.0.3:8080 (600 connections), ...'."""
    lines = []
    for presence, word in ((Presence.before_only, "before"), (Presence.after_only, "after")):
        side = diff.before if presence == Presence.before_only else diff.after
        for scope in (Scope.host, Scope.endpoint, Scope.destination):
            subjects = diff.only_in(presence, scope)
            if not subjects:
                continue
            named = ", ".join(f"{s.replace(' -> ', f' {ARROW} ')} ("
                              f"{plural(int(side.subjects[scope][s].get('connections', 0)), 'connection')})"
                              for s in subjects[:ONLY_SHOWN])
            more = f" and {len(subjects) - ONLY_SHOWN:,} more" if len(subjects) > ONLY_SHOWN else ""
            what = {Scope.host: "hosts", Scope.endpoint: "server endpoints",
                    Scope.destination: f"clients {ARROW} server endpoints"}[scope]
            lines.append(f"only in {word}: {what} {named}{more}")
    return lines


def finding_lines(diff: Diff) -> list[str]:
    lines = []
    for presence, word in ((Presence.before_only, "lost"), (Presence.after_only, "gained")):
        found = diff.findings_with(presence)
        if found:
            lines += ["", f"findings {word}"] + [_finding(f) for f in found]
    return lines


FINDING_INDENT = 11  # where a finding's text starts, under the severity word's column (as terminal.py)


def _finding(f: FindingChange) -> str:
    return f"  {f.severity.value.upper():<8} {finding_name(f.kind, f.subject)}: {f.seen.message}"


def hanging_indent(line: str) -> int:
    """Where a wrapped line's continuation starts: a finding's under its text, any other line's
    four spaces in from its own start."""
    body = line.lstrip(" ")
    if body.split(" ", 1)[0].lower() in {s.value for s in Severity} and line.startswith("  "):
        return FINDING_INDENT
    return len(line) - len(body) + 4
