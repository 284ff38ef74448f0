"""The words `--annotate` and `--extract` put on frames are right about them (tshark's view of
the frames and the samples' truth files), an extract keeps exactly the frames of the flagged
connections (what tshark selects with their display filters), and several files in one go
are one copy, numbered on (wireshark_tools.py runs the tools)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import CAPTURES
from .test_display_filters import selected as selected_by_listeners
from .wireshark_tools import copies, seen  # noqa: F401  (fixtures)
from .wireshark_tools import (Copy, copy_of, Frame, ORIGINAL, SAMPLES, Seen, TCP, capinfos, capinfos_value, editcap,
    flow_id, in_parallel, row_of, rows_of, section_comments, selected, teardown_ok, truth, truth_kinds, tshark_ok)


# ---- 2. comments -----------------------------------------------------------------------------

def parts_of(comment: str, flow: dict[str, Any]) -> str:
    """What a comment says of one connection: its part after the connection's flow id (the
    parts of several connections on one frame are joined by " | ")."""
    return " | ".join(p for p in comment.split(" | ") if p.startswith(flow_id(flow) + ": "))


def on_tuple(frames: list[Frame], flow: dict[str, Any]) -> list[Frame]:
    """The frames of a truth flow's 4-tuple, either way, as tshark decodes them."""
    ends = {(flow["client_ip"], str(flow["client_port"])), (flow["server_ip"], str(flow["server_port"]))}
    return [f for f in frames if f.ends == ends]


def incarnation_frames(frames: list[Frame], flows: list[dict[str, Any]], flow: dict[str, Any]) -> list[Frame]:
    """A truth flow's frames: those of its 4-tuple from its SYN (the client's, of its ISN) to the
    next incarnation's SYN on the tuple."""
    mine = on_tuple(frames, flow)
    syns = {int(other["client_isn"]): min((f.number for f in mine if f.flag("syn") and not f.flag("ack")
                                           and f.tcp("tcp.seq_raw") == str(other["client_isn"])), default=None)
            for other in flows if flow_id(other).rsplit("/", 1)[0] == flow_id(flow).rsplit("/", 1)[0]}
    start = syns[int(flow["client_isn"])]
    assert start is not None, ("tshark sees no SYN of", flow_id(flow))
    later = [n for n in syns.values() if n is not None and n > start]
    return [f for f in mine if start <= f.number < min(later, default=1 << 62)]


CORE = [p for p in SAMPLES if p.parent == CAPTURES and p.suffix == ".pcap" and p.name != "rst_out_of_window.pcap"]


