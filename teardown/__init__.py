"""teardown: how every TCP connection in a capture ended, and who is left holding TIME_WAIT.

    >>> import teardown
    >>> result = teardown.analyze("captures/server_first_close.pcap")
    >>> result.flows[["flow_id", "close_kind", "active_closer", "time_wait_on"]]

The whole public API is here: `analyze`, `Options`, `Analysis` and the errors.
"""

from __future__ import annotations

from .analysis import Analysis, CaptureSummary, analyze
from .errors import CaptureDamaged, CaptureError, ReaderUnavailable, TeardownError, UsageError
from .options import Options, OsProfile

__version__ = "0.1.0"
__all__ = ["Analysis", "CaptureDamaged", "CaptureError", "CaptureSummary", "Options", "OsProfile",
           "ReaderUnavailable", "TeardownError", "UsageError", "analyze", "__version__"]
