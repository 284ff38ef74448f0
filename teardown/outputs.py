"""Output files, whole or not at all, and never over an input.

Each file is written to a hidden temporary beside its name (`.NAME.tmp-XXXXXXXX`: the same
directory, so the same filesystem, where a rename is atomic) and renamed over the name only
once complete: an interrupt or an error leaves the previous file as it was and no temporary.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any, BinaryIO, ContextManager

from .errors import UsageError

# Their default ends the process at once, before it could remove its temporaries (SIGINT
# raises KeyboardInterrupt already). SIGHUP: the on-call user's ssh session dropping.
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
# Held back while a set of files is renamed into place, then delivered: a set is all or none.
HELD_SIGNALS = (signal.SIGINT, *ENDING_SIGNALS)


class Staged:
    """One output on its way: `fh` writes a temporary file beside `path`; `publish` renames it
    over `path` (`fh` stays open: live --write goes on appending), `discard` removes it.

    The temporary gets the mode, and where allowed the owner, that open(path, "wb") would have
    given: the previous file's, else 0o666 less the umask (the kernel applies it, and any
    default ACL, as for open()). A path that exists and is no regular file (/dev/stdout, a
    FIFO) is written in place: there is nothing to replace, and a reader sees a stream anyway.
    """

    def __init__(self, path: str, option: str = "-o") -> None:
        self.path = path
        self.option = option
        self.target = os.path.realpath(path)  # through a symlink to its file, as open() writes
        self.temp: str | None = None  # until renamed over the target
        self.guarded = False  # holding the ending signals (see _hold_ending_signals)
        try:
            previous: os.stat_result | None = os.stat(path)
        except FileNotFoundError:
            previous = None
        except OSError as e:
            raise self.cannot(e) from None
        try:
            if previous is not None and not stat.S_ISREG(previous.st_mode):
                self.fh: BinaryIO = open(path, "wb")  # by its own name: /dev/stdout's target may be a pipe
                return
            os.makedirs(os.path.dirname(self.target), exist_ok=True)
            _hold_ending_signals()
            self.guarded = True
            fd = self._create_temp()
            self.fh = os.fdopen(fd, "wb")
            if previous is not None:
                _keep_owner_and_mode(fd, previous)
        except OSError as e:
            self.discard()
            raise self.cannot(e) from None
        except BaseException:  # Ctrl-C just after the temporary was made: it goes too
            self.discard()
            raise

    def _create_temp(self) -> int:
        """A new hidden file beside the target: its descriptor."""
        parent, name = os.path.split(self.target)
        while True:
            # Named before it exists, so that an interrupt right after the open still finds it.
            self.temp = os.path.join(parent, f".{name}.tmp-{os.urandom(4).hex()}")
            try:
                # 0o666: open()'s own mode, the umask taken off by the kernel (tempfile makes 0o600).
                return os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:  # another's: never removed by discard
                self.temp = None
            except OSError:
                self.temp = None
                raise

    def cannot(self, e: OSError) -> UsageError:
        return UsageError(f"{self.option} {self.path}: cannot write ({e.strerror or e})")

    def publish(self) -> None:
        """The whole file appears under its name at once (`fh` stays open)."""
        self.rename()
        self.release()

    def rename(self) -> None:
        if self.temp is None:
            return
        try:
            os.replace(self.temp, self.target)
        except OSError as e:
            self.discard()
            raise self.cannot(e) from None
        self.temp = None

    def discard(self) -> None:
        """The temporary closed and removed, the previous file untouched."""
        if hasattr(self, "fh"):  # not when making the temporary failed
            with contextlib.suppress(OSError):
                self.fh.close()
        if self.temp is not None:
            with contextlib.suppress(OSError):
                os.remove(self.temp)
            self.temp = None
        self.release()

    def release(self) -> None:
        if self.guarded:
            self.guarded = False
            _release_ending_signals()


class Outputs:
    """Files staged by `open`, renamed into place together by `replaced_together`."""

    def __init__(self, option: str) -> None:
        self.option = option
        self.staged: list[Staged] = []

    @contextlib.contextmanager
    def open(self, path: str) -> Iterator[BinaryIO]:
        """A file object for `path`'s temporary; closed (and so complete) when the block ends."""
        staged = Staged(path, self.option)
        self.staged.append(staged)
        try:
            yield staged.fh
            staged.fh.close()  # a full disk may tell only now, flushing the last bytes
        except OSError as e:
            raise staged.cannot(e) from None

    def publish(self) -> None:
        with _signals_held():  # no interrupt between two renames
            for staged in self.staged:
                staged.rename()
        for staged in self.staged:
            staged.release()

    def discard(self) -> None:
        for staged in self.staged:
            staged.discard()