def test_comments_say_what_tshark_sees(copies: list[Copy], seen: Seen) -> None:
    """On every sample made from real connections (the truth file gives each client's ISN; not
    rst_out_of_window.pcap, whose truth check fails on an open analyzer bug, README), per
    connection of the truth file, found in tshark's decoding by its 4-tuple and ISN: its SYN's
    comment names it and the SYN; each side's first FIN (as tshark sees them, the side the truth
    says closed first) says whose FIN it is; each FIN tshark calls a retransmission, as many as
    the truth says were sent again, is named `[fin-retransmission]`; the connection's RST says
    RST; and the finding kinds the truth's verdicts give the connection are each named in
    brackets on one of its frames, and no other kind but those the truth does not decide."""
    undecided = {"capture-loss", "one-sided", "roles-inferred"}
    checked = 0
    wrong: list[str] = []
    for sample in CORE:
        flows = [f for f in truth(sample)["flows"] if "client_isn" in f and f.get("handshake") != "none"]
        given, written = seen.frames[sample], seen.frames[copy_of(copies, sample.name).annotated]
        for flow in flows:
            fid = flow_id(flow)
            mine = incarnation_frames(given, flows, flow)
            said = {f.number: parts_of(written[f.number - 1].comment, flow) for f in mine}
            problems = []
            syn = mine[0]
            if "SYN" not in said[syn.number]:
                problems.append(f"SYN frame {syn.number}: {said[syn.number]!r}")
            for side in ("client", "server"):
                ip, port = flow[f"{side}_ip"], str(flow[f"{side}_port"])
                fins = [f for f in mine if f.flag("fin") and (f.source, f.tcp("tcp.srcport")) == (ip, port)]
                if flow.get("first_fin_by") == side and not fins and not flow.get("one_sided"):
                    problems.append(f"tshark sees no FIN of the {side}")
                if fins and f"{side}'s FIN" not in said[fins[0].number]:
                    problems.append(f"{side}'s first FIN, frame {fins[0].number}: {said[fins[0].number]!r}")
                again = flow.get(f"fin_retransmissions_{side}")
                if again is not None:
                    copies_seen = [f for f in fins[1:] if f.tcp("tcp.analysis.retransmission") == "1"]
                    if len(fins[1:]) != again or len(copies_seen) != again:
                        problems.append(f"{side}: {len(fins[1:])} FINs again ({len(copies_seen)} retransmissions "
                                        f"to tshark), the truth says {again}")
                    for f in fins[1:]:
                        text = said[f.number]
                        if "[fin-retransmission]" not in text or f"{side}'s FIN sent again" not in text:
                            problems.append(f"{side}'s FIN again, frame {f.number}: {said[f.number]!r}")
            rsts = [f for f in mine if f.flag("reset")]
            ended_by_rst = flow.get("close_kind") in ("rst", "fin_then_rst", "refused")
            if ended_by_rst and not any("RST" in said[f.number] for f in rsts):
                problems.append(f"no RST frame ({[f.number for f in rsts]}) says RST")
            named = {k for n, text in said.items() for k in re.findall(r"\[([a-z-]+)\]", text)}
            named |= {k for f in written for k in re.findall(r"\[([a-z-]+)\]", parts_of(f.comment, flow))}
            want = truth_kinds(flow)
            if not want <= named or not named <= want | undecided:
                problems.append(f"kinds named {sorted(named)}, the truth's {sorted(want)}")
            if problems:
                wrong.append(f"{sample.name} {fid}: " + "; ".join(problems))
            checked += 1
    assert not wrong, "\n".join(wrong)
    assert checked >= 60


def test_a_fin_sent_again_is_named_where_tshark_sees_the_retransmission(copies: list[Copy], seen: Seen,
                                                                        extracts: list[Extract]) -> None:
    """captures/lost_final_ack*.pcap: the frames tshark marks tcp.analysis.retransmission and
    FIN are exactly those whose comment says `[fin-retransmission] ...'s FIN sent again`, one per
    FIN the truth file counts as sent again, from the side it names; Wireshark's display filter
    frame.comment contains "fin-retransmission", run on the copies, selects exactly the frames
    whose comment holds those words (these among them). The first FIN's comment names its copies'
    frames, and theirs the first's, as tshark numbers them ("frame N"; in the extract, "original
    frame N"); a final ACK the capture holds before the FIN came again names that FIN."""
    by_filter = set(selected(seen.whole, 'frame.comment contains "fin-retransmission"'))
    whole_comments = {f.number + seen.before[c.annotated]: f.comment for c in copies
                      for f in seen.frames[c.annotated]}
    assert by_filter == {n for n, text in whole_comments.items() if "fin-retransmission" in text}
    for name in ("lost_final_ack.pcap", "lost_final_ack_client_side.pcap", "lost_final_ack_after_capture.pcap"):
        copy = copy_of(copies, name)
        (flow,) = truth(copy.source)["flows"]
        given, written = seen.frames[copy.source], seen.frames[copy.annotated]
        resent = [f.number for f in given if f.flag("fin") and f.tcp("tcp.analysis.retransmission") == "1"]
        again = re.compile(r"\[fin-retransmission\] (client|server)'s FIN sent again")
        named = [f.number for f in written if again.search(f.comment)]
        assert resent == named
        assert len(resent) == flow["fin_retransmissions_server"] + flow["fin_retransmissions_client"]
        for n in resent:
            side = "server" if given[n - 1].source == flow["server_ip"] else "client"
            assert flow[f"fin_retransmissions_{side}"] > 0
            assert written[n - 1].comment.startswith(f"{flow_id(flow)}: [fin-retransmission] {side}'s FIN sent again")
            assert n + seen.before[copy.annotated] in by_filter
        side = "server" if given[resent[0] - 1].source == flow["server_ip"] else "client"
        first = next(f.number for f in given if f.flag("fin") and f.source == given[resent[0] - 1].source)
        times = f"{len(resent)} time" + ("s" if len(resent) > 1 else "")
        views = [("", {f.number: f.comment for f in written})]
        if name in EXTRACTED:  # its extract: every frame, each comment naming frames by their original numbers
            e = extract_of(extracts, name)
            assert e.want == list(range(1, len(given) + 1))
            views.append(("original ", {n: f.comment for f, n in zip(e.written, e.want)}))
        for prefix, said in views:
            assert f"{side}'s FIN" in said[first] and (
                f"sent again {times} ({', '.join(f'{prefix}frame {n}' for n in resent)})" in said[first]), said[first]
            for n in resent:
                assert f"(first sent in {prefix}frame {first})" in said[n], said[n]
        if flow["final_ack_lost_after_capture"]:  # the final ACK the capture holds before the copy
            ack = next(f for f in written if "final ACK lost after this point" in f.comment)
            assert ack.number < resent[0] and not given[ack.number - 1].flag("fin")
            assert f"the {side} retransmits its FIN (frame {resent[-1]})" in ack.comment


