#!/usr/bin/env python3
"""Crafted handshake segments for make_edge_samples.sh (scapy, L3 raw socket: the kernel routes
and resolves the neighbour).  Run in the client namespace.

    handshake_craft.py gave_up SRC DST SPORT DPORT RST_AFTER [RETRANSMIT_AFTER]
        a SYN (random ISN), optionally the same SYN again RETRANSMIT_AFTER s later, then at
        RST_AFTER s an RST with seq = ISN + 1 and no ACK: a client giving up on its SYN.  The
        Linux kernel never sends that RST (a socket closed in SYN-SENT goes silently), so it is
        crafted; other stacks and scanners do send it (Zeek's RSTOS0).
    handshake_craft.py syn SRC DST SPORT DPORT
        one SYN (random ISN) that no socket of the sending host owns: the peer's SYN-ACK is
        answered by the sending host's own kernel with an RST.

Prints one line per segment sent: "<time> <what> sport=.. seq=.. ack=.."."""
import random
import sys
import time

from scapy.all import IP, TCP, conf  # type: ignore
from scapy.supersocket import L3RawSocket  # type: ignore

conf.verb = 0
OPTS = [("MSS", 1460), ("SAckOK", b""), ("NOP", None), ("WScale", 7)]


def main():
    what, src, dst, sport, dport = sys.argv[1:6]
    sport, dport = int(sport), int(dport)
    sock = L3RawSocket()
    isn = random.getrandbits(32)
    syn = IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="S", seq=isn, window=64240,
                                     options=OPTS)
    t0 = time.monotonic()

    def send(pkt, name):
        sock.send(pkt)
        t = pkt[TCP]
        print("%.6f %s sport=%d seq=%d ack=%d" % (time.time(), name, t.sport, t.seq, t.ack), flush=True)

    send(syn, "SYN")
    if what == "gave_up":
        rst_after = float(sys.argv[6])
        if len(sys.argv) > 7:
            time.sleep(max(0.0, t0 + float(sys.argv[7]) - time.monotonic()))
            send(syn, "SYN_again")
        time.sleep(max(0.0, t0 + rst_after - time.monotonic()))
        send(IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="R",
                                        seq=(isn + 1) & 0xFFFFFFFF, ack=0, window=0), "RST_crafted")
    elif what != "syn":
        raise SystemExit("unknown " + what)
    sock.close()


if __name__ == "__main__":
    main()
