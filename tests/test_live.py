"""`teardown live` on real traffic: two network namespaces joined by a veth pair, real servers
and clients (tests/live_traffic.py) closing in each way, `teardown live` sniffing as a
subprocess. The live verdicts must equal the offline analysis of what it wrote with --write, and
agree with the kernel's own TIME_WAIT sockets (`ss -tan state time-wait`).

Needs root, iproute2, iptables and ss; skips with the reason otherwise. CI runs as root.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import teardown
from teardown.report.saved import read_parquet

from .conftest import ROOT

TRAFFIC = str(ROOT / "tests" / "live_traffic.py")
CLIENT_IP, SERVER_IP = "198.18.0.1", "198.18.0.2"  # RFC 2544 benchmarking range
FIN_RETRANS_PORT = 8004  # live_traffic.port_of("fin_retrans")
SPEC = "client_first=3,server_first=3,abort=2,fin_retrans=1"
EXPECTED = {  # way -> (close_kind, active_closer, time_wait_on)
    "client_first": ("fin", "client", "client"),
    "server_first": ("fin", "server", "server"),
    "abort": ("rst", "client", "none"),  # the client sets SO_LINGER {1,0}: its RST ends it
    "fin_retrans": ("fin", "server", "server"),
}


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, packet sockets)"
    for tool in ("ip", "iptables", "ss", "setpriv"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    try:
        import scapy  # noqa: F401
    except ImportError:
        return "needs scapy"
    probe = f"tdprobe{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode:
        return "cannot create network namespaces here"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


WHY_NOT = _why_not()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")


def sh(*cmd: str, ns: str | None = None) -> str:
    full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    return subprocess.run(full, check=True, capture_output=True, text=True, timeout=20).stdout


@dataclass
class Net:
    client_ns: str
    server_ns: str
    client_if: str
    server_if: str


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    tag = os.getpid() % 100000
    n = Net(f"tdlive{tag}c", f"tdlive{tag}s", f"tdv{tag}c", f"tdv{tag}s")
    try:
        sh("ip", "netns", "add", n.client_ns)
        sh("ip", "netns", "add", n.server_ns)
        sh("ip", "link", "add", n.client_if, "netns", n.client_ns, "type", "veth", "peer", "name", n.server_if,
           "netns", n.server_ns)
        for ns, iface, ip in ((n.client_ns, n.client_if, CLIENT_IP), (n.server_ns, n.server_if, SERVER_IP)):
            sh("ip", "addr", "add", f"{ip}/24", "dev", iface, ns=ns)
            sh("ip", "link", "set", iface, "up", ns=ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        # The server's final ACK of the fin_retrans connection (its only pure ACK) is dropped twice
        # at the client, after the capture point: the client sends its FIN three times.
        rule = ["-p", "tcp", "--sport", str(FIN_RETRANS_PORT), "--tcp-flags", "ALL", "ACK", "-m", "recent",
                "--name", "tdfin"]
        sh("iptables", "-A", "INPUT", *rule, "--rcheck", "--hitcount", "2", "-j", "ACCEPT", ns=n.client_ns)
        sh("iptables", "-A", "INPUT", *rule, "--set", "-j", "DROP", ns=n.client_ns)
        yield n
    finally:
        for ns in (n.client_ns, n.server_ns):  # the veth pair goes with them
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def live(ns: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "teardown.cli", "live", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def wait_for_file(path: Path, proc: subprocess.Popen[str]) -> None:
    """--write's file exists once the capture socket is open and filtering."""
    end = time.monotonic() + 20
    while not (path.exists() and path.stat().st_size) and time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"teardown live ended early: {proc.communicate()[1]}")
        time.sleep(0.05)


@dataclass
class Run:
    rc: int
    lines: list[dict[str, Any]]
    stderr: str
    written: Path
    saved: Path  # -o NAME.parquet: the table and the report's data, ladders drawn from `written`
    ports: dict[int, str]  # client port -> way of closing
    time_wait_client: set[tuple[str, str]]  # ss in each namespace: (local, peer)
    time_wait_server: set[tuple[str, str]]


