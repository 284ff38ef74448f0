"""Whole pcapng blocks -> `teardown live --write`'s file, or with --write-size a set of files
rotated as tcpdump's -C/-W rotate them: FILE-000001.pcapng, FILE-000002.pcapng, ...

Each file is published as the single --write file is (outputs.Staged): its section header and
interface descriptions are in it before it appears under its name, then whole blocks are
appended and flushed batch by batch, and a file is left for the next one only at a block
boundary. So every file of the set is a complete capture of its own, and `teardown analyze
'FILE-*.pcapng'` reads the set back as one capture (in time order, frame numbers running on).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import UsageError
from ..outputs import Staged
from . import Mark

BYTES_PER_MB = 1_000_000  # as tcpdump -C counts a megabyte
# A sequence number of fixed width sorts by name in the order the files were written, as the
# shell's glob and `ls` list them; six digits last 999,999 files (then the number widens).
SEQUENCE_DIGITS = 6


@dataclass(frozen=True, slots=True)
class Rotation:
    """--write-size and --write-files: a new file once the current one passes `size_bytes`,
    and only the newest `files` kept (None: every file)."""

    size_bytes: int
    files: int | None = None

    @staticmethod
    def of(size_mb: float | None, files: int | None) -> Rotation | None:
        """The rotation the options ask for, or None; UsageError for values that cannot be."""
        if size_mb is None:
            if files is not None:
                raise UsageError(f"--write-files {files}: keeps the newest files of a rotation; add --write-size MB")
            return None
        if not size_mb > 0:
            raise UsageError(f"--write-size must be a positive number of megabytes, not {size_mb:g}")
        if files is not None and files < 1:
            raise UsageError(f"--write-files must be at least 1, not {files}")
        return Rotation(max(1, round(size_mb * BYTES_PER_MB)), files)


def numbered(path: str, number: int) -> str:
    """The name of a rotation's file `number` (from 1): cap.pcapng -> cap-000001.pcapng."""
    stem, suffix = os.path.splitext(path)
    return f"{stem}-{number:0{SEQUENCE_DIGITS}d}{suffix}"


def rotated_files(path: str) -> list[str]:
    """The files of a rotation of `path` that exist, oldest first."""
    stem, suffix = os.path.splitext(path)
    pattern = re.compile(re.escape(os.path.basename(stem)) + r"-(\d{%d,})" % SEQUENCE_DIGITS + re.escape(suffix) + "$")
    found = [(int(m[1]), f) for f in glob.glob(glob.escape(stem) + "-*" + glob.escape(suffix))
             if (m := pattern.match(os.path.basename(f)))]
    return [f for _, f in sorted(found)]


MARK_BYTES = 1 << 20  # a mark per megabyte written at most: a reader wanting a few flows reads ~1 MB each


@dataclass(slots=True)
class Written:
    """One file of --write as written so far: its frames run on from `first_frame`; `size`
    bytes of it are written, hashed as they went (`sha256` of those bytes), and `marks` say
    which stretches hold which times."""

    path: str
    first_frame: int
    size: int | None = 0  # None: written by another program (dumpcap), which tells us nothing of it
    marks: list[Mark] = field(default_factory=list)
    digest: Any = field(default_factory=hashlib.sha256)  # hashlib's object: what was written, hashed on the way

    @property
    def sha256(self) -> str | None:
        return None if self.digest is None else str(self.digest.copy().hexdigest())


