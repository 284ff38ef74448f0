#!/usr/bin/env python3
"""Real-socket endpoints for the capture-loss samples of make_edge_samples.sh (standard library).

Run inside a network namespace (ip netns exec ...):

    edge_peer.py server DIR ADDR PORT SYNCDIR MODE...
    edge_peer.py client DIR ADDR PORT SYNCDIR MODE...

DIR is s2c (the server sends the data) or c2s (the client sends it).  One connection per MODE,
in order, the client connecting only after the previous one is over.  Every socket has
TCP_NODELAY and the sender writes one chunk every 10 ms, so each write is one segment.

    stream     the sender writes 10 x 200 bytes; the client closes first (after reading all of
               it, or right after its last write), the server closes when it reads EOF
    retrans    the same, but write 6 (index 5) is 150 bytes: the receiver's netns drops that
               segment once (iptables, length 202), so the sender retransmits it
    abort      the sender writes 10 x 200 bytes, waits 0.1 s (the receiver ACKs everything),
               then closes with SO_LINGER {1,0}: an RST, no FIN
    issue_fin  (s2c only) the client sends a request line; the server answers 1000 + 1000 + 902
               bytes (10 ms apart) and closes at once: its FIN follows its data
    hold       the sender writes 10 x 200 bytes; the client waits 0.2 s (ACKs go by), touches
               SYNCDIR/held and waits for SYNCDIR/go before it closes (the script stops the
               capture in between, so the capture ends with the connection open)

The client writes one line per connection to SYNCDIR/client.log:
"<local ip> <local port> <remote ip> <remote port> <mode> <note>".
"""
import os
import socket
import struct
import sys
import time
import signal

from peer import touch, wait_file  # the same sync files as the other samples' peers

TIMEOUT = 10.0
N, SIZE = 10, 200
RETRANS_INDEX, RETRANS_SIZE = 5, 150
ISSUE_SIZES = (1000, 1000, 902)   # 2,902 bytes, as in the example of issue 20
signal.alarm(40)


def log(syncdir, line):
    with open(os.path.join(syncdir, "client.log"), "a") as f:
        f.write(line + "\n")


def sizes(mode):
    if mode == "issue_fin":
        return list(ISSUE_SIZES)
    out = [SIZE] * N
    if mode == "retrans":
        out[RETRANS_INDEX] = RETRANS_SIZE
    return out


def send_chunks(s, mode, tag):
    for i, n in enumerate(sizes(mode)):
        head = b"%s %s %02d " % (tag, mode.encode(), i)
        s.sendall(head.ljust(n - 1, b".")[:n - 1] + b"\n")
        time.sleep(0.01)


def recv_n(s, n):
    got = 0
    while got < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += len(chunk)
    return got


def recv_eof(s):
    got = 0
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return got, "eof"
            got += len(chunk)
    except ConnectionResetError:
        return got, "ECONNRESET"


def abort(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()                # abortive close: RST, no FIN


def nodelay(s):
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(TIMEOUT)


def server(d, addr, port, syncdir, modes):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(16)
    ls.settimeout(TIMEOUT + 10)
    touch(os.path.join(syncdir, "ready"))
    for mode in modes:
        c, _ = ls.accept()
        nodelay(c)
        if d == "s2c":
            if mode == "issue_fin":
                c.recv(100)                  # the request line
                send_chunks(c, mode, b"srv")
                c.close()                    # server closes first, FIN right after its data
            elif mode == "abort":
                send_chunks(c, mode, b"srv")
                time.sleep(0.1)
                abort(c)
            else:                            # stream, retrans, hold
                send_chunks(c, mode, b"srv")
                recv_eof(c)
                c.close()
        else:
            recv_eof(c)                      # data, then the client's FIN (or its RST)
            c.close()
    ls.close()
    touch(os.path.join(syncdir, "server_done"))


def client(d, addr, port, syncdir, modes):
    for mode in modes:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        nodelay(s)
        s.connect((addr, port))
        la, ra = s.getsockname(), s.getpeername()
        total = sum(sizes(mode))
        note = ""
        if d == "s2c":
            if mode == "issue_fin":
                s.sendall(b"GET /response\n")
                got, how = recv_eof(s)
                note = "received %d then %s" % (got, how)
                s.close()
            elif mode == "abort":
                got, how = recv_eof(s)
                note = "received %d then %s" % (got, how)
                s.close()
            else:
                got = recv_n(s, total)
                note = "received %d" % got
                if mode == "hold":
                    time.sleep(0.2)
                    touch(os.path.join(syncdir, "held"))
                    wait_file(os.path.join(syncdir, "go"), 20.0)
                s.close()                    # client closes first
        else:
            send_chunks(s, mode, b"cli")
            note = "sent %d" % total
            if mode == "abort":
                time.sleep(0.1)
                abort(s)
            else:
                if mode == "hold":
                    time.sleep(0.2)
                    touch(os.path.join(syncdir, "held"))
                    wait_file(os.path.join(syncdir, "go"), 20.0)
                s.close()                    # client closes first
        log(syncdir, "%s %d %s %d %s %s" % (la[0], la[1], ra[0], ra[1], mode, note))
        time.sleep(0.1)
    touch(os.path.join(syncdir, "client_done"))


def main():
    role, d, addr, port, syncdir = sys.argv[1:6]
    modes = sys.argv[6:]
    (server if role == "server" else client)(d, addr, int(port), syncdir, modes)


if __name__ == "__main__":
    main()
