"""An interface -> raw frames through Wireshark's dumpcap (`teardown live --reader dumpcap`).

pyshark's own live capture has tshark dissect every packet into XML or JSON and builds Python
objects from it: a few hundred packets per second, too slow to keep up with a busy server. So
this reader runs dumpcap, the capture program that tshark and pyshark use underneath, writing
pcapng into a pipe, and reads that stream with our own pcapng reader (pcapng.py): whole
blocks are cut from the pipe's bytes a few times a second and parsed like a file. With --write
the stream is copied to the file as it arrives, byte for byte: into a temporary beside it until
dumpcap has started, then under its name (outputs.Staged; pcapng.PcapngWriter says why); with
--write-size, cut into whole blocks and rotated (read/rotation.py), each file starting with
dumpcap's section header and interface descriptions.

Several interfaces are dumpcap's own `-i a -i b`: one interface description each, every packet
block naming its interface. `-i any` is every interface up at the start, named one by one: dumpcap's
own `any` writes cooked (SLL) frames of one pseudo-interface, where a frame's interface is lost.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import struct
import subprocess
import threading

import numpy as np

from ..errors import CaptureError, ReaderUnavailable, UsageError
from ..outputs import Staged
from . import CaptureInfo, FrameBatch, Interface
from .frames import Counts
from .pcapng import BlockCutter, PcapngReader
from .rotation import CaptureFiles, Rotation, Written
from .sniffer import ANY, named_interfaces, no_permission

READ_BYTES = 1 << 20
START_TIMEOUT_S = 10.0
_DROPS = re.compile(r"Packets received/dropped on interface '(.*)': (\d+)/(\d+)")
IFF_UP = 0x1
PACKET_BLOCKS = (2, 3, 6)  # pcapng's (obsolete) Packet, Simple Packet and Enhanced Packet Blocks


def interfaces_up() -> list[str]:
    """The interfaces that are up, by index: `-i any` for dumpcap (libpcap refuses one that is down)."""
    import socket

    up = []
    for _, name in sorted(socket.if_nameindex()):
        try:
            with open(f"/sys/class/net/{name}/flags") as fh:
                if int(fh.read().strip(), 16) & IFF_UP:
                    up.append(name)
        except (OSError, ValueError):
            continue
    return up


class DumpcapSource:
    def __init__(self, ifaces: list[str], bpf: str, snaplen: int, limit: int | None, write: str | None,
                 rotation: Rotation | None = None) -> None:
        exe = shutil.which("dumpcap")
        if exe is None:
            raise ReaderUnavailable("teardown live --reader dumpcap needs dumpcap (Wireshark's capture program): "
                                    "apt-get install tshark, or use the default scapy reader")
        ifaces = named_interfaces(ifaces)
        self.label = ",".join(ifaces)
        self.ifaces = interfaces_up() if ifaces == [ANY] else ifaces
        self.linktype = 1
        self.interfaces: list[Interface] = []  # as dumpcap describes them
        self.drops: dict[str, int] = {}  # per interface, as dumpcap reports them at its end
        self.counts = Counts()
        self.stopped = threading.Event()
        self.stop_reason: str | None = None
        self.lock = threading.Lock()
        self.buf = bytearray()  # bytes from the pipe not yet cut into blocks
        self.cutter = BlockCutter()
        self.errors: list[str] = []
        self.ready = threading.Event()
        self.rotated: CaptureFiles | None = None  # with --write-size: written from take, block by block
        self.early = b""  # blocks cut before the first take (to start the rotation's first file)
        self.early_ends: list[int] = []
        self.out = Staged(write, "--write") if write and rotation is None else None
        try:
            self._start(exe, bpf, snaplen, limit)
            if self.out is not None:
                self.out.publish()
        except BaseException:
            if self.out is not None:
                self.out.discard()
            raise
        if write and rotation is not None:
            with self.lock:
                self.early = self.cutter.cut(self.buf)
                self.early_ends = list(self.cutter.ends)
            self.rotated = CaptureFiles(write, rotation, self.cutter.head)
            self.head_written = len(self.cutter.head)

    def _start(self, exe: str, bpf: str, snaplen: int, limit: int | None) -> None:
        """dumpcap running and its section header read, or the error that stopped it."""
        # Options before the first -i are every interface's (dumpcap(1)).
        cmd = [exe, "-f", bpf, "-s", str(snaplen), "-B", "64"] + [x for i in self.ifaces for x in ("-i", i)] + ["-w", "-"]
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
            return no_permission(self.label)
        if "Invalid capture filter" in text:
            why = re.search(r"isn't a valid capture filter \((.*)\)", text)
            return UsageError(f"-f {bpf!r}: invalid capture filter: {why[1] if why else text.strip()}")
        first = next((line for line in self.errors if line.startswith("dumpcap:")), text.strip() or "no output")
        return CaptureError(self.label, f"dumpcap failed: {first.removeprefix('dumpcap: ')}")

    def _read_errors(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.errors.append(line)
            found = _DROPS.search(line)
            if found:
                self.drops[found[1]] = int(found[3])
                self.counts.kernel_drops = sum(self.drops.values())

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
            blocks = self.early + self.cutter.cut(self.buf)
            ends = self.early_ends + [len(self.early) + e for e in self.cutter.ends] if self.early else self.cutter.ends
            self.early = b""
        if self.rotated is not None:
            self._write_rotated(blocks, ends)
        if not blocks or not self.cutter.head:
            return None
        data = self.cutter.head + blocks
        reader = PcapngReader(io.BytesIO(data[4:]), data[:4], CaptureInfo(path=self.label), len(data) + 4096)
        out = [b for b in reader if len(b)]
        self.interfaces = reader.info.interfaces
        self.linktype = self.interfaces[0].linktype if self.interfaces else self.cutter.linktype
        if not out:
            return None
        batch = out[0]
        batch.frame += self.counts.frames
        self.counts.frames += len(batch)
        return batch

    def _write_rotated(self, blocks: bytes, ends: list[int]) -> None:
        """Blocks into --write's rotation; interfaces dumpcap described since, first."""
        assert self.rotated is not None
        head = self.cutter.head
        if len(head) > self.head_written:
            new = head[self.head_written:]
            before = self.head_written
            self.rotated.write(new, np.array([len(new)], np.int64), lambda: head[:before], np.zeros(1, bool))
            self.head_written = len(head)
        if blocks:
            starts = [0] + ends[:-1]
            kinds = [struct.unpack_from(self.cutter.order + "I", blocks, at)[0] for at in starts]
            self.rotated.write(blocks, np.array(ends, np.int64), lambda: head,
                               np.array([k in PACKET_BLOCKS for k in kinds], bool))

    @property
    def written(self) -> list[Written]:
        if self.rotated is not None:
            return self.rotated.files
        # dumpcap writes the one file itself: nothing known of it but its name
        return [Written(self.out.path, 0, None, [], None)] if self.out is not None else []

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
        if self.rotated is not None:
            self.take()  # dumpcap's last blocks (its statistics) into the last file
            self.rotated.close()
        if self.out is not None:
            try:
                self.out.fh.close()
            except OSError as e:
                raise self.out.cannot(e) from None
