"""Per-flow verdict columns -> findings: every flag a flow can carry becomes a finding, one per
host or endpoint concerned, with counts, a few example flow ids and advice.

`FLOW_FLAGS` is the one list of per-flow conditions: `--fail-on`, these findings and the
report's filters all read it. The severity of each rule is stated in its docstring and in
docs/rules.md "Findings and their severity".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..options import Options
from ..present import endpoint
from ..schema import FindingKind, Severity
from .finding import Columns, Finding, examples, of_all, of_its, percent, plural
from ..http import NONE
from .occupancy import window_peaks
from .tables import Tables

Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.int64]
Flags = dict[FindingKind, Mask]  # FLOW_FLAGS, evaluated once per analysis

HABIT_MIN = 10  # connections before a share says something about a host's habit
HABIT_SHARE = 0.5  # "most": more than half
SERVER_HABIT_MIN = 20  # closed connections before a server's share of first closes is its habit
LOSSY_SHARE = 0.1  # FINs sent again in more than a tenth of a sender's connections: a lossy path
SCAN_TARGETS = 20  # distinct ports or hosts, each refused or unanswered, before a source is a scanner
ALL_FAILED_MIN = 10  # attempts to an endpoint that answered none: the service is down or filtered


def _is(c: Columns, name: str, *values: str) -> Mask:
    x = np.asarray(c[name], object)
    out: Mask = np.zeros(len(x), bool)
    for v in values:  # equality in C per value; np.isin would sort the Python objects
        out |= x == v
    return out


def _yes(c: Columns, name: str) -> Mask:
    """A boolean column (absent in tables written before it existed: all False)."""
    if name not in c:
        return np.zeros(len(c["first_ts"]), bool)
    x = np.asarray(c[name])
    if x.dtype == np.bool_:  # the engine's own columns: nothing to convert
        return x
    x = x.astype(object)
    out: Mask = np.asarray(np.where(np.equal(x, NONE), False, x), np.bool_)
    return out


def _lost_between(c: Columns) -> npt.NDArray[np.float64]:
    """Segments lost between two capture points, per flow (0 where one point saw it, or where
    the columns come from before points were joined: a table saved by an older release)."""
    if "lost_between_c2s" not in c:
        return np.zeros(len(c["first_ts"]))
    both = np.stack([np.asarray(c["lost_between_c2s"], np.float64), np.asarray(c["lost_between_s2c"], np.float64)])
    out: npt.NDArray[np.float64] = np.nansum(both, axis=0)
    return out


def _fin_sent_again(c: Columns) -> Mask:
    again: Mask = (np.asarray(c["fin_retransmissions_client"]) + np.asarray(c["fin_retransmissions_server"])) > 0
    return again


# kind -> which flows carry it (docs/rules.md "Close verdicts", "TIME_WAIT", "Honesty about the capture point").
FLOW_FLAGS: dict[FindingKind, Callable[[Columns], Mask]] = {
    FindingKind.server_close: lambda c: _is(c, "active_closer", "server") & _is(c, "close_kind", "fin", "fin_then_rst"),
    FindingKind.abort: lambda c: _is(c, "close_kind", "rst", "fin_then_rst"),
    FindingKind.fin_retransmission: _fin_sent_again,
    FindingKind.assassination: lambda c: _yes(c, "tw_assassination"),
    FindingKind.reuse_in_time_wait: lambda c: _yes(c, "reuses_tuple_in_time_wait"),
    FindingKind.reuse_rejected: lambda c: _is(c, "reuse_verdict", "rejected"),
    FindingKind.refused: lambda c: _is(c, "close_kind", "refused"),
    FindingKind.handshake_reset: lambda c: _is(c, "close_kind", "handshake_reset"),
    FindingKind.unanswered: lambda c: _is(c, "close_kind", "unanswered"),
    FindingKind.simultaneous: lambda c: _is(c, "close_kind", "simultaneous"),
    FindingKind.data_after_fin: lambda c: _is(c, "data_after_fin", "new_data"),
    FindingKind.half_close: lambda c: _yes(c, "half_close"),
    FindingKind.capture_loss: lambda c: _yes(c, "capture_loss"),
    FindingKind.one_sided: lambda c: _yes(c, "one_sided"),
    FindingKind.roles_inferred: lambda c: _yes(c, "roles_inferred"),
    FindingKind.lost_between_points: lambda c: _lost_between(c) > 0,
}


@dataclass(slots=True)
class Keys:
    """Who each flow is about, as integer codes the host tables already made (grouping strings
    for 100,000 flows costs more than every rule together), and the names of those codes."""

    client: Rows  # host code of each flow's client (an index into hosts)
    server: Rows  # host code of each flow's server
    endpoint: Rows  # row of each flow's server endpoint in the servers table (an index into endpoints)
    hosts: npt.NDArray[np.object_]
    endpoints: npt.NDArray[np.object_]

    @classmethod
    def of(cls, t: Tables) -> Keys:
        s = t.servers
        names = [endpoint(ip, port) for ip, port in zip(s["server_ip"].tolist(), s["server_port"].tolist())]
        return cls(t.flow_client, t.flow_server, t.flow_endpoint, np.asarray(t.host_labels, object),
                   np.array(names, object))


def groups(codes: Rows, names: npt.NDArray[np.object_], mask: Mask) -> Iterator[tuple[str, int, Rows]]:
    """(name, code, rows) for each distinct code among the flows in `mask`, most rows first."""
    rows = np.flatnonzero(mask)
    if not len(rows):
        return
    order = rows[np.argsort(codes[rows], kind="stable")]
    parts = np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)
    for k in np.argsort([-len(p) for p in parts], kind="stable").tolist():
        code = int(codes[parts[k][0]])
        yield str(names[code]), code, parts[k]


def counts(codes: Rows, mask: Mask | None = None) -> Rows:
    """How many flows (in `mask`) each code has, indexed by code."""
    return np.bincount(codes if mask is None else codes[mask], minlength=int(codes.max(initial=-1)) + 1)


def flow_findings(t: Tables, c: Columns, options: Options) -> list[Finding]:
    """Every per-flow rule's findings (ranking is findings.findings'); scanned flows are told once,
    in the scan finding, not again per refused or unanswered endpoint."""
    keys = Keys.of(t)
    flags = {kind: test(c) for kind, test in FLOW_FLAGS.items()}
    scans, scanned = scan(c, keys, flags)
    out = list(scans)
    for rule in (server_close_flows, abort, fin_retransmission, assassination, reuse_in_time_wait, reuse_rejected,
                 simultaneous, data_after_fin, half_close, capture_loss, one_sided, roles_inferred,
                 lost_between_points):
        out += rule(c, keys, flags, options)
    flags[FindingKind.refused] &= ~scanned
    flags[FindingKind.handshake_reset] &= ~scanned
    flags[FindingKind.unanswered] &= ~scanned
    out += refused(c, keys, flags, options)
    out += handshake_reset(c, keys, flags, options)
    out += unanswered(c, keys, flags, options)
    return out


def server_close_flows(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """Server endpoints that closed first a few, or a minority, of their connections (info): each
    such close leaves a TIME_WAIT on the server. The habit (most of at least SERVER_HABIT_MIN
    closed connections) is the host-level `server-close` rule's, with its TIME_WAIT peak and cause."""
    closed = counts(keys.endpoint, _is(c, "close_kind", "fin", "fin_then_rst", "simultaneous", "rst"))
    for name, code, rows in groups(keys.endpoint, keys.endpoints, flags[FindingKind.server_close]):
        total = int(closed[code])
        if total >= SERVER_HABIT_MIN and len(rows) > HABIT_SHARE * total:
            continue  # the host-level rule tells it, with its TIME_WAIT peak and cause
        yield Finding(Severity.info, FindingKind.server_close, name,
                      f"{name} closed {of_its(len(rows), total, 'connection')} first, so it holds "
                      f"{'its' if len(rows) == 1 else 'their'} TIME_WAIT{examples(c, rows)}.",
                      "where the server must close, keep connections alive longer so it closes fewer; or let "
                      "clients close first", weight=len(rows))


