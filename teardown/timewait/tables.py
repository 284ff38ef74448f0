"""Per-flow verdict columns -> the host-level tables: TIME_WAIT per host, ephemeral-port
pressure per client -> server endpoint, and who closes first per server endpoint
(docs/rules.md "Host-level views"). Every table is a dict of numpy arrays in the order
of its schema list; everything is computed on whole columns, never flow by flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..options import Options
from ..packed import coded, distinct_objects
from ..present import where_prefix
from ..schema import RstClass
from ..http import CAUSES, NONE
from .occupancy import covering, peaks, step_series, window_peaks

Table = dict[str, npt.NDArray[Any]]  # one array per column, in the schema list's order
Columns = Mapping[str, npt.NDArray[Any]]  # the per-flow columns (teardown.schema.FLOW_COLUMNS)
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

RATE_WINDOWS_S = (1.0, 10.0)  # sliding windows for the observed new-connection rate
ENDED = ("fin", "simultaneous", "rst", "fin_then_rst")  # close kinds of a connection that was closed


@dataclass(slots=True)
class Tables:
    """The three tables, plus what the findings and the step series need beside them."""

    hosts: Table
    destinations: Table
    servers: Table
    time_wait: TimeWait  # each flow's TIME_WAIT, for a step series asked for (HostViews.series)
    peak_peers: tuple[Ints, Ints, Ints]  # (host code, peer host code, TIME_WAITs at the host's peak)
    host_labels: npt.NDArray[np.object_]  # host code -> label
    capture_span: tuple[float, float]
    flow_client: Ints  # per flow: its client's host code (an index into host_labels)
    flow_server: Ints  # per flow: its server's host code
    flow_endpoint: Ints  # per flow: its server endpoint's row in `servers`


@dataclass(frozen=True, slots=True)
class TimeWait:
    """Each flow's TIME_WAIT interval and who holds it: a host's or an endpoint's step series is
    made from these when asked for, not kept for every host (two million instants at 24 bytes
    for the 10 M-packet benchmark, against 18 bytes a flow here)."""

    client_holds: Bools
    server_holds: Bools
    start: Floats
    end: Floats

    def holders(self, client: Ints | None, server: Ints) -> Ints:
        """Each TIME_WAIT's holder: `client[i]` or `server[i]` of its flow i, whichever side
        holds it; two TIME_WAITs after a simultaneous close, the client's first. `client`
        None: the servers' TIME_WAITs only (a server endpoint holds no client's)."""
        if client is None:
            return server[self.server_holds]
        return np.concatenate([client[self.client_holds], server[self.server_holds]])

    def intervals(self, client: Ints | None, server: Ints) -> tuple[Ints, Floats, Floats]:
        """Each TIME_WAIT as (holder, start, end), in the order of `holders`."""
        sides = ([] if client is None else [self.client_holds]) + [self.server_holds]
        return (self.holders(client, server), np.concatenate([self.start[h] for h in sides]),
                np.concatenate([self.end[h] for h in sides]))

    def series(self, client: Ints | None, server: Ints, holder: int) -> tuple[Floats, Ints]:
        """The step series of the TIME_WAITs whose holder (see `intervals`) is `holder`."""
        held_by, start, end = self.intervals(client, server)
        mine = held_by == holder
        return step_series(np.zeros(int(mine.sum()), np.int64), start[mine], end[mine]).of(0)


def host_labels(ip: npt.NDArray[Any], ctx: npt.NDArray[Any] | None) -> npt.NDArray[Any]:
    """Addresses as host labels; those carried in a VLAN, a tunnel or elsewhere than the main
    link with flow_id's prefix (vlanN/ip, cN/ip), so that overlapping address spaces never mix
    (docs/rules.md "Vocabulary")."""
    if ctx is None or not np.any(ctx):
        return ip
    out = ip.copy()
    for k in np.unique(ctx[ctx != 0]).tolist():
        at = ctx == k
        out[at] = np.char.add(where_prefix(int(k)), ip[at].astype(str)).astype(object)
    return out


def _labels_and_codes(texts: npt.NDArray[Any]) -> tuple[npt.NDArray[np.str_], Ints]:
    """The distinct texts, sorted, and each text's index among them: np.unique's answer, without
    first making every text a fixed-width string as wide as the longest (an IPv6 address: 156
    bytes a row, 600 MB for the 10 M-packet benchmark's two address columns), nor a Python step
    per row (the rows share a few address objects: found by their addresses)."""
    distinct, codes = distinct_objects(texts)
    labels = np.array(distinct, dtype=str) if distinct else np.zeros(0, dtype=str)
    order = np.argsort(labels, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return labels[order], rank[codes]


@dataclass(frozen=True, slots=True)
class Words:
    """An enum column as a byte a row, each an index into `names` (its distinct values): every
    comparison then runs in C on bytes, where comparing object arrays costs a pass over the
    objects each time, and a million rows hold 1 MB, not 16 as fixed-width text."""

    codes: npt.NDArray[np.uint8]
    names: list[Any]


def _words(values: npt.NDArray[Any]) -> Words:
    packed = coded(np.asarray(values, object))
    return Words(packed.values, list(packed.distinct if packed.distinct is not None else []))


def _is(values: Words, *words: str) -> Bools:
    wanted = [i for i, name in enumerate(values.names) if name in words]
    return np.isin(values.codes, wanted) if wanted else np.zeros(len(values.codes), bool)


def _factorize(keys: Ints) -> tuple[Ints, Ints]:
    """(distinct keys sorted, each key's index among them), like np.unique(return_inverse=True),
    by a presence table when the keys are few and small (host x port codes usually are)."""
    if len(keys) == 0 or keys.max() > 4 * len(keys) + (1 << 20):
        distinct, inverse = np.unique(keys, return_inverse=True)
        return distinct, inverse.astype(np.int64)
    present = np.zeros(int(keys.max()) + 1, bool)
    present[keys] = True
    return np.flatnonzero(present), (np.cumsum(present) - 1)[keys]


def _count(group: Ints, size: int, weights: Bools | None = None) -> Ints:
    w = None if weights is None else weights.astype(np.float64)
    return np.bincount(group, weights=w, minlength=size).astype(np.int64)


def _share(part: Ints, whole: Ints) -> Floats:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(whole > 0, part / np.maximum(whole, 1), np.nan)


@dataclass(slots=True)
class Flows:
    """The per-flow facts every table needs, derived once: host codes, enum columns as text,
    and each flow's TIME_WAIT interval (end filled in where the engine left it empty)."""

    labels: npt.NDArray[Any]  # host code -> label
    client: Ints  # host code of each flow's client
    server: Ints
    tw_s: Floats  # TIME_WAIT length per host code under its OS profile
    kind: Words  # close_kind
    closer: Words  # active_closer
    rst_by: Words  # first_rst_by
    client_holds: Bools  # the client ends in TIME_WAIT
    server_holds: Bools
    tw_start: Floats
    tw_end: Floats
    span: tuple[float, float]  # capture start, end


def flows(c: Columns, first_ts: float | None, last_ts: float | None, options: Options) -> Flows:
    n = len(c["first_ts"])  # not flow_id: text columns are built only when shown
    start_ts = float(first_ts) if first_ts is not None else 0.0
    end_ts = float(last_ts) if last_ts is not None else start_ts
    ctx = np.asarray(c["ctx"]) if "ctx" in c else None
    labels, inverse = _labels_and_codes(np.concatenate([host_labels(c["client_ip"], ctx),
                                                        host_labels(c["server_ip"], ctx)]))
    client, server = inverse[:n].astype(np.int64), inverse[n:].astype(np.int64)
    tw_s = np.full(len(labels), options.behaviour_of(options.os).time_wait_s)
    for ip, profile in options.host_os:
        tw_s[labels == ip] = options.behaviour_of(profile).time_wait_s
    on = _words(c["time_wait_on"])
    client_holds, server_holds = _is(on, "client", "both"), _is(on, "server", "both")
    tw_start = np.asarray(c["time_wait_start_ts"], np.float64)
    tw_end = np.asarray(c["time_wait_end_ts"], np.float64)
    holder_tw = np.where(server_holds & ~client_holds, tw_s[server], tw_s[client])
    tw_end = np.where(np.isnan(tw_end), tw_start + holder_tw, tw_end)
    known = ~np.isnan(tw_start)
    return Flows(labels.astype(object), client, server, tw_s, _words(c["close_kind"]), _words(c["active_closer"]),
                 _words(c["first_rst_by"]), client_holds & known, server_holds & known, tw_start, tw_end,
                 (start_ts, end_ts))


def compute(c: Columns, first_ts: float | None, last_ts: float | None, options: Options) -> Tables:
    f = flows(c, first_ts, last_ts, options)
    time_wait = TimeWait(f.client_holds, f.server_holds, f.tw_start, f.tw_end)
    servers, endpoint = _servers(f, c, time_wait)
    destinations = _destinations(f, c, servers, endpoint, options)
    hosts, peak_peers = _hosts(f, time_wait)
    return Tables(hosts, destinations, servers, time_wait, peak_peers, f.labels, f.span, f.client, f.server, endpoint)


def _hosts(f: Flows, time_wait: TimeWait) -> tuple[Table, tuple[Ints, Ints, Ints]]:
    """TIME_WAIT per host: one interval per holder (two after a simultaneous close)."""
    hosts = len(f.labels)
    tw_host, tw_a, tw_b = time_wait.intervals(f.client, f.server)
    tw_peer = time_wait.holders(f.server, f.client)
    peak, peak_ts = peaks(step_series(tw_host, tw_a, tw_b), hosts)
    at_peak = covering(tw_host, tw_a, tw_b, peak_ts)
    pair, pair_count = np.unique(tw_host[at_peak] * hosts + tw_peer[at_peak], return_counts=True)
    other = f.server != f.client  # a connection to itself counts once for the host
    both = _is(f.closer, "both")
    abort = _is(f.kind, "rst", "fin_then_rst")
    start, end = f.span
    table: Table = {
        "host": f.labels,
        "connections": _count(f.client, hosts) + _count(f.server, hosts, other),
        "connections_as_client": _count(f.client, hosts),
        "connections_as_server": _count(f.server, hosts),
        "closed_first": _count(f.client, hosts, _is(f.closer, "client") | both)
        + _count(f.server, hosts, (_is(f.closer, "server") | both) & other),
        "time_wait_total": _count(tw_host, hosts),
        "time_wait_peak": peak,
        "time_wait_peak_ts": peak_ts,
        "time_wait_peak_peers": np.full(hosts, None, object),  # written out by HostViews.hosts_table
        "time_wait_peak_may_be_low": np.where(np.isnan(peak_ts), end, peak_ts) < start + f.tw_s,
        "time_wait_s": f.tw_s,
        "aborts_sent": _count(f.client, hosts, abort & _is(f.rst_by, "client", "both"))
        + _count(f.server, hosts, abort & _is(f.rst_by, "server", "both")),
        "refused_sent": _count(f.server, hosts, _is(f.kind, "refused")),
    }
    return table, (pair // hosts, pair % hosts, pair_count)


def _servers(f: Flows, c: Columns, time_wait: TimeWait) -> tuple[Table, Ints]:
    """Per server endpoint: who closes first, the server's TIME_WAIT, the cause; and each
    flow's endpoint row."""
    keys, endpoint = _factorize(f.server * 65536 + np.asarray(c["server_port"], np.int64))
    servers = len(keys)
    fin_first = _is(f.kind, "fin", "fin_then_rst")
    server_first = fin_first & _is(f.closer, "server")
    closed = _count(endpoint, servers, _is(f.kind, *ENDED))
    peak, peak_ts = peaks(step_series(*time_wait.intervals(None, endpoint)), servers)
    cause, cause_share = _causes(c, endpoint, servers, server_first)
    table: Table = {
        "server_ip": f.labels[keys // 65536],
        "server_port": keys % 65536,
        "connections": _count(endpoint, servers),
        "closed": closed,
        "server_closed_first_share": _share(_count(endpoint, servers, server_first), closed),
        "client_closed_first_share": _share(_count(endpoint, servers, fin_first & _is(f.closer, "client")), closed),
        "simultaneous_share": _share(_count(endpoint, servers, _is(f.kind, "simultaneous")), closed),
        "aborted_share": _share(_count(endpoint, servers, _is(f.kind, "rst")), closed),
        "aborted_by_server": _count(endpoint, servers,
                                    _is(f.kind, "rst", "fin_then_rst") & _is(f.rst_by, "server", "both")),
        "aborted_by_client": _count(endpoint, servers,
                                    _is(f.kind, "rst", "fin_then_rst") & _is(f.rst_by, "client", "both")),
        "refused": _count(endpoint, servers, _is(f.kind, "refused")),
        "rst_classes": _rst_classes(c, endpoint, servers),
        "server_time_wait_total": _count(endpoint, servers, f.server_holds),
        "server_time_wait_peak": peak,
        "server_time_wait_peak_ts": peak_ts,
        "client_time_wait_total": _count(endpoint, servers, f.client_holds),
        "cause": cause,
        "cause_share": cause_share,
    }
    return table, endpoint


def _destinations(f: Flows, c: Columns, servers: Table, endpoint: Ints, options: Options) -> Table:
    """Ephemeral ports per client -> server endpoint: open connections plus the client's
    TIME_WAITs against the range, rates, time to exhaustion (docs/rules.md "Host-level views")."""
    n_servers = len(servers["server_port"])
    keys, dest = _factorize(f.client * n_servers + endpoint)
    dests = len(keys)
    start_ts, end_ts = f.span
    first = np.asarray(c["first_ts"], np.float64)
    held_until = np.asarray(c["last_ts"], np.float64)
    held_until = np.where(f.client_holds, np.fmax(held_until, f.tw_end), held_until)
    held_until = np.where(_is(f.kind, "open"), np.fmax(held_until, end_ts), held_until)
    # An incarnation holds its port from its first packet; a zero-length one (a lone SYN seen
    # at the last instant) still holds it for that instant.
    held_until = np.where(held_until > first, held_until, np.nextafter(first, np.inf))
    ports_peak, ports_peak_ts = peaks(step_series(dest, first, held_until), dests)
    lo, hi = options.port_range
    range_size = hi - lo + 1
    client_port = np.asarray(c["client_port"], np.int64)
    seen_ports = _factorize(dest * 65536 + client_port)[0] // 65536
    new = ~np.asarray(c["roles_inferred"], bool)  # the opening (SYN or SYN-ACK) is in the capture
    rate_1, rate_1_ts = window_peaks(dest[new], first[new], dests, RATE_WINDOWS_S[0])
    rate_10, _ = window_peaks(dest[new], first[new], dests, RATE_WINDOWS_S[1])
    rate_10s = rate_10 / RATE_WINDOWS_S[1] if end_ts - start_ts >= RATE_WINDOWS_S[1] else np.full(dests, np.nan)
    rate = rate_1 / RATE_WINDOWS_S[0]
    client = keys // n_servers
    sustainable = range_size / f.tw_s[client]
    connections = _count(dest, dests)
    tw_share = _count(dest, dests, f.client_holds) / np.maximum(connections, 1)
    # Only connections that leave the client in TIME_WAIT keep a port after they close.
    holding_rate = rate * tw_share
    with np.errstate(divide="ignore"):
        to_exhaustion = np.where(ports_peak >= range_size, 0.0,
                                 np.where(holding_rate > sustainable, range_size / np.maximum(holding_rate, 1e-9),
                                          np.nan))
    return {
        "client_ip": f.labels[client],
        "server_ip": servers["server_ip"][keys % n_servers],
        "server_port": servers["server_port"][keys % n_servers],
        "connections": connections,
        "client_ports_seen": _count(seen_ports, dests),
        "client_time_wait_share": tw_share,
        "client_ports_outside_range": _count(dest, dests, (client_port < lo) | (client_port > hi)),
        "ports_in_use_peak": ports_peak,
        "ports_in_use_peak_ts": ports_peak_ts,
        "port_range_size": np.full(dests, range_size, np.int64),
        "port_utilisation_peak": ports_peak / range_size,
        "observed_rate_peak": rate,
        "observed_rate_peak_ts": rate_1_ts,
        "observed_rate_peak_10s": rate_10s,
        "sustainable_rate": sustainable,
        "seconds_to_exhaustion": to_exhaustion,
        "time_wait_reuses": _count(dest, dests, np.asarray(c["reuses_tuple_in_time_wait"], bool)),
    }


def _rst_classes(c: Columns, endpoint: Ints, servers: int) -> npt.NDArray[np.object_]:
    """Per server endpoint, 'exact 58, in_window 2': the classes of the RSTs that ended its
    connections (docs/rules.md "RST classes"), most first."""
    out = np.full(servers, None, object)
    has = ~np.equal(c["rst_class"], NONE)  # most connections end without an RST: judge only the rest
    classes = _words(c["rst_class"][has])
    names = [r.value for r in RstClass]
    code = np.array([names.index(v) if v in names else -1 for v in classes.names] + [-1], np.int64)[classes.codes]
    known = code >= 0
    pair, count = np.unique(endpoint[has][known] * len(names) + code[known], return_counts=True)
    order = np.lexsort((-count, pair // len(names)))
    for p, k in zip(pair[order].tolist(), count[order].tolist()):  # one row per endpoint and class
        e = p // len(names)
        text = f"{names[p % len(names)]} {k:,}"
        out[e] = text if out[e] is None else f"{out[e]}, {text}"
    return out


def _causes(c: Columns, endpoint: Ints, servers: int, server_first: Bools) -> tuple[npt.NDArray[np.object_], Floats]:
    """Per server endpoint, the most common cause of its server-first closes and its share
    (each flow's cause was read from its payload heads when it was judged: close_cause)."""
    cause = np.full(servers, None, object)
    share = np.full(servers, np.nan)
    if "close_cause" not in c or not server_first.any():
        return cause, share
    code = np.asarray(c["close_cause"])[server_first].astype(np.int64)
    e = endpoint[server_first]
    pair, count = np.unique(e * len(CAUSES) + code, return_counts=True)
    # most common first within each endpoint, then the first row per endpoint
    order = np.lexsort((-count, pair // len(CAUSES)))
    pair, count = pair[order], count[order]
    firsts = np.flatnonzero(np.r_[True, pair[1:] // len(CAUSES) != pair[:-1] // len(CAUSES)])
    top_endpoint = pair[firsts] // len(CAUSES)
    cause[top_endpoint] = np.array([c.value for c in CAUSES], object)[pair[firsts] % len(CAUSES)]
    share[top_endpoint] = count[firsts] / _count(e, servers)[top_endpoint]
    return cause, share
