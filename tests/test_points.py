"""Two captures of one path (captures/points/: the same 34 connections on the client's and the
server's link of a router that dropped ten chosen segments, the server side's clock moved 3.2 s
with editcap): the connections they share, the offset between their clocks and the segments
lost between the points, against the sample's truth (points.truth.json: the peers' plan, the
router's iptables counters, the frames tshark finds the segments at)."""

from __future__ import annotations

import json
import shutil
from typing import Any

import numpy as np
import pytest

from teardown.points import segments as points
from teardown.analysis import Analysis, analyze
from teardown.matching import match
from teardown.points import join_points
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


# ---- from the command line: teardown analyze --points CLIENT_SIDE SERVER_SIDE ------------------

@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str]:
    import contextlib
    import io

    import pandas as pd

    from teardown.cli import main

    out = tmp_path_factory.mktemp("points") / "flows.csv"
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        assert main(["analyze", "--points", str(HERE / "client_side.pcap"), str(HERE / "server_side.pcap"),
                     "-o", str(out)]) == 0
    return pd.read_csv(out), said.getvalue()


def test_one_row_per_connection_with_both_points_and_the_offset(table: tuple[Any, str]) -> None:
    flows, _ = table
    assert len(flows) == TRUTH["connections"]
    assert (flows["seen_at"] == "client_side.pcap; server_side.pcap").all()
    assert (abs(flows["clock_offset_s"] - TRUTH["clock_offset_s"]) < 1e-3).all()


def test_each_side_s_state_from_the_point_nearest_it(table: tuple[Any, str]) -> None:
    """The TIME_WAIT holders as `ss` listed them in each namespace, each row judged at the point
    nearer its holder, its times in the client side's clock (the SYN's time there)."""
    flows, _ = table
    by_port = flows.set_index("client_port")
    for f in TRUTH["flows"]:
        row = by_port.loc[f["client_port"]]
        assert row["time_wait_on"] == f["ss_time_wait_on"] == f["time_wait_on"], f["client_port"]
        assert row["capture_file"] == f"{f['ss_time_wait_on']}_side.pcap", f["client_port"]
        assert abs(row["first_ts"] - float(f["syn_ts"]["client_side"])) < 1e-3, f["client_port"]
    assert flows["time_wait_on"].value_counts().to_dict() == {"client": 17, "server": 17}


def test_losses_per_connection_and_in_words(table: tuple[Any, str]) -> None:
    flows, summary = table
    by_port = flows.set_index("client_port")
    for f in TRUTH["flows"]:
        row = by_port.loc[f["client_port"]]
        c2s = [d for d in f["dropped"] if d["direction"] == "c2s"]
        s2c = [d for d in f["dropped"] if d["direction"] == "s2c"]
        assert (row["lost_between_c2s"], row["lost_between_s2c"]) == (len(c2s), len(s2c)), f["client_port"]
        words = row["lost_between"] if isinstance(row["lost_between"], str) else ""
        for d in f["dropped"]:  # what the point downstream saw next: the segment sent again, or the FIN again
            side, up, down = (("client", "client_side", "server_side") if d["direction"] == "c2s"
                              else ("server", "server_side", "client_side"))
            then = (f"the server sent its FIN again ({down}.pcap frame {d['fin_again_frames'][down]})"
                    if d["what"] == "final_ack" else
                    f"sent again, it got there ({down}.pcap frame {d['retransmission_frames'][down]})")
            assert (f"the {side}'s {KIND[d['what']]} ({up}.pcap frame {d[up + '_frame']}) never reached {down}.pcap; "
                    f"{then}") in words, words
        assert bool(words) == bool(f["dropped"])
    text = " ".join(summary.split())
    assert "capture points joined: client_side.pcap and server_side.pcap saw the same 34 connections" in text
    assert ("10 segments lost between them: client to server 9 (4 final ACKs, 3 requests, 2 FINs); server to "
            "client 1 (1 FIN)") in text
    assert "34 connections: closed first by the client 17, the server 17" in text
    assert ("lost-between-points: 10 segments lost between client_side.pcap and server_side.pcap, in 10 of 34 "
            "connections: client to server 9 (4 final ACKs, 3 requests, 2 FINs); server to client 1 (1 FIN)") in text


def test_one_capture_leaves_the_point_columns_empty() -> None:
    one = analyze(str(HERE / "client_side.pcap"))
    assert "lost-between-points" not in {f.kind for f in one.host_views.findings}
    flows = one.flows
    assert flows[["seen_at", "clock_offset_s", "lost_between_c2s", "lost_between_s2c", "lost_between"]].isna().all().all()


