"""The kernel beside the capture (teardown/live/kernel.py): the netlink sock_diag parser on bytes
laid out as <linux/inet_diag.h> lays them, the sentence that says why the counts differ, and, in
network namespaces, the kernel's TIME_WAIT count against `ss` and against the capture's.

The namespace tests need root; they skip with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from teardown.live import kernel as K

from .test_live import TRAFFIC, WHY_NOT, live, sh, wait_for_file

# struct nlmsghdr (<linux/netlink.h>): __u32 nlmsg_len; __u16 nlmsg_type; __u16 nlmsg_flags;
# __u32 nlmsg_seq; __u32 nlmsg_pid.
NLMSGHDR = "=IHHII"
# struct inet_diag_msg (<linux/inet_diag.h>): __u8 idiag_family, idiag_state, idiag_timer,
# idiag_retrans; struct inet_diag_sockid { __be16 idiag_sport, idiag_dport; __be32 idiag_src[4],
# idiag_dst[4]; __u32 idiag_if; __u32 idiag_cookie[2]; }; __u32 idiag_expires, idiag_rqueue,
# idiag_wqueue, idiag_uid, idiag_inode.
INET_DIAG_MSG = "=BBBB" + "!HH16s16s" + "=I8s" + "=IIIII"


def diag_msg(family: int, state: int, src: str, sport: int, dst: str, dport: int, expires_ms: int = 0,
             attrs: bytes = b"") -> bytes:
    """One SOCK_DIAG_BY_FAMILY reply: nlmsghdr, inet_diag_msg, then its attributes (rtattr)."""
    def addr(ip: str) -> bytes:
        return socket.inet_pton(family, ip).ljust(16, b"\0")  # an IPv4 address in idiag_src[0]
    body = (struct.pack("=BBBB", family, state, 0, 0) + struct.pack("!HH", sport, dport) + addr(src) + addr(dst)
            + struct.pack("=I", 0) + bytes(8) + struct.pack("=IIIII", expires_ms, 0, 0, 0, 0) + attrs)
    assert len(body) == 72 + len(attrs)
    return struct.pack(NLMSGHDR, 16 + len(body), 20, 2, 1, 0) + body


DONE = struct.pack(NLMSGHDR, 20, 3, 2, 1, 0) + struct.pack("=i", 0)
SHUTDOWN_ATTR = struct.pack("=HHB", 5, 8, 0) + bytes(3)  # rtattr INET_DIAG_SHUTDOWN, u8, padded to 4


def test_request_is_an_inet_diag_req_v2_dump() -> None:
    req = K.request(socket.AF_INET6, 1 << K.TCP_TIME_WAIT, seq=7)
    length, kind, flags, seq, pid = struct.unpack_from(NLMSGHDR, req)
    assert (length, kind, flags, seq, pid) == (len(req), 20, 0x301, 7, 0) and length == 16 + 56
    # struct inet_diag_req_v2: sdiag_family, sdiag_protocol, idiag_ext, pad, idiag_states, id
    assert struct.unpack_from("=BBBxI", req, 16) == (socket.AF_INET6, socket.IPPROTO_TCP, 0, 1 << 6)
    assert req[24:] == bytes(48)


def test_replies_of_mixed_lengths_and_the_done_message_in_one_read() -> None:
    buf = b"".join([
        diag_msg(socket.AF_INET, 6, "198.18.0.11", 40000, "198.18.0.2", 8001, 59000),
        diag_msg(socket.AF_INET, 6, "198.18.0.11", 40001, "198.18.0.2", 8001, 30000),
        diag_msg(socket.AF_INET, 1, "198.18.0.11", 40002, "198.18.0.2", 8001, attrs=SHUTDOWN_ATTR),
        diag_msg(socket.AF_INET6, 6, "::ffff:198.18.0.11", 40003, "::ffff:198.18.0.2", 8001, 1000),
        diag_msg(socket.AF_INET6, 6, "fd00::1", 50000, "fd00::2", 443, 60000),
        DONE])
    raw, done = K.messages(buf)
    s = K.sockets(raw)
    assert done and len(s) == 5
    assert s["state"].tolist() == [6, 6, 1, 6, 6]
    assert s["sport"].tolist() == [40000, 40001, 40002, 40003, 50000] and set(s["dport"].tolist()) == {8001, 443}
    assert s["expires"].tolist() == [59000, 30000, 0, 1000, 60000]
    local = K.count_by(K.address_keys(s["family"], s["src"])[s["state"] == 6])
    # The dual-stack socket's ::ffff:198.18.0.11 is the same host as the IPv4 ones.
    assert {K.address_text(k): n for k, n in local.items()} == {"198.18.0.11": 3, "fd00::1": 1}


def test_a_read_without_the_done_message_asks_for_more() -> None:
    raw, done = K.messages(diag_msg(socket.AF_INET, 6, "10.0.0.1", 1, "10.0.0.2", 2))
    assert not done and len(raw) == 1
    raw, done = K.messages(DONE)
    assert done and len(raw) == 0


def test_an_error_reply_is_an_os_error() -> None:
    error = struct.pack(NLMSGHDR, 36, 2, 0, 1, 0) + struct.pack("=i", -13) + bytes(16)  # nlmsgerr: -EACCES
    with pytest.raises(OSError) as e:
        K.messages(error)
    assert e.value.errno == 13


def test_the_kernel_reads_a_loopback_time_wait_of_this_process() -> None:
    """Against this namespace's real kernel (listing sockets needs no privilege)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    ports = []
    for _ in range(3):
        c = socket.create_connection(("127.0.0.1", port))
        a, _ = srv.accept()
        ports.append(c.getsockname()[1])
        c.close()  # the client first: the client's side holds the TIME_WAIT
        a.recv(1)
        a.close()
    srv.close()
    d = K.Diag()
    try:
        s = d.dump(K.CONNECTED_MASK)
    finally:
        d.close()
    mine = s[(s["dport"] == port) & (s["state"] == K.TCP_TIME_WAIT)]
    assert sorted(mine["sport"].tolist()) == sorted(ports)
    assert all(50_000 < e <= 60_000 for e in mine["expires"].tolist())  # ms left of its 60 s