@contextlib.contextmanager
def replaced_together(option: str = "-o") -> Iterator[Outputs]:
    """Files opened with `.open` appear under their names together if the block completes, and
    none of them if it raises (an error, Ctrl-C, SIGTERM)."""
    outputs = Outputs(option)
    try:
        yield outputs
        outputs.publish()
    except BaseException:
        outputs.discard()
        raise


def atomic_output(path: str, option: str = "-o", into: Outputs | None = None) -> ContextManager[BinaryIO]:
    """A file object whose bytes appear at `path` only if the block completes; with `into`,
    once the whole set `into` completes."""
    return into.open(path) if into is not None else _alone(path, option)


@contextlib.contextmanager
def _alone(path: str, option: str) -> Iterator[BinaryIO]:
    with replaced_together(option) as outputs, outputs.open(path) as fh:
        yield fh


def refuse_inputs(out: str, writes: Sequence[str], inputs: Sequence[str], option: str = "-o") -> None:
    """UsageError when a file `out` would write (`writes`: the table files of a directory, or
    `out` itself) is one of `inputs`, under any name (symlink, hard link, `d/../d/x`): no output
    replaces what it was made from. Called before anything is read."""
    for path in writes:
        for given in inputs:
            if _same_file(path, given):
                what = ("is an input" if os.path.normpath(path) == os.path.normpath(out)
                        else f"would write {path} over an input")
                raise UsageError(f"{option} {out}: {what} of this run ({given}); choose another output name")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one not there yet: the same file only under the same name
        return os.path.realpath(a) == os.path.realpath(b)


def _keep_owner_and_mode(fd: int, previous: os.stat_result) -> None:
    """As open() over an existing file keeps its owner and mode. The owner only where allowed
    (root, or a group of ours): a plain user replacing another's file becomes its owner."""
    if (previous.st_uid, previous.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(OSError):
            os.fchown(fd, previous.st_uid, previous.st_gid)
    os.fchmod(fd, stat.S_IMODE(previous.st_mode))  # after fchown, which may clear set-id bits


# How many temporaries exist, and the handlers their first one replaced: SIGTERM and SIGHUP
# raise SystemExit meanwhile, so the temporaries are removed on the way out.
_temporaries = 0
_saved_handlers: dict[int, Any] = {}


def _hold_ending_signals() -> None:
    global _temporaries
    _temporaries += 1
    if _temporaries == 1 and threading.current_thread() is threading.main_thread():
        for sig in ENDING_SIGNALS:
            if signal.getsignal(sig) == signal.SIG_DFL:  # a handler of the caller's is left alone
                _saved_handlers[sig] = signal.signal(sig, _exit_by_exception)


def _release_ending_signals() -> None:
    global _temporaries
    _temporaries -= 1
    if _temporaries == 0 and threading.current_thread() is threading.main_thread():
        for sig, handler in _saved_handlers.items():
            signal.signal(sig, handler)
        _saved_handlers.clear()


def _exit_by_exception(sig: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + sig)  # the status a shell shows for a process the signal ended


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP recorded, not acted on, until the block ends; then delivered."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    saved = {sig: signal.signal(sig, lambda s, _f: caught.append(s))
             for sig in HELD_SIGNALS if signal.getsignal(sig) is not None}  # None: not settable from Python
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        for number in caught:
            signal.raise_signal(number)
