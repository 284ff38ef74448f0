#!/usr/bin/env python3
"""Endpoints and drop plan for captures/points/ (make_points_samples.sh; standard library only).

One path, two capture points: client 198.18.1.1 -- router -- server 198.18.2.1:8080. The client
makes CONNECTIONS connections in a row, connection i from port BASE_PORT + i (bound explicitly,
so the router's iptables rules can name each one). Every connection carries two requests:

    request 1: REQUEST1_BYTES bytes ("REQ <i> 1/2 close=<who> ..." padded, newline-terminated)
    request 2: REQUEST2_BYTES bytes
    each answered by RESPONSE_BYTES bytes.

Even i: the client close()s first after the 2nd answer, the server close()s on EOF (client
TIME_WAIT). Odd i: the server sends the 2nd answer, waits 20 ms (so its FIN is a segment of its
own) and close()s first; the client reads to EOF, then close()s (server TIME_WAIT).

DROPS: the ten segments the router drops, each exactly once, in its FORWARD chain (`rules`
prints the iptables rules; their comments name the drop, and the truth reads the counters back
by comment):

    final_ack  the client's ACK of the server's FIN (the first pure ACK from the client after its
               own FIN: -m recent --set on that FIN, --remove -j DROP on the ACK). The server, in
               LAST_ACK, sends its FIN again; the client answers from TIME_WAIT.
    fin        the first FIN of the named direction (-m recent: dropped the first time, then
               accepted: the sender's retransmission goes through).
    request1/2 the client's data segment of that request (matched by IP total length, which
               only that request has), dropped once the same way.

Usage (inside a network namespace):

    points_peer.py server ADDR PORT SYNCDIR
    points_peer.py client ADDR PORT SYNCDIR CLIENT_ADDR
    points_peer.py rules CLIENT_ADDR SERVER_ADDR PORT     (one iptables argument line per rule)

The server touches SYNCDIR/ready once it listens and writes SYNCDIR/server.log; the client
writes SYNCDIR/client.log: one line per connection "<local port> <closer> <what happened>".
Every socket has a timeout and each process an alarm.
"""
import os
import signal
import socket
import sys
import threading
import time

from peer import recv_line, touch  # noqa: E402  (as every peer reads a line and says it is ready)

CONNECTIONS = 34
BASE_PORT = 41000
REQUEST1_BYTES = 300
REQUEST2_BYTES = 400
RESPONSE_BYTES = 500
SERVER_FIN_DELAY_S = 0.02
PAUSE_S = 0.05           # between connections
TIMEOUT = 10.0

# IP total length ranges that only request 1 / request 2 segments have (20-byte IPv4 header,
# 20-60 byte TCP header): 320-360 and 420-460, nothing else the peers send lies there.
LENGTHS = {"request1": (REQUEST1_BYTES + 20, REQUEST1_BYTES + 80),
           "request2": (REQUEST2_BYTES + 20, REQUEST2_BYTES + 80)}

# connection index -> list of (what, direction)
DROPS = {
    2: [("final_ack", "c2s")],
    4: [("request1", "c2s")],
    6: [("fin", "c2s")],        # client-first: the client's FIN (the first FIN) is lost
    10: [("final_ack", "c2s")],
    13: [("fin", "s2c")],       # server-first: the server's FIN (the first FIN) is lost
    15: [("request2", "c2s")],
    18: [("final_ack", "c2s")],
    21: [("fin", "c2s")],       # server-first: the client's FIN (the second FIN) is lost
    26: [("final_ack", "c2s")],
    29: [("request1", "c2s")],
}


def closer(i):
    """Who close()s first on connection i."""
    return "client" if i % 2 == 0 else "server"


def port(i):
    return BASE_PORT + i


def drop_comment(i, what, direction):
    return "tdpt drop %d %s %s" % (port(i), what, direction)