def rows(*items: tuple[str, int, int, int]) -> list[K.Compared]:
    return [K.Compared(*item) for item in items]


CTX = K.Context(watches_all=False, bpf="tcp", drops=0)


def test_why_when_they_agree() -> None:
    assert K.why(rows(("10.0.0.1", 5, 5, 0)), CTX) == "the kernel and the capture agree"


def test_why_names_time_waits_begun_before_the_start() -> None:
    assert K.why(rows(("10.0.0.1", 5, 8, 3)), CTX) == \
        "the kernel holds 3 more: 3 begun before the start (the capture cannot see them)"


def test_why_names_what_may_have_hidden_the_rest() -> None:
    text = K.why(rows(("10.0.0.1", 5, 10, 2)), K.Context(False, "tcp port 443", 12))
    assert text == ("the kernel holds 5 more: 2 begun before the start (the capture cannot see them); 3 whose close "
                    "the capture did not see (on an interface not watched, or outside the filter (tcp port 443), or "
                    "in the 12 frames dropped)")


def test_why_when_the_capture_predicts_more() -> None:
    assert K.why(rows(("10.0.0.1", 4, 3, 0)), CTX).startswith("the capture predicts 1 the kernel does not hold")


def test_compare_keeps_only_this_hosts_addresses() -> None:
    snap = K.Snapshot(0.0, time_wait=Counter({"10.0.0.1": 2}), time_wait_before=Counter({"10.0.0.1": 1}))
    got = K.compare(snap, Counter({"10.0.0.1": 1, "10.0.0.9": 4}), {"10.0.0.1"})
    assert got == rows(("10.0.0.1", 1, 2, 1))  # 10.0.0.9 is a peer: its TIME_WAIT is not this kernel's


# --- in network namespaces ---------------------------------------------------------------

CLIENT_IP, SERVER_IP = "198.18.1.1", "198.18.1.2"
BURST_IP, EARLY_IP = "198.18.1.11", "198.18.1.12"  # dedicated source addresses, one per test
CLIENT_FIRST_PORT = 8001  # live_traffic.port_of("client_first")
BURST = """
import socket, sys
src, server, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(n):
    c = socket.create_connection((server, %d), timeout=5, source_address=(src, 0))
    c.sendall(b"GET / HTTP/1.1\\r\\n\\r\\n")
    c.recv(1000)
    c.close()  # first: this side ends in TIME_WAIT
""" % CLIENT_FIRST_PORT

