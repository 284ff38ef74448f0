"""The report's data, checked against the analysis tables without a browser: header facts,
chart numbers, per-flow findings, ladder segments and states, JSON that cannot break out of its
<script>, sizes, and the Parquet round trip that `teardown report` relies on."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from markupsafe import escape
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import teardown
from teardown import matching
from teardown.decode import FIN, RST, SYN
from teardown.report import from_analysis, render_html
from teardown.report.data import drawn_afresh
from teardown.report.charts import PLOT, close_kinds, connection_rate, cut_steps, occupancy, who_closes_first
from teardown.report.flags import FLAGS, flag_bits
from teardown.timewait.flow_findings import FLOW_FLAGS
from teardown.report import ladder
from teardown.report.ladder import HEAD_SEGMENTS, SEGMENT_BUDGET, TAIL_SEGMENTS, _kept, pack, rows_to_draw
from teardown.report.render import page_data, script_json, static_ladders
from teardown.report.table import Values, _numbers_cut_out, encode_flows, page_spells_flow_ids
from teardown.report.reuse import as_drawn, previous_incarnations
from teardown.report.saved import read_parquet, write_parquet
from teardown.report.verdict import figures, findings, headline
from teardown.rows import TableColumns

from .conftest import CAPTURES
from .report_samples import SAMPLES, report_data, stem, write_report

CLIENT, SERVER = 0, 1


def states(name: str, row: int = 0) -> dict[int, list[str]]:
    """Each side's state labels, in order, of one flow's ladder."""
    ladder = report_data(name).ladders[row]
    out: dict[int, list[str]] = {CLIENT: [], SERVER: []}
    for _, side, text, kind in ladder.shape["lab"]:
        if kind == 0:
            out[side] += text.split(" → ")
    return out


def segments(name: str, row: int = 0) -> list[dict[str, int | None]]:
    shape = report_data(name).ladders[row].shape
    keys = ["dir", "flags", "seq", "ack", "len", "retr"]
    return [dict(zip(keys, values)) for values in zip(*(shape[k] for k in keys))]


def test_header_states_the_capture_and_settings() -> None:
    data = report_data("server_first_close")
    path = CAPTURES / "server_first_close.pcap"
    f = data.facts
    assert [x.sha256 for x in f.files] == [hashlib.sha256(path.read_bytes()).hexdigest()]
    assert f.files[0].size_bytes == path.stat().st_size
    assert f.frames == teardown.analyze(str(path)).capture.frames
    assert f.os_profile == "linux" and f.time_wait_s == 60 and f.tool_version == teardown.__version__
    html = render_html(data)
    for text in (f.files[0].sha256, "UTC", "linux: TIME_WAIT 60 s", "32768–60999", f"teardown {teardown.__version__}"):
        assert text in html


@pytest.mark.parametrize("name", ["many_reuse", "two_interfaces", "tw_assassination"])
def test_close_kind_chart_counts_equal_the_flows_table(name: str) -> None:
    data = report_data(name)
    chart = close_kinds(data.columns)
    flows = data.flows.to_pandas()
    counts = flows["close_kind"].value_counts()
    assert {b.parts[0].key: b.parts[0].value for b in chart.bars} == {k: int(v) for k, v in counts.items() if v}
    assert chart.total == len(flows)


@pytest.mark.parametrize("capture", SAMPLES, ids=stem)
def test_flow_findings_agree_with_fail_on(capture: Path) -> None:
    analysis = teardown.analyze(str(capture))
    bits = flag_bits(TableColumns(analysis.table("flows")))  # the table read back flags as the analysis does
    for i, flag in enumerate(FLAGS):
        expected = np.asarray(FLOW_FLAGS[flag.kind](analysis.columns), bool)
        assert ((bits >> i & 1) == 1).tolist() == expected.tolist(), flag.name


def test_script_json_cannot_end_its_element() -> None:
    text = str(script_json({"note": "</script><script>alert(1)</script> & <!--"}))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"note": "</script><script>alert(1)</script> & <!--"}


def test_simultaneous_close_goes_through_closing_on_both_sides() -> None:
    s = states("simultaneous_close")
    assert s[CLIENT] == ["SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "CLOSING", "TIME_WAIT"]
    assert s[SERVER] == ["SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1", "CLOSING", "TIME_WAIT"]
    assert sorted(side for side, _ in report_data("simultaneous_close").ladders[0].shape["tw"]) == [CLIENT, SERVER]


def test_client_first_close_states_and_relative_numbers() -> None:
    s = states("client_first_close")
    assert s[CLIENT] == ["SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"]
    assert s[SERVER] == ["SYN_RECEIVED", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"]
    segs = segments("client_first_close")
    assert [(x["seq"], x["ack"]) for x in segs[:3]] == [(0, None), (0, 1), (1, 1)]
    assert report_data("client_first_close").ladders[0].shape["tw"] == [[CLIENT, 8]]


def test_lost_final_ack_marks_the_fin_retransmission() -> None:
    segs = segments("lost_final_ack")
    again = [x for x in segs if x["retr"]]
    assert len(again) == 1 and again[0]["dir"] == SERVER and again[0]["flags"] & FIN
    notes = [text for _, side, text, kind in report_data("lost_final_ack").ladders[0].shape["lab"] if kind == 1]
    assert notes == ["FIN again: TIME_WAIT timer restarts"]


def test_assassination_closes_the_time_wait_and_an_off_sequence_rst_does_not() -> None:
    data = report_data("tw_assassination")
    killed, survived = (data.ladders[r].shape["lab"] for r in (0, 1))
    assert killed[-2:] == [[10, CLIENT, "assassinated by RST (RFC 1337)", 1], [10, CLIENT, "CLOSED", 0]]
    assert survived[-1] == [10, CLIENT, "RST ignored in TIME_WAIT", 1]


def test_abort_refusal_and_midstream() -> None:
    assert states("linger_abort")[CLIENT][-1] == "CLOSED" and states("linger_abort")[SERVER][-1] == "CLOSED"
    assert segments("linger_abort")[-1]["flags"] & RST
    assert states("refused") == {CLIENT: ["SYN_SENT", "CLOSED"], SERVER: ["CLOSED"]}
    assert states("midstream")[CLIENT][0] == "ESTABLISHED" and states("midstream")[SERVER][0] == "ESTABLISHED"
    assert states("unanswered") == {CLIENT: ["SYN_SENT"], SERVER: []}
    assert all(x["retr"] for x in segments("unanswered")[1:])


def test_a_reusing_flow_is_stored_once_and_drawn_after_the_old_ones_end() -> None:
    """The page stores each incarnation's segments once; the reusing flow names the old one,
    and Python (as_drawn) and the page's script join the two when drawing."""
    data = report_data("reuse_in_time_wait")
    reusing = int(np.flatnonzero(data.flows.to_pandas()["reuses_tuple_in_time_wait"].fillna(False))[0])
    lad = data.ladders[reusing]
    assert lad.previous in data.ladders and "old" not in lad.shape
    assert pack(data.ladders)["flows"][str(reusing)][5] == lad.previous
    drawn = as_drawn(data.ladders, reusing, data.columns)
    old = drawn.shape["old"]
    assert old > 0 and drawn.shape["dir"][old:] == lad.shape["dir"] and drawn.shape["n"] == old + lad.shape["n"]


