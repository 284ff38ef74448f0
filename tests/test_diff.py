"""`teardown diff BEFORE AFTER` (issue 19 part 2): what changed between two analyses of one service.

The numbers are checked against the truth files of the samples (how each was made: the kernel's
counts, the construction), never against teardown's own output for the same capture; the core
is also checked on hand-made snapshots, where every figure is chosen."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from teardown.cli import main
from teardown.compare import (DIFF_COLUMNS, METRICS, Diff, Presence, Scope, Seen, Snapshot, compare, diff_columns,
                              diff_lines, headline)
from teardown.options import Options
from teardown.report.diff_inputs import snapshots
from teardown.report.diff_page import render_diff
from teardown.schema import DESTINATION_COLUMNS, HOST_COLUMNS, SERVER_COLUMNS, CloseKind, FindingKind, Severity

from .conftest import CAPTURES

BURST = CAPTURES / "tw_server_burst.pcap.gz"  # 2,000 connections, all closed first by the server
KEEPALIVE = CAPTURES / "tw_keepalive.pcap.gz"  # 4 keep-alive connections, closed first by the client
MIXED = CAPTURES / "tw_mixed_servers.pcap.gz"  # one client, four server endpoints on three hosts
CLIENT_FIRST = CAPTURES / "client_first_close.pcap"  # one connection, closed first by the client
KERNEL_PAIR = CAPTURES / "diff"  # before.pcap, after.pcap, diff.truth.json: the same 200 requests twice


def truth(path: Path) -> dict[str, Any]:
    name = path.name.split(".")[0]
    return dict(json.loads((CAPTURES / f"{name}.truth.json").read_text()))


@functools.cache
def diff_of(before: Path, after: Path) -> Diff:
    return compare(*snapshots([str(before), str(after)], Options(), set()))


def figure(diff: Diff, scope: Scope, subject: str, metric: str) -> tuple[float, float]:
    """(before, after) of one figure, NaN where empty."""
    found = [c for c in diff.changes if (c.metric.scope, c.subject, c.metric.name) == (scope, subject, metric)]
    assert len(found) == 1, (scope, subject, metric, found)
    return found[0].before, found[0].after


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def run(*args: str) -> Run:
    """`teardown ARGS` in this process (a subprocess costs a second of imports)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Run(code, out.getvalue(), err.getvalue())


# ---- TIME_WAIT moving from the server to the client -------------------------------------------

def test_time_wait_moves_from_the_server_to_the_client() -> None:
    """tw_server_burst: the server held 2,000 TIME_WAITs (ss after the burst), the client none;
    tw_keepalive: the client 4, the server none (ss on both sides)."""
    burst, keep = truth(BURST), truth(KEEPALIVE)
    server_before = int(burst["kernel_observations"]["server_time_wait_after"][1])
    client_before = int(burst["kernel_observations"]["client_time_wait_after"][1])
    client_after, server_after = keep["host_views"]["client_time_wait_peak"], keep["host_views"]["server_time_wait_peak"]
    server, client = burst["host_views"]["host"], burst["flows"][0]["client_ip"]
    d = diff_of(BURST, KEEPALIVE)
    assert figure(d, Scope.host, server, "time_wait_peak") == (server_before, server_after) == (2000, 0)
    assert figure(d, Scope.host, client, "time_wait_peak") == (client_before, client_after) == (0, 4)
    assert headline(d).time_wait == (f"TIME_WAIT moved from the server {server} (peak {server_before:,} → "
                                     f"{server_after:,}) to the client {client} ({client_before:,} → {client_after:,})")
    lines = diff_lines(d)
    assert headline(d).time_wait + "." in lines
    # The biggest changes come first: the server's TIME_WAIT is in the first subject's lines.
    shown = lines[lines.index("changes, biggest first (before → after, change)"):]
    first_hosts = [line for line in shown if line.startswith("  host ")]
    assert first_hosts[0] == f"  host {server} (the server)"