def abort(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """Connections ended by an RST, told by the host that sent it (an abort, close kind rst: no
    FIN before it; or an RST after a FIN, fin_then_rst): the server's per endpoint (the service
    that aborts), the client's per host. Warning when one sender aborts most of at least
    HABIT_MIN connections (the SO_LINGER {1,0} habit), info otherwise."""
    kind, classes = np.asarray(c["close_kind"], object), np.asarray(c["rst_class"], object)
    by_server = _is(c, "first_rst_by", "server")
    for codes, names, sent in ((keys.endpoint, keys.endpoints, by_server), (keys.client, keys.hosts, ~by_server)):
        total_of = counts(codes)
        for name, code, rows in groups(codes, names, flags[FindingKind.abort] & sent):
            total = int(total_of[code])
            plain, after_fin = int(np.sum(kind[rows] == "rst")), int(np.sum(kind[rows] == "fin_then_rst"))
            parts = [f"{plain:,} with no FIN before it (an abort: SO_LINGER {{1,0}}, or close with unread "
                     "data)"] * bool(plain)
            parts += [f"{after_fin:,} after a FIN (data arrived after the close)"] * bool(after_fin)
            named, many = np.unique(classes[rows][~np.equal(classes[rows], NONE)].astype(str), return_counts=True)
            rst_classes = ", ".join(f"{n} {k:,}" for n, k in sorted(zip(named.tolist(), many.tolist()),
                                                                     key=lambda x: -x[1]))
            habit = len(rows) >= HABIT_MIN and len(rows) > HABIT_SHARE * total
            msg = (f"{name} ended {of_its(len(rows), total, 'connection')} ({percent(len(rows) / max(total, 1))}) "
                   f"with an RST: {'; '.join(parts)}")
            msg += f". RST classes: {rst_classes}" if rst_classes else ""
            msg += ". Most of its connections end this way: the SO_LINGER {1,0} pattern" if habit else ""
            yield Finding(Severity.warning if habit else Severity.info, FindingKind.abort, name,
                          msg + examples(c, rows) + ".",
                          "an RST skips TIME_WAIT but discards unsent data and removes TIME_WAIT's protection "
                          "against old duplicates; prefer an orderly close (an application-level goodbye, then the "
                          "client closes first) and keep-alive", weight=len(rows))


def fin_retransmission(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """FINs sent again, told by their sender: the peer's final ACK, or the FIN itself, was lost,
    and the TIME_WAIT holder restarted its 2*MSL timer on each (docs/rules.md "Close verdicts" 5).
    Warning when a sender resent its FIN in more than a tenth of at least HABIT_MIN connections
    (a lossy path), info otherwise."""
    restarts = np.asarray(c["time_wait_restarts"])
    beyond = _yes(c, "final_ack_lost_after_capture")
    for side, codes, names, peer in (("client", keys.client, keys.hosts, "server"),
                                     ("server", keys.endpoint, keys.endpoints, "client")):
        again = np.asarray(c[f"fin_retransmissions_{side}"])
        total_of = counts(codes)
        for name, code, rows in groups(codes, names, again > 0):
            total = int(total_of[code])
            lossy = len(rows) >= HABIT_MIN and len(rows) > LOSSY_SHARE * total
            after = int(np.count_nonzero(beyond[rows]))
            where = [f"in {after:,} the capture shows the {peer}'s final ACK before the FIN came again: that ACK was "
                     "lost beyond the capture point"] * bool(after)
            where += [f"in {len(rows) - after:,} the capture shows no final ACK of the {peer}'s before the FIN came "
                      "again: the final ACK was lost before the capture point, or the FIN itself beyond it"
                      ] * bool(len(rows) - after)
            yield Finding(
                Severity.warning if lossy else Severity.info, FindingKind.fin_retransmission, name,
                f"{name} ({side}) sent its FIN again in {of_its(len(rows), total, 'connection')} "
                f"({plural(int(again[rows].sum()), 'retransmission')}): {'; '.join(where)}. The TIME_WAIT was "
                f"restarted {plural(int(restarts[rows].sum()), 'time')}{examples(c, rows)}.",
                "look for loss on the path (interface errors, drops in `nstat -az TcpExtTCPLostRetransmit`); a "
                "lost final ACK costs the closer one more round trip and restarts its TIME_WAIT", weight=len(rows))


def _holder(c: Columns, keys: Keys) -> Rows:
    """The host code of each flow's TIME_WAIT holder (the server where it is not the client)."""
    holder: Rows = np.where(_is(c, "time_wait_on", "client"), keys.client, keys.server)
    return holder


def assassination(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """TIME_WAITs hit by an in-sequence RST (RFC 1337), told by the holder: warning where its OS
    profile lets the RST end the TIME_WAIT, info where it ignores it (docs/rules.md "TIME_WAIT")."""
    for host, _, rows in groups(_holder(c, keys), keys.hosts, flags[FindingKind.assassination]):
        kills = options.behaviour_of(options.profile_of(host)).rst_kills_time_wait
        consequence = ("under its OS profile the TIME_WAIT ended at once" if kills
                       else "its OS profile ignores such RSTs, so the TIME_WAIT survived")
        yield Finding(Severity.warning if kills else Severity.info, FindingKind.assassination, host,
                      f"{plural(len(rows), 'TIME_WAIT')} of {host} were hit by an in-sequence RST (RFC 1337 "
                      f"assassination); {consequence}{examples(c, rows)}.",
                      "net.ipv4.tcp_rfc1337=1 makes Linux ignore RSTs in TIME_WAIT; find who sends them (a peer "
                      "answering old duplicates, or a client answering a rejected SYN)", weight=len(rows))


def reuse_in_time_wait(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """SYNs that reused a 4-tuple still in TIME_WAIT, per server endpoint, by verdict: accepted for
    newer timestamps (RFC 6191) or a higher ISN (RFC 1122), or rejected (told again, as a
    warning, by the next rule). Info."""
    verdict = np.asarray(c["reuse_verdict"], object)
    words = {"accepted_timestamps": "accepted for newer timestamps (RFC 6191)",
             "accepted_isn": "accepted for an ISN above the old connection's (RFC 1122)",
             "rejected": "rejected with an ACK of the old connection"}
    for name, _, rows in groups(keys.endpoint, keys.endpoints, flags[FindingKind.reuse_in_time_wait]):
        how = [f"{int(np.sum(verdict[rows] == v)):,} {text}" for v, text in words.items() if np.any(verdict[rows] == v)]
        yield Finding(Severity.info, FindingKind.reuse_in_time_wait, name,
                      f"{plural(len(rows), 'SYN')} to {name} reused a 4-tuple still in TIME_WAIT"
                      f"{': ' + ', '.join(how) if how else ''}{examples(c, rows)}.",
                      "fine while timestamps are on at both ends; a client that reuses ports this fast is near "
                      "the end of its ephemeral range: pool connections or widen net.ipv4.ip_local_port_range",
                      weight=len(rows))


def reuse_rejected(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """SYNs reusing a 4-tuple whose TIME_WAIT rejected them (answered by an ACK of the old
    connection), per holder: warning, each costs the client an RST and a retry."""
    for host, _, rows in groups(_holder(c, keys), keys.hosts, flags[FindingKind.reuse_rejected]):
        yield Finding(Severity.warning, FindingKind.reuse_rejected, host,
                      f"{plural(len(rows), 'SYN')} reusing a 4-tuple still in {host}'s TIME_WAIT "
                      f"{'was' if len(rows) == 1 else 'were'} rejected (answered with an ACK of the old connection); "
                      f"each cost the client an RST and a retry{examples(c, rows)}.",
                      "let clients close first so the TIME_WAIT is theirs; timestamps on both sides let a "
                      "TIME_WAIT accept a newer SYN (RFC 6191); widen the clients' port range", weight=len(rows))


def scan(c: Columns, keys: Keys, flags: Flags) -> tuple[list[Finding], Mask]:
    """A source whose refused or unanswered SYNs went to at least SCAN_TARGETS distinct ports or
    hosts: a scan (or a client with a wrong list of targets). Warning. Returns the findings and
    the flows of every source found scanning."""
    failed = flags[FindingKind.refused] | flags[FindingKind.unanswered]
    scanned = np.zeros(len(failed), bool)
    out: list[Finding] = []
    attempted = _is(c, "handshake", "complete", "syn_only", "syn_synack") | failed
    for source, code, rows in groups(keys.client, keys.hosts, failed):
        if len(np.unique(keys.endpoint[rows])) < SCAN_TARGETS:
            continue
        mine = np.flatnonzero(attempted & (keys.client == code))
        scanned[mine] = True
        hosts = np.unique(keys.server[mine])
        ports = np.unique(np.asarray(c["server_port"])[mine])
        first = np.asarray(c["first_ts"], np.float64)[mine]
        peak, _ = window_peaks(np.zeros(len(mine), np.int64), np.sort(first), 1, 1.0)
        kind = np.asarray(c["close_kind"], object)[mine]
        where = (f"{plural(len(ports), 'port')} ({int(ports.min())}–{int(ports.max())}) of "
                 + (str(keys.hosts[hosts[0]]) if len(hosts) == 1 else plural(len(hosts), 'host')))
        out.append(Finding(
            Severity.warning, FindingKind.scan, source,
            f"{source} sent SYNs to {where} over {float(first.max() - first.min()):,.1f} s, up to {int(peak[0]):,} a "
            f"second: {int(np.sum(kind == 'unanswered')):,} unanswered, {int(np.sum(kind == 'refused')):,} refused, "
            f"{int(np.sum(~np.isin(kind, ['unanswered', 'refused']))):,} answered"
            f"{_reset_part(int(np.sum(kind == 'handshake_reset')))}{examples(c, mine)}.",
            "if the source is not yours, it is mapping open ports: block it; if it is your client, check the "
            "addresses and ports it is given", weight=len(mine)))
    return out, scanned


def _reset_part(resets: int) -> str:
    """What a scan's answered probes were, where some were reset in the handshake."""
    return f" ({resets:,} of them reset in the handshake: a SYN-ACK answered by an RST)" if resets else ""


def refused(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """SYNs answered by RST+ACK, per server endpoint: nothing listened. Warning when the endpoint
    refused every one of at least ALL_FAILED_MIN attempts (the service is down), info otherwise."""
    total_of = counts(keys.endpoint)
    for name, code, rows in groups(keys.endpoint, keys.endpoints, flags[FindingKind.refused]):
        total = int(total_of[code])
        yield Finding(Severity.warning if len(rows) >= ALL_FAILED_MIN and len(rows) == total else Severity.info,
                      FindingKind.refused, name,
                      f"{name} refused {of_its(len(rows), total, 'connection attempt')} (RST+ACK: nothing "
                      f"listening){examples(c, rows)}.",
                      "check that the service listens there (`ss -ltn`), or why clients call it", weight=len(rows))


def handshake_reset(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """SYN-ACKs answered by an RST before the handshake completed, per server endpoint: the SYN's
    sender had no socket for it (a half-open scan, SYNs from a raw socket), or a side aborted the
    handshake (docs/rules.md "Close verdicts" 4). Info: nothing established was closed."""
    total_of = counts(keys.endpoint)
    by_server = _is(c, "first_rst_by", "server")
    for name, code, rows in groups(keys.endpoint, keys.endpoints, flags[FindingKind.handshake_reset]):
        clients = len(np.unique(keys.client[rows]))
        server = int(np.count_nonzero(by_server[rows]))
        who = [f"{len(rows) - server:,} by the client (no socket sent that SYN: a half-open scan, or SYNs from a "
               "raw socket)"] * bool(len(rows) - server) + [f"{server:,} by the server"] * bool(server)
        yield Finding(Severity.info, FindingKind.handshake_reset, name,
                      f"{name} answered {of_its(len(rows), int(total_of[code]), 'connection attempt')} from "
                      f"{plural(clients, 'client')} with a SYN-ACK that an RST answered before the handshake "
                      f"completed: {'; '.join(who)}{examples(c, rows)}.",
                      "if the clients are not yours, they are probing for open ports: block them; if they are, look "
                      "for a tool that sends SYNs from a raw socket", weight=len(rows))


def unanswered(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """SYNs with no answer, per server endpoint (filtered, the host down, or the answer lost):
    warning when the endpoint answered none of at least ALL_FAILED_MIN attempts, info otherwise.
    Says how many attempts their client gave up with an RST (docs/rules.md "Close verdicts" 4)."""
    sent = np.asarray(c["packets_c2s"])
    again = np.asarray(c["incarnation"]) > 0  # a later attempt on the same 4-tuple
    gave_up = _is(c, "first_rst_by", "client")
    total_of = counts(keys.endpoint)
    for name, code, rows in groups(keys.endpoint, keys.endpoints, flags[FindingKind.unanswered]):
        clients = len(np.unique(keys.client[rows]))
        rsts = int(np.count_nonzero(gave_up[rows]))
        resent = int(np.sum(np.maximum(sent[rows] - 1 - gave_up[rows], 0)))  # the client's segments: SYNs, its RST
        retried = int(np.count_nonzero(again[rows]))
        how = [f"{plural(resent, 'SYN')} sent again"] * bool(resent) + [
            f"{retried:,} from a client port already tried, with a new ISN (the client gave up and connected "
            "again)"] * bool(retried) + [
            f"{rsts:,} given up by the client with an RST (a connect that gave up, or a scanner)"] * bool(rsts)
        all_failed = len(rows) >= ALL_FAILED_MIN and len(rows) == int(total_of[code])
        yield Finding(Severity.warning if all_failed else Severity.info, FindingKind.unanswered, name,
                      f"{plural(len(rows), 'connection attempt')} to {name} from {plural(clients, 'client')} got no "
                      f"answer{': ' + '; '.join(how) if how else ''}{examples(c, rows)}.",
                      "a firewall dropping SYNs, a host that is down, or a full accept queue "
                      "(`nstat -az TcpExtListenDrops` on the server)", weight=len(rows))


def _capture_wide(c: Columns, flags: Flags, kind: FindingKind, severity: Severity,
                  text: Callable[[Rows, int], str], advice: str) -> Iterator[Finding]:
    """One finding for the whole capture: `text(rows, total)` says what the flagged flows show."""
    rows = np.flatnonzero(flags[kind])
    if len(rows):
        yield Finding(severity, kind, "capture", text(rows, len(c["first_ts"])) + examples(c, rows) + ".", advice,
                      weight=len(rows))


def simultaneous(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """Crossing FINs: both sides go through CLOSING and hold TIME_WAIT (RFC 9293 §3.6). Info."""
    return _capture_wide(c, flags, FindingKind.simultaneous, Severity.info,
                         lambda rows, n: f"{of_all(len(rows), n, 'connection')} closed simultaneously (the FINs "
                                         "crossed): both sides hold TIME_WAIT",
                         "usual for protocols where both sides close at once; both hosts pay a TIME_WAIT each")


def data_after_fin(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """New data after the sender's own FIN: a protocol violation (docs/rules.md "Close verdicts"
    6). Warning."""
    return _capture_wide(c, flags, FindingKind.data_after_fin, Severity.warning,
                         lambda rows, n: f"{of_all(len(rows), n, 'connection')} carried new data after the "
                                         "sender's own FIN: a protocol violation, or a middlebox rewriting sequence "
                                         "numbers",
                         "find the stack or middlebox that sends it; the receiver discards it or answers with an RST")


def half_close(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """One side kept sending after the other's FIN (shutdown(SHUT_WR)). Info."""
    seconds = np.asarray(c["half_close_s"], np.float64)

    def text(rows: Rows, n: int) -> str:
        longest = np.nanmax(seconds[rows]) if np.isfinite(seconds[rows]).any() else 0.0
        return (f"{of_all(len(rows), n, 'connection')} {'was' if len(rows) == 1 else 'were'} half-closed: "
                f"after one side's FIN the other kept sending, for up to {longest:,.3f} s")

    return _capture_wide(c, flags, FindingKind.half_close, Severity.info, text,
                         "normal for request/response protocols that shut down writing; the closer waits in "
                         "FIN_WAIT_2 meanwhile")


def capture_loss(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """Bytes the peer acknowledged that the capture never saw (docs/rules.md "Honesty about the
    capture point"). Warning: verdicts resting on the missing segments are less certain."""
    lost = np.asarray(c["capture_loss_bytes"], np.float64)
    return _capture_wide(c, flags, FindingKind.capture_loss, Severity.warning,
                         lambda rows, n: f"{of_all(len(rows), n, 'connection')} miss "
                                         f"{plural(int(np.nansum(lost[rows])), 'byte')} that the peer acknowledged: the "
                                         "capture dropped them, and verdicts resting on them are less certain",
                         "capture with a larger buffer (tcpdump -B, dumpcap -B), a snaplen that fits, or closer to "
                         "the host; check the capture's own drop counters")


def one_sided(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """Connections of which the capture holds one direction only (asymmetric routing, a SPAN of
    one direction, a filter): warning when most are, info otherwise."""
    many = np.count_nonzero(flags[FindingKind.one_sided]) > HABIT_SHARE * len(c["first_ts"])
    severity = Severity.warning if many else Severity.info
    return _capture_wide(c, flags, FindingKind.one_sided, severity,
                         lambda rows, n: f"the capture holds one direction only of {of_all(len(rows), n, 'connection')}: "
                                         "verdicts that need the other side are left empty",
                         "capture where both directions pass (both directions of the SPAN, or on the host itself)")


def roles_inferred(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """Connections caught midstream: no SYN or SYN-ACK, so client and server were inferred from
    the ports (docs/rules.md "Vocabulary"). Info."""
    return _capture_wide(c, flags, FindingKind.roles_inferred, Severity.info,
                         lambda rows, n: f"{of_all(len(rows), n, 'connection')} began before the capture: "
                                         "client and server were inferred from the ports",
                         "start the capture before the connections open to see who opened them")


# "the client's final ACK (client_side.pcap frame 36) never reached ...": points/join.py's words.
LOST_SEGMENT = re.compile(r"the (client|server)'s (.+?) \(")


def lost_between_points(c: Columns, keys: Keys, flags: Flags, options: Options) -> Iterator[Finding]:
    """Segments one capture point saw on their way and the point after it never did, where two
    captures of one path were joined (docs/rules.md "Two capture points"): lost in between.
    Warning: what lies between the points drops traffic."""
    rows = np.flatnonzero(flags[FindingKind.lost_between_points])
    if not len(rows):
        return
    said: dict[str, Counter[str]] = {"client": Counter(), "server": Counter()}
    for words in np.asarray(c["lost_between"], object)[rows].tolist():
        for side, kind in LOST_SEGMENT.findall(words or ""):
            said[side][kind] += 1
    total = sum(sum(k.values()) for k in said.values())
    points = sorted(set(np.asarray(c["seen_at"], object)[rows].tolist()))
    between = " and ".join(str(p).replace("; ", " and ") for p in points[:1]) + (
        f" (and {len(points) - 1} more pairs)" if len(points) > 1 else "")
    parts = [f"{'client to server' if side == 'client' else 'server to client'} {sum(k.values()):,} ("
             + ", ".join(f"{n:,} {kind}{'s' if n != 1 else ''}" for kind, n in k.most_common()) + ")"
             for side, k in said.items() if k]
    yield Finding(Severity.warning, FindingKind.lost_between_points, "capture",
                  f"{plural(total, 'segment')} lost between {between}, in {of_all(len(rows), len(c['first_ts']), 'connection')}: "
                  + "; ".join(parts) + examples(c, rows) + ".",
                  "look at what lies between the capture points (a router, firewall or load balancer): its drop "
                  "counters, queue and policy drops; each loss costs a retransmission, and a lost final ACK makes the "
                  "peer send its FIN again", weight=len(rows))
