"""The same traffic plain and tunnelled: how much the carriers cost the fast reader.

    python bench/tunnels.py bench/data/loopback_1000000.pcap [--repeat 2]

Every frame of the (Ethernet) capture is re-framed into each encapsulation below, keeping its
bytes, timestamp and order, and `teardown analyze` runs on each file as a fresh process (start-up
included, as a user sees it). Prints wall time, packets/s, the ratio to the plain file and the
peak memory, as a Markdown table. The tunnelled files are written next to the capture once
(`<capture>.<variant>.pcap`) and reused.
"""
from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"  # destination, source MAC
A4, B4 = bytes([198, 19, 0, 1]), bytes([198, 19, 0, 2])
A6, B6 = bytes.fromhex("fd19" + "00" * 13 + "01"), bytes.fromhex("fd19" + "00" * 13 + "02")


def ipv4(proto: int, payload_len: int) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 0, 0x4000, 64, proto, 0, A4, B4)


def udp(port: int, payload_len: int) -> bytes:
    return struct.pack("!HHHH", 49152, port, 8 + payload_len, 0)


def reframe(variant: str, frame: bytes) -> bytes:
    """One Ethernet frame in `variant`."""
    ip = frame[14:]
    if variant == "vlan":
        return frame[:12] + b"\x81\x00\x00\x64" + frame[12:]
    if variant == "qinq_mpls":  # two tags, then a two-label stack
        return (frame[:12] + b"\x88\xa8\x00\x64\x81\x00\x00\xc8\x88\x47"
                + struct.pack("!II", 16001 << 12 | 64, 24001 << 12 | 0x100 | 64) + ip)
    if variant == "vxlan":
        inner = b"\x08\x00\x00\x00\x00\x00\x64\x00" + frame
        return ETH + b"\x08\x00" + ipv4(17, 8 + len(inner)) + udp(4789, len(inner)) + inner
    if variant == "geneve":
        inner = b"\x00\x00\x65\x58\x00\x01\x2c\x00" + frame
        return ETH + b"\x08\x00" + ipv4(17, 8 + len(inner)) + udp(6081, len(inner)) + inner
    if variant == "gre":  # key 7, inner IP as Linux ip_gre sends it
        inner = b"\x20\x00\x08\x00\x00\x00\x00\x07" + ip
        return ETH + b"\x08\x00" + ipv4(47, len(inner)) + inner
    if variant == "gtpu":  # a G-PDU with a PDU session container extension header
        gtp_len = 4 + 4 + len(ip)
        inner = struct.pack("!BBHI", 0x34, 0xFF, gtp_len, 0x1001) + b"\x00\x00\x00\x85\x01\x00\x01\x00" + ip
        return ETH + b"\x08\x00" + ipv4(17, 8 + len(inner)) + udp(2152, len(inner)) + inner
    if variant == "ip6tnl":  # IPv4 in IPv6
        return ETH + b"\x86\xdd" + struct.pack("!IHBB16s16s", 0x60000000, len(ip), 4, 64, A6, B6) + ip
    raise ValueError(variant)


VARIANTS = ("vlan", "qinq_mpls", "vxlan", "geneve", "gre", "gtpu", "ip6tnl")


def write_variant(src: Path, variant: str) -> Path:
    out = src.with_name(f"{src.stem}.{variant}.pcap")
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    data = src.read_bytes()
    if struct.unpack_from("<I", data, 20)[0] != 1:
        sys.exit(f"{src}: an Ethernet (link type 1) pcap is needed")
    parts = [data[:16] + struct.pack("<I", 262144) + data[20:24]]  # a snaplen the larger frames fit
    at = 24
    while at + 16 <= len(data):
        sec, usec, caplen, wirelen = struct.unpack_from("<IIII", data, at)
        frame = data[at + 16: at + 16 + caplen]
        at += 16 + caplen
        new = reframe(variant, frame) if len(frame) >= 14 and frame[12:14] in (b"\x08\x00", b"\x86\xdd") else frame
        grow = len(new) - len(frame)
        parts.append(struct.pack("<IIII", sec, usec, len(new), wirelen + grow) + new)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(b"".join(parts))
    os.replace(tmp, out)
    return out


def run(teardown: list[str], path: Path, repeat: int) -> tuple[float, int, int]:
    """Best wall time of `repeat` runs, its peak RSS (KiB), and the TCP segments it reported."""
    best, rss, segments = float("inf"), 0, 0
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.Popen([*teardown, "analyze", str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out = proc.stdout.read().decode() if proc.stdout else ""
        if status != 0:
            sys.exit(f"teardown failed on {path}:\n{out[-2000:]}")
        if wall < best:
            best, rss = wall, usage.ru_maxrss
            line = next((x for x in out.splitlines() if " TCP segments" in x), "")
            segments = int(line.split(" frames, ")[1].split(" TCP")[0].replace(",", "")) if line else 0
    return best, rss, segments


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture", type=Path)
    ap.add_argument("--repeat", type=int, default=2, help="best of K runs")
    ap.add_argument("--teardown", default=shutil.which("teardown") or "teardown")
    args = ap.parse_args()
    files = {"plain": args.capture} | {v: write_variant(args.capture, v) for v in VARIANTS}
    rows = []
    for name, path in files.items():
        wall, rss, segments = run([args.teardown], path, args.repeat)
        rows.append((name, segments, wall, rss))
        print(f"{name}: {wall:.2f} s", file=sys.stderr)
    base = rows[0][2]
    print("| carried as | TCP segments | wall s | packets/s | time vs plain | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|")
    for name, segments, wall, rss in rows:
        print(f"| {name} | {segments:,} | {wall:.2f} | {segments / wall:,.0f} | {wall / base:.2f}× | {rss / 1024:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
