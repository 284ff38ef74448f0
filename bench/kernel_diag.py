"""The cost of reading the kernel's TCP sockets (teardown/live/kernel.py) with many in TIME_WAIT.

    sudo python bench/kernel_diag.py 10000 50000

For each count: a fresh network namespace, its ephemeral range widened to 1024-65535 and tcp_tw_reuse off, that many
client-first closes on its loopback (client ports from the range: the clients hold the
TIME_WAITs), then `KernelSide.poll` (two sock_diag dumps of both families, the counts, the
host's addresses) timed 20 times against `ss -tan state time-wait | wc -l`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

MAKE = """
import socket, sys
n, port = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(512)
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", port)); a, _ = srv.accept()
    c.close(); a.recv(1); a.close()  # the client closes first: the client's side holds TIME_WAIT
"""

MEASURE = """
import json, statistics, sys, time
from teardown.live.kernel import KernelSide
k = KernelSide(["lo"], "tcp", time.time())
costs = []
for _ in range(20):
    k.next_poll = 0.0
    k.poll(time.time())
    costs.append(k.cost_s)
print(json.dumps({"time_wait": sum(k.snap.time_wait.values()), "median_ms": 1e3 * statistics.median(costs),
                  "max_ms": 1e3 * max(costs)}))
"""


def ns(name: str, *cmd: str) -> str:
    return subprocess.run(["ip", "netns", "exec", name, *cmd], check=True, capture_output=True, text=True).stdout


def main(counts: list[int]) -> None:
    for n in counts:
        name = f"tdkdiag{n}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        try:
            ns(name, "ip", "link", "set", "lo", "up")
            ns(name, "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535")
            ns(name, "sysctl", "-qw", "net.ipv4.tcp_max_tw_buckets=262144")
            ns(name, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=0")  # else connect() reuses loopback TIME_WAITs
            t0 = time.monotonic()
            procs = [subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", MAKE, str(n // 2), str(p)])
                     for p in (80, 81)]
            for p in procs:
                p.wait()
            made = time.monotonic() - t0
            ss = []
            for _ in range(5):
                t1 = time.perf_counter()
                k = len(ns(name, "ss", "-tanH", "state", "time-wait").splitlines())
                ss.append(time.perf_counter() - t1)
            print(f"{n:,} closes made in {made:.1f} s; ss counts {k:,} TIME_WAIT in "
                  f"{1e3 * statistics.median(ss):.0f} ms (a process each); teardown:",
                  ns(name, sys.executable, "-c", MEASURE).strip())
        finally:
            subprocess.run(["ip", "netns", "del", name])


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10000, 50000])