def rules(cli, srv, sport):
    """iptables argument lines for the router's FORWARD chain, in order."""
    out = []
    for i in sorted(DROPS):
        p = port(i)
        c2s = "-p tcp -s %s --sport %d -d %s --dport %d" % (cli, p, srv, sport)
        s2c = "-p tcp -s %s --sport %d -d %s --dport %d" % (srv, sport, cli, p)
        for what, direction in DROPS[i]:
            m = c2s if direction == "c2s" else s2c
            name = "tdpt_%d_%s_%s" % (p, what, direction)
            cm = '-m comment --comment "%s"' % drop_comment(i, what, direction)
            if what == "final_ack":
                out.append('%s --tcp-flags FIN FIN -m recent --name %s --set -m comment --comment '
                           '"tdpt mark %d client FIN"' % (m, name, p))
                out.append("%s --tcp-flags ALL ACK -m length --length 0:80 -m recent --name %s "
                           "--remove %s -j DROP" % (m, name, cm))
                continue
            if what == "fin":
                sel = "--tcp-flags FIN FIN"
            else:
                lo, hi = LENGTHS[what]
                sel = "-m length --length %d:%d" % (lo, hi)
            out.append('%s %s -m recent --name %s --rcheck -m comment --comment "tdpt pass %d %s %s '
                       'again" -j ACCEPT' % (m, sel, name, p, what, direction))
            out.append("%s %s -m recent --name %s --set %s -j DROP" % (m, sel, name, cm))
    return out


def message(kind, i, n, who, size):
    head = b"%s %d %d/2 close=%s " % (kind, i, n, who.encode())
    return head + b"." * (size - len(head) - 1) + b"\n"


def recv_eof(s):
    n = 0
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return n
        n += len(chunk)


def log(path, line, lock=threading.Lock()):
    with lock, open(path, "a") as f:
        f.write(line + "\n")


# ---------------------------------------------------------------- server
def serve(c, peer, syncdir):
    c.settimeout(TIMEOUT)
    try:
        who = None
        for n in (1, 2):
            req = recv_line(c)
            fields = req.split()
            i, who = int(fields[1]), fields[3].split(b"=")[1].decode()
            c.sendall(message(b"RESP", i, n, who, RESPONSE_BYTES))
        if who == "server":
            time.sleep(SERVER_FIN_DELAY_S)
            c.close()                      # server closes first
            rest = "closed first"
        else:
            rest = "EOF after %d more bytes, then closed" % recv_eof(c)
            c.close()
        log(os.path.join(syncdir, "server.log"), "%d %s %s" % (peer[1], who, rest))
    except OSError as e:
        log(os.path.join(syncdir, "server.log"), "%d error %r" % (peer[1], e))
        c.close()


def server(addr, sport, syncdir):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, sport))
    s.listen(64)
    s.settimeout(TIMEOUT + 10)
    touch(os.path.join(syncdir, "ready"))
    threads = []
    for _ in range(CONNECTIONS):
        c, peer = s.accept()
        t = threading.Thread(target=serve, args=(c, peer, syncdir))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    s.close()
    touch(os.path.join(syncdir, "server_done"))


# ---------------------------------------------------------------- client
def client(addr, sport, syncdir, cli):
    path = os.path.join(syncdir, "client.log")
    for i in range(CONNECTIONS):
        who = closer(i)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((cli, port(i)))
        s.settimeout(TIMEOUT)
        t0 = time.time()
        s.connect((addr, sport))
        got = []
        for n, size in ((1, REQUEST1_BYTES), (2, REQUEST2_BYTES)):
            s.sendall(message(b"REQ", i, n, who, size))
            got.append(len(recv_line(s)))
        if who == "client":
            s.close()                      # client closes first
            what = "closed first"
        else:
            what = "EOF after %d more bytes, then closed" % recv_eof(s)
            s.close()
        log(path, "%d %s responses=%s %s %.6f-%.6f" % (port(i), who, got, what, t0, time.time()))
        time.sleep(PAUSE_S)
    touch(os.path.join(syncdir, "client_done"))


def main():
    signal.alarm(60)
    role = sys.argv[1]
    if role == "rules":
        print("\n".join(rules(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    elif role == "server":
        server(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif role == "client":
        client(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