def test_the_server_close_finding_is_lost() -> None:
    burst, keep = truth(BURST), truth(KEEPALIVE)
    d = diff_of(BURST, KEEPALIVE)
    lost = {(f.kind, f.subject) for f in d.findings_with(Presence.before_only)}
    gained = {f.kind for f in d.findings_with(Presence.after_only)}
    assert (burst["host_views"]["finding_kind"], burst["host_views"]["server"]) in lost
    assert not gained & set(keep["host_views"]["no_finding_kinds"])
    assert f"server-close {burst['host_views']['server']}" in headline(d).findings
    assert headline(d).findings.startswith("Findings lost: ") and headline(d).findings.endswith("; gained: none")
    table = diff_columns(d)
    row = np.flatnonzero((table["scope"] == "finding") & (table["metric"] == "server-close"))
    assert len(row) == 1 and table["presence"][row[0]] == "before_only"
    assert (table["before"][row[0]], table["after"][row[0]], table["change"][row[0]]) == (1, 0, -1)


# ---- counts against the truth files ------------------------------------------------------------

def test_counts_are_the_truth_files_counts() -> None:
    burst, keep = truth(BURST), truth(KEEPALIVE)
    d = diff_of(BURST, KEEPALIVE)
    endpoint = burst["host_views"]["server"]
    n_before, n_after = burst["host_views"]["connections"], keep["host_views"]["connections"]
    assert figure(d, Scope.capture, "capture", "connections") == (n_before, n_after) == (2000, 4)
    assert figure(d, Scope.endpoint, endpoint, "connections") == (n_before, n_after)
    assert figure(d, Scope.endpoint, endpoint, "close_kind_fin") == (n_before, n_after)  # every flow: fin
    share = burst["host_views"]["server_closed_first"] / n_before
    assert figure(d, Scope.capture, "capture", "server_closed_first_share") == (share, 0.0)
    assert figure(d, Scope.capture, "capture", "client_closed_first_share") == (0.0, 1.0)
    assert figure(d, Scope.endpoint, endpoint, "server_time_wait_total") == (n_before, 0)
    assert figure(d, Scope.capture, "capture", "client_time_wait_total") == (0, keep["host_views"]["client_time_wait_peak"])
    assert headline(d).closes == (f"Connections {n_before:,} → {n_after:,}; closed first by the server 100 % → 0 %, "
                                  "by the client 0 % → 100 %")
    table = diff_columns(d)
    at = np.flatnonzero((table["scope"] == "capture") & (table["metric"] == "connections"))[0]
    assert (table["before"][at], table["after"][at], table["change"][at]) == (n_before, n_after, n_after - n_before)
    assert table["relative_change"][at] == pytest.approx((n_after - n_before) / n_before)


def test_one_connection_closed_by_the_client() -> None:
    """client_first_close's one connection against the burst: the client's TIME_WAIT (ss) and
    who closed first, as the truth file lists the flow."""
    flow = truth(CLIENT_FIRST)["flows"][0]
    d = diff_of(BURST, CLIENT_FIRST)
    assert figure(d, Scope.capture, "capture", "connections")[1] == len(truth(CLIENT_FIRST)["flows"])
    assert flow["active_closer"] == "client" and flow["time_wait_on"] == "client"
    assert figure(d, Scope.host, flow["client_ip"], "time_wait_total") == (0, 1)
    assert figure(d, Scope.host, flow["server_ip"], "closed_first") == (2000, 0)
    assert figure(d, Scope.capture, "capture", "client_closed_first_share")[1] == 1.0


# ---- subjects in one analysis only -------------------------------------------------------------

