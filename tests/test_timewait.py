"""TIME_WAIT as a resource (teardown/timewait/): the occupancy arithmetic on hand-made
intervals and flow rows, the HTTP cause of server-first closes, and the findings' wording."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from teardown.errors import UsageError
from teardown.options import Options
from teardown.schema import CloseCause, FindingKind, Severity
from teardown.timewait import host_views
from teardown.timewait.finding import percent
from teardown.http import CAUSES, close_cause, close_cause_codes
from teardown.timewait.occupancy import StepSeries, _Keys, peaks, step_series, window_peaks

T0 = 1_700_000_000.0  # capture start of the hand-made flows


def count_at(s: StepSeries, group: Any, ts: Any) -> list[int]:
    """The step series read at (group, instant) pairs, one at a time."""
    out = []
    for g, t in zip(group, ts):
        times, counts = s.of(int(g))
        i = int(np.searchsorted(times, t, side="right")) - 1
        out.append(int(counts[i]) if i >= 0 else 0)
    return out


def series(intervals: list[tuple[int, float, float]]) -> Any:
    g, a, b = (np.array(x) for x in zip(*intervals))
    return step_series(g.astype(np.int64), a.astype(float), b.astype(float))


def test_overlapping_intervals_peak_where_they_overlap() -> None:
    s = series([(0, 0, 10), (0, 2, 5), (0, 4, 6)])
    peak, at = peaks(s, 1)
    assert peak[0] == 3 and at[0] == 4
    assert list(s.count) == [1, 2, 3, 2, 1, 0]


def test_an_end_and_a_start_at_the_same_instant_do_not_overlap() -> None:
    """A TIME_WAIT taken over by a new connection at the instant it ends is not counted twice."""
    s = series([(0, 0, 5), (0, 5, 9)])
    peak, at = peaks(s, 1)
    assert peak[0] == 1 and at[0] == 0
    assert list(zip(s.ts, s.count)) == [(0, 1), (5, 1), (9, 0)]


def test_starts_at_the_same_instant_add_up() -> None:
    peak, at = peaks(series([(0, 3, 5), (0, 3, 6), (0, 3, 4)]), 1)
    assert peak[0] == 3 and at[0] == 3


def test_empty_intervals_occupy_nothing() -> None:
    """A TIME_WAIT assassinated at the instant it began holds nothing."""
    s = series([(0, 1, 1), (0, 2, 3)])
    assert peaks(s, 1)[0][0] == 1 and list(s.count) == [1, 0]


def test_groups_are_counted_apart() -> None:
    s = series([(0, 0, 10), (1, 1, 2), (1, 1.5, 3), (0, 2, 4), (2, 5, 6)])
    peak, at = peaks(s, 4)
    assert list(peak) == [2, 2, 1, 0]
    assert list(at[:3]) == [2, 1.5, 5] and np.isnan(at[3])
    assert list(s.of(1)[1]) == [1, 2, 1, 0]


@pytest.mark.parametrize("base", [T0, -T0, 0.0], ids=["epoch", "negative", "from-zero"])
def test_count_at_and_window_peaks_match_brute_force(base: float) -> None:
    """At an epoch, (group, time) keys are the times' bit patterns; times from 0 or below span
    too many doubles for that, and keys are ranks. Both must count alike."""
    rng = np.random.default_rng(7)
    g = rng.integers(0, 5, 400)
    a = base + np.round(rng.uniform(0, 100, 400), 1)  # rounded: many identical instants
    a[0] = base  # from 0.0 exactly: ~2^62 doubles up to 100
    b = a + np.round(rng.uniform(0, 20, 400), 1)
    assert (_Keys.of(5, a, b).distinct is None) == (base != 0.0)  # both ways of keying are tried
    s = step_series(g, a, b)
    qg, qt = rng.integers(0, 5, 300), base + np.round(rng.uniform(-5, 130, 300), 1)
    brute = [int(np.sum((g == x) & (a <= t) & (t < b))) for x, t in zip(qg, qt)]
    assert count_at(s, qg, qt) == brute
    peak, at = peaks(s, 5)
    for x in range(5):
        assert peak[x] == max(int(np.sum((g == x) & (a <= t) & (t < b))) for t in a[g == x])
        assert peak[x] == int(np.sum((g == x) & (a <= at[x]) & (at[x] < b)))
    best, best_ts = window_peaks(g, a, 5, 1.0)
    for x in range(5):
        ts = a[g == x]
        assert best[x] == max(int(np.sum((ts >= t) & (ts < t + 1.0))) for t in ts)
        assert best[x] == int(np.sum((ts >= best_ts[x]) & (ts < best_ts[x] + 1.0)))


def test_minus_zero_is_the_instant_zero() -> None:
    """-0.0 == 0.0: intervals starting at either start at one instant."""
    s = series([(0, -0.0, 1e-300), (0, 0.0, 2e-300)])
    assert list(s.count) == [2, 1, 0]


# ---------------------------------------------------------------- from flow rows

DEFAULTS: dict[str, Any] = dict(
    client_ip="198.18.0.1", client_port=40000, server_ip="198.18.0.2", server_port=8080, vlan=np.nan,
    roles_inferred=False, handshake="complete", close_kind="fin", active_closer="server", first_rst_by="none",
    time_wait_on="server", time_wait_start_ts=np.nan, time_wait_end_ts=np.nan, tw_assassination=False,
    reuses_tuple_in_time_wait=False, reuse_verdict=None, rst_class=None, client_head=None, server_head=None,
    fin_retransmissions_client=0, fin_retransmissions_server=0, time_wait_restarts=0, data_after_fin="none", incarnation=0,
    half_close=False, half_close_s=np.nan, capture_loss=False, capture_loss_bytes=0, packets_c2s=3)


def flows(*rows: dict[str, Any]) -> dict[str, Any]:
    """Flow columns from rows given as offsets from T0: first, last, tw (start, end) or None."""
    out: dict[str, list[Any]] = {k: [] for k in [*DEFAULTS, "first_ts", "last_ts"]}
    for i, row in enumerate(rows):
        row = {**DEFAULTS, "client_port": 40000 + i, **row}
        first, last = row.pop("at")
        tw = row.pop("tw", None)
        if tw is not None:
            row["time_wait_start_ts"], row["time_wait_end_ts"] = T0 + tw[0], T0 + tw[1]
        else:
            row["time_wait_on"] = row.get("time_wait_on") if row["time_wait_on"] != "server" else "none"
        row["first_ts"], row["last_ts"] = T0 + first, T0 + last
        for k, v in row.items():
            out[k].append(v)
    cols = {k: np.array(v, dtype=object if isinstance(v[0], (str, bytes, type(None))) else None)
            for k, v in out.items()}
    for k in ("reuse_verdict", "rst_class"):
        cols[k] = np.array(out[k], dtype=object)
    # The verdicts read the cause from the heads when they judge a flow (verdicts._server_close_causes).
    heads = np.array(cols.pop("client_head"), dtype=object), np.array(cols.pop("server_head"), dtype=object)
    cols["close_cause"] = close_cause_codes(*heads)
    return cols


def views(cols: dict[str, Any], span: tuple[float, float] = (0, 100), **options: Any) -> Any:
    return host_views(cols, T0 + span[0], T0 + span[1], Options(**options))


def table_row(table: dict[str, Any], **where: Any) -> dict[str, Any]:
    sel = np.ones(len(next(iter(table.values()))), bool)
    for k, v in where.items():
        sel &= table[k] == v
    (i,) = np.flatnonzero(sel)
    return {k: v[i] for k, v in table.items()}


def test_a_retransmitted_fin_restart_keeps_the_time_wait_longer() -> None:
    """The engine's end already includes the restart: 60 s from the last answered FIN."""
    plain = views(flows(dict(at=(0, 1), tw=(1, 61)), dict(at=(70, 71), tw=(71, 131))))
    restarted = views(flows(dict(at=(0, 15), tw=(1, 75)), dict(at=(70, 71), tw=(71, 131))))
    assert table_row(plain.tables.hosts, host="198.18.0.2")["time_wait_peak"] == 1
    row = table_row(restarted.tables.hosts, host="198.18.0.2")
    assert row["time_wait_peak"] == 2 and row["time_wait_peak_ts"] == T0 + 71


