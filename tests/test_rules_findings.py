"""Findings word for word (docs/rules.md "Findings and their severity"): each test writes the
verdict rows a capture would give, by hand, and checks every finding they make: its severity,
subject, counts, examples and advice. The counts and the thresholds come from the rows written
here and from the rules' table, never from a run of the tool."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from teardown.options import Options, OsProfile
from teardown.schema import CloseCause, FindingKind, Severity
from teardown.timewait import host_views
from teardown.timewait.flow_findings import FLOW_FLAGS

from .hand_rows import A, B, C, T0, flows

ADVICE = {
    "server-close": "where the server must close, keep connections alive longer so it closes fewer; or let clients "
                    "close first",
    "abort": "an RST skips TIME_WAIT but discards unsent data and removes TIME_WAIT's protection against old "
             "duplicates; prefer an orderly close (an application-level goodbye, then the client closes first) and "
             "keep-alive",
    "fin-retransmission": "look for loss on the path (interface errors, drops in `nstat -az "
                          "TcpExtTCPLostRetransmit`); a lost final ACK costs the closer one more round trip and "
                          "restarts its TIME_WAIT",
    "assassination": "net.ipv4.tcp_rfc1337=1 makes Linux ignore RSTs in TIME_WAIT; find who sends them (a peer "
                     "answering old duplicates, or a client answering a rejected SYN)",
    "reuse-in-time-wait": "fine while timestamps are on at both ends; a client that reuses ports this fast is near "
                          "the end of its ephemeral range: pool connections or widen net.ipv4.ip_local_port_range",
    "reuse-rejected": "let clients close first so the TIME_WAIT is theirs; timestamps on both sides let a TIME_WAIT "
                      "accept a newer SYN (RFC 6191); widen the clients' port range",
    "scan": "if the source is not yours, it is mapping open ports: block it; if it is your client, check the "
            "addresses and ports it is given",
    "refused": "check that the service listens there (`ss -ltn`), or why clients call it",
    "handshake-reset": "if the clients are not yours, they are probing for open ports: block them; if they are, "
                       "look for a tool that sends SYNs from a raw socket",
    "unanswered": "a firewall dropping SYNs, a host that is down, or a full accept queue (`nstat -az "
                  "TcpExtListenDrops` on the server)",
    "simultaneous": "usual for protocols where both sides close at once; both hosts pay a TIME_WAIT each",
    "data-after-fin": "find the stack or middlebox that sends it; the receiver discards it or answers with an RST",
    "half-close": "normal for request/response protocols that shut down writing; the closer waits in FIN_WAIT_2 "
                  "meanwhile",
    "capture-loss": "capture with a larger buffer (tcpdump -B, dumpcap -B), a snaplen that fits, or closer to the "
                    "host; check the capture's own drop counters",
    "one-sided": "capture where both directions pass (both directions of the SPAN, or on the host itself)",
    "roles-inferred": "start the capture before the connections open to see who opened them",
}
LET_CLIENTS_CLOSE = ("let clients close first (keep-alive and connection pooling; an application-level goodbye after "
                     "which the client closes); SO_REUSEADDR lets the listener restart despite TIME_WAIT; SO_LINGER "
                     "{1,0} only with care (it discards unsent data and skips TIME_WAIT's protection)")


def findings(cols: dict[str, Any], span: float = 100.0, **options: Any) -> list[tuple[str, str, str, str]]:
    """(severity, kind, subject, message) of every finding, in rank order; checks the advice."""
    v = host_views(cols, T0, T0 + span, Options(**options))
    for f in v.findings:
        host_level = f.kind == FindingKind.server_close and " %" in f.message  # its advice: the cause's
        if f.kind.value in ADVICE and not host_level:
            assert f.advice == ADVICE[f.kind.value], f.kind
    return [(f.severity.value, f.kind.value, f.subject, f.message) for f in v.findings]


def ids(*ports: int, server: str = f"{B}:8080", client: str = A) -> str:
    """The examples part of a message: flows named client:port>server."""
    return ", ".join(f"{client}:{p}>{server}" for p in ports)


def test_server_endpoints_that_closed_some_connections_first() -> None:
    """Fewer than 20 closed connections, or not most of them: each server-first close is told
    per endpoint (info), the TIME_WAIT it leaves on the server."""
    cols = flows(dict(client_port=40000, active_closer="server"), dict(client_port=40001),
                 dict(client_port=40002, active_closer="server", close_kind="fin_then_rst", first_rst_by="client"),
                 dict(client_port=40003, active_closer="server", server_port=9090),
                 dict(client_port=40004, close_kind="open", active_closer="none"))  # not closed: not counted
    got = [f for f in findings(cols) if f[1] == "server-close"]
    assert got == [
        ("info", "server-close", f"{B}:8080", f"{B}:8080 closed 2 of its 3 connections first, so it holds their "
                                              f"TIME_WAIT (e.g. {ids(40000, 40002)})."),
        ("info", "server-close", f"{B}:9090", f"{B}:9090 closed its only connection first, so it holds its TIME_WAIT "
                                              f"(e.g. {ids(40003, server=f'{B}:9090')})."),
    ]


def _closes(server_first: int, closed: int, **extra: Any) -> dict[str, Any]:
    """`closed` orderly closes to B:8080, one a second; the first `server_first` of them the
    server's, each holding its 60 s TIME_WAIT from 0.5 s after the flow began."""
    return flows(*[dict(client_port=40000 + i, at=(i, i + 0.5), **(
        dict(active_closer="server", time_wait_on="server", tw=(i + 0.5, i + 60.5), cause=CloseCause.no_payload)
        if i < server_first else {}), **extra) for i in range(closed)])