def test_hosts_and_endpoints_in_one_capture_only() -> None:
    servers = truth(MIXED)["host_views"]["servers"]
    d = diff_of(BURST, MIXED)
    new = {s: v for s, v in servers.items() if s != truth(BURST)["host_views"]["server"]}
    assert d.only_in(Presence.after_only, Scope.endpoint) == sorted(new, key=lambda s: -new[s]["connections"])
    assert d.only_in(Presence.after_only, Scope.host) == ["198.18.0.3", "198.18.0.4"]
    assert d.only_in(Presence.before_only, Scope.host) == d.only_in(Presence.before_only, Scope.endpoint) == []
    for subject, facts in new.items():
        assert figure(d, Scope.endpoint, subject, "connections") == (pytest.approx(np.nan, nan_ok=True),
                                                                     facts["connections"])
        change = next(c for c in d.changes if (c.metric.scope, c.subject, c.metric.name)
                      == (Scope.endpoint, subject, "connections"))
        assert change.presence == Presence.after_only and change.change == facts["connections"]
        share = next(c for c in d.changes if (c.metric.scope, c.subject, c.metric.name)
                     == (Scope.endpoint, subject, "server_closed_first_share"))
        assert math.isnan(share.change) and share.score == 0  # a share of a new endpoint is no change
    # All connections: each endpoint's share weighted by its connections, as the truth lists them.
    total = sum(v["connections"] for v in servers.values())
    by_closer = {closer: sum(v["connections"] for v in servers.values() if v["closer"] == closer)
                 for closer in ("server", "client", "abort")}
    assert figure(d, Scope.capture, "capture", "connections")[1] == total
    for closer, metric in (("server", "server_closed_first_share"), ("client", "client_closed_first_share"),
                           ("abort", "aborted_share")):
        assert figure(d, Scope.capture, "capture", metric)[1] == pytest.approx(by_closer[closer] / total)
    gained = {(f.kind, f.subject) for f in d.findings_with(Presence.after_only)}
    assert {("server-close", s) for s, v in servers.items() if v["closer"] == "server"} <= gained
    assert ("abort", truth(MIXED)["host_views"]["abort_habit"]) in gained
    lines = diff_lines(d)
    assert "only in after: hosts 198.18.0.3 (600 connections), 198.18.0.4 (160 connections)" in lines
    assert ("only in after: server endpoints "
            + ", ".join(f"{s} ({v['connections']:,} connections)" for s, v in
                        sorted(new.items(), key=lambda kv: -kv[1]["connections"]))) in lines


# ---- the core on hand-made snapshots -----------------------------------------------------------

def _snapshot(label: str, hosts: dict[str, dict[str, float]], endpoints: dict[str, dict[str, float]],
              findings: dict[tuple[str, str], Seen] | None = None) -> Snapshot:
    capture = {"connections": sum(e.get("connections", 0) for e in endpoints.values())}
    return Snapshot(label, (label,), 0.0, 1.0, Options(),
                    {Scope.capture: {"capture": capture}, Scope.host: hosts, Scope.endpoint: endpoints},
                    findings or {})


def test_absent_subjects_count_as_none_and_shares_as_unknown() -> None:
    before = _snapshot("b", {"10.0.0.1": {"time_wait_peak": 5, "connections": 5}},
                       {"10.0.0.1:80": {"connections": 5, "server_closed_first_share": 1.0, "close_kind_fin": 5}})
    after = _snapshot("a", {"10.0.0.1": {"time_wait_peak": 5, "connections": 9}, "10.0.0.9": {"time_wait_peak": 3}},
                      {"10.0.0.1:80": {"connections": 9, "server_closed_first_share": float("nan"),
                                       "close_kind_rst": 9}})
    d = compare(before, after)
    by = {(c.metric.scope, c.subject, c.metric.name): c for c in d.changes}
    new = by[(Scope.host, "10.0.0.9", "time_wait_peak")]
    assert new.presence == Presence.after_only and math.isnan(new.before) and new.change == 3
    same = by[(Scope.host, "10.0.0.1", "time_wait_peak")]
    assert same.change == 0 and not same.changed
    gone = by[(Scope.endpoint, "10.0.0.1:80", "close_kind_fin")]  # a close kind it no longer had: 0
    assert (gone.before, gone.after, gone.change) == (5, 0, -5)
    came = by[(Scope.endpoint, "10.0.0.1:80", "close_kind_rst")]
    assert (came.before, came.after, came.change) == (0, 9, 9)
    share = by[(Scope.endpoint, "10.0.0.1:80", "server_closed_first_share")]
    assert math.isnan(share.change) and share.changed  # from 100 % to no closed connection: a change
    assert headline(d).time_wait == "TIME_WAIT rose on the host 10.0.0.9 (peak 0 → 3); no host's peak fell"


