"""The final rows a watch with `-o` keeps for the table it writes at the stop (and at each
`--every` rewrite), held on disk so that the watch's memory stays flat however long it runs.

Rows arrive a few at a time (each batch retires a handful of connections). They are packed
(packed.py) as they come, joined into one part once enough have gathered (a part per batch
would cost more in numpy headers than the rows themselves), and each joined part is pickled to
the end of one temporary file. Reading them back (the stop, or an `--every` child, which has
its own copy of `written` from the fork and so reads exactly what was there) gives the parts
`analysis.concat_rows` takes, as offline.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from typing import IO, Any

from ..packed import Held, join, pack
from ..present import TEXT_COLUMNS

PART_ROWS = 20_000  # rows gathered before they are joined and written: ~3 MB packed
PART_SLICES = 512  # or slices gathered (a quiet watch retires a row or two per batch)


class KeptRows:
    def __init__(self) -> None:
        self._pending: list[dict[str, Held]] = []
        self._pending_rows = 0
        self._file: IO[bytes] | None = None
        self.written = 0  # bytes of whole parts in the file
        self.rows = 0

    def add(self, columns: dict[str, Any]) -> None:
        """One slice of final rows (the text columns are left out: they are rebuilt for the
        whole table at once, faster than row by row)."""
        n = len(columns["incarnation"])
        if not n:
            return
        self._pending.append(pack({k: v for k, v in columns.items() if k not in TEXT_COLUMNS}))
        self._pending_rows += n
        self.rows += n
        if self._pending_rows >= PART_ROWS or len(self._pending) >= PART_SLICES:
            self._write(self._joined())

    def _joined(self) -> dict[str, Held]:
        pending, self._pending, self._pending_rows = self._pending, [], 0
        if len(pending) == 1:
            return pending[0]
        return {name: join([p[name] for p in pending]) for name in pending[0]}

    def _write(self, part: dict[str, Held]) -> None:
        if self._file is None:
            # Unlinked at once: the open descriptor keeps it, and no run leaves it behind.
            fd, path = tempfile.mkstemp(prefix="teardown-rows-")
            os.unlink(path)
            self._file = os.fdopen(fd, "w+b")
        self._file.seek(self.written)
        pickle.dump(part, self._file, pickle.HIGHEST_PROTOCOL)
        self._file.flush()
        self.written = self._file.tell()

    def parts(self) -> list[dict[str, Held]]:
        """Every row kept so far, as parts in the order they arrived."""
        out = []
        if self._file is not None:
            # Read through a descriptor of our own: a forked child shares the parent's file
            # offset, and the parent may be appending at the same moment.
            with open(f"/proc/self/fd/{self._file.fileno()}", "rb") as own:
                while own.tell() < self.written:
                    out.append(pickle.load(own))
        if self._pending:
            out.append(self._joined() if len(self._pending) > 1 else self._pending[0])
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
