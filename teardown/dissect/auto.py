"""Frame batches -> TCP packet columns: the fast decoder first, then the frames it cannot decode
handed to scapy (or, for what scapy does not know either, tshark).

The fast decoder walks every encapsulation scapy and tshark are asked about here (VLAN tags,
MPLS, PPPoE, IP-in-IP, GRE and ERSPAN, VXLAN, GENEVE, GTP-U) and the link types of
`decode.SUPPORTED`; what it skips on those (802.11 management frames, encrypted payloads, link
control, unknown tunnel payloads, ...) neither of the others would find TCP in either. So what
is handed over is the frames of a link type it does not read at all. A capture of link types
it reads costs nothing more. The skip counts stay exact: the fast decoder's reasons for the
handed-over frames are taken back, and the other decoder counts its own. Everything handed over
is counted by kind for the summary, which says so. The carriers of the handed-over frames are
numbered (carriers.Contexts) after those the fast decoder numbered in the same batch.
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property

import numpy as np
import numpy.typing as npt

from ..decode import LINKTYPE_NAMES, SUPPORTED, Packets, decode
from ..errors import ReaderUnavailable
from ..read import FrameBatch
from . import SCAPY_INSTALL, TSHARK_INSTALL, Contexts, have_tshark, merge
from .scapy_reader import ScapyDecoder

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]


def candidates(b: FrameBatch, idx: I64) -> tuple[I64, list[str]]:
    """Which of the frames `idx` (skipped by the fast decoder) are of a link type it does not
    read, and what each is ("link type 147 (unknown)", ...)."""
    lt = b.linktype[idx].astype(np.int64)
    chosen = ~np.isin(lt, SUPPORTED)
    names = [f"link type {t} ({LINKTYPE_NAMES.get(t, 'unknown')})" for t in lt[chosen].tolist()]
    return idx[chosen], names


class AutoDecoder:
    """The fast decoder, and a hand-off of what it cannot decode (see the module comment)."""

    def __init__(self, contexts: Contexts) -> None:
        self.contexts = contexts
        self.handed_off: Counter[str] = Counter()  # "link type 147 (unknown) to tshark" -> frames
        self.not_decoded: Counter[str] = Counter()  # frames nothing could be handed to, by kind

    @cached_property
    def scapy(self) -> ScapyDecoder | None:
        """Loaded at the first frame to hand over: importing scapy costs about a second."""
        try:
            return ScapyDecoder(self.contexts)
        except ReaderUnavailable:
            return None

    @cached_property
    def tshark(self) -> bool:
        return have_tshark()

    def decode(self, batch: FrameBatch, skipped: Counter[str]) -> tuple[Packets, U8]:
        local: Counter[str] = Counter()
        packets = decode(batch, local, self.contexts)
        if not local:
            return packets, batch.data
        undecoded = np.ones(len(batch), bool)
        undecoded[packets.frame - batch.frame[0]] = False  # a batch's frames are numbered in a run
        idx, kinds = candidates(batch, np.flatnonzero(undecoded))
        if not len(idx) or (self.scapy is None and not self.tshark):
            self.not_decoded.update(kinds)
            skipped.update(local)
            return packets, batch.data
        # Take back the fast decoder's counts for the frames handed over: the others count them.
        again: Counter[str] = Counter()
        decode(_subset(batch, idx), again)
        local.subtract(again)
        parts = [(packets, batch.data)]
        to_tshark = idx
        if self.scapy is not None:
            known = np.array([self.scapy.knows(int(t)) for t in batch.linktype[idx]], bool)
            parts.append(self.scapy.decode(batch, local, idx[known]))
            self.handed_off.update(f"{k} to scapy" for k, ok in zip(kinds, known.tolist()) if ok)
            to_tshark, kinds = idx[~known], [k for k, ok in zip(kinds, known.tolist()) if not ok]
        if len(to_tshark):
            if self.tshark:
                from .tshark_reader import decode_frames

                parts.append(decode_frames(batch, to_tshark, self.contexts, local))
                self.handed_off.update(f"{k} to tshark" for k in kinds)
            else:
                self.not_decoded.update(kinds)
                local.update(_recount(batch, to_tshark))  # skipped after all, for the fast decoder's reasons
        skipped.update(+local)
        return merge(parts)

    def report(self) -> tuple[Counter[str], list[str]]:
        return self.handed_off, self.warnings()

    def warnings(self) -> list[str]:
        """What could not be handed over, and how to fix that."""
        if not self.not_decoded:
            return []
        what = ", ".join(f"{k} {v:,}" for k, v in self.not_decoded.most_common())
        missing = [] if self.scapy is not None else [f"scapy ({SCAPY_INSTALL})"]
        missing += [] if self.tshark else [f"tshark ({TSHARK_INSTALL})"]
        return [f"{sum(self.not_decoded.values()):,} frames of link types the fast reader does not decode were "
                f"skipped ({what}); install {' or '.join(missing)} to read them"]


def _subset(b: FrameBatch, idx: I64) -> FrameBatch:
    return FrameBatch(b.data, b.pos[idx], b.caplen[idx], b.wirelen[idx], b.ts[idx], b.linktype[idx], b.iface[idx],
                      b.frame[idx])


def _recount(b: FrameBatch, idx: I64) -> Counter[str]:
    """The fast decoder's skip reasons for some frames."""
    counts: Counter[str] = Counter()
    decode(_subset(b, idx), counts)
    return counts
