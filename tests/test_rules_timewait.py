"""The host-level views of docs/rules.md "Host-level views", every column of them, worked out by
hand from a few flow rows written here: TIME_WAIT per host (peak, when, with whom), per server
endpoint (who closed first, aborts, RST classes, the cause) and per client -> server endpoint
(ports held against the range, rates); then the host-level findings and their thresholds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from teardown.options import Options, OsProfile
from teardown.schema import CloseCause, FindingKind, Severity
from teardown.timewait import host_views

from .hand_rows import A, B, C, T0, flows

LINUX_RANGE = 60999 - 32768 + 1  # net.ipv4.ip_local_port_range's default: 28,232 ports

# Eight connections of A and C with B (8080, 9090), over a capture of 200 s from T0. C runs
# Windows (TIME_WAIT 240 s).
SCENARIO = [
    dict(client_port=40000, at=(70, 71), active_closer="server", time_wait_on="server", tw=(71, 131),
         cause=CloseCause.connection_close_response),  # 1
    dict(client_port=40001, at=(2, 3), time_wait_on="client", tw=(3, 63)),  # 2
    dict(client_ip=C, client_port=40000, at=(74, 75), close_kind="simultaneous", active_closer="both",
         time_wait_on="both", tw=(75, 135)),  # 3
    dict(client_port=40002, server_port=9090, at=(6, 7), close_kind="rst", active_closer="server",
         first_rst_by="server", rst_class="exact"),  # 4
    dict(client_ip=C, client_port=61000, server_port=9090, at=(8, 9), close_kind="fin_then_rst",
         first_rst_by="client", rst_class="in_window"),  # 5: a client port outside the range
    dict(client_port=40003, server_port=9090, at=(10, 10.1), close_kind="refused", handshake="syn_only",
         active_closer="none", first_rst_by="server", rst_class="to_closed_port"),  # 6
    dict(client_port=40001, incarnation=1, at=(12, 13), close_kind="open", active_closer="none",
         reuses_tuple_in_time_wait=True, reuse_verdict="accepted_timestamps"),  # 7: 2's port, in its TIME_WAIT
    dict(client_port=40005, server_port=9090, at=(10.5, 10.6), close_kind="refused", handshake="syn_only",
         active_closer="none", first_rst_by="server", rst_class="to_closed_port"),  # 8
]


def views(rows: list[dict[str, Any]], span: float = 200.0, **options: Any) -> Any:
    return host_views(flows(*rows), T0, T0 + span, Options(**options))


def column(table: dict[str, Any], name: str) -> list[Any]:
    """A column as plain Python values, NaN as None, times as seconds from T0."""
    out = []
    for v in table[name].tolist():
        if isinstance(v, float) and np.isnan(v):
            v = None
        elif name.endswith("_ts"):
            v -= T0
        out.append(v)
    return out


def test_hosts() -> None:
    """A: 6 connections as client; its client-first close (2) holds a TIME_WAIT from 3 s, within
    60 s of the capture start: its peak may be low. B: 8 as server; closed first 1 (server) and 4
    (the abort's sender) and holds TIME_WAIT after 1 and 3: 2 at once from 75 s, with A's and C's.
    C: 2 as client, with the simultaneous close's TIME_WAIT from 75 s, and the RST after a FIN."""
    h = views(SCENARIO, host_os=((C, OsProfile.windows),)).hosts_table()
    assert column(h, "host") == [A, B, C]
    assert column(h, "connections") == [6, 8, 2]
    assert column(h, "connections_as_client") == [6, 0, 2]
    assert column(h, "connections_as_server") == [0, 8, 0]
    assert column(h, "closed_first") == [1, 3, 2]
    assert column(h, "time_wait_total") == [1, 2, 1]
    assert column(h, "time_wait_peak") == [1, 2, 1]
    assert column(h, "time_wait_peak_ts") == [3, 75, 75]
    assert column(h, "time_wait_peak_peers") == [f"{B} (1)", f"{A} (1), {C} (1)", f"{B} (1)"]
    assert column(h, "time_wait_peak_may_be_low") == [True, False, True]  # C's TIME_WAIT is 240 s
    assert column(h, "time_wait_s") == [60, 60, 240]
    assert column(h, "aborts_sent") == [0, 1, 1]
    assert column(h, "refused_sent") == [0, 2, 0]


def test_servers() -> None:
    s = views(SCENARIO).tables.servers
    assert column(s, "server_ip") == [B, B] and column(s, "server_port") == [8080, 9090]
    assert column(s, "connections") == [4, 4]
    assert column(s, "closed") == [3, 2]
    assert column(s, "server_closed_first_share") == [1 / 3, 0]
    assert column(s, "client_closed_first_share") == [1 / 3, 1 / 2]
    assert column(s, "simultaneous_share") == [1 / 3, 0]
    assert column(s, "aborted_share") == [0, 1 / 2]
    assert column(s, "aborted_by_server") == [0, 1]
    assert column(s, "aborted_by_client") == [0, 1]
    assert column(s, "refused") == [0, 2]
    assert column(s, "rst_classes") == [None, "to_closed_port 2, exact 1, in_window 1"]
    assert column(s, "server_time_wait_total") == [2, 0]
    assert column(s, "server_time_wait_peak") == [2, 0]
    assert column(s, "server_time_wait_peak_ts") == [75, None]
    assert column(s, "client_time_wait_total") == [2, 0]
    assert column(s, "cause") == ["connection_close_response", None]
    assert column(s, "cause_share") == [1.0, None]


def test_destinations() -> None:
    """Ports held: from a connection's first packet to its last, or to the end of its client's
    TIME_WAIT, or to the capture's end while open. A -> :8080 holds 2 (the TIME_WAIT of 2 and the
    open 7) from 12 s; A -> :9090 opened 2 within a second at 10 s, 3 within 10 s from 6 s."""
    d = views(SCENARIO, host_os=((C, OsProfile.windows),)).tables.destinations
    assert column(d, "client_ip") == [A, A, C, C]
    assert column(d, "server_ip") == [B] * 4 and column(d, "server_port") == [8080, 9090, 8080, 9090]
    assert column(d, "connections") == [3, 3, 1, 1]
    assert column(d, "client_ports_seen") == [2, 3, 1, 1]
    assert column(d, "client_time_wait_share") == [1 / 3, 0, 1, 0]
    assert column(d, "client_ports_outside_range") == [0, 0, 0, 1]
    assert column(d, "ports_in_use_peak") == [2, 1, 1, 1]
    assert column(d, "ports_in_use_peak_ts") == [12, 6, 74, 8]
    assert column(d, "port_range_size") == [LINUX_RANGE] * 4
    assert column(d, "port_utilisation_peak") == [2 / LINUX_RANGE, 1 / LINUX_RANGE, 1 / LINUX_RANGE, 1 / LINUX_RANGE]
    assert column(d, "observed_rate_peak") == [1, 2, 1, 1]
    assert column(d, "observed_rate_peak_ts") == [2, 10, 74, 8]
    assert column(d, "observed_rate_peak_10s") == [0.1, 0.3, 0.1, 0.1]
    assert column(d, "sustainable_rate") == [LINUX_RANGE / 60, LINUX_RANGE / 60, LINUX_RANGE / 240, LINUX_RANGE / 240]
    assert column(d, "seconds_to_exhaustion") == [None] * 4
    assert column(d, "time_wait_reuses") == [1, 0, 0, 0]


def test_a_time_wait_without_an_end_lasts_its_holders_profile() -> None:
    """Rows read back from a file written before the end was known: start + the holder's TIME_WAIT
    (the server's when only the server holds it, else the client's)."""
    rows: list[dict[str, Any]] = [dict(at=(0, 1), active_closer="server", time_wait_on="server", tw=(1, np.nan)),
            dict(client_port=40001, at=(0, 1), time_wait_on="client", tw=(1, np.nan)),
            dict(client_port=40002, at=(0, 1), close_kind="simultaneous", active_closer="both", time_wait_on="both",
                 tw=(1, np.nan))]
    v = views(rows, host_os=((A, OsProfile.windows),))
    ends = [v.tables.time_wait.end[i] - T0 for i in range(3)]
    assert ends == [61, 241, 241]


def test_a_series_of_a_server_endpoint_in_ipv6_brackets() -> None:
    v = views([dict(client_ip="fd00::1", server_ip="fd00::2", active_closer="server", time_wait_on="server",
                    tw=(1, 61))])
    ts, count = v.series("[fd00::2]:8080")
    assert list(zip(ts - T0, count)) == [(1, 1), (61, 0)]
    ts, count = v.series("fd00::2")
    assert list(zip(ts - T0, count)) == [(1, 1), (61, 0)]
    with pytest.raises(Exception, match=r"^\[fd00::2\]:9090: no such host or server endpoint in this capture "
                                        r"\(hosts: .hosts\['host'\], endpoints: server_ip:server_port of .servers\)$"):
        v.series("[fd00::2]:9090")


def test_hosts_in_a_vlan_are_told_apart() -> None:
    """The same addresses in VLAN 100 are other hosts (docs/rules.md "Vocabulary")."""
    v = views([dict(active_closer="server", time_wait_on="server", tw=(1, 61)),
               dict(ctx=100, at=(2, 3), active_closer="server", time_wait_on="server", tw=(3, 63)),
               dict(ctx=100, client_port=40001, at=(2, 3), active_closer="server", time_wait_on="server",
                    tw=(3, 63))])
    assert column(v.hosts_table(), "host") == [A, B, f"vlan100/{A}", f"vlan100/{B}"]
    assert column(v.hosts_table(), "time_wait_peak") == [0, 1, 0, 2]
    assert [(f.subject, f.weight) for f in v.findings] == [(f"vlan100/{B}:8080", 2), (f"{B}:8080", 1)]


def test_findings_table_has_a_row_a_finding() -> None:
    v = views(SCENARIO)
    t = v.findings_table()
    assert list(t) == ["severity", "kind", "subject", "message", "advice"]
    assert all(t[k].dtype == object for k in t)
    assert t["severity"].tolist() == [f.severity.value for f in v.findings]
    assert t["kind"].tolist() == [f.kind.value for f in v.findings]
    assert t["subject"].tolist() == [f.subject for f in v.findings]
    assert t["message"].tolist() == [f.message for f in v.findings]
    assert t["advice"].tolist() == [f.advice for f in v.findings]
    assert "abort" in t["kind"].tolist()


# ---- ports against the range (docs/rules.md "Host-level views", "Findings and their severity")


def _client_closes(n: int, apart: float, **extra: Any) -> list[dict[str, Any]]:
    """`n` client-first closes from A, `apart` seconds apart, each holding its port 60 s."""
    return [dict(client_port=40000 + i, at=(i * apart, i * apart + 0.001),
                 time_wait_on="client", tw=(i * apart + 0.001, i * apart + 60.001), **extra) for i in range(n)]


def test_nearly_the_whole_range_in_use_is_critical() -> None:
    """9 of 10 ports (90 %), 9 connections opened within a second: 9/s against 10 / 60 s."""
    v = views(_client_closes(9, 0.1), port_range=(40000, 40009))
    (f,) = [f for f in v.findings if f.kind in (FindingKind.port_exhaustion, FindingKind.port_pressure)]
    assert (f.severity, f.kind, f.subject) == (Severity.critical, FindingKind.port_exhaustion, f"{A} -> {B}:8080")
    assert f.message == (f"{A} -> {B}:8080 held 9 of 10 ephemeral ports (90 %) at 22:13:20 UTC (open connections "
                         "plus its TIME_WAITs); it opened up to 9 connections per second, 54.0× the sustainable 0.17/s "
                         "(10 ports ÷ 60 s TIME_WAIT); at that rate the range is full after 1.1 s.")
    assert f.advice == ("reuse connections (keep-alive, pooling); widen net.ipv4.ip_local_port_range; "
                        "net.ipv4.tcp_tw_reuse=1 on this client lets outbound connections take over TIME_WAITs older "
                        "than 1 s (needs TCP timestamps); or spread the load over more server addresses or ports")
    assert f.weight == pytest.approx(0.9 + 9 / (10 / 60))


def test_a_full_range_with_reuse_and_ports_outside_it() -> None:
    rows = _client_closes(10, 0.1, reuses_tuple_in_time_wait=True)
    rows[0].update(client_port=1000)  # outside 40000-40009, counted apart
    v = views(rows, port_range=(40000, 40009))
    (f,) = [f for f in v.findings if f.kind == FindingKind.port_exhaustion]
    assert f.message == (f"{A} -> {B}:8080 held 10 of 10 ephemeral ports (100 %) at 22:13:20 UTC (open connections "
                         "plus its TIME_WAITs); it opened up to 10 connections per second, 60.0× the sustainable "
                         "0.17/s (10 ports ÷ 60 s TIME_WAIT); the range was full. 10 connections reused a 4-tuple "
                         "still in TIME_WAIT. 1 connections used client ports outside --port-range 40000-40009: that "
                         "range may not be this client's.")


def test_opening_faster_than_the_range_sustains_is_pressure() -> None:
    """6 connections in a second, 5 leaving the client in TIME_WAIT: 5/s held against 100 / 60 s
    (the message compares the rate of all 6 with it)."""
    rows = _client_closes(5, 0.1) + [dict(client_port=40050, at=(0.5, 0.6), active_closer="server",
                                          time_wait_on="server", tw=(0.6, 60.6))]
    v = views(rows, port_range=(40000, 40099))
    (f,) = [f for f in v.findings if f.kind in (FindingKind.port_exhaustion, FindingKind.port_pressure)]
    assert (f.severity, f.kind) == (Severity.warning, FindingKind.port_pressure)
    assert f.message == (f"{A} -> {B}:8080 held 6 of 100 ephemeral ports (6 %) at 22:13:20 UTC (open connections "
                         "plus its TIME_WAITs); it opened up to 6 connections per second, 3.6× the sustainable 1.67/s "
                         "(100 ports ÷ 60 s TIME_WAIT), and closed 83 % of them first; at that rate the range is full "
                         "after 20.0 s.")


def test_half_the_range_in_use_is_pressure_at_any_rate() -> None:
    """5 of 10 ports held by connections still open, 1 a second: within the sustainable rate;
    4 of 10 is nothing to tell."""
    def rows(n: int) -> list[dict[str, Any]]:
        return [dict(client_port=40000 + i, at=(i, i + 0.5), close_kind="open", active_closer="none")
                for i in range(n)]

    (f,) = [f for f in views(rows(5), span=10, port_range=(40000, 40009)).findings
            if f.kind == FindingKind.port_pressure]
    assert f.severity == Severity.warning
    assert f.message == (f"{A} -> {B}:8080 held 5 of 10 ephemeral ports (50 %) at 22:13:24 UTC (open connections "
                         "plus its TIME_WAITs); it opened up to 1 connections per second, within the sustainable "
                         "0.17/s.")
    assert not views(rows(4), span=10, port_range=(40000, 40009)).findings


# ---- TIME_WAIT piling up on a host


def _server_closes(peers: dict[str, int]) -> list[dict[str, Any]]:
    """Server-first closes to B:8080 from each peer, all TIME_WAITs from 100 s to 160 s."""
    return [dict(client_ip=ip, client_port=1024 + i, at=(99, 100), active_closer="server", time_wait_on="server",
                 tw=(100, 160)) for ip, n in peers.items() for i in range(n)]


def test_a_thousand_time_waits_at_once_are_worth_knowing() -> None:
    peers = {A: 400, C: 300, "198.18.0.4": 200, "198.18.0.5": 99, "198.18.0.6": 1}
    v = views(_server_closes(peers))
    (f,) = [f for f in v.findings if f.kind == FindingKind.time_wait_pile_up]
    assert (f.severity, f.subject, f.weight) == (Severity.info, B, 1000)
    assert f.message == (f"{B} held 1,000 TIME_WAIT sockets at 22:15:00 UTC, with {A} (400), {C} (300), 198.18.0.4 "
                         "(200) and 2 more; 1,000 over the capture, 60 s each.")
    assert f.advice == ("let clients close first, or keep connections alive (pooling); each TIME_WAIT holds memory "
                        "and a slot of tcp_max_tw_buckets, beyond which Linux skips TIME_WAIT and its protection")
    assert [f.kind for f in v.findings] == [FindingKind.server_close, FindingKind.time_wait_pile_up]
    peers["198.18.0.6"] = 0
    assert not [f for f in views(_server_closes(peers)).findings if f.kind == FindingKind.time_wait_pile_up]


def test_ten_thousand_time_waits_on_a_client_are_a_warning() -> None:
    rows = [dict(client_port=1024 + i % 50000, server_ip=f"198.18.{1 + i // 250}.{1 + i % 250}", at=(99, 100),
                 time_wait_on="client", tw=(100, 160)) for i in range(10_000)]
    v = views(rows)
    (f,) = [f for f in v.findings if f.kind == FindingKind.time_wait_pile_up]
    assert (f.severity, f.subject) == (Severity.warning, A)
    # Peers with as many TIME_WAITs each: in the order of their labels.
    assert f.message == (f"{A} held 10,000 TIME_WAIT sockets at 22:15:00 UTC, with 198.18.1.1 (1), 198.18.1.10 (1), "
                         "198.18.1.100 (1) and 9,997 more; 10,000 over the capture, 60 s each.")
    assert f.advice.startswith("reuse connections (keep-alive, pooling); net.ipv4.tcp_tw_reuse=1 lets outbound "
                               "connections take over TIME_WAITs (needs TCP timestamps); each TIME_WAIT holds memory")


def test_a_proxy_serving_as_many_connections_as_it_opens_gets_the_servers_advice() -> None:
    """B serves 500 connections from A (closing first) and opens 500 to C (closing first): as
    often server as client, a tie, gets the server's advice (docs/rules.md, `time-wait-pile-up`);
    one more connection opened makes it a client and gets the client's."""
    served = _server_closes({A: 500})
    opened = [dict(client_ip=B, client_port=20000 + i, server_ip=C, server_port=9090, at=(99, 100),
                   time_wait_on="client", tw=(100, 160)) for i in range(500)]
    (f,) = [f for f in views(served + opened).findings if f.kind == FindingKind.time_wait_pile_up]
    assert (f.subject, f.weight) == (B, 1000)
    assert f.advice.startswith("let clients close first, or keep connections alive (pooling);")
    one_more = dict(client_ip=B, client_port=30000, server_ip=C, server_port=9090, at=(0, 1))
    (f,) = [f for f in views(served + opened + [one_more]).findings if f.kind == FindingKind.time_wait_pile_up]
    assert f.advice.startswith("reuse connections (keep-alive, pooling);")


def test_peaks_near_the_capture_start_are_lower_bounds() -> None:
    """TIME_WAITs begun before the capture are not in it: a peak within one TIME_WAIT length of
    the start is told as a lower bound, once a finding counts TIME_WAITs (here the pile-ups of
    five servers, 1,000 to 1,004 TIME_WAITs; C's, at 40 s under macos (30 s), is not low; A, the
    client, holds none: no peak to qualify)."""
    rows = []
    for k, server in enumerate([B, "198.18.0.4", "198.18.0.5", "198.18.0.6", C]):
        start = 40 if server == C else 10
        rows += [dict(server_ip=server, client_port=1024 + i, at=(start - 1, start), active_closer="server",
                      time_wait_on="server", tw=(start, start + 30)) for i in range(1000 + k)]
    v = views(rows, span=50, host_os=((C, OsProfile.macos),))
    (f,) = [f for f in v.findings if f.kind == FindingKind.hidden_before_capture]
    assert (f.severity, f.subject, f.weight) == (Severity.info, "capture", 4)
    assert f.message == ("TIME_WAITs begun before the capture started (22:13:20 UTC) are not in it: counts until "
                         "22:14:20 UTC are lower bounds, and the peaks of 198.18.0.6 (1,003), 198.18.0.5 (1,002), "
                         "198.18.0.4 (1,001) and 1 more fall in that time.")
    assert f.advice == ("capture for longer than the TIME_WAIT length (60 s) before judging a peak, or compare with "
                        "`ss -tan state time-wait | wc -l` on the host")


def test_three_low_peaks_are_all_named() -> None:
    """B's pile-up (1,000 at 10 s), .4 holding 1 and .5 holding 2, all within 60 s of the start."""
    rows = [dict(client_port=1024 + i, at=(9, 10), active_closer="server", time_wait_on="server", tw=(10, 70))
            for i in range(1000)]
    rows += [dict(server_ip="198.18.0.4", at=(9, 10), active_closer="server", time_wait_on="server", tw=(10, 70))]
    rows += [dict(server_ip="198.18.0.5", client_port=40000 + i, at=(9, 10), active_closer="server",
                  time_wait_on="server", tw=(10, 70)) for i in range(2)]
    (f,) = [f for f in views(rows, span=50).findings if f.kind == FindingKind.hidden_before_capture]
    assert f.message.endswith(f"the peaks of {B} (1,000), 198.18.0.5 (2), 198.18.0.4 (1) fall in that time.")


def test_many_low_peaks_most_first_then_by_address() -> None:
    """20 server-first closes to 198.18.9.9:8080 (the server-close habit, whose peak needs
    qualifying) and one to each of 20 servers 198.18.2.1-20 (one TIME_WAIT each): ties in the
    order of the hosts."""
    rows = [dict(server_ip="198.18.9.9", client_port=40000 + i, at=(i, i + 0.5), active_closer="server",
                 time_wait_on="server", tw=(i + 0.5, i + 60.5)) for i in range(20)]
    rows += [dict(server_ip=f"198.18.2.{1 + i}", at=(1, 2), active_closer="server", time_wait_on="server",
                  tw=(2, 62)) for i in range(20)]
    (f,) = [f for f in views(rows).findings if f.kind == FindingKind.hidden_before_capture]
    assert "the peaks of 198.18.9.9 (20), 198.18.2.1 (1), 198.18.2.10 (1) and 18 more fall" in f.message


def test_peers_at_the_peak_most_first_then_by_address() -> None:
    """B holds one TIME_WAIT with A from 0.5 s to 60 s; later, from 100 s, one with each of 20
    hosts (198.18.2.1-20) and two with 198.18.9.9: its peak (22 at once) is with those, not
    with A. A holds none: no peers; nor a peak, which may be low only when the capture is
    shorter than its TIME_WAIT."""
    rows: list[dict[str, Any]] = [dict(active_closer="server", time_wait_on="server", tw=(0.5, 60))]
    rows += [dict(client_ip=f"198.18.2.{1 + i}", at=(99, 100), active_closer="server", time_wait_on="server",
                  tw=(100, 160)) for i in range(20)]
    rows += [dict(client_ip="198.18.9.9", client_port=40000 + i, at=(99, 100), active_closer="server",
                  time_wait_on="server", tw=(100, 160)) for i in range(2)]
    h = views(rows).hosts_table()
    peers = dict(zip(column(h, "host"), column(h, "time_wait_peak_peers")))
    assert peers[B] == "198.18.9.9 (2), 198.18.2.1 (1), 198.18.2.10 (1) and 18 more"
    assert peers[A] is None and peers["198.18.9.9"] is None
    assert column(h, "time_wait_peak_may_be_low")[column(h, "host").index(A)] is False
    four = views(rows[:1] + rows[-5:]).hosts_table()
    assert column(four, "time_wait_peak_peers")[column(four, "host").index(B)] == (
        "198.18.9.9 (2), 198.18.2.18 (1), 198.18.2.19 (1) and 1 more")
    short = views(rows[:1], span=50).hosts_table()
    assert column(short, "time_wait_peak_may_be_low") == [True, True]  # A holds none, in 50 s < 60 s


def test_a_connection_to_itself_counts_once_for_its_host() -> None:
    """A simultaneous close of A with itself: one connection, closed first once, two TIME_WAITs."""
    h = views([dict(server_ip=A, close_kind="simultaneous", active_closer="both", time_wait_on="both", tw=(1, 61)),
               dict(client_port=40001)]).hosts_table()
    assert column(h, "host") == [A, B]
    assert column(h, "connections") == [2, 1]
    assert column(h, "connections_as_client") == [2, 0] and column(h, "connections_as_server") == [1, 1]
    assert column(h, "closed_first") == [2, 0]
    assert column(h, "time_wait_total") == [2, 0] and column(h, "time_wait_peak") == [2, 0]


def test_an_endpoint_with_nothing_closed_has_no_shares() -> None:
    s = views([dict(close_kind="open", active_closer="none"),
               dict(client_port=40001, close_kind="refused", active_closer="none", handshake="syn_only")]).tables.servers
    assert column(s, "closed") == [0]
    for name in ("server_closed_first_share", "client_closed_first_share", "simultaneous_share", "aborted_share"):
        assert column(s, name) == [None]


def test_count_columns_are_integers() -> None:
    t = views(SCENARIO).tables
    for table, names in ((t.hosts, ["connections", "closed_first", "time_wait_total", "time_wait_peak",
                                    "aborts_sent", "refused_sent"]),
                         (t.servers, ["connections", "closed", "aborted_by_server", "refused",
                                      "server_time_wait_total", "client_time_wait_total"]),
                         (t.destinations, ["connections", "client_ports_seen", "client_ports_outside_range",
                                           "ports_in_use_peak", "time_wait_reuses"])):
        for name in names:
            assert table[name].dtype == np.int64, name


def test_vlan_one_is_a_vlan_too() -> None:
    """The hosts of VLAN 1, the lowest VLAN id, are labelled apart from the untagged ones."""
    rows: list[dict[str, Any]] = [dict(active_closer="server", time_wait_on="server", tw=(1, 61)),
            dict(ctx=1, at=(2, 3), active_closer="server", time_wait_on="server", tw=(3, 63)),
            dict(ctx=1, client_port=40001, at=(2, 3), active_closer="server", time_wait_on="server", tw=(3, 63))]
    h = views(rows).hosts_table()
    assert dict(zip(column(h, "host"), column(h, "time_wait_peak"))) == {A: 0, B: 1, f"vlan1/{A}": 0,
                                                                         f"vlan1/{B}": 2}


def test_a_rate_equal_to_the_sustainable_one_is_no_pressure() -> None:
    """60 ports and a 60 s TIME_WAIT sustain 1 new connection a second: one a second is not more
    than that. Held 30 at once (half the range), it is pressure within the sustainable rate."""
    one = views([dict(time_wait_on="client", tw=(1, 61))], port_range=(40000, 40059))
    assert not [f for f in one.findings if f.kind == FindingKind.port_pressure]
    rows = [dict(client_port=40000 + i, at=(2 * i, 2 * i + 0.001), time_wait_on="client",
                 tw=(2 * i + 0.001, 2 * i + 59.9)) for i in range(40)]
    (f,) = [f for f in views(rows, port_range=(40000, 40059)).findings if f.kind == FindingKind.port_pressure]
    assert f.message.endswith("it opened up to 1 connections per second, within the sustainable 1.00/s.")
    assert "held 30 of 60 ephemeral ports (50 %)" in f.message


# ---- aborts, boundaries and the columns a user reads (mutation-testing gaps)


def test_an_abort_where_both_sides_sent_an_rst_counts_for_both_hosts() -> None:
    """aborts_sent counts the aborts a host sent an RST for: where A and B both sent one
    (first_rst_by both), each of them sent it; an RST by the client only is the client's."""
    h = views([dict(close_kind="rst", first_rst_by="both", rst_class="exact"),
               dict(client_port=40001, close_kind="rst", first_rst_by="client", rst_class="exact")]).hosts_table()
    assert column(h, "host") == [A, B]
    assert column(h, "aborts_sent") == [2, 1]


def test_an_endpoints_aborts_by_who_sent_the_rst() -> None:
    """B:8080: an abort by the client (rst), an RST after the server's FIN (fin_then_rst), and an
    abort where both sides sent an RST: the server aborted 2 (the fin_then_rst and the joint
    one), the client 2 (its rst and the joint one)."""
    s = views([dict(close_kind="rst", first_rst_by="client", rst_class="exact"),
               dict(client_port=40001, close_kind="fin_then_rst", active_closer="server", first_rst_by="server",
                    rst_class="exact"),
               dict(client_port=40002, close_kind="rst", first_rst_by="both", rst_class="exact")]).tables.servers
    assert column(s, "aborted_by_server") == [2]
    assert column(s, "aborted_by_client") == [2]


def test_a_peak_one_time_wait_length_after_the_start_is_not_low() -> None:
    """A TIME_WAIT begun before the capture (at T0) ended before T0 + 60 s: a peak at exactly
    T0 + 60 s (B's) hides none; one at T0 + 59.5 s (C's) may. A holds none: its peak is judged
    at the capture's end, 200 s."""
    h = views([dict(at=(59, 60), active_closer="server", time_wait_on="server", tw=(60, 120)),
               dict(server_ip=C, at=(58.5, 59.5), active_closer="server", time_wait_on="server",
                    tw=(59.5, 119.5))]).hosts_table()
    assert column(h, "host") == [A, B, C]
    assert column(h, "time_wait_peak_ts") == [None, 60, 59.5]
    assert column(h, "time_wait_peak_may_be_low") == [False, False, True]


def test_a_time_wait_that_ended_at_the_peak_is_not_among_its_peers() -> None:
    """B's TIME_WAIT with A ends at 10 s (taken over), the instant two with C begin: from 10 s B
    holds 2, both with C; the one with A no longer covers that instant."""
    rows: list[dict[str, Any]] = [dict(at=(0, 0.5), active_closer="server", time_wait_on="server", tw=(0.5, 10))]
    rows += [dict(client_ip=C, client_port=40000 + i, at=(9, 10), active_closer="server", time_wait_on="server",
                  tw=(10, 70)) for i in range(2)]
    h = views(rows).hosts_table()
    peers = dict(zip(column(h, "host"), column(h, "time_wait_peak_peers")))
    assert column(h, "time_wait_peak")[column(h, "host").index(B)] == 2
    assert peers[B] == f"{C} (2)"


def test_a_capture_of_ten_seconds_has_a_ten_second_rate() -> None:
    """observed_rate_peak_10s needs a 10 s window within the capture: a capture of exactly 10 s
    holds one (1 connection ÷ 10 s); one of 9.5 s does not (empty)."""
    assert column(views([dict()], span=10).tables.destinations, "observed_rate_peak_10s") == [0.1]
    assert column(views([dict()], span=9.5).tables.destinations, "observed_rate_peak_10s") == [None]


def test_at_exactly_the_sustainable_rate_the_range_never_runs_out() -> None:
    """60 ports and a 60 s TIME_WAIT sustain 1 connection a second: one a second, each leaving
    the client in TIME_WAIT, frees ports as fast as it takes them: no time to exhaustion."""
    d = views([dict(time_wait_on="client", tw=(1, 61))], port_range=(40000, 40059)).tables.destinations
    assert column(d, "sustainable_rate") == [1.0] and column(d, "observed_rate_peak") == [1.0]
    assert column(d, "seconds_to_exhaustion") == [None]


def test_seconds_to_exhaustion_at_less_than_one_held_port_a_second() -> None:
    """10 ports, 60 s TIME_WAIT: 1/6 connection a second is sustainable. A opened 2 within a
    second, and 1 of its 4 connections left it in TIME_WAIT: 2 × 1/4 = 0.5 ports a second held,
    so the range is full after 10 ÷ 0.5 = 20 s."""
    rows: list[dict[str, Any]] = [dict(at=(0, 0.001), time_wait_on="client", tw=(0.001, 60.001))]
    rows += [dict(client_port=40001 + i, at=(t, t + 0.001), active_closer="server", time_wait_on="server",
                  tw=(t + 0.001, t + 60.001)) for i, t in enumerate((0.5, 5, 8))]
    d = views(rows, port_range=(40000, 40009)).tables.destinations
    assert column(d, "observed_rate_peak") == [2.0] and column(d, "client_time_wait_share") == [0.25]
    assert column(d, "seconds_to_exhaustion") == [20.0]


def test_a_connection_holds_its_port_from_its_first_packet_to_its_last() -> None:
    """Two aborts (no TIME_WAIT) from A to B:8080, over 0-10 s and 5-15 s: both ports are held
    at once from 5 s."""
    d = views([dict(at=(0, 10), close_kind="rst", first_rst_by="client"),
               dict(client_port=40001, at=(5, 15), close_kind="rst", first_rst_by="client")]).tables.destinations
    assert column(d, "ports_in_use_peak") == [2]
    assert column(d, "ports_in_use_peak_ts") == [5]


def test_a_lone_syn_at_the_last_instant_holds_its_port() -> None:
    """A SYN seen once, at the capture's last instant (first = last packet): its port is held
    for that instant, so the peak is 1, at 200 s."""
    d = views([dict(at=(200, 200), close_kind="unknown", handshake="syn_only", active_closer="none",
                    packets_c2s=1)]).tables.destinations
    assert column(d, "ports_in_use_peak") == [1]
    assert column(d, "ports_in_use_peak_ts") == [200]


def test_client_ports_seen_at_both_ends_of_the_port_numbers() -> None:
    """A -> B:8080 from port 40000; A -> B:9090 from ports 0 and 65535: 1 and 2 ports seen."""
    d = views([dict(), dict(client_port=0, server_port=9090), dict(client_port=65535, server_port=9090)],
              ).tables.destinations
    assert column(d, "server_port") == [8080, 9090]
    assert column(d, "client_ports_seen") == [1, 2]


def test_an_endpoint_on_a_low_port_among_many_hosts() -> None:
    """100 clients (198.18.1.1-100, whose labels sort before the server's) call 198.18.9.9:80:
    one server endpoint, 198.18.9.9:80."""
    s = views([dict(client_ip=f"198.18.1.{1 + i}", server_ip="198.18.9.9", server_port=80)
               for i in range(100)]).tables.servers
    assert column(s, "server_ip") == ["198.18.9.9"] and column(s, "server_port") == [80]
    assert column(s, "connections") == [100]


def test_the_cause_is_each_endpoints_most_common() -> None:
    """B:8080 closed first once, for an HTTP/1.0 request; B:9090 three times: twice not HTTP,
    once an HTTP/1.0 request: its cause is not_http, 2 of 3."""
    rows: list[dict[str, Any]] = [dict(active_closer="server", cause=CloseCause.http10_request)]
    rows += [dict(client_port=40001 + i, server_port=9090, active_closer="server", cause=cause)
             for i, cause in enumerate([CloseCause.http10_request, CloseCause.not_http, CloseCause.not_http])]
    s = views(rows).tables.servers
    assert column(s, "cause") == ["http10_request", "not_http"]
    assert column(s, "cause_share") == [1.0, 2 / 3]


def test_a_host_that_holds_no_time_wait_has_an_empty_series() -> None:
    """A, the client of a server-first close, holds no TIME_WAIT: no step, no count (counts are
    whole sockets: integers, also when there are none)."""
    ts, count = views([dict(active_closer="server", time_wait_on="server", tw=(1, 61))]).series(A)
    assert ts.tolist() == [] and count.tolist() == []
    assert count.dtype == np.int64


def test_time_wait_in_a_capture_whose_clock_starts_at_zero() -> None:
    """A crafted file whose timestamps start at 0 s since the epoch: A, B and C each hold one
    TIME_WAIT (B's from 0 s to 0.25 s, C's and A's later), so each peaks at 1."""
    cols = flows(dict(active_closer="server", time_wait_on="server", tw=(0, 1)),
                 dict(client_port=40001, server_ip=C, active_closer="server", time_wait_on="server", tw=(0, 1)),
                 dict(client_port=40002, time_wait_on="client", tw=(0, 1)))
    cols.update(first_ts=np.array([0.0, 0.1, 0.3]), last_ts=np.array([0.0, 0.2, 0.4]),
                time_wait_start_ts=np.array([0.0, 0.2, 0.4]), time_wait_end_ts=np.array([0.25, 0.4, 0.5]))
    h = host_views(cols, 0.0, 0.5, Options()).hosts_table()
    assert column(h, "host") == [A, B, C]
    assert column(h, "time_wait_peak") == [1, 1, 1]
    assert h["time_wait_peak_ts"].tolist() == [0.4, 0.0, 0.2]


def test_times_and_shares_left_empty_are_floats() -> None:
    """A -> B:8080 was caught midstream (no opening seen: no rate, so no rate's instant); B:8080
    closed nothing first (no cause, so no cause's share): NaN in float columns, as every empty
    time and share."""
    v = views([dict(roles_inferred=True, handshake="none"), dict(client_port=40001, server_port=9090)])
    d, s = v.tables.destinations, v.tables.servers
    assert d["observed_rate_peak_ts"].dtype == np.float64 and column(d, "observed_rate_peak_ts") == [None, 0]
    assert s["cause_share"].dtype == np.float64 and column(s, "cause_share") == [None, None]


def test_a_series_subject_loses_only_the_brackets_of_an_ipv6_address() -> None:
    """"[198.18.0.2]X:8080" names no host and no endpoint (the X is no part of an address)."""
    v = views([dict(active_closer="server", time_wait_on="server", tw=(1, 61))])
    with pytest.raises(Exception, match="no such host or server endpoint"):
        v.series("[198.18.0.2]X:8080")
