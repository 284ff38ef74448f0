"""Live sniffing: an interface -> the same flows and verdicts as offline analysis, as the
connections end (`teardown live`).

    frames.py   what a capture source hands over, and what it counts (frames, drops)
    sniffer.py  scapy's AsyncSniffer on a packet socket -> frames (default reader)
    dumpcap.py  dumpcap writing pcapng into a pipe -> frames (--reader pyshark)
    pcapng.py   frames -> the --write file
    rows.py     judged rows -> JSON lines and the live tallies
    view.py     tallies -> the terminal view
    session.py  the loop: source -> engine -> rows, until a stop; the summary at the stop
"""

from __future__ import annotations

from .session import LiveResult, LiveSettings, analysis_of, run, summary_lines

__all__ = ["LiveResult", "LiveSettings", "analysis_of", "run", "summary_lines"]
