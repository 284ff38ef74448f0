"""The report's tables -> its verdict: the headline (who closed the connections, what is wrong,
how bad), a few headline numbers, each coloured by the severity of the finding it stands for,
and the findings table as the analysis ranked it, each with its advice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import charts
from ..present import endpoint
from ..schema import CloseKind
from ..terminal import closes_text
from ..times import utc
from .charts import percent
from .data import ReportData

SEVERITIES = ("critical", "warning", "info")  # schema.Severity, worst first


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    value: str
    detail: str
    number: float  # what `value` shows, for the tests against the tables
    kinds: tuple[str, ...] = ()  # the finding kinds this number is the evidence of
    severity: str = "none"  # the worst of those findings: critical, warning, info or none


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str
    kind: str
    subject: str
    message: str
    advice: str


@dataclass(frozen=True, slots=True)
class Headline:
    """The first sentence of the report: who closed, what is wrong, how bad."""

    severity: str  # the worst finding's, or "none"
    closed: str  # "2,000 connections: closed first by the server 2,000; ..." (terminal.closes_text)
    wrong: str  # what the worst findings are about, or that there is none
    tally: str  # "1 warning, 2 info"


def _clock(ts: Any) -> str:
    if ts is None or ts != ts:  # empty: None or NaN
        return "an unknown time"
    return utc(float(ts), "%Y-%m-%d %H:%M:%S UTC")


def closed_by(data: ReportData) -> Counter[str]:
    """Connections by who ended them first (docs/rules.md, "Vocabulary": active closer): an
    orderly close by client, server or both; an abort (`rst`) by the side that sent the RST."""
    flows = data.columns
    closer = flows["active_closer"]
    aborted = flows["close_kind"] == "rst"
    out: Counter[str] = Counter()
    for side in ("client", "server", "both"):
        is_side = closer == side
        out[side] = int((is_side & ~aborted).sum())
        out[f"aborted by {side}"] = int((is_side & aborted).sum())
    return out


def findings(data: ReportData) -> list[Finding]:
    table = data.tables.get("findings")
    if table is None:
        return []
    return [Finding(str(r["severity"]), str(r["kind"]), str(r["subject"]), str(r["message"]), str(r["advice"]))
            for r in table.to_pylist()]


def worst(severities: list[str]) -> str:
    return next((s for s in SEVERITIES if s in severities), "none")


def headline(data: ReportData, found: list[Finding]) -> Headline:
    severity = worst([f.severity for f in found])
    counts = Counter(f.severity for f in found)
    tally = ", ".join(f"{counts[s]:,} {s}" for s in SEVERITIES if counts[s])
    tops = [f"{f.kind} on {f.subject}" for f in found if f.severity == severity]
    more = f" and {len(tops) - 3:,} more" if len(tops) > 3 else ""
    wrong = ("; ".join(tops[:3]) + more) if tops else "no flow or host has a finding: nothing here calls for action"
    flows = data.columns
    closes = Counter(zip(flows["close_kind"].tolist(), flows["active_closer"].tolist()))
    return Headline(severity, closes_text(closes), wrong, tally or "no finding")


def _coloured(figure: Figure, found: list[Finding]) -> Figure:
    severity = worst([f.severity for f in found if f.kind in figure.kinds])
    return Figure(figure.label, figure.value, figure.detail, figure.number, figure.kinds, severity)


def figures(data: ReportData, found: list[Finding] | None = None) -> list[Figure]:
    """The headline numbers, each coloured by the worst finding of the kinds it is evidence of."""
    n = data.flows.num_rows
    found = findings(data) if found is None else found
    close_kind = data.columns["close_kind"]
    kinds = sorted(((int((close_kind == k.value).sum()), k.value) for k in CloseKind), key=lambda c: -c[0])
    ended = ", ".join(f"{n:,} {kind}" for n, kind in kinds if n)  # the commonest first
    out = [Figure("Connections", f"{n:,}", f"by close kind: {ended}" if ended else "none", n)]
    counts = closed_by(data)
    closed = sum(counts.values())
    if closed:
        server = (counts["server"] + counts["aborted by server"]) / closed
        detail = "; ".join(f"{k} {n:,}" for k, n in counts.items() if n)
        out.append(Figure("Closed first by the server", percent(server), f"of {closed:,} closed: {detail}", server,
                          ("server-close", "abort")))
    hosts = data.columns_of("hosts") if "hosts" in data.tables else None
    peaks = np.nan_to_num(np.asarray(hosts["time_wait_peak"], np.float64)) if hosts is not None else np.zeros(0)
    if peaks.max(initial=0) > 0:
        assert hosts is not None
        top = hosts.row(int(np.argmax(peaks)))
        low = " (a lower bound: TIME_WAITs begun before the capture are invisible)" \
            if bool(top["time_wait_peak_may_be_low"]) else ""
        out.append(Figure("Most TIME_WAIT at once", f"{int(top['time_wait_peak']):,}",
                          f"on {top['host']} at {_clock(top['time_wait_peak_ts'])}{low}", int(top["time_wait_peak"]),
                          ("time-wait-pile-up", "hidden-before-capture")))
    dests = data.columns_of("destinations") if "destinations" in data.tables else None
    if dests is not None and len(dests["client_ip"]):
        full = dests.row(int(np.argmax(np.nan_to_num(np.asarray(dests["port_utilisation_peak"], np.float64)))))
        share = float(full["port_utilisation_peak"])
        out.append(Figure("Fullest ephemeral port range", percent(share),
                          f"{int(full['ports_in_use_peak']):,} of {int(full['port_range_size']):,} ports, "
                          f"{full['client_ip']} → {endpoint(full['server_ip'], full['server_port'])}", share,
                          ("port-exhaustion",)))
        with np.errstate(divide="ignore", invalid="ignore"):
            load = np.asarray(dests["observed_rate_peak"], np.float64) / np.asarray(dests["sustainable_rate"], np.float64)
        fast = dests.row(int(np.argmax(np.nan_to_num(load))))
        rate, sustainable = float(fast["observed_rate_peak"]), float(fast["sustainable_rate"])
        out.append(Figure("Fastest new-connection rate", charts.rate(rate),
                          f"against {charts.rate(sustainable)} sustainable, {fast['client_ip']} → "
                          f"{endpoint(fast['server_ip'], fast['server_port'])}", rate, ("port-pressure",)))
    return [_coloured(f, found) for f in out]

