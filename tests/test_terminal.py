"""What `teardown analyze` prints: the capture and who closed its connections first, then the
findings most severe first, then the tables; lines as wide as the terminal; IPv6 endpoints in
brackets; singular and plural; colour only on a terminal and never with NO_COLOR."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from teardown.cli import main
from teardown.terminal import Style, closes_text

from .conftest import CAPTURES

BURST = str(CAPTURES / "tw_server_burst.pcap.gz")


def analyze(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    main(["analyze", *args])
    got = capsys.readouterr()
    return got.out, got.err


def test_first_lines_say_the_capture_then_who_closed(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # the first line holds the path, whose length depends on the clone
    out, _ = analyze(capsys, str(CAPTURES / "linger_abort.pcap"))
    lines = out.splitlines()
    assert lines[0].startswith(f"{CAPTURES / 'linger_abort.pcap'}: 8 frames, 8 TCP segments, 2026-11-29 ")
    assert lines[1].startswith("1 connection: aborted (RST, no FIN) by the client 1;")
    assert out.index("findings") < out.index("close kind")


def test_a_burst_of_server_closes_is_counted_by_closer_and_told_first(monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    out, _ = analyze(capsys, BURST)
    lines = out.splitlines()
    assert lines[1].startswith("2,000 connections: closed first by the server 2,000;")
    assert lines[3] == "findings, most severe first"
    assert lines[4].startswith("  WARNING  server-close: 198.18.0.2:8080 closed 100 % of 2,000 connections first")
    assert re.search(r"^fin +2,000 +0 +2,000 +0 +0 +2,000$", out, re.M)


def test_a_damaged_capture_says_so_before_any_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.pcap"
    data = (CAPTURES / "client_first_close.pcap").read_bytes()
    cut.write_bytes(data[:-30])
    out, err = analyze(capsys, str(cut))
    assert "analyzed up to there" in out
    assert out.index("9 frames") < out.index("\nwarning: ") < out.index("1 connection:") < out.index("findings") \
        < out.index("close kind")
    assert "warning" not in err  # said once, where it is read first


def test_quiet_puts_warnings_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((CAPTURES / "client_first_close.pcap").read_bytes()[:-30])
    out, err = analyze(capsys, str(cut), "--quiet")
    assert out == "" and err.startswith("warning: ") and "analyzed up to there" in err


@pytest.mark.parametrize("columns", [72, 80, 120])
def test_lines_fit_the_terminal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                columns: int) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    out, _ = analyze(capsys, str(CAPTURES / "lost_final_ack.pcap"))
    too_long = [line for line in out.splitlines() if len(line) >= columns and "/" not in line.split()[0]]
    assert not too_long
    assert "advice: " in out  # wrapped, not cut


def test_ipv6_endpoints_are_bracketed(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = analyze(capsys, str(CAPTURES / "ipv6_client_first.pcap"))
    assert "[fd00::2]:8080" in out and "fd00::2:8080" not in out.replace("[fd00::2]:8080", "")


def test_counts_say_one_and_many_right() -> None:
    assert closes_text({("fin", "client"): 1}) == "1 connection: closed first by the client 1"
    assert closes_text({("fin", "server"): 3, ("rst", "client"): 1, ("rst", "server"): 2, ("refused", "none"): 4}) == (
        "10 connections: closed first by the server 3; aborted (RST, no FIN) by the client 1, the server 2; "
        "not closed: 4 refused")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Style.of(Tty()).colour and not Style.of(io.StringIO()).colour
    monkeypatch.setenv("NO_COLOR", "1")
    assert not Style.of(Tty()).colour
    assert Style(colour=False).paint("WARNING", "33") == "WARNING"


@pytest.mark.parametrize("stem", ["loss_server_to_client", "loss_client_to_server"])
def test_the_first_lines_total_the_capture_loss(stem: str, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Totals from the frames removed when the sample was made (its truth), not from the table."""
    flows = json.loads((CAPTURES / f"{stem}.truth.json").read_text())["flows"]
    lost = [f["capture_loss_bytes"] for f in flows if f["capture_loss_bytes"]]
    monkeypatch.setenv("COLUMNS", "400")
    out, _ = analyze(capsys, str(CAPTURES / f"{stem}.pcap"))
    head = out.split("\n\n")[0]
    assert f"the capture missed {sum(lost):,} bytes that the peers acknowledged, in {len(lost)} connections" in head