class CaptureFiles:
    """--write's file(s): `write` appends whole blocks, starting the next file of a rotation
    (with `head()`: the section header and every interface description so far) once the
    current one has passed the size; `files` are the files kept, oldest first."""

    def __init__(self, path: str, rotation: Rotation | None, head: bytes) -> None:
        self.path = path
        self.rotation = rotation
        self.files: list[Written] = []
        self.frames = 0  # packet blocks written so far
        self.number = 0
        if rotation is not None:
            earlier = rotated_files(path)
            if earlier:
                raise UsageError(f"--write {path}: {os.path.basename(earlier[0])} and others of its rotation exist "
                                 f"({len(earlier)} files, from an earlier run?); remove them or choose another name")
        self._open(head)

    def _open(self, head: bytes) -> None:
        """The next file published under its name, `head` already in it."""
        name = self.path if self.rotation is None else numbered(self.path, self.number + 1)
        file = Staged(name, "--write")
        try:
            file.fh.write(head)
            file.fh.flush()
            file.publish()
        except OSError as e:
            file.discard()
            raise file.cannot(e) from None
        except BaseException:
            file.discard()
            raise
        self.file = file
        self.number += 1
        self.files.append(Written(name, self.frames, len(head)))
        self.files[-1].digest.update(head)
        if self.rotation is not None and self.rotation.files is not None:
            while len(self.files) > self.rotation.files:
                oldest = self.files.pop(0).path
                try:
                    os.remove(oldest)
                except FileNotFoundError:  # removed by someone else: it is gone either way
                    pass
                except OSError as e:
                    raise UsageError(f"--write {self.path}: cannot remove {oldest} (--write-files): "
                                     f"{e.strerror or e}") from None

    def write(self, blocks: bytes, ends: npt.NDArray[np.int64], head: Callable[[], bytes],
              packets: npt.NDArray[np.bool_] | None = None, ts: npt.NDArray[np.float64] | None = None,
              interfaces: int = 0) -> None:
        """Whole blocks (`ends`: where each ends in `blocks`; `packets`: which are packet blocks,
        None: all) appended and flushed; with a rotation, a new file once the current one has
        passed the size, block by block. `ts`: each packet block's time (all blocks packets),
        noted in the marks with the `interfaces` described before them."""
        counted = np.cumsum(np.ones(len(ends), np.int64) if packets is None else packets.astype(np.int64))
        before = self.frames
        at = 0
        while at < len(blocks):
            take = len(blocks) - at
            if self.rotation is not None:
                if self._size() > self.rotation.size_bytes and self.frames > self.files[-1].first_frame:
                    self._next(head())
                # Up to and including the block that takes the file past the size (tcpdump -C);
                # one block at least, where the head alone is past it (a size under ~200 bytes).
                room = max(self.rotation.size_bytes - self._size(), 0)
                i = int(np.searchsorted(ends, at + room, side="right"))
                if i < len(ends):
                    take = int(ends[i]) - at
            if ts is not None:
                first, last = np.searchsorted(ends, at, side="right"), np.searchsorted(ends, at + take, side="left")
                self._mark(ts[first:last + 1], interfaces)
            self._append(blocks[at: at + take])
            at += take
            self.frames = before + int(counted[np.searchsorted(ends, at, side="right") - 1])

    def _mark(self, ts: npt.NDArray[np.float64], interfaces: int) -> None:
        """The times of the packet blocks about to be appended, in the file's last mark, or in a
        new one once that covers a megabyte."""
        file, size = self.files[-1], self._size()
        low, high = float(np.nanmin(ts)), float(np.nanmax(ts))
        last = file.marks[-1] if file.marks else None
        if last is None or size - last.offset >= MARK_BYTES or last.interfaces != interfaces:
            file.marks.append(Mark(size, self.frames, low, high, interfaces))
        else:
            last.first_ts, last.last_ts = min(last.first_ts, low), max(last.last_ts, high)

    def _append(self, data: bytes) -> None:
        file = self.files[-1]
        try:
            self.file.fh.write(data)
            self.file.fh.flush()
        except OSError as e:  # a full disk: what was flushed before stays a readable capture
            raise self.file.cannot(e) from None
        file.size = self._size() + len(data)
        file.digest.update(data)

    def _next(self, head: bytes) -> None:
        try:
            self.file.fh.close()
        except OSError as e:
            raise self.file.cannot(e) from None
        self._open(head)

    def close(self, tail: bytes = b"") -> None:
        """The last file ended with `tail` (interface statistics) and closed."""
        try:
            self.file.fh.write(tail)
            self.file.fh.close()
        except OSError as e:
            raise self.file.cannot(e) from None
        self.files[-1].size = self._size() + len(tail)
        self.files[-1].digest.update(tail)

    def _size(self) -> int:
        return self.files[-1].size or 0  # every file here is one this writes: its size is known


def block_ends(sizes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Where each block ends, from the blocks' sizes back to back."""
    return np.cumsum(sizes, dtype=np.int64)
