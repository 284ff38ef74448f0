"""Every output column and enum value, with its meaning: the DataFrame dtypes, the writers and
the README's column table are all built from this list.

`python -m teardown.schema --markdown` rewrites the README between the schema markers.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class CloseKind(StrEnum):
    fin = "fin"  # orderly FIN exchange (also a FIN from one side only when the capture ends first)
    simultaneous = "simultaneous"  # FINs crossed: neither acknowledged the other; both end in TIME_WAIT
    rst = "rst"  # an RST ended an established connection with no FIN before it (abort)
    fin_then_rst = "fin_then_rst"  # a FIN, then an RST before the orderly close completed
    refused = "refused"  # SYN answered by RST+ACK
    handshake_reset = "handshake_reset"  # an RST ended the handshake after the SYN-ACK, before its third segment: the SYN's sender had no such connection (a raw-socket SYN, a scanner) or either side aborted the handshake; first_rst_by says who
    unanswered = "unanswered"  # SYN with no answer, where the capture proves none came; first_rst_by client: its sender gave up with an RST
    open = "open"  # no FIN or RST before the capture ended
    unknown = "unknown"  # SYN with no answer, sent once, and the capture lacks the direction toward its sender (no segment toward it, or its host pair one-sided): the answer (SYN-ACK or RST) may have gone by a path not captured


class Side(StrEnum):
    client = "client"
    server = "server"
    both = "both"
    none = "none"


class Handshake(StrEnum):
    complete = "complete"  # SYN, SYN-ACK and the client's ACK seen
    syn_only = "syn_only"  # only the client's SYN
    synack_only = "synack_only"  # the SYN-ACK but not the SYN
    syn_synack = "syn_synack"  # the SYN and the SYN-ACK, no third segment: the handshake did not complete (an RST answered the SYN-ACK), or its ACK is not in the capture
    none = "none"  # caught midstream
    answered_unseen = "answered_unseen"  # the client's SYN, then its ACKs or data: answered by a SYN-ACK the capture does not hold (one direction only)


class RstClass(StrEnum):
    exact = "exact"  # seq equals what the receiver expects next: accepted
    in_window = "in_window"  # inside the receiver's window but not exact: answered by a challenge ACK
    out_of_window = "out_of_window"  # outside the window: ignored (stale or injected)
    to_closed_port = "to_closed_port"  # sent by an endpoint with no socket, answering a segment
    unverifiable = "unverifiable"  # the capture lacks the state to judge it


class ReuseVerdict(StrEnum):
    accepted_timestamps = "accepted_timestamps"  # SYN accepted in TIME_WAIT: newer timestamps (RFC 6191)
    accepted_isn = "accepted_isn"  # SYN accepted in TIME_WAIT: ISN above the old connection's (RFC 1122)
    rejected = "rejected"  # the TIME_WAIT holder answered with an ACK of the old connection, not a SYN-ACK
    after_time_wait = "after_time_wait"  # the tuple was reused after TIME_WAIT had ended


class DataAfterFin(StrEnum):
    none = "none"
    retransmission = "retransmission"  # data below the FIN's sequence number sent again
    new_data = "new_data"  # new data after the sender's own FIN: a protocol violation


class CloseCause(StrEnum):
    http10_request = "http10_request"  # the client's request was HTTP/1.0 without keep-alive
    connection_close_request = "connection_close_request"  # the client's request said `Connection: close`
    http10_response = "http10_response"  # the server answered HTTP/1.0 without keep-alive
    connection_close_response = "connection_close_response"  # the server's response said `Connection: close`
    http_keep_alive = "http_keep_alive"  # the first exchange kept the connection open: the server closed it later (idle timeout, request limit)
    not_http = "not_http"  # payload seen, not HTTP/1.x
    no_payload = "no_payload"  # neither side's payload is in the capture


class Severity(StrEnum):
    critical = "critical"  # a limit is reached, or will be at the observed rate: connections fail
    warning = "warning"  # a habit that costs TIME_WAIT, ports or data; fix it before the load grows
    info = "info"  # worth knowing; nothing fails at the observed load


class FindingKind(StrEnum):
    # From the host-level views (docs/rules.md "Host-level views"):
    port_exhaustion = "port-exhaustion"  # a client held (nearly) all its ephemeral ports toward one destination
    port_pressure = "port-pressure"  # a client opens connections to one destination faster than its ports can sustain
    time_wait_pile_up = "time-wait-pile-up"  # a host held many TIME_WAIT sockets at once
    hidden_before_capture = "hidden-before-capture"  # a peak lies where TIME_WAITs begun before the capture would add to it
    # From the per-flow verdicts, one finding per host or endpoint concerned:
    server_close = "server-close"  # a server endpoint closed connections first and holds their TIME_WAIT
    abort = "abort"  # connections ended by an RST (rst, fin_then_rst), counted by who sent it
    fin_retransmission = "fin-retransmission"  # a FIN was sent again: the final ACK (or the FIN) was lost
    assassination = "assassination"  # TIME_WAITs hit by an in-sequence RST (RFC 1337)
    reuse_in_time_wait = "reuse-in-time-wait"  # SYNs reused a 4-tuple still in TIME_WAIT
    reuse_rejected = "reuse-rejected"  # of those, SYNs the TIME_WAIT rejected with an ACK of the old connection
    scan = "scan"  # one source sent SYNs to many ports or hosts, most of them unanswered or refused
    refused = "refused"  # SYNs answered by RST+ACK: nothing listening on a port
    handshake_reset = "handshake-reset"  # SYN-ACKs answered by an RST before the handshake completed: a half-open scan, or a raw-socket SYN
    unanswered = "unanswered"  # SYNs that got no answer (filtered, or the host is down)
    simultaneous = "simultaneous"  # FINs crossed; both sides hold TIME_WAIT
    data_after_fin = "data-after-fin"  # new data after the sender's own FIN (protocol violation)
    half_close = "half-close"  # one side kept sending after the other's FIN
    capture_loss = "capture-loss"  # bytes acknowledged that the capture never saw
    one_sided = "one-sided"  # the capture holds one direction only of some connections
    roles_inferred = "roles-inferred"  # connections caught midstream: client and server inferred
    lost_between_points = "lost-between-points"  # segments one capture point saw leave and the next never saw


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    dtype: str | type[StrEnum]  # a pandas dtype name, or the enum of a categorical column
    meaning: str
    unit: str = ""
    empty_when: str = ""

    @property
    def pandas_dtype(self) -> str:
        return "category" if not isinstance(self.dtype, str) else self.dtype


FLOW_COLUMNS: list[Column] = [
    Column("flow_id", "string", "client ip:port > server ip:port / incarnation; flows in a VLAN start with vlanN/, "
           "flows carried otherwise (another interface or link type, QinQ, a tunnel) with cN/, N numbering those "
           "carriers as the summary lists them."),
    Column("incarnation", "Int64", "0 for the first connection on this 4-tuple in the capture, 1 for the next, ..."),
    Column("client_ip", "string", "Sender of the SYN (without ACK); inferred without a handshake."),
    Column("client_port", "Int64", "Client's port."),
    Column("server_ip", "string", "Sender of the SYN-ACK; inferred without a handshake."),
    Column("server_port", "Int64", "Server's port."),
    Column("ip_version", "Int64", "4 or 6."),
    Column("vlan", "Int64", "Outermost 802.1Q VLAN id the flow was carried in.", empty_when="untagged"),
    Column("link_type", "string", "Link type of the capture interface the flow was seen on (Ethernet, PPP, "
           "802.11 radiotap, Linux NFLOG, ...)."),
    Column("encapsulation", "string", "How the flow's segments were carried, outermost first: e.g. "
           "eth/vlan:100/ipv4/gre:7/ipv4 (ids after a colon: VLAN id, GRE key, VNI, ERSPAN session).",
           empty_when="the link header carried the IP packet directly"),
    Column("also_seen_on", "string", "Other points (interfaces, VLANs, tunnels) where the capture holds copies of "
           "this connection's segments, set aside: '; '-separated.", empty_when="seen at one point only"),
    Column("duplicates_seen", "Int64", "Segments set aside as copies seen at the points of also_seen_on: in no "
           "verdict, count or host view."),
    Column("roles_inferred", "boolean", "True when no SYN or SYN-ACK was seen and roles were inferred from ports."),
    Column("one_sided", "boolean", "The capture holds one direction of this connection only: segments from one "
           "side, which acknowledge sequence numbers (or a SYN-ACK) the capture never shows, or a lone SYN whose "
           "sender's direction the capture lacks (close_kind unknown). Verdicts then rest on the side seen; those "
           "that need the other side are empty (docs/rules.md \"Honesty about the capture point\")."),
    Column("first_ts", "Float64", "First packet of the incarnation.", unit="s since the epoch"),
    Column("last_ts", "Float64", "Last packet of the incarnation.", unit="s since the epoch"),
    Column("duration_s", "Float64", "last_ts - first_ts.", unit="s"),
    Column("packets_c2s", "Int64", "Segments from the client."),
    Column("packets_s2c", "Int64", "Segments from the server."),
    Column("bytes_c2s", "Int64", "TCP payload bytes from the client (from IP lengths, so snaplen does not hide them).", unit="bytes"),
    Column("bytes_s2c", "Int64", "TCP payload bytes from the server.", unit="bytes"),
    Column("handshake", Handshake, "Which part of the three-way handshake the capture shows."),
    Column("close_kind", CloseKind, "How the connection ended."),
    Column("half_close", "boolean", "After one side's FIN, the other kept sending data."),
    Column("half_close_s", "Float64", "How long the other side kept sending after the first FIN.", unit="s",
           empty_when="half_close is false"),
    Column("active_closer", Side, "Who ended the connection first: the side whose FIN came first by seq/ACK "
           "causality (both: simultaneous); for an abort (close_kind rst) the RST's sender; none when nothing "
           "established was closed (refused, handshake_reset, unanswered, unknown, open). When one_sided, "
           "inferred from the side seen (see notes)."),
    Column("first_fin_by", Side, "The side whose FIN the capture shows first (capture order); when one_sided, "
           "the peer when the seen side's ACKs show that the peer's unseen FIN came first."),
    Column("first_fin_ts", "Float64", "Time of the first FIN.", unit="s since the epoch", empty_when="no FIN"),
    Column("first_rst_by", Side, "The side that sent the first RST that counts (docs/rules.md \"Close verdicts\" 4: "
           "one sent during a handshake that was then completed does not). With close_kind unanswered or unknown it "
           "tells a SYN its sender gave up with an RST (client) from one never answered (none)."),
    Column("first_rst_ts", "Float64", "Time of the first RST.", unit="s since the epoch", empty_when="no RST"),
    Column("rst_class", RstClass, "How the RST that ended the connection fits the receiver's state (RFC 9293, RFC 5961).",
           empty_when="no RST, or one_sided (the receiver's state is not in the capture)"),
    Column("fin_retransmissions_client", "Int64", "FINs the client sent again with the same sequence number."),
    Column("fin_retransmissions_server", "Int64", "FINs the server sent again with the same sequence number."),
    Column("final_ack_lost_after_capture", "boolean", "Where the final ACK of a FIN sent again was lost: true when "
           "the capture shows that ACK before the FIN came again (it was lost beyond the capture point), false when "
           "it does not (lost before this point, or the FIN itself was lost beyond it) (docs/rules.md \"Close "
           "verdicts\" 5).", empty_when="no FIN was sent again"),
    Column("data_after_fin", DataAfterFin, "Data the FIN's sender sent after its own FIN."),
    Column("time_wait_on", Side, "Who ends in TIME_WAIT: the active closer; both after a simultaneous close.",
           empty_when="one_sided (TIME_WAIT starts at the peer's FIN, which the capture does not hold), except "
           "close_kind unknown"),
    Column("time_wait_start_ts", "Float64", "When the holder acknowledged the peer's FIN (both: the earlier).",
           unit="s since the epoch", empty_when="time_wait_on is none"),
    Column("time_wait_end_ts", "Float64", "Estimated end of TIME_WAIT under the OS profile, after restarts, "
           "assassination or reuse (both: the later).", unit="s since the epoch", empty_when="time_wait_on is none"),
    Column("time_wait_restarts", "Int64", "Retransmitted FINs the holder answered in TIME_WAIT, each restarting its timer."),
    Column("tw_assassination", "boolean", "An in-sequence RST reached the holder during TIME_WAIT (RFC 1337)."),
    Column("tw_assassination_ts", "Float64", "Time of that RST.", unit="s since the epoch",
           empty_when="tw_assassination is false"),
    Column("reuses_tuple_in_time_wait", "boolean", "This incarnation's SYN came while the previous incarnation "
           "on the same 4-tuple was still in TIME_WAIT."),
    Column("reuse_verdict", ReuseVerdict, "What became of a SYN reusing the 4-tuple.",
           empty_when="first incarnation of its tuple, or the previous one held no TIME_WAIT"),
    Column("capture_loss", "boolean", "Bytes were acknowledged that the capture never saw (not judged, so false, "
           "when one_sided: the other direction is missing, not lost)."),
    Column("capture_loss_bytes", "Int64", "How many, both directions: gaps in a side's sequence numbers that the "
           "peer acknowledged (wherever they lie: at the start, in the middle, just before a FIN or an RST) and "
           "bytes acknowledged beyond the last one seen. A retransmission the capture saw fills a gap; a "
           "keep-alive or window probe opens none. Beyond 3 gaps open at once in one direction the count is an "
           "estimate that errs low (docs/rules.md \"Honesty about the capture point\").", unit="bytes",
           empty_when="one_sided"),
    Column("capture_loss_bytes_c2s", "Int64", "Of those, the client's bytes.", unit="bytes", empty_when="one_sided"),
    Column("capture_loss_bytes_s2c", "Int64", "Of those, the server's bytes.", unit="bytes", empty_when="one_sided"),
    Column("evidence_frames", "string", "Frame numbers the close verdict rests on (SYN, FINs, RSTs, final ACKs), and "
           "with capture loss the frames around the first gap ('gap after 12, before 15': the last segment before "
           "it, the first after it); they run on across the files of one continuous capture. Empty for a flow "
           "none of these frames were seen in (caught midstream, still open)."),
    Column("notes", "string", "Plain-language remarks: inferred roles, lost final ACKs, fingerprints, anomalies."),
    Column("capture_file", "string", "Name of the capture file holding the incarnation's first segment. Files "
           "given together are read as one capture when each starts where the previous ended (rotated pieces), "
           "else each on its own, with frame numbers counted from 1 in each."),
    Column("display_filter", "string", "A Wireshark display filter (4.0 and later) selecting exactly this "
           "incarnation's frames in capture_file: its 4-tuple both ways, its frames as that file numbers them (from "
           "1 in each file), and what tells its carrier (interface, VLAN, tunnel) from the others the run holds, so "
           "that copies seen at other points are left out (docs/rules.md \"Display filters\"). A flow running on "
           "into the next file of a rotation: its frames in capture_file only, and a note says so."),
    Column("seen_at", "string", "The capture points (files) that saw this connection, '; '-separated, where "
           "captures of one path taken at several points were joined into one analysis (docs/rules.md \"Two capture "
           "points\"): a connection seen at both is one row, from the point nearer its TIME_WAIT's holder.",
           empty_when="the run holds one capture point"),
    Column("clock_offset_s", "Float64", "How far the other point's clock is ahead of the first's, estimated from "
           "the segments seen at both (the same for every row of the pair of captures); this row's times are in "
           "the first point's clock.", unit="s", empty_when="the run holds one capture point"),
    Column("lost_between_c2s", "Int64", "Segments from the client that the point nearer it saw and the point "
           "nearer the server never did: lost between the points (a copy sent again and seen at both is not a "
           "loss).", empty_when="not seen at two points"),
    Column("lost_between_s2c", "Int64", "Segments from the server lost between the points, likewise.",
           empty_when="not seen at two points"),
    Column("lost_between", "string", "Each segment lost between the points, in words, with its frame at the point "
           "that saw it and what the other point saw next: e.g. \"the client's final ACK (client_side.pcap frame "
           "36) never reached server_side.pcap; the server sent its FIN again (server_side.pcap frame 51)\".",
           empty_when="none lost, or not seen at two points"),
]
POINT_COLUMNS = ("seen_at", "clock_offset_s", "lost_between_c2s", "lost_between_s2c", "lost_between")
ENUMS: list[type[StrEnum]] = [CloseKind, Side, Handshake, RstClass, ReuseVerdict, DataAfterFin,
                              CloseCause, Severity, FindingKind]
COLUMN_NAMES = [c.name for c in FLOW_COLUMNS]
# Kept beside the flow columns in `Analysis.columns` for later stages, never written out.
INTERNAL_COLUMNS = {
    "close_cause": "why the server closed first, read from both sides' first payload bytes (int8: an index into "
                   "http.CAUSES; -1 where the server did not close first)",
    "first_frame": "frame number of the incarnation's first segment: orders rows with equal first_ts",
    "last_frame": "frame number of the incarnation's last segment",
    "file_frames": "the incarnation's first and last frame in capture_file, (rows, 2), numbered as that file "
                   "numbers them (from 1): the frame range of display_filter",
    "capture": "which capture of the run the row belongs to (files read as one capture share one)",
    "ctx": "the carrier the flow was seen on: its VLAN id, or a number from 4096 (carriers.Contexts)",
    "first_seq": "raw sequence number of the first segment each side sent, (rows, 2) client then server: tells "
                 "copies of a connection at two points from another connection on the same 4-tuple",
    "evidence": "the frames evidence_frames is written from, (rows, 8), in verdicts.EVIDENCE_LABELS order",
    "note_bits": "which of verdicts.NOTES apply: the notes column is written from it",
}

# Host-level views (docs/rules.md "Host-level views"), computed from the per-flow table.
_PEAK_TS = dict(unit="s since the epoch", empty_when="no TIME_WAIT")
HOST_COLUMNS: list[Column] = [
    Column("host", "string", "IP address, as client or server (with flow_id's vlanN/ or cN/ in front when carried in "
           "a VLAN, a tunnel or elsewhere than the main link)."),
    Column("connections", "Int64", "Incarnations with this host at either end."),
    Column("connections_as_client", "Int64", "Of those, the ones this host opened."),
    Column("connections_as_server", "Int64", "Of those, the ones this host accepted."),
    Column("closed_first", "Int64", "Connections this host closed first: its FIN came first (both sides after a "
           "simultaneous close), or it aborted them with an RST and no FIN before it."),
    Column("time_wait_total", "Int64", "TIME_WAIT sockets this host held over the capture."),
    Column("time_wait_peak", "Int64", "Most TIME_WAIT sockets held at one instant (restarts, assassination "
           "and accepted reuse applied)."),
    Column("time_wait_peak_ts", "Float64", "First instant of that peak.", **_PEAK_TS),
    Column("time_wait_peak_peers", "string", "Peers whose TIME_WAITs made up the peak, most first, with "
           "counts (at most 3).", empty_when="no TIME_WAIT"),
    Column("time_wait_peak_may_be_low", "boolean", "The peak lies within one TIME_WAIT length of the capture "
           "start, where TIME_WAITs begun before the capture (invisible) would add to it."),
    Column("time_wait_s", "Float64", "This host's TIME_WAIT length under its OS profile and --time-wait.", unit="s"),
    Column("aborts_sent", "Int64", "Connections this host ended with an RST (close kinds rst, fin_then_rst)."),
    Column("refused_sent", "Int64", "SYNs this host refused with RST+ACK (nothing listening)."),
]
DESTINATION_COLUMNS: list[Column] = [
    Column("client_ip", "string", "The client whose ephemeral ports are counted."),
    Column("server_ip", "string", "Server address."),
    Column("server_port", "Int64", "Server port."),
    Column("connections", "Int64", "Incarnations from this client to this server endpoint."),
    Column("client_ports_seen", "Int64", "Distinct client ports used."),
    Column("client_time_wait_share", "Float64", "Share of the connections that left the client in TIME_WAIT "
           "(it closed first, or both did): only those hold a port after the close.", unit="fraction"),
    Column("client_ports_outside_range", "Int64", "Connections whose client port lies outside --port-range "
           "(then that range is not this client's)."),
    Column("ports_in_use_peak", "Int64", "Most client ports held at one instant: open connections plus the "
           "client's TIME_WAITs."),
    Column("ports_in_use_peak_ts", "Float64", "First instant of that peak.", unit="s since the epoch"),
    Column("port_range_size", "Int64", "Ports in --port-range (Linux default 32768-60999: 28,232)."),
    Column("port_utilisation_peak", "Float64", "ports_in_use_peak / port_range_size.", unit="fraction"),
    Column("observed_rate_peak", "Float64", "Most new connections in any 1 s window.", unit="connections/s"),
    Column("observed_rate_peak_ts", "Float64", "Start of that window.", unit="s since the epoch"),
    Column("observed_rate_peak_10s", "Float64", "Most new connections in any 10 s window, divided by 10.",
           unit="connections/s", empty_when="the capture spans less than 10 s"),
    Column("sustainable_rate", "Float64", "port_range_size / the client's TIME_WAIT length: the steady rate of "
           "new connections the range sustains when the client closes first.", unit="connections/s"),
    Column("seconds_to_exhaustion", "Float64", "How long the range lasts from empty when connections that "
           "leave the client in TIME_WAIT arrive at observed_rate_peak × client_time_wait_share: "
           "port_range_size / that rate; 0 when ports_in_use_peak reached the range.", unit="s",
           empty_when="that rate is within the sustainable rate and the range was never full"),
    Column("time_wait_reuses", "Int64", "Connections that reused a 4-tuple still in TIME_WAIT."),
]
SERVER_COLUMNS: list[Column] = [
    Column("server_ip", "string", "Server address."),
    Column("server_port", "Int64", "Server port."),
    Column("connections", "Int64", "Incarnations to this server endpoint."),
    Column("closed", "Int64", "Of those, the ones that ended with FIN or RST: the shares' denominator."),
    Column("server_closed_first_share", "Float64", "Share of closed connections whose first FIN was the "
           "server's (also when an RST followed).", unit="fraction", empty_when="closed is 0"),
    Column("client_closed_first_share", "Float64", "Share whose first FIN was the client's.", unit="fraction",
           empty_when="closed is 0"),
    Column("simultaneous_share", "Float64", "Share closed by crossing FINs.", unit="fraction",
           empty_when="closed is 0"),
    Column("aborted_share", "Float64", "Share ended by an RST without any FIN.", unit="fraction",
           empty_when="closed is 0"),
    Column("aborted_by_server", "Int64", "Connections the server ended with an RST (close kinds rst, fin_then_rst)."),
    Column("aborted_by_client", "Int64", "Connections its clients ended with an RST (close kinds rst, fin_then_rst)."),
    Column("refused", "Int64", "SYNs refused with RST+ACK."),
    Column("rst_classes", "string", "The rst_class of the RSTs that ended its connections, with counts, most "
           "first (`exact 58, in_window 2`).", empty_when="no RST ended a connection"),
    Column("server_time_wait_total", "Int64", "TIME_WAIT sockets the server held for this endpoint."),
    Column("server_time_wait_peak", "Int64", "Most of them at one instant."),
    Column("server_time_wait_peak_ts", "Float64", "First instant of that peak.", **_PEAK_TS),
    Column("client_time_wait_total", "Int64", "TIME_WAIT sockets the clients held."),
    Column("cause", CloseCause, "Most common cause of the server-first closes, read from the first payload "
           "bytes of each direction.", empty_when="the server closed none first, or payload heads are not available"),
    Column("cause_share", "Float64", "Share of the server-first closes with that cause.", unit="fraction",
           empty_when="cause is empty"),
]
FINDING_COLUMNS: list[Column] = [
    Column("severity", Severity, "How urgent."),
    Column("kind", FindingKind, "What was found; also a --fail-on name."),
    Column("subject", "string", "The host, server endpoint or client -> destination it is about."),
    Column("message", "string", "What was found, in plain words with the numbers behind it."),
    Column("advice", "string", "What to do, from the mitigations of docs/rules.md."),
]
# ---- teardown diff: one row per (scope, subject, metric), compare/table.py --------------------

class Scope(StrEnum):
    capture = "capture"  # every connection of the capture: subject `capture`
    host = "host"  # one host (the hosts table): subject its address
    endpoint = "endpoint"  # one server endpoint (the servers table): subject ip:port
    destination = "destination"  # one client -> server endpoint (the destinations table): subject `client -> ip:port`
    finding = "finding"  # one finding: subject the finding's subject, metric its kind


class Presence(StrEnum):
    both = "both"  # the subject (or the finding) is in both analyses
    before_only = "before_only"  # only in BEFORE: gone, or the finding was lost
    after_only = "after_only"  # only in AFTER: new, or the finding was gained


DIFF_COLUMNS: list[Column] = [
    Column("scope", Scope, "What the row is about."),
    Column("subject", "string", "Which one: `capture`; a host (as the hosts table names it); a server endpoint "
           "ip:port ([ipv6]:port); `client -> ip:port`; for a finding, its subject."),
    Column("metric", "string", "The figure: the column of the hosts, servers or destinations table it is read "
           "from (time_wait_peak, server_closed_first_share, seconds_to_exhaustion, ...); close_kind_X: the "
           "connections of close kind X (an endpoint's, or all of them); for scope capture the servers table "
           "summed (its shares weighted by `closed`), and time_wait_peak, port_utilisation_peak, "
           "seconds_to_exhaustion the highest (shortest) of any host or client; for a finding, its kind."),
    Column("presence", Presence, "Whether the subject is in both analyses or one only; for a finding, whether "
           "the finding is."),
    Column("before", "Float64", "The figure in BEFORE; for a finding 1 when present, else 0. Counts are whole "
           "numbers, shares and port utilisation fractions (0 to 1).",
           empty_when="the subject is not in BEFORE, or its table leaves the figure empty (a share of no closed "
                      "connection, a time to exhaustion never reached)"),
    Column("after", "Float64", "The figure in AFTER.", empty_when="as for before, in AFTER"),
    Column("change", "Float64", "after - before; a count of a subject absent from one analysis counts 0 there "
           "(a host that is gone holds no TIME_WAIT).",
           empty_when="before or after is empty and the figure is not a count (a share, a time to exhaustion)"),
    Column("relative_change", "Float64", "change / before.", unit="fraction",
           empty_when="change is empty or before is empty or 0"),
    Column("score", "Float64", "How big the change is, the ranking of the terminal and of this table: "
           "the metric's weight x the change relative to the figure x log10(10 + the connections or sockets "
           "it concerns); 0 when nothing changed. Findings: 1 when lost or gained."),
    Column("severity", Severity, "The finding's severity (AFTER's when in both).", empty_when="scope is not finding"),
    Column("detail", "string", "The finding's message (AFTER's when it is there, else BEFORE's).",
           empty_when="scope is not finding"),
]
# The files a table is written as (`-o NAME.csv`, `-o DIR/ --format jsonl`): report/files.py.
FORMATS = ("csv", "json", "jsonl", "parquet")
TABLES: dict[str, list[Column]] = {"flows": FLOW_COLUMNS, "hosts": HOST_COLUMNS,
                                   "destinations": DESTINATION_COLUMNS, "servers": SERVER_COLUMNS,
                                   "findings": FINDING_COLUMNS}


def _enum_meanings(e: type[StrEnum]) -> list[str]:
    """The one-line meanings written beside each enum value, read from the source of the module
    defining it (this one, or compare/metrics.py for the diff's)."""
    source = Path(inspect.getfile(e)).read_text()
    block = source.split(f"class {e.__name__}(StrEnum):", 1)[1].split("\n\n", 1)[0]
    out = []
    for line in block.splitlines():
        if "=" in line and '"' in line:
            value = line.split('"')[1]
            meaning = line.split("#", 1)[1].strip() if "#" in line else ""
            out.append(f"`{value}`" + (f": {meaning}" if meaning else ""))
    return out


def markdown(columns: list[Column] = FLOW_COLUMNS) -> str:
    lines = ["| column | type | meaning |", "| --- | --- | --- |"]
    for c in columns:
        kind = c.dtype if isinstance(c.dtype, str) else "category"
        text = c.meaning
        if c.unit:
            text += f" Unit: {c.unit}."
        if c.empty_when:
            text += f" Empty when {c.empty_when}."
        if not isinstance(c.dtype, str):
            text += " Values: " + "; ".join(_enum_meanings(c.dtype)) + "."
        lines.append(f"| `{c.name}` | {kind} | {text} |")
    return "\n".join(lines) + "\n"


START, END = "<!-- schema:start -->", "<!-- schema:end -->"


def markers(table: str) -> tuple[str, str]:
    """The README markers around a table's columns: the flows' are START/END."""
    if table == "flows":
        return START, END
    return f"<!-- schema:{table}:start -->", f"<!-- schema:{table}:end -->"


# Every table the README documents: those `teardown analyze` writes, and the diff's.
DOCUMENTED: dict[str, list[Column]] = {**TABLES, "diff": DIFF_COLUMNS}


def rewrite_readme(path: Path) -> bool:
    """Put each table's columns between its markers (where present); True when the file changed."""
    text = new = path.read_text()
    for table, columns in DOCUMENTED.items():
        start, end = markers(table)
        if start not in new:
            continue
        head, rest = new.split(start, 1)
        _, tail = rest.split(end, 1)
        new = f"{head}{start}\n{markdown(columns)}{end}{tail}"
    if new != text:
        from .outputs import atomic_output  # only this developer's command writes a file here

        with atomic_output(str(path), "--markdown") as fh:
            fh.write(new.encode())
    return new != text


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        readme = Path(__file__).resolve().parent.parent / "README.md"
        print("rewrote" if rewrite_readme(readme) else "unchanged", readme)
    else:
        print(markdown(), end="")
