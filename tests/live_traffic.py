"""Real TCP connections for tests/test_live.py, run inside the test's network namespaces.

    python live_traffic.py serve IP SECONDS          one listener per way of closing, in threads
    python live_traffic.py connect SERVER_IP SPEC    SPEC: way=count,...; prints one JSON line
                                                     per connection: {"way", "port"}

Ways of closing (the server listens on BASE_PORT + its index):
  client_first   request, response; the client closes, the server closes on EOF
  server_first   request, response; the server closes right after it, the client on EOF
  abort          request, response; the client closes with SO_LINGER {1, 0}: an RST
  fin_retrans    no data; the server closes at once, the client on EOF (the test drops the
                 server's final ACK twice, so the client sends its FIN three times)
Bounded: every socket has a timeout, `serve` stops after SECONDS.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time

WAYS = ("client_first", "server_first", "abort", "fin_retrans")
BASE_PORT = 8001
TIMEOUT_S = 5.0


def port_of(way: str) -> int:
    return BASE_PORT + WAYS.index(way)


def _handle(way: str, conn: socket.socket) -> None:
    conn.settimeout(TIMEOUT_S)
    try:
        if way != "fin_retrans":
            conn.recv(100)
            conn.sendall(b"x" * 300)
        if way in ("client_first", "abort"):
            while conn.recv(100):
                pass
    except OSError:
        pass
    finally:
        conn.close()


def serve(ip: str, seconds: float) -> None:
    listeners = []
    for way in WAYS:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port_of(way)))
        s.listen(64)
        s.settimeout(0.2)
        listeners.append((way, s))
    print("ready", flush=True)
    end = time.monotonic() + seconds

    def loop(way: str, s: socket.socket) -> None:
        while time.monotonic() < end:
            try:
                conn, _ = s.accept()
            except socket.timeout:
                continue
            threading.Thread(target=_handle, args=(way, conn), daemon=True).start()

    threads = [threading.Thread(target=loop, args=pair) for pair in listeners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def connect(server: str, spec: str) -> None:
    for item in spec.split(","):
        way, _, count = item.partition("=")
        for _ in range(int(count)):
            c = socket.create_connection((server, port_of(way)), timeout=TIMEOUT_S)
            print(json.dumps({"way": way, "port": c.getsockname()[1]}), flush=True)
            if way != "fin_retrans":
                c.sendall(b"GET / HTTP/1.1\r\n\r\n")
                c.recv(1000)
            if way == "abort":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif way in ("server_first", "fin_retrans"):
                while c.recv(1000):
                    pass
            c.close()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], float(sys.argv[3]))
    else:
        connect(sys.argv[2], sys.argv[3])