def test_half_of_twenty_closes_is_not_yet_a_habit() -> None:
    """"Most" is more than half: 10 of 20 is told per flow; 11 of 20 by the host-level rule, with
    the TIME_WAIT peak (11 at once, at the 11th close) and why."""
    assert [f for f in findings(_closes(10, 20)) if f[1] == "server-close"] == [
        ("info", "server-close", f"{B}:8080", f"{B}:8080 closed 10 of its 20 connections first, so it holds their "
                                              f"TIME_WAIT (e.g. {ids(40000, 40001, 40002)} and 7 more).")]
    assert [f for f in findings(_closes(11, 20)) if f[1] == "server-close"] == [
        ("info", "server-close", f"{B}:8080", f"{B}:8080 closed 55 % of 20 connections first; it held 11 TIME_WAIT "
                                              "sockets at 22:13:30 UTC (11 over the capture). The capture holds no "
                                              "payload to tell why.")]


def test_nineteen_closes_are_too_few_for_a_habit() -> None:
    got = [f for f in findings(_closes(19, 19)) if f[1] == "server-close"]
    assert got == [("info", "server-close", f"{B}:8080", f"{B}:8080 closed all 19 of its connections first, so it "
                                                         f"holds their TIME_WAIT (e.g. {ids(40000, 40001, 40002)} and "
                                                         "16 more).")]


def test_a_server_close_habit_with_its_cause_and_the_advice_for_it() -> None:
    """30 server-first closes of 40, 21 of them HTTP/1.0 requests: the cause with its share
    and the advice that fits it before the general one."""
    rows = [dict(client_port=40000 + i, at=(i, i + 0.5), active_closer="server", time_wait_on="server",
                 tw=(i + 0.5, i + 60.5), cause=CloseCause.http10_request if i < 21 else CloseCause.not_http)
            for i in range(30)]
    rows += [dict(client_port=41000 + i, at=(i, i + 0.5)) for i in range(10)]
    v = host_views(flows(*rows), T0, T0 + 100, Options())
    (f,) = [f for f in v.findings if f.kind == FindingKind.server_close]
    assert (f.severity, f.subject) == (Severity.info, f"{B}:8080")
    assert f.message == (f"{B}:8080 closed 75 % of 40 connections first; it held 30 TIME_WAIT sockets at 22:13:49 UTC "
                         "(30 over the capture). Cause: the clients' requests are HTTP/1.0 without keep-alive (70 % of "
                         "them).")
    assert f.advice == "have the clients speak HTTP/1.1 and keep connections alive (pooling); " + LET_CLIENTS_CLOSE
    assert f.weight == 30


def test_a_server_close_cause_without_advice_of_its_own() -> None:
    rows = [dict(client_port=40000 + i, at=(i, i + 0.5), active_closer="server", time_wait_on="server",
                 tw=(i + 0.5, i + 60.5), cause=CloseCause.not_http) for i in range(20)]
    v = host_views(flows(*rows), T0, T0 + 100, Options())
    (f,) = [f for f in v.findings if f.kind == FindingKind.server_close]
    assert f.message.endswith(". Cause: not HTTP: the protocol has the server close (100 % of them).")
    assert f.advice == LET_CLIENTS_CLOSE


def test_a_hundred_server_time_waits_over_the_capture_make_it_a_warning() -> None:
    """Fewer than 1,000 at once, but 100 in all: warning; 99: info."""
    def rows(n: int) -> dict[str, Any]:
        return flows(*[dict(client_port=40000 + i, at=(i, i + 0.5), active_closer="server", time_wait_on="server",
                            tw=(i + 0.5, i + 1.5), cause=CloseCause.no_payload) for i in range(n)])

    for n, severity in ((100, "warning"), (99, "info")):
        (f,) = [f for f in findings(rows(n), span=200) if f[1] == "server-close"]
        assert f[0] == severity
        assert f[3] == (f"{B}:8080 closed 100 % of {n} connections first; it held 1 TIME_WAIT sockets at 22:13:20 UTC "
                        f"({n} over the capture). The capture holds no payload to tell why.")


