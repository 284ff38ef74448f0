"""A capture file -> its frames as pcapng, some packet blocks given a comment and, for an
extract, only some frames kept. Frames, timestamps, interfaces and link types stay exactly as
the file has them; only the comments and the blocks added to hold them differ.

* pcap in: a section of its own, with one interface description saying the file's link type,
  snaplen and time unit (if_tsresol 10^-6 or 10^-9, as the file's magic says, so each record's
  seconds and fraction become one count of the same units), then an Enhanced Packet Block per
  record: the frame as captured, the original length as its header says.
* pcapng in: every block copied as it is, but for the packet blocks given a comment (rebuilt
  with the comment first among their options, in their section's byte order) and the section
  headers (their section length set to unknown, -1: the blocks after them change size; the
  file's first also gets the section comment). A Simple Packet Block has no options, and a
  comment cannot be put on it without making it another block with a time it never had: it is
  copied as it is, and its comment counted in `Copied.uncommented` for the summary to tell.

The file is read by the readers the analysis used (open_capture: gzip, URLs), walked by the same
walkers, so it ends where the analysis's reading ended (at damage, the frames before it) and its
frames are numbered alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from ..read import open_capture
from ..read.pcap import PcapReader
from ..read.pcapng import (SHB, Blocks, PcapngReader, comment_options, interface_description, packet_blocks,
                           packet_options_at, section_header, section_of_unknown_length, with_comment)
from .comments import Comments

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
TSRESOL = {10**6: 6, 10**9: 9}  # a pcap header's units a second -> if_tsresol (a power of 10)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to write of one file, its frames numbered in the whole run (numbering.py)."""

    path: str
    before: int  # frames of the run's files before this one
    section: str | None  # the comment of its (first) section header
    comments: Comments  # frames given a comment, and the words
    keep: I64 | None = None  # the frames written, sorted; None: every one

    def commented(self, whole: I64) -> tuple[Mask, I64]:
        """Which of the frames `whole` get a comment, and where its words are in `comments`."""
        frames = self.comments.frames
        at = np.minimum(np.searchsorted(frames, whole), max(len(frames) - 1, 0))
        has: Mask = (frames[at] == whole) if len(frames) else np.zeros(len(whole), bool)
        return has, at

    def kept(self, whole: I64) -> Mask:
        if self.keep is None:
            return np.ones(len(whole), bool)
        out: Mask = np.isin(whole, self.keep)
        return out


@dataclass(slots=True)
class Copied:
    frames: int = 0
    comments: int = 0
    uncommented: list[int] = field(default_factory=list)  # frames (whole-run numbers) left without their comment


def copy_file(plan: Plan, out: BinaryIO, chunk_bytes: int) -> Copied:
    """Write the file of `plan` to `out` as pcapng sections."""
    reader = open_capture(plan.path, chunk_bytes)
    try:
        if isinstance(reader, PcapReader):
            return _from_pcap(reader, plan, out)
        assert isinstance(reader, PcapngReader)  # open_capture reads these two formats only
        return _from_pcapng(reader, plan, out)
    finally:
        reader.close()


def _from_pcap(reader: PcapReader, plan: Plan, out: BinaryIO) -> Copied:
    copied = Copied()
    head = reader.info.interfaces[0]
    out.write(section_header(plan.section)
              + interface_description(reader.linktype, head.snaplen, tsresol=TSRESOL[reader.units_per_s],
                                      fcslen=reader.fcs_bytes))
    for batch in reader:
        whole = batch.frame + plan.before
        which = np.flatnonzero(plan.kept(whole))
        units, batch.wirelen = reader.record_units(batch)  # the header's own, exact
        has, at = plan.commented(whole[which])
        raw = plan.comments.raw
        options = {i: comment_options(raw(a)) for i, a in zip(np.flatnonzero(has).tolist(), at[has].tolist())}
        out.write(packet_blocks(batch, which, units[which], np.zeros(len(which), np.int64), options))
        copied.frames += len(which)
        copied.comments += len(options)
    return copied


def _from_pcapng(reader: PcapngReader, plan: Plan, out: BinaryIO) -> Copied:
    copied = Copied()
    first_section = True
    for blocks in reader.blocks():
        packet = blocks.frame > 0
        whole = np.where(packet, blocks.frame + plan.before, 0)
        keep = ~packet | plan.kept(whole)
        has, at = plan.commented(whole)
        has &= packet & keep
        copied.uncommented += whole[has & blocks.simple].tolist()
        has &= ~blocks.simple
        section = blocks.kind == SHB
        pieces: list[bytes | memoryview] = []
        copied_up_to = 0  # blocks before it are written
        for i in np.flatnonzero(~keep | has | section).tolist():
            if copied_up_to < i:  # the blocks in between, as they are, in one piece
                pieces.append(blocks.data[int(blocks.start[copied_up_to]): int(blocks.end[i - 1])])
            if keep[i]:
                pieces.append(_rebuilt(blocks, i, plan, first_section, plan.comments.raw(int(at[i])) if has[i] else b""))
                first_section = first_section and not section[i]
            copied_up_to = i + 1
        if copied_up_to < len(blocks):
            pieces.append(blocks.data[int(blocks.start[copied_up_to]): int(blocks.end[-1])])
        out.write(b"".join(pieces))
        copied.frames += int(np.count_nonzero(packet & keep))
        copied.comments += int(np.count_nonzero(has))
    return copied


def _rebuilt(blocks: Blocks, i: int, plan: Plan, first_section: bool, comment: bytes) -> bytes:
    """Block `i` with what it gains: a section header its unknown length (and, the file's
    first, the section comment), a packet block its comment."""
    whole = blocks.data[int(blocks.start[i]): int(blocks.end[i])]
    order = ">" if blocks.big_endian[i] else "<"
    if blocks.kind[i] == SHB:
        return section_of_unknown_length(whole, order, plan.section if first_section else None)
    return with_comment(whole, packet_options_at(int(blocks.caplen[i])), order, comment)
