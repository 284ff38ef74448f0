#!/usr/bin/env python3
"""Real-socket endpoints for captures/make/make_verdict_samples.sh (standard library only).

Run inside a network namespace (ip netns exec ...):

    verdict_peer.py server SCENARIO ADDR PORT SYNCDIR [COUNT]
    verdict_peer.py client SCENARIO ADDR PORT SYNCDIR

Like peer.py (the server touches SYNCDIR/ready once it listens; the client writes one line per
connection to SYNCDIR/client.log: "<local ip> <local port> <remote ip> <remote port> <note>"),
with the scenarios that wait for the script between steps (SYNCDIR/<name> files), so they run
longer than peer.py allows (an alarm of 150 s here: reuse_after waits out a TIME_WAIT).

Scenarios:
  fin_then_rst   client: request, shutdown(SHUT_WR); the server sends 3 lines it never reads;
                 then close() with the data unread: the kernel sends an RST (tcp_close)
  oow            client: PING 1 / PONG 1, waits while the script injects an out-of-window RST,
                 then PING 2 / PONG 2 on the same connection and close()s first
  idle_abort     client: PING 1 / PONG 1, waits while the script starts the capture, then
                 SO_LINGER {1,0} close(): an RST is the only segment the capture shows
  retrans        server: a 300-byte answer, 50 ms later close() (its FIN); the client reads to
                 EOF and close()s (the script drops the answer once, after the tap)
  new_data       client: PING 1 / PONG 1, shutdown(SHUT_WR), waits while the script sends a
                 crafted segment after that FIN, reads to EOF and close()s; the server close()s
                 after the script says so
  reuse_after    two HTTP/1.1 'Connection: close' exchanges (server closes first) from one client
                 port, the second once the script has seen the server's TIME_WAIT end
"""
import fcntl
import os
import socket
import struct
import sys
import termios
import signal
import time

# The helpers every sample's endpoints share.
from peer import log, recv_eof, recv_line, touch  # noqa: E402

TIMEOUT = 10.0
signal.alarm(150)  # hard bound for any single helper process

HTTP_REQ = (b"GET /status HTTP/1.1\r\nHost: 198.18.0.2:8080\r\n"
            b"User-Agent: teardown-sample/1\r\nConnection: close\r\n\r\n")
HTTP_BODY = b"teardown sample: server closes first\n"
HTTP_RESP = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
             + str(len(HTTP_BODY)).encode() + b"\r\nConnection: close\r\n\r\n" + HTTP_BODY)
ANSWER_300 = (b"ANSWER " + b"x" * 292 + b"\n")  # 300 bytes: IPv4 total length 352 with timestamps
assert len(ANSWER_300) == 300


def wait_file(path, limit=15.0):
    end = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise SystemExit("timeout waiting for " + path)
        time.sleep(0.005)



