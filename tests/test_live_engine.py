"""What `teardown live` builds on, without root: the engine's provisional rows and the pcapng
writer, on the sample captures."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from teardown.decode import decode
from teardown.engine import Engine
from teardown.live.pcapng import PcapngWriter
from teardown.options import Options
from teardown.read import open_capture
from teardown.schema import INTERNAL_COLUMNS
from teardown.verdicts import Columns, text_columns

from .conftest import CAPTURES

SAMPLES = sorted(p for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng", ".gz"))
INTERNAL = set(INTERNAL_COLUMNS)


def _rows(cols: Columns) -> dict[str, dict[str, Any]]:
    ids = text_columns(cols)["flow_id"]
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
    writer = PcapngWriter(str(out), lt, 262144, "test0", "copy")
    for b in batches:
        keep = b.linktype == lt
        ns = np.round(b.ts[keep] * 1e9).astype(np.int64)
        sub = type(b)(b.data, b.pos[keep], b.caplen[keep], b.wirelen[keep], b.ts[keep], b.linktype[keep],
                      b.iface[keep], b.frame[keep])
        writer.write(sub, ns)
    writer.close(received=10, dropped=1)
    back = [b for b in open_capture(str(out), 1 << 20) if len(b)]
    orig = [bytes(b.data[p: p + c]) for b in batches for p, c, t in zip(b.pos, b.caplen, b.linktype) if t == lt]
    copy = [bytes(b.data[p: p + c]) for b in back for p, c in zip(b.pos, b.caplen)]
    assert copy == orig
    assert np.allclose(np.concatenate([b.ts for b in back]),
                       np.concatenate([b.ts[b.linktype == lt] for b in batches]), atol=1e-9)
