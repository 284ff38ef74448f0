"""Frame numbers of a run's files written one after another, as one capture file holds them.

Wireshark numbers the frames of a file from 1 over all its sections, so the annotated capture
(each input file a section, in the analysis's order) numbers them as `matching.match` does.
That is teardown's own numbering where the files are pieces of one capture (frame numbers run
on across them); where the run held several captures (files overlapping in time: analysis.py),
teardown numbers each from 1, and a row's frames are told apart by its `capture`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..analysis import CaptureSummary
from ..present import number_array, text_array, text_scalar

if TYPE_CHECKING:
    import pyarrow as pa

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Numbering:
    names: list[str]  # each file's name, as the texts say it
    before: I64  # frames of the files before each one
    frames: I64  # frames of each file
    capture_before: I64  # frames of the files before each capture of the run

    @classmethod
    def of(cls, capture: CaptureSummary) -> Numbering:
        frames = np.array([f.frames for f in capture.files], np.int64)
        before = np.concatenate([[0], np.cumsum(frames)[:-1]]).astype(np.int64) if len(frames) else frames
        which = np.array(capture.file_captures, np.int64)
        # A capture's first file is the first of its files in reading order (captures are in that order).
        firsts = np.searchsorted(which, np.arange(int(which.max(initial=-1)) + 1))
        return cls([os.path.basename(f.path) for f in capture.files], before, frames,
                   before[firsts] if len(frames) else np.zeros(0, np.int64))

    def of_rows(self, capture: I64, frame: I64) -> I64:
        """The frame numbers in the whole of frames `frame` of captures `capture` (a row's own)."""
        out: I64 = self.capture_before[np.asarray(capture, np.int64)] + np.asarray(frame, np.int64)
        return out

    def file_of(self, frame: I64) -> I64:
        """The file (its index) holding each frame of the whole."""
        out: I64 = np.searchsorted(self.before, np.asarray(frame, np.int64), side="left") - 1
        return out

    def text(self, frame: int) -> str:
        """'frame 14', and where several files were read, the file and its own number:
        'frame 14 (rot-2.pcap frame 3)'."""
        if len(self.names) < 2:
            return f"frame {frame}"
        f = int(self.file_of(np.array([frame]))[0])
        return f"frame {frame} ({self.names[f]} frame {frame - int(self.before[f])})"

    def texts(self, frames: I64, prefix: str = "") -> pa.Array:
        """`text` of each of `frames` after `prefix`, as an Arrow array, made in bulk."""
        import pyarrow.compute as pc

        frames = np.asarray(frames, np.int64)
        said = pc.binary_join_element_wise(text_scalar(f"{prefix}frame "), number_array(frames).cast("large_string"),
                                           text_scalar(""))
        if len(self.names) < 2:
            return said
        file = self.file_of(frames)
        within = number_array(frames - self.before[file]).cast("large_string")
        return pc.binary_join_element_wise(said, text_scalar(" ("), text_array(np.array(self.names, object)[file]),
                                           text_scalar(" frame "), within, text_scalar(")"), text_scalar(""))