def unread_bytes(s):
    """Bytes waiting in the socket's receive queue (SIOCINQ, = FIONREAD)."""
    buf = fcntl.ioctl(s.fileno(), termios.FIONREAD, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


def note(syncdir, s, text):
    la, ra = s.getsockname(), s.getpeername()
    log(syncdir, "%s %d %s %d %s" % (la[0], la[1], ra[0], ra[1], text))


# ---------------------------------------------------------------- server side
def serve_one(scn, c, syncdir):
    c.settimeout(TIMEOUT)
    if scn == "fin_then_rst":
        recv_eof(c)                       # the request, then the client's FIN
        for i in range(3):                # data the client will never read
            c.sendall(b"line %d the client will not read\n" % i)
        touch(os.path.join(syncdir, "sent"))
        # no recv(): it would return the client's EOF at once. Wait until the client has
        # close()d, then read the socket's pending error: ECONNRESET once its RST arrived
        wait_file(os.path.join(syncdir, "closed"))
        time.sleep(0.1)
        err = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        touch(os.path.join(syncdir, "server_saw"), "SO_ERROR %d (%s)\n" % (err, os.strerror(err)))
        c.close()                         # the socket is CLOSED already: nothing is sent
    elif scn in ("oow", "basic"):
        while True:                       # answer each line until the client's FIN
            line = recv_line(c)
            if not line:
                break
            c.sendall(b"PONG " + line[5:])
        c.close()
    elif scn == "idle_abort":
        line = recv_line(c)
        c.sendall(b"PONG " + line[5:])
        c.settimeout(30)
        try:
            got = c.recv(100)             # the client's RST arrives here
            touch(os.path.join(syncdir, "server_saw"), "recv %r\n" % got)
        except ConnectionResetError:
            touch(os.path.join(syncdir, "server_saw"), "ECONNRESET\n")
        c.close()
    elif scn == "retrans":
        recv_line(c)
        c.sendall(ANSWER_300)
        time.sleep(0.05)                  # the answer is on the wire before the FIN
        c.close()                         # server closes first
    elif scn == "new_data":
        line = recv_line(c)
        c.sendall(b"PONG " + line[5:])
        recv_eof(c)                       # the client's FIN: CLOSE_WAIT
        wait_file(os.path.join(syncdir, "go"))
        c.close()
    elif scn == "reuse_after":
        recv_line(c, b"\r\n\r\n")
        c.sendall(HTTP_RESP)
        c.close()                         # server closes first: server TIME_WAIT
    else:
        raise SystemExit("unknown scenario " + scn)


def server(scn, addr, port, syncdir, count=1):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    s.settimeout(120)
    touch(os.path.join(syncdir, "ready"))
    for _ in range(count):
        c, _ = s.accept()
        serve_one(scn, c, syncdir)
    s.close()
    touch(os.path.join(syncdir, "server_done"))


# ---------------------------------------------------------------- client side
def connect(addr, port, bind=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if bind is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(bind)
    s.settimeout(TIMEOUT)
    s.connect((addr, port))
    return s


def http_close(addr, port, syncdir, text, bind=None):
    s = connect(addr, port, bind)
    note(syncdir, s, text)
    s.sendall(HTTP_REQ)
    recv_eof(s)                           # server closes first
    local = s.getsockname()
    s.close()
    return local


def client(scn, addr, port, syncdir):
    sync = lambda name: os.path.join(syncdir, name)  # noqa: E731
    if scn == "fin_then_rst":
        s = connect(addr, port)
        note(syncdir, s, scn)
        s.sendall(b"REQUEST send me lines\n")
        s.shutdown(socket.SHUT_WR)        # FIN; the socket stays open for reading
        wait_file(sync("sent"))
        time.sleep(0.2)                   # every line has arrived (and been ACKed)
        log(syncdir, "unread_before_close %d" % unread_bytes(s))
        s.close()                         # unread data: RST instead of waiting for the peer's FIN
        touch(sync("closed"))
    elif scn == "oow":
        s = connect(addr, port)
        note(syncdir, s, scn)
        s.sendall(b"PING 1\n")
        recv_line(s)
        touch(sync("established"))
        wait_file(sync("go"), 30)         # the script injected the RST and looked at ss/nstat
        s.sendall(b"PING 2\n")
        log(syncdir, "after_rst_answer %r" % recv_line(s))
        s.close()                         # client closes first
    elif scn == "idle_abort":
        s = connect(addr, port)
        note(syncdir, s, scn)
        s.sendall(b"PING 1\n")
        recv_line(s)
        touch(sync("established"))
        wait_file(sync("go"), 30)         # the capture has started
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()                         # abortive close: RST, no FIN
    elif scn == "basic":
        s = connect(addr, port)
        note(syncdir, s, scn)
        s.sendall(b"PING 1\n")
        recv_line(s)
        s.close()                         # client closes first
    elif scn == "retrans":
        s = connect(addr, port)
        note(syncdir, s, scn)
        s.sendall(b"GET answer\n")
        log(syncdir, "received %d" % len(recv_eof(s)))
        s.close()
    elif scn == "new_data":
        s = connect(addr, port)
        note(syncdir, s, scn)
        s.sendall(b"PING 1\n")
        recv_line(s)
        s.shutdown(socket.SHUT_WR)        # the client's FIN
        touch(sync("fin_sent"))
        s.settimeout(30)
        log(syncdir, "received_after_fin %r" % recv_eof(s))
        s.close()
    elif scn == "reuse_after":
        local = http_close(addr, port, syncdir, "first")
        touch(sync("first_done"), "%s %d" % local)
        wait_file(sync("go"), 120)        # the server's TIME_WAIT has ended (ss)
        http_close(addr, port, syncdir, "second", bind=local)
    else:
        raise SystemExit("unknown scenario " + scn)
    touch(sync("client_done"))


def main():
    role, scn, addr, port, syncdir = sys.argv[1:6]
    rest = sys.argv[6:]
    if role == "server":
        server(scn, addr, int(port), syncdir, int(rest[0]) if rest else 1)
    else:
        client(scn, addr, int(port), syncdir)


if __name__ == "__main__":
    main()
