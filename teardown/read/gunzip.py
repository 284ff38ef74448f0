"""A gzip file -> its decompressed bytes, as a stream that stops at damage instead of raising:
every byte decompressed before a cut or a corrupt spot is kept, and where the damage lies in the
compressed file is said in `damage` for the reader's warning. Members written one after another
(`cat a.gz b.gz`, pigz, bgzip) are read as one stream, as gzip reads them."""

from __future__ import annotations

import zlib
from typing import BinaryIO

GZIP_WBITS = 31  # zlib: deflate data inside a gzip header and trailer, whose CRC-32 it checks
# Compressed bytes inflated at a time. Small enough that the output of one piece stays bounded
# (deflate expands at most 1032:1, so at most 32 MiB) and that the piece is cheap to replay a
# byte at a time when it holds damage.
PIECE_BYTES = 32 << 10


class Gunzip:
    """A gzip file read like a binary file; once it stops early, `damage` says where and why."""

    def __init__(self, raw: BinaryIO, head: bytes = b"") -> None:
        """`head`: bytes already read from the start of `raw` (its magic number)."""
        self.raw = raw
        self.unfed = head  # compressed bytes read and not inflated yet
        self.offset = 0  # where `unfed` starts in the compressed file
        self.inflater = zlib.decompressobj(GZIP_WBITS)
        self.in_member = False  # a member begun and its end not reached
        self.out = memoryview(b"")  # decompressed and not yet handed out
        self.ended = False
        self.damage: str | None = None

    def readinto(self, view: memoryview) -> int:
        got = 0
        while got < len(view):
            if not self.out:
                self.out = memoryview(self._inflate())
                if not self.out:
                    break
            k = min(len(view) - got, len(self.out))
            view[got: got + k] = self.out[:k]
            self.out = self.out[k:]
            got += k
        return got

    def read(self, size: int) -> bytes:
        buf = bytearray(size)
        return bytes(buf[: self.readinto(memoryview(buf))])

    def close(self) -> None:
        self.raw.close()

    def compressed_position(self) -> int:
        """Bytes of the compressed file read so far."""
        return int(self.raw.tell())

    def _inflate(self) -> bytes:
        """The next decompressed bytes; b"" at the end of the file or at damage."""
        while not self.ended:
            piece, self.unfed = self.unfed or self.raw.read(PIECE_BYTES), b""
            if not piece:
                self._end(f"gzip data cut short at compressed byte {self.offset:,}" if self.in_member else None)
                break
            if not self.in_member:  # gzip allows zero padding after the last member
                padding = len(piece) - len(piece.lstrip(b"\0"))
                self.offset += padding
                piece = piece[padding:]
                if not piece:
                    continue
                self.inflater = zlib.decompressobj(GZIP_WBITS)
                self.in_member = True
            out = self._feed(piece)
            if out:
                return out
        return b""

    def _feed(self, piece: bytes) -> bytes:
        """Inflate `piece`; at damage, replay it a byte at a time to keep what comes before."""
        before = self.inflater.copy()
        try:
            out = self.inflater.decompress(piece)
        except zlib.error:
            self.inflater = before
            return self._feed_to_damage(piece)
        if self.inflater.eof:  # what follows the member: another member, padding, or garbage
            self.unfed = self.inflater.unused_data
            self.in_member = False
        self.offset += len(piece) - len(self.unfed)
        return out

    def _feed_to_damage(self, piece: bytes) -> bytes:
        """The bytes `piece` inflates to before the byte zlib refuses (it refused the whole piece,
        and inflating is deterministic, so the replay meets that byte)."""
        outs = []
        for i in range(len(piece)):
            try:
                outs.append(self.inflater.decompress(piece[i: i + 1]))
            except zlib.error as e:  # "Error -3 while decompressing data: invalid block type"
                self._end(f"gzip data damaged at compressed byte {self.offset + i:,} ({str(e).rpartition(': ')[2]})")
                break
        return b"".join(outs)

    def _end(self, damage: str | None) -> None:
        self.ended = True
        self.damage = damage
