"""An analysis -> the text a terminal shows: first what the capture is and who closed its
connections, then the findings, most severe first, then the tables. Lines wrap at the
terminal's width (COLUMNS), colour only on a terminal and never with NO_COLOR."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from .analysis import Analysis, CaptureSummary, JoinedPoints
from .options import ReaderKind
from .present import endpoint, where_prefix
from .schema import CloseKind, Severity
from .times import utc
from .timewait.finding import percent, plural

FINDINGS_SHOWN = 10  # the rest are in `-o DIR/` (findings table) and the report
INDENT = 11  # where a finding's text starts: under the severity word's column
COLOURS = {Severity.critical: "1;31", Severity.warning: "33", Severity.info: "36"}


@dataclass(frozen=True, slots=True)
class Style:
    """How wide lines may be and whether to colour them, decided once from the output stream."""

    width: int = 100
    colour: bool = False

    @classmethod
    def of(cls, stream: TextIO) -> Style:
        tty = stream.isatty()
        width = shutil.get_terminal_size((100, 24)).columns  # COLUMNS first, then the terminal
        return cls(max(width, 40), tty and "NO_COLOR" not in os.environ)

    def wrap(self, text: str, indent: int = 0, first: str = "") -> list[str]:
        """`first` + text, wrapped; continuation lines indented by `indent`."""
        glued = text.replace(" %", "\u00a0%")  # never "100" at a line's end and "%" on the next
        lines = textwrap.wrap(glued, self.width - 1, initial_indent=first, subsequent_indent=" " * indent,
                              break_on_hyphens=False, break_long_words=False)
        return [line.replace("\u00a0%", " %") for line in lines] or [first]

    def paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text


def analysis_text(result: Analysis, style: Style, written: str = "") -> str:
    """Everything `teardown analyze` prints: head, findings, tables (and what it wrote)."""
    lines = head_lines(result, style) + [""] + findings_lines(result, style) + [""] + table_lines(result)
    if written:
        lines += ["", written]  # paths are not wrapped: they are copied from here
    return "\n".join(lines)


def head_lines(result: Analysis, style: Style) -> list[str]:
    """The capture (files, span, damage and other warnings) and who closed its connections."""
    cap = result.capture
    paths = [f.path for f in cap.files]
    names = ", ".join(paths) if len(paths) <= 3 else f"{len(paths):,} files ({paths[0]} ... {paths[-1]})"
    span = ""
    if cap.first_ts is not None and cap.last_ts is not None:
        start = utc(cap.first_ts)
        span = f", {start} UTC + {cap.last_ts - cap.first_ts:,.3f} s"
    lines = style.wrap(f"{names}: {plural(cap.frames, 'frame')}, {plural(cap.tcp_packets, 'TCP segment')}{span}")
    for joined in cap.joined:
        lines += style.wrap(points_text(joined), 2)
    for w in cap.warnings:
        lines += style.wrap(w, 4, style.paint("warning: ", COLOURS[Severity.warning]))
    c = result.columns
    closes = Counter(zip(np.asarray(c["close_kind"], object).tolist(), np.asarray(c["active_closer"], object).tolist()))
    tw = result.options.behaviour_of(result.options.os).time_wait_s
    text = f"{closes_text(closes)}; TIME_WAIT {tw:g} s ({result.options.os.value} profile)"
    if "one_sided" in c and len(result):
        one = int(np.sum(np.asarray(c["one_sided"], bool)))
        text += f"; one direction only in the capture: {one:,} ({percent(one / len(result))})" if one else ""
    lost = cap.loss
    if lost.bytes:  # the capture itself missed segments: every verdict below is qualified by it
        text += (f"; the capture missed {plural(lost.bytes, 'byte')} that the peers acknowledged, in "
                 f"{plural(lost.connections, 'connection')}")
    return lines + style.wrap(text, 2)


def points_text(j: JoinedPoints) -> str:
    """Two captures of one path joined: which, their clocks, and the segments lost between them."""
    first, other = j.names
    error = f" ± {j.uncertainty_s * 1e3:,.3f} ms" if j.uncertainty_s == j.uncertainty_s else ""
    only = [f"{n:,} at {name} only" for n, name in zip(j.only, j.names) if n]
    text = (f"capture points joined: {first} and {other} saw the same {plural(j.both, 'connection')}"
            f"{' (' + ', '.join(only) + ')' if only else ''}, each counted once; {other}'s clock is "
            f"{j.offset_s:+,.6f} s{error} against {first}'s (from {plural(j.segments, 'segment')} seen at both); ")
    lost = sum(sum(c.values()) for c in j.lost.values())
    if not lost:
        return text + "no segment lost between them"
    said = [f"{'client to server' if d == 'c2s' else 'server to client'} {sum(c.values()):,} ("
            + ", ".join(f"{n:,} {kind}{'s' if n != 1 else ''}" for kind, n in c.most_common()) + ")"
            for d, c in j.lost.items() if c]
    return text + f"{plural(lost, 'segment')} lost between them: " + "; ".join(said)


def closes_text(closes: Mapping[tuple[str, str], int]) -> str:
    """'1,203 connections: closed first by the client 1,100, the server 100, both 3; aborted (RST)
    by the server 60; not closed: 20 open' from counts of (close_kind, active_closer)."""
    total = sum(closes.values())

    def by(kinds: tuple[str, ...], closer: str) -> int:
        return sum(n for (k, cl), n in closes.items() if k in kinds and cl == closer)

    orderly = ("fin", "simultaneous", "fin_then_rst")
    parts = []
    first = [f"the {side} {by(orderly, side):,}" if side != "both" else f"both {by(orderly, side):,}"
             for side in ("client", "server", "both") if by(orderly, side)]
    if first:
        parts.append("closed first by " + ", ".join(first))
    aborts = [f"the {side} {by(('rst',), side):,}" for side in ("client", "server") if by(("rst",), side)]
    if aborts:
        parts.append("aborted (RST, no FIN) by " + ", ".join(aborts))
    rest = [(k.value, sum(n for (kind, _), n in closes.items() if kind == k.value))
            for k in CloseKind if k.value not in (*orderly, "rst")]
    unknown = sum(n for (kind, cl), n in closes.items() if kind in (*orderly, "rst") and cl == "none")
    rest += [("closer unknown", unknown)]
    if any(n for _, n in rest):
        parts.append("not closed: " + ", ".join(f"{n:,} {name}" for name, n in rest if n))
    return plural(total, "connection") + (": " + "; ".join(parts) if parts else "")


