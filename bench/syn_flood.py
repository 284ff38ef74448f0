"""Write a pcap of N SYN-only 4-tuples: one source sweeping targets and ports, as a scanner or a
SYN flood does, every probe a new 4-tuple that nothing answers.

    python bench/syn_flood.py                        # 1,000,000 SYNs over 10 s of capture time
    python bench/syn_flood.py --count 200000 --refused 0.3

writes bench/data/syn_flood.pcap (gitignored). The flow table holds each probe as an incarnation
until its hold ends, so this is the capture that shows what one incarnation costs in memory:

    /usr/bin/time -f "%e s %M KB" teardown analyze bench/data/syn_flood.pcap --workers 0 --quiet

The bytes are built with numpy in one go (scapy would take minutes for a million packets):
Ethernet, IPv4 and TCP with an MSS option, as nmap and masscan send them, checksums included.
`--refused` answers that share of the probes with an RST/ACK from the target (closed ports).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt

DATA_DIR = Path(__file__).resolve().parent / "data"
SOURCE = (10 << 24) | 1  # 10.0.0.1: the scanner
TARGETS = (10 << 24) | (1 << 16)  # 10.1.0.0 onward: the hosts swept
ETHERNET = bytes.fromhex("020000000002" "020000000001" "0800")  # to the target, from the scanner
MSS_OPTION = bytes.fromhex("020405b4")  # MSS 1460
FRAME = 14 + 20 + 24  # Ethernet, IPv4, TCP with the MSS option
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]


def put16(out: U8, at: int, value: npt.NDArray[np.integer]) -> None:
    """Big-endian 16-bit values into column `at` of every row."""
    out[:, at] = (value >> 8) & 0xFF
    out[:, at + 1] = value & 0xFF


def put32(out: U8, at: int, value: npt.NDArray[np.integer]) -> None:
    for k in range(4):
        out[:, at + k] = (value >> (24 - 8 * k)) & 0xFF


def checksum(words: npt.NDArray[np.uint32]) -> U32:
    """The Internet checksum of rows of 16-bit words (RFC 1071): one's complement of their sum."""
    total = words.sum(axis=1, dtype=np.uint64)
    while (total >> 16).any():
        total = (total & 0xFFFF) + (total >> 16)
    return (~total & 0xFFFF).astype(np.uint32)


def frames(src: U32, dst: U32, sport: U32, dport: U32, seq: U32, ack: U32, flags: int,
           ethernet: bytes) -> U8:
    """One TCP segment per row (no payload), headers and checksums filled."""
    n = len(src)
    out = np.zeros((n, FRAME), np.uint8)
    out[:, :14] = np.frombuffer(ethernet, np.uint8)
    ip = 14
    out[:, ip] = 0x45
    put16(out, ip + 2, np.full(n, 20 + 24))
    put16(out, ip + 4, np.arange(n, dtype=np.uint32) & 0xFFFF)  # identification
    out[:, ip + 8] = 64  # TTL
    out[:, ip + 9] = 6  # TCP
    put32(out, ip + 12, src)
    put32(out, ip + 16, dst)
    header = out[:, ip:ip + 20].astype(np.uint32)
    put16(out, ip + 10, checksum(header[:, 0::2] << 8 | header[:, 1::2]))
    tcp = ip + 20
    put16(out, tcp, sport)
    put16(out, tcp + 2, dport)
    put32(out, tcp + 4, seq)
    put32(out, tcp + 8, ack)
    out[:, tcp + 12] = 6 << 4  # data offset: 6 words (the MSS option)
    out[:, tcp + 13] = flags
    put16(out, tcp + 14, np.full(n, 1024))  # window
    out[:, tcp + 20:tcp + 24] = np.frombuffer(MSS_OPTION, np.uint8)
    segment = out[:, tcp:tcp + 24].astype(np.uint32)
    pseudo = np.stack([src >> 16, src & 0xFFFF, dst >> 16, dst & 0xFFFF, np.full(n, 6, np.uint32),
                       np.full(n, 24, np.uint32)], axis=1)
    put16(out, tcp + 16, checksum(np.concatenate([pseudo, segment[:, 0::2] << 8 | segment[:, 1::2]], axis=1)))
    return out


def records(data: U8, ts: npt.NDArray[np.float64]) -> U8:
    """Each row prefixed by its pcap record header (microsecond timestamps, little-endian)."""
    n = len(data)
    head = np.zeros(n, dtype=[("sec", "<u4"), ("usec", "<u4"), ("incl", "<u4"), ("orig", "<u4")])
    usec = np.round(ts * 1e6).astype(np.int64)
    head["sec"], head["usec"] = usec // 1_000_000, usec % 1_000_000
    head["incl"] = head["orig"] = FRAME
    return np.concatenate([head.view(np.uint8).reshape(n, 16), data], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="SYNs, each a new 4-tuple (default 1,000,000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="capture time they span (default 10)")
    parser.add_argument("--hosts", type=int, default=1000, help="target hosts swept (default 1000)")
    parser.add_argument("--refused", type=float, default=0.0,
                        help="share of the probes answered by an RST/ACK 1 ms later (default 0: none answered)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--out", type=Path, default=DATA_DIR / "syn_flood.pcap")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    n = args.count
    probe = rng.permutation(n).astype(np.uint32)  # targets and ports in a scrambled order, as masscan sends them
    dst = (TARGETS + probe % args.hosts).astype(np.uint32)
    dport = (1 + (probe // args.hosts) % 65535).astype(np.uint32)
    sport = (1024 + np.arange(n) % 60000).astype(np.uint32)  # the scanner's source port sweeps too
    src = np.full(n, SOURCE, np.uint32)
    isn = rng.integers(0, 1 << 32, n, dtype=np.uint32)
    ts = 1_700_000_000 + np.arange(n) * (args.seconds / n)
    out = records(frames(src, dst, sport, dport, isn, np.zeros(n, np.uint32), 0x02, ETHERNET), ts)

    refused = np.flatnonzero(rng.random(n) < args.refused)
    if len(refused):
        back = ETHERNET[6:12] + ETHERNET[:6] + ETHERNET[12:]
        answers = records(frames(dst[refused], src[refused], dport[refused], sport[refused], np.zeros(len(refused), np.uint32),
                                 isn[refused] + np.uint32(1), 0x14, back), ts[refused] + 0.001)
        order = np.argsort(np.r_[ts, ts[refused] + 0.001], kind="stable")
        out = np.concatenate([out, answers])[order]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    header = np.array([0xA1B2C3D4, 0x00040002, 0, 0, 65535, 1], "<u4").tobytes()  # pcap 2.4, Ethernet
    with args.out.open("wb") as f:
        f.write(header)
        f.write(out.tobytes())
    print(f"wrote {args.out}: {len(out):,} packets, {n:,} SYN-only 4-tuples"
          f"{f' ({len(refused):,} refused)' if len(refused) else ''} over {args.seconds:g} s")


if __name__ == "__main__":
    main()
