"""32-bit TCP sequence-number arithmetic (RFC 9293 §3.4, RFC 1982): nothing else compares
sequence numbers. Comparisons work on numpy arrays and on plain ints."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt

SEQ_SPACE = 1 << 32
HALF_SPACE = 1 << 31

A = TypeVar("A", int, npt.NDArray[np.int64])


def seq_diff(a: A, b: A) -> A:
    """a - b as a signed distance in (-2^31, 2^31]: positive when a is after b."""
    return ((a - b + HALF_SPACE) % SEQ_SPACE) - HALF_SPACE


def seq_lt(a: A, b: A) -> A | bool:
    """a is strictly before b in sequence space."""
    return seq_diff(a, b) < 0  # type: ignore[return-value]


def seq_le(a: A, b: A) -> A | bool:
    return seq_diff(a, b) <= 0  # type: ignore[return-value]