def test_aborts_are_told_by_who_sent_the_rst_with_their_classes() -> None:
    """B:8080 sent the RST that ended 10 of its 12 connections (8 aborts, 2 after a FIN): the
    SO_LINGER habit, a warning. C, a client, aborted its only connection: info."""
    classes = ["in_window"] * 7 + ["exact"] * 2 + [None]
    rows = [dict(client_port=40000 + i, at=(i, i + 0.5), close_kind="rst" if i < 8 else "fin_then_rst",
                 active_closer="server", first_rst_by="server", rst_class=classes[i]) for i in range(10)]
    rows += [dict(client_port=40010 + i, at=(10 + i, 10.5 + i)) for i in range(2)]
    rows += [dict(client_ip=C, server_port=9090, at=(20, 21), close_kind="rst", first_rst_by="client",
                  rst_class="out_of_window")]
    got = [f for f in findings(flows(*rows)) if f[1] == "abort"]
    assert got == [
        ("warning", "abort", f"{B}:8080",
         f"{B}:8080 ended 10 of its 12 connections (83 %) with an RST: 8 with no FIN before it (an abort: SO_LINGER "
         "{1,0}, or close with unread data); 2 after a FIN (data arrived after the close). RST classes: in_window 7, "
         "exact 2. Most of its connections end this way: the SO_LINGER {1,0} pattern "
         f"(e.g. {ids(40000, 40001, 40002)} and 7 more)."),
        ("info", "abort", C,
         f"{C} ended its only connection (100 %) with an RST: 1 with no FIN before it (an abort: SO_LINGER {{1,0}}, or "
         f"close with unread data). RST classes: out_of_window 1 (e.g. {ids(40000, client=C, server=f'{B}:9090')})."),
    ]


def test_an_abort_habit_needs_ten_connections_and_most_of_them() -> None:
    """9 of 9 aborted, or 10 of 20: info; 10 of 19: warning. RSTs after a FIN, of no class."""
    def got(aborted: int, total: int) -> tuple[str, str]:
        rows = [dict(client_port=40000 + i, at=(i, i + 0.5), close_kind="fin_then_rst", first_rst_by="client",
                     rst_class=None) for i in range(aborted)]
        rows += [dict(client_port=41000 + i, at=(i, i + 0.5)) for i in range(total - aborted)]
        (f,) = [f for f in findings(flows(*rows)) if f[1] == "abort"]
        assert f[2] == A
        return f[0], f[3]

    assert got(9, 9) == ("info", f"{A} ended all 9 of its connections (100 %) with an RST: 9 after a FIN (data arrived "
                                 f"after the close) (e.g. {ids(40000, 40001, 40002)} and 6 more).")
    assert (got(10, 20)[0], got(10, 19)[0]) == ("info", "warning")


def test_fins_sent_again_are_told_by_their_sender() -> None:
    """B:8080 sent its FIN again in all 10 of its connections (a lossy path: warning), the final
    ACK seen before the copy in 4; A, the client, in 1 of 11 (info)."""
    rows = [dict(client_port=40000 + i, at=(i, i + 0.5), fin_retransmissions_server=1 + (i < 3),
                 time_wait_restarts=1, final_ack_lost_after_capture=i < 4) for i in range(10)]
    rows += [dict(client_ip=A, server_port=9090, at=(20, 21), fin_retransmissions_client=2,
                  final_ack_lost_after_capture=False)]
    got = [f for f in findings(flows(*rows)) if f[1] == "fin-retransmission"]
    assert got == [
        ("warning", "fin-retransmission", f"{B}:8080",
         f"{B}:8080 (server) sent its FIN again in all 10 of its connections (13 retransmissions): in 4 the capture "
         "shows the client's final ACK before the FIN came again: that ACK was lost beyond the capture point; in 6 the "
         "capture shows no final ACK of the client's before the FIN came again: the final ACK was lost before the "
         "capture point, or the FIN itself beyond it. The TIME_WAIT was "
         f"restarted 10 times (e.g. {ids(40000, 40001, 40002)} and 7 more)."),
        ("info", "fin-retransmission", A,
         f"{A} (client) sent its FIN again in 1 of its 11 connections (2 retransmissions): in 1 the capture shows no "
         "final ACK of the server's before the FIN came again: the final ACK was lost before the capture point, or "
         "the FIN itself beyond it. The TIME_WAIT was restarted 0 "
         f"times (e.g. {ids(40000, server=f'{B}:9090')})."),
    ]


def test_a_lossy_path_is_more_than_a_tenth_of_ten_or_more() -> None:
    """10 FINs sent again of 100 connections is a tenth, not more: info; 10 of 99: warning."""
    def severity(total: int) -> str:
        rows = [dict(client_port=40000 + i, at=(i, i + 0.5), fin_retransmissions_server=int(i < 10),
                     final_ack_lost_after_capture=True if i < 10 else None) for i in range(total)]
        (f,) = [f for f in findings(flows(*rows), span=200) if f[1] == "fin-retransmission"]
        assert "in 10 the capture shows the client's" in f[3] and "shows no final ACK" not in f[3]
        return f[0]

    assert (severity(100), severity(99)) == ("info", "warning")


