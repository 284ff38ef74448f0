"""Generate a large, real loopback capture of many short TCP connections.

Real kernel traffic rather than synthesised packets, so the benchmark input has what
real captures have: delayed ACKs, piggy-backed FINs, TIME_WAIT reuse of 4-tuples
(loopback has tcp_tw_reuse=2), RSTs from SO_LINGER {1,0} and from closed ports, and
connections cut at both ends of the capture.

    sudo python bench/make_capture.py                      # 1,000,000 packets
    sudo python bench/make_capture.py --packets 10000000   # the 10x memory test

Processes: tcpdump, 2 server workers (SO_REUSEPORT, selectors), 2 client workers
(the machine has 2 cores).  tcpdump's `-c N` stops the capture at exactly N packets;
the clients are stopped when tcpdump exits.  Everything is bounded by --timeout.
Must run as root (tcpdump on lo).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

from pcapcount import count_records

HOST = "127.0.0.1"
DATA_DIR = Path(__file__).resolve().parent / "data"

# Share of connections per ending (the rest are client-first closes).
# Letters travel in the request so the server knows how to end its side.
MIX = (("R", 0.03), ("A", 0.04), ("S", 0.25))  # refused, client abort, server-first
KINDS = {"C": "client-first close", "S": "server-first close", "A": "client abort (SO_LINGER 0)", "R": "refused (closed port)"}


# --------------------------------------------------------------------------- server
def serve(listener: socket.socket, stop: EventType) -> None:
    """One server worker: a selectors loop answering every request once.

    The request says how the connection should end: "S" -> we close right after the
    response (server-first, TIME_WAIT on the server); otherwise we wait for the
    client's FIN (client-first) or RST (abort) before closing.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us via `stop`
    sel = selectors.DefaultSelector()
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ)
    bufs: dict[socket.socket, bytes | None] = {}  # None once answered
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"

    def close(sock: socket.socket) -> None:
        sel.unregister(sock)
        del bufs[sock]
        sock.close()

    while not stop.is_set():
        for key, _ in sel.select(timeout=0.2):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is listener:
                try:
                    conn, _ = listener.accept()  # blocking socket: sends are ~1 KB
                except BlockingIOError:  # spurious wake-up: nothing to accept
                    continue
                bufs[conn] = b""
                sel.register(conn, selectors.EVENT_READ)
                continue
            try:
                data = sock.recv(4096)
            except OSError:  # ECONNRESET after a client abort
                data = b""
            if not data:  # FIN or RST from the client: our side ends now
                close(sock)
                continue
            buf = bufs[sock]
            if buf is None:  # already answered: ignore
                continue
            buf += data
            bufs[sock] = buf
            if b"\r\n\r\n" not in buf:
                continue
            m = re.search(rb"end=(\w)&size=(\d+)", buf)
            kind, size = (m.group(1), int(m.group(2))) if m else (b"C", 500)
            # The client reads exactly `size` bytes, so the response must be exact:
            # the second pass accounts for the digits of Content-Length itself.
            body = size - len(head % 0)
            body = size - len(head % body)
            bufs[sock] = None
            try:
                sock.sendall(head % body + b"x" * body)
            except OSError:
                kind = b"S"  # peer already gone: just close
            if kind == b"S":
                close(sock)