def test_an_assassinated_time_wait_ends_at_the_rst() -> None:
    v = views(flows(dict(at=(0, 5), tw=(1, 5), tw_assassination=True), dict(at=(5, 6), tw=(6, 66)),
                    dict(at=(10, 11), tw=(11, 71))))
    row = table_row(v.tables.hosts, host="198.18.0.2")
    assert row["time_wait_peak"] == 2 and row["time_wait_total"] == 3
    ts, count = v.series("198.18.0.2")
    assert list(zip(ts - T0, count)) == [(1, 1), (5, 0), (6, 1), (11, 2), (66, 1), (71, 0)]
    assert FindingKind.assassination in {f.kind for f in v.findings}


def test_a_series_counts_what_its_host_or_endpoint_holds_only() -> None:
    """.2 holds a TIME_WAIT as a server (of :8080, then of :9090) and one as a client; .3 holds
    one; .1 one as the client of .2:8080. An endpoint's series is its server's TIME_WAITs there
    only."""
    a, b, c = "198.18.0.1", "198.18.0.2", "198.18.0.3"
    v = views(flows(dict(at=(0, 1), tw=(1, 61)), dict(at=(2, 3), tw=(3, 63), server_port=9090),
                    dict(at=(4, 5), tw=(5, 65), client_ip=b, server_ip=c, active_closer="client", time_wait_on="client"),
                    dict(at=(6, 7), tw=(7, 67), client_ip=a, server_ip=c),
                    dict(at=(8, 9), tw=(9, 69), active_closer="client", time_wait_on="client")))
    ts, count = v.series(b)
    assert list(zip(ts - T0, count)) == [(1, 1), (3, 2), (5, 3), (61, 2), (63, 1), (65, 0)]
    ts, count = v.series(f"{b}:8080")
    assert list(zip(ts - T0, count)) == [(1, 1), (61, 0)]
    ts, count = v.series(c)
    assert list(zip(ts - T0, count)) == [(7, 1), (67, 0)]
    ts, count = v.series(a)
    assert list(zip(ts - T0, count)) == [(9, 1), (69, 0)]