def test_an_assassination_is_told_by_the_holder_under_its_profile() -> None:
    """Linux lets the in-sequence RST end the TIME_WAIT (warning); bsd ignores it (info)."""
    rows = [dict(client_port=40000 + i, at=(i, i + 0.5), active_closer="server", time_wait_on="server",
                 tw=(i + 0.5, i + 2), tw_assassination=True) for i in range(2)]
    rows += [dict(client_ip=C, at=(5, 5.5), time_wait_on="client", tw=(5.5, 6), tw_assassination=True)]
    got = [f for f in findings(flows(*rows), host_os=((C, OsProfile.bsd),)) if f[1] == "assassination"]
    assert got == [
        ("warning", "assassination", B,
         f"2 TIME_WAITs of {B} were hit by an in-sequence RST (RFC 1337 assassination); under its OS profile the "
         f"TIME_WAIT ended at once (e.g. {ids(40000, 40001)})."),
        ("info", "assassination", C,
         f"1 TIME_WAIT of {C} were hit by an in-sequence RST (RFC 1337 assassination); its OS profile ignores such "
         f"RSTs, so the TIME_WAIT survived (e.g. {ids(40000, client=C)})."),
    ]


def test_reuse_in_time_wait_by_verdict_and_the_rejected_ones_by_holder() -> None:
    verdicts = ["accepted_timestamps", "accepted_timestamps", "accepted_isn", "rejected", None]
    rows = [dict(client_port=40000 + i, incarnation=1, at=(i, i + 0.5), active_closer="server",
                 time_wait_on="server", tw=(i + 0.5, i + 60), reuses_tuple_in_time_wait=True, reuse_verdict=v)
            for i, v in enumerate(verdicts)]
    rows += [dict(client_port=40010, server_port=9090, at=(9, 9.5), reuses_tuple_in_time_wait=True)]
    got = [f for f in findings(flows(*rows)) if f[1] in ("reuse-in-time-wait", "reuse-rejected")]
    assert got == [
        ("warning", "reuse-rejected", B,
         f"1 SYN reusing a 4-tuple still in {B}'s TIME_WAIT was rejected (answered with an ACK of the old "
         f"connection); each cost the client an RST and a retry (e.g. {ids(40003)})."),
        ("info", "reuse-in-time-wait", f"{B}:8080",
         f"5 SYNs to {B}:8080 reused a 4-tuple still in TIME_WAIT: 2 accepted for newer timestamps (RFC 6191), 1 "
         "accepted for an ISN above the old connection's (RFC 1122), 1 rejected with an ACK of the old connection "
         f"(e.g. {ids(40000, 40001, 40002)} and 2 more)."),
        ("info", "reuse-in-time-wait", f"{B}:9090",
         f"1 SYN to {B}:9090 reused a 4-tuple still in TIME_WAIT (e.g. {ids(40010, server=f'{B}:9090')})."),
    ]


def test_two_rejected_reuses() -> None:
    rows = [dict(client_port=40000 + i, incarnation=1, at=(i, i + 0.5), reuses_tuple_in_time_wait=True,
                 reuse_verdict="rejected") for i in range(2)]
    (f,) = [f for f in findings(flows(*rows)) if f[1] == "reuse-rejected"]
    assert f[3].startswith(f"2 SYNs reusing a 4-tuple still in {B}'s TIME_WAIT were rejected (")


def _attempts(kind: str, n: int, **extra: Any) -> list[dict[str, Any]]:
    """`n` failed connection attempts of `close_kind` kind to B:8080, one a second."""
    handshake = {"refused": "syn_only", "unanswered": "syn_only", "handshake_reset": "syn_synack"}[kind]
    return [dict(client_port=40000 + i, at=(i, i + 0.1), close_kind=kind, handshake=handshake, active_closer="none",
                 packets_c2s=1, **extra) for i in range(n)]


def test_a_service_that_refused_every_attempt_is_down() -> None:
    """Refused all of at least 10 attempts: warning; 9 of 9, or 10 of 11: info."""
    assert [f for f in findings(flows(*_attempts("refused", 10))) if f[1] == "refused"] == [
        ("warning", "refused", f"{B}:8080", f"{B}:8080 refused all 10 of its connection attempts (RST+ACK: nothing "
                                            f"listening) (e.g. {ids(40000, 40001, 40002)} and 7 more).")]
    assert [f[0] for f in findings(flows(*_attempts("refused", 9))) if f[1] == "refused"] == ["info"]
    some = _attempts("refused", 10) + [dict(client_port=41000, at=(20, 21))]
    assert [f[3] for f in findings(flows(*some)) if f[1] == "refused"] == [
        f"{B}:8080 refused 10 of its 11 connection attempts (RST+ACK: nothing listening) (e.g. "
        f"{ids(40000, 40001, 40002)} and 7 more)."]
    (single,) = [f for f in findings(flows(*_attempts("refused", 1))) if f[1] == "refused"]
    assert single == ("info", "refused", f"{B}:8080", f"{B}:8080 refused its only connection attempt (RST+ACK: "
                                                      f"nothing listening) (e.g. {ids(40000)}).")