def test_bigger_changes_rank_first() -> None:
    """Against the figure itself, then how many connections it concerns."""
    before = _snapshot("b", {"a": {"time_wait_peak": 2000}, "b": {"time_wait_peak": 2000},
                             "c": {"time_wait_peak": 1}}, {})
    after = _snapshot("a", {"a": {"time_wait_peak": 1900}, "b": {"time_wait_peak": 0},
                            "c": {"time_wait_peak": 0}}, {})
    order = [c.subject for c in compare(before, after).changes if c.metric.name == "time_wait_peak"
             and c.metric.scope == Scope.host]
    assert order == ["b", "c", "a"]


def test_findings_lost_gained_and_kept() -> None:
    seen = Seen(Severity.warning, "m")
    before = _snapshot("b", {}, {}, {("server-close", "x:80"): seen, ("abort", "y:81"): seen})
    after = _snapshot("a", {}, {}, {("abort", "y:81"): seen, ("scan", "z"): Seen(Severity.critical, "n")})
    d = compare(before, after)
    assert [(f.kind, f.subject) for f in d.findings_with(Presence.before_only)] == [("server-close", "x:80")]
    assert [(f.kind, f.subject) for f in d.findings_with(Presence.after_only)] == [("scan", "z")]
    assert [(f.kind, f.subject) for f in d.findings_with(Presence.both)] == [("abort", "y:81")]
    assert headline(d).findings == "Findings lost: server-close x:80; gained: scan z"


# ---- the table: -o diff.csv, -o diff.parquet ---------------------------------------------------

def test_table_columns_and_dtypes(tmp_path: Path) -> None:
    import pandas as pd

    names = [c.name for c in DIFF_COLUMNS]
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"diff.{suffix}"
        done = run("diff", str(BURST), str(KEEPALIVE), "-o", str(out), "--quiet")
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"wrote the diff, {len(diff_columns(diff_of(BURST, KEEPALIVE))['scope']):,} rows, to {out}\n"
        frame = pd.read_csv(out) if suffix == "csv" else pd.read_parquet(out)
        assert list(frame.columns) == names
        assert not frame.duplicated(["scope", "subject", "metric"]).any()
    assert {str(frame[c.name].dtype) for c in DIFF_COLUMNS if c.dtype == "Float64"} == {"Float64"}
    assert {c.name for c in DIFF_COLUMNS if str(frame[c.name].dtype) == "category"} == {"scope", "presence", "severity"}
    assert set(frame["scope"].cat.categories) == {s.value for s in Scope}
    # Every metric is a documented column of its table (or a close kind, or a finding kind).
    documented = {Scope.host: HOST_COLUMNS, Scope.endpoint: SERVER_COLUMNS, Scope.destination: DESTINATION_COLUMNS,
                  Scope.capture: SERVER_COLUMNS + HOST_COLUMNS + DESTINATION_COLUMNS}
    kinds = {f"close_kind_{k.value}" for k in CloseKind}
    for m in METRICS:
        assert m.name in kinds or m.name in {c.name for c in documented[m.scope]}, m
    assert set(frame.loc[frame.scope == "finding", "metric"]) <= {k.value for k in FindingKind}
    # The docstring's pivot works: a subject a row, a metric a column.
    wide = frame[frame.scope == "host"].pivot(index="subject", columns="metric", values="change")
    assert wide.loc["198.18.0.2", "time_wait_peak"] == -2000 and wide.loc["198.18.0.1", "time_wait_peak"] == 4
    assert all(c.meaning for c in DIFF_COLUMNS)
    lost = frame[(frame.scope == "finding") & (frame.presence == "before_only")]
    assert frame.index[frame.presence == "before_only"][0] == 0, "findings lost and gained lead the table"
    assert set(lost["severity"].astype(str)) <= {s.value for s in Severity} and lost["detail"].notna().all()


