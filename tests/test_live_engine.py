"""What `teardown live` builds on, without root: the engine's provisional rows and the pcapng
writer, on the sample captures."""

from __future__ import annotations

import io
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import teardown
from teardown.decode import decode
from teardown.dissect import have_tshark
from teardown.engine import Engine
from teardown.read.pcapng import BlockCutter, PcapngReader, PcapngWriter
from teardown.options import Options
from teardown.read import CaptureInfo, FrameBatch, Interface, open_capture
from teardown.read.frames import Counts
from teardown.schema import INTERNAL_COLUMNS
from teardown.present import flow_ids
from teardown.verdicts import Columns

from .conftest import CAPTURES

SAMPLES = sorted(p for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng", ".gz"))
INTERNAL = set(INTERNAL_COLUMNS)


def _rows(cols: Columns) -> dict[str, dict[str, Any]]:
    ids = flow_ids(cols).to_pylist()
    return {str(f): {k: v[i] for k, v in cols.items() if k not in INTERNAL} for i, f in enumerate(ids)}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all((x != x and y != y) or x == y for x, y in ((a[k], b[k]) for k in a))


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_provisional_rows_are_the_final_rows_once_nothing_follows(path: Path) -> None:
    """Fed in small chunks and peeked at after each, the last provisional row of every
    incarnation whose teardown completed equals its final row: peek hands out every incarnation
    a segment can change, with the neighbours its verdicts read."""
    engine = Engine(Options())
    engine.track_changes()
    final: dict[str, dict[str, Any]] = {}
    provisional: dict[str, dict[str, Any]] = {}
    for batch in open_capture(str(path), 4096):
        packets = decode(batch, Counter(), engine.contexts)
        for cols in engine.feed(packets, batch.data, now=float(batch.ts[-1])):
            final.update(_rows(cols))
        cols_ = engine.provisional()
        if cols_ is not None:
            provisional.update(_rows(cols_))
    for cols in engine.finish():
        final.update(_rows(cols))
    assert set(provisional) <= set(final)
    differ = [f for f in provisional if not _same(provisional[f], final[f])]
    assert not differ
    # time_wait_on is empty (None) where the capture holds one direction only: not a teardown seen whole
    completed = [f for f, r in final.items()
                 if r["close_kind"] in ("rst", "refused") or r["time_wait_on"] not in ("none", None)]
    assert set(completed) <= set(provisional)  # each completed teardown was handed out provisionally


def test_written_pcapng_reads_back_frame_for_frame(tmp_path: Path) -> None:
    src = CAPTURES / "two_interfaces.pcapng"
    out = tmp_path / "copy.pcapng"
    batches = [b for b in open_capture(str(src), 1 << 20) if len(b)]
    lt = int(batches[0].linktype[0])
    writer = PcapngWriter(str(out), [Interface(lt, 262144, "test0")], "copy")
    for b in batches:
        keep = b.linktype == lt
        ns = np.round(b.ts[keep] * 1e9).astype(np.int64)
        sub = type(b)(b.data, b.pos[keep], b.caplen[keep], b.wirelen[keep], b.ts[keep], b.linktype[keep],
                      np.zeros(int(keep.sum()), np.uint16), b.frame[keep])
        writer.write(sub, ns)
    writer.close(received=10, dropped=1)
    back = [b for b in open_capture(str(out), 1 << 20) if len(b)]
    orig = [bytes(b.data[p: p + c]) for b in batches for p, c, t in zip(b.pos, b.caplen, b.linktype) if t == lt]
    copy = [bytes(b.data[p: p + c]) for b in back for p, c in zip(b.pos, b.caplen)]
    assert copy == orig
    assert np.allclose(np.concatenate([b.ts for b in back]),
                       np.concatenate([b.ts[b.linktype == lt] for b in batches]), atol=1e-9)


def replay(path: Path, tracker: Any, chunk: int = 4096, rows_at_a_time: int | None = None) -> tuple[Engine, float]:
    """The capture fed to an engine and a live Tracker as live feeds them, a batch at a time:
    rows retired as they come (`rows_at_a_time` of them at once, as a watch retires a few per
    batch), provisional rows after each batch. The engine is not finished: (it, the last time)."""
    from teardown.live.rows import Event

    engine = Engine(Options())
    engine.track_changes()
    now = 0.0
    for batch in open_capture(str(path), chunk):
        packets = decode(batch, Counter(), engine.contexts)
        now = float(batch.ts[-1]) if len(batch) else now
        for cols in engine.feed(packets, batch.data, now=now):
            n = len(cols["incarnation"])
            step = rows_at_a_time or max(n, 1)
            for i in range(0, n, step):
                tracker.final({k: v[i:i + step] for k, v in cols.items()}, now, Event.retired)
        tracker.provisional(engine.provisional(), now)
    return engine, now


class _Replay:
    """A live frame source (read.frames.FrameSource) that hands over a capture file's frames at
    the first take, then ends: the live session without an interface, and so without root."""

    def __init__(self, path: Path) -> None:
        self.batches = [b for b in open_capture(str(path), 1 << 20) if len(b)]
        self.linktype = int(self.batches[0].linktype[0])
        self.interfaces = [Interface(self.linktype, 262144)]
        self.written: list[Any] = []
        self.counts = Counts()
        self.stopped = threading.Event()
        self.stop_reason: str | None = "replayed"

    def start(self) -> None: ...

    def take(self) -> FrameBatch | None:
        if not self.batches:
            return None
        batch = self.batches.pop(0)
        self.counts.frames += len(batch)
        self.stopped.set()
        return batch

    def refresh_counts(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


@pytest.mark.skipif(not have_tshark(), reason="needs tshark (CI installs it)")
def test_live_hands_frames_of_other_link_types_over_as_offline_does(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Link type 138 (IP over IEEE 1394), which the fast decoder does not read: live hands its
    frames to tshark as `--reader auto` does offline, and judges the same connection."""
    from teardown.live import session
    from teardown.source import LiveSource

    from .test_readers import AP1394, _on_link_type

    path, n = _on_link_type(tmp_path, *AP1394)

    def replay(s: session.LiveSettings, decoding: Any) -> LiveSource:
        return LiveSource(_Replay(path), decoding, CaptureInfo(path="replay (live)", format="live"))

    monkeypatch.setattr(session, "open_source", replay)
    settings = session.LiveSettings("replay0", view=False, keep_rows=True)
    result = session.run(settings, Options(), io.StringIO(), io.StringIO())
    assert result.handed_off == {"link type 138 (unknown) to tshark": n}
    live = session.analysis_of(result, Options()).flows
    offline = teardown.analyze(str(path)).flows
    for k in ("client_port", "server_port", "close_kind", "active_closer", "time_wait_on", "link_type"):
        assert live[k].tolist() == offline[k].tolist(), k


@pytest.mark.parametrize("jsonl", [False, True], ids=["view only", "jsonl"])
def test_one_four_tuple_in_two_tunnels_is_two_closes_live(jsonl: bool) -> None:
    """vxlan.pcap holds one inner 4-tuple in VXLAN VNI 100 and VNI 200: two connections (its
    truth lists two flows). Live keys its rows by flow_id, carrier prefix included, with or
    without --jsonl, so both count as closes, as in the table."""
    import json

    from teardown.live.kernel import by_address
    from teardown.live.rows import Event, Tracker

    path = CAPTURES / "encapsulated" / "vxlan.pcap"
    truth = json.loads(path.with_suffix(".truth.json").read_text())["flows"]
    out = io.StringIO()
    tracker = Tracker(out if jsonl else None, path.name, keep_rows=False)
    engine, now = replay(path, tracker)
    # TIME_WAIT held at the end, per host as the host table names hosts: the client once in
    # each tunnel. The kernel, which knows addresses only, is compared with their sum.
    held = Counter(tracker.t.time_wait)
    assert held == Counter({"c1/198.18.0.1": 1, "c2/198.18.0.1": 1})
    assert held == Counter({h: int(k) for h, k in zip(teardown.analyze(str(path)).hosts["host"],
                                                       teardown.analyze(str(path)).hosts["time_wait_total"]) if k})
    assert by_address(held) == Counter({"198.18.0.1": 2})
    for cols in engine.finish():
        tracker.final(cols, now, Event.stopped)
    closes = Counter({key: n for key, n in tracker.t.closes.items() if key[0] == "fin"})
    assert sum(closes.values()) == len(truth) == 2
    assert closes == Counter((f["close_kind"], f["active_closer"]) for f in truth)
    if jsonl:
        first = [json.loads(line) for line in out.getvalue().splitlines() if not json.loads(line)["update"]]
        assert sorted(line["flow_id"] for line in first) == ["c1/198.18.0.1:52776>198.18.0.2:8080/0",
                                                              "c2/198.18.0.1:52776>198.18.0.2:8080/0"]


def test_a_pcapng_stream_cut_at_any_byte_reads_back_frame_for_frame() -> None:
    """dumpcap's pipe arrives in pieces of any size: the blocks cut from it (read.pcapng.BlockCutter),
    each cut read after the section header and interface descriptions, give the file's frames."""
    raw = (CAPTURES / "two_interfaces.pcapng").read_bytes()
    want = [bytes(b.data[p: p + c]) for b in open_capture(str(CAPTURES / "two_interfaces.pcapng"), 1 << 20)
            for p, c in zip(b.pos, b.caplen)]
    cutter, buf, got = BlockCutter(), bytearray(), []
    for at in range(0, len(raw), 777):
        buf += raw[at: at + 777]
        blocks = cutter.cut(buf)
        if blocks:
            data = cutter.head + blocks
            reader = PcapngReader(io.BytesIO(data[4:]), data[:4], CaptureInfo(path="pipe"), len(data) + 4096)
            got += [bytes(b.data[p: p + c]) for b in reader for p, c in zip(b.pos, b.caplen)]
    assert got == want and not buf


def test_live_readers_are_named_for_what_runs() -> None:
    """`--reader dumpcap` runs dumpcap; `pyshark`, its first name, still selects it, and a name
    that runs nothing is one usage line."""
    from teardown.errors import UsageError
    from teardown.live.session import LiveSettings

    assert LiveSettings("lo", reader="pyshark").reader == "dumpcap"
    assert LiveSettings("lo", reader="dumpcap").reader == "dumpcap"
    with pytest.raises(UsageError, match="choose one of scapy, dumpcap"):
        LiveSettings("lo", reader="tshark")
