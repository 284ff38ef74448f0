#!/usr/bin/env python3
"""A SYN scan for syn_scan.pcap (scapy, L3 raw socket; run in the client namespace).

    syn_scan.py SRC DST SPORT FIRST_PORT LAST_PORT RATE

Sends one SYN (no ACK, random ISN, MSS option) from SRC:SPORT to every port of DST in
FIRST_PORT..LAST_PORT, in order, paced at RATE per second, like a half-open scanner: no
socket of the sending host owns them, so when a port answers SYN-ACK the sending host's own
kernel answers with an RST (it has no socket for that 4-tuple), and a closed port's RST+ACK
is simply dropped by it.  Prints one line per probe: "<time> <port> <isn>"."""
import random
import sys
import time

from scapy.all import IP, TCP, conf  # type: ignore
from scapy.supersocket import L3RawSocket  # type: ignore

conf.verb = 0
src, dst, sport, first, last, rate = sys.argv[1:7]
sport, first, last, rate = int(sport), int(first), int(last), float(rate)
sock = L3RawSocket()  # the kernel routes and resolves the neighbour
t0 = time.monotonic()
for i, port in enumerate(range(first, last + 1)):
    due = t0 + i / rate
    while time.monotonic() < due:
        time.sleep(max(0.0, min(0.002, due - time.monotonic())))
    isn = random.getrandbits(32)
    sock.send(IP(src=src, dst=dst) / TCP(sport=sport, dport=port, flags="S", seq=isn,
                                         window=1024, options=[("MSS", 1460)]))
    print("%.6f %d %d" % (time.time(), port, isn), flush=True)
sock.close()
