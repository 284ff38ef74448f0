#!/usr/bin/env python3
"""Many-connection HTTP/1.x endpoints for captures/make/make_timewait_samples.sh (standard
library only): the load that makes a host pile up TIME_WAIT or run short of ports.

Run inside a network namespace (ip netns exec ...):

    tw_peer.py server MODE ADDR PORT READYFILE
    tw_peer.py client MODE ADDR PORT COUNT THREADS RATE LOGFILE

Server MODEs (one thread per connection):
  close      HTTP/1.1 response with "Connection: close", then close(): server closes first
  http10     "HTTP/1.0 200 OK" response without keep-alive, then close(): server closes first
  keepalive  answer every request on the connection until the client's EOF: client closes first
  linger     answer, then close() with SO_LINGER {1,0}: the server aborts with an RST
Client MODEs:
  close      HTTP/1.1 GET with "Connection: close", read to EOF, close()
  plain      HTTP/1.1 GET without a Connection header, read to EOF, close()
  http10     HTTP/1.0 GET, read to EOF, close()
  keepalive:K  K requests on one connection (Content-Length framing), then close() first
COUNT connections are spread over THREADS threads at RATE new connections per second in total
(0: as fast as possible); a connect() that fails with EADDRNOTAVAIL (no free port) is retried
every 10 ms.  Messages are short so that they fit a 128-byte snaplen.  The client
writes one summary line to LOGFILE: connections made and connect() errors by errno.
"""
import collections
import errno
import os
import signal
import socket
import struct
import sys
import threading
import time

TIMEOUT = 10.0
signal.alarm(120)  # hard bound for any single helper process

BODY = b"ok\n"


def response(version, close):
    head = b"%s 200 OK\r\nContent-Length: %d\r\n" % (version, len(BODY))
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + BODY


def read_request(c, buf):
    """One request head from the socket (requests carry no body); (head, rest) or (None, b'')."""
    while b"\r\n\r\n" not in buf:
        chunk = c.recv(4096)
        if not chunk:
            return None, b""
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def serve(mode, c):
    c.settimeout(TIMEOUT)
    try:
        buf = b""
        while True:
            head, buf = read_request(c, buf)
            if head is None:
                break  # the client's FIN: it closed first
            if mode == "close":
                c.sendall(response(b"HTTP/1.1", True))
                break
            if mode == "http10":
                c.sendall(response(b"HTTP/1.0", False))
                break
            if mode == "linger":
                c.sendall(response(b"HTTP/1.1", False))
                time.sleep(0.01)  # let the response leave before the RST
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                break
            c.sendall(response(b"HTTP/1.1", False))  # keepalive
    except OSError:
        pass
    finally:
        c.close()


def server(mode, addr, port, ready):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(4096)
    with open(ready + ".tmp", "w"):
        pass
    os.rename(ready + ".tmp", ready)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(mode, c), daemon=True).start()


def request(mode, addr):
    if mode == "close":
        return b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % addr.encode()
    if mode == "http10":
        return b"GET / HTTP/1.0\r\nHost: %s\r\n\r\n" % addr.encode()
    return b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % addr.encode()


def read_response(s, buf):
    """One response with Content-Length framing; returns the bytes left after it."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("EOF before a response")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(rest) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("EOF inside a response")
        rest += chunk
    return rest[length:]


def one_connection(mode, addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        s.connect((addr, port))
        if mode.startswith("keepalive"):
            buf = b""
            for _ in range(int(mode.split(":")[1])):
                s.sendall(request("plain", addr))
                buf = read_response(s, buf)
        else:
            s.sendall(request(mode, addr))
            try:
                while s.recv(4096):
                    pass  # the server closes (FIN) or aborts (RST)
            except ConnectionResetError:
                pass
    finally:
        s.close()


def client(mode, addr, port, count, threads, rate, logfile):
    made = [0]
    errors = collections.Counter()
    lock = threading.Lock()
    start = time.time() + 0.05

    def worker(k):
        for i in range(k, count, threads):
            if rate:
                d = start + i / rate - time.time()
                if d > 0:
                    time.sleep(d)
            give_up = time.monotonic() + TIMEOUT
            while True:
                try:
                    one_connection(mode, addr, port)
                    with lock:
                        made[0] += 1
                    break
                except OSError as e:
                    with lock:
                        errors[e.errno or type(e).__name__] += 1
                    # every port holds a TIME_WAIT too young to take over: wait and retry
                    if e.errno != errno.EADDRNOTAVAIL or time.monotonic() > give_up:
                        break
                    time.sleep(0.01)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    with open(logfile, "a") as f:
        f.write("%s %s:%d made=%d errors=%s %.3f-%.3f\n"
                % (mode, addr, port, made[0], dict(errors), start, time.time()))


def main():
    role, mode, addr, port = sys.argv[1:5]
    if role == "server":
        server(mode, addr, int(port), sys.argv[5])
    else:
        count, threads, rate = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
        client(mode, addr, int(port), count, threads, rate, sys.argv[8])


if __name__ == "__main__":
    main()
