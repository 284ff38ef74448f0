"""Errors a user can see: each becomes one line on stderr and exit code 2 in `cli.main`.

TeardownError             base; cli.py catches only this
├── CaptureError          missing, unreadable, not a capture
│   └── CaptureDamaged    stopped early; .path, .offset, .packets_read
├── ReaderUnavailable     a reader's package or program is missing; how to install it
└── UsageError            options that cannot go together
"""

from __future__ import annotations


class TeardownError(Exception):
    """Base of every error meant for the user rather than a traceback."""


class CaptureError(TeardownError):
    """The capture cannot be read: missing, unreadable, or not a capture at all."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # a worker process's error reaches the user as is
        return type(self), (self.path, self.problem)


class CaptureDamaged(CaptureError):
    """The capture is damaged at `offset`; everything before it was read.

    Raised only when nothing could be read; otherwise it is kept as a warning in the result's
    metadata and the frames before the damage are analyzed.
    """

    def __init__(self, path: str, offset: int, packets_read: int, problem: str) -> None:
        super().__init__(path, f"{problem} at byte {offset:,} (after {packets_read:,} frames)")
        self.offset = offset
        self.packets_read = packets_read
        self.what = problem

    def __reduce__(self) -> tuple[type, tuple[str, int, int, str]]:  # type: ignore[override]
        return type(self), (self.path, self.offset, self.packets_read, self.what)


class ReaderUnavailable(TeardownError):
    """A reader needs a package or program that is not installed."""


class UsageError(TeardownError):
    """Options that cannot go together, or values out of range."""