def test_accepted_reuse_cuts_the_time_wait_and_the_port_is_held_once() -> None:
    """Client closes first; the client reuses its own TIME_WAIT tuple at 10 s (tcp_tw_reuse):
    the engine ends the old TIME_WAIT at the new SYN, so one port is in use throughout."""
    cols = flows(dict(at=(0, 1), tw=(1, 10), active_closer="client", time_wait_on="client", client_port=40000),
                 dict(at=(10, 11), tw=(11, 71), active_closer="client", time_wait_on="client", client_port=40000,
                      reuses_tuple_in_time_wait=True, reuse_verdict="accepted_timestamps"))
    d = views(cols, port_range=(40000, 40000)).tables.destinations
    assert d["ports_in_use_peak"][0] == 1 and d["port_utilisation_peak"][0] == 1.0
    assert d["client_ports_seen"][0] == 1 and d["time_wait_reuses"][0] == 1
    assert d["seconds_to_exhaustion"][0] == 0.0


def test_time_waits_begun_before_the_capture_make_early_peaks_a_lower_bound() -> None:
    v = views(flows(dict(at=(0, 1), tw=(1, 61)), dict(at=(80, 81), tw=(81, 141)), dict(at=(82, 83), tw=(83, 143))),
              span=(0, 90))
    row = table_row(v.tables.hosts, host="198.18.0.2")
    assert row["time_wait_peak"] == 2 and not row["time_wait_peak_may_be_low"]
    early = views(flows(dict(at=(0, 1), tw=(1, 61)), dict(at=(2, 3), tw=(3, 63))), span=(0, 90))
    assert table_row(early.tables.hosts, host="198.18.0.2")["time_wait_peak_may_be_low"]
    # Two server-first closes are told, but no peak of theirs needs qualifying.
    assert [f.kind for f in early.findings] == [FindingKind.server_close]
    many = views(flows(*[dict(at=(i, i + 1), tw=(i + 1, i + 61)) for i in range(25)]), span=(0, 90))
    assert [f.kind for f in many.findings] == [FindingKind.server_close, FindingKind.hidden_before_capture]
    assert "198.18.0.2 (25)" in many.findings[1].message