def test_an_assassinating_rst_is_named(copies: list[Copy], seen: Seen) -> None:
    """tw_assassination.pcap: of the two RSTs tshark sees, the one on the connection the truth
    says was assassinated says `[assassination] RST in sequence: assassinates the client's
    TIME_WAIT (RFC 1337)`, the other no assassination. reuse_in_time_wait_rejected.pcap: the
    client's RST (tshark: RST from the client) that killed the old incarnation's server
    TIME_WAIT says so, under the old incarnation's flow id, though it follows the new SYN."""
    copy = copy_of(copies, "tw_assassination.pcap")
    given, written = seen.frames[copy.source], seen.frames[copy.annotated]
    flows = truth(copy.source)["flows"]
    for flow in flows:
        (rst,) = [f for f in on_tuple(given, flow) if f.flag("reset")]
        said = written[rst.number - 1].comment
        assert said.startswith(flow_id(flow)) and "RST" in said
        if flow["tw_assassination"]:
            holder = flow["time_wait_on"]
            assert f"[assassination] RST in sequence: assassinates the {holder}'s TIME_WAIT (RFC 1337)" in said
        else:
            assert "assassinat" not in said and "RFC 1337" not in said
    copy = copy_of(copies, "reuse_in_time_wait_rejected.pcap")
    given, written = seen.frames[copy.source], seen.frames[copy.annotated]
    old, new = truth(copy.source)["flows"]
    assert old["tw_assassination"] and not new["tw_assassination"]
    (rst,) = [f for f in on_tuple(given, old) if f.flag("reset")]
    assert rst.source == old["client_ip"]
    syn = next(f for f in given if f.flag("syn") and f.tcp("tcp.seq_raw") == str(new["client_isn"]))
    assert syn.number < rst.number
    assert parts_of(written[rst.number - 1].comment, old).startswith(
        f"{flow_id(old)}: [assassination] RST in sequence: assassinates the server's TIME_WAIT (RFC 1337)")


def test_a_reusing_syn_is_named(copies: list[Copy], seen: Seen) -> None:
    """The SYN (tshark: SYN without ACK, of the ISN the truth file gives) of every connection the
    truth says reuses a 4-tuple in TIME_WAIT says `[reuse-in-time-wait] SYN reuses a 4-tuple
    still in TIME_WAIT` and the verdict the truth gives (accepted by timestamps, by ISN,
    rejected, with `[reuse-rejected]`); every other SYN says no reuse in TIME_WAIT."""
    verdicts = {"accepted_timestamps": "accepted, timestamps newer (RFC 6191)",
                "accepted_isn": "accepted, ISN above the old connection's (RFC 1122)",
                "rejected": "rejected: the TIME_WAIT answered with an ACK of the old connection"}
    reusing = 0
    for name in ("reuse_in_time_wait.pcap", "reuse_in_time_wait_rejected.pcap", "reuse_accepted_isn.pcap",
                 "reuse_after_time_wait.pcap", "many_reuse.pcap"):
        copy = copy_of(copies, name)
        given, written = seen.frames[copy.source], seen.frames[copy.annotated]
        for flow in truth(copy.source)["flows"]:
            syn = next(f for f in given if f.flag("syn") and not f.flag("ack")
                       and f.tcp("tcp.seq_raw") == str(flow["client_isn"]))
            said = parts_of(written[syn.number - 1].comment, flow)
            if flow["reuses_tuple_in_time_wait"]:
                reusing += 1
                assert said.startswith(f"{flow_id(flow)}: [reuse-in-time-wait]"), (name, said)
                assert f"SYN reuses a 4-tuple still in TIME_WAIT: {verdicts[flow['reuse_verdict']]}" in said
                assert ("[reuse-rejected]" in said) == (flow["reuse_verdict"] == "rejected")
            else:
                assert said.startswith(f"{flow_id(flow)}: client's SYN") and "in TIME_WAIT" not in said, (name, said)
    assert reusing >= 18


