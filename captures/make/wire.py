#!/usr/bin/env python3
"""A userspace "wire" for captures/make/make_samples.sh (standard library only).

This kernel has neither sch_netem nor 8021q, so delay and VLAN tagging are done
by this small forwarder, run in a middle namespace with AF_PACKET sockets:

    wire.py delay A B MS SECONDS
        forwards every frame A->B and B->A, each after MS milliseconds.
    wire.py vlan A TA TB B VID SECONDS
        A->TA with an 802.1Q tag VID pushed; frames arriving on TB (the veth
        peer of TA) are forwarded untagged to B, and the same the other way
        (B->TB tagged, TA->A untagged).  A capture on TA or TB sees tagged
        frames in both directions.

Frames are sent exactly as received (the TCP/IP stacks at both ends are the
real Linux ones); the process stops itself after SECONDS.
"""
import collections
import os
import socket
import struct
import sys
import threading
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4


def open_if(name):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((name, 0))
    s.settimeout(0.5)
    return s


def recv_frame(s):
    """Return the frame as it was on the wire (re-inserting a VLAN tag the
    kernel moved to metadata), or None for our own outgoing frames."""
    data, anc, _flags, addr = s.recvmsg(65600, socket.CMSG_SPACE(32))
    if addr[2] == PACKET_OUTGOING:
        return None
    for level, typ, cdata in anc:
        if level == SOL_PACKET and typ == PACKET_AUXDATA and len(cdata) >= 24:
            (status, _len, _snap, _mac, _net, tci, tpid) = struct.unpack("IIIHHHH", cdata[:20])
            if status & TP_STATUS_VLAN_VALID:
                tpid = tpid or 0x8100
                data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
    return data


def push_tag(frame, vid):
    return frame[:12] + struct.pack("!HH", 0x8100, vid) + frame[12:]


def pop_tag(frame):
    if frame[12:14] == b"\x81\x00":
        return frame[:12] + frame[16:]
    return frame


def pump(src, dst, stop, delay=0.0, xform=None):
    q = collections.deque()
    cv = threading.Condition()

    def sender():
        while not stop.is_set():
            with cv:
                while not q and not stop.is_set():
                    cv.wait(0.2)
                if stop.is_set():
                    return
                due, frame = q.popleft()
            d = due - time.monotonic()
            if d > 0:
                time.sleep(d)
            dst.send(frame)

    if delay:
        threading.Thread(target=sender, daemon=True).start()
    while not stop.is_set():
        try:
            frame = recv_frame(src)
        except socket.timeout:
            continue
        if frame is None:
            continue
        if xform:
            frame = xform(frame)
        if delay:
            with cv:
                q.append((time.monotonic() + delay, frame))
                cv.notify()
        else:
            dst.send(frame)


def main():
    mode = sys.argv[1]
    stop = threading.Event()
    threads = []
    if mode == "delay":
        a, b, ms, secs = sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
        sa, sb = open_if(a), open_if(b)
        threads += [threading.Thread(target=pump, args=(sa, sb, stop, ms / 1000.0)),
                    threading.Thread(target=pump, args=(sb, sa, stop, ms / 1000.0))]
    elif mode == "vlan":
        a, ta, tb, b, vid, secs = sys.argv[2:8]
        vid, secs = int(vid), float(secs)
        sa, sta, stb, sb = open_if(a), open_if(ta), open_if(tb), open_if(b)
        tag = lambda f: push_tag(f, vid)  # noqa: E731
        threads += [threading.Thread(target=pump, args=(sa, sta, stop, 0, tag)),
                    threading.Thread(target=pump, args=(stb, sb, stop, 0, pop_tag)),
                    threading.Thread(target=pump, args=(sb, stb, stop, 0, tag)),
                    threading.Thread(target=pump, args=(sta, sa, stop, 0, pop_tag))]
    else:
        raise SystemExit("mode?")
    for t in threads:
        t.daemon = True
        t.start()
    ready = os.environ.get("WIRE_READY")
    if ready:
        open(ready, "w").close()
    time.sleep(secs)
    stop.set()


if __name__ == "__main__":
    main()