def findings_lines(result: Analysis, style: Style) -> list[str]:
    """The findings, most severe first, each with its advice; or, when there are none, the
    highest TIME_WAIT and port use seen, so that "nothing found" has its numbers."""
    found = result.host_views.findings
    lines = ["findings, most severe first" if found else "findings"]
    for f in found[:FINDINGS_SHOWN]:
        word = style.paint(f"{f.severity.value.upper():<8}", COLOURS[f.severity])
        lines += style.wrap(f"{f.kind.value}: {f.message}", INDENT, f"  {word} ")
        lines += style.wrap(f"advice: {f.advice}", INDENT + 2, " " * INDENT)
    if len(found) > FINDINGS_SHOWN:
        rest = Counter(f.severity.value for f in found[FINDINGS_SHOWN:])
        lines += style.wrap(f"... and {plural(len(found) - FINDINGS_SHOWN, 'more finding')} ("
                            + ", ".join(f"{n:,} {s}" for s, n in rest.items())
                            + "): all are in the findings table (-o DIR/) and the report (--html)", INDENT, "  ")
    if not found:
        lines += style.wrap(quiet_numbers(result), 8, "  none: ")
    return lines


def quiet_numbers(result: Analysis) -> str:
    t = result.host_views.tables
    hosts, dests = t.hosts, t.destinations
    if not len(hosts["host"]):
        return "no connections"
    h = int(np.argmax(hosts["time_wait_peak"]))
    low = " (or more: TIME_WAITs begun before the capture are not in it)" if (
        hosts["time_wait_peak_may_be_low"][h] and hosts["time_wait_peak"][h]) else ""
    text = f"peak TIME_WAIT {int(hosts['time_wait_peak'][h]):,} on {hosts['host'][h]}{low}"
    if len(dests["client_ip"]):
        d = int(np.argmax(dests["port_utilisation_peak"]))
        text += (f"; busiest client {dests['client_ip'][d]} -> {endpoint(dests['server_ip'][d], dests['server_port'][d])} "
                 f"held {int(dests['ports_in_use_peak'][d]):,} of {int(dests['port_range_size'][d]):,} ports "
                 f"({percent(float(dests['port_utilisation_peak'][d]))})")
    return text


def table_lines(result: Analysis) -> list[str]:
    """Connections by close kind and who closed first, then how the capture was read."""
    c = result.columns
    cap = result.capture
    lines = []
    if len(cap.files) > 1:
        lines.append("read as one continuous capture (pieces in time order)" if cap.continuous
                     else "read as separate captures")
    lines += reader_lines(cap)
    if cap.cluster:
        lines.append(f"analyzed on {cap.cluster}")
    if len(result):
        lines += ([""] if lines else []) + [
            "                               closed first by           TIME_WAIT on",
            "close kind     connections   client  server    both    client  server"]
        kind, closer, tw = (np.asarray(c[name], object) for name in ("close_kind", "active_closer", "time_wait_on"))
        for k in CloseKind:
            sel = kind == k.value
            if sel.any():
                who, on = closer[sel], tw[sel]
                lines.append(f"{k.value:<14} {int(sel.sum()):>11,}   {int((who == 'client').sum()):>6,}  "
                             f"{int((who == 'server').sum()):>6,}  {int((who == 'both').sum()):>6,}    "
                             f"{int(np.isin(on, ['client', 'both']).sum()):>6,}  {int(np.isin(on, ['server', 'both']).sum()):>6,}")
    return lines


def reader_lines(cap: CaptureSummary) -> list[str]:
    """What read the capture, when it was not the fast reader alone, the carriers numbered, and
    the copies of connections seen at several points that were set aside."""
    lines = []
    if cap.reader in (ReaderKind.scapy, ReaderKind.tshark):
        lines.append(f"read with --reader {cap.reader}")
    if cap.handed_off:
        what = ", ".join(f"{k} {v:,}" for k, v in sorted(cap.handed_off.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(f"frames the fast reader does not decode were handed over: {what}")
    if cap.carried_in:
        lines.append("carried otherwise (flow ids start with cN/):")
        lines += [f"  {where_prefix(k)[:-1]} = {what}" for k, what in sorted(cap.carried_in.items())]
    if cap.copies:
        where = ", ".join(f"{k} {v:,}" for k, v in cap.copies.packets.most_common())
        n = cap.copies.connections
        lines.append(f"{plural(n, 'connection')} seen at several points: "
                     f"{sum(cap.copies.packets.values()):,} copied segments set aside ({where})")
    return lines
