"""Frames -> a pcapng file (--write): one section, one interface with nanosecond timestamps,
an Enhanced Packet Block per frame, and at the end the interface's statistics (packets
received and dropped by the kernel) in an Interface Statistics Block. Written and flushed batch
by batch, so a stop at any moment leaves a readable file.

The file replaces any previous one once the capture has started (interface open, filter
compiled: a failed start leaves it untouched), with its header already in it (outputs.Staged),
and grows under its own name, so it can be read while the capture runs."""

from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from ..outputs import Staged
from ..read import FrameBatch

SHB, IDB, EPB, ISB = 0x0A0D0D0A, 0x00000001, 0x00000006, 0x00000005
OPT_END, OPT_COMMENT, IF_NAME, IF_TSRESOL = 0, 1, 2, 9
ISB_STARTTIME, ISB_ENDTIME, ISB_IFRECV, ISB_IFDROP = 2, 3, 4, 5
NS_TSRESOL = 9  # if_tsresol: 10^-9 s


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(kind: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


class PcapngWriter:
    def __init__(self, path: str, linktype: int, snaplen: int, iface: str, comment: str) -> None:
        self.path = path
        self.file = Staged(path, "--write")
        self.fh: BinaryIO = self.file.fh
        shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _option(OPT_COMMENT, comment.encode()) + _option(OPT_END, b"")
        idb = (struct.pack("<HHI", linktype, 0, snaplen) + _option(IF_NAME, iface.encode())
               + _option(IF_TSRESOL, bytes([NS_TSRESOL])) + _option(OPT_END, b""))
        try:
            self.fh.write(_block(SHB, shb) + _block(IDB, idb))
            self.fh.flush()
            self.file.publish()
        except OSError as e:
            self.file.discard()
            raise self.file.cannot(e) from None
        except BaseException:
            self.file.discard()
            raise
        self.first_ns: int | None = None
        self.last_ns = 0
        self.frames = 0

    def write(self, batch: FrameBatch, ts_ns: npt.NDArray[np.int64]) -> None:
        n = len(batch)
        if not n:
            return
        caplen = batch.caplen.astype(np.int64)
        padded = (caplen + 3) & ~3
        size = 32 + padded
        start = np.zeros(n + 1, np.int64)
        np.cumsum(size, out=start[1:])
        out = np.zeros(int(start[-1]), np.uint8)
        words = out.view("<u4")
        at = start[:-1] // 4
        header = np.stack([np.full(n, EPB), size, np.zeros(n), ts_ns >> 32, ts_ns & 0xFFFFFFFF, caplen,
                           batch.wirelen.astype(np.int64)], axis=1).astype("<u4")
        for k in range(7):
            words[at + k] = header[:, k]
        words[(start[1:] // 4) - 1] = size.astype("<u4")
        data, dst = batch.data.data, out.data
        for a, p, c in zip((start[:-1] + 28).tolist(), batch.pos.tolist(), caplen.tolist()):
            dst[a: a + c] = data[p: p + c]
        try:
            self.fh.write(out.tobytes())
            self.fh.flush()
        except OSError as e:  # a full disk: what was flushed before stays a readable capture
            raise self.file.cannot(e) from None
        if self.first_ns is None:
            self.first_ns = int(ts_ns[0])
        self.last_ns = int(ts_ns[-1])
        self.frames += n

    def close(self, received: int, dropped: int) -> None:
        """End with the interface statistics: frames received and dropped by the kernel."""
        def stamp(ns: int) -> bytes:
            return struct.pack("<II", ns >> 32, ns & 0xFFFFFFFF)

        end = self.last_ns
        body = struct.pack("<III", 0, end >> 32, end & 0xFFFFFFFF)
        if self.first_ns is not None:
            body += _option(ISB_STARTTIME, stamp(self.first_ns)) + _option(ISB_ENDTIME, stamp(end))
        body += (_option(ISB_IFRECV, struct.pack("<Q", received)) + _option(ISB_IFDROP, struct.pack("<Q", dropped))
                 + _option(OPT_END, b""))
        try:
            self.fh.write(_block(ISB, body))
            self.fh.close()
        except OSError as e:
            raise self.file.cannot(e) from None
