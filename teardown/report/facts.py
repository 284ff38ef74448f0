"""What a report's header states: which capture files were read (name, size, SHA-256, span, link
types), with which settings, by which version of the tool. Built from an `Analysis`, or read back
from the metadata of a saved result, so `teardown report` can state the same facts later.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import __version__
from ..analysis import Analysis
from ..present import where_prefix
from ..read import time_span
from ..terminal import points_text
from ..options import Options, OsProfile


@dataclass(frozen=True, slots=True)
class FileFacts:
    path: str  # as given on the command line
    size_bytes: int
    sha256: str
    format: str  # "pcap", "pcapng", with "+gzip" when compressed
    frames: int
    first_ts: float | None
    last_ts: float | None
    damaged: str | None = None  # where reading stopped early, if it did
    frames_before: int = 0  # frames of its capture in the files before it (read.CaptureInfo)


@dataclass(frozen=True, slots=True)
class Facts:
    """The header of a report: the capture, the settings of the analysis, the tool."""

    files: tuple[FileFacts, ...]
    tcp_packets: int
    link_types: dict[str, int]
    skipped: dict[str, int]
    warnings: tuple[str, ...]
    continuous: bool  # several files read as one capture
    os_profile: str
    time_wait_override_s: float | None  # --time-wait, when given
    host_os: tuple[tuple[str, str], ...]
    port_range: tuple[int, int]
    tool_version: str
    analyzed_ts: float  # when the analysis ran (the report may be rendered later)
    # Flow id prefix -> the carrier it stands for ("c1" -> "VXLAN VNI 42 ..."), and the copies
    # of connections seen at several points that were set aside: point -> segments.
    carriers: dict[str, str] = field(default_factory=dict)
    copies: dict[str, int] = field(default_factory=dict)
    copied_connections: int = 0
    # Files written beside the report for Wireshark (--annotate, --extract): name -> what it holds.
    for_wireshark: dict[str, str] = field(default_factory=dict)
    # Captures of one path joined (points/): what the summary says of each pair, in words.
    points: tuple[str, ...] = ()

    def options(self) -> Options:
        """The settings the analysis ran with."""
        return Options(os=OsProfile(self.os_profile), time_wait_s=self.time_wait_override_s,
                       host_os=tuple((h, OsProfile(p)) for h, p in self.host_os), port_range=self.port_range)

    @property
    def time_wait_s(self) -> float:
        options = self.options()
        return options.behaviour_of(options.os).time_wait_s

    @property
    def frames(self) -> int:
        return sum(f.frames for f in self.files)

    @property
    def first_ts(self) -> float | None:
        return time_span(self.files)[0]

    @property
    def last_ts(self) -> float | None:
        return time_span(self.files)[1]

    @property
    def size_bytes(self) -> int:
        return sum(f.size_bytes for f in self.files)

    def frame_numbering(self) -> dict[str, tuple[int, int | None]]:
        """Per file name, as `capture_file` gives it: the frames of its capture before it, and
        the number of its last frame in the capture's numbering (None where not known): what
        turns frame numbers that run on across a rotation into the numbers of one file. A name
        two files share is left out: a row naming it could mean either."""
        out: dict[str, tuple[int, int | None]] = {}
        shared = set()
        for f, after in zip(self.files, [*self.files[1:], None]):
            name = os.path.basename(f.path)
            # A file ends where the next file of its capture begins. A live rotation counts its
            # frames on its first file (report facts of a watch): the next file's start says more.
            if after is not None and after.frames_before > f.frames_before:
                last: int | None = after.frames_before
            else:
                last = f.frames_before + f.frames if f.frames else None
            if name in out:
                shared.add(name)
            out[name] = (f.frames_before, last)
        return {name: numbers for name, numbers in out.items() if name not in shared}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> Facts:
        """Inverse of `to_json`; KeyError or TypeError when `data` is not what `to_json` wrote."""
        files = tuple(FileFacts(**f) for f in data["files"])
        host_os = tuple((str(h), str(p)) for h, p in data["host_os"])
        low, high = data["port_range"]
        rest = {k: v for k, v in data.items() if k not in ("files", "host_os", "port_range", "warnings")}
        rest["points"] = tuple(rest.get("points", ()))
        return Facts(files=files, host_os=host_os, port_range=(int(low), int(high)),
                     warnings=tuple(data["warnings"]), **rest)


def sha256_of(path: str) -> str:
    """The file's SHA-256; a note instead where it is not a file here (a URL a cluster's
    workers read, or a file gone since)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    except OSError:
        return "(not hashed: not a file on this machine)"
    return digest.hexdigest()


def facts_of(analysis: Analysis) -> Facts:
    """The header facts of a fresh analysis; hashes each capture file (about 0.3 s per 100 MB)
    that its writer did not hash as it wrote it (live --write)."""
    cap = analysis.capture
    options = analysis.options
    files = tuple(
        FileFacts(path=f.path, size_bytes=f.size_bytes, sha256=f.sha256 or sha256_of(f.path),
                  format=f.format + ("+gzip" if f.compressed else ""), frames=f.frames,
                  first_ts=f.first_ts, last_ts=f.last_ts,
                  damaged=str(f.damage) if f.damage is not None else None, frames_before=f.frames_before)
        for f in cap.files)
    return Facts(
        files=files, tcp_packets=cap.tcp_packets, link_types=dict(cap.link_types),
        skipped={k: v for k, v in cap.skipped.items() if v}, warnings=tuple(cap.warnings),
        continuous=cap.continuous, os_profile=options.os.value, time_wait_override_s=options.time_wait_s,
        host_os=tuple((host, profile.value) for host, profile in options.host_os),
        port_range=options.port_range, tool_version=__version__, analyzed_ts=time.time(),
        carriers={where_prefix(k).rstrip("/"): what for k, what in sorted(cap.carried_in.items())},
        copies=dict(cap.copies.packets.most_common()), copied_connections=cap.copies.connections,
        points=tuple(points_text(j) for j in cap.joined))
