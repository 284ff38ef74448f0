#!/usr/bin/env python3
"""Real-socket endpoints for captures/make/make_samples.sh (standard library only).

Run inside a network namespace (ip netns exec ...):

    peer.py server SCENARIO ADDR PORT SYNCDIR [COUNT]
    peer.py client SCENARIO ADDR PORT SYNCDIR [extra...]

The server touches SYNCDIR/ready once it listens.  Every socket has a timeout
and the whole process an alarm, so nothing here can hang for long.  The client
writes one line per connection to SYNCDIR/client.log:
"<local ip> <local port> <remote ip> <remote port> <note>".
"""
import os
import socket
import struct
import sys
import time
import signal

TIMEOUT = 10.0
signal.alarm(40)  # hard bound for any single helper process


def log(syncdir, line):
    with open(os.path.join(syncdir, "client.log"), "a") as f:
        f.write(line + "\n")


def touch(path, text=""):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def wait_file(path, limit=15.0):
    end = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise SystemExit("timeout waiting for " + path)
        time.sleep(0.005)
    with open(path) as f:
        return f.read()


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def recv_line(s, end=b"\n"):
    buf = b""
    while not buf.endswith(end):
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


def recv_eof(s):
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def sleep_until(t):
    while True:
        d = t - time.time()
        if d <= 0:
            return
        time.sleep(min(d, 0.002) if d < 0.01 else d - 0.005)


HTTP_REQ = (b"GET /status HTTP/1.1\r\nHost: 198.18.0.2:8080\r\n"
            b"User-Agent: teardown-sample/1\r\nConnection: close\r\n\r\n")
HTTP_BODY = b"teardown sample: server closes first\n"
HTTP_RESP = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
             + str(len(HTTP_BODY)).encode() + b"\r\nConnection: close\r\n\r\n" + HTTP_BODY)


# ---------------------------------------------------------------- server side
def serve_one(scn, c, syncdir, idx):
    c.settimeout(TIMEOUT)
    if scn in ("basic", "lost_ack", "tw_kill", "twoif_basic", "many"):
        req = recv_line(c)
        c.sendall(b"PONG " + req[5:])
        recv_eof(c)          # wait for the client's FIN: client closes first
        c.close()
    elif scn in ("http_close", "reuse", "twoif_http"):
        recv_line(c, b"\r\n\r\n")
        c.sendall(HTTP_RESP)
        c.close()            # server closes first
    elif scn in ("linger", "twoif_linger"):
        req = recv_line(c)
        c.sendall(b"PONG " + req[5:])
        try:
            c.recv(100)      # the client's RST arrives here
        except ConnectionResetError:
            pass
        c.close()
    elif scn == "linger_srv":
        req = recv_line(c)
        c.sendall(b"PONG " + req[5:])
        time.sleep(0.1)      # let the client's ACK of the answer go by first
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()            # abortive close by the server: RST, no FIN
    elif scn == "bulk":
        req = recv_line(c)   # "BULK n\n": answer n bytes in 1000-byte writes 10 ms apart (so
        n = int(req.split()[1])   # the client ACKs many segments), then wait for its FIN
        for i in range(0, n, 1000):
            c.sendall(b"%-999d\n" % i if n - i >= 1000 else b"x" * (n - i))
            time.sleep(0.01)
        recv_eof(c)
        c.close()
    elif scn == "simul":
        req = recv_line(c)
        c.sendall(b"PONG " + req[5:])
        go = float(wait_file(os.path.join(syncdir, "go")))
        sleep_until(go)
        c.shutdown(socket.SHUT_WR)
        recv_eof(c)
        c.close()
    elif scn == "half":
        recv_eof(c)          # request then the client's FIN (SHUT_WR)
        t0 = time.time()
        for i in range(7):   # keep sending for ~0.3 s after the client's FIN
            c.sendall(b"chunk %d after client FIN, t+%.2fs\n" % (i, time.time() - t0))
            time.sleep(0.05)
        c.close()
    elif scn == "midstream":
        while True:
            line = recv_line(c)
            if not line:
                break
            c.sendall(b"ACK " + line)
        c.close()
    else:
        raise SystemExit("unknown scenario " + scn)


def server(scn, addr, port, syncdir, count=1):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    s.settimeout(TIMEOUT + 10)
    touch(os.path.join(syncdir, "ready"))
    if scn == "listen":      # a listener that is only probed (syn_scan): never accepts
        wait_file(os.path.join(syncdir, "stop"), 30.0)
        s.close()
        touch(os.path.join(syncdir, "server_done"))
        return
    for i in range(count):
        c, _ = s.accept()
        serve_one(scn, c, syncdir, i)
    s.close()
    touch(os.path.join(syncdir, "server_done"))


# ---------------------------------------------------------------- client side
def connect(addr, port, bind=None, reuse=False, timeout=TIMEOUT):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if bind is not None:
        s.bind(bind)
    s.settimeout(timeout)
    s.connect((addr, port))
    return s


def note(syncdir, s, text):
    la = s.getsockname()
    ra = s.getpeername()
    log(syncdir, "%s %d %s %d %s" % (la[0], la[1], ra[0], ra[1], text))


def ping_close(addr, port, syncdir, text, n=1, **kw):
    s = connect(addr, port, **kw)
    note(syncdir, s, text)
    s.sendall(b"PING %d\n" % n)
    recv_line(s)
    s.close()                # client closes first
    return s


def http_close(addr, port, syncdir, text, **kw):
    s = connect(addr, port, **kw)
    note(syncdir, s, text)
    s.sendall(HTTP_REQ)
    recv_eof(s)              # server closes first
    local = s.getsockname()
    s.close()
    return local


