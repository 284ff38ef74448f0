"""Frames as a live capture hands them over -> `FrameBatch`es for the decoder, and what every
live source counts (frames, drops, why it stopped). Both live sources (sniffer.py, dumpcap.py)
hand over batches from their thread; the live session takes them a few times a second."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from . import PAD, FrameBatch, Interface
from .rotation import Written

NS_PER_S = 1_000_000_000


@dataclass(slots=True)
class Frames:
    """Frames received since the last take: bytes back to back in `data`, one entry per frame in
    the lists. Written by the capture thread only, under `Source.lock`."""

    data: npt.NDArray[np.uint8]
    at: int = 0  # bytes of `data` used
    pos: list[int] = field(default_factory=list)
    caplen: list[int] = field(default_factory=list)
    wirelen: list[int] = field(default_factory=list)
    ts_ns: list[int] = field(default_factory=list)
    iface: list[int] = field(default_factory=list)  # the interface's number in the capture (its IDB)

    @staticmethod
    def new(size: int) -> Frames:
        return Frames(np.zeros(size + PAD, np.uint8))

    def __len__(self) -> int:
        return len(self.pos)

    def batch(self, linktypes: list[int], first_frame: int) -> tuple[FrameBatch, npt.NDArray[np.int64]]:
        """The frames as a `FrameBatch` numbered from `first_frame`, each with its interface and
        that interface's link type (`linktypes`, by interface number), and their times in ns.

        Seconds are computed as the pcapng reader computes them from nanosecond units, so the
        live engine and the analysis of the written file see the very same floats."""
        n = len(self.pos)
        ns = np.array(self.ts_ns, np.int64)
        ts = (ns // NS_PER_S).astype(np.float64) + (ns % NS_PER_S).astype(np.float64) / np.float64(NS_PER_S)
        self.data[self.at: self.at + PAD] = 0
        iface = np.array(self.iface, np.uint16)
        return FrameBatch(
            data=self.data, pos=np.array(self.pos, np.int64), caplen=np.array(self.caplen, np.uint32),
            wirelen=np.array(self.wirelen, np.uint32), ts=ts, linktype=np.array(linktypes, np.uint16)[iface],
            iface=iface, frame=np.arange(first_frame, first_frame + n, dtype=np.int64)), ns


@dataclass(slots=True)
class Counts:
    """What a source counted so far. Drops are frames the filter accepted that we never got."""

    frames: int = 0  # handed to the analyzer
    kernel_drops: int = 0  # the capture socket's (or dumpcap's) drop counter
    analyzer_drops: int = 0  # frames thrown away because the analyzer fell behind


class FrameSource(Protocol):
    """A live capture: started by the session, taken from a few times a second, stopped once.
    It also writes what it captured to --write's file, if any, as it hands it over."""

    linktype: int  # LINKTYPE_* of the first interface
    interfaces: list[Interface]  # numbered as the frames' `iface` and --write's interface blocks
    counts: Counts
    stopped: threading.Event  # set by the source itself when it ends (--count, an error)
    stop_reason: str | None  # why it ended on its own: "interface lo went down", ...

    def start(self) -> None: ...

    def take(self) -> FrameBatch | None:
        """The frames received since the last take, numbered on from the previous ones (None
        when there are none)."""

    def refresh_counts(self) -> None:
        """Update `counts.kernel_drops` from the capture socket."""

    def stop(self) -> None:
        """Stop capturing; frames received until now remain for `take`."""

    def close(self) -> None:
        """After the last take: finish --write's file."""

    @property
    def written(self) -> list[Written]:
        """--write's files kept so far, oldest first (one without --write-size; none without --write)."""