def test_a_saved_analysis_gives_the_same_diff_as_its_capture(tmp_path: Path) -> None:
    """vlan.pcap's host labels carry `vlan100/` (read back from the saved flow ids), MIXED has
    four endpoints, two of them on one host."""
    for capture in (CAPTURES / "vlan.pcap", MIXED):
        saved = tmp_path / f"{capture.name}.parquet"
        assert run("analyze", str(capture), "-o", str(saved), "--quiet").returncode == 0
        from_capture, from_saved = diff_of(BURST, capture), compare(*snapshots([str(BURST), str(saved)], Options(), set()))
        a, b = diff_columns(from_capture), diff_columns(from_saved)
        for name in a:
            assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype == np.float64), (capture, name)
        assert any(s.startswith("vlan100/") for s in from_saved.after.subjects[Scope.endpoint]) == (
            capture.name == "vlan.pcap")
        assert diff_lines(from_capture)[3:] == diff_lines(from_saved)[3:]  # but for the inputs' names


def test_settings_apply_to_both_and_a_saved_analysis_keeps_its_own(tmp_path: Path) -> None:
    narrow = CAPTURES / "tw_narrow_port_range.pcap.gz"
    low, high = truth(narrow)["host_views"]["port_range"]
    given = run("diff", str(narrow), str(KEEPALIVE), "--port-range", f"{low}-{high}", "--time-wait", "30")
    assert given.returncode == 0, given.stderr
    assert f"settings (both): linux profile, TIME_WAIT 30 s, ports {low}-{high}" in given.stdout
    saved = tmp_path / "narrow.parquet"
    assert run("analyze", str(narrow), "-o", str(saved), "--port-range", f"{low}-{high}", "--quiet").returncode == 0
    # The capture is analyzed as the saved result was: nothing changed between them.
    same = run("diff", str(saved), str(narrow))
    assert same.returncode == 0, same.stderr
    assert f"settings (both): linux profile, TIME_WAIT 60 s, ports {low}-{high}" in same.stdout
    assert "no figure changed" in same.stdout
    d = compare(*snapshots([str(saved), str(narrow)], Options(), set()))
    util = figure(d, Scope.capture, "capture", "port_utilisation_peak")
    assert util == (1.0, 1.0) and truth(narrow)["host_views"]["ports_in_use_peak"] == high - low + 1


# ---- refusals: one line, exit 2, nothing written -----------------------------------------------

def _parquet_of_another_tool(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1, 2]}), path)


@pytest.mark.parametrize("case", ["missing", "text", "csv", "foreign-parquet", "output-is-input", "directory",
                                  "suffix", "setting-against-saved"])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    before, after, out, extra = str(BURST), str(KEEPALIVE), str(tmp_path / "diff.csv"), []
    if case == "missing":
        after = str(tmp_path / "nowhere.pcap")
    elif case == "text":
        (tmp_path / "notes.pcap").write_text("hello\n")
        before = str(tmp_path / "notes.pcap")
    elif case == "csv":
        (tmp_path / "flows.csv").write_text("a,b\n1,2\n")
        after = str(tmp_path / "flows.csv")
    elif case == "foreign-parquet":
        _parquet_of_another_tool(tmp_path / "other.parquet")
        after = str(tmp_path / "other.parquet")
    elif case == "output-is-input":
        copy = tmp_path / "copy.pcap.gz"
        copy.write_bytes(KEEPALIVE.read_bytes())
        after = out = str(copy)
    elif case == "directory":
        out = str(tmp_path) + "/"
    elif case == "suffix":
        out = str(tmp_path / "diff.txt")
    elif case == "setting-against-saved":
        saved = tmp_path / "burst.parquet"
        assert run("analyze", str(BURST), "-o", str(saved), "--quiet").returncode == 0
        before, extra = str(saved), ["--os", "macos"]
    kept = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    done = run("diff", before, after, "-o", out, *extra)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("teardown: "), done.stderr
    assert done.stdout == ""
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == kept, "nothing written or changed"
    expected = {"missing": "nowhere.pcap: no such file", "text": "not a pcap or pcapng file",
                "csv": "not a pcap or pcapng file", "foreign-parquet": "without teardown's report data",
                "output-is-input": "is an input of this run", "directory": "the diff is one file",
                "suffix": "cannot tell the format", "setting-against-saved": "made with --os linux"}[case]
    assert expected in done.stderr