def set_ts_mode(mode):
    with open("/proc/sys/net/ipv4/tcp_timestamps", "w") as f:
        f.write(mode)


def client(scn, addr, port, syncdir, extra):
    if scn in ("basic", "lost_ack", "twoif_basic"):
        ping_close(addr, port, syncdir, scn)
    elif scn == "tw_kill":
        ping_close(addr, port, syncdir, "exact_rst_target", 1)
        ping_close(addr, port, syncdir, "wrong_rst_target", 2)
    elif scn in ("http_close", "twoif_http"):
        http_close(addr, port, syncdir, scn)
    elif scn in ("linger", "twoif_linger"):
        s = connect(addr, port)
        note(syncdir, s, scn)
        s.sendall(b"PING 1\n")
        recv_line(s)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()            # abortive close: RST, no FIN
    elif scn == "linger_srv":
        s = connect(addr, port)
        note(syncdir, s, scn)
        s.sendall(b"PING 1\n")
        recv_line(s)
        try:
            data = s.recv(100)   # the server's RST arrives here
            log(syncdir, "server_eof %r" % data)
        except ConnectionResetError:
            log(syncdir, "ECONNRESET")
        s.close()            # nothing left to send: the socket is already CLOSED
    elif scn == "bulk":
        s = connect(addr, port)
        note(syncdir, s, scn)
        s.sendall(b"BULK 20000\n")   # then 20 x 1000 bytes back, 10 ms apart
        got = 0
        while got < 20000:
            chunk = s.recv(4096)   # small reads: the client ACKs as the data comes
            if not chunk:
                break
            got += len(chunk)
        log(syncdir, "bulk_received %d" % got)
        s.close()            # client closes first
    elif scn == "repeated_syn":
        # one source port, a new socket per attempt (a new ISN each time); the server netns
        # drops the SYNs until the script removes the rule and touches SYNCDIR/go
        n, cport = int(extra[0]), int(extra[1])
        for i in range(n):
            s = socket.socket(family(addr), socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((extra[2], cport))
            s.settimeout(0.2)
            try:
                s.connect((addr, port))
                log(syncdir, "attempt %d connected (unexpected)" % (i + 1))
            except (socket.timeout, TimeoutError):
                log(syncdir, "attempt %d timeout" % (i + 1))
            finally:
                s.close()    # a socket in SYN_SENT closes silently (no RST)
        touch(os.path.join(syncdir, "attempts_done"))
        wait_file(os.path.join(syncdir, "go"))
        s = connect(addr, port, bind=(extra[2], cport), reuse=True, timeout=5.0)
        note(syncdir, s, "attempt %d" % (n + 1))
        s.sendall(b"PING 1\n")
        recv_line(s)
        s.close()            # client closes first
    elif scn == "simul":
        s = connect(addr, port)
        note(syncdir, s, scn)
        s.sendall(b"PING 1\n")
        recv_line(s)
        go = time.time() + 0.3
        touch(os.path.join(syncdir, "go"), repr(go))
        sleep_until(go)
        s.shutdown(socket.SHUT_WR)
        recv_eof(s)
        s.close()
    elif scn == "half":
        s = connect(addr, port)
        note(syncdir, s, scn)
        s.sendall(b"REQUEST stream please\n")
        s.shutdown(socket.SHUT_WR)   # half-close; keep reading
        recv_eof(s)
        s.close()
    elif scn == "reuse":
        # 1st incarnation: ephemeral port, server closes first (server TIME_WAIT)
        paws = bool(extra) and extra[0] == "paws"
        if paws:
            set_ts_mode(extra[1])
        local = http_close(addr, port, syncdir, "first")
        time.sleep(0.5)
        if paws:
            # make the next SYN carry a TSval that is *older* than the one the
            # server's TIME_WAIT remembers: switch the timestamp offset mode
            # (1 = random per-address-pair offset, 2 = no offset)
            set_ts_mode(extra[2])
        # 2nd incarnation: same local port, within the server's TIME_WAIT
        http_close(addr, port, syncdir, "second", bind=local, reuse=True)
    elif scn == "refused":
        try:
            connect(addr, port)
        except ConnectionRefusedError:
            log(syncdir, "refused")
    elif scn == "unanswered":
        try:
            connect(addr, port, timeout=3.0)
        except (socket.timeout, TimeoutError):
            log(syncdir, "timeout")
    elif scn == "many":
        n = int(extra[0]) if extra else 20
        done = 0
        end = time.monotonic() + 30
        while done < n and time.monotonic() < end:
            try:
                ping_close(addr, port, syncdir, "conn%d" % done, done)
                done += 1
            except OSError as e:   # EADDRNOTAVAIL while all tuples are young TIME_WAITs
                log(syncdir, "connect-failed %s" % e.errno)
                time.sleep(0.1)
    elif scn == "midstream":
        s = connect(addr, port)
        note(syncdir, s, scn)
        for i in range(10):
            if i == 3:
                touch(os.path.join(syncdir, "established"))
                wait_file(os.path.join(syncdir, "go"))
            s.sendall(b"data line %d\n" % i)
            recv_line(s)
            time.sleep(0.05)
        s.close()
    else:
        raise SystemExit("unknown scenario " + scn)
    touch(os.path.join(syncdir, "client_done"))


def main():
    role, scn, addr, port, syncdir = sys.argv[1:6]
    rest = sys.argv[6:]
    if role == "server":
        server(scn, addr, int(port), syncdir, int(rest[0]) if rest else 1)
    else:
        client(scn, addr, int(port), syncdir, rest)


if __name__ == "__main__":
    main()