needs_root = pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[str, str, str]]:
    """(client namespace, its interface, server namespace), a veth between them, a server
    accepting client-first closes for a minute."""
    tag = os.getpid() % 100000
    cns, sns, cif, sif = f"tdk{tag}c", f"tdk{tag}s", f"tdk{tag}c", f"tdk{tag}s"
    server = None
    try:
        sh("ip", "netns", "add", cns)
        sh("ip", "netns", "add", sns)
        sh("ip", "link", "add", cif, "netns", cns, "type", "veth", "peer", "name", sif, "netns", sns)
        for ns, iface, ips in ((cns, cif, (CLIENT_IP, BURST_IP, EARLY_IP)), (sns, sif, (SERVER_IP,))):
            for ip in ips:
                sh("ip", "addr", "add", f"{ip}/24", "dev", iface, ns=ns)
            sh("ip", "link", "set", iface, "up", ns=ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        server = subprocess.Popen(["ip", "netns", "exec", sns, sys.executable, TRAFFIC, "serve", SERVER_IP, "60"],
                                  stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield cns, cif, sns
    finally:
        if server is not None:
            server.kill()
            server.wait()
            if server.stdout is not None:
                server.stdout.close()
        for ns in (cns, sns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def burst(ns: str, src: str, n: int) -> None:
    sh(sys.executable, "-c", BURST, src, SERVER_IP, str(n), ns=ns)


def ss_time_wait(ns: str, src: str) -> int:
    """The truth: `ss -tan state time-wait src ADDR | wc -l`, less its header line."""
    out = subprocess.run(f"ip netns exec {ns} ss -tan state time-wait src {src} | wc -l", shell=True, check=True,
                         capture_output=True, text=True).stdout
    return int(out) - 1


def watch(ns: str, iface: str, tmp: Path, *extra: str, seconds: float = 4) -> tuple[subprocess.Popen[str], Path]:
    written = tmp / "k.pcapng"
    proc = live(ns, "-i", iface, "--duration", str(seconds), "--jsonl", "--write", str(written), *extra)
    wait_for_file(written, proc)
    return proc, written


def kernel_lines(out: str, local: str) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, out.splitlines())
            if line.get("event") == "kernel_time_wait" and line["local"] == local]


@needs_root
def test_kernel_count_equals_ss_and_the_capture_predicts_every_close_it_saw(pair: tuple[str, str, str],
                                                                            tmp_path: Path) -> None:
    cns, cif, _ = pair
    proc, _ = watch(cns, cif, tmp_path)
    burst(cns, BURST_IP, 40)
    time.sleep(1.2)  # the last close's TIME_WAIT begun, a kernel reading after it
    truth = ss_time_wait(cns, BURST_IP)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert truth == 40
    last = kernel_lines(out, BURST_IP)[-1]  # the one written at the stop
    assert (last["kernel"], last["predicted"], last["kernel_before_start"]) == (truth, truth, 0)
    assert "ts" in last
    assert f"{BURST_IP} 40 / 40 (0)" in err and "the kernel and the capture agree" in err


@needs_root
def test_time_waits_from_before_the_start_show_as_kernel_above_predicted(pair: tuple[str, str, str],
                                                                         tmp_path: Path) -> None:
    cns, cif, _ = pair
    burst(cns, EARLY_IP, 15)  # before the capture: invisible to it
    proc, _ = watch(cns, cif, tmp_path)
    burst(cns, EARLY_IP, 25)
    time.sleep(1.2)
    truth = ss_time_wait(cns, EARLY_IP)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert truth == 40
    last = kernel_lines(out, EARLY_IP)[-1]
    assert (last["kernel"], last["predicted"], last["kernel_before_start"]) == (truth, 25, 15)
    # The sentence sums over local addresses; the earlier test's TIME_WAITs are from before this start too.
    assert f"{EARLY_IP} 25 / 40 (15)" in err
    assert "more: 15 begun before the start (the capture cannot see them)" in err or \
        "more: 55 begun before the start (the capture cannot see them)" in err


@needs_root
def test_no_kernel_turns_it_off(pair: tuple[str, str, str], tmp_path: Path) -> None:
    cns, cif, _ = pair
    proc, _ = watch(cns, cif, tmp_path, "--no-kernel", seconds=1)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "kernel_time_wait" not in out and "capture / kernel" not in err and "kernel: not compared" not in err


@needs_root
def test_an_interface_without_an_address_is_not_compared(pair: tuple[str, str, str], tmp_path: Path) -> None:
    """A mirror (SPAN) port carries other hosts' connections: one line says so, the capture goes on."""
    cns, _, _ = pair
    sh("ip", "link", "add", "tdkspan", "type", "veth", "peer", "name", "tdkspanp", ns=cns)  # no addresses
    sh("ip", "link", "set", "tdkspan", "up", ns=cns)
    try:
        proc, _ = watch(cns, "tdkspan", tmp_path, seconds=1)
        out, err = proc.communicate(timeout=30)
    finally:
        sh("ip", "link", "del", "tdkspan", ns=cns)
    assert proc.returncode == 0, err
    assert "kernel_time_wait" not in out
    said = [line for line in err.splitlines() if line.startswith("kernel: not compared:")]
    assert said == ["kernel: not compared: tdkspan has no address of this host (a mirror or SPAN port?): its "
                    "connections are other hosts'; the kernel's sockets are not the capture's"]


@needs_root
def test_the_port_range_is_this_hosts_unless_given(pair: tuple[str, str, str], tmp_path: Path) -> None:
    """Live watches this host most often: without --port-range, port utilisation counts against
    this namespace's net.ipv4.ip_local_port_range, as the kernel's figures do (the report's
    facts show the range used); --port-range still wins."""
    cns, cif, _ = pair
    key = "net.ipv4.ip_local_port_range"
    before = subprocess.run(["ip", "netns", "exec", cns, "sysctl", "-n", key], capture_output=True, text=True,
                            check=True).stdout.split()
    sh("sysctl", "-w", f"{key}=20000 60999", ns=cns)
    try:
        for given, want in (((), "20000–60999"), (("--port-range", "40000-40999"), "40000–40999")):
            report = tmp_path / f"r{len(given)}.html"
            proc, _ = watch(cns, cif, tmp_path, "-o", str(report), *given, seconds=2)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            assert f"<dd>{want} (" in report.read_text()
    finally:
        sh("sysctl", "-w", f"{key}={' '.join(before)}", ns=cns)