KINDS = ["assassination", "fin-retransmission", "reuse-in-time-wait", "reuse-rejected", "simultaneous", "abort",
         "half-close", "data-after-fin", "server-close", "refused", "handshake-reset", "unanswered", "capture-loss",
         "one-sided", "roles-inferred"]  # docs/rules.md's finding kinds, --only's names


def test_the_section_comment_sums_up_the_capture(copies: list[Copy]) -> None:
    """capinfos' "Capture comment" of a copy (the section header's comment, which tshark's
    frame.comment does not show) says it is teardown's, names the input, counts its frames as
    capinfos does, and names as findings exactly the kinds the truth gives its connections."""
    names = ["lost_final_ack.pcap", "tw_assassination.pcap", "reuse_in_time_wait_rejected.pcap",
             "client_first_close.pcap", "two_interfaces.pcapng", "simultaneous_close.pcap"]
    chosen = [copy_of(copies, n) for n in names]
    infos = capinfos([c.source for c in chosen] + [c.annotated for c in chosen])
    for c in chosen:
        (said,) = section_comments(infos[str(c.annotated)])
        frames = capinfos_value(infos[str(c.source)], "Number of packets")
        kinds = set().union(*map(truth_kinds, truth(c.source)["flows"]))
        assert said.startswith("teardown ") and c.source.name in said and f"{frames} frames" in said, said
        for kind in KINDS:
            assert (f" {kind}: " in said) == (kind in kinds), (c.source.name, kind, said)
        assert ("findings, most severe first" in said) == bool(kinds), said


# ---- 3. extract ------------------------------------------------------------------------------

def selected_each(path: Path, filters: Sequence[str], tmp: Path) -> list[set[int]]:
    """The frames of `path` each of `filters` selects, in one tshark run (none for no filter)."""
    if not filters:
        return []
    got = selected_by_listeners(path, list(filters), tmp)
    return [got.get(i, set()) for i in range(len(filters))]


# Samples whose truth files decide every finding kind of every connection (none of capture
# loss, one direction, roles inferred), so that the connections with findings are known.
EXTRACTED = ["lost_final_ack.pcap", "lost_final_ack_after_capture.pcap", "tw_assassination.pcap",
             "reuse_in_time_wait_rejected.pcap", "server_first_close.pcap", "client_first_close.pcap",
             "linger_abort.pcap", "simultaneous_close.pcap", "half_close.pcap", "fin_then_rst.pcap", "refused.pcap",
             "two_interfaces.pcapng", "many_reuse.pcap", "data_after_fin_new_data.pcap", "handshake_reset.pcap",
             "repeated_syn.pcap", "vlan.pcap", "ipv6_client_first.pcap"]
ONLY = [("two_interfaces.pcapng", "abort"), ("reuse_in_time_wait_rejected.pcap", "assassination"),
        ("tw_assassination.pcap", "abort,assassination"), ("many_reuse.pcap", "server-close"),
        ("lost_final_ack.pcap", "abort"), ("half_close.pcap", "half-close"), ("repeated_syn.pcap", "unanswered")]


@dataclass(frozen=True)
class Extract:
    source: Path
    only: str | None
    path: Path
    flows: list[dict[str, Any]]  # the truth's connections it must hold
    want: list[int]  # their frames, as tshark numbers them in the input (by their rows' display filters)
    written: list[Frame]  # tshark's view of the extract


