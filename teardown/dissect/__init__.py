"""Frames -> TCP packet columns through a third-party dissector (scapy, tshark), beside the fast
C decoder. Every reader hands the flow engine the same `decode.Packets` and the bytes their
payload offsets point into, so flows, verdicts and everything after them are shared code.

This stage sits after `decode` (it produces decode's records, and `read` may not import
`decode`); `source.py` picks the reader (`Options.reader`) for every caller:

  scapy_reader.py   scapy's layers dissect each frame of our record walker's batches
  tshark_reader.py  tshark dissects the capture and prints only the fields needed (--reader tshark)
  auto.py           the fast decoder; frames of link types it does not read handed to scapy, else tshark

Where a segment was carried (interface, link type, VLAN tags, tunnels) is part of its
connection's identity (docs/rules.md, "Vocabulary"): see carriers.py for the `Carrier`, its
encapsulation text and how `Contexts` numbers carriers into `Packets.ctx`. Every reader gives
each segment the Carrier and encapsulation text the fast decoder's walk gives its frame
(`carriers.carrier_of`: scapy's reader calls it on the frame's bytes, tshark's rebuilds it from
tshark's protocol chain and fields) and numbers them in segment order, so every reader numbers
them alike. MPLS labels, PPPoE sessions and GTP TEIDs are not part of a carrier (a GTP-U
tunnel's ends are).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import shutil
from collections import Counter
from dataclasses import fields, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..carriers import Contexts as Contexts  # re-exported: every reader numbers carriers in one
from ..decode import LINKTYPE_NAMES, Packets
from ..errors import CaptureError, ReaderUnavailable
from ..options import ReaderKind
from ..read import FrameBatch

IPV4_MAPPED = 0xFFFF << 32  # ::ffff:a.b.c.d, as the fast decoder stores IPv4 addresses

# The fast decoder's words for a frame it drops (decode._IP_REASONS), used by every reader so
# that the skip counts of the readers compare.
NOT_IP = "not IP"
LATER_FRAGMENT = "IP fragment after the first"
BAD_IP = "truncated or malformed IP header"
NOT_TCP = "not TCP"
NO_TCP_HEADER = "truncated before the TCP header"
BAD_TCP = "malformed TCP header"

# Link headers whose length the fast decoder checks first (`_decode.c` link_layer).
LINK_HEADER_BYTES = {1: 14, 113: 16, 276: 20, 0: 4, 108: 4}


def short_link(linktype: int) -> str:
    """The fast decoder's reason for a frame shorter than its link header."""
    return f"frame shorter than its {LINKTYPE_NAMES[linktype]} header"


SCAPY_INSTALL = "pip install scapy"
TSHARK_INSTALL = "apt-get install tshark (Debian/Ubuntu), dnf install wireshark-cli, or Wireshark from wireshark.org"


@functools.lru_cache(maxsize=1 << 16)  # the slow readers meet the same few addresses again and again
def address(text: str) -> tuple[int, int]:
    """'198.18.0.1' or 'fd00::1' -> (hi, lo) 64-bit halves as the fast decoder stores them."""
    ip = ipaddress.ip_address(text)
    value = IPV4_MAPPED | int(ip) if ip.version == 4 else int(ip)
    return value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF


def _dtypes() -> dict[str, np.dtype[Any]]:
    empty = Packets.empty()
    return {f.name: getattr(empty, f.name).dtype for f in fields(Packets)}


DTYPES = _dtypes()


def packets_from(columns: dict[str, Any]) -> Packets:
    """`Packets` from one array (or list) per field, in the fast decoder's dtypes."""
    return Packets(**{f.name: np.ascontiguousarray(columns[f.name], DTYPES[f.name]) for f in fields(Packets)})


def merge(parts: list[tuple[Packets, npt.NDArray[np.uint8]]]) -> tuple[Packets, npt.NDArray[np.uint8]]:
    """Packets of several decoders of one batch, in frame order, over one byte buffer: each
    part's payload offsets are moved to where its buffer lands in the joined one (parts that
    share a buffer, as the fast and scapy decoders share the batch's, share its place)."""
    parts = [(p, d) for p, d in parts if len(p)]
    if len(parts) <= 1:
        return parts[0] if parts else (Packets.empty(), np.zeros(0, np.uint8))
    buffers: list[npt.NDArray[np.uint8]] = []
    bases: list[int] = []
    moved = []
    for p, data in parts:
        i = next((k for k, b in enumerate(buffers) if b is data), -1)
        if i < 0:
            bases.append(sum(len(b) for b in buffers))
            buffers.append(data)
        base = bases[i]
        moved.append(replace(p, payload_at=np.where(p.payload_at >= 0, p.payload_at + base, -1)) if base else p)
    joined = Packets.concat(moved)
    return joined.take(np.argsort(joined.frame, kind="stable")), (
        np.concatenate(buffers) if len(buffers) > 1 else buffers[0])


WHOLE_FILE_TO_TSHARK = "whole files in a format the fast reader does not read, to tshark"


def other_format(error: CaptureError) -> bool:
    """The fast reader refused a file for its format, and tshark is there to try it (auto)."""
    return error.problem.startswith("not a pcap or pcapng file") and have_tshark()


def tshark_path() -> str:
    """Where tshark is: pyshark's configured path when pyshark is installed, else PATH."""
    try:
        from pyshark.tshark.tshark import get_process_path  # type: ignore[import-untyped, import-not-found, unused-ignore]  # pyshark is optional

        found = str(get_process_path())
        if os.access(found, os.X_OK):
            return found
    except Exception:  # pyshark missing, or its config names no tshark: look on PATH
        pass
    found_on_path = shutil.which("tshark")
    if found_on_path is None:
        raise ReaderUnavailable(f"tshark not found; install it: {TSHARK_INSTALL}")
    return found_on_path


def have_tshark() -> bool:
    try:
        tshark_path()
    except ReaderUnavailable:
        return False
    return True


class FrameDecoder(Protocol):
    """Turns our walker's frame batches into packets, in place of the fast decoder."""

    def decode(self, batch: FrameBatch, skipped: Counter[str]) -> tuple[Packets, npt.NDArray[np.uint8]]:
        """The batch's segments and the bytes their payload offsets point into; frames not
        decoded are counted in `skipped` by reason."""

    def report(self) -> tuple[Counter[str], list[str]]:
        """Frames handed to another dissector, by kind; warnings for the summary."""


def frame_decoder(kind: ReaderKind, contexts: Contexts) -> FrameDecoder | None:
    """The decoder of `--reader kind` for our walker's batches: None for the fast decoder
    itself, and for pyshark, where tshark reads the file."""
    if kind is ReaderKind.scapy:
        from .scapy_reader import ScapyDecoder

        return ScapyDecoder(contexts)
    if kind is ReaderKind.auto:
        from .auto import AutoDecoder

        return AutoDecoder(contexts)
    if kind is ReaderKind.tshark:
        tshark_path()  # missing: say so before reading anything
    return None
