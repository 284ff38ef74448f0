"""The final rows a watch with -o keeps on disk (live/kept.py): every row comes back, exactly,
however it was split into parts, and a forked --every child reads what was there at the fork
while the parent goes on writing."""

from __future__ import annotations

import os

import numpy as np
import pytest

import teardown
from teardown.analysis import concat_rows
from teardown.engine import Engine
from teardown.live import kept
from teardown.live.rows import Event, Tracker
from teardown.schema import COLUMN_NAMES

from .conftest import CAPTURES
from .test_live_engine import replay

SAMPLE = CAPTURES / "tw_mixed_servers.pcap.gz"  # 810 connections, kernel-made


def _watch(tracker: Tracker) -> Engine:
    """The sample fed as live feeds it, rows retired 37 at a time (this short sample retires its
    810 only at the end, all at once; a watch retires a few per batch)."""
    engine, now = replay(SAMPLE, tracker, 2048, rows_at_a_time=37)
    for cols in engine.finish():
        for i in range(0, len(cols["incarnation"]), 37):
            tracker.final({k: v[i:i + 37] for k, v in cols.items()}, now, Event.stopped)
    return engine


@pytest.mark.parametrize("part_rows, part_slices", [(10**9, 10**9), (7, 10**9), (10**9, 3), (1, 1)],
                         ids=["all pending", "parts of 7 rows", "parts of 3 slices", "a part per slice"])
def test_every_row_comes_back_as_the_offline_table(monkeypatch: pytest.MonkeyPatch, part_rows: int,
                                                    part_slices: int) -> None:
    monkeypatch.setattr(kept, "PART_ROWS", part_rows)
    monkeypatch.setattr(kept, "PART_SLICES", part_slices)
    tracker = Tracker(None, SAMPLE.name, keep_rows=True)
    engine = _watch(tracker)
    assert tracker.final_rows is not None
    parts = tracker.final_rows.parts()
    if part_rows < 10**9 or part_slices < 10**9:
        assert tracker.final_rows.written > 0 and len(parts) > 1  # the case under test: rows went to disk
    live, _ = concat_rows(parts, engine.contexts.points)
    offline = teardown.analyze(str(SAMPLE)).columns
    assert len(live["incarnation"]) == len(offline["incarnation"]) == 810
    for name in COLUMN_NAMES:
        a, b = np.asarray(live[name]), np.asarray(offline[name])
        if a.dtype.kind == "f":
            assert np.array_equal(a, b, equal_nan=True), name
        else:
            assert a.tolist() == b.tolist(), name
    tracker.final_rows.close()


def test_a_forked_child_reads_the_rows_there_at_the_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kept, "PART_ROWS", 5)
    rows = kept.KeptRows()
    one = {"incarnation": np.arange(4, dtype=np.int64), "first_ts": np.linspace(0, 1, 4)}
    for _ in range(3):
        rows.add(dict(one))  # 12 rows: two parts on disk, 2 pending
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: waits until the parent has written more, then reads
        os.close(write)
        os.read(read, 1)
        try:
            n = sum(len(part["incarnation"].unpack() if hasattr(part["incarnation"], "unpack")
                        else part["incarnation"]) for part in rows.parts())
        except BaseException:
            n = -1
        os._exit(0 if n == 12 else 1)
    os.close(read)
    for _ in range(5):
        rows.add(dict(one))  # the parent appends while the child has not read yet
    os.write(write, b"x")
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sum(len(p["incarnation"].unpack() if hasattr(p["incarnation"], "unpack") else p["incarnation"])
               for p in rows.parts()) == 32
    rows.close()
