"""Outputs are whole or not at all, and never over an input (teardown/outputs.py).

A run stopped by SIGINT or SIGTERM while it writes, or failing halfway, leaves the previous file
byte for byte and no temporary beside it; `-o DIR/` leaves the previous set or the new one; an
output naming an input (under any name) is refused in one line, exit 2, before anything is read;
a file written gets the mode a plain open() would have given it.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import teardown
from teardown.cli import main
from teardown.read import Interface
from teardown.read.pcapng import PcapngWriter
from teardown.report import files

from .conftest import CAPTURES, ROOT

SAMPLE = CAPTURES / "tw_assassination.pcap"
BENCH = ROOT / "bench" / "data" / "loopback_1000000.pcap"
PREVIOUS = b"the previous run's file\n"


def teardown_cli(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    """`teardown ARGS` in this process: the exit code and stderr."""
    err = io.StringIO()
    here = os.getcwd()
    os.chdir(cwd or here)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(here)
    return code, err.getvalue()


def names(directory: Path) -> list[str]:
    """Every entry, hidden ones (a leftover temporary) included."""
    return sorted(p.name for p in directory.iterdir())


# ---- (a) interrupted by a signal while writing -------------------------------------------------

@pytest.fixture(scope="module")
def big_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 1M-packet benchmark (CSV 52 MB, about half a second of writing), else as many copies
    of a sample as make a table that takes a while to write (CSV 42 MB): each copy's client
    ports moved on by one, its times past the copy before, so every copy is new connections."""
    if BENCH.exists():
        return BENCH
    raw = SAMPLE.read_bytes()
    head, records, at = raw[:24], [], 24
    while at < len(raw):
        sec, usec, caplen, wire = struct.unpack_from("<IIII", raw, at)
        records.append((sec + usec / 1e6, raw[at + 16: at + 16 + caplen], wire))
        at += 16 + caplen
    span = records[-1][0] - records[0][0] + 0.001
    out = tmp_path_factory.mktemp("big") / "big.pcap"
    with open(out, "wb") as fh:
        fh.write(head)
        for copy in range(40_000):
            for ts, frame, wire in records:
                frame = _client_port_moved(frame, copy)
                t = ts + copy * span
                fh.write(struct.pack("<IIII", int(t), int(t % 1 * 1e6), len(frame), wire) + frame)
    return out


def _client_port_moved(frame: bytes, by: int) -> bytes:
    """An Ethernet/IPv4/TCP frame with its port above 1024 (the client's) moved on by `by`."""
    tcp = 14 + (frame[14] & 0x0F) * 4
    sport, dport = struct.unpack_from("!HH", frame, tcp)
    if sport > dport:
        sport = 1025 + (sport + by) % 60000
    else:
        dport = 1025 + (dport + by) % 60000
    return frame[:tcp] + struct.pack("!HH", sport, dport) + frame[tcp + 4:]