def killing_rsts(frames: list[Frame], flow: dict[str, Any]) -> set[int]:
    """The RST that assassinated a connection's TIME_WAIT, as tshark decodes it: on its 4-tuple,
    sent to the side the truth says held the TIME_WAIT. It may come after the next incarnation's
    SYN (reuse_in_time_wait_rejected.pcap), outside the connection's own display filter."""
    holder = flow[f"{flow['time_wait_on']}_ip"]
    return {f.number for f in on_tuple(frames, flow) if f.flag("reset") and f.source != holder}


@pytest.fixture(scope="module")
def extracts(tmp_path_factory: pytest.TempPathFactory, seen: Seen) -> list[Extract]:
    """`teardown analyze SAMPLE --extract OUT.pcapng [--only KINDS] -o flows.csv` for the samples
    of EXTRACTED and the choices of ONLY; what each must hold, by tshark and the truth files: the
    frames the connections' display filters select and, for an assassinated TIME_WAIT, the RST."""
    tmp = tmp_path_factory.mktemp("extracts")
    runs = [(CAPTURES / name, None) for name in EXTRACTED] + [(CAPTURES / name, only) for name, only in ONLY]
    made = []
    for i, (source, only) in enumerate(runs):
        out, table = tmp / f"{i:02d}-{source.name}.pcapng", tmp / f"{i:02d}-{source.name}.csv"
        teardown_ok(source, "--quiet", "--extract", out, "-o", table, *(["--only", only] if only else []))
        flows = [f for f in truth(source)["flows"] if truth_kinds(f) & (set(only.split(",")) if only else set(KINDS))]
        made.append((source, only, out, flows, [row_of(rows_of(table), f)["display_filter"] for f in flows]))
    for i in range(len(made)):
        (tmp / str(i)).mkdir()
    picks = in_parallel([functools.partial(selected_each, m[0], m[4], tmp / str(i)) for i, m in enumerate(made)])
    whole = tmp / "every_extract.pcapng"
    whole.write_bytes(b"".join(m[2].read_bytes() for m in made))
    read = tshark_ok(whole)
    wants = [sorted(set().union(*sets, *(killing_rsts(seen.frames[m[0]], f) for f in m[3] if f["tw_assassination"])))
             for m, sets in zip(made, picks)]
    if len(read) != sum(map(len, wants)):
        for m, want in zip(made, wants):
            assert len(tshark_ok(m[2])) == len(want), (m[0].name, m[1], "frames", want)
    found = []
    at = 0
    for (source, only, path, flows, _), want in zip(made, wants):
        found.append(Extract(source, only, path, flows, want, read[at: at + len(want)]))
        at += len(want)
    return found


def test_extract_keeps_exactly_the_frames_of_the_connections_with_findings(extracts: list[Extract], seen: Seen) -> None:
    """Each extract (with and without --only) holds exactly the frames Wireshark selects in the
    input with the display filters of the connections the truth file gives findings (of the
    kinds --only names), and an assassinated TIME_WAIT's RST, in their order, each byte for byte
    (MD5), with its time, lengths, interface and link type; each comment starts "original frame
    N: " with N the frame's number in the input; each such connection has each of its kinds
    named, in brackets, by a comment under its flow id."""
    wrong = []
    for e in extracts:
        name = f"{e.source.name} --only {e.only}" if e.only else e.source.name
        given = seen.frames[e.source]
        if [f.kept for f in e.written] != [given[n - 1].kept for n in e.want]:
            wrong.append(f"{name}: frames {e.want} of the input are not what it holds")
            continue
        for f, n in zip(e.written, e.want):
            if f.comments and not f.comments[0].startswith(f"original frame {n}: "):
                wrong.append(f"{name}: original frame {n}, extracted as frame {f.number}: {f.comments[0]!r}")
        for flow in e.flows:
            kinds = truth_kinds(flow) & (set(e.only.split(",")) if e.only else truth_kinds(flow))
            said = " ".join(parts_of(ORIGINAL.sub("", c), flow) for f in e.written for c in f.comments[:1])
            missing = [k for k in kinds if f"[{k}]" not in said]
            if missing:
                wrong.append(f"{name}: {flow_id(flow)} has {missing} named on none of its frames")
    assert not wrong, "\n".join(wrong)
    assert sum(bool(e.want) for e in extracts) >= 15 and sum(not e.want for e in extracts) >= 4