def traffic(n: Net, spec: str, seconds: float) -> tuple[subprocess.Popen[str], dict[int, str]]:
    server = subprocess.Popen(["ip", "netns", "exec", n.server_ns, sys.executable, TRAFFIC, "serve", SERVER_IP,
                               str(seconds)], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    out = sh(sys.executable, TRAFFIC, "connect", SERVER_IP, spec, ns=n.client_ns)
    return server, {d["port"]: d["way"] for d in map(json.loads, out.splitlines())}


def done(server: subprocess.Popen[str]) -> None:
    server.wait(10)
    if server.stdout is not None:
        server.stdout.close()


def time_wait(ns: str) -> set[tuple[str, str]]:
    rows = sh("ss", "-tanH", "state", "time-wait", ns=ns).split()
    return {(rows[i + 2], rows[i + 3]) for i in range(0, len(rows), 4)}


@pytest.fixture(scope="module")
def run(net: Net, tmp_path_factory: pytest.TempPathFactory) -> Run:
    written = tmp_path_factory.mktemp("live") / "live.pcapng"
    saved = written.with_suffix(".parquet")
    proc = live(net.server_ns, "-i", net.server_if, "--duration", "6", "--jsonl", "--write", str(written), "--quiet",
                "-o", str(saved))
    wait_for_file(written, proc)
    server, ports = traffic(net, SPEC, 3)
    time.sleep(1.5)  # the client's FIN retransmissions (RTO 200 ms, then 400 ms)
    tw_client, tw_server = time_wait(net.client_ns), time_wait(net.server_ns)
    out, err = proc.communicate(timeout=30)
    done(server)
    flows = [line for line in map(json.loads, out.splitlines()) if line["event"] != "kernel_time_wait"]
    return Run(proc.returncode, flows, err, written, saved, ports, tw_client, tw_server)


def last_rows(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The row of each flow as last written (time_wait_ended lines carry no row, kernel_time_wait
    lines no flow)."""
    rows: dict[str, dict[str, Any]] = {}
    for line in lines:
        if line["event"] not in ("time_wait_ended", "kernel_time_wait"):
            rows[line["flow_id"]] = line
    return rows


def assert_same_as_offline(rows: dict[str, dict[str, Any]], capture: Path) -> None:
    flows = teardown.analyze(str(capture)).flows
    offline = {r["flow_id"]: r for r in flows.astype(object).where(flows.notna(), None).to_dict("records")}
    assert set(rows) == set(offline)
    diffs = []
    for flow_id, want in offline.items():
        for col, value in want.items():
            got = rows[flow_id][col]
            same = (math.isclose(got, value, rel_tol=0, abs_tol=1e-9) if isinstance(value, float) and got is not None
                    else got == value)
            if not same:
                diffs.append(f"{flow_id} {col}: live {got!r}, offline {value!r}")
    assert not diffs, "\n".join(diffs)


def test_live_verdicts_equal_the_offline_analysis_of_the_written_capture(run: Run) -> None:
    assert run.rc == 0, run.stderr
    assert "stopped: 6 s elapsed (--duration)" in run.stderr
    assert_same_as_offline(last_rows(run.lines), run.written)


def test_the_saved_table_is_the_offline_one_and_draws_the_retransmitted_fin(run: Run, tmp_path: Path) -> None:
    """`live -o NAME.parquet --write FILE`: the table of the written capture, with the ladders
    drawn from it; `teardown report` makes the page from the file alone."""
    assert f"wrote {len(last_rows(run.lines))} flows to {run.saved}" in run.stderr
    saved = read_parquet(str(run.saved))
    offline = teardown.analyze(str(run.written)).flows
    saved_flows = saved.flows.to_pandas()
    pd.testing.assert_frame_equal(saved_flows, offline, check_exact=True)
    retransmitted = [i for i, port in enumerate(saved_flows["client_port"].tolist())
                     if run.ports.get(port) == "fin_retrans" and saved_flows["server_ip"][i] == SERVER_IP]
    assert len(retransmitted) == 1 and retransmitted[0] in saved.ladders
    page = tmp_path / "live.html"
    assert _teardown_cli("report", str(run.saved), "-o", str(page)).returncode == 0 and page.stat().st_size > 0


def test_each_way_of_closing_gets_its_verdict(run: Run) -> None:
    rows = last_rows(run.lines)
    by_port = {r["client_port"]: r for r in rows.values() if r["server_ip"] == SERVER_IP}
    assert set(run.ports) <= set(by_port)
    for port, way in run.ports.items():
        r = by_port[port]
        assert (r["close_kind"], r["active_closer"], r["time_wait_on"]) == EXPECTED[way], (way, r)
    fin_retrans = [by_port[p] for p, way in run.ports.items() if way == "fin_retrans"]
    assert [(r["fin_retransmissions_client"], r["time_wait_restarts"]) for r in fin_retrans] == [(2, 2)]


def test_time_wait_holders_agree_with_the_kernel(run: Run) -> None:
    rows = [r for r in last_rows(run.lines).values() if r["client_port"] in run.ports]
    client = {(f"{r['client_ip']}:{r['client_port']}", f"{r['server_ip']}:{r['server_port']}")
              for r in rows if r["time_wait_on"] in ("client", "both")}
    server = {(f"{r['server_ip']}:{r['server_port']}", f"{r['client_ip']}:{r['client_port']}")
              for r in rows if r["time_wait_on"] in ("server", "both")}
    assert client == run.time_wait_client
    assert server == run.time_wait_server


def test_teardowns_are_written_as_they_complete_and_changes_as_updates(run: Run) -> None:
    first = [line for line in run.lines if not line["update"]]
    assert len({line["flow_id"] for line in first}) == len(first)  # one first line per incarnation
    assert {line["event"] for line in first} == {"teardown"}  # all completed before the stop
    port = next(p for p, way in run.ports.items() if way == "fin_retrans")
    lines = [line for line in run.lines if line["client_port"] == port]
    # The final ACK passed the capture point, so the teardown was written complete before the
    # client's FIN came again; each retransmission answered in TIME_WAIT changed the row.
    assert lines[0]["update"] is False and lines[0]["fin_retransmissions_client"] == 0
    assert lines[-1]["update"] is True and lines[-1]["event"] == "changed"
    assert lines[-1]["fin_retransmissions_client"] == 2


def test_count_stops_after_that_many_frames(net: Net, tmp_path: Path) -> None:
    written = tmp_path / "count.pcapng"
    proc = live(net.client_ns, "-i", "lo", "--count", "25", "--duration", "20", "--jsonl", "--write", str(written))
    wait_for_file(written, proc)
    subprocess.run(["ip", "netns", "exec", net.client_ns, sys.executable, "-c",
                    "import socket\nfor _ in range(15):\n"
                    "    try: socket.create_connection(('127.0.0.1', 9), timeout=2)\n"
                    "    except OSError: pass"], check=True, timeout=20)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped: 25 frames captured (--count)" in err
    assert "lo: 25 frames" in err  # the summary goes to stderr with --jsonl
    rows = last_rows([json.loads(line) for line in out.splitlines()])
    assert teardown.analyze(str(written)).capture.frames == 25
    assert_same_as_offline(rows, written)


@pytest.mark.skipif(shutil.which("dumpcap") is None, reason="--reader dumpcap needs dumpcap (apt-get install tshark)")
def test_dumpcap_reader_gives_the_same_verdicts(net: Net, tmp_path: Path) -> None:
    written = tmp_path / "dumpcap.pcapng"
    proc = live(net.server_ns, "-i", net.server_if, "--reader", "dumpcap", "--duration", "4", "--jsonl",
                "--write", str(written), "--quiet")
    wait_for_file(written, proc)
    server, ports = traffic(net, "client_first=2,server_first=2,abort=1", 2)
    out, err = proc.communicate(timeout=30)
    done(server)
    assert proc.returncode == 0, err
    rows = last_rows([json.loads(line) for line in out.splitlines()])
    by_port = {r["client_port"]: r for r in rows.values()}
    for port, way in ports.items():
        assert (by_port[port]["close_kind"], by_port[port]["active_closer"]) == EXPECTED[way][:2]
    assert_same_as_offline(rows, written)


def test_interface_going_down_stops_cleanly_and_keeps_the_capture(net: Net, tmp_path: Path) -> None:
    written = tmp_path / "down.pcapng"
    proc = live(net.server_ns, "-i", net.server_if, "--duration", "30", "--jsonl", "--write", str(written), "--quiet")
    wait_for_file(written, proc)
    server, ports = traffic(net, "client_first=2", 1)
    time.sleep(0.5)
    sh("ip", "link", "set", net.server_if, "down", ns=net.server_ns)
    try:
        out, err = proc.communicate(timeout=10)
    finally:
        sh("ip", "link", "set", net.server_if, "up", ns=net.server_ns)
        done(server)
    assert proc.returncode == 0, err
    assert f"stopped: interface {net.server_if} went down" in err
    assert "Traceback" not in err
    rows = last_rows([json.loads(line) for line in out.splitlines()])
    assert {r["client_port"] for r in rows.values()} >= set(ports)
    assert_same_as_offline(rows, written)


def _teardown_cli(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "teardown.cli", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_no_permission_as_an_unprivileged_user() -> None:
    # uid 65534 (nobody), keeping only the right to read files (the interpreter may live under
    # /root), not CAP_NET_RAW.
    nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+dac_read_search",
              "--ambient-caps=+dac_read_search")
    r = _teardown_cli("live", "-i", "lo", "--duration", "1", prefix=nobody)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("teardown: lo: no permission to capture (needs root or CAP_NET_RAW); run as root")
    assert len(r.stderr.splitlines()) == 1
    r = _teardown_cli("live", "-i", "lo", "--duration", "1", prefix=("setpriv", "--bounding-set=-net_raw"))
    assert r.returncode == 2 and "no permission to capture" in r.stderr, r.stderr


def test_unknown_interface_lists_the_available_ones() -> None:
    r = _teardown_cli("live", "-i", "nosuchif0", "--duration", "1")
    assert r.returncode == 2
    assert r.stderr.startswith("teardown: nosuchif0: no such interface; available: ") and "lo" in r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_invalid_filter_gives_the_compilers_message() -> None:
    r = _teardown_cli("live", "-i", "lo", "-f", "tcp and port", "--duration", "1")
    assert r.returncode == 2
    assert r.stderr.strip() == "teardown: -f 'tcp and port': invalid capture filter: can't parse filter expression: syntax error"
