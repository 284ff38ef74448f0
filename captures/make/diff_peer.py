#!/usr/bin/env python3
"""Endpoints for captures/diff/ (make_points_samples.sh): one HTTP/1.1 server, one workload of
REQUESTS requests (GET /item/0 ... GET /item/199), sent two ways. Standard library only; the
HTTP framing helpers are tw_peer.py's.

    diff_peer.py server ADDR PORT SYNCDIR
    diff_peer.py client close ADDR PORT SYNCDIR
    diff_peer.py client keepalive:K ADDR PORT SYNCDIR

The server is the same in both runs and keeps HTTP/1.1 semantics: a request with
"Connection: close" gets a response with "Connection: close" and the server close()s at once
(server FIN first); otherwise the connection stays open for the next request until the client's
EOF, then the server close()s (client FIN first).

Client "close": one connection per request, each request with "Connection: close", read to EOF,
then close() (server TIME_WAIT). Client "keepalive:K": REQUESTS / K connections, K requests in a
row on each (Content-Length framing), then the client close()s first (client TIME_WAIT).
Requests are sequential (one connection at a time). The client writes SYNCDIR/client.log: one
line per connection "<local port> <first item> <requests> <closer>", then a summary line.
"""
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tw_peer  # noqa: E402  (read_request, read_response: HTTP/1.x framing of the tw_* samples)

REQUESTS = 200
TIMEOUT = 10.0


def request(item, addr, port, close):
    return (b"GET /item/%d HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n"
            % (item, addr.encode(), port, b"Connection: close\r\n" if close else b""))


def response(path, close):
    body = b"%s ok\n" % path
    return (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n"
            % (len(body), b"Connection: close\r\n" if close else b"")) + body


def serve(c):
    c.settimeout(TIMEOUT)
    try:
        buf = b""
        while True:
            head, buf = tw_peer.read_request(c, buf)
            if head is None:
                break                      # the client's EOF: it closed first
            close = b"\r\nconnection: close" in head.lower()
            c.sendall(response(head.split()[1], close))
            if close:
                break                      # server closes first
    except OSError:
        pass
    finally:
        c.close()


def server(addr, port, syncdir):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(256)
    with open(os.path.join(syncdir, "ready"), "w"):
        pass
    s.settimeout(1.0)
    while not os.path.exists(os.path.join(syncdir, "stop")):
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    s.close()


def client(mode, addr, port, syncdir):
    per = 1 if mode == "close" else int(mode.split(":")[1])
    lines = []
    t0 = time.time()
    for first in range(0, REQUESTS, per):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect((addr, port))
        lport = s.getsockname()[1]
        if mode == "close":
            s.sendall(request(first, addr, port, True))
            while s.recv(4096):
                pass                       # the server's FIN comes first
            who = "server"
        else:
            buf = b""
            for item in range(first, first + per):
                s.sendall(request(item, addr, port, False))
                buf = tw_peer.read_response(s, buf)
            who = "client"
        s.close()
        lines.append("%d %d %d %s" % (lport, first, per, who))
    lines.append("# %s: %d connections, %d requests, %.6f-%.6f"
                 % (mode, len(lines), REQUESTS, t0, time.time()))
    with open(os.path.join(syncdir, "client.log"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    role = sys.argv[1]
    if role == "server":
        server(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif role == "client":
        client(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        raise SystemExit(__doc__)


signal.alarm(60)  # after tw_peer's import (it sets its own): the bound for this process

if __name__ == "__main__":
    main()
