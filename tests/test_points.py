"""Two captures of one path (captures/points/: the same 34 connections on the client's and the
server's link of a router that dropped ten chosen segments, the server side's clock moved 3.2 s
with editcap): the connections they share, the offset between their clocks and the segments
lost between the points, against the sample's truth (points.truth.json: the peers' plan, the
router's iptables counters, the frames tshark finds the segments at)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from teardown import points
from teardown.analysis import Analysis, analyze
from teardown.matching import match
from teardown.present import RowsOf, text_columns

from .conftest import CAPTURES

HERE = CAPTURES / "points"
TRUTH = json.loads((HERE / "points.truth.json").read_text())
KIND = {"final_ack": "final ACK", "request1": "request", "request2": "request", "fin": "FIN"}


def _segments(x: Analysis, rows: Any, flipped: Any = None) -> points.Segments:
    m = match(x.capture.files, RowsOf(x.columns, rows), x.options)
    return points.Segments.of(m, np.arange(len(rows)), flipped)


@pytest.fixture(scope="module")
def joined() -> dict[str, Any]:
    a, b = analyze(str(HERE / "client_side.pcap")), analyze(str(HERE / "server_side.pcap"))
    pairs = points.paired_rows(a.columns, b.columns)
    sa, sb = _segments(a, pairs.a), _segments(b, pairs.b, pairs.flipped)
    first = points.clock_offset(sa, sb, *points.same_segments(sa, sb))[0]
    at_a, at_b = points.same_segments(sa, sb, first.offset_s)
    offset, a_first = points.clock_offset(sa, sb, at_a, at_b)
    lost = points.lost_between(sa, sb, at_a, at_b, offset, a_first, (a.capture.first_ts, a.capture.last_ts),
                               (b.capture.first_ts, b.capture.last_ts))
    ids = text_columns(RowsOf(a.columns, pairs.a))["flow_id"].tolist()
    return {"a": a, "b": b, "pairs": pairs, "offset": offset, "a_first": a_first, "lost": lost, "ids": ids}


def test_every_connection_is_paired_once(joined: dict[str, Any]) -> None:
    pairs = joined["pairs"]
    assert len(pairs) == TRUTH["connections"] == len(joined["a"]) == len(joined["b"])
    assert len(set(pairs.a.tolist())) == len(set(pairs.b.tolist())) == len(pairs)
    client_ports = np.asarray(joined["a"].columns["client_port"])[pairs.a]
    assert (client_ports == np.asarray(joined["b"].columns["client_port"])[pairs.b]).all()
    assert not pairs.flipped.any()


def test_the_clock_offset_is_the_shift_applied(joined: dict[str, Any]) -> None:
    """Within 1 ms of the +3.2 s editcap applied, and its uncertainty below the forwarding
    delay the truth measured on the SYNs (their time at the server side less the shift)."""
    offset = joined["offset"]
    assert abs(offset.offset_s - TRUTH["clock_offset_s"]) < 1e-3
    assert 0 <= offset.uncertainty_s <= float(TRUTH["clock_offset"]["syn_transit_s"]["max"])
    assert joined["a_first"].all(), "the client side is the point nearer every client"


def test_each_loss_in_its_direction_at_its_frame_and_none_elsewhere(joined: dict[str, Any]) -> None:
    lost, ids = joined["lost"], joined["ids"]
    got = sorted((ids[c], ("c2s", "s2c")[d], points.KINDS[k], ("client_side", "server_side")[s], int(f))
                 for c, d, k, s, f in zip(lost.connection, lost.direction, lost.kind, lost.seen_at, lost.frame))
    want = sorted((f"{f['client_ip']}:{f['client_port']}>{f['server_ip']}:{f['server_port']}/0", d["direction"],
                   KIND[d["what"]], "client_side" if d["direction"] == "c2s" else "server_side",
                   d["client_side_frame"] if d["direction"] == "c2s" else d["server_side_frame"])
                  for f in TRUTH["flows"] for d in f["dropped"])
    assert len(want) == TRUTH["dropped_segments"] == 10
    assert got == want
    counts = lost.counts(len(ids))
    assert counts.sum() == 10 and (counts[:, 0].sum(), counts[:, 1].sum()) == (9, 1)
