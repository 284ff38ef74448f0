"""Host-level tables -> a short ranked list of findings in plain words, each with its numbers,
a severity and the advice that fits (the mitigations of TEARDOWN-RULES.md "Host-level views").

Each rule is one function returning its findings; `findings` runs them all and ranks the
result: most severe first, then the largest number behind the finding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..options import Options
from ..schema import CloseCause, FindingKind, Severity
from .tables import Columns, Tables

MIN_CONNECTIONS = 20  # below this a share says little about a habit
MOST = 0.5  # "most connections": a server that closes, or a host that aborts, more than half
PORTS_NEARLY_ALL = 0.9  # of the ephemeral range in use at once: the next burst fails
PORTS_HALF = 0.5  # of the range in use at once: worth a warning before the load doubles
TIME_WAIT_MANY = 1_000  # TIME_WAITs held at once by one host: worth knowing
TIME_WAIT_TOO_MANY = 10_000  # ...a tenth of tcp_max_tw_buckets on a machine with ~24 GB (131,072)
REFUSED_MANY = 10  # refused SYNs to one endpoint before it is worth a line

# Findings whose numbers count TIME_WAITs, and so are lower bounds early in a capture.
COUNTS_TIME_WAIT = {FindingKind.port_exhaustion, FindingKind.port_pressure, FindingKind.server_close,
                    FindingKind.time_wait_pile_up}
SEVERITY_RANK = {Severity.critical: 0, Severity.warning: 1, Severity.info: 2}

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


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    kind: FindingKind
    subject: str
    message: str
    advice: str
    weight: float = 0.0  # the number that ranks findings of one severity: larger first


def findings(t: Tables, c: Columns, options: Options) -> list[Finding]:
    rules: list[Callable[[Tables, Columns, Options], Iterator[Finding]]] = [
        port_exhaustion, server_close, time_wait_pile_up, abort_habit, refused, assassination,
        reuse_rejected]
    out = [f for rule in rules for f in rule(t, c, options)]
    if {f.kind for f in out} & COUNTS_TIME_WAIT:  # the caveat qualifies those numbers
        out += hidden_before_capture(t, c, options)
    return sorted(out, key=lambda f: (SEVERITY_RANK[f.severity], -f.weight, f.kind.value, f.subject))


def clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts)) + " UTC"


def percent(share: float) -> str:
    """Whole percent, never rounded up to 100 % or down to 0 % when it is not."""
    value = round(share * 100)
    if share < 1:
        value = min(value, 99)
    if 0 < share and value == 0:
        return "< 1 %"
    return f"{value} %"


def endpoint(ip: object, port: object) -> str:
    return f"[{ip}]:{port}" if ":" in str(ip) else f"{ip}:{port}"


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
    (warning). Sustainable rate = range / TIME_WAIT length (TEARDOWN-RULES.md "Ephemeral-port
    pressure")."""
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
    (TEARDOWN-RULES.md "Server-side active close"), with the HTTP cause where payload shows it."""
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


def abort_habit(t: Tables, c: Columns, options: Options) -> Iterator[Finding]:
    """A server endpoint or a host ends most connections with an RST instead of a FIN: the
    SO_LINGER {1,0} pattern (TEARDOWN-RULES.md "Close verdicts" 3)."""
    advice = ("an RST skips TIME_WAIT but discards unsent data and removes TIME_WAIT's protection "
              "against old duplicates; prefer an orderly close (an application-level goodbye, then the "
              "client closes first) and keep-alive")
    s = t.servers
    flagged = set()
    for i in np.flatnonzero((s["aborted_by_server"] >= MIN_CONNECTIONS * MOST)
                            & (s["aborted_by_server"] > MOST * s["closed"])):
        aborts, closed = int(s["aborted_by_server"][i]), int(s["closed"][i])
        subject = endpoint(s["server_ip"][i], s["server_port"][i])
        flagged.add(str(s["server_ip"][i]))
        classes = f"; RST classes: {s['rst_classes'][i]}" if s["rst_classes"][i] is not None else ""
        yield Finding(Severity.warning, FindingKind.abort_habit, subject,
                      f"{subject} aborted {aborts:,} of {closed:,} connections ({percent(aborts / closed)}) "
                      f"with an RST instead of a FIN (SO_LINGER {{1,0}} pattern{classes}).", advice, weight=aborts)
    h = t.hosts
    for i in np.flatnonzero((h["aborts_sent"] >= MIN_CONNECTIONS * MOST) & (h["aborts_sent"] > MOST * h["connections"])):
        aborts, total = int(h["aborts_sent"][i]), int(h["connections"][i])
        if str(h["host"][i]) not in flagged:
            yield Finding(Severity.warning, FindingKind.abort_habit, str(h["host"][i]),
                          f"{h['host'][i]} aborted {aborts:,} of its {total:,} connections "
                          f"({percent(aborts / total)}) with an RST instead of a FIN (SO_LINGER {{1,0}} pattern).",
                          advice, weight=aborts)


def refused(t: Tables, c: Columns, options: Options) -> Iterator[Finding]:
    """SYNs answered by RST+ACK: nothing listened on that port."""
    s = t.servers
    for i in np.flatnonzero(s["refused"] >= REFUSED_MANY):
        subject = endpoint(s["server_ip"][i], s["server_port"][i])
        n = int(s["refused"][i])
        yield Finding(Severity.info, FindingKind.refused, subject,
                      f"{subject} refused {n:,} of {int(s['connections'][i]):,} connection attempts (RST+ACK: "
                      "nothing listening).", "check that the service listens there, or why clients call it",
                      weight=n)


def _per_holder(t: Tables, c: Columns, mask: np.ndarray) -> dict[str, int]:
    """Count flagged flows by the host that held (or would hold) the TIME_WAIT."""
    on = c["time_wait_on"][mask]
    holders = np.where(on == "client", c["client_ip"][mask], c["server_ip"][mask])
    names, counts = np.unique(holders.astype(str), return_counts=True)
    return dict(zip(names.tolist(), counts.tolist()))


def assassination(t: Tables, c: Columns, options: Options) -> Iterator[Finding]:
    """TIME_WAITs ended early by an in-sequence RST (RFC 1337); the consequence depends on the
    holder's OS profile (TEARDOWN-RULES.md "TIME_WAIT")."""
    mask = np.asarray(c["tw_assassination"], bool)
    for host, n in _per_holder(t, c, mask).items():
        kills = options.behaviour_of(options.profile_of(host)).rst_kills_time_wait
        consequence = ("under its OS profile the TIME_WAIT ended at once" if kills
                       else "its OS profile ignores such RSTs, so the TIME_WAIT survived")
        yield Finding(Severity.warning if kills else Severity.info, FindingKind.assassination, host,
                      f"{n:,} of {host}'s TIME_WAITs were hit by an in-sequence RST (RFC 1337 assassination); "
                      f"{consequence}.",
                      "net.ipv4.tcp_rfc1337=1 makes Linux ignore RSTs in TIME_WAIT; find who sends them (a "
                      "peer answering old duplicates, or a client answering a rejected SYN)", weight=n)


def reuse_rejected(t: Tables, c: Columns, options: Options) -> Iterator[Finding]:
    """SYNs reusing a 4-tuple whose TIME_WAIT rejected them: each costs the client an RST and a
    retry (TEARDOWN-RULES.md "Reuse of a 4-tuple during TIME_WAIT")."""
    mask = c["reuse_verdict"] == "rejected"
    for host, n in _per_holder(t, c, np.asarray(mask, bool)).items():
        yield Finding(Severity.warning, FindingKind.reuse_rejected, host,
                      f"{n:,} SYNs reusing a 4-tuple still in {host}'s TIME_WAIT were rejected (answered with "
                      "an ACK of the old connection); each cost the client an RST and a retry.",
                      "let clients close first so the TIME_WAIT is theirs; timestamps on both sides let a "
                      "TIME_WAIT accept a newer SYN (RFC 6191); widen the clients' port range", weight=n)


def hidden_before_capture(t: Tables, c: Columns, options: Options) -> Iterator[Finding]:
    """TIME_WAITs begun before the capture started are invisible: peaks within one TIME_WAIT
    length of the start are lower bounds (TEARDOWN-RULES.md "TIME_WAIT occupancy")."""
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
