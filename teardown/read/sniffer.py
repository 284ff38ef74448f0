"""An interface -> raw frames, with scapy's AsyncSniffer on a Linux packet socket (the default
reader of `teardown live`).

scapy opens the socket, binds it and runs the sniffing thread; what it never does here is build
a packet object per frame (~30 µs each: 30,000 frames/s at most). Our socket class's `recv`
reads every frame waiting on the socket straight into the current `Frames` buffer, with the
kernel's timestamp and original length from the ancillary data, and hands scapy nothing.
The BPF filter is compiled by libpcap (through scapy) and runs in the kernel; on a loopback
interface it also drops the outgoing copy of each packet, which the kernel delivers again as
incoming (libpcap drops it in user space).

Several interfaces (`-i a -i b`) or every one (`-i any`) are read through one packet socket
bound to none: the kernel hands it every interface's frames in the order it saw them, each with
the interface's index in its address (recvmsg), so each frame keeps its interface, numbered as
--write's interface blocks are. Unlike libpcap's `any` (cooked SLL headers), each frame keeps its
own link-layer header: one BPF program per link type, the frame's device type choosing (`_dispatch`).
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
import threading
from typing import Any

from ..errors import CaptureError, ReaderUnavailable, UsageError
from . import PAD, FrameBatch, Interface
from .frames import Counts, Frames
from .pcapng import PcapngWriter
from .rotation import Rotation, Written

SOL_PACKET = 263
ANY = "any"  # every interface, as tcpdump names it
PACKET_AUXDATA, PACKET_STATISTICS = 8, 6
SO_ATTACH_FILTER, SO_TIMESTAMPNS, SO_RCVBUFFORCE = 26, 35, 33
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 0x10, 0x40
ETH_P_ALL, ETH_P_8021Q = 0x0003, 0x8100
ARPHRD_LOOPBACK = 772
# cBPF ancillary loads (linux/filter.h SKF_AD_*): the frame's packet type, interface, device type.
SKF_AD_OFF, SKF_AD_PKTTYPE, SKF_AD_IFINDEX, SKF_AD_HATYPE = -0x1000, 4, 8, 28
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
        raise CaptureError(iface, f"no such interface; available: {ANY}, {', '.join(names)}")


def named_interfaces(ifaces: list[str]) -> list[str]:
    """The interfaces `-i` names, checked, each once; `any` alone stands for every one."""
    if ANY in ifaces and len(ifaces) > 1:
        raise UsageError(f"-i {ANY} is every interface already: give it alone, or name the interfaces")
    for iface in ifaces:
        if iface != ANY:
            check_interface(iface)
    return list(dict.fromkeys(ifaces))


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


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


LD_ABS_W, JEQ_K, JA, RET_K = 0x20, 0x15, 0x05, 0x06


def _dispatch(programs: dict[int, bytes], hatypes: dict[int, int], ifindexes: list[int] | None) -> bytes:
    """One cBPF program for a socket bound to no interface: the outgoing copy of a loopback
    frame dropped (as on one loopback interface), frames of interfaces not in `ifindexes`
    (None: every one) dropped, then the program of the frame's link type (`hatypes`: device
    type -> link type, `programs`: link type -> its program); device types not known: dropped."""
    head = [_insn(LD_ABS_W, 0, 0, SKF_AD_OFF + SKF_AD_PKTTYPE), _insn(JEQ_K, 0, 3, PACKET_OUTGOING),
            _insn(LD_ABS_W, 0, 0, SKF_AD_OFF + SKF_AD_HATYPE), _insn(JEQ_K, 0, 1, ARPHRD_LOOPBACK),
            _insn(RET_K, 0, 0, 0)]
    if ifindexes is not None:
        head.append(_insn(LD_ABS_W, 0, 0, SKF_AD_OFF + SKF_AD_IFINDEX))
        for k, index in enumerate(ifindexes):  # match: jump over the rest and the drop
            head.append(_insn(JEQ_K, len(ifindexes) - k, 0, index))
        head.append(_insn(RET_K, 0, 0, 0))
    head.append(_insn(LD_ABS_W, 0, 0, SKF_AD_OFF + SKF_AD_HATYPE))
    order = list(programs)
    starts, at = {}, 0
    for lt in order:
        starts[lt] = at
        at += len(programs[lt]) // 8
    table = sorted(hatypes.items())
    first = len(head)
    after = first + 2 * len(table) + 1  # the programs start after the table and its drop
    for k, (hatype, lt) in enumerate(table):
        here = first + 2 * k
        head.append(_insn(JEQ_K, 0, 1, hatype))
        head.append(_insn(JA, 0, 0, after + starts[lt] - (here + 2)))
    head.append(_insn(RET_K, 0, 0, 0))
    return b"".join(head) + b"".join(programs[lt] for lt in order)


def _linktype_of(hatype: int) -> int | None:
    """The LINKTYPE_* of a device type's frames (raw IP for the tunnel devices), None when scapy
    knows none."""
    from scapy.data import ARPHRD_TO_DLT

    dlt = ARPHRD_TO_DLT.get(hatype)
    if dlt is None or dlt < 0:
        return None
    return LINKTYPE_RAW if dlt in (12, 14) else dlt


def _ifindex(iface: str) -> int:
    try:
        return socket.if_nametoindex(iface)
    except OSError:
        check_interface(iface)
        raise


def _attach(sock: socket.socket, code: bytes) -> None:
    buf = ctypes.create_string_buffer(code)
    prog = _SockFprog(len(code) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(prog))


class ScapySource:
    """Frames of the interfaces `ifaces` (or every one: [`any`]) through scapy's AsyncSniffer
    (see the module docstring)."""

    def __init__(self, ifaces: list[str], bpf: str, snaplen: int, limit: int | None, write: str | None,
                 rotation: Rotation | None = None) -> None:
        linux = _import_scapy()
        from scapy.sendrecv import AsyncSniffer

        ifaces = named_interfaces(ifaces)
        self.label = ",".join(ifaces)
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
        self.bound = ifaces[0] if len(ifaces) == 1 and ifaces[0] != ANY else None  # one interface: a bound socket
        # The interfaces in the order of --write's descriptions: those named, or those there are
        # now (by index; others are added as their first frame comes). Device types -> link types.
        present = ifaces if ifaces != [ANY] else [name for _, name in sorted(socket.if_nameindex())]
        self.hatypes: dict[int, int] = {}
        for name in present:
            lt = _linktype_of(_hatype(name))
            if lt is not None or self.bound is not None:  # one interface named: read as Ethernet if unknown
                self.hatypes[_hatype(name)] = LINKTYPE_ETHERNET if lt is None else lt
        if ifaces == [ANY]:  # interfaces that come later: the common kinds
            self.hatypes = {**{h: lt for h in _COMMON_HATYPES if (lt := _linktype_of(h)) is not None}, **self.hatypes}
        self.interfaces = [Interface(self.hatypes[_hatype(name)], snaplen, name) for name in present
                           if _hatype(name) in self.hatypes]
        self.number = {iface.name: k for k, iface in enumerate(self.interfaces)}
        self.linktype = self.interfaces[0].linktype if self.interfaces else LINKTYPE_ETHERNET
        # The filter first: a bad one is a usage error whatever the permissions.
        programs = {lt: compile_bpf(bpf, lt) for lt in dict.fromkeys(self.hatypes.values())}
        if self.bound is not None:
            code = programs[self.linktype]
            if _hatype(self.bound) == ARPHRD_LOOPBACK:
                code = _DROP_OUTGOING + code
        else:
            code = _dispatch(programs, self.hatypes, None if ifaces == [ANY] else [_ifindex(i) for i in ifaces])
        try:
            self.sock = _socket_class(linux)(self.bound, promisc=ifaces != [ANY])
            for name in ifaces if self.bound is None and ifaces != [ANY] else []:
                linux.set_promisc(self.sock.ins, name)
        except PermissionError:
            raise no_permission(self.label) from None
        except OSError as e:
            if e.errno in (errno.ENODEV, errno.ENXIO):
                named_interfaces(ifaces)
            raise CaptureError(self.label, f"cannot open a capture socket: {e.strerror or e}") from None
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
            write, self.interfaces, f"teardown live -i {' -i '.join(ifaces)} -f {bpf!r}", rotation)

    def start(self) -> None:
        self.sniffer.start()

    def receive(self) -> None:
        """Read the frames waiting on the socket into the current buffer (sniffing thread), up
        to RECEIVE_AT_ONCE of them: the lock is held meanwhile."""
        raw, snap = self.raw, self.snaplen
        recv = raw.recvmsg_into
        flags = socket.MSG_DONTWAIT
        number, bound = self.number, self.bound
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
                    n, anc, _, address = recv([view[start: start + snap]], ANCILLARY, flags)
                except BlockingIOError:
                    return
                except OSError as e:
                    self._ended(f"interface {self.label} went down" if e.errno == errno.ENETDOWN
                                else f"capture socket failed: {e.strerror or e}")
                    return
                # The interface the frame came on: its name (address[0]) as the kernel gave it
                # (an interface deleted since the frame came has none), its device type address[3].
                iface = number.get(address[0] if bound is None else bound)
                if iface is None:
                    iface = self._new_interface(address[0], address[3])
                ethernet = self.interfaces[iface].linktype == LINKTYPE_ETHERNET
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
                f.iface.append(iface)
                f.at = start + min(n, snap) + 4 - (start + min(n, snap)) % 4
                self.accepted += 1
                if self.limit is not None and self.accepted >= self.limit:
                    self._ended(None)
                    return

    def _new_interface(self, name: str, hatype: int) -> int:
        """The number of an interface seen for the first time (-i any: one that came after the
        start), described in --write before its first frame."""
        self.interfaces.append(Interface(self.hatypes.get(hatype, LINKTYPE_ETHERNET), self.snaplen,
                                         name or f"(gone, device type {hatype})"))
        self.number[name] = len(self.interfaces) - 1
        return len(self.interfaces) - 1

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
        with self.lock:
            linktypes = [i.linktype for i in self.interfaces]
        batch, ts_ns = (parts[0] if len(parts) == 1 else _join(parts)).batch(linktypes, self.counts.frames + 1)
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

    @property
    def written(self) -> list[Written]:
        return self.writer.files.files if self.writer is not None else []


def _join(parts: list[Frames]) -> Frames:
    out = Frames.new(sum(p.at for p in parts))
    for p in parts:
        out.data[out.at: out.at + p.at] = p.data[: p.at]
        out.pos += [x + out.at for x in p.pos]
        out.caplen += p.caplen
        out.wirelen += p.wirelen
        out.ts_ns += p.ts_ns
        out.iface += p.iface
        out.at += p.at
    return out


# Device types whose frames the fast decoder reads (Ethernet, loopback, IP tunnels, tun):
# filtered right on an interface that appears after `-i any` started.
_COMMON_HATYPES = (1, ARPHRD_LOOPBACK, 768, 769, 776, 778, 823, 65534)


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

        def __init__(self, iface: str | None, promisc: bool) -> None:
            if iface is not None:
                super().__init__(iface=iface, type=ETH_P_ALL, nofilter=1, promisc=promisc)
                return
            # Bound to no interface: every interface's frames (scapy's own binds to one).
            from scapy.config import conf

            self.iface, self.type, self.promisc = None, ETH_P_ALL, False
            self.ins = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.outs = None
            self.ins.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            self.ins.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self.auxdata_available = True
            self.LL, self.lvl = conf.default_l2, 2

        def recv(self, x: int = 0, **kwargs: Any) -> None:
            self.source.receive()
            if self.source.stopped.is_set():
                raise EOFError  # scapy closes the socket and ends its loop, quietly
            return None

    return RawListenSocket
