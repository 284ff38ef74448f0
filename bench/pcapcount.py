"""Count the packet records of a pcap or pcapng file, without any dependency.

Both bench scripts need the record count: make_capture.py to report what it wrote,
run.py because packets/second is always "records in the file / wall time", whatever
each peer thinks it counted.  Reading record headers and seeking
over the packet bytes is ~0.6 s per 1M records, and keeps this process small (an
mmap would add the whole file to its RSS, and run.py's children would inherit that
high-water mark at fork+exec).
"""
from __future__ import annotations

import os
import struct
import sys
from typing import BinaryIO

_PCAP_LE = {b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"}  # micro- and nanosecond magics
_PCAP_BE = {b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_PCAPNG_PACKET_BLOCKS = {2, 3, 6}  # obsolete Packet Block, Simple PB, Enhanced PB


def count_records(path: str) -> int:
    """Number of complete packet records; a record cut short at EOF is not counted."""
    size = os.path.getsize(path)
    with open(path, "rb", buffering=1 << 20) as f:
        magic = f.read(4)
        if magic in _PCAP_LE or magic in _PCAP_BE:
            return _count_pcap(f, size, "<" if magic in _PCAP_LE else ">")
        if magic == _PCAPNG_SHB:
            return _count_pcapng(f, size)
        raise ValueError(f"{path}: not a pcap or pcapng file (magic {magic.hex()})")


def _count_pcap(f: BinaryIO, size: int, endian: str) -> int:
    incl_len = struct.Struct(endian + "I").unpack_from
    f.seek(24)
    n = 0
    while len(hdr := f.read(16)) == 16:
        f.seek(incl_len(hdr, 8)[0], os.SEEK_CUR)
        n += 1
    return n - (f.tell() > size)  # the last record was truncated (writer killed)


def _count_pcapng(f: BinaryIO, size: int) -> int:
    f.seek(0)
    n, endian = 0, "<"
    while len(hdr := f.read(12)) == 12:
        if hdr[:4] == _PCAPNG_SHB:  # each section may switch byte order
            endian = "<" if hdr[8:] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, blen = struct.unpack_from(endian + "II", hdr)
        if blen < 12 or f.tell() - 12 + blen > size:
            break
        n += btype in _PCAPNG_PACKET_BLOCKS
        f.seek(blen - 12, os.SEEK_CUR)
    return n


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(f"{count_records(p)}\t{p}")