def bytes_written(out: Path) -> int:
    """How far the write of `out` has got: its temporary's size, or, if `out` itself has changed
    (written in place: the bug these tests catch), its own."""
    temps = [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    if temps:
        with contextlib.suppress(FileNotFoundError):
            return temps[0].stat().st_size
    with contextlib.suppress(FileNotFoundError):
        if out.read_bytes()[:len(PREVIOUS)] != PREVIOUS or out.stat().st_size != len(PREVIOUS):
            return out.stat().st_size
    return -1


def interrupted(args: list[str], out: Path, when: Callable[[], bool], sig: signal.Signals) -> tuple[int, str]:
    """`teardown ARGS` as a process, sent `sig` once `when()` holds; its exit status and stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "teardown.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=out.parent)
    try:
        end = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < end:
            if when():
                proc.send_signal(sig)
                break
            time.sleep(0.002)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


@pytest.mark.parametrize(("name", "at_bytes", "sig"), [
    ("flows.csv", 0, signal.SIGINT),  # as soon as its temporary appears
    ("flows.csv", 8 << 20, signal.SIGINT),  # mid-table
    ("flows.csv", 40 << 20, signal.SIGINT),  # near its end (52 MB)
    ("flows.csv", 1 << 20, signal.SIGTERM),  # whose default would end the process on the spot
    ("flows.parquet", 0, signal.SIGINT),
    ("flows.parquet", 1 << 20, signal.SIGINT),
], ids=lambda v: getattr(v, "name", str(v)))
def test_a_signal_while_writing_leaves_the_previous_file_and_no_temporary(
        big_capture: Path, tmp_path: Path, name: str, at_bytes: int, sig: signal.Signals) -> None:
    if big_capture != BENCH and at_bytes > 8 << 20:
        pytest.skip("the made-up capture's table is smaller than that")
    out = tmp_path / name
    out.write_bytes(PREVIOUS)
    code, err = interrupted(["analyze", str(big_capture), "-o", name, "--quiet"], out,
                            lambda: bytes_written(out) >= at_bytes, sig)
    assert code == 128 + sig, err  # stopped while writing, not finished
    assert out.read_bytes() == PREVIOUS
    assert names(tmp_path) == [name]
    assert "Traceback" not in err


# A real SIGINT from inside the process at a chosen point of the write: `SIGINT_AT=half` after
# half of a big write (the page is written in one go, a few ms: no outside timing hits it),
# `SIGINT_AT=NAME` once a file whose name holds NAME is opened for writing.
SIGINT_FROM_INSIDE = """
import builtins, os, signal, sys

AT = os.environ["SIGINT_AT"]

class HalfThenSigint:
    def __init__(self, fh):
        self.fh = fh
    def write(self, data):
        if AT != "half" or len(data) < 10_000:
            return self.fh.write(data)
        self.fh.write(data[: len(data) // 2])
        self.fh.flush()
        os.kill(os.getpid(), signal.SIGINT)
        return len(data)
    def __getattr__(self, name):
        return getattr(self.fh, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.fh.close()

def wrapped(real):
    def opened(*args, **kwargs):
        fh = real(*args, **kwargs)
        mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
        return HalfThenSigint(fh) if "w" in str(mode) else fh
    return opened

def os_open(path, flags, *rest, real=os.open):
    fd = real(path, flags, *rest)
    if flags & os.O_WRONLY and AT in os.path.basename(path):
        os.kill(os.getpid(), signal.SIGINT)
    return fd

os.fdopen = wrapped(os.fdopen)
builtins.open = wrapped(builtins.open)
os.open = os_open
from teardown.cli import main
sys.exit(main(sys.argv[1:]))
"""


def sigint_from_inside(tmp_path: Path, at: str, *args: str) -> subprocess.CompletedProcess[str]:
    harness = tmp_path / "harness.py"
    harness.write_text(SIGINT_FROM_INSIDE)
    try:
        return subprocess.run([sys.executable, str(harness), *args], capture_output=True, text=True, cwd=tmp_path,
                              timeout=120, env={**os.environ, "SIGINT_AT": at, "PYTHONPATH": str(ROOT)})
    finally:
        harness.unlink()


def test_a_sigint_at_the_last_table_of_a_directory_leaves_the_previous_set(tmp_path: Path) -> None:
    """flows.csv and three more are complete by then, and not yet renamed: the five tables
    appear together or not at all."""
    out = tmp_path / "d"
    assert teardown_cli("analyze", str(CAPTURES / "linger_abort.pcap"), "-o", f"{out}/", "--format", "csv",
                        "--quiet")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = sigint_from_inside(tmp_path, "findings", "analyze", str(SAMPLE), "-o", "d/", "--format", "csv", "--quiet")
    assert proc.returncode == 130, proc.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("command", ["analyze", "report"])
def test_a_sigint_halfway_through_the_html_leaves_the_previous_report(tmp_path: Path, command: str) -> None:
    saved = tmp_path / "saved.parquet"
    assert main(["analyze", str(SAMPLE), "-o", str(saved), "--quiet"]) == 0
    out = tmp_path / "r.html"
    out.write_bytes(PREVIOUS)
    given = str(SAMPLE) if command == "analyze" else str(saved)
    proc = sigint_from_inside(tmp_path, "half", command, given, "-o", "r.html")
    assert proc.returncode == 130, proc.stderr
    assert out.read_bytes() == PREVIOUS
    assert names(tmp_path) == ["r.html", "saved.parquet"]


# ---- (b) an output that is an input --------------------------------------------------------------

def refused(tmp_path: Path, *args: str, untouched: list[Path]) -> str:
    """Run, and check: exit 2, one line naming the input, nothing written, nothing changed."""
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in untouched}
    listing = names(tmp_path)
    code, err = teardown_cli(*args, cwd=tmp_path)
    assert code == 2, err
    assert err.count("\n") == 1 and ("is an input of this run" in err or "over an input of this run" in err), err
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in untouched} == before
    assert names(tmp_path) == listing  # no temporary, no reports/ directory
    return err


def test_an_output_through_a_symlink_to_the_input_is_refused(tmp_path: Path) -> None:
    capture = tmp_path / "dump.pcap"
    shutil.copy(SAMPLE, capture)
    (tmp_path / "link.csv").symlink_to(capture)
    refused(tmp_path, "analyze", "dump.pcap", "-o", "link.csv", untouched=[capture])


def test_an_output_that_is_a_hard_link_of_the_input_is_refused(tmp_path: Path) -> None:
    capture = tmp_path / "dump.pcap"
    shutil.copy(SAMPLE, capture)
    os.link(capture, tmp_path / "hard.csv")
    refused(tmp_path, "analyze", "dump.pcap", "-o", "hard.csv", untouched=[capture])


def test_an_output_spelled_another_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    capture = tmp_path / "d" / "dump.pcap"
    shutil.copy(SAMPLE, capture)
    refused(tmp_path, "analyze", "d/dump.pcap", "-o", "./d/../d/dump.pcap", "--format", "csv", untouched=[capture])
    refused(tmp_path, "analyze", str(capture), "-o", "d/dump.pcap", "--format", "csv", untouched=[capture])


def test_any_of_several_inputs_is_refused(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pcap", tmp_path / "b.pcap"
    shutil.copy(SAMPLE, first)
    shutil.copy(CAPTURES / "linger_abort.pcap", second)
    err = refused(tmp_path, "analyze", "a.pcap", "b.pcap", "-o", "b.pcap", "--format", "csv",
                  untouched=[first, second])
    assert "(b.pcap)" in err


def test_a_directory_whose_table_file_is_the_input_is_refused(tmp_path: Path) -> None:
    """`-o d/ --format csv` writes d/flows.csv: here the capture itself."""
    (tmp_path / "d").mkdir()
    capture = tmp_path / "d" / "flows.csv"
    shutil.copy(SAMPLE, capture)
    err = refused(tmp_path, "analyze", "d/flows.csv", "-o", "d/", "--format", "csv", untouched=[capture])
    assert "d/flows.csv" in err


def test_a_report_over_the_result_it_renders_is_refused(tmp_path: Path) -> None:
    saved = tmp_path / "x.parquet"
    assert main(["analyze", str(SAMPLE), "-o", str(saved), "--quiet"]) == 0
    (tmp_path / "same.html").symlink_to(saved)
    refused(tmp_path, "report", "x.parquet", "-o", "./x.parquet", untouched=[saved])
    refused(tmp_path, "report", "x.parquet", "-o", "same.html", untouched=[saved])


def test_live_output_over_its_own_capture_is_refused_before_sniffing(tmp_path: Path) -> None:
    """Neither exists yet: the same name is enough. Refused before the interface is opened."""
    code, err = teardown_cli("live", "-i", "no-such-interface", "--write", "cap.pcapng", "-o", "./cap.pcapng",
                             "--format", "csv", cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1 and "is an input of this run" in err, err
    assert names(tmp_path) == []


# ---- (c) a failure halfway -----------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
def test_a_writer_failing_halfway_leaves_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           fmt: str) -> None:
    out = tmp_path / f"flows.{fmt}"
    out.write_bytes(PREVIOUS)
    writer = {"csv": "_csv", "json": "_json_array", "jsonl": "_json_lines", "parquet": "_parquet"}[fmt]

    def broken(_first: Any, _rest: Any, fh: Any) -> None:
        fh.write(b"half a table")
        raise RuntimeError("a bug halfway")

    monkeypatch.setattr(files, writer, broken)
    with pytest.raises(RuntimeError):
        teardown_cli("analyze", str(SAMPLE), "-o", str(out), "--quiet")
    assert out.read_bytes() == PREVIOUS
    assert names(tmp_path) == [out.name]


@contextlib.contextmanager
def full_disk_after(limit: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Files opened for writing take `limit` bytes, then fail as a full disk does (ENOSPC)."""
    class Full:
        def __init__(self, fh: Any) -> None:
            self.fh, self.taken = fh, 0

        def write(self, data: Any) -> int:
            room = max(limit - self.taken, 0)
            self.fh.write(bytes(memoryview(data)[:room]))
            self.taken += min(len(data), room)
            if len(data) > room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return len(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.fh, name)

    def wrapped(real: Callable[..., Any]) -> Callable[..., Any]:
        def opened(*args: Any, **kwargs: Any) -> Any:
            fh = real(*args, **kwargs)
            return Full(fh) if "w" in (args[1] if len(args) > 1 else kwargs.get("mode", "r")) else fh
        return opened

    import builtins
    monkeypatch.setattr(os, "fdopen", wrapped(os.fdopen))
    monkeypatch.setattr(builtins, "open", wrapped(builtins.open))
    yield


@pytest.mark.parametrize("name", ["flows.csv", "flows.parquet", "r.html"])
def test_a_full_disk_halfway_leaves_the_previous_file_and_says_so_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    out = tmp_path / name
    out.write_bytes(PREVIOUS)
    with full_disk_after(300, monkeypatch):  # each file is bigger (the CSV 1.7 kB)
        code, err = teardown_cli("analyze", str(SAMPLE), "-o", str(out), "--quiet")
    assert code == 2 and err.count("\n") == 1 and "cannot write (No space left on device)" in err, err
    assert out.read_bytes() == PREVIOUS
    assert names(tmp_path) == [name]


def test_a_failure_in_the_last_table_of_a_directory_leaves_the_previous_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """flows.csv is complete by then, and still not renamed: the five appear together or not at all."""
    out = tmp_path / "d"
    assert teardown_cli("analyze", str(SAMPLE), "-o", f"{out}/", "--format", "csv", "--quiet")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = files._csv

    def fails_at_findings(first: Any, rest: Any, fh: Any) -> None:
        if "severity" in first.column_names:
            raise RuntimeError("a bug in the last table")
        real(first, rest, fh)

    monkeypatch.setattr(files, "_csv", fails_at_findings)
    with pytest.raises(RuntimeError):
        teardown_cli("analyze", str(CAPTURES / "linger_abort.pcap"), "-o", f"{out}/", "--format", "csv", "--quiet")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_live_write_is_whole_and_readable_at_its_name_from_the_start(tmp_path: Path) -> None:
    """--write replaces the previous capture once the capture has started, header and all, and
    grows under its own name (read while it runs); no temporary is left."""
    out = tmp_path / "cap.pcapng"
    out.write_bytes(PREVIOUS)
    writer = PcapngWriter(str(out), [Interface(1, 262144, "eth0")], "test")
    assert names(tmp_path) == ["cap.pcapng"]
    assert out.read_bytes()[:4] == b"\n\r\r\n"  # the section header: a capture of no frames yet
    assert len(teardown.analyze(str(out))) == 0
    writer.close(0, 0)
    assert names(tmp_path) == ["cap.pcapng"]


def test_live_write_failing_before_its_header_is_down_leaves_the_previous_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "cap.pcapng"
    out.write_bytes(PREVIOUS)
    with full_disk_after(8, monkeypatch), pytest.raises(teardown.TeardownError, match="--write .*No space"):
        PcapngWriter(str(out), [Interface(1, 262144, "eth0")], "test")
    assert out.read_bytes() == PREVIOUS
    assert names(tmp_path) == ["cap.pcapng"]


# ---- where a plain open() would write -------------------------------------------------------------

def test_an_output_through_a_symlink_replaces_the_file_it_points_to(tmp_path: Path) -> None:
    """As open() writes through a symlink: the link stays, its file gets the table."""
    (tmp_path / "runs").mkdir()
    real = tmp_path / "runs" / "flows.csv"
    real.write_bytes(PREVIOUS)
    (tmp_path / "latest.csv").symlink_to(real)
    assert teardown_cli("analyze", str(SAMPLE), "-o", str(tmp_path / "latest.csv"), "--quiet")[0] == 0
    assert (tmp_path / "latest.csv").is_symlink()
    assert real.read_bytes().startswith(b"flow_id,")
    assert names(tmp_path / "runs") == ["flows.csv"]


def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    """Nothing to replace (a FIFO, /dev/stdout): the bytes go straight to its reader."""
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)  # daemon: may never be fed
    reader.start()
    assert teardown_cli("analyze", str(SAMPLE), "-o", str(fifo), "--format", "csv", "--quiet")[0] == 0
    reader.join(10)
    assert got and got[0].startswith(b"flow_id,")
    assert names(tmp_path) == ["pipe"] and stat.S_ISFIFO(fifo.stat().st_mode)


# ---- (d) the mode a plain open() gives -------------------------------------------------------------

@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode_of_plain_open(path: Path, previous_mode: int | None) -> int:
    """What open(path, "wb") gives, tried on a file of its own beside it."""
    probe = path.with_name("probe")
    if previous_mode is not None:
        probe.write_bytes(b"")
        probe.chmod(previous_mode)
    with open(probe, "wb"):
        pass
    mode = probe.stat().st_mode & 0o7777
    probe.unlink()
    return mode


@pytest.mark.parametrize("previous_mode", [None, 0o604], ids=["new", "replaced"])
@pytest.mark.parametrize("name", ["flows.csv", "flows.parquet", "r.html", "d/", "cap.pcapng"])
def test_the_mode_is_what_a_plain_open_gives(tmp_path: Path, name: str, previous_mode: int | None) -> None:
    out = tmp_path / (name.rstrip("/") + "/flows.csv" if name.endswith("/") else name)
    out.parent.mkdir(exist_ok=True)
    if previous_mode is not None:
        out.write_bytes(PREVIOUS)
        out.chmod(previous_mode)
    with umask(0o027):
        want = mode_of_plain_open(out, previous_mode)
        if name == "cap.pcapng":
            PcapngWriter(str(out), [Interface(1, 262144, "eth0")], "test").close(0, 0)
        else:
            args = ["--format", "csv"] if name.endswith("/") else []
            assert teardown_cli("analyze", str(SAMPLE), "-o", str(tmp_path / name), *args, "--quiet")[0] == 0
    assert out.stat().st_mode & 0o7777 == want == (previous_mode or 0o640)