def test_simultaneous_close_counts_a_time_wait_on_each_side() -> None:
    v = views(flows(dict(at=(0, 1), tw=(1, 61), close_kind="simultaneous", active_closer="both",
                         time_wait_on="both")))
    h = v.tables.hosts
    assert list(h["time_wait_peak"]) == [1, 1] and list(h["closed_first"]) == [1, 1]
    assert v.tables.servers["simultaneous_share"][0] == 1.0


def test_ports_of_connections_still_open_are_held_to_the_capture_end() -> None:
    cols = flows(dict(at=(0, 1), close_kind="open", active_closer="none", time_wait_on="none"),
                 dict(at=(50, 51), close_kind="open", active_closer="none", time_wait_on="none"))
    d = views(cols, span=(0, 60)).tables.destinations
    assert d["ports_in_use_peak"][0] == 2 and d["ports_in_use_peak_ts"][0] == T0 + 50


def test_rates_and_time_to_exhaustion() -> None:
    """100 client-first connections in 0.5 s with 100 ports: 100/s over 1 s windows, against a
    sustainable 100 ports / 60 s; the range fills."""
    rows = [dict(at=(i * 0.005, i * 0.005 + 0.001), tw=(i * 0.005 + 0.001, i * 0.005 + 60.001),
                 active_closer="client", time_wait_on="client") for i in range(100)]
    d = views(flows(*rows), span=(0, 20), port_range=(40000, 40099)).tables.destinations
    assert d["observed_rate_peak"][0] == 100 and d["observed_rate_peak_10s"][0] == 10
    assert d["sustainable_rate"][0] == pytest.approx(100 / 60)
    assert d["ports_in_use_peak"][0] == 100 and d["seconds_to_exhaustion"][0] == 0
    linux = views(flows(*rows), span=(0, 5)).tables.destinations  # default range: 28,232 ports
    assert np.isnan(linux["observed_rate_peak_10s"][0])  # the capture spans less than 10 s
    assert np.isnan(linux["seconds_to_exhaustion"][0])  # 100/s is within the sustainable 470/s
    wider = views(flows(*rows), span=(0, 20), port_range=(40000, 40999)).tables.destinations
    assert wider["ports_in_use_peak"][0] == 100
    assert wider["seconds_to_exhaustion"][0] == pytest.approx(1000 / 100)  # 100/s > 1000/60 s


def test_server_first_closes_attributed_to_their_endpoint_with_the_cause() -> None:
    req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    rows = [dict(at=(i, i + 0.1), tw=(i + 0.1, i + 60.1), client_head=req, server_head=b"HTTP/1.1 200 OK\r\n\r\n")
            for i in range(30)]
    rows += [dict(at=(i, i + 0.1), server_port=9000, active_closer="client", time_wait_on="client",
                  tw=(i + 0.1, i + 60.1)) for i in range(30)]
    v = views(flows(*rows))
    s = table_row(v.tables.servers, server_port=8080)
    assert s["server_closed_first_share"] == 1.0 and s["server_time_wait_peak"] == 30
    assert s["cause"] == CloseCause.connection_close_request and s["cause_share"] == 1.0
    assert table_row(v.tables.servers, server_port=9000)["cause"] is None
    (f,) = [f for f in v.findings if f.kind == FindingKind.server_close]
    assert f.subject == "198.18.0.2:8080" and f.severity == Severity.info
    assert f.message.startswith("198.18.0.2:8080 closed 100 % of 30 connections first; it held 30 TIME_WAIT sockets at ")
    assert "`Connection: close`" in f.message and "pool connections" in f.advice


def test_without_causes_the_cause_is_left_empty() -> None:
    cols = flows(*[dict(at=(i, i + 0.1), tw=(i + 0.1, i + 60.1)) for i in range(3)])
    del cols["close_cause"]
    assert views(cols).tables.servers["cause"][0] is None


