"""pcapng -> frame batches. Packet blocks are walked by the C walker; section headers,
interface descriptions (link type, timestamp resolution and offset), comments and every other
block are handled here, once per block rather than once per packet."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from ..errors import CaptureDamaged
from . import CaptureInfo, ChunkStream, FrameBatch, Interface
from ._walk import walk_pcapng  # type: ignore[import-not-found]

NEED_MORE, CORRUPT, FULL, OTHER_BLOCK = 0, 1, 2, 3
SHB, IDB = 0x0A0D0D0A, 0x00000001
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_COMMENT, OPT_IF_NAME, OPT_IF_TSRESOL, OPT_IF_TSOFFSET = 1, 2, 9, 14
RECORDS_PER_CALL = 1 << 18
MAX_BLOCK_BYTES = 64 << 20  # a bigger block is corrupt: no real writer makes one


class PcapngReader:
    def __init__(self, fh: BinaryIO, magic: bytes, info: CaptureInfo, chunk_bytes: int) -> None:
        self.fh = fh
        self.info = info
        info.format = "pcapng"
        self.stream = ChunkStream(fh, chunk_bytes)
        self.stream.prime(magic)
        self.swapped = False
        self.section_first_iface = 0  # interface ids restart in each section
        self.last_ts = 0.0

    def _damaged(self, offset: int, frames: int, problem: str) -> None:
        self.info.damage = CaptureDamaged(self.info.path, self.stream.base + offset, frames, problem)

    def _block(self, buf: memoryview, off: int) -> tuple[int, str | None]:
        """Read the non-packet block at `off`; return its length, or 0 and what is wrong."""
        if len(buf) - off < 12:
            return 0, None
        btype = struct.unpack_from("<I", buf, off)[0]
        if btype == SHB:
            bom = buf[off + 8: off + 12]
            if len(bom) < 4:
                return 0, None
            if struct.unpack("<I", bom)[0] == BYTE_ORDER_MAGIC:
                self.swapped = False
            elif struct.unpack(">I", bom)[0] == BYTE_ORDER_MAGIC:
                self.swapped = True
            else:
                return 0, "section header with an unknown byte-order magic"
            self.section_first_iface = len(self.info.interfaces)
        order = ">" if self.swapped else "<"
        btype, total = struct.unpack_from(order + "II", buf, off)
        if total < 12 or total % 4 or total > MAX_BLOCK_BYTES:
            return 0, f"corrupt block length {total:,}"
        if len(buf) - off < total:
            return 0, None
        if struct.unpack_from(order + "I", buf, off + total - 4)[0] != total:
            return 0, f"block length {total:,} does not match its trailer"
        body = bytes(buf[off + 8: off + total - 4])
        if btype == SHB:
            self._options(body[16:], order, None)
        elif btype == IDB:
            if len(body) < 8:
                return 0, "interface description block too short"
            linktype, _, snaplen = struct.unpack_from(order + "HHI", body)
            iface = Interface(linktype, snaplen)
            self._options(body[8:], order, iface)
            self.info.interfaces.append(iface)
        return total, None

    def _options(self, raw: bytes, order: str, iface: Interface | None) -> None:
        at = 0
        while at + 4 <= len(raw):
            code, length = struct.unpack_from(order + "HH", raw, at)
            value = raw[at + 4: at + 4 + length]
            at += 4 + (length + 3) // 4 * 4
            if code == 0:
                break
            if code == OPT_COMMENT:
                self.info.comments.append(value.decode("utf-8", "replace"))
            elif iface is not None and code == OPT_IF_NAME:
                iface.name = value.decode("utf-8", "replace")
            elif iface is not None and code == OPT_IF_TSRESOL and length >= 1:
                exp = value[0] & 0x7F
                # MSB set: a negative power of 2; else of 10 (pcapng spec, if_tsresol).
                if exp <= 30 or not value[0] & 0x80 and exp <= 18:
                    iface.ts_units_per_s = 2 ** exp if value[0] & 0x80 else 10 ** exp
            elif iface is not None and code == OPT_IF_TSOFFSET and length >= 8:
                iface.ts_offset_s = struct.unpack_from(order + "q", value)[0]

    def _timestamps(self, hi: npt.NDArray[Any], lo: npt.NDArray[Any],
                    local_iface: npt.NDArray[Any]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint16]]:
        """Seconds since the epoch from each interface's units; a Simple Packet Block (no
        timestamp of its own) takes its predecessor's."""
        units = (hi.astype(np.uint64) << np.uint64(32)) | lo.astype(np.uint64)
        simple = local_iface == 0xFFFFFFFF
        iface = np.where(simple, 0, local_iface).astype(np.int64) + self.section_first_iface
        known = len(self.info.interfaces)
        bad = iface >= known
        if bad.any():
            self.info.warnings.append(f"{int(bad.sum()):,} packets name an interface that was never described; "
                                      "read as interface 0")
            iface[bad] = self.section_first_iface if self.section_first_iface < known else 0
        per_s = np.array([i.ts_units_per_s for i in self.info.interfaces] or [1_000_000], dtype=np.uint64)[iface]
        offset = np.array([i.ts_offset_s for i in self.info.interfaces] or [0], dtype=np.float64)[iface]
        ts = (units // per_s).astype(np.float64) + (units % per_s).astype(np.float64) / per_s + offset
        if simple.any():
            ts[simple] = np.nan
            idx = np.where(~simple, np.arange(len(ts)), -1)
            np.maximum.accumulate(idx, out=idx)
            ts = np.where(idx >= 0, ts[np.maximum(idx, 0)], self.last_ts)
        if len(ts):
            self.last_ts = float(ts[-1])
        return ts, iface.astype(np.uint16)

    def close(self) -> None:
        self.fh.close()

    def position(self) -> int:
        return self.stream.position()

    def __iter__(self) -> Iterator[FrameBatch]:
        stream, info = self.stream, self.info
        frames = 0
        offset = 0
        while True:
            try:
                more = stream.fill(offset)
            except (OSError, EOFError, zlib.error) as e:
                self._damaged(len(stream.buf), frames, f"damaged gzip stream ({e})")
                more = False
            offset = 0
            data = stream.padded()
            payload = data.data[: len(stream.buf)]
            parts = []
            while info.damage is None:
                snaplen0 = info.interfaces[self.section_first_iface].snaplen if len(info.interfaces) > self.section_first_iface else 0
                out = [np.empty(RECORDS_PER_CALL, dt) for dt in (np.int64, np.uint32, np.uint32, np.uint32, np.uint32, np.uint32)]
                n, offset, status = walk_pcapng(payload, offset, self.swapped, snaplen0 or 0xFFFFFFFF, *out)
                if n:
                    ts, iface = self._timestamps(out[3][:n], out[4][:n], out[5][:n])
                    parts.append((out[0][:n], out[1][:n], out[2][:n], ts, iface))
                if status == FULL:
                    continue
                if status == OTHER_BLOCK:
                    length, problem = self._block(stream.buf, offset)
                    if problem:
                        self._damaged(offset, frames + sum(len(p[0]) for p in parts), problem)
                    elif length:
                        offset += length
                        continue
                    break
                if status == CORRUPT:
                    self._damaged(offset, frames + sum(len(p[0]) for p in parts), "corrupt packet block")
                break
            if parts:
                pos, caplen, wirelen, ts, iface = (np.concatenate(c) for c in zip(*parts))
                n = len(pos)
                linktypes = np.array([i.linktype for i in info.interfaces] or [0], dtype=np.uint16)
                yield FrameBatch(
                    data=data, pos=pos, caplen=caplen, wirelen=wirelen, ts=ts, linktype=linktypes[iface],
                    iface=iface, frame=np.arange(frames + 1, frames + n + 1, dtype=np.int64))
                frames += n
                info.frames = frames
            if info.damage is not None:
                break
            if not more:
                if offset < len(stream.buf):
                    self._damaged(offset, frames, "file ends inside a block (truncated)")
                break
        self.fh.close()