def test_copies_seen_on_two_interfaces_are_drawn_once() -> None:
    data = report_data("two_interfaces")
    assert data.facts.frames == 2 * sum(lad.shape["n"] for lad in data.ladders.values())


def test_a_long_flow_keeps_its_handshake_teardown_and_end() -> None:
    flags = np.full(1000, 0x10, np.int64)
    flags[0], flags[1] = SYN, SYN | 0x10
    flags[500] = FIN | 0x10  # a half-close long before the end
    kept = _kept(flags, labelled={501})
    assert kept[:HEAD_SEGMENTS] == [0, 1, 2] and kept[-TAIL_SEGMENTS:] == list(range(970, 1000))
    assert {500, 501} <= set(kept)


def test_packet_lookup_checks_the_whole_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A packet whose digest is a wanted 4-tuple's but whose key is not is not that flow's."""
    keys = np.zeros(3, matching.KEY)
    keys["port_a"], keys["a_lo"] = [1000, 1000, 2000], [1, 2, 1]
    monkeypatch.setattr(matching, "_digest", lambda key: key["port_a"].astype(np.uint64))
    assert matching.Tuples(keys[:1].view("V40")).find(keys).tolist() == [0, -1, -1]


def test_ladders_are_the_same_when_wanted_tuples_share_a_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Then the lookup is a sorted search on the whole keys (many_reuse: many incarnations of a 4-tuple)."""
    analysis = teardown.analyze(str(CAPTURES / "many_reuse.pcap"))
    drawn = pack(drawn_afresh(analysis).ladders)  # made afresh, not the ones kept for the analysis
    monkeypatch.setattr(matching, "_digest", lambda key: np.zeros(len(key), np.uint64))
    assert pack(drawn_afresh(analysis).ladders) == drawn and len(drawn["flows"]) > 1