def test_handshakes_reset_are_told_by_who_sent_the_rst() -> None:
    rows = _attempts("handshake_reset", 3, first_rst_by="client") + [
        dict(client_ip=C, at=(5, 5.1), close_kind="handshake_reset", handshake="syn_synack", first_rst_by="server",
             active_closer="none")]
    assert [f for f in findings(flows(*rows)) if f[1] == "handshake-reset"] == [
        ("info", "handshake-reset", f"{B}:8080",
         f"{B}:8080 answered all 4 of its connection attempts from 2 clients with a SYN-ACK that an RST answered "
         "before the handshake completed: 3 by the client (no socket sent that SYN: a half-open scan, or SYNs from a "
         f"raw socket); 1 by the server (e.g. {ids(40000, 40001, 40002)} and 1 more)."),
    ]
    one = _attempts("handshake_reset", 1, first_rst_by="server") + [dict(client_port=41000, at=(3, 4))]
    assert [f[3] for f in findings(flows(*one)) if f[1] == "handshake-reset"] == [
        f"{B}:8080 answered 1 of its 2 connection attempts from 1 client with a SYN-ACK that an RST answered before "
        f"the handshake completed: 1 by the server (e.g. {ids(40000)})."]


def test_unanswered_attempts_say_how_their_clients_tried_again() -> None:
    """Ten attempts, all unanswered (warning): SYNs sent 3 times in 2 of them, 2 of them later
    attempts from a port already tried, 1 given up with the client's RST (its RST is no SYN)."""
    rows = _attempts("unanswered", 10)
    rows[0].update(packets_c2s=3)
    rows[1].update(packets_c2s=3)
    rows[2].update(packets_c2s=2, first_rst_by="client")
    rows[3].update(incarnation=1)
    rows[4].update(incarnation=2)
    assert [f for f in findings(flows(*rows)) if f[1] == "unanswered"] == [
        ("warning", "unanswered", f"{B}:8080",
         f"10 connection attempts to {B}:8080 from 1 client got no answer: 4 SYNs sent again; 2 from a client port "
         "already tried, with a new ISN (the client gave up and connected again); 1 given up by the client with an "
         f"RST (a connect that gave up, or a scanner) (e.g. {ids(40000, 40001, 40002)} and 7 more)."),
    ]
    few = _attempts("unanswered", 1) + [dict(client_ip=C, at=(3, 4))]
    assert [f for f in findings(flows(*few)) if f[1] == "unanswered"] == [
        ("info", "unanswered", f"{B}:8080", f"1 connection attempt to {B}:8080 from 1 client got no answer (e.g. "
                                            f"{ids(40000)}).")]


def test_a_source_failing_on_twenty_endpoints_is_a_scan_told_once() -> None:
    """A sent SYNs to ports 1-22 of B, 0.1 s apart: 14 unanswered, 6 refused, and 2 answered
    (one of them reset in the handshake). The refused and unanswered ones are not told again per
    port; 19 endpoints refused or unanswered would not have been a scan."""
    kinds = ["unanswered"] * 14 + ["refused"] * 6 + ["handshake_reset", "fin"]
    rows = [dict(client_port=50000, server_port=1 + i, at=(i * 0.1, i * 0.1 + 0.05), close_kind=k,
                 handshake={"fin": "complete", "handshake_reset": "syn_synack"}.get(k, "syn_only"),
                 active_closer="client" if k == "fin" else "none") for i, k in enumerate(kinds)]
    got = findings(flows(*rows))
    assert [f for f in got if f[1] == "scan"] == [
        ("warning", "scan", A,
         f"{A} sent SYNs to 22 ports (1–22) of {B} over 2.1 s, up to 10 a second: 14 unanswered, 6 refused, 2 "
         "answered (1 of them reset in the handshake: a SYN-ACK answered by an RST) (e.g. "
         f"{A}:50000>{B}:1, {A}:50000>{B}:2, {A}:50000>{B}:3 and 19 more)."),
    ]
    assert not [f for f in got if f[1] in ("refused", "unanswered", "handshake-reset")]
    fewer = findings(flows(*[r for r in rows if r["server_port"] != 1]))
    assert not [f for f in fewer if f[1] == "scan"]
    assert [f[1] for f in fewer if f[1] in ("refused", "unanswered", "handshake-reset")] == [
        "handshake-reset"] + ["refused"] * 6 + ["unanswered"] * 13  # one a port, ranked by kind