def test_a_series_of_an_unknown_host_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no such host"):
        views(flows(dict(at=(0, 1), tw=(1, 61)))).series("10.0.0.1")


# ---------------------------------------------------------------- HTTP cause

@pytest.mark.parametrize(("request_head", "response_head", "cause"), [
    (b"GET / HTTP/1.0\r\nHost: a\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\n", CloseCause.http10_request),
    (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n",
     CloseCause.http_keep_alive),
    (b"POST /x HTTP/1.1\r\nHost: a\r\nCONNECTION: Close\r\n\r\n", None, CloseCause.connection_close_request),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
     CloseCause.http10_response),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 200 OK\r\nconnection:close\r\n\r\n",
     CloseCause.connection_close_response),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n", CloseCause.http_keep_alive),
    # only the first message counts: a later pipelined request is not what the head shows first
    (b"GET / HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n", None, CloseCause.http_keep_alive),
    (b"GET / HTTP/1.1\r\nX-Note: HTTP/1.0\r\n\r\n", None, CloseCause.http_keep_alive),
    (b"SSH-2.0-OpenSSH_9.6\r\n", b"SSH-2.0-OpenSSH_9.6\r\n", CloseCause.not_http),
    (None, None, CloseCause.no_payload),
    (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: cl", None, CloseCause.http_keep_alive),  # cut by snaplen
])
def test_close_cause(request_head: bytes | None, response_head: bytes | None, cause: CloseCause) -> None:
    assert close_cause(request_head, response_head) == cause


def test_close_causes_on_many_connections_equals_one_by_one() -> None:
    heads = [b"GET / HTTP/1.0\r\n\r\n", b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", None, b"\x00\x01"]
    answers = [b"HTTP/1.1 200 OK\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\n", None]
    rng = np.random.default_rng(3)
    req = np.array([heads[i] for i in rng.integers(0, len(heads), 500)], dtype=object)
    resp = np.array([answers[i] for i in rng.integers(0, len(answers), 500)], dtype=object)
    assert [CAUSES[c] for c in close_cause_codes(req, resp)] == [close_cause(a, b) for a, b in zip(req, resp)]


# ---------------------------------------------------------------- wording and options

def test_percent_never_rounds_to_all_or_nothing() -> None:
    assert [percent(x) for x in (1.0, 0.996, 0.5, 0.006, 0.004, 0.0)] == ["100 %", "99 %", "50 %", "1 %", "< 1 %",
                                                                          "0 %"]


@pytest.mark.parametrize("text", ["40000", "40000-", "a-b", "1-2-3", "40000:40049", "-1-5", "70000-80000"])
def test_a_malformed_port_range_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--port-range"):
        Options(port_range=Options.parse_port_range(text))


@pytest.mark.parametrize("text", ["40000-40049", "40000 40049", "40000\t40049"])
def test_port_range_as_sysctl_prints_it(text: str) -> None:
    assert Options.parse_port_range(text) == (40000, 40049)


def test_no_connections_give_empty_tables() -> None:
    cols = {k: np.zeros(0, object if isinstance(v, (str, type(None))) else float) for k, v in DEFAULTS.items()}
    cols.update(first_ts=np.zeros(0), last_ts=np.zeros(0), client_port=np.zeros(0, np.int64),
                server_port=np.zeros(0, np.int64), roles_inferred=np.zeros(0, bool),
                tw_assassination=np.zeros(0, bool), reuses_tuple_in_time_wait=np.zeros(0, bool))
    v = host_views(cols, None, None, Options())
    assert not v.findings and all(len(t["connections"]) == 0 for t in (v.tables.hosts, v.tables.servers,
                                                                       v.tables.destinations))


@pytest.mark.parametrize("high", [50, 10**12])  # a presence table, or np.unique for sparse keys
def test_factorize_equals_unique(high: int) -> None:
    from teardown.timewait.tables import _factorize

    keys = np.random.default_rng(5).integers(0, high, 1000)
    distinct, inverse = _factorize(keys)
    want, want_inverse = np.unique(keys, return_inverse=True)
    assert list(distinct) == list(want) and list(inverse) == list(want_inverse)