def test_sample_reports_are_small() -> None:
    for capture in SAMPLES:
        assert len(render_html(report_data(stem(capture))).encode()) < 1_000_000, capture.name


def test_saved_parquet_makes_the_same_report(tmp_path: Path) -> None:
    analysis = teardown.analyze(str(CAPTURES / "tw_assassination.pcap"))
    data = from_analysis(analysis)
    write_parquet(analysis, str(tmp_path / "flows.parquet"))
    back = read_parquet(str(tmp_path / "flows.parquet"))
    assert back.facts == data.facts
    pd.testing.assert_frame_equal(back.flows.to_pandas(), data.flows.to_pandas(), check_exact=True)
    assert page_data(back) == page_data(data)
    assert render_html(back, generated_ts=0) == render_html(data, generated_ts=0)


def xss_capture(path: Path) -> Path:
    """An HTTP exchange whose request and response carry script, closed by the client."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    request = (b"GET /<script>alert(1)</script> HTTP/1.1\r\nHost: <script>alert(1)</script>\r\n"
               b"User-Agent: </script><script>alert(2)</script>\r\n\r\n")
    response = b"HTTP/1.0 200 OK\r\nX-Note: <img src=x onerror=alert(3)>\r\n\r\n"
    c, s = ("198.18.0.1", 40000, 1000), ("198.18.0.2", 8080, 5000)

    def seg(frm: tuple[str, int, int], to: tuple[str, int, int], flags: str, seq: int, ack: int,
            data: bytes = b"") -> Ether:
        packet = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=frm[0], dst=to[0])
                  / TCP(sport=frm[1], dport=to[1], flags=flags, seq=frm[2] + seq, ack=to[2] + ack if ack else 0))
        return packet / Raw(data) if data else packet

    q, r = len(request), len(response)
    packets = [seg(c, s, "S", 0, 0), seg(s, c, "SA", 0, 1), seg(c, s, "A", 1, 1), seg(c, s, "PA", 1, 1, request),
               seg(s, c, "PA", 1, 1 + q, response), seg(c, s, "FA", 1 + q, 1 + r), seg(s, c, "FA", 1 + r, 2 + q),
               seg(c, s, "A", 2 + q, 2 + r)]
    for i, p in enumerate(packets):
        p.time = 1_800_000_000 + i * 0.001
    wrpcap(str(path), packets)
    return path


def xss_report(tmp_path: Path) -> Path:
    """The report of `xss_capture`, saved under a file name with markup in it, with a note that
    quotes the payload (as a note about an HTTP header might)."""
    capture = xss_capture(tmp_path / "evil<b>name.pcap")
    data = from_analysis(teardown.analyze(str(capture)))
    notes = pa.array(["</script><script>alert(1)</script>"] * data.flows.num_rows, pa.large_string())
    data.flows = data.flows.set_column(data.flows.column_names.index("notes"), "notes", notes)
    return write_report(data, tmp_path / "xss.html")


def test_xss_capture_is_escaped_in_the_file(tmp_path: Path) -> None:
    html = xss_report(tmp_path).read_text()
    assert "<b>" not in html and "evil&lt;b&gt;name.pcap" in html
    scripts = html.split("<script>")[1:]
    assert html.count("<script") == 4 and all("alert(" not in s.split("</script>")[0] for s in scripts)


def test_verdict_lists_the_findings_as_ranked() -> None:
    data = report_data("tw_mixed_servers")
    table = data.tables["findings"].to_pandas()
    shown = findings(data)
    assert [(f.severity, f.kind, f.subject, f.message, f.advice) for f in shown] == \
        [tuple(str(v) for v in row) for row in table[["severity", "kind", "subject", "message", "advice"]].itertuples(index=False)]
    html = render_html(data)
    at = [html.index(str(escape(f.message))) for f in shown]
    assert at == sorted(at) and len(shown) >= 3


def test_headline_numbers_equal_the_tables() -> None:
    data = report_data("tw_mixed_servers")
    hosts, dests, flows = (data.tables["hosts"].to_pandas(), data.tables["destinations"].to_pandas(),
                           data.flows.to_pandas())
    got = {f.label: f.number for f in figures(data)}
    assert got["Connections"] == len(flows)
    closed = flows["active_closer"].isin(["client", "server", "both"]).sum()
    assert got["Closed first by the server"] == pytest.approx((flows["active_closer"] == "server").sum() / closed)
    assert got["Most TIME_WAIT at once"] == hosts["time_wait_peak"].max()
    assert got["Fullest ephemeral port range"] == pytest.approx(dests["port_utilisation_peak"].max())
    load = dests["observed_rate_peak"] / dests["sustainable_rate"]
    assert got["Fastest new-connection rate"] == dests["observed_rate_peak"][load.idxmax()]


@pytest.mark.parametrize("name", ["tw_mixed_servers", "tw_server_burst", "tw_assassination"])
def test_chart_numbers_equal_the_tables(name: str) -> None:
    data = report_data(name)
    hosts, dests, servers = (data.tables[t].to_pandas() for t in ("hosts", "destinations", "servers"))
    start, end = data.facts.first_ts or 0.0, data.facts.last_ts or 0.0
    chart = occupancy(data.columns_of("hosts"), data.series, start, end, 28232)
    assert chart is not None
    peaks = hosts.set_index("host")["time_wait_peak"]
    assert {line.label: line.peak for line in chart.lines} == {h: peaks[h] for h in list(data.series)}
    rate = connection_rate(data.columns, data.columns_of("destinations"), start, end)
    assert rate is not None
    by_label = {f"{d.client_ip} → {d.server_ip}:{d.server_port}": d for d in dests.itertuples()}
    for line in rate.lines:
        if line.label != "all connections":
            assert line.peak == by_label[line.label].observed_rate_peak
    sustainable, drawn = {round(float(x), 2) for x in dests["sustainable_rate"]}, {lim.value for lim in rate.limits}
    assert drawn <= sustainable and (drawn == sustainable or "far above the peak" in rate.note)
    who = who_closes_first(data.columns_of("servers"))
    assert who is not None
    shares = {f"{s.server_ip}:{s.server_port} ({s.connections:,})": s for s in servers.itertuples()}
    for bar in who.bars:
        row = shares[bar.label]
        assert {p.key: p.value for p in bar.parts} == {
            k: v for k, v in [("server", row.server_closed_first_share), ("client", row.client_closed_first_share),
                              ("simultaneous", row.simultaneous_share), ("rst", row.aborted_share)] if v > 0}


def test_cut_steps_keeps_every_peak() -> None:
    ts = np.arange(10_000, dtype=float)
    count = np.zeros(10_000)
    count[[17, 4_321, 9_998]] = [5, 9, 7]  # one-step spikes, far narrower than a pixel
    cut_ts, cut = cut_steps(ts.tolist(), count.tolist(), 0.0, 9_999.0, points=100)
    assert len(cut) == 101 and max(cut) == 9 and sorted(cut)[-3:] == [5, 7, 9]
    assert (cut_ts[-1], cut[-1]) == (9_999.0, 0.0)
    assert cut_steps([1.0, 2.0], [1.0, 0.0], 0.0, 3.0) == ([1.0, 2.0], [1.0, 0.0])


def test_a_common_finding_cannot_crowd_out_a_rare_one() -> None:
    n = 50_000
    flows = {"packets_c2s": np.full(n, 6), "packets_s2c": np.full(n, 4)}
    bits = np.full(n, 1 << 2, np.int64)  # all reuse the 4-tuple...
    bits[[40_000, 45_000]] |= 1 << 5  # ...two of them late in the capture also end by RST
    rows = rows_to_draw(flows, bits, (1 << 2) | (1 << 5))
    assert {40_000, 45_000} <= set(rows.tolist())
    assert len(rows) == SEGMENT_BUDGET // 10 and rows[0] == 0


def test_the_port_range_ceiling_is_drawn_where_a_peak_nears_it() -> None:
    capture = CAPTURES / "tw_narrow_port_range.pcap.gz"
    data = from_analysis(teardown.analyze(str(capture), port_range=(40000, 40049)))
    assert data.facts.port_range == (40000, 40049) and data.facts.options().port_range == (40000, 40049)
    start, end = data.facts.first_ts or 0.0, data.facts.last_ts or 0.0
    chart = occupancy(data.columns_of("hosts"), data.series, start, end, 50)
    assert chart is not None and [lim.value for lim in chart.limits] == [50]
    wide = occupancy(data.columns_of("hosts"), data.series, start, end, 28232)
    assert wide is not None and wide.limits == [] and "far above" in wide.note
    assert "ephemeral ports: 50" in render_html(data)


def test_rate_chart_scales_to_a_small_captures_data() -> None:
    """A few connections a second under a 471/s limit: the limit is left out and said to be far
    above, and the peak reaches the upper half of the plot instead of lying flat at zero."""
    data = report_data("lost_final_ack")
    start, end = data.facts.first_ts or 0.0, data.facts.last_ts or 0.0
    chart = connection_rate(data.columns, data.columns_of("destinations"), start, end)
    assert chart is not None and chart.limits == [] and "far above the peak" in chart.note
    frame_top, frame_bottom = PLOT["top"], PLOT["height"] - PLOT["bottom"]
    peak_y = min(float(y) for y in re.findall(r"[ML][\d.]+,([\d.]+)", chart.lines[0].path))
    assert peak_y < (frame_top + frame_bottom) / 2
    busy = report_data("tw_server_burst")
    chart = connection_rate(busy.columns, busy.columns_of("destinations"), busy.facts.first_ts or 0.0,
                            busy.facts.last_ts or 0.0)
    assert chart is not None and len(chart.limits) == 1  # 811/s against 471/s: the limit is the story


def test_a_scan_over_many_ports_shows_its_rate_in_the_chart() -> None:
    """Per destination each port saw one SYN; the whole capture saw the scan's rate (truth: the
    most probes sent in one second, counted when the sample was made)."""
    data = report_data("syn_scan")
    rate = connection_rate(data.columns, data.columns_of("destinations"), data.facts.first_ts or 0.0,
                           data.facts.last_ts or 0.0)
    assert rate is not None and rate.lines[0].label == "all connections"
    scan = json.loads((CAPTURES / "syn_scan.truth.json").read_text())["scan"]
    assert rate.lines[0].peak == scan["new_connections_in_one_second_max"]


def test_the_headline_says_who_closed_and_what_never_closed() -> None:
    """The report's first line for a scan: 294 unanswered, 5 refused, and the answered probe whose
    SYN-ACK the scanner's kernel reset (truth), all not closed: an RST during the handshake
    closes nothing (docs/rules.md "Close verdicts" 4), so no 'the client aborted 1'. An abort
    is counted by who sent the RST."""
    data = report_data("syn_scan")
    scan = json.loads((CAPTURES / "syn_scan.truth.json").read_text())["scan"]
    text = headline(data, findings(data)).closed
    assert text.startswith(f"{scan['probes']} connections:")
    assert (f"not closed: {scan['refused']} refused, {scan['answered']} handshake_reset, "
            f"{scan['unanswered']} unanswered") in text
    assert "aborted" not in text
    assert "aborted (RST, no FIN) by the server 1" in headline(report_data("linger_abort_server"), []).closed


def test_a_reusing_flow_is_drawn_after_the_incarnation_before_it_on_its_tuple() -> None:
    """many_reuse: 20 connections from 4 ports in turn, 16 of them taking over a TIME_WAIT. The
    truth names each by its client ISN (the kernel's, from the capture's construction), so a
    ladder's ISN tells which connection it is, and its `previous` must be the one before it on
    the same client port."""
    truth = json.loads((CAPTURES / "many_reuse.truth.json").read_text())["flows"]
    which = {f["client_isn"]: (f["client_port"], f["incarnation"]) for f in truth}
    data = report_data("many_reuse")
    joined = {which[lad.isn[0]]: which[data.ladders[lad.previous].isn[0]]
              for lad in data.ladders.values() if lad.previous is not None}
    assert joined == {(f["client_port"], f["incarnation"]): (f["client_port"], f["incarnation"] - 1)
                      for f in truth if f["reuses_tuple_in_time_wait"]}


def _cut_decoded(spec: dict[str, Any]) -> list[str | None]:
    """report-data.js's reading of a numbers-cut-out column, in Python."""
    out: list[str | None] = []
    first, n = 0, iter(spec["n"])
    for code in spec["c"]:
        if code is None:
            out.append(None)
            continue
        parts = spec["t"][code]
        numbers = []
        for k in range(len(parts) - 1):
            step = next(n)
            first = first + step if k == 0 else first
            numbers.append(first if k == 0 else first + step)
        out.append("".join(p + (str(x) if k < len(numbers) else "") for k, (p, x) in
                           enumerate(zip(parts, numbers + [0]))))
    return out


