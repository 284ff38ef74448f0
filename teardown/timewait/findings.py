"""Host-level tables and per-flow flags -> one ranked list of findings in plain words, each with
its numbers, a severity and the advice that fits (docs/rules.md "Host-level views" and "Findings
and their severity").

The host-level rules are here, the per-flow ones in flow_findings.py; each rule is one function
returning its findings. `findings` runs them all and ranks the result: most severe first, then
the largest number behind the finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ..options import Options
from ..present import endpoint
from ..schema import CloseCause, FindingKind, Severity
from .finding import SEVERITY_RANK, Columns, Finding, clock, percent
from .flow_findings import HABIT_SHARE as MOST
from .flow_findings import SERVER_HABIT_MIN as MIN_CONNECTIONS
from .flow_findings import flow_findings
from .tables import Tables

PORTS_NEARLY_ALL = 0.9  # of the ephemeral range in use at once: the next burst fails
PORTS_HALF = 0.5  # of the range in use at once: worth a warning before the load doubles
TIME_WAIT_MANY = 1_000  # TIME_WAITs held at once by one host: worth knowing
TIME_WAIT_TOO_MANY = 10_000  # ...a tenth of tcp_max_tw_buckets on a machine with ~24 GB (131,072)

# Findings whose numbers count TIME_WAITs, and so are lower bounds early in a capture.
COUNTS_TIME_WAIT = {FindingKind.port_exhaustion, FindingKind.port_pressure, FindingKind.server_close,
                    FindingKind.time_wait_pile_up}

CAUSE_TEXT = {
    CloseCause.http10_request: "the clients' requests are HTTP/1.0 without keep-alive",
    CloseCause.connection_close_request: "the clients' requests say `Connection: close`",
    CloseCause.http10_response: "the server answers HTTP/1.0 without keep-alive",
    CloseCause.connection_close_response: "the server's responses say `Connection: close`",
    CloseCause.http_keep_alive: "HTTP/1.1 keep-alive connections the server closed later (idle timeout "
                                "or request limit)",
    CloseCause.not_http: "not HTTP: the protocol has the server close",
}
CAUSE_ADVICE = {
    CloseCause.http10_request: "have the clients speak HTTP/1.1 and keep connections alive (pooling)",
    CloseCause.connection_close_request: "drop `Connection: close` in the clients and pool connections",
    CloseCause.http10_response: "configure the server for HTTP/1.1 keep-alive",
    CloseCause.connection_close_response: "enable keep-alive in the server (check its request limit and "
                                          "keep-alive timeout)",
    CloseCause.http_keep_alive: "raise the server's keep-alive timeout above the clients' idle time, or "
                                "let clients close idle connections first",
}
LET_CLIENTS_CLOSE = ("let clients close first (keep-alive and connection pooling; an application-level "
                     "goodbye after which the client closes); SO_REUSEADDR lets the listener restart "
                     "despite TIME_WAIT; SO_LINGER {1,0} only with care (it discards unsent data and "
                     "skips TIME_WAIT's protection)")


def findings(t: Tables, c: Columns, options: Options) -> list[Finding]:
    rules: list[Callable[[Tables, Columns, Options], Iterator[Finding]]] = [
        port_exhaustion, server_close, time_wait_pile_up]
    out = [f for rule in rules for f in rule(t, c, options)]
    if {f.kind for f in out} & COUNTS_TIME_WAIT:  # the caveat qualifies those peaks
        out += hidden_before_capture(t, c, options)
    out += flow_findings(t, c, options)
    return sorted(out, key=lambda f: (SEVERITY_RANK[f.severity], -f.weight, f.kind.value, f.subject))


def peers_text(t: Tables, host: int, top: int = 3) -> str:
    """The peers whose TIME_WAITs made up `host`'s peak: '198.18.0.1 (1,950), ...'."""
    who, peer, count = t.peak_peers
    sel = np.flatnonzero(who == host)
    sel = sel[np.argsort(-count[sel], kind="stable")][:top]
    text = ", ".join(f"{t.host_labels[peer[i]]} ({int(count[i]):,})" for i in sel)
    more = int(np.sum(who == host)) - len(sel)
    return text + (f" and {more:,} more" if more > 0 else "")


def port_exhaustion(t: Tables, c: Columns, options: Options) -> Iterator[Finding]:
    """A client held nearly all of its ephemeral range toward one destination (critical), or opens
    connections faster than the range sustains for the TIME_WAIT length, or held half of it
    (warning). Sustainable rate = range / TIME_WAIT length (docs/rules.md "Host-level views")."""
    d = t.destinations
    lo, hi = options.port_range
    holding_rate = d["observed_rate_peak"] * d["client_time_wait_share"]
    candidates = (holding_rate > d["sustainable_rate"]) | (d["port_utilisation_peak"] >= PORTS_HALF)
    for i in np.flatnonzero(candidates):
        used, size = int(d["ports_in_use_peak"][i]), int(d["port_range_size"][i])
        rate, sustainable = float(d["observed_rate_peak"][i]), float(d["sustainable_rate"][i])
        tw_share = float(d["client_time_wait_share"][i])
        share = used / size
        if share >= PORTS_NEARLY_ALL:
            kind, severity = FindingKind.port_exhaustion, Severity.critical
        elif rate * tw_share > sustainable or share >= PORTS_HALF:
            kind, severity = FindingKind.port_pressure, Severity.warning
        else:
            continue
        subject = f"{d['client_ip'][i]} -> {endpoint(d['server_ip'][i], d['server_port'][i])}"
        msg = (f"{subject} held {used:,} of {size:,} ephemeral ports ({percent(share)}) at "
               f"{clock(float(d['ports_in_use_peak_ts'][i]))} (open connections plus its TIME_WAITs); it "
               f"opened up to {rate:,.0f} connections per second, ")
        if rate * tw_share > sustainable:
            msg += f"{rate / sustainable:,.1f}× the sustainable {sustainable:,.2f}/s ({size:,} ports ÷ "
            msg += f"{size / sustainable:g} s TIME_WAIT)"
            if tw_share < 1:
                msg += f", and closed {percent(tw_share)} of them first"
            wait = float(d["seconds_to_exhaustion"][i])
            msg += "; the range was full" if wait == 0 else f"; at that rate the range is full after {wait:,.1f} s"
        else:
            msg += f"within the sustainable {sustainable:,.2f}/s"
        reuses = int(d["time_wait_reuses"][i])
        if reuses:
            msg += f". {reuses:,} connections reused a 4-tuple still in TIME_WAIT"
        outside = int(d["client_ports_outside_range"][i])
        if outside:
            msg += (f". {outside:,} connections used client ports outside --port-range {lo}-{hi}: "
                    "that range may not be this client's")
        yield Finding(severity, kind, subject, msg + ".",
                      "reuse connections (keep-alive, pooling); widen net.ipv4.ip_local_port_range; "
                      "net.ipv4.tcp_tw_reuse=1 on this client lets outbound connections take over "
                      "TIME_WAITs older than 1 s (needs TCP timestamps); or spread the load over more "
                      "server addresses or ports", weight=share + rate / max(sustainable, 1e-9))


