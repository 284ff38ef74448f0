"""Peer: the minimal scapy loop people write first (full dissection of every packet).

    python scapy_loop.py CAPTURE [--limit N]

scapy runs at a few thousand packets/s, so run.py passes --limit to time only the
first N records and extrapolates.  Prints `packets=<records read> tcp=<TCP packets>`.
"""
from __future__ import annotations

import argparse

from scapy.all import TCP, PcapReader  # type: ignore[attr-defined]  # the import users write: its start-up cost counts

ap = argparse.ArgumentParser()
ap.add_argument("capture")
ap.add_argument("--limit", type=int, default=0, help="stop after N records (0: all)")
args = ap.parse_args()

n = tcp = 0
with PcapReader(args.capture) as reader:  # streams: memory stays flat (pcap and pcapng)
    for p in reader:
        n += 1
        if TCP in p:
            tcp += 1
        if n == args.limit:
            break
print(f"packets={n} tcp={tcp}")
