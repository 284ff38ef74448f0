"""Golden captures: each sample in captures/ is analyzed and compared with the table checked in
beside it (`*.expected.csv`, rewritten by `pytest --regen`: review that diff), and with the
verdicts its construction guarantees (`*.truth.json`, written when the sample was made)."""

from __future__ import annotations

import gzip
import json
import math
import struct
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pytest

import teardown
from teardown.schema import FLOW_COLUMNS, CloseKind, DataAfterFin, Handshake, ReuseVerdict, RstClass, Side

from .conftest import CAPTURES

SAMPLES = sorted(p for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng", ".gz"))
HEADER = "# generated: pytest --regen; review the diff before committing\n"
# Every Float64 column is a time or a duration in seconds: compared in ticks of the capture's clock.
TIME_COLUMNS = [c.name for c in FLOW_COLUMNS if c.pandas_dtype == "Float64"]


def _stem(path: Path) -> str:
    return path.name.split(".")[0]


def _expected_path(path: Path) -> Path:
    return path.with_name(_stem(path) + ".expected.csv")


@pytest.mark.parametrize("capture", SAMPLES, ids=_stem)
def test_matches_expected_table(capture: Path, regen: bool) -> None:
    """Every row and column as checked in: text and counts to the character, times and durations
    as whole ticks of the capture's clock (µs; ns where the file records ns). Ticks are read from
    the decimal text exactly (Decimal, no float arithmetic): a time one tick off fails, a change
    of the float below the tick does not. A float64 holds epoch seconds to ~0.24 µs only, so in
    a nanosecond capture any change of the value fails."""
    flows = teardown.analyze(str(capture)).flows
    expected_path = _expected_path(capture)
    if regen or not expected_path.exists():
        with expected_path.open("w") as fh:
            fh.write(HEADER)
            flows.to_csv(fh, index=False)
        if not regen:
            pytest.fail(f"{expected_path.name} was missing and has been written: review it and commit it")
        return
    raw = pd.read_csv(expected_path, comment=None, skiprows=1, dtype=str, keep_default_na=False)
    got = flows.astype(object).where(flows.notna(), "").astype(str)
    raw = raw.replace({"nan": ""})
    assert list(raw.columns) == list(got.columns), "columns changed: run pytest --regen and review"
    diffs = [f"row {i}: only in {'analysis' if i >= len(raw) else 'expected'}"
             for i in range(min(len(raw), len(got)), max(len(raw), len(got)))]
    n = min(len(raw), len(got))
    want, have = raw.to_numpy()[:n], got.to_numpy()[:n]
    differ = want != have
    digits = tick_digits(capture)
    for name in TIME_COLUMNS:
        j = list(got.columns).index(name)
        differ[:, j] = [ticks(a, digits) != ticks(b, digits) for a, b in zip(want[:, j], have[:, j])]
    flow_id = list(got.columns).index("flow_id")
    for i, j in zip(*np.nonzero(differ)):
        line = f"{have[i, flow_id]} {got.columns[j]}: expected {want[i, j]!r}, got {have[i, j]!r}"
        if got.columns[j] in TIME_COLUMNS:
            a, b = ticks(want[i, j], digits), ticks(have[i, j], digits)
            line += f" ({b - a:+,} ticks of 1e-{digits} s)" if a is not None and b is not None else ""
        diffs.append(line)
    assert not diffs, "\n".join(diffs[:30])


def ticks(text: str, digits: int) -> int | None:
    """`text` (decimal seconds) as a whole number of 10**-digits s ticks; None when empty."""
    return int((Decimal(text) * 10**digits).to_integral_value(ROUND_HALF_EVEN)) if text else None


def tick_digits(capture: Path) -> int:
    """Decimal digits of the capture's timestamp tick, read from its header: 6 (µs) or 9 (ns) for
    pcap; for pcapng the finest if_tsresol of its interfaces (default µs)."""
    with capture.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        fh: BinaryIO = gzip.GzipFile(fileobj=raw) if gzipped else raw  # type: ignore[assignment]
        magic = fh.read(4)
        if magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4"):
            return 6
        if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
            return 9
        assert magic == b"\x0a\x0d\x0d\x0a", f"{capture.name}: neither pcap nor pcapng"
        fh.seek(0)
        return max(_pcapng_resolutions(fh), default=6)


def _pcapng_resolutions(fh: BinaryIO) -> list[int]:
    """The if_tsresol of every interface description block, in decimal digits (pcapng spec:
    MSB clear, a power of 10; set, a power of 2, rounded up to the digits that hold it)."""
    out, order = [], "<"
    while len(head := fh.read(12)) == 12:  # block type, total length, then a section's byte-order magic
        if head[:4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        kind, length = struct.unpack(order + "II", head[:8])
        block = head + fh.read(length - 12)
        if kind == 1:  # interface description: linktype, reserved, snaplen, then options to the trailer
            digits, pos = 6, 16
            while pos + 4 <= length - 4:
                code, size = struct.unpack(order + "HH", block[pos:pos + 4])
                if code == 0:
                    break
                if code == 9:
                    v = block[pos + 4]
                    digits = v if v < 0x80 else math.ceil((v & 0x7F) * math.log10(2))
                pos += 4 + (size + 3) // 4 * 4
            out.append(digits)
    return out


TRUTHS = sorted(CAPTURES.glob("*.truth.json"))

# The keys that say which incarnation a truth entry is: each entry names exactly one row by them.
# `incarnation` counts from 1 in the truth files, from 0 in the table; `client_isn` is the sequence
# number of the client's SYN: the row's first client segment (Analysis.columns["first_seq"]).
FOUR_TUPLE = ("client_ip", "client_port", "server_ip", "server_port")
IDENTITY = FOUR_TUPLE + ("vlan", "incarnation", "client_isn")
# Handshake values that say the SYN was answered by a SYN-ACK.
ANSWERED = {"complete", "synack_only", "syn_synack", "answered_unseen"}

# Truths that list some of a capture's incarnations, not all (captures/make/tw_truth.py: samples
# of hundreds of connections). Their entries are the first rows of their server endpoint (the
# first SYNs in capture order); the rows not described are counted: the capture holds as many
# incarnations as the construction made (host_views "connections", or per server).
LISTED_IN_PART = {
    "tw_keepalive": "the first 3 of 4 keep-alive connections",
    "tw_mixed_servers": "the first connection to each of the 4 server endpoints, of 810",
    "tw_narrow_port_range": "the first 3 of 400 connections (on 50 ports, so 4-tuples recur)",
    "tw_server_burst": "the first 3 of 2,000 connections",
}


class Row:
    """One row of the table, with what the truth checks read from it."""

    def __init__(self, flows: pd.DataFrame, first_seq: np.ndarray, i: int) -> None:
        self.cells = flows.iloc[i]
        self.first_seq = (int(first_seq[i, 0]), int(first_seq[i, 1]))
        items = [part.rsplit(" ", 1) for part in (self["evidence_frames"] or "").split(", ") if part]
        self.evidence = {label: int(frame) for label, frame in items}  # "gap after 10, before 14" -> both

    def __getitem__(self, column: str) -> Any:
        v = self.cells[column]
        return None if pd.isna(v) else v.item() if hasattr(v, "item") else v


Check = Callable[[Any, Row, Mapping[str, Any], Mapping[str, Any]], list[str]]


def _server_isn(value: int, row: Row, want: Mapping[str, Any], truth: Mapping[str, Any]) -> list[str]:
    return [] if row.first_seq[1] == value else [f"server's first seq {row.first_seq[1]}, not the ISN {value}"]


def _answered(value: bool, row: Row, want: Mapping[str, Any], truth: Mapping[str, Any]) -> list[str]:
    return [] if (row["handshake"] in ANSWERED) == value else [f"handshake {row['handshake']!r}"]


def _segments(value: list[str], row: Row, want: Mapping[str, Any], truth: Mapping[str, Any]) -> list[str]:
    """"FRAME SIDE FLAGS seq= ack=" for every segment of the incarnation: the packets per direction."""
    sides = Counter(line.split()[1] for line in value)
    got = {"client": row["packets_c2s"], "server": row["packets_s2c"]}
    return [f"{got[s]} segments from the {s}, not {sides[s]}" for s in got if got[s] != sides[s]]


def _rst_frame(value: int, row: Row, want: Mapping[str, Any], truth: Mapping[str, Any]) -> list[str]:
    return [] if row.evidence.get("rst") == value else [f"evidence_frames {row['evidence_frames']!r}"]


def _hole(value: dict[str, Any] | None, row: Row, want: Mapping[str, Any], truth: Mapping[str, Any]) -> list[str]:
    """The frames around the hole in this (cut) capture are evidence_frames' gap; its bytes are
    the lost bytes of its direction. The rest describes the original capture, before editcap."""
    if value is None:
        return [f"evidence_frames {row['evidence_frames']!r}"] if "gap after" in row.evidence else []
    out = []
    around = value["frames_around_in_this_capture"]
    gap = (around["last_sender_segment_before"], around["first_sender_segment_after"])
    if (row.evidence.get("gap after"), row.evidence.get("before")) != gap:
        out.append(f"evidence_frames {row['evidence_frames']!r}, gap after/before {gap}")
    column = _LOSS_COLUMN[value["direction"]]
    if row[column] != value["bytes"]:
        out.append(f"{column} {row[column]}, hole of {value['bytes']}")
    return out


_LOSS_COLUMN = {"client->server": "capture_loss_bytes_c2s", "server->client": "capture_loss_bytes_s2c"}


def _removed(value: list[dict[str, Any]], row: Row, want: Mapping[str, Any], truth: Mapping[str, Any]) -> list[str]:
    """The frames editcap removed: their payload, per direction, is the capture loss."""
    out = []
    for direction, column in _LOSS_COLUMN.items():
        removed = sum(f["len"] for f in value if f["direction"] == direction)
        if row[column] != removed:
            out.append(f"{column} {row[column]}, removed {removed} bytes")
    return out


def _written(value: int, row: Row, want: Mapping[str, Any], truth: Mapping[str, Any]) -> list[str]:
    """What the sender wrote, less what editcap removed, plus the bytes it sent again, is the
    payload the capture shows from it (the sender: the direction of the file's loss)."""
    (direction,) = [d for d, n in truth["capture_loss_bytes_by_direction"].items() if n]
    column = "bytes_c2s" if direction == "client->server" else "bytes_s2c"
    seen = value - row["capture_loss_bytes"] + sum(r["len"] for r in want["retransmissions_in_original"])
    return [] if row[column] == seen else [f"{column} {row[column]}, the construction gives {seen}"]


def _vlans(value: list[int], row: Row, want: Mapping[str, Any], truth: Mapping[str, Any]) -> list[str]:
    """The copies' VLANs: the first is the row's, the others are where it was also seen."""
    others = ", ".join(f"VLAN {v}" for v in value[1:])
    return [] if (row["vlan"], row["also_seen_on"] or "") == (value[0], others) else [
        f"vlan {row['vlan']}, also_seen_on {row['also_seen_on']!r}"]


# Truth entry keys with no column of their own, each with its check ...
ENTRY_CHECKS: dict[str, Check] = {
    "server_isn": _server_isn, "handshake_answered": _answered, "segments": _segments, "rst_frame": _rst_frame,
    "hole": _hole, "removed_frames": _removed, "sender_payload_bytes_written": _written, "vlans_seen": _vlans,
}
# ... or the reason it is not compared. A key in neither list (nor a column, nor `not_COLUMN`) fails.
ENTRY_NOT_COMPARED = {
    "note": "prose: how the incarnation was made", "scenario": "the peer's scenario, by name",
    "case": "the loss sample's name for where its hole is (the hole is checked)",
    "crafted": "which segments scapy made; the verdicts on them are compared",
    "kernel_did": "what happened where this capture cannot see it (the direction not captured, after "
                  "the capture stopped): no analysis can show it",
    "syn_sent": "no column counts SYNs (segments checks the client's segments, SYNs included)",
    "synack_frame": "no evidence label names the SYN-ACK (segments checks it in packets_s2c)",
    "rst_seq": "no column holds an RST's sequence number", "rst_flags": "no column holds an RST's flags",
    "rst_relative_seq": "no column holds an RST's sequence number",
    "retransmissions_in_original": "no column counts data retransmissions; their bytes are checked with "
                                   "sender_payload_bytes_written",
    "sender_data_segments_in_original": "segments of the original capture, before editcap; no column counts "
                                        "data segments",
}
# Top-level keys of a truth file: checked here, elsewhere (named), or why not compared.
TRUTH_CHECKED_HERE = ("capture", "flows", "capture_loss_bytes_total", "capture_loss_bytes_by_direction",
                      "duplicates_seen", "frames_to_skip")
TRUTH_CHECKED_ELSEWHERE = {
    "host_views": "tests/test_timewait_captures.py, tests/test_flow_findings.py",
    "scan": "tests/test_flow_findings.py, tests/test_report_data.py",
    "ss_time_wait_samples": "tests/test_timewait_captures.py",
    "sources": "tests/test_readers.py (an encapsulated sample keeps its sources' verdicts)",
}
TRUTH_NOT_COMPARED = {
    "how": "prose", "kernel": "the kernel that made it", "crafted": "says scapy made segments",
    "kernel_observations": "the ss/nstat/iptables record the verdicts were written from (the tw_ samples' "
                           "TIME_WAIT counts are read by tests/test_timewait_captures.py)",
    "kernel_counters": "nstat record", "kernel_counters_before_crafted": "nstat record",
    "kernel_counters_note": "prose", "removed_by": "prose",
    "original_capture": "the capture before editcap, which is not in the repository",
    "wireshark_view": "a second opinion, not a truth", "copy_delays_us": "how the copies were made",
    "interfaces": "the pcapng's interface blocks as written; no column lists them (link_type is in the table)",
    "fcs_frame": "no column shows a trailer; the frame's segment is counted in the expected table",
}

# Open disagreements between the analyzer and a sample's construction, each to be fixed in the
# analyzer; listed so they stay visible rather than silently skipped (xfail, strict: a fix fails it).
KNOWN_GAPS: dict[str, str] = {}  # stem -> why its construction's verdicts are not met yet


@pytest.mark.parametrize("truth_path", [
    pytest.param(p, marks=pytest.mark.xfail(reason=KNOWN_GAPS[_stem(p)], strict=True))
    if _stem(p) in KNOWN_GAPS else p for p in TRUTHS], ids=_stem)
def test_verdicts_match_construction(truth_path: Path) -> None:
    """The verdicts the sample's construction guarantees (independent of the analyzer): each
    truth entry is exactly one row, every row is a truth entry (or the truth says it lists some
    only), and every key of the truth is compared or says why not."""
    truth = json.loads(truth_path.read_text())
    unknown = [k for k in truth if k not in (*TRUTH_CHECKED_HERE, *TRUTH_CHECKED_ELSEWHERE, *TRUTH_NOT_COMPARED)]
    assert not unknown, f"{truth_path.name}: keys neither checked nor said not to be: {unknown}"
    capture = CAPTURES / truth["capture"]
    result = teardown.analyze(str(capture))
    flows, first_seq = result.flows, result.columns["first_seq"]
    problems, matched = [], []
    for n, want in enumerate(truth["flows"], 1):
        rows = _rows_named(want, flows, first_seq)
        if len(rows) != 1:
            problems.append(f"entry {n} ({', '.join(f'{k} {want[k]}' for k in IDENTITY if k in want)}) names "
                            f"{len(rows)} rows; on its 4-tuple: {_on_tuple(want, flows, first_seq)}")
            continue
        matched.append(rows[0])
        problems += [f"entry {n} {flows['flow_id'].iloc[rows[0]]} {p}"
                     for p in _entry_problems(want, Row(flows, first_seq, rows[0]), truth)]
    problems += _rows_not_described(truth_path, truth, flows, matched)
    problems += _totals_problems(truth, flows, result.capture.skipped)
    assert not problems, f"{capture.name}:\n" + "\n".join(problems[:30])


def _rows_named(want: Mapping[str, Any], flows: pd.DataFrame, first_seq: np.ndarray) -> np.ndarray:
    sel = np.ones(len(flows), bool)
    for key in (*FOUR_TUPLE, "vlan"):
        if key in want:
            sel &= (flows[key].astype(str) == str(want[key])).to_numpy()
    if "incarnation" in want:
        sel &= (flows["incarnation"] == want["incarnation"] - 1).to_numpy()
    if "client_isn" in want:
        sel &= first_seq[:, 0] == want["client_isn"]
    return np.flatnonzero(sel)


def _on_tuple(want: Mapping[str, Any], flows: pd.DataFrame, first_seq: np.ndarray) -> str:
    same = np.logical_and.reduce([(flows[k].astype(str) == str(want[k])).to_numpy() for k in FOUR_TUPLE])
    return "; ".join(f"{flows['flow_id'].iloc[i]} client first seq {first_seq[i, 0]}" for i in np.flatnonzero(same))


def _entry_problems(want: Mapping[str, Any], row: Row, truth: Mapping[str, Any]) -> list[str]:
    out = []
    for key, value in want.items():
        if key in IDENTITY:
            continue
        if key.startswith("not_") and key[4:] in row.cells:  # "not_close_kind": a value (or list) it must not be
            banned = value if isinstance(value, list) else [value]
            if row[key[4:]] in banned:
                out.append(f"{key[4:]}: construction rules out {banned}, analysis says {row[key[4:]]!r}")
        elif key in row.cells:
            got = row[key]
            if not (type(got) is type(value) and got == value):  # True is not 1, "1" is not 1
                out.append(f"{key}: construction says {value!r}, analysis says {got!r}")
        elif key in ENTRY_CHECKS:
            out += [f"{key}: {p}" for p in ENTRY_CHECKS[key](value, row, want, truth)]
        elif key not in ENTRY_NOT_COMPARED:
            out.append(f"{key}: no column, check or reason not to compare it (a typo?)")
    return out


def _rows_not_described(truth_path: Path, truth: Mapping[str, Any], flows: pd.DataFrame,
                        matched: list[int]) -> list[str]:
    """Every row is a truth entry, once; a truth listing some only names the first rows of each
    server endpoint, and the capture holds as many as the construction made."""
    out = [f"row {flows['flow_id'].iloc[i]} named by {k} entries" for i, k in Counter(matched).items() if k > 1]
    stem = _stem(truth_path)
    if stem not in LISTED_IN_PART:
        return out + [f"row {flows['flow_id'].iloc[i]} is in no truth entry"
                      for i in sorted(set(range(len(flows))) - set(matched))]
    views = truth["host_views"]
    made = views["connections"] if "connections" in views else sum(s["connections"] for s in views["servers"].values())
    if len(flows) != made:
        out.append(f"{len(flows)} rows, the construction made {made} connections ({LISTED_IN_PART[stem]} listed)")
    endpoint = flows["server_ip"].astype(str) + ":" + flows["server_port"].astype(str)
    listed: Counter[str] = Counter()
    for i in matched:
        first = np.flatnonzero((endpoint == endpoint.iloc[i]).to_numpy())[listed[endpoint.iloc[i]]]
        listed[endpoint.iloc[i]] += 1
        if i != first:
            out.append(f"row {flows['flow_id'].iloc[i]} is listed, but {flows['flow_id'].iloc[first]} comes before it")
    return out


def _totals_problems(truth: Mapping[str, Any], flows: pd.DataFrame, skipped: Counter[str]) -> list[str]:
    """The top-level totals: capture loss, copies seen, frames without TCP (counted by kind in
    the truth's words, not the analyzer's: the totals compared)."""
    got = {
        "capture_loss_bytes_total": int(flows["capture_loss_bytes"].sum()),
        "capture_loss_bytes_by_direction": {"client->server": int(flows["capture_loss_bytes_c2s"].sum()),
                                            "server->client": int(flows["capture_loss_bytes_s2c"].sum())},
        "duplicates_seen": int(flows["duplicates_seen"].sum()),
        "frames_to_skip": sum(skipped.values()),
    }
    want = {k: (sum(v.values()) if k == "frames_to_skip" else v) for k, v in truth.items() if k in got}
    return [f"{k}: construction says {v!r}, analysis says {got[k]!r}" for k, v in want.items() if got[k] != v]


def test_to_dataframe_keeps_schema_dtypes() -> None:
    flows = teardown.analyze(str(SAMPLES[0])).flows
    assert str(flows["close_kind"].dtype) == "category"
    assert str(flows["client_port"].dtype) == "Int64"
    assert str(flows["first_ts"].dtype) == "Float64"
    assert list(flows.columns) == [c.name for c in FLOW_COLUMNS]


VERDICT_VALUES = {"close_kind": CloseKind, "handshake": Handshake, "rst_class": RstClass, "reuse_verdict": ReuseVerdict,
                  "data_after_fin": DataAfterFin, "active_closer": Side, "first_fin_by": Side, "first_rst_by": Side,
                  "time_wait_on": Side}
ONE_SIDE_ONLY = {"first_fin_by", "first_rst_by"}  # the first FIN or RST was one side's
FLAGS = ["half_close", "tw_assassination", "reuses_tuple_in_time_wait", "capture_loss", "roles_inferred", "one_sided",
         "final_ack_lost_after_capture"]


def test_every_verdict_value_is_in_a_truth() -> None:
    """Every value of every verdict column, and every flag true, is named by the truth of some
    sample (recorded from how it was made, then checked against the rows above): none is
    covered by teardown's own output alone."""
    named: dict[str, set[Any]] = {column: set() for column in [*VERDICT_VALUES, *FLAGS]}
    for path in [*TRUTHS, *sorted((CAPTURES / "encapsulated").glob("*.truth.json"))]:
        for entry in json.loads(path.read_text()).get("flows", []):
            for column in named.keys() & entry.keys():
                named[column].add(entry[column])
    missing = {column: sorted(v.value for v in values if v.value not in named[column] and not
                              (column in ONE_SIDE_ONLY and v is Side.both))
               for column, values in VERDICT_VALUES.items()}
    missing |= {flag: [True] for flag in FLAGS if True not in named[flag]}
    assert not {k: v for k, v in missing.items() if v}, "verdict values no truth names"
