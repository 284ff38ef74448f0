"""Live sniffing: an interface -> the same flows and verdicts as offline analysis, as the
connections end (`teardown live`).

The capture sources themselves (scapy's sniffer, dumpcap, the --write file) are in read/, and
source.py opens them and decodes their frames as it does a file's:

    rows.py     judged rows -> JSON lines and the live tallies
    view.py     tallies -> the terminal view
    session.py  the loop: source -> engine -> rows, until a stop; the summary at the stop
    kernel.py   this host's TCP sockets (netlink sock_diag) -> the kernel's TIME_WAIT beside the capture's
"""

from __future__ import annotations

from .session import LiveResult, LiveSettings, analysis_of, run, summary_lines

__all__ = ["LiveResult", "LiveSettings", "analysis_of", "run", "summary_lines"]
