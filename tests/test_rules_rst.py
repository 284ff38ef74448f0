"""RST classes (docs/rules.md "RST classes") on small captures crafted here with scapy, one class
a test, and which RST closes when an ignored one comes first. The truth is read off the segments
written: after `opening()` the client has sent up to C_NXT and the server has acknowledged C_ISN +
1 (its SYN-ACK) with a window of 65,000 bytes and no window scaling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import teardown
from teardown.flows import RstFact
from teardown.verdicts import RST_CLASSES, rst_class

from .crafted import C_ISN, S_ISN, back, seg

pytest.importorskip("scapy")

REQUEST = b"GET / HTTP/1.1\r\n\r\n"  # 18 bytes
C_NXT, S_NXT = C_ISN + 1 + len(REQUEST), S_ISN + 1  # what each side sends next after the opening
WINDOW = 65000  # every crafted segment's window
FAR = 1 << 30  # beyond any window


def opening() -> list[Any]:
    """Frames 1-4: SYN, SYN-ACK, the third segment, the client's 18-byte request."""
    return [seg(0.0, "S", C_ISN), back(0.001, "SA", S_ISN, C_ISN + 1), seg(0.002, "A", C_ISN + 1, S_NXT),
            seg(0.003, "PA", C_ISN + 1, S_NXT, REQUEST)]


def orderly_close() -> list[Any]:
    """The server acknowledges the request, then FINs both ways, each acknowledged."""
    return [back(1.0, "A", S_NXT, C_NXT), seg(1.1, "FA", C_NXT, S_NXT), back(1.2, "FA", S_NXT, C_NXT + 1),
            seg(1.3, "A", C_NXT + 1, S_NXT + 1)]


def judged(tmp_path: Path, packets: list[Any]) -> Any:
    """The one row of the flow table."""
    from scapy.utils import wrpcap

    path = tmp_path / "crafted.pcap"
    wrpcap(str(path), packets)
    (row,) = teardown.analyze(str(path)).flows.itertuples()
    return row


def test_an_rst_with_the_next_sequence_number_is_exact(tmp_path: Path) -> None:
    r = judged(tmp_path, opening() + [seg(0.5, "R", C_NXT)])
    assert (r.rst_class, r.close_kind, r.first_rst_by, r.first_rst_ts) == ("exact", "rst", "client", pytest.approx(0.5))


def test_an_rst_at_the_receivers_ack_is_exact(tmp_path: Path) -> None:
    """The server's ACK (C_ISN + 1) is what it expects next, though the client sent beyond it."""
    r = judged(tmp_path, opening() + [seg(0.5, "R", C_ISN + 1)])
    assert (r.rst_class, r.close_kind) == ("exact", "rst")


def test_an_rst_inside_the_window_but_not_exact_is_in_window(tmp_path: Path) -> None:
    """1000 beyond the client's next, well inside the 65,000 bytes after the server's ACK."""
    r = judged(tmp_path, opening() + [seg(0.5, "R", C_NXT + 1000)])
    assert (r.rst_class, r.first_rst_by) == ("in_window", "client")


def test_an_rst_just_past_the_window_is_out_of_window(tmp_path: Path) -> None:
    """The window ends 65,000 bytes after the server's ACK: an RST there is outside it; the
    connection goes on to an orderly close, and the row still shows that RST."""
    r = judged(tmp_path, opening() + [seg(0.5, "R", C_ISN + 1 + WINDOW)] + orderly_close())
    assert (r.rst_class, r.close_kind, r.first_rst_by, r.first_rst_ts) == (
        "out_of_window", "fin", "client", pytest.approx(0.5))


def test_an_rst_answering_a_syn_from_a_closed_port_is_to_closed_port(tmp_path: Path) -> None:
    """Sequence number 0 with the ACK bit, and nothing else from the server."""
    r = judged(tmp_path, [seg(0.0, "S", C_ISN), back(0.001, "RA", 0, C_ISN + 1)])
    assert (r.rst_class, r.close_kind, r.first_rst_by) == ("to_closed_port", "refused", "server")


def test_an_rst_carrying_the_ack_it_answers_is_to_closed_port(tmp_path: Path) -> None:
    """Midstream: the client's ACK 7000; the server, which sent nothing else, resets with 7000."""
    r = judged(tmp_path, [seg(0.0, "A", C_ISN, 7000), back(0.001, "R", 7000)])
    assert r.rst_class == "to_closed_port"


def test_a_lone_rst_is_unverifiable(tmp_path: Path) -> None:
    r = judged(tmp_path, [seg(0.0, "RA", C_NXT, S_NXT)])
    assert (r.rst_class, r.first_rst_by) == ("unverifiable", "client")


def test_an_exact_rst_after_an_ignored_one_of_the_same_side_closes(tmp_path: Path) -> None:
    """Frame 5 is out of the server's window (dropped), frame 6 exact: frame 6 ends it."""
    r = judged(tmp_path, opening() + [seg(0.5, "R", C_NXT + FAR), seg(0.6, "R", C_NXT)])
    assert (r.rst_class, r.close_kind, r.first_rst_by, r.first_rst_ts) == ("exact", "rst", "client", pytest.approx(0.6))


def test_an_exact_rst_after_an_ignored_one_of_the_other_side_closes(tmp_path: Path) -> None:
    """Frame 5, the server's, is out of the client's window; frame 6, the client's, is exact."""
    r = judged(tmp_path, opening() + [back(0.5, "R", S_NXT + FAR), seg(0.6, "R", C_NXT)])
    assert (r.rst_class, r.close_kind, r.first_rst_by, r.first_rst_ts) == ("exact", "rst", "client", pytest.approx(0.6))


def test_the_first_of_two_ignored_rsts_is_shown(tmp_path: Path) -> None:
    r = judged(tmp_path, opening() + [back(0.5, "R", S_NXT + FAR), seg(0.6, "R", C_NXT + FAR)] + orderly_close())
    assert (r.rst_class, r.close_kind, r.first_rst_by, r.first_rst_ts) == (
        "out_of_window", "fin", "server", pytest.approx(0.5))


def test_the_class_precedence_over_every_combination_of_facts() -> None:
    """A closed port's answer is told by its form before anything else; without the state to
    judge it an RST is unverifiable; then exact, in window, out of window."""
    facts = np.arange(64, dtype=np.uint8)
    got = RST_CLASSES[rst_class(facts)]
    for f, cls in zip(facts.tolist(), got.tolist()):
        f = RstFact(f)
        sender, ack = RstFact.sender_seen in f, RstFact.ack_known in f
        if not sender and (RstFact.answers_ack in f or RstFact.zero_ack in f):
            want = "to_closed_port"
        elif not sender and not ack:
            want = "unverifiable"
        elif RstFact.exact in f:
            want = "exact"
        elif RstFact.in_window in f:
            want = "in_window"
        else:
            want = "out_of_window"
        assert cls == want, f