def test_extract_says_what_it_holds(extracts: list[Extract]) -> None:
    """capinfos of each extract: one section, whose comment counts the connections and frames
    it holds out of the input's (capinfos' count) and names the kinds --only asked for."""
    infos = capinfos([e.path for e in extracts] + sorted({e.source for e in extracts}))
    for e in extracts:
        (said,) = section_comments(infos[str(e.path)])
        total = int(capinfos_value(infos[str(e.source)], "Number of packets"))
        connections = f"{len(e.flows)} connection" + ("s" if len(e.flows) != 1 else "")
        assert said.startswith("teardown ") and f"the frames of the {connections} with findings" in said, said
        assert f"{len(e.want):,} of {total:,} frames" in said, said
        if e.only:
            assert f"with findings ({', '.join(e.only.split(','))}) in {e.source.name}" in said, said


# ---- 4. several files in one go --------------------------------------------------------------

def cut(source: Path, frames: int, tmp: Path, fmt: str) -> list[Path]:
    """`source` cut into pieces of `frames` frames (editcap -c, as tcpdump -C rotates), in order."""
    editcap("-F", fmt, "-c", str(frames), source, tmp / f"piece.{fmt}")
    pieces = sorted(tmp.glob(f"piece_*.{fmt}"))
    assert len(pieces) == 3
    return pieces


def extract_of(extracts: list[Extract], name: str, only: str | None = None) -> Extract:
    return next(e for e in extracts if e.source.name == name and e.only == only)


@pytest.mark.parametrize(("sample", "frames", "fmt"), [("tw_assassination.pcap", 8, "pcap"),
                                                       ("two_interfaces.pcapng", 20, "pcapng")])
def test_pieces_of_one_capture_are_one_copy(sample: str, frames: int, fmt: str, tmp_path: Path, seen: Seen,
                                            extracts: list[Extract]) -> None:
    """A sample cut into three pieces (editcap -c) and read as one capture: the copy is one file,
    a section per piece in their order (capinfos: the first section's comment is the summary,
    each other says which piece and which frames of the whole it holds), its frames those of the
    uncut sample in order (Wireshark numbers them on across the sections, as teardown does), the
    finding's words on the frame tshark finds them on in the uncut sample; the extract holds the
    frames the uncut sample's extract must (its display filters), each comment "original frame
    N (piece frame M): " with N its number in the whole and M in its piece. (Interfaces: tshark
    4.0 numbers them per section, as each piece does.)"""
    source = CAPTURES / sample
    pieces = cut(source, frames, tmp_path, fmt)
    annotated, extracted = tmp_path / "copy.pcapng", tmp_path / "extract.pcapng"
    ran = teardown_ok(*pieces, "--annotate", annotated, "--extract", extracted)
    assert "read as one continuous capture" in ran.out
    whole, got = in_parallel([functools.partial(tshark_ok, annotated), functools.partial(tshark_ok, extracted)])
    uncut = seen.frames[source]
    assert [f.kept for f in whole] == [f.kept for f in uncut]
    assert [f.number for f in whole] == list(range(1, len(uncut) + 1))
    infos = capinfos([annotated, *pieces])
    counts = [int(capinfos_value(infos[str(p)], "Number of packets")) for p in pieces]
    starts = [sum(counts[:i]) for i in range(len(pieces))]
    said = section_comments(infos[str(annotated)])
    assert len(said) == 3 and said[0].startswith("teardown ") and ", ".join(p.name for p in pieces) in said[0]
    for i in (1, 2):
        assert said[i] == (f"teardown: {pieces[i].name}, file {i + 1} of 3 of the run: frames {starts[i] + 1} to "
                           f"{starts[i] + counts[i]} of the whole capture")
    for flow in truth(source)["flows"]:
        for n in killing_rsts(uncut, flow) if flow["tw_assassination"] else set():
            assert "[assassination] RST in sequence: assassinates" in parts_of(whole[n - 1].comment, flow)
        # two_interfaces: a connection is told as seen on interface 0, the copies on 1 counted on it
        syn = next(f for f in uncut if f.flag("syn") and not f.flag("ack")
                   and f.tcp("tcp.seq_raw") == str(flow["client_isn"]) and f.kept[3] == "0")
        assert parts_of(whole[syn.number - 1].comment, flow).startswith(f"{flow_id(flow)}: client's SYN")
    want = extract_of(extracts, sample).want
    assert want and [f.kept for f in got] == [uncut[n - 1].kept for n in want]
    for f, n in zip(got, want):
        piece = max(i for i in range(3) if starts[i] < n)
        if f.comments:
            assert f.comments[0].startswith(f"original frame {n} ({pieces[piece].name} frame {n - starts[piece]}): ")


