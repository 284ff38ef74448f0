"""Instants as the text people read: one formatter for the terminal, the findings and the report.

A damaged capture can carry any timestamp (a pcapng offset of 2^63 s, a resolution of 10^-20 s),
and every line that shows a time must still be written: an instant no calendar date can hold is
shown as its seconds since the epoch instead of raising.
"""

from __future__ import annotations

import datetime

DATE_TIME = "%Y-%m-%d %H:%M:%S"
CLOCK = "%H:%M:%S"


def utc(ts: float, pattern: str = DATE_TIME) -> str:
    """`ts` (seconds since 1970, UTC) written with strftime's `pattern`; outside years 1-9999 (or
    NaN) "<seconds> s since 1970", which says what the capture holds without a date to fit it."""
    try:
        moment = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):  # past what datetime or the platform's time_t holds
        return f"{ts:.6g} s since 1970"
    return moment.strftime(pattern)
