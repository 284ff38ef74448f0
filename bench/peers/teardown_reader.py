"""Peer: `teardown analyze --reader R` on the first --limit records (the slow readers).

    python teardown_reader.py CAPTURE --reader scapy [--limit N]

With --limit, the first N records of the (classic pcap) capture are copied to a temporary
file first (~10 ms per 100,000 records), so run.py can time the slow readers on a prefix and
extrapolate, as it does for scapy and pyshark themselves. Then runs `teardown analyze` with the
summary on the terminal, as the `teardown` peer does. With --limit, prints `packets=<records
analyzed>`.
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile

from teardown.cli import main

ap = argparse.ArgumentParser()
ap.add_argument("capture")
ap.add_argument("--reader", required=True, choices=["auto", "fast", "scapy", "pyshark"])
ap.add_argument("--limit", type=int, default=0, help="analyze only the first N records (0: all)")
args = ap.parse_args()

path, n = args.capture, 0
if args.limit:
    with open(args.capture, "rb") as src, tempfile.NamedTemporaryFile(suffix=".pcap", delete=False) as dst:
        head = src.read(24)
        order = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        dst.write(head)
        while n < args.limit and len(record := src.read(16)) == 16:
            caplen = struct.unpack_from(order + "I", record, 8)[0]
            dst.write(record + src.read(caplen))
            n += 1
        path = dst.name
rc = main(["analyze", path, "--reader", args.reader])
if args.limit:
    os.unlink(path)
    print(f"packets={n}")  # without it, run.py counts the whole file
sys.exit(rc)
