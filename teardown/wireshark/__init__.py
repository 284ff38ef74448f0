"""An analysis -> the capture written back for Wireshark, with teardown's verdicts in it as
packet comments: `teardown analyze CAP --annotate OUT.pcapng` (every frame) and `--extract
OUT.pcapng [--only KIND,...]` (the frames of the connections with findings).

    numbering.py    frame numbers of a run's files written one after another
    flow_frames.py  frames of some flows, from the capture read again (matching.py)
    comments.py     which frame gets which words, and the section comment
    rewrite.py      a capture file -> pcapng sections: blocks copied, comments added
    write.py        an analysis -> the output file, whole or not at all
"""

from __future__ import annotations

from .write import KINDS, Written, annotate, check_formats, extract, parse_kinds

__all__ = ["KINDS", "Written", "annotate", "check_formats", "extract", "parse_kinds"]