def test_a_scan_of_many_hosts_names_how_many() -> None:
    """Port 22 on 20 hosts (198.18.1.1-20), all unanswered, all at once."""
    rows = [dict(server_ip=f"198.18.1.{1 + i}", server_port=22, client_port=50000 + i, at=(0, 0.05),
                 close_kind="unanswered", handshake="syn_only", active_closer="none") for i in range(20)]
    (f,) = [f for f in findings(flows(*rows)) if f[1] == "scan"]
    assert f[3].startswith(f"{A} sent SYNs to 1 port (22–22) of 20 hosts over 0.0 s, up to 20 a second: 20 "
                           "unanswered, 0 refused, 0 answered (e.g. ")


def test_capture_wide_findings_say_how_many_connections() -> None:
    """One finding each for the capture: 2 of 4 connections closed simultaneously, 1 carried
    new data after its FIN, 2 were half-closed (for up to 2.5 s), 1 missed 1,234 bytes, 1 was
    one-sided, 1 caught midstream."""
    rows = [dict(client_port=40000, close_kind="simultaneous", active_closer="both", half_close=True,
                 half_close_s=0.25),
            dict(client_port=40001, close_kind="simultaneous", active_closer="both", data_after_fin="new_data",
                 half_close=True, half_close_s=2.5, capture_loss=True, capture_loss_bytes=1234),
            dict(client_port=40002, one_sided=True, data_after_fin="retransmission"),
            dict(client_port=40003, roles_inferred=True, handshake="none")]
    got = {f[1]: f for f in findings(flows(*rows))}
    assert got["simultaneous"] == ("info", "simultaneous", "capture", "2 of 4 connections closed simultaneously (the "
                                   f"FINs crossed): both sides hold TIME_WAIT (e.g. {ids(40000, 40001)}).")
    assert got["data-after-fin"] == ("warning", "data-after-fin", "capture", "1 of 4 connections carried new data "
                                     "after the sender's own FIN: a protocol violation, or a middlebox rewriting "
                                     f"sequence numbers (e.g. {ids(40001)}).")
    assert got["half-close"] == ("info", "half-close", "capture", "2 of 4 connections were half-closed: after one "
                                 "side's FIN the other kept sending, for up to 2.500 s (e.g. "
                                 f"{ids(40000, 40001)}).")
    assert got["capture-loss"] == ("warning", "capture-loss", "capture", "1 of 4 connections miss 1,234 bytes that "
                                   "the peer acknowledged: the capture dropped them, and verdicts resting on them are "
                                   f"less certain (e.g. {ids(40001)}).")
    assert got["one-sided"] == ("info", "one-sided", "capture", "the capture holds one direction only of 1 of 4 "
                                f"connections: verdicts that need the other side are left empty (e.g. {ids(40002)}).")
    assert got["roles-inferred"] == ("info", "roles-inferred", "capture", "1 of 4 connections began before the "
                                     "capture: client and server were inferred from the ports (e.g. "
                                     f"{ids(40003)}).")
    assert set(got) == {"simultaneous", "data-after-fin", "half-close", "capture-loss", "one-sided", "roles-inferred"}


def test_capture_wide_findings_of_one_connection() -> None:
    cols = flows(dict(half_close=True, half_close_s=np.nan, one_sided=True, close_kind="simultaneous",
                      active_closer="both"))
    got = {f[1]: f for f in findings(cols)}
    assert got["half-close"][3] == ("the only connection was half-closed: after one side's FIN the other kept "
                                    f"sending, for up to 0.000 s (e.g. {ids(40000)}).")
    assert got["one-sided"][0] == "warning"  # every connection of the capture: most of them
    assert got["simultaneous"][3].startswith("the only connection closed simultaneously")


def test_one_sided_is_a_warning_when_more_than_half_are() -> None:
    def severity(sided: int, total: int) -> str:
        rows = [dict(client_port=40000 + i, one_sided=i < sided) for i in range(total)]
        (f,) = [f for f in findings(flows(*rows)) if f[1] == "one-sided"]
        return f[0]

    assert (severity(2, 4), severity(3, 5), severity(1, 3)) == ("info", "warning", "info")


def test_examples_quote_the_flow_id_column_where_there_is_one() -> None:
    """Rows read back from a table carry their flow ids; bare columns are named by endpoints."""
    cols = flows(dict(close_kind="refused", active_closer="none"), dict(client_port=40001, close_kind="refused",
                                                                        active_closer="none", incarnation=1))
    cols["flow_id"] = np.array(["vlan7/x>y/0", "vlan7/x>y/1"], object)
    (f,) = [f for f in findings(cols) if f[1] == "refused"]
    assert f[3].endswith("(e.g. vlan7/x>y/0, vlan7/x>y/1).")


def test_all_of_several_connections_of_the_capture() -> None:
    rows = [dict(client_port=40000 + i, close_kind="simultaneous", active_closer="both") for i in range(2)]
    (f,) = [f for f in findings(flows(*rows)) if f[1] == "simultaneous"]
    assert f[3].startswith("all 2 connections closed simultaneously (the FINs crossed)")


