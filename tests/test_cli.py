"""The command line end to end: what a user sees on a terminal, and in a pipeline."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import CAPTURES


def test_progress_bar_on_a_terminal_only() -> None:
    """Long runs draw a progress bar on stderr when it is a terminal; never into a pipe."""
    capture = str(CAPTURES / "many_reuse.pcap")
    leader, follower = os.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "teardown.cli", "analyze", capture, "--quiet"],
                              stdout=subprocess.PIPE, stderr=follower, timeout=60)
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal is gone once the child and our copy are closed
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0
    assert b"\r[" in drawn and b"100.0% of" in drawn, drawn
    assert drawn.rstrip(b" ").endswith(b"\r"), "the bar must be cleared at the end"

    piped = subprocess.run([sys.executable, "-m", "teardown.cli", "analyze", capture, "--quiet"],
                           capture_output=True, timeout=60)
    assert piped.returncode == 0 and b"\r[" not in piped.stderr


def test_summary_says_what_was_skipped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Frames that are not TCP are counted by reason, and the summary says so."""
    from scapy.all import IP, TCP, UDP, Ether, wrpcap  # type: ignore[import-untyped]

    frames = [Ether() / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=53, dport=53),
              Ether() / IP(src="198.18.0.1", dst="198.18.0.2") / TCP(sport=40000, dport=80, flags="S")]
    path = tmp_path / "mixed.pcap"
    wrpcap(str(path), frames)
    done = subprocess.run([sys.executable, "-m", "teardown.cli", "analyze", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "1 frames skipped: not TCP" in done.stdout + done.stderr


def test_output_cut_short_by_a_pipe_is_no_error() -> None:
    """`teardown analyze big.pcap | head -1`: the reader leaves early; no traceback."""
    capture = str(CAPTURES / "many_reuse.pcap")
    child = subprocess.Popen([sys.executable, "-m", "teardown.cli", "analyze", capture],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the reader is gone before the first line is written
    stderr = child.stderr.read().decode()
    child.stderr.close()
    assert child.wait(timeout=60) == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
