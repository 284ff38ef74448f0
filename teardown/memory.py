"""Freed memory handed back to the system.

glibc's malloc keeps the pages of blocks under its mmap threshold when they are freed, for the
next allocations. The judged slices of a long capture are such blocks (16,384 rows a column:
128 kB), and once they are joined into whole columns they hold nothing, yet stay in the
process: +540 MB of resident memory on the 10 M-packet benchmark after the host views, gone
with one `malloc_trim`. Elsewhere than glibc this does nothing. Arrow's own allocator
(mimalloc) keeps what a file's batches freed the same way (+110 MB there), and gives it back
when asked.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

_TRIM_EVERY = 64 << 20  # bytes freed between two trims: a trim walks the heap (~ms)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = getattr(ctypes.CDLL(name), "malloc_trim")
    except (OSError, AttributeError, TypeError):
        return None
    return trim


_TRIM = _malloc_trim()
_freed = 0


def freed(nbytes: int) -> None:
    """`nbytes` were just freed: give the free pages back once enough has been freed."""
    global _freed
    _freed += nbytes
    if _freed < _TRIM_EVERY:
        return
    _freed = 0
    if _TRIM is not None:
        _TRIM(0)
    arrow = sys.modules.get("pyarrow")  # never imported for this: most runs write no table
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