# --------------------------------------------------------------------------- client
def one_connection(kind: str, port: int, closed_port: int, rng: random.Random) -> None:
    """Connect, send ~100 B, read 300-1000 B, end the way `kind` says."""
    if kind == "R":
        with socket.socket() as s:
            try:
                s.connect((HOST, closed_port))
            except ConnectionRefusedError:
                pass
        return
    size = rng.randint(300, 1000)
    with socket.create_connection((HOST, port), timeout=5) as s:
        req = b"GET /item?end=%s&size=%d HTTP/1.1\r\nHost: localhost\r\nUser-Agent: teardown-bench/1\r\nAccept: */*\r\n\r\n"
        s.sendall(req % (kind.encode(), size))
        got = 0
        while True:
            chunk = s.recv(4096)
            got += len(chunk)
            # server-first: read to EOF (the server's FIN); otherwise stop at the
            # known response size so that *we* close first.
            if not chunk or (kind != "S" and got >= size):
                break
        if kind == "A":  # close() now sends RST instead of FIN
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def client(seed: int, port: int, closed_port: int, stop: EventType, counts: "mp.Queue[dict[str, int]]") -> None:
    """One client worker: sequential short connections until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    rng = random.Random(seed)
    tally = dict.fromkeys(KINDS, 0)
    while not stop.is_set():
        r, kind = rng.random(), "C"
        for k, share in MIX:
            if r < share:
                kind = k
                break
            r -= share
        try:
            one_connection(kind, port, closed_port, rng)
            tally[kind] += 1
        except OSError as e:  # timeouts, EADDRNOTAVAIL, resets: count and go on
            key = f"error {type(e).__name__}"
            tally[key] = tally.get(key, 0) + 1
    counts.put(tally)


# --------------------------------------------------------------------------- main
def someone_listens(port: int) -> bool:
    """A connect test, not a bind test: TIME_WAITs left by a previous run must not count."""
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=1_000_000, help="packets to capture (tcpdump -c)")
    ap.add_argument("--out", type=Path, help="output pcap (default bench/data/loopback_<packets>.pcap)")
    # Below the ephemeral range (32768-60999) so no client source port can collide.
    ap.add_argument("--port", type=int, default=18080, help="server port")
    ap.add_argument("--closed-port", type=int, default=18081, help="port with no listener (refused connects)")
    ap.add_argument("--clients", type=int, default=2, help="client processes")
    ap.add_argument("--servers", type=int, default=2, help="server processes")
    ap.add_argument("--timeout", type=float, default=600, help="hard limit in seconds")
    args = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("make_capture.py: must run as root (tcpdump on lo)")
    tcpdump = shutil.which("tcpdump") or sys.exit("make_capture.py: tcpdump not found in PATH")
    for p in (args.port, args.closed_port):
        if someone_listens(p):
            sys.exit(f"make_capture.py: port {p} is in use, choose --port/--closed-port")
    out: Path = args.out or DATA_DIR / f"loopback_{args.packets}.pcap"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    deadline = time.monotonic() + args.timeout

    # -Z root: Debian's tcpdump otherwise drops to user "tcpdump", which cannot write
    # into a root-owned bench/data/.  The filter includes the closed port, or the
    # refused SYN/RST pairs would not be captured.
    cmd = [tcpdump, "-i", "lo", "-w", str(out), "-s", "128", "-B", "262144", "-c", str(args.packets),
           "-Z", "root", f"tcp and (port {args.port} or port {args.closed_port})"]
    print("$", " ".join(cmd), flush=True)
    dump = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    assert dump.stderr is not None
    stderr_lines: list[str] = []
    ready = threading.Event()

    def drain() -> None:  # collect tcpdump's stderr; "listening on" means it is capturing
        assert dump.stderr is not None
        for line in dump.stderr:
            stderr_lines.append(line.rstrip())
            if "listening on" in line:
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(timeout=10) or dump.poll() is not None:
        dump.kill()
        sys.exit("tcpdump did not start:\n" + "\n".join(stderr_lines))

    # Listening sockets are made here, before any client starts, so no SYN can be
    # refused by accident; SO_REUSEPORT lets the kernel spread accepts over workers.
    ctx = mp.get_context("fork")
    stop_clients, stop_servers = ctx.Event(), ctx.Event()
    counts: "mp.Queue[dict[str, int]]" = ctx.Queue()
    listeners = []
    for _ in range(args.servers):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # bind despite TIME_WAITs
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        ls.bind((HOST, args.port))
        ls.listen(4096)
        listeners.append(ls)
    # daemon: if we die (Ctrl-C, timeout of a caller), multiprocessing kills them at exit.
    servers = [ctx.Process(target=serve, args=(ls, stop_servers), daemon=True) for ls in listeners]
    clients = [ctx.Process(target=client, args=(i, args.port, args.closed_port, stop_clients, counts), daemon=True)
               for i in range(args.clients)]
    t0 = time.monotonic()
    for proc in servers + clients:
        proc.start()
    for ls in listeners:
        ls.close()  # the workers hold their own copies

    try:
        dump.wait(timeout=max(1.0, deadline - time.monotonic()))
        reached = True
    except subprocess.TimeoutExpired:
        reached = False
        dump.send_signal(signal.SIGINT)  # SIGINT: tcpdump flushes the file and prints stats
        dump.wait(timeout=30)
    elapsed = time.monotonic() - t0

    # Clients first, so that no connection in flight loses its server.
    stop_clients.set()
    tally: dict[str, int] = {}
    for _ in clients:
        try:
            for k, v in counts.get(timeout=15).items():
                tally[k] = tally.get(k, 0) + v
        except Exception:  # a client stuck past the deadline: killed below
            pass
    for proc in clients:
        proc.join(timeout=10)
    stop_servers.set()
    for proc in clients + servers:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    time.sleep(0.2)  # let drain() see the last stderr lines

    records = count_records(str(out))
    stats = " ".join(stderr_lines)
    drop = re.search(r"(\d+) packets? dropped by kernel", stats)
    dropped = int(drop.group(1)) if drop else None
    conns = sum(tally.get(k, 0) for k in KINDS)
    errors = ", ".join(f"{v:,} {k[6:]}" for k, v in tally.items() if k.startswith("error")) or "none"
    print("\n".join(line for line in stderr_lines if "packets" in line))
    print(f"capture:  {out}  ({out.stat().st_size / 2**20:.1f} MiB)")
    print(f"packets:  {records:,} records in file (target {args.packets:,})"
          + ("" if reached else f"  -- TIMEOUT after {args.timeout:.0f} s, target not reached"))
    print(f"drops:    {'unknown (no tcpdump stats)' if dropped is None else 'none' if dropped == 0 else f'{dropped:,} dropped by kernel'}")
    print(f"traffic:  {conns:,} connections in {elapsed:.1f} s ({conns / elapsed:,.0f}/s), "
          f"client errors: {errors}")
    for k, label in KINDS.items():
        n = tally.get(k, 0)
        print(f"  {label:28} {n:9,}  {100 * n / max(conns, 1):5.1f} %")
    return 0 if reached and records >= args.packets else 1


if __name__ == "__main__":
    sys.exit(main())
