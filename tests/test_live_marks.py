"""What live --write's writer notes as it writes (read/rotation.py): the marks by which the
report's ladders read only the stretches of the file that hold the flows drawn, and the hash of
what was written, so that a report (each --every rewrite) reads neither the whole file again."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import teardown
from teardown.read import open_capture
from teardown.read import rotation
from teardown.read.pcapng import PcapngWriter
from teardown.read.rotation import Rotation
from teardown.read import Interface
from teardown import matching
from teardown.report import ladder
from teardown.present import RowsOf

from .conftest import CAPTURES

SAMPLE = CAPTURES / "tw_mixed_servers.pcap.gz"  # 810 connections, kernel-made


def _rewritten(path: Path, out: Path, rotation_: Rotation | None = None) -> PcapngWriter:
    """The sample written again as live writes it: small batches, each with its frames' times."""
    batches = [b for b in open_capture(str(path), 1 << 14) if len(b)]
    writer = PcapngWriter(str(out), [Interface(int(batches[0].linktype[0]), 262144, "lo")], "test", rotation_)
    for b in batches:
        writer.write(b, np.round(b.ts * 1e9).astype(np.int64))
    return writer


@pytest.mark.parametrize("rotate", [False, True], ids=["one file", "rotated"])
def test_ladders_read_by_marks_are_the_ladders_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          rotate: bool) -> None:
    monkeypatch.setattr(rotation, "MARK_BYTES", 8192)
    writer = _rewritten(SAMPLE, tmp_path / "w.pcapng", Rotation(400_000) if rotate else None)
    writer.close(0, 0)
    written = writer.files.files
    assert len(written) == (3 if rotate else 1)
    a = teardown.analyze([f.path for f in written])
    plain = a.capture.files
    marked = [replace(info, marks=w.marks) for info, w in zip(plain, written)]
    assert all(len(f.marks) > 5 for f in marked)
    flows = a.columns
    n = len(flows["incarnation"])
    for rows in (np.arange(n), np.array([0, 1, n // 2, n - 2, n - 1])):
        some = RowsOf(flows, rows)
        whole = ladder.ladders(plain, some, a.options)
        by_marks = ladder.ladders(marked, some, a.options)
        assert len(whole) == len(rows)
        assert by_marks == whole
    # Five flows: only the stretches holding them are read.
    five = RowsOf(flows, np.array([0, n // 2, n - 1]))
    read = sum(stop - mark.offset for f in marked for mark, stop in matching.stretches(f, five))
    assert 0 < read < sum(f.size_bytes for f in marked) / 4


def test_the_writer_hashes_what_it_wrote(tmp_path: Path) -> None:
    writer = _rewritten(SAMPLE, tmp_path / "w.pcapng")
    file = writer.files.files[0]
    assert file.size is not None
    # While the capture runs (an --every child): the hash of the bytes written so far.
    assert file.sha256 == hashlib.sha256((tmp_path / "w.pcapng").read_bytes()[:file.size]).hexdigest()
    writer.close(5, 1)
    assert file.size == (tmp_path / "w.pcapng").stat().st_size
    assert file.sha256 == hashlib.sha256((tmp_path / "w.pcapng").read_bytes()).hexdigest()


def test_a_size_under_the_files_head_puts_one_frame_in_each_file(tmp_path: Path) -> None:
    """--write-size below the section header and interface descriptions (~200 bytes): each file
    takes one frame, rather than none forever (which looped)."""
    import signal

    def hung(*_: object) -> None:
        raise TimeoutError("the writer did not finish")

    sample = CAPTURES / "client_first_close.pcap"
    frames = sum(len(b) for b in open_capture(str(sample), 1 << 14))
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        writer = _rewritten(sample, tmp_path / "w.pcapng", Rotation(10))
        writer.close(0, 0)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    files = [f.path for f in writer.files.files]
    assert len(files) == frames
    assert [sum(len(b) for b in open_capture(f, 1 << 14)) for f in files] == [1] * frames
    assert teardown.analyze(files).capture.tcp_packets == frames