def test_a_file_without_frames_is_a_section_saying_so(tmp_path: Path) -> None:
    """A run of a capture and a pcap file with no frame (its header only): two sections, the
    second's comment saying it holds no frames; tshark reads the capture's frames from the copy."""
    empty = tmp_path / "empty.pcap"
    empty.write_bytes((CAPTURES / "refused.pcap").read_bytes()[:24])
    annotated = tmp_path / "copy.pcapng"
    teardown_ok(CAPTURES / "refused.pcap", empty, "--quiet", "--annotate", annotated)
    said = section_comments(capinfos([annotated])[str(annotated)])
    assert len(said) == 2 and said[1] == "teardown: empty.pcap, file 2 of 2 of the run: no frames"
    assert len(tshark_ok(annotated)) == 2


def test_separate_captures_in_one_go(tmp_path: Path, seen: Seen) -> None:
    """Two unrelated captures overlapping in time (lost_final_ack.pcap moved with editcap -t to
    start a second after tw_assassination.pcap), given latest first: one copy, a section per
    capture in time order (capinfos' start times), frames numbered on over both as Wireshark
    numbers them; the extract (--only assassination,fin-retransmission) holds what each
    connection's display filter (-o flows.csv of the same run) selects in its own file, numbered
    from 1 there, each comment "original frame N (FILE frame M): " with N its number in the whole
    copy."""
    shifted = tmp_path / "lost_final_ack_later.pcap"
    editcap("-t", "10.4", CAPTURES / "lost_final_ack.pcap", shifted)
    other = CAPTURES / "tw_assassination.pcap"
    annotated, extracted, table = tmp_path / "copy.pcapng", tmp_path / "extract.pcapng", tmp_path / "flows.csv"
    ran = teardown_ok(shifted, other, "--annotate", annotated, "--extract", extracted, "-o", table,
                      "--only", "assassination,fin-retransmission")
    assert "read as separate captures" in ran.out
    infos = capinfos([shifted, other, annotated])
    order = sorted((shifted, other), key=lambda p: capinfos_value(infos[str(p)], "First packet time"))  # ISO: sorts
    assert order == [other, shifted]
    given = {shifted: tshark_ok(shifted, TCP, pcap_input=True), other: seen.frames[other]}
    whole, got = in_parallel([functools.partial(tshark_ok, annotated), functools.partial(tshark_ok, extracted)])
    assert [f.kept for f in whole] == [f.kept for p in order for f in given[p]]
    said = section_comments(infos[str(annotated)])
    assert len(said) == 2 and said[1].startswith(f"teardown: {shifted.name}, file 2 of 2 of the run")
    before = {order[0]: 0, order[1]: len(given[order[0]])}
    rows = rows_of(table)
    want = []
    for p, kind in ((other, "assassination"), (shifted, "fin-retransmission")):
        (flow,) = [f for f in truth(CAPTURES / p.name.replace("_later", ""))["flows"] if kind in truth_kinds(f)]
        row = row_of(rows, flow)
        assert row["capture_file"] == p.name
        mine = set(selected(p, row["display_filter"]))
        mine |= killing_rsts(given[p], flow) if flow["tw_assassination"] else set()
        want += [(before[p] + n, p, n) for n in sorted(mine)]
    whole_of = {n: f for f in whole for n in [f.number]}
    assert [f.kept for f in got] == [whole_of[n].kept for n, _, _ in sorted(want)]
    for f, (n, p, m) in zip(got, sorted(want)):
        if f.comments:
            assert f.comments[0].startswith(f"original frame {n} ({p.name} frame {m}): "), f.comments[0]