def server_close(t: Tables, c: Columns, options: Options) -> Iterator[Finding]:
    """A server endpoint closes most of its connections first, so it holds their TIME_WAIT
    (docs/rules.md "Host-level views", server-side active close), with the HTTP cause where payload shows it."""
    s = t.servers
    for i in np.flatnonzero((s["closed"] >= MIN_CONNECTIONS) & (s["server_closed_first_share"] > MOST)):
        share, closed = float(s["server_closed_first_share"][i]), int(s["closed"][i])
        peak, total = int(s["server_time_wait_peak"][i]), int(s["server_time_wait_total"][i])
        subject = endpoint(s["server_ip"][i], s["server_port"][i])
        msg = f"{subject} closed {percent(share)} of {closed:,} connections first"
        if peak:
            msg += (f"; it held {peak:,} TIME_WAIT sockets at {clock(float(s['server_time_wait_peak_ts'][i]))}"
                    f" ({total:,} over the capture)")
        cause = s["cause"][i]
        advice = LET_CLIENTS_CLOSE
        if cause == CloseCause.no_payload:
            msg += ". The capture holds no payload to tell why"
        elif cause is not None:
            msg += f". Cause: {CAUSE_TEXT[CloseCause(cause)]} ({percent(float(s['cause_share'][i]))} of them)"
            if CloseCause(cause) in CAUSE_ADVICE:
                advice = CAUSE_ADVICE[CloseCause(cause)] + "; " + advice
        severity = Severity.warning if peak >= TIME_WAIT_MANY or total >= 100 else Severity.info
        yield Finding(severity, FindingKind.server_close, subject, msg + ".", advice, weight=peak)


def time_wait_pile_up(t: Tables, c: Columns, options: Options) -> Iterator[Finding]:
    """A host held many TIME_WAIT sockets at one instant; say with whom."""
    h = t.hosts
    for i in np.flatnonzero(h["time_wait_peak"] >= TIME_WAIT_MANY):
        peak = int(h["time_wait_peak"][i])
        severity = Severity.warning if peak >= TIME_WAIT_TOO_MANY else Severity.info
        msg = (f"{h['host'][i]} held {peak:,} TIME_WAIT sockets at {clock(float(h['time_wait_peak_ts'][i]))}, "
               f"with {peers_text(t, int(i))}; {int(h['time_wait_total'][i]):,} over the capture, "
               f"{float(h['time_wait_s'][i]):g} s each")
        as_server = h["connections_as_server"][i] >= h["connections_as_client"][i]
        advice = ("let clients close first, or keep connections alive (pooling)" if as_server else
                  "reuse connections (keep-alive, pooling); net.ipv4.tcp_tw_reuse=1 lets outbound "
                  "connections take over TIME_WAITs (needs TCP timestamps)")
        yield Finding(severity, FindingKind.time_wait_pile_up, str(h["host"][i]), msg + ".",
                      advice + "; each TIME_WAIT holds memory and a slot of tcp_max_tw_buckets, beyond which "
                      "Linux skips TIME_WAIT and its protection", weight=peak)


def hidden_before_capture(t: Tables, c: Columns, options: Options) -> Iterator[Finding]:
    """TIME_WAITs begun before the capture started are invisible: peaks within one TIME_WAIT
    length of the start are lower bounds (docs/rules.md "Host-level views")."""
    h = t.hosts
    low = np.flatnonzero(h["time_wait_peak_may_be_low"] & (h["time_wait_peak"] > 0))
    if not len(low):
        return
    start = t.capture_span[0]
    longest = float(np.max(h["time_wait_s"][low]))
    names = ", ".join(f"{h['host'][i]} ({int(h['time_wait_peak'][i]):,})"
                      for i in low[np.argsort(-h["time_wait_peak"][low], kind="stable")][:3])
    more = f" and {len(low) - 3:,} more" if len(low) > 3 else ""
    yield Finding(Severity.info, FindingKind.hidden_before_capture, "capture",
                  f"TIME_WAITs begun before the capture started ({clock(start)}) are not in it: counts until "
                  f"{clock(start + longest)} are lower bounds, and the peaks of {names}{more} fall in that time.",
                  f"capture for longer than the TIME_WAIT length ({longest:g} s) before judging a peak, or "
                  "compare with `ss -tan state time-wait | wc -l` on the host", weight=float(len(low)))