def test_the_report_says_which_points_were_joined(tmp_path: Any) -> None:
    """Fresh, and drawn again from the saved analysis: the header names the points, the offset
    and the losses, as the summary does."""
    from teardown.cli import main

    sides = [str(HERE / "client_side.pcap"), str(HERE / "server_side.pcap")]
    assert main(["analyze", "--points", *sides, "-o", str(tmp_path / "r.html"), "--quiet"]) == 0
    assert main(["analyze", "--points", *sides, "-o", str(tmp_path / "r.parquet"), "--quiet"]) == 0
    assert main(["report", str(tmp_path / "r.parquet"), "-o", str(tmp_path / "again.html")]) == 0
    for page in ("r.html", "again.html"):
        html = (tmp_path / page).read_text().replace("&#39;", "'")
        fact = html.split("<dt>Capture points</dt>", 1)[1].split("</dd>", 1)[0]
        assert "client_side.pcap and server_side.pcap saw the same 34 connections" in fact
        assert "server_side.pcap's clock is +3.2000" in fact and "10 segments lost between them" in fact


@pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap is not installed (apt-get install tshark)")
def test_overlapping_captures_sharing_connections_join_without_the_flag(tmp_path: Any) -> None:
    """The server side moved back into the client side's time (editcap -t -3.1: the clocks 0.1 s
    apart, the files overlapping): recognised as two points of one path and joined; two captures
    that share no connection stay apart."""
    import subprocess

    near = tmp_path / "server_side_near.pcap"
    subprocess.run(["editcap", "-F", "pcap", "-t", "-3.1", str(HERE / "server_side.pcap"), str(near)], check=True,
                   capture_output=True)
    joined = join_points(analyze([str(HERE / "client_side.pcap"), str(near)]))
    (pair,) = joined.capture.joined
    assert len(joined) == TRUTH["connections"] and pair.both == TRUTH["connections"]
    assert abs(pair.offset_s - 0.1) < 1e-3
    other = tmp_path / "other_service.pcap"  # captures/diff/after.pcap moved to start 0.5 s after the client side
    starts = [analyze(str(p)).capture.first_ts or 0.0 for p in (HERE / "client_side.pcap", CAPTURES / "diff" / "after.pcap")]
    subprocess.run(["editcap", "-F", "pcap", "-t", f"{starts[0] - starts[1] + 0.5:.6f}",
                    str(CAPTURES / "diff" / "after.pcap"), str(other)], check=True, capture_output=True)
    apart = join_points(analyze([str(HERE / "client_side.pcap"), str(other)]))
    assert not apart.capture.continuous and not apart.capture.joined
    assert len(apart) == TRUTH["connections"] + 20  # after.pcap's 20 keep-alive connections


@pytest.mark.parametrize("side", ["client_side", "server_side"])
def test_data_sent_again_after_a_lost_fin_is_no_half_close(side: str) -> None:
    """Each point alone: no connection was half-closed (the peers never wrote after a FIN), though
    where the client's FIN was lost (41006, 41021) the server sent its last answer again after it."""
    flows = analyze(str(HERE / f"{side}.pcap")).flows.set_index("client_port")
    for f in TRUTH["flows"]:
        assert bool(flows.loc[f["client_port"], "half_close"]) == f["half_close"], f["client_port"]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (apt-get install tshark)")
def test_the_annotated_copy_names_each_lost_segment_on_its_frame(tmp_path: Any) -> None:
    """`--annotate` of a joined run: each file a section, in order (the server side's frames after
    the client side's 425), each dropped segment's frame at the point that saw it commented with
    the finding and what the other point saw next; no other frame says so."""
    import subprocess

    from teardown.cli import main

    out = tmp_path / "both.pcapng"
    assert main(["analyze", "--points", str(HERE / "client_side.pcap"), str(HERE / "server_side.pcap"),
                 "--annotate", str(out), "--quiet"]) == 0
    listed = subprocess.run(["tshark", "-r", str(out), "-Y", 'frame.comment contains "lost-between-points"', "-T",
                             "fields", "-e", "frame.number"], capture_output=True, text=True, check=True).stdout
    before = TRUTH["captures"]["client_side"]["frames"]
    want = sorted(d["client_side_frame"] if d["direction"] == "c2s" else before + d["server_side_frame"]
                  for f in TRUTH["flows"] for d in f["dropped"])
    assert sorted(map(int, listed.split())) == want


def test_each_joined_row_is_drawn_from_its_own_point() -> None:
    """The report's ladders read each row's segments at the point it was judged at: the frames
    of its own capture (the server side's in its own clock), as many as the row counted."""
    from teardown.report import from_analysis

    joined = join_points(analyze([str(HERE / "client_side.pcap"), str(HERE / "server_side.pcap")], points=True))
    data = from_analysis(joined)
    packets = np.asarray(joined.columns["packets_c2s"]) + np.asarray(joined.columns["packets_s2c"])
    capture = np.asarray(joined.columns["capture"])
    before = TRUTH["captures"]["client_side"]["frames"]
    assert set(capture.tolist()) == {0, 1}
    for r in range(len(joined)):
        frames = np.cumsum(data.ladders[r].frames)  # held as steps from the previous frame
        assert len(frames) == packets[r], r
        assert ((frames > before) == bool(capture[r])).all(), r  # the server side's frames follow the client side's
