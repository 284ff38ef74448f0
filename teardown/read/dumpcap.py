"""An interface -> raw frames through Wireshark's dumpcap (`teardown live --reader dumpcap`).

pyshark's own live capture has tshark dissect every packet into XML or JSON and builds Python
objects from it: a few hundred packets per second, too slow to keep up with a busy server. So
this reader runs dumpcap, the capture program that tshark and pyshark use underneath, writing
pcapng into a pipe, and reads that stream with our own pcapng reader (pcapng.py): whole
blocks are cut from the pipe's bytes a few times a second and parsed like a file. With --write
the stream is copied to the file as it arrives, byte for byte: into a temporary beside it until
dumpcap has started, then under its name (outputs.Staged; pcapng.PcapngWriter says why).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import threading

from ..errors import CaptureError, ReaderUnavailable, UsageError
from ..outputs import Staged
from . import CaptureInfo, FrameBatch
from .frames import Counts
from .pcapng import BlockCutter, PcapngReader
from .sniffer import check_interface, no_permission

READ_BYTES = 1 << 20
START_TIMEOUT_S = 10.0
_DROPS = re.compile(r"Packets received/dropped on interface '.*': (\d+)/(\d+)")


class DumpcapSource:
    def __init__(self, iface: str, bpf: str, snaplen: int, limit: int | None, write: str | None) -> None:
        exe = shutil.which("dumpcap")
        if exe is None:
            raise ReaderUnavailable("teardown live --reader dumpcap needs dumpcap (Wireshark's capture program): "
                                    "apt-get install tshark, or use the default scapy reader")
        check_interface(iface)
        self.iface = iface
        self.linktype = 1
        self.counts = Counts()
        self.stopped = threading.Event()
        self.stop_reason: str | None = None
        self.lock = threading.Lock()
        self.buf = bytearray()  # bytes from the pipe not yet cut into blocks
        self.cutter = BlockCutter()
        self.errors: list[str] = []
        self.ready = threading.Event()
        self.out = Staged(write, "--write") if write else None
        try:
            self._start(exe, bpf, snaplen, limit)
            if self.out is not None:
                self.out.publish()
        except BaseException:
            if self.out is not None:
                self.out.discard()
            raise

    def _start(self, exe: str, bpf: str, snaplen: int, limit: int | None) -> None:
        """dumpcap running and its section header read, or the error that stopped it."""
        cmd = [exe, "-i", self.iface, "-f", bpf, "-s", str(snaplen), "-B", "64", "-w", "-"]
        if limit is not None:
            cmd += ["-c", str(limit)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.err_thread = threading.Thread(target=self._read_errors, daemon=True)
        self.err_thread.start()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        # Started once the section header comes down the pipe (dumpcap writes it after
        # compiling the filter and opening the interface); an error ends it before.
        self.ready.wait(START_TIMEOUT_S)
        if not self.ready.is_set() or self.stop_reason is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.thread.join(2.0)
            self.err_thread.join(2.0)
            raise self._failure(bpf)

    def _failure(self, bpf: str) -> Exception:
        text = "\n".join(self.errors)
        if "permission" in text:
            return no_permission(self.iface)
        if "Invalid capture filter" in text:
            why = re.search(r"isn't a valid capture filter \((.*)\)", text)
            return UsageError(f"-f {bpf!r}: invalid capture filter: {why[1] if why else text.strip()}")
        first = next((line for line in self.errors if line.startswith("dumpcap:")), text.strip() or "no output")
        return CaptureError(self.iface, f"dumpcap failed: {first.removeprefix('dumpcap: ')}")

    def _read_errors(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.errors.append(line)
            found = _DROPS.search(line)
            if found:
                self.counts.kernel_drops = int(found[2])

    def start(self) -> None:
        """Reading started with the process (the header proves it runs)."""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            data = os.read(fd, READ_BYTES)
            if not data:
                break
            if self.out is not None:
                self.out.fh.write(data)
                self.out.fh.flush()
            with self.lock:
                self.buf += data
            self.ready.set()
        if self.proc.wait() != 0 and not self.stopped.is_set():  # ended on its own, not by -c
            self.err_thread.join(1.0)
            lines = [x for x in self.errors if x.startswith("dumpcap:") or "no longer running" in x]
            self.stop_reason = f"dumpcap stopped: {lines[-1].removeprefix('dumpcap: ')}" if lines else (
                f"dumpcap stopped (exit status {self.proc.returncode})")
        self.stopped.set()
        self.ready.set()

    def take(self) -> FrameBatch | None:
        with self.lock:
            blocks = self.cutter.cut(self.buf)
        self.linktype = self.cutter.linktype
        if not blocks or not self.cutter.head:
            return None
        data = self.cutter.head + blocks
        reader = PcapngReader(io.BytesIO(data[4:]), data[:4], CaptureInfo(path=self.iface), len(data) + 4096)
        out = [b for b in reader if len(b)]
        if not out:
            return None
        batch = out[0]
        batch.frame += self.counts.frames
        self.counts.frames += len(batch)
        return batch

    def refresh_counts(self) -> None:
        """dumpcap reports its drops when it ends."""

    def stop(self) -> None:
        self.stopped.set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # dumpcap writes what it holds, then its statistics
        try:
            self.proc.wait(10.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.thread.is_alive():
            self.thread.join(10.0)
        self.err_thread.join(2.0)

    def close(self) -> None:
        if self.out is not None:
            try:
                self.out.fh.close()
            except OSError as e:
                raise self.out.cannot(e) from None
