"""`-o OUT --every SECONDS`: the outputs rewritten while the watch runs, from what was judged so far.

Every SECONDS the process forks; the child ends its copy of the engine as a stop at that moment
would (`Engine.finish`: the rows held are judged as they stand) and writes the outputs exactly as
the stop writes them, then exits. The capture goes on in the parent meanwhile: its only cost is
the fork itself (the page tables are copied; the memory is shared until either side writes it).
A rewrite still running when the next is due is not doubled: that turn is skipped. Each output
appears whole or not at all (outputs.py), so an interrupted rewrite leaves the previous version.
At the stop a rewrite still running is ended (SIGTERM: its temporaries go) before the final
outputs are written, so no older version can land over them.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Result = TypeVar("Result")  # the session's LiveResult: this module knows nothing of it but its passing

REWRITE_FAILED = 3  # the child's exit status when the outputs could not be written


@dataclass(slots=True)
class Rewriter(Generic[Result]):
    """Forks a child every `every_s` to run `write(result so far)`, which returns a line to tell."""

    every_s: float
    write: Callable[[Result], str]
    next_at: float = 0.0  # time.monotonic() of the next rewrite
    child: int | None = None  # pid of the rewrite running
    timing: int | None = None  # read end of the pipe its time comes back on
    seconds: list[float] = field(default_factory=list)  # each completed rewrite's time, as the child measured it
    fork_s: float = 0.0  # the longest fork: all the capture loop waits for
    failed: int = 0
    skipped: int = 0
    ended: bool = False  # a rewrite was still running at the stop, and was ended

    def __post_init__(self) -> None:
        self.next_at = time.monotonic() + self.every_s

    def tick(self, so_far: Callable[[], Result]) -> None:
        """Called from the capture loop: reap a finished rewrite; start one when due.
        `so_far` is called in the child only (it may consume the engine's state)."""
        self._reap(block=False)
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = max(self.next_at + self.every_s, now)
        if self.child is not None:
            self.skipped += 1
            return
        read_end, write_end = os.pipe()
        sys.stdout.flush()  # nothing buffered is copied into the child, to be written twice
        sys.stderr.flush()
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; its exit status and pipe say how it went
            os.close(read_end)
            _child(so_far, self.write, write_end)
        os.close(write_end)
        self.fork_s = max(self.fork_s, time.perf_counter() - t0)
        self.child, self.timing = pid, read_end

    def _reap(self, block: bool) -> None:
        if self.child is None:
            return
        pid, status = os.waitpid(self.child, 0 if block else os.WNOHANG)
        if pid == 0:
            return
        assert self.timing is not None
        took = os.read(self.timing, 8)
        os.close(self.timing)
        self.child = self.timing = None
        if os.waitstatus_to_exitcode(status) == 0 and len(took) == 8:
            self.seconds.append(struct.unpack("<d", took)[0])
        else:
            self.failed += 1

    def close(self) -> None:
        """At the stop: a rewrite still running is ended and reaped (its temporaries removed)."""
        if self.child is not None:
            try:
                os.kill(self.child, signal.SIGTERM)
            except ProcessLookupError:
                pass
            failed = self.failed
            self._reap(block=True)
            self.ended, self.failed = self.failed > failed, failed

    def summary(self) -> str:
        """One line on the rewrites made while the watch ran."""
        n = len(self.seconds)
        if not n and not self.failed:
            return "--every: no rewrite while the watch ran"
        text = f"--every: rewritten {n:,} times while the watch ran"
        if n:
            text += (f" ({min(self.seconds):.2f}-{max(self.seconds):.2f} s each in a child process; "
                     f"the capture paused {1e3 * self.fork_s:.0f} ms at most, to fork)")
        if self.skipped:
            text += f"; {self.skipped:,} turns skipped (the previous rewrite still running)"
        if self.failed:
            text += f"; {self.failed:,} failed"
        if self.ended:
            text += "; the one running at the stop was ended"
        return text


def _child(so_far: Callable[[], Result], write: Callable[[Result], str], timing: int) -> None:
    """The forked child: write the outputs, send the time taken, exit without running anything
    of the parent's (no atexit handler, no flush of its buffers: os._exit)."""
    code = REWRITE_FAILED
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to act on; it ends us
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # outputs.py turns it into an exit that removes temporaries
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        t0 = time.perf_counter()
        write(so_far())
        os.write(timing, struct.pack("<d", time.perf_counter() - t0))
        code = 0
    except SystemExit:  # SIGTERM: the parent ended this rewrite at the stop; its temporaries are gone
        pass
    except BaseException as e:  # noqa: BLE001 - told in one line; the previous outputs stay
        try:
            os.write(2, f"\nteardown live: --every: rewriting the outputs failed: {e}\n".encode())
        except OSError:
            pass
    finally:
        os._exit(code)
