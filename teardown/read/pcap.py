"""Classic pcap (both byte orders, micro- and nanosecond timestamps) -> frame batches.
The records are walked by the C walker in `_walk.c`; this module handles the header, chunking
and damage."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from ..errors import CaptureDamaged, CaptureError
from . import CaptureInfo, ChunkStream, FrameBatch, FrameChecks, Interface
from ._walk import walk_pcap  # type: ignore[import-not-found]
from .gunzip import Gunzip

# Record lengths above this are corrupt whatever the header's snaplen says: libpcap and
# Wireshark refuse records above 256 KiB for ordinary link types (WTAP_MAX_PACKET_SIZE_STANDARD).
MAX_RECORD_BYTES = 262_144
NEED_MORE, CORRUPT, FULL = 0, 1, 2
FCS_LENGTH_PRESENT = 0x04000000
RECORDS_PER_CALL = 1 << 18


class PcapReader:
    def __init__(self, fh: BinaryIO | Gunzip, magic: bytes, info: CaptureInfo, big_endian: bool,
                 resolution: float, chunk_bytes: int) -> None:
        self.fh = fh
        self.info = info
        self.info.format = "pcap"
        self.swapped = big_endian  # the walker reads little-endian natively
        self.resolution = resolution
        self.stream = ChunkStream(fh, chunk_bytes)
        self.checks = FrameChecks(info)
        rest = fh.read(20)
        if len(rest) < 20:
            why = f" ({fh.damage})" if isinstance(fh, Gunzip) and fh.damage else ""
            raise CaptureError(info.path, f"truncated pcap file header ({4 + len(rest)} of 24 bytes){why}")
        order = ">" if big_endian else "<"
        _major, _minor, _zone, _sigfigs, snaplen, linktype = struct.unpack(order + "HHiIII", rest)
        self.linktype = linktype & 0xFFFF  # upper bits carry the FCS length, not the link type
        # The frame check sequence each frame ends with, in bytes, where the header says (libpcap's
        # LT_FCS_LENGTH_PRESENT and LT_FCS_LENGTH): a copy as pcapng says it as if_fcslen.
        self.fcs_bytes = (linktype >> 28) * 2 if linktype & FCS_LENGTH_PRESENT else None
        self.units_per_s = round(1 / resolution)  # the header's time unit: 10^6 or 10^9 a second
        self.max_caplen = MAX_RECORD_BYTES
        if 0 < snaplen <= 16 << 20:
            self.max_caplen = max(snaplen, MAX_RECORD_BYTES)
        elif snaplen:
            info.warnings.append(f"header snaplen {snaplen:,} is absurd; records checked against "
                                 f"{MAX_RECORD_BYTES:,} bytes instead")
        info.interfaces.append(Interface(self.linktype, snaplen))
        self.stream.base = 24

    def close(self) -> None:
        self.fh.close()

    def record_units(self, batch: FrameBatch) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32]]:
        """Each frame's time in the header's own units since 1970 (seconds x units_per_s + the
        fraction) and its original length, as its record header says: exact where `batch.ts` is
        a float, and before `FrameChecks.wire_lengths` corrects an impossible length. What a
        copy of the frame keeps (wireshark/)."""
        at = batch.pos - 16  # each record's header, just before its frame
        words = batch.data[at[:, None] + np.arange(16)].view(">u4" if self.swapped else "<u4").reshape(-1, 4)
        return words[:, 0].astype(np.int64) * self.units_per_s + words[:, 1], words[:, 3].astype(np.uint32)

    def position(self) -> int:
        return self.stream.position()

    def __iter__(self) -> Iterator[FrameBatch]:
        stream, info = self.stream, self.info
        frames = 0
        offset = 0  # into stream.buf
        while True:
            try:
                more = stream.fill(offset)
            except OSError as e:
                info.damage = CaptureDamaged(info.path, stream.base + len(stream.buf), frames,
                                             f"read error ({e.strerror or e})")
                more = False
            offset = 0
            data = stream.padded()
            payload = data.data[: len(stream.buf)]
            parts = []
            status = FULL
            while status == FULL:
                out = [np.empty(RECORDS_PER_CALL, dt) for dt in (np.int64, np.uint32, np.uint32, np.uint32, np.uint32)]
                n, offset, status = walk_pcap(payload, offset, self.swapped, self.max_caplen, *out)
                if n:
                    parts.append([a[:n] for a in out])
            if parts:
                pos, caplen, wirelen, sec, frac = (np.concatenate(c) for c in zip(*parts))
                n = len(pos)
                ts = sec.astype(np.float64) + frac.astype(np.float64) * self.resolution
                # No time check but the order: 32-bit seconds cannot leave 1970..2106.
                self.checks.time_order(ts, frames + 1)
                self.checks.wire_lengths(caplen, wirelen, frames + 1)
                batch = FrameBatch(
                    data=data, pos=pos, caplen=caplen, wirelen=wirelen, ts=ts,
                    linktype=np.full(n, self.linktype, np.uint16), iface=np.zeros(n, np.uint16),
                    frame=np.arange(frames + 1, frames + n + 1, dtype=np.int64))
                frames += n
                info.frames = frames
                yield batch
            if status == CORRUPT:
                length = struct.unpack_from(">I" if self.swapped else "<I", stream.buf, offset + 8)[0]
                info.damage = CaptureDamaged(info.path, stream.base + offset, frames,
                                             f"corrupt record length {length:,}")
                break
            if not more and info.damage is None:
                info.damage = stream.ended_early(info.path, offset, frames, "a record")
                break
            if info.damage is not None:
                break
        self.fh.close()
