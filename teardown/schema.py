"""Every output column and enum value, with its meaning: the DataFrame dtypes, the writers and
the README's column table are all built from this list.

`python -m teardown.schema --markdown` rewrites the README between the schema markers.
"""

from __future__ import annotations

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
    unanswered = "unanswered"  # SYN with no answer
    open = "open"  # no FIN or RST before the capture ended


class Side(StrEnum):
    client = "client"
    server = "server"
    both = "both"
    none = "none"


class Handshake(StrEnum):
    complete = "complete"  # SYN, SYN-ACK and the client's ACK seen
    syn_only = "syn_only"  # only the client's SYN
    synack_only = "synack_only"  # the SYN-ACK but not the SYN
    none = "none"  # caught midstream


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


RULES = "shared TEARDOWN-RULES.md"
FLOW_COLUMNS: list[Column] = [
    Column("flow_id", "string", "client ip:port > server ip:port / incarnation; VLAN-tagged flows start with vlanN/."),
    Column("incarnation", "Int64", "0 for the first connection on this 4-tuple in the capture, 1 for the next, ..."),
    Column("client_ip", "string", "Sender of the SYN (without ACK); inferred without a handshake."),
    Column("client_port", "Int64", "Client's port."),
    Column("server_ip", "string", "Sender of the SYN-ACK; inferred without a handshake."),
    Column("server_port", "Int64", "Server's port."),
    Column("ip_version", "Int64", "4 or 6."),
    Column("vlan", "Int64", "Outermost 802.1Q VLAN id the flow was carried in.", empty_when="untagged"),
    Column("roles_inferred", "boolean", "True when no SYN or SYN-ACK was seen and roles were inferred from ports."),
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
    Column("active_closer", Side, "The side whose FIN came first by seq/ACK causality (both: simultaneous)."),
    Column("first_fin_by", Side, "The side whose FIN the capture shows first (capture order)."),
    Column("first_fin_ts", "Float64", "Time of the first FIN.", unit="s since the epoch", empty_when="no FIN"),
    Column("first_rst_by", Side, "The side that sent the first RST."),
    Column("first_rst_ts", "Float64", "Time of the first RST.", unit="s since the epoch", empty_when="no RST"),
    Column("rst_class", RstClass, "How the RST that ended the connection fits the receiver's state (RFC 9293, RFC 5961).",
           empty_when="no RST"),
    Column("fin_retransmissions_client", "Int64", "FINs the client sent again with the same sequence number."),
    Column("fin_retransmissions_server", "Int64", "FINs the server sent again with the same sequence number."),
    Column("data_after_fin", DataAfterFin, "Data the FIN's sender sent after its own FIN."),
    Column("time_wait_on", Side, "Who ends in TIME_WAIT: the active closer; both after a simultaneous close."),
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
    Column("capture_loss", "boolean", "Bytes were acknowledged that the capture never saw."),
    Column("capture_loss_bytes", "Int64", "How many.", unit="bytes"),
    Column("evidence_frames", "string", "Frame numbers the close verdict rests on (SYN, FINs, RSTs, final ACKs); "
           "they run on across the files of one continuous capture."),
    Column("notes", "string", "Plain-language remarks: inferred roles, lost final ACKs, fingerprints, anomalies."),
]
ENUMS: list[type[StrEnum]] = [CloseKind, Side, Handshake, RstClass, ReuseVerdict, DataAfterFin]
COLUMN_NAMES = [c.name for c in FLOW_COLUMNS]


def _enum_meanings(e: type[StrEnum]) -> list[str]:
    """The one-line meanings written beside each enum value, read from this file's source."""
    source = Path(__file__).read_text()
    block = source.split(f"class {e.__name__}(StrEnum):", 1)[1].split("\n\n", 1)[0]
    out = []
    for line in block.splitlines():
        if "=" in line and '"' in line:
            value = line.split('"')[1]
            meaning = line.split("#", 1)[1].strip() if "#" in line else ""
            out.append(f"`{value}`" + (f": {meaning}" if meaning else ""))
    return out


def markdown() -> str:
    lines = ["| column | type | meaning |", "| --- | --- | --- |"]
    for c in FLOW_COLUMNS:
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


def rewrite_readme(path: Path) -> bool:
    """Put the column table between the markers; True when the file changed."""
    text = path.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{markdown()}{END}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        readme = Path(__file__).resolve().parent.parent / "README.md"
        print("rewrote" if rewrite_readme(readme) else "unchanged", readme)
    else:
        print(markdown(), end="")