# ---- the page ----------------------------------------------------------------------------------

def test_the_page_is_self_contained_and_says_what_changed(tmp_path: Path) -> None:
    out = tmp_path / "diff.html"
    done = run("diff", str(BURST), str(MIXED), "-o", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    d = diff_of(BURST, MIXED)
    for sentence in headline(d).sentences():
        assert sentence.replace("'", "&#39;") in page
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert not [m for m in ("src=", "url(", "http://", "https://") if m in page]
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    # The stylesheets as they are, not escaped as text would be.
    assert ":root {" in style and "table.diff" in style and '"SFMono-Regular"' in style and "&#34;" not in style
    assert page.count('<span class="badge gained">') == len(d.findings_with(Presence.after_only))
    assert page.count('<span class="badge lost">') == len(d.findings_with(Presence.before_only))
    assert "198.18.0.4:9000 (60 connections)" in page  # in after only


def test_text_from_an_input_is_escaped_on_the_page(tmp_path: Path) -> None:
    seen = Seen(Severity.warning, "<img src=x onerror=alert(1)>")
    before = _snapshot("<b>before</b>.pcap", {}, {}, {("scan", "<i>x</i>"): seen})
    page = render_diff(compare(before, _snapshot("after.pcap", {}, {})), generated_ts=0.0)
    assert "<img" not in page and "<b>before" not in page and "<i>x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


# ---- the kernel-made pair ----------------------------------------------------------------------

@pytest.mark.skipif(not (KERNEL_PAIR / "diff.truth.json").exists(), reason="captures/diff/ not made yet")
def test_the_kernel_made_pair() -> None:
    """The same 200 requests: one connection each, the server closing first, then keep-alive
    with the client closing first. Every number from the truth file (ss, the runs' logs)."""
    pair = json.loads((KERNEL_PAIR / "diff.truth.json").read_text())
    runs = pair["captures"]
    before, after = KERNEL_PAIR / runs["before.pcap"]["file"], KERNEL_PAIR / runs["after.pcap"]["file"]
    was, now = runs["before.pcap"], runs["after.pcap"]
    d = diff_of(before, after)
    assert figure(d, Scope.capture, "capture", "connections") == (was["connections"], now["connections"])
    for host in was["hosts"]:
        for metric in ("connections", "closed_first", "time_wait_total", "time_wait_peak"):
            assert figure(d, Scope.host, host, metric) == (was["hosts"][host][metric], now["hosts"][host][metric])
        assert was["hosts"][host]["time_wait_peak"] == was["hosts"][host]["ss_time_wait_after"]
    server_ip = pair["server"].rpartition(":")[0]
    client = pair["client"]
    assert headline(d).time_wait == (
        f"TIME_WAIT moved from the server {server_ip} (peak {was['time_wait_peak'][server_ip]:,} → "
        f"{now['time_wait_peak'][server_ip]:,}) to the client {client} ({was['time_wait_peak'][client]:,} → "
        f"{now['time_wait_peak'][client]:,})")
    share = {"server": "server_closed_first_share", "client": "client_closed_first_share"}
    assert figure(d, Scope.endpoint, pair["server"], share[was["active_closer"]])[0] == 1.0
    assert figure(d, Scope.endpoint, pair["server"], share[now["active_closer"]])[1] == 1.0
    assert ("server-close", pair["server"]) in {(f.kind, f.subject) for f in d.findings_with(Presence.before_only)}
    assert not d.findings_with(Presence.after_only)
    assert d.only_in(Presence.before_only, Scope.host) == d.only_in(Presence.after_only, Scope.host) == []