def test_numbers_cut_out_of_strings_read_back_as_they_were() -> None:
    """Evidence-frame-like strings (and awkward ones: numbers at either end, none at all,
    non-ASCII, empty, missing) come back whole from their templates and number steps."""
    rng = np.random.default_rng(7)
    pieces = ["SYN ", "FIN ", ", ", "x", "é", " ", "日本", "", "0"]
    for _ in range(200):
        rows: list[str | None] = []
        for _ in range(int(rng.integers(0, 40))):
            if rng.random() < 0.1:
                rows.append(None)
                continue
            rows.append("".join(str(rng.integers(1, 10**int(rng.integers(1, 16)))) if rng.random() < 0.4
                                else str(rng.choice(pieces)) for _ in range(int(rng.integers(0, 7)))))
        values = Values(np.array(rows + [""], object)[:-1], np.array([r is None for r in rows], bool))
        spec = _numbers_cut_out(values)
        inexact = any(re.search(r"(^|[^0-9])0[0-9]|[0-9]{16}", r) for r in rows if r is not None)
        assert (spec is None) == bool(inexact), rows
        if spec is not None:
            assert _cut_decoded(spec) == rows


def test_a_reusing_flow_pairs_with_the_incarnation_before_it_on_its_own_carrier() -> None:
    """The same 4-tuple carried in two VLANs (ctx 1 and 2) is two tuples: each reuse pairs
    within its carrier and 4-tuple, never across carriers, client ports, servers or address
    families (the truth is the construction)."""
    rows = [  # (ctx, client, client port, server, incarnation, reuses a TIME_WAIT)
        (1, "198.18.0.1", 40000, "198.18.0.2", 0, False), (2, "198.18.0.1", 40000, "198.18.0.2", 0, False),
        (1, "198.18.0.1", 40000, "198.18.0.3", 0, False), (2, "198.18.0.1", 40000, "198.18.0.2", 1, True),
        (1, "198.18.0.1", 40001, "198.18.0.2", 0, False), (1, "198.18.0.1", 40000, "198.18.0.2", 1, True),
        (1, "fd00::1", 40000, "fd00::2", 0, False), (1, "fd00::1", 40000, "fd00::2", 1, True),
        (1, "198.18.0.1", 40001, "198.18.0.2", 1, True), (2, "198.18.0.1", 40000, "198.18.0.2", 2, True),
        (1, "198.18.0.1", 40000, "198.18.0.3", 1, True), (1, "198.18.0.9", 40000, "198.18.0.2", 0, False),
        (1, "198.18.0.9", 40000, "198.18.0.2", 1, True)]
    ctx, client, port, server, incarnation, reuses = (np.array(c) for c in zip(*rows))
    columns = {"ctx": ctx.astype(np.uint32), "client_ip": np.array(client, object), "client_port": port,
               "server_ip": np.array(server, object), "server_port": np.full(len(rows), 8080),
               "incarnation": incarnation, "reuses_tuple_in_time_wait": reuses.astype(bool)}
    assert previous_incarnations(columns) == {3: 1, 5: 0, 7: 6, 8: 4, 9: 3, 10: 2, 12: 11}


