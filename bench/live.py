"""How many packets per second `teardown live` keeps up with on loopback, without drops.

    sudo python bench/live.py                          # rates 1000,2000,4000,8000 conn/s
    sudo python bench/live.py --rates 3000,6000 --seconds 10 --reader dumpcap

For each target rate of new connections: a fresh network namespace (so nothing else is on its
loopback), a selectors server, client processes opening short connections at that rate
(request ~100 B, response 300-1000 B; half the connections closed by the client first, half by
the server), and `teardown live -i lo --duration SECONDS` sniffing them. Prints a Markdown
table: frames captured, packets per second, the kernel's drop counter and the analyzer's. The
load generator runs on the same 2 cores as teardown: at the highest rates they compete.
Everything is bounded: each step stops after SECONDS plus a few.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import re
import resource
import selectors
import socket
import subprocess
import sys
import time

PORT = 9300


def serve(seconds: float) -> None:
    """Answer each request once; close first when the request asks ("S")."""
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", PORT))
    lst.listen(4096)
    lst.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lst, selectors.EVENT_READ)
    end = time.monotonic() + seconds
    answered: set[socket.socket] = set()
    while time.monotonic() < end:
        for key, _ in sel.select(0.2):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            if s is lst:
                try:
                    c, _ = lst.accept()
                except BlockingIOError:
                    continue
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
                continue
            try:
                data = s.recv(2048)
            except OSError:
                data = b""
            if data and s not in answered:
                answered.add(s)
                s.send(b"x" * random.randint(300, 1000))
                if data.startswith(b"S"):
                    data = b""
            if not data:
                sel.unregister(s)
                answered.discard(s)
                s.close()


def clients(rate: float, seconds: float) -> None:
    """Open connections at `rate` per second for `seconds`."""
    start = time.monotonic()
    n = 0
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            return
        due = start + n / rate
        if due > now:
            time.sleep(due - now)
        n += 1
        try:
            c = socket.create_connection(("127.0.0.1", PORT), timeout=2)
            server_first = n % 2 == 0
            c.sendall((b"S" if server_first else b"C") + b"x" * 99)
            c.recv(2048)
            if server_first:
                while c.recv(2048):
                    pass
            c.close()
        except OSError:
            pass


def step(rate: int, seconds: float, reader: str, procs: int) -> dict[str, float]:
    ns = f"tdbench{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        inns = ["ip", "netns", "exec", ns, sys.executable]
        server = subprocess.Popen([*inns, __file__, "_serve", str(seconds + 8)])
        live = subprocess.Popen([*inns, "-m", "teardown.cli", "live", "-i", "lo", "--reader", reader,
                                 "--duration", str(seconds + 3)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        assert live.stderr is not None
        live.stderr.readline()  # the first status line: sniffing
        t0 = time.monotonic()
        gens = [subprocess.Popen([*inns, __file__, "_clients", str(rate / procs), str(seconds)]) for _ in range(procs)]
        for g in gens:
            g.wait(seconds + 30)
        elapsed = time.monotonic() - t0
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out, err = live.communicate(timeout=seconds + 60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # only teardown live was reaped meanwhile
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        server.wait(seconds + 30)
    finally:
        subprocess.run(["ip", "netns", "del", ns])
    frames = int(re.search(r"^lo: ([\d,]+) frames", out, re.M)[1].replace(",", ""))  # type: ignore[index]
    drops = re.search(r"dropped: ([\d,]+) frames by the kernel, ([\d,]+) by the analyzer", out)
    assert drops is not None, out + err
    connections = sum(int(x.replace(",", "")) for x in re.findall(r"^fin\s+([\d,]+)", out, re.M))
    return {"rate": rate, "connections": connections, "frames": frames, "pps": frames / elapsed,
            "cpu_us": 1e6 * cpu / max(frames, 1),
            "kernel": int(drops[1].replace(",", "")), "analyzer": int(drops[2].replace(",", ""))}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        return serve(float(sys.argv[2]))
    if len(sys.argv) > 1 and sys.argv[1] == "_clients":
        return clients(float(sys.argv[2]), float(sys.argv[3]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="1000,2000,4000,8000", help="target new connections per second, per step")
    ap.add_argument("--seconds", type=float, default=8.0, help="load per step")
    ap.add_argument("--reader", default="scapy", choices=["scapy", "dumpcap"])
    ap.add_argument("--procs", type=int, default=max(1, (os.cpu_count() or 2) // 2), help="client processes")
    args = ap.parse_args()
    print(f"teardown live -i lo --reader {args.reader}; {os.cpu_count()} CPUs; {args.seconds:g} s per step\n")
    print("| target conn/s | connections seen | frames | packets/s | kernel drops | analyzer drops | CPU µs/packet |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for rate in (int(r) for r in args.rates.split(",")):
        r = step(rate, args.seconds, args.reader, args.procs)
        print(f"| {rate:,} | {r['connections']:,.0f} | {r['frames']:,.0f} | {r['pps']:,.0f} | {r['kernel']:,.0f} | "
              f"{r['analyzer']:,.0f} | {r['cpu_us']:.1f} |", flush=True)


if __name__ == "__main__":
    mp.freeze_support()
    main()