def test_ipv6_subjects_are_bracketed() -> None:
    rows = [dict(client_ip="fd00::1", server_ip="fd00::2", close_kind="rst", active_closer="server",
                 first_rst_by="server")]
    (f,) = [f for f in findings(flows(*rows)) if f[1] == "abort"]
    assert f[2] == "[fd00::2]:8080" and f[3].endswith("(e.g. [fd00::1]:40000>[fd00::2]:8080).")


def test_examples_are_the_first_flows_of_each_endpoint() -> None:
    """Refused attempts to :8080 and :9090, taking turns: each endpoint's examples are its own
    first three, in the order they came."""
    rows = [dict(client_port=40000 + i, at=(i, i + 0.1), server_port=(8080, 9090)[i % 2], close_kind="refused",
                 handshake="syn_only", active_closer="none") for i in range(40)]
    got = {f[2]: f[3] for f in findings(flows(*rows)) if f[1] == "refused"}
    assert got[f"{B}:8080"].endswith(f"(e.g. {ids(40000, 40002, 40004)} and 17 more).")
    assert got[f"{B}:9090"].endswith(f"(e.g. {ids(40001, 40003, 40005, server=f'{B}:9090')} and 17 more).")


def test_flags_of_a_table_read_back_with_empty_cells() -> None:
    """A boolean column read back from a file may hold empty cells (not flagged), or be missing
    in a table written before it existed (nothing flagged)."""
    cols = flows(*[dict(client_port=40000 + i, half_close_s=1.0, one_sided=True) for i in range(3)])
    cols["half_close"] = np.array([True, None, False], object)
    del cols["one_sided"]
    v = host_views(cols, T0, T0 + 100, Options())
    (f,) = [f for f in v.findings if f.kind == FindingKind.half_close]
    assert f.message.startswith("1 of 3 connections was half-closed")
    assert FindingKind.one_sided not in {f.kind for f in v.findings}


def test_findings_of_one_severity_rank_by_their_number() -> None:
    """C aborted 2 connections, B:8080 1: C's finding first, though its name sorts after."""
    rows = [dict(client_ip=C, client_port=40000 + i, close_kind="rst", first_rst_by="client") for i in range(2)]
    rows += [dict(close_kind="rst", active_closer="server", first_rst_by="server")]
    assert [(f[0], f[2]) for f in findings(flows(*rows)) if f[1] == "abort"] == [("info", C), ("info", f"{B}:8080")]


def test_the_fin_retransmission_flag_is_either_sides_fin_sent_again() -> None:
    """The flag --fail-on fin-retransmission and the report's filter read."""
    cols = flows(dict(fin_retransmissions_client=1), dict(fin_retransmissions_server=2), dict())
    assert FLOW_FLAGS[FindingKind.fin_retransmission](cols).tolist() == [True, True, False]


def test_every_flow_flag_is_a_boolean_mask_also_on_a_table_read_back() -> None:
    """--fail-on and the report's filters select rows with them."""
    cols = flows(dict(), dict(client_port=40001))
    cols["half_close"] = np.array([True, None], object)
    del cols["one_sided"]
    for kind, flag in FLOW_FLAGS.items():
        mask = flag(cols)
        assert mask.dtype == np.bool_ and mask.shape == (2,), kind
    assert FLOW_FLAGS[FindingKind.half_close](cols).tolist() == [True, False]


def test_capture_wide_findings_rank_by_how_many_flows_they_concern() -> None:
    rows = [dict(client_port=40000 + i, roles_inferred=True, handshake="none") for i in range(3)]
    rows += [dict(client_port=40010, half_close=True, half_close_s=1.0)]
    assert [f[1] for f in findings(flows(*rows))] == ["roles-inferred", "half-close"]


# Two findings of one kind and severity: the one about 2 flows ranks before the one about 1,
# though its subject sorts after (docs/rules.md "Findings and their severity": "then by the
# number behind them").
ONE_OR_TWO = {
    "server-close": dict(active_closer="server"),
    "abort": dict(close_kind="rst", first_rst_by="client"),
    "fin-retransmission": dict(fin_retransmissions_client=1, final_ack_lost_after_capture=False),
    "assassination": dict(time_wait_on="client", tw=(1, 2), tw_assassination=True),
    "reuse-in-time-wait": dict(incarnation=1, reuses_tuple_in_time_wait=True),
    "reuse-rejected": dict(incarnation=1, reuses_tuple_in_time_wait=True, reuse_verdict="rejected",
                           time_wait_on="client", tw=(1, 61)),
    "refused": dict(close_kind="refused", handshake="syn_only", active_closer="none"),
    "handshake-reset": dict(close_kind="handshake_reset", handshake="syn_synack", active_closer="none",
                            first_rst_by="client"),
    "unanswered": dict(close_kind="unanswered", handshake="syn_only", active_closer="none"),
}


