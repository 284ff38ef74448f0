"""An analysis -> the capture it read, written back for Wireshark: `annotate` (every frame, a
comment on each frame a verdict rests on) and `extract` (only the frames of the connections
with findings, or with the kinds asked for: small enough to attach to a ticket).

Each input file is its own section of the one output, in the analysis's order, so Wireshark
numbers the frames as teardown does (numbering.py). The output is written whole or not at all
(outputs.atomic_output), and never over an input (the command line refuses that before reading).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .. import __version__
from ..analysis import Analysis
from ..dissect import other_format
from ..errors import CaptureError, UsageError
from ..outputs import atomic_output
from ..read import open_capture
from ..report.flags import FLAGS, flag_bits
from ..timewait.finding import plural
from .comments import Comments, frame_comments, section_text
from .flow_frames import read_again
from .numbering import Numbering
from .rewrite import Plan, copy_file

I64 = npt.NDArray[np.int64]
KINDS = [flag.name for flag in FLAGS]  # --only: the findings a flow can carry, as the report's filter names them
FILTER = 'frame.comment contains "fin-retransmission"'  # an example of finding one kind's frames in Wireshark


@dataclass(slots=True)
class Written:
    """What an output holds, for the summary's line."""

    path: str
    frames: int = 0
    comments: int = 0
    connections: int = 0
    size: int = 0
    uncommented: list[int] = field(default_factory=list)  # frames whose comment no block could hold

    def said_too(self) -> str:
        if not self.uncommented:
            return ""
        shown = ", ".join(map(str, self.uncommented[:5])) + (", ..." if len(self.uncommented) > 5 else "")
        return (f"; {plural(len(self.uncommented), 'frame')} in Simple Packet Blocks, which hold no comment, went "
                f"without ({shown})")


def parse_kinds(text: str) -> list[str]:
    """--only's finding kinds; a usage error naming the unknown ones and the choices."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise UsageError(f"--only {text}: {'unknown finding kind ' + ','.join(unknown) if unknown else 'no kind given'}; "
                         f"choose from {', '.join(KINDS)}")
    return kinds


def check_formats(captures: Sequence[str], option: str) -> None:
    """A usage error for an input the copy cannot be made from: a format the fast reader does
    not read, which the analysis hands to tshark (snoop, ERF, ...). Other problems with a file
    are left for the analysis to tell."""
    for path in captures:
        try:
            open_capture(path, 1 << 12).close()
        except CaptureError as e:
            if other_format(e):
                raise UsageError(f"{option}: {path} is not pcap or pcapng (teardown reads it through tshark); the copy "
                                 f"is written from pcap and pcapng only: convert it first (editcap -F pcapng {path} "
                                 "OUT.pcapng) and analyze that") from None


def annotate(result: Analysis, out: str) -> Written:
    """Every frame of the capture, each frame a verdict rests on with a comment saying what it shows."""
    numbering = Numbering.of(result.capture)
    rows = np.arange(len(result), dtype=np.int64)
    comments = frame_comments(result.columns, rows, numbering, read_again(result, rows, None))
    lead = (f"teardown {__version__}: {_names(result)} with a comment on each frame a connection's verdicts rest "
            "on (its SYN, FINs, final ACKs, RST, the segments around capture loss), saying what it shows for the "
            "connection (its flow id, as teardown's tables name it); a finding's frames start with its kind in "
            f"brackets. Display filter: frame.comment, or {FILTER}.")
    written = _write(result, out, "--annotate", numbering, comments, None, lead)
    written.connections = len(result)
    return written


def extract(result: Analysis, out: str, kinds: Sequence[str] = ()) -> Written:
    """The frames of the connections with findings (of `kinds`, when given), annotated, each
    comment starting with the frame's number in the whole capture."""
    numbering = Numbering.of(result.capture)
    wanted = sum(1 << i for i, flag in enumerate(FLAGS) if not kinds or flag.name in kinds)
    rows = np.flatnonzero(flag_bits(result.columns) & wanted).astype(np.int64)
    found = read_again(result, rows, rows)
    comments = frame_comments(result.columns, rows, numbering, found, originals=True)
    keep = np.union1d(found.kept, comments.frames)
    which = f" ({', '.join(kinds)})" if kinds else ""
    lead = (f"teardown {__version__}: the frames of the {plural(len(rows), 'connection')} with findings{which} in "
            f"{_names(result)}: {keep.size:,} of {numbering.frames.sum():,} frames. Each comment starts with the frame's "
            f"number in the original capture, then what it shows (display filter: frame.comment, or {FILTER}).")
    written = _write(result, out, "--extract", numbering, comments, keep, lead)
    written.connections = len(rows)
    return written


def _names(result: Analysis) -> str:
    names = [os.path.basename(f.path) for f in result.capture.files]
    return ", ".join(names) if len(names) <= 3 else f"{len(names):,} files ({names[0]} ... {names[-1]})"


def _write(result: Analysis, out: str, option: str, numbering: Numbering, comments: Comments, keep: I64 | None,
           lead: str) -> Written:
    """Each file of the run as its section(s) of `out`, in the analysis's order."""
    written = Written(out)
    files = result.capture.files
    with atomic_output(out, option) as fh:
        for i, info in enumerate(files):
            first, last = int(numbering.before[i]) + 1, int(numbering.before[i] + numbering.frames[i])
            held = f"frames {first} to {last} of the whole capture" if last >= first else "no frames"
            section = section_text(result, lead) if i == 0 else (
                f"teardown: {numbering.names[i]}, file {i + 1} of {len(files)} of the run: {held}")
            copied = copy_file(Plan(info.path, int(numbering.before[i]), section, comments, keep), fh,
                               result.options.chunk_bytes)
            written.frames += copied.frames
            written.comments += copied.comments
            written.uncommented += copied.uncommented
    written.size = os.path.getsize(out) if os.path.isfile(out) else 0
    return written
