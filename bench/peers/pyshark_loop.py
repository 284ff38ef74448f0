"""Peer: pyshark FileCapture iteration (tshark dissects, pyshark parses its output).

    python pyshark_loop.py CAPTURE [--limit N]

keep_packets=False so memory does not grow with the capture.  pyshark is slow
(a tshark child plus per-packet XML/JSON parsing in Python), so run.py passes
--limit and extrapolates.  Prints `packets=<records read> tcp=<TCP packets>`.
"""
from __future__ import annotations

import argparse

import pyshark  # type: ignore[import-untyped]  # no stubs

ap = argparse.ArgumentParser()
ap.add_argument("capture")
ap.add_argument("--limit", type=int, default=0, help="stop after N records (0: all)")
args = ap.parse_args()

n = tcp = 0
cap = pyshark.FileCapture(args.capture, keep_packets=False)
try:
    for p in cap:
        n += 1
        if "TCP" in p:
            tcp += 1
        if n == args.limit:
            break
finally:
    cap.close()  # stops the tshark child, also when we break early
print(f"packets={n} tcp={tcp}")
