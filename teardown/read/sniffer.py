"""An interface -> raw frames, with scapy's AsyncSniffer on a Linux packet socket (the default
reader of `teardown live`).

scapy opens the socket, binds it and runs the sniffing thread; what it never does here is build
a packet object per frame (~30 µs each: 30,000 frames/s at most). Our socket class's `recv`
reads every frame waiting on the socket straight into the current `Frames` buffer, with the
kernel's timestamp and original length from the ancillary data, and hands scapy nothing.
The BPF filter is compiled by libpcap (through scapy) and runs in the kernel; on a loopback
interface it also drops the outgoing copy of each packet, which the kernel delivers again as
incoming (libpcap drops it in user space).
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
import threading
from typing import Any

from ..errors import CaptureError, ReaderUnavailable, UsageError
from . import PAD, FrameBatch
from .frames import Counts, Frames
from .pcapng import PcapngWriter

SOL_PACKET = 263
PACKET_AUXDATA, PACKET_STATISTICS = 8, 6
SO_ATTACH_FILTER, SO_TIMESTAMPNS, SO_RCVBUFFORCE = 26, 35, 33
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 0x10, 0x40
ETH_P_ALL, ETH_P_8021Q = 0x0003, 0x8100
ARPHRD_LOOPBACK = 772
LINKTYPE_ETHERNET, LINKTYPE_RAW = 1, 101
# Room for the socket's queue while the analyzer holds the GIL: ~64 MB is ~40,000 small
# segments on loopback (an skb costs ~1.5 KB there), a fraction of a second at full rate.
RCVBUF_BYTES = 64 << 20
BUFFER_BYTES = 16 << 20  # one Frames buffer; a full one is handed over and a new one started
RECEIVE_AT_ONCE = 2048
MAX_PENDING_BYTES = 512 << 20  # frames waiting for the analyzer beyond this are dropped (counted)
ANCILLARY = socket.CMSG_SPACE(16) + socket.CMSG_SPACE(20)  # SO_TIMESTAMPNS, PACKET_AUXDATA
_TIMESPEC = struct.Struct("qq")
_AUXDATA = struct.Struct("IIIHHHH")  # tpacket_auxdata: status, len, snaplen, mac, net, vlan tci, tpid
# cBPF prepended on loopback: load the packet type; outgoing -> drop, else go on.
_DROP_OUTGOING = struct.pack("HBBI", 0x20, 0, 0, (-0x1000 + 4) & 0xFFFFFFFF) + struct.pack(
    "HBBI", 0x15, 0, 1, PACKET_OUTGOING) + struct.pack("HBBI", 0x06, 0, 0, 0)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def interfaces() -> list[str]:
    return sorted(name for _, name in socket.if_nameindex())


def check_interface(iface: str) -> None:
    """CaptureError naming the interfaces there are, when `iface` is not one of them."""
    names = interfaces()
    if iface not in names:
        raise CaptureError(iface, f"no such interface; available: {', '.join(names)}")


def no_permission(iface: str) -> CaptureError:
    return CaptureError(iface, "no permission to capture (needs root or CAP_NET_RAW); run as root, or grant "
                               "the capability to the interpreter: sudo setcap cap_net_raw,cap_net_admin=eip "
                               "$(readlink -f $(which python3))")


def _import_scapy() -> Any:
    import logging

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)  # no warnings about other interfaces
    try:
        import scapy.arch.linux as linux
    except ImportError:
        raise ReaderUnavailable("teardown live: the scapy reader needs scapy: pip install scapy "
                                "(or use --reader dumpcap, which needs dumpcap: apt-get install tshark)") from None
    return linux


def compile_bpf(expression: str, linktype: int) -> bytes:
    """The filter as cBPF instructions (struct sock_filter, back to back), compiled by libpcap;
    UsageError with libpcap's message when it is not a valid filter."""
    _import_scapy()
    from scapy.arch.common import compile_filter, free_filter
    from scapy.error import Scapy_Exception

    dlt = 12 if linktype == LINKTYPE_RAW else linktype  # scapy names raw IP by its DLT
    try:
        program = compile_filter(expression, linktype=dlt)
    except Scapy_Exception as e:
        message = str(e)
        why = message[message.rfind("(") + 1: message.rfind(")")] if message.endswith(")") else message
        raise UsageError(f"-f {expression!r}: invalid capture filter: {why}") from None
    except ImportError as e:
        raise ReaderUnavailable(f"cannot compile the capture filter: {e} (apt-get install libpcap0.8)") from None
    try:
        return ctypes.string_at(program.bf_insns, program.bf_len * 8)
    finally:
        free_filter(program)