def test_ladder_titles_say_unknown_where_the_table_is_empty() -> None:
    """one_sided: the direction never seen leaves time_wait_on empty; a title says so in words,
    not as a missing value's Python spelling."""
    data = report_data("one_sided")
    titles = [s.title for s in static_ladders(data, flag_bits(data.columns))]
    assert titles and all("TIME_WAIT on unknown" in t for t in titles)
    assert not any(word in t for t in titles for word in ("nan", "None", "<NA>"))


@pytest.mark.parametrize(("capture", "spelt"), [("vlan.pcap", True), ("ipv6_client_first.pcap", True),
                                               ("encapsulated/gre.pcap", False)])
def test_the_page_has_the_flow_ids_the_table_holds(capture: str, spelt: bool) -> None:
    """report-data.js spells a flow_id from its row's columns with a VLAN's prefix and IPv6
    brackets only where the writer found every id spelt so, id for id; another carrier (a GRE
    tunnel's c1/) and the page is sent the ids present.py wrote, decoded here as the page does."""
    table = teardown.analyze(str(CAPTURES / capture)).table("flows")
    spec = next(c for c in encode_flows(table, TableColumns(table), 0) if c["name"] == "flow_id")
    assert page_spells_flow_ids(table) is spelt and spec.get("spelt", False) is spelt
    if spelt:
        return
    if "t" in spec:
        sent = _cut_decoded(spec)
    elif "u" in spec:
        sent = [spec["u"][code] for code in spec["c"]]
    else:
        sent = spec["v"]
    assert sent == table.column("flow_id").to_pylist()
    assert capture != "encapsulated/gre.pcap" or all(i.startswith("c1/") for i in sent)


def test_dictionary_encoding_numbers_values_as_they_first_appear() -> None:
    """The page's dictionary encoding, made by numpy, against its definition in plain Python:
    the distinct values in the order they first appear (None: empty), each row's index."""
    from teardown.report.table import _dictionary

    rng = np.random.default_rng(7)
    pool = np.array(["b", "a", "", "ccc", "x y", "ü"], object)
    for trial in range(200):
        n = int(rng.integers(0, 40))
        missing = rng.random(n) < 0.3
        if trial % 2:
            data = np.where(missing, 0, rng.integers(-3, 4, n)).astype(np.int64)
        else:  # texts made apart, so that equal ones are different objects
            data = np.array(["" if m else "".join(list(str(v))) for v, m in zip(pool[rng.integers(0, 6, n)], missing)],
                            object)
        values = Values(data, missing)
        every = values.tolist()
        uniques = list(dict.fromkeys(every))
        assert _dictionary(values) == {"u": uniques, "c": [uniques.index(v) for v in every]}