@pytest.mark.parametrize("kind", list(ONE_OR_TWO))
def test_findings_of_a_kind_rank_by_their_number(kind: str) -> None:
    """Told per host (A: 1 flow, C: 2) or per server endpoint (B:8080: 1, B:9090: 2)."""
    rows = [dict(client_ip=A, client_port=40000, server_port=8080, **ONE_OR_TWO[kind])]
    rows += [dict(client_ip=C, client_port=40001 + i, server_port=9090, **ONE_OR_TWO[kind]) for i in range(2)]
    got = [f[2] for f in findings(flows(*rows)) if f[1] == kind]
    assert got in ([C, A], [f"{B}:9090", f"{B}:8080"]), got


def test_scans_rank_by_their_number() -> None:
    rows = [dict(client_ip=ip, client_port=50000, server_port=1 + i, close_kind="unanswered", handshake="syn_only",
                 active_closer="none") for ip, n in ((A, 20), (C, 21)) for i in range(n)]
    assert [f[2] for f in findings(flows(*rows)) if f[1] == "scan"] == [C, A]


# ---- mutation-testing gaps: the peer in a FIN's story, what a scan counts, what "closed" counts


def test_a_clients_fin_sent_again_after_the_servers_final_ack() -> None:
    """A resent its FIN once, after the capture showed the server's final ACK for it: that ACK,
    the server's, was lost beyond the capture point."""
    rows = [dict(fin_retransmissions_client=1, final_ack_lost_after_capture=True, time_wait_on="client",
                 tw=(1, 61), time_wait_restarts=1)]
    assert [f for f in findings(flows(*rows)) if f[1] == "fin-retransmission"] == [
        ("info", "fin-retransmission", A,
         f"{A} (client) sent its FIN again in its only connection (1 retransmission): in 1 the capture shows the "
         "server's final ACK before the FIN came again: that ACK was lost beyond the capture point. The TIME_WAIT "
         f"was restarted 1 time (e.g. {ids(40000)}).")]


def test_a_scan_counts_every_syn_its_source_sent() -> None:
    """A's SYNs to ports 1-20 of B were unanswered (a scan); its SYN to port 21, sent once with no
    answer where the capture lacks the way back (close kind unknown, handshake syn_only), was a
    SYN of the scan too: 21 ports, 1 answered-or-unknown beside the 20 unanswered."""
    rows = [dict(client_port=50000, server_port=1 + i, at=(i * 0.1, i * 0.1 + 0.05), close_kind="unanswered",
                 handshake="syn_only", active_closer="none") for i in range(20)]
    rows += [dict(client_port=50000, server_port=21, at=(2.0, 2.05), close_kind="unknown", handshake="syn_only",
                  active_closer="none")]
    (f,) = [f for f in findings(flows(*rows)) if f[1] == "scan"]
    assert f[3].startswith(f"{A} sent SYNs to 21 ports (1–21) of {B} over 2.0 s, up to 10 a second: 20 unanswered, "
                           "0 refused, 1 answered (e.g. ")


def test_a_source_failing_often_on_few_endpoints_does_not_hide_a_scan() -> None:
    """C's 30 SYNs to B:8080 were refused (one endpoint: no scan); A's to 20 ports of B were
    unanswered (a scan), though fewer."""
    rows = [dict(client_ip=C, client_port=50000 + i, at=(i * 0.1, i * 0.1 + 0.05), close_kind="refused",
                 handshake="syn_only", active_closer="none") for i in range(30)]
    rows += [dict(client_port=50000, server_port=1 + i, at=(i * 0.1, i * 0.1 + 0.05), close_kind="unanswered",
                  handshake="syn_only", active_closer="none") for i in range(20)]
    assert [f[2] for f in findings(flows(*rows)) if f[1] == "scan"] == [A]


def test_a_server_close_out_of_all_the_closed_connections() -> None:
    """B:8080 closed 1 connection first; of its others, one closed simultaneously and one was
    aborted: 3 closed connections, all of which count."""
    rows: list[dict[str, Any]] = [dict(active_closer="server"),
                                  dict(client_port=40001, close_kind="simultaneous", active_closer="both"),
                                  dict(client_port=40002, close_kind="rst", first_rst_by="client")]
    assert [f[3] for f in findings(flows(*rows)) if f[1] == "server-close"] == [
        f"{B}:8080 closed 1 of its 3 connections first, so it holds its TIME_WAIT (e.g. {ids(40000)})."]


def test_a_server_close_habit_does_not_hide_the_other_endpoints() -> None:
    """B:8080 closed first all 20 of its connections (the habit: the host-level rule's); B:9090
    closed first 1 of 1: told per flow."""
    rows = [dict(client_port=40000 + i, at=(i, i + 0.5), active_closer="server") for i in range(20)]
    rows += [dict(client_port=41000, server_port=9090, active_closer="server")]
    got = {f[2]: f[3] for f in findings(flows(*rows)) if f[1] == "server-close"}
    assert got[f"{B}:8080"].startswith(f"{B}:8080 closed 100 % of 20 connections first")
    assert got[f"{B}:9090"] == (f"{B}:9090 closed its only connection first, so it holds its TIME_WAIT (e.g. "
                         f"{ids(41000, server=f'{B}:9090')}).")