def _attach(sock: socket.socket, code: bytes) -> None:
    buf = ctypes.create_string_buffer(code)
    prog = _SockFprog(len(code) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(prog))


class ScapySource:
    """Frames of one interface through scapy's AsyncSniffer (see the module docstring)."""

    def __init__(self, iface: str, bpf: str, snaplen: int, limit: int | None, write: str | None) -> None:
        linux = _import_scapy()
        from scapy.sendrecv import AsyncSniffer

        check_interface(iface)
        self.iface = iface
        self.snaplen = snaplen
        self.limit = limit
        self.lock = threading.Lock()
        self.counts = Counts()
        self.stopped = threading.Event()
        self.stop_reason: str | None = None
        self.pending: list[Frames] = []  # full buffers not yet taken
        self.pending_bytes = 0
        self.frames = Frames.new(BUFFER_BYTES)
        self.accepted = 0
        # The filter first: a bad one is a usage error whatever the permissions.
        hatype = _hatype(iface)
        from scapy.data import ARPHRD_TO_DLT

        dlt = ARPHRD_TO_DLT.get(hatype, LINKTYPE_ETHERNET)
        self.linktype = LINKTYPE_RAW if dlt in (12, 14) else dlt
        code = compile_bpf(bpf, self.linktype)
        if hatype == ARPHRD_LOOPBACK:
            code = _DROP_OUTGOING + code
        try:
            self.sock = _socket_class(linux)(iface=iface, type=ETH_P_ALL, nofilter=1, promisc=True)
        except PermissionError:
            raise no_permission(iface) from None
        except OSError as e:
            if e.errno in (errno.ENODEV, errno.ENXIO):
                check_interface(iface)
            raise CaptureError(iface, f"cannot open a capture socket: {e.strerror or e}") from None
        self.sock.source = self
        raw = self.sock.ins
        _attach(raw, code)
        _drain(raw)  # what arrived before the filter was attached
        try:
            raw.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)
        except PermissionError:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        self.raw = raw
        self.refresh_counts()  # the counter restarts on read: start from the filter on
        self.counts.kernel_drops = 0
        self.sniffer = AsyncSniffer(opened_socket=self.sock, store=False)
        self.writer = None if write is None else PcapngWriter(
            write, self.linktype, snaplen, iface, f"teardown live -i {iface} -f {bpf!r}")

    def start(self) -> None:
        self.sniffer.start()

    def receive(self) -> None:
        """Read the frames waiting on the socket into the current buffer (sniffing thread), up
        to RECEIVE_AT_ONCE of them: the lock is held meanwhile."""
        raw, snap = self.raw, self.snaplen
        recv = raw.recvmsg_into
        flags = socket.MSG_DONTWAIT
        ethernet = self.linktype == LINKTYPE_ETHERNET
        with self.lock:
            f = self.frames
            view = f.data.data
            for _ in range(RECEIVE_AT_ONCE):
                if self.stopped.is_set():
                    return
                if len(f.data) - f.at < snap + 4 + PAD + 4:
                    f = self._next_buffer()
                    view = f.data.data
                start = f.at + 4  # room to put back a VLAN tag the kernel took off
                try:
                    n, anc, _, _ = recv([view[start: start + snap]], ANCILLARY, flags)
                except BlockingIOError:
                    return
                except OSError as e:
                    self._ended(f"interface {self.iface} went down" if e.errno == errno.ENETDOWN
                                else f"capture socket failed: {e.strerror or e}")
                    return
                ts_ns = wire = vlan = 0
                for level, kind, data in anc:
                    if kind == SO_TIMESTAMPNS and level == socket.SOL_SOCKET:
                        sec, nsec = _TIMESPEC.unpack(data)
                        ts_ns = sec * 1_000_000_000 + nsec
                    elif kind == PACKET_AUXDATA and level == SOL_PACKET:
                        status, wire, _, _, _, tci, tpid = _AUXDATA.unpack(data)
                        if status & TP_STATUS_VLAN_VALID and ethernet and n >= 12:
                            vlan = tci | (tpid if status & TP_STATUS_VLAN_TPID_VALID else ETH_P_8021Q) << 16
                if vlan:  # put the 802.1Q tag back where it was on the wire
                    d = f.data
                    d[start - 4: start + 8] = d[start: start + 12].copy()
                    d[start + 8: start + 12] = list(struct.pack("!I", vlan))
                    start -= 4
                    n += 4
                    wire += 4
                f.pos.append(start)
                f.caplen.append(min(n, snap))
                f.wirelen.append(max(wire, n))
                f.ts_ns.append(ts_ns)
                f.at = start + min(n, snap) + 4 - (start + min(n, snap)) % 4
                self.accepted += 1
                if self.limit is not None and self.accepted >= self.limit:
                    self._ended(None)
                    return

    def _next_buffer(self) -> Frames:
        """Hand the full buffer over and start another (under the lock)."""
        if self.pending_bytes + self.frames.at > MAX_PENDING_BYTES:
            self.counts.analyzer_drops += len(self.frames)  # the analyzer is this far behind
        else:
            self.pending.append(self.frames)
            self.pending_bytes += self.frames.at
        self.frames = Frames.new(BUFFER_BYTES)
        return self.frames

    def _ended(self, reason: str | None) -> None:
        self.refresh_counts()
        self.stop_reason = reason
        self.stopped.set()

    def take(self) -> FrameBatch | None:
        with self.lock:
            parts = self.pending
            if len(self.frames):
                parts = parts + [self.frames]
                self.frames = Frames.new(BUFFER_BYTES)
            self.pending, self.pending_bytes = [], 0
        if not parts:
            return None
        batch, ts_ns = (parts[0] if len(parts) == 1 else _join(parts)).batch(self.linktype, self.counts.frames + 1)
        self.counts.frames += len(batch)
        if self.writer is not None:
            self.writer.write(batch, ts_ns)
        return batch

    def refresh_counts(self) -> None:
        try:
            _, drops = struct.unpack("II", self.raw.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        except OSError:
            return
        self.counts.kernel_drops += drops

    def stop(self) -> None:
        self.stopped.set()
        if self.sniffer.running:
            self.sniffer.stop(join=True)
        self.refresh_counts()
        self.sock.close()

    def close(self) -> None:
        """After the last take: end --write's file with the interface statistics."""
        if self.writer is not None:
            self.writer.close(self.counts.frames + self.counts.kernel_drops, self.counts.kernel_drops)


def _join(parts: list[Frames]) -> Frames:
    out = Frames.new(sum(p.at for p in parts))
    for p in parts:
        out.data[out.at: out.at + p.at] = p.data[: p.at]
        out.pos += [x + out.at for x in p.pos]
        out.caplen += p.caplen
        out.wirelen += p.wirelen
        out.ts_ns += p.ts_ns
        out.at += p.at
    return out


def _hatype(iface: str) -> int:
    """The interface's ARPHRD_* hardware type, which decides the link layer of its frames."""
    try:
        with open(f"/sys/class/net/{iface}/type") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return 1  # ARPHRD_ETHER


def _drain(sock: socket.socket) -> None:
    while True:
        try:
            sock.recv(1, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return


def _socket_class(linux: Any) -> Any:
    """scapy's listening socket, whose `recv` moves frames into our buffer and returns None."""

    class RawListenSocket(linux.L2ListenSocket):  # type: ignore[misc]
        source: ScapySource

        def recv(self, x: int = 0, **kwargs: Any) -> None:
            self.source.receive()
            if self.source.stopped.is_set():
                raise EOFError  # scapy closes the socket and ends its loop, quietly
            return None

    return RawListenSocket
