"""A capture N times longer from one real capture: its records written N times back to back,
each copy's timestamps moved past the previous copy's end (pcap, microsecond or nanosecond).

    python bench/repeat_capture.py bench/data/loopback_1000000.pcap 10

writes bench/data/loopback_1000000_x10.pcap: the same traffic for 10x as long, so memory can
be compared (connections alive at once stay the same; the capture grows tenfold). The copies
reuse the same 4-tuples later, as a client cycling through its ports does.
"""
from __future__ import annotations

import argparse
import struct
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", type=Path)
    parser.add_argument("times", type=int)
    args = parser.parse_args()
    data = args.capture.read_bytes()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    first = last = None
    offsets = []
    off = 24
    while off + 16 <= len(data):
        sec, _frac, incl = struct.unpack_from(order + "III", data, off)
        first = sec if first is None else first
        last = sec
        offsets.append(off)
        off += 16 + incl
    if first is None or last is None:
        raise SystemExit(f"{args.capture}: no records")
    shift = last - first + 2
    out_path = args.capture.with_name(f"{args.capture.stem}_x{args.times}.pcap")
    with out_path.open("wb") as out:
        out.write(data[:24])
        body = bytearray(data[24:off])
        for k in range(args.times):
            if k:
                for o in offsets:  # move every record's seconds by one span
                    at = o - 24
                    sec = struct.unpack_from(order + "I", body, at)[0]
                    struct.pack_into(order + "I", body, at, sec + shift)
            out.write(body)
    print(f"wrote {out_path}: {len(offsets) * args.times:,} records")


if __name__ == "__main__":
    main()
