"""Peer: a minimal dpkt loop that does a little of teardown's job.

    python dpkt_flows.py CAPTURE

Parses Ethernet/IP/TCP for every record and keeps, per connection (direction-free
4-tuple), packet count and the OR of TCP flags -- the least state needed to say how
a connection ended.  Prints `packets=<records> tcp=<TCP packets> flows=<4-tuples>`.
"""
from __future__ import annotations

import argparse

import dpkt  # type: ignore[import-untyped]  # no stubs

ap = argparse.ArgumentParser()
ap.add_argument("capture")
args = ap.parse_args()

flows: dict[tuple[bytes, int, bytes, int], list[int]] = {}
n = tcp = 0
with open(args.capture, "rb") as f:
    for _ts, buf in dpkt.pcap.UniversalReader(f):  # pcap or pcapng
        n += 1
        ip = dpkt.ethernet.Ethernet(buf).data  # Linux lo is DLT_EN10MB
        if not isinstance(ip, dpkt.ip.IP) or not isinstance(ip.data, dpkt.tcp.TCP):
            continue
        t = ip.data
        tcp += 1
        a, b = (ip.src, t.sport), (ip.dst, t.dport)
        key = (*a, *b) if a <= b else (*b, *a)  # one entry for both directions
        st = flows.get(key)
        if st is None:
            flows[key] = [1, t.flags]
        else:
            st[0] += 1
            st[1] |= t.flags
print(f"packets={n} tcp={tcp} flows={len(flows)}")
