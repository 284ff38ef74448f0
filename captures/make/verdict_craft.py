#!/usr/bin/env python3
"""Crafted segments for make_verdict_samples.sh (scapy, L3 raw socket: the kernel routes and
resolves the neighbour), sent into REAL connections whose numbers are read from the capture
being written (tcpdump -U), as rst_inject.py does.

    verdict_craft.py rst_oow PCAP FROM_IP FROM_PORT TO_IP TO_PORT
        an RST+ACK from FROM to TO with seq = FROM's next sequence number + 2**30: beyond any
        window TO can have advertised (at most 2**30, RFC 7323 §2.3), so outside it; ack = TO's
        next sequence number. Run in FROM's netns.
    verdict_craft.py data_after_fin PCAP FROM_IP FROM_PORT TO_IP TO_PORT
        a data segment (PSH+ACK, 19 bytes) from FROM to TO with seq = FROM's FIN + 1: new data
        after the sender's own FIN, which no kernel sends (RFC 9293 §3.10.2: a SEND after CLOSE
        is refused); ack = TO's next sequence number. Run in FROM's netns.

Prints one line: what was sent and the numbers it was built from."""
import sys

from scapy.all import IP, TCP, Raw, conf, rdpcap  # type: ignore
from scapy.supersocket import L3RawSocket  # type: ignore

conf.verb = 0
M32 = 0xFFFFFFFF
NEW_DATA = b"NEW DATA after FIN\n"


def state(pcap, a, b):
    """Per direction of the 4-tuple (a -> b, b -> a): next sequence number, FIN seq, last ack,
    last window (raw, as on the wire)."""
    out = {a: dict(nxt=None, fin=None, ack=None, win=None), b: dict(nxt=None, fin=None, ack=None, win=None)}
    for p in rdpcap(pcap):
        if IP not in p or TCP not in p:
            continue
        ip, t = p[IP], p[TCP]
        src, dst = (ip.src, t.sport), (ip.dst, t.dport)
        if (src, dst) not in ((a, b), (b, a)) or t.flags & 0x04:
            continue
        plen = ip.len - ip.ihl * 4 - t.dataofs * 4
        d = out[src]
        end = (t.seq + plen + (1 if t.flags & 0x02 else 0) + (1 if t.flags & 0x01 else 0)) & M32
        d["nxt"] = end
        if t.flags & 0x01:
            d["fin"] = t.seq + plen
        if t.flags & 0x10:
            d["ack"], d["win"] = t.ack, t.window
    return out


def main():
    what, pcap, fip, fport, tip, tport = sys.argv[1:7]
    a, b = (fip, int(fport)), (tip, int(tport))
    st = state(pcap, a, b)
    sock = L3RawSocket()
    if what == "rst_oow":
        seq = (st[a]["nxt"] + (1 << 30)) & M32
        pkt = IP(src=fip, dst=tip) / TCP(sport=a[1], dport=b[1], flags="RA", seq=seq, ack=st[b]["nxt"], window=0)
        sock.send(pkt)
        print("rst_oow from=%s:%d to=%s:%d sender_next_seq=%d receiver_last_ack=%d receiver_last_window_raw=%d "
              "rst_seq=%d rst_ack=%d (seq = sender next + 2**30)"
              % (fip, a[1], tip, b[1], st[a]["nxt"], st[b]["ack"], st[b]["win"], seq, st[b]["nxt"]))
    elif what == "data_after_fin":
        if st[a]["fin"] is None:
            raise SystemExit("no FIN from %s:%d in %s" % (fip, a[1], pcap))
        seq = (st[a]["fin"] + 1) & M32
        pkt = IP(src=fip, dst=tip) / TCP(sport=a[1], dport=b[1], flags="PA", seq=seq, ack=st[b]["nxt"],
                                         window=st[a]["win"] or 502) / Raw(NEW_DATA)
        sock.send(pkt)
        print("data_after_fin from=%s:%d to=%s:%d sender_fin_seq=%d data_seq=%d data_len=%d ack=%d"
              % (fip, a[1], tip, b[1], st[a]["fin"], seq, len(NEW_DATA), st[b]["nxt"]))
    else:
        raise SystemExit("unknown " + what)
    sock.close()


if __name__ == "__main__":
    main()
