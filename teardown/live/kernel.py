"""The kernel's own TCP sockets beside the capture (`teardown live`, issue 21): netlink sock_diag
read as `ss` reads it -> TIME_WAIT per local address and per remote endpoint, ephemeral ports in
use per destination, and the comparison with the TIME_WAIT the capture predicts.

It reads this host's socket table, not packets: it is no capture source (read/), the engine
never sees it; only the live session shows it beside what the engine found.
"""

from __future__ import annotations

import os
import json
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from ..options import DEFAULT_PORT_RANGE
from ..present import endpoint
from ..read.frames import Counts
from .rows import Tallies

# <linux/netlink.h>, <linux/sock_diag.h>, <linux/inet_diag.h>, <linux/rtnetlink.h>, <net/tcp_states.h>
NETLINK_ROUTE = 0
NETLINK_SOCK_DIAG = 4
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLMSG_ERROR = 2
NLMSG_DONE = 3
SOCK_DIAG_BY_FAMILY = 20
RTM_GETADDR = 22
RTM_NEWADDR = 20
IFA_ADDRESS, IFA_LOCAL = 1, 2
TCP_STATES = ("", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
              "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV")
TCP_TIME_WAIT = 6
TCP_LISTEN = 10
# Every state with a peer: not LISTEN, not CLOSE. One dump for all: each walks the whole
# established hash, whatever the states asked for (~3.5 ms on this kernel with none to report).
CONNECTED_MASK = sum(1 << s for s in range(1, len(TCP_STATES)) if s not in (TCP_LISTEN, 7))
LINUX_TIME_WAIT_S = 60.0  # TCP_TIMEWAIT_LEN, fixed in the kernel: a TIME_WAIT's age is 60 s minus its timer

NLMSGHDR = struct.Struct("=IHHII")  # nlmsg_len, nlmsg_type, nlmsg_flags, nlmsg_seq, nlmsg_pid
# struct inet_diag_req_v2: sdiag_family, sdiag_protocol, idiag_ext, pad, idiag_states, then an
# inet_diag_sockid (sport, dport, src[4], dst[4], if, cookie[2]: 48 bytes) left zero: no match on it.
INET_DIAG_REQ_V2 = struct.Struct("=BBBxI48x")
# struct inet_diag_msg (72 bytes): family, state, timer, retrans, then inet_diag_sockid with the
# ports and addresses in network order (an IPv4 address in src[0]), then expires (ms left on the
# socket's timer), rqueue, wqueue, uid, inode.
INET_DIAG_MSG = np.dtype([("family", "u1"), ("state", "u1"), ("timer", "u1"), ("retrans", "u1"),
                          ("sport", ">u2"), ("dport", ">u2"), ("src", "u1", (16,)), ("dst", "u1", (16,)),
                          ("ifindex", "=u4"), ("cookie", "=u4", (2,)), ("expires", "=u4"), ("rqueue", "=u4"),
                          ("wqueue", "=u4"), ("uid", "=u4"), ("inode", "=u4")])
assert INET_DIAG_MSG.itemsize == 72
IFADDRMSG = struct.Struct("=BBBBI")  # ifa_family, ifa_prefixlen, ifa_flags, ifa_scope, ifa_index
RTATTR = struct.Struct("=HH")  # rta_len, rta_type

POLL_EVERY_S = 1.0
MOST_BUSY = 0.05  # of one core: a read costing more than 50 ms (~50,000 sockets) spaces the reads out
JSONL_EVERY_S = 5.0
FOREIGN_AFTER = 20  # connections seen, none of this host's, before its kernel is taken for another's
V4_MAPPED = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96, how a dual-stack socket holds an IPv4 peer
RECV_BYTES = 1 << 20  # the kernel fills at most ~32 kB per read of a dump; a larger buffer costs nothing


def _align(n: int) -> int:
    return (n + 3) & ~3  # NLMSG_ALIGN


def request(family: int, states: int, seq: int = 1) -> bytes:
    """A SOCK_DIAG_BY_FAMILY dump request for the TCP sockets of `family` in `states` (a bitmask
    of 1 << TCP state), no extensions: the replies are bare inet_diag_msg and the attributes
    the kernel always adds."""
    body = INET_DIAG_REQ_V2.pack(family, socket.IPPROTO_TCP, 0, states)
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def messages(buf: bytes) -> tuple[np.ndarray, bool]:
    """One read of a dump -> its inet_diag_msg as (n, 72) bytes, and whether the dump is done.

    Replies of one kind have one length (a TIME_WAIT socket's has no attributes, the others the
    same few), so each run of equal lengths is cut out with one reshape, not read message by
    message; a different length starts a new run."""
    a = np.frombuffer(buf, np.uint8)
    blocks: list[np.ndarray] = []
    pos, end = 0, len(buf)
    while pos + NLMSGHDR.size <= end:
        length, kind = NLMSGHDR.unpack_from(buf, pos)[:2]
        if length < NLMSGHDR.size or pos + length > end:
            raise OSError(f"sock_diag: a reply cut short at byte {pos} of {end}")
        if kind == NLMSG_DONE:
            return _stack(blocks), True
        if kind == NLMSG_ERROR:
            errno = -struct.unpack_from("=i", buf, pos + NLMSGHDR.size)[0]
            raise OSError(errno, os.strerror(errno))
        step = _align(length)
        if kind != SOCK_DIAG_BY_FAMILY or length < NLMSGHDR.size + INET_DIAG_MSG.itemsize:
            pos += step
            continue
        n = (end - pos) // step
        if n == 0:  # the last message, without its padding
            blocks.append(a[pos + NLMSGHDR.size:pos + NLMSGHDR.size + INET_DIAG_MSG.itemsize].reshape(1, -1))
            pos = end
            continue
        lengths = np.ndarray((n,), "=u4", buf, pos, (step,))
        kinds = np.ndarray((n,), "=u2", buf, pos + 4, (step,))
        differ = (lengths != length) | (kinds != kind)
        run = int(differ.argmax()) if differ.any() else n
        blocks.append(a[pos:pos + run * step].reshape(run, step)[:, NLMSGHDR.size:NLMSGHDR.size + INET_DIAG_MSG.itemsize])
        pos += run * step
    return _stack(blocks), False


def _stack(blocks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(blocks) if blocks else np.zeros((0, INET_DIAG_MSG.itemsize), np.uint8)


def sockets(raw: np.ndarray) -> np.ndarray:
    """(n, 72) bytes -> the inet_diag_msg records."""
    return np.ascontiguousarray(raw).view(INET_DIAG_MSG).reshape(len(raw))


def address_keys(family: np.ndarray, addr: np.ndarray) -> np.ndarray:
    """16-byte addresses, IPv4 ones as IPv4-mapped IPv6 (::ffff:a.b.c.d) so that an IPv4 peer
    counts once whether a dual-stack (AF_INET6) socket or an AF_INET one holds it."""
    key = addr.copy()
    v4 = family == socket.AF_INET
    key[v4, 12:16] = addr[v4, 0:4]
    key[v4, :12] = np.frombuffer(V4_MAPPED, np.uint8)
    return key


def address_text(key: bytes) -> str:
    """The capture's spelling of an address: IPv4 (also when mapped), else compressed IPv6."""
    if key[:12] == V4_MAPPED:
        return socket.inet_ntop(socket.AF_INET, key[12:16])
    return socket.inet_ntop(socket.AF_INET6, key)


def count_by(keys: np.ndarray) -> Counter[bytes]:
    """Rows of bytes (an address key, perhaps a port after it) -> how many of each.

    Rows of IPv4 addresses (the common case) are counted as one integer each, what is left
    after the ::ffff: prefix: sorting integers is ~5 times faster than sorting 16-byte rows."""
    found: Counter[bytes] = Counter()
    if not len(keys):
        return found
    v4 = (keys[:, :12] == np.frombuffer(V4_MAPPED, np.uint8)).all(axis=1)
    tail = keys[v4, 12:]
    if len(tail):
        wide = np.zeros((len(tail), 8), np.uint8)
        wide[:, 8 - tail.shape[1]:] = tail
        values, counts = np.unique(wide.view(">u8").ravel(), return_counts=True)
        width = tail.shape[1]
        for v, k in zip(values.tolist(), counts.tolist()):
            found[V4_MAPPED + int(v).to_bytes(width, "big")] = k
    rest = np.ascontiguousarray(keys[~v4])
    if len(rest):
        values, counts = np.unique(rest.view(f"V{keys.shape[1]}").ravel(), return_counts=True)
        found.update({bytes(v): int(k) for v, k in zip(values, counts.tolist())})
    return found


@dataclass(slots=True)
class Snapshot:
    """The kernel's TCP sockets at one moment, counted."""

    ts: float
    time_wait: Counter[str] = field(default_factory=Counter)  # local address -> sockets in TIME_WAIT
    time_wait_before: Counter[str] = field(default_factory=Counter)  # of those, begun before `since`
    time_wait_remote: Counter[str] = field(default_factory=Counter)  # remote ip:port -> TIME_WAIT
    ephemeral: Counter[str] = field(default_factory=Counter)  # remote ip:port -> local ports in the range in use
    sockets: int = 0


class Diag:
    """A NETLINK_SOCK_DIAG socket: dumps of this network namespace's TCP sockets."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
        self.seq = 0

    def dump(self, states: int) -> np.ndarray:
        """The TCP sockets of both families in `states`, as inet_diag_msg records."""
        out = []
        for family in (socket.AF_INET, socket.AF_INET6):
            self.seq += 1
            self.sock.send(request(family, states, self.seq))
            done = False
            while not done:
                raw, done = messages(self.sock.recv(RECV_BYTES))
                out.append(raw)
        return sockets(_stack(out))

    def close(self) -> None:
        self.sock.close()

    def snapshot(self, now: float, since: float, port_range: tuple[int, int]) -> Snapshot:
        every = self.dump(CONNECTED_MASK)
        tw = every[every["state"] == TCP_TIME_WAIT]
        snap = Snapshot(now, sockets=len(every))
        local = address_keys(tw["family"], tw["src"])
        # Its timer says how long ago it began: 60 s minus what is left (ms).
        before = now - (LINUX_TIME_WAIT_S - tw["expires"] / 1000.0) < since
        for key, k in count_by(local).items():
            snap.time_wait[address_text(key)] = k
        for key, k in count_by(local[before]).items():
            snap.time_wait_before[address_text(key)] = k
        snap.time_wait_remote = _by_endpoint(tw)
        lo, hi = port_range
        snap.ephemeral = _by_endpoint(every[(every["sport"] >= lo) & (every["sport"] <= hi)])
        return snap


def _by_endpoint(s: np.ndarray) -> Counter[str]:
    """Sockets -> how many per remote ip:port."""
    keys = np.concatenate([address_keys(s["family"], s["dst"]), s["dport"].astype(">u2").view(np.uint8).reshape(-1, 2)],
                          axis=1)
    return Counter({endpoint(address_text(key[:16]), int.from_bytes(key[16:], "big")): k
                    for key, k in count_by(keys).items()})


def host_addresses() -> dict[str, int]:
    """This host's (namespace's) addresses -> their interface index, from an RTM_GETADDR dump."""
    found: dict[str, int] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE) as s:
        body = IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        s.send(NLMSGHDR.pack(NLMSGHDR.size + len(body), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + body)
        while True:
            buf = s.recv(RECV_BYTES)
            pos = 0
            while pos + NLMSGHDR.size <= len(buf):
                length, kind = NLMSGHDR.unpack_from(buf, pos)[:2]
                if kind == NLMSG_DONE:
                    return found
                if kind == NLMSG_ERROR:
                    errno = -struct.unpack_from("=i", buf, pos + NLMSGHDR.size)[0]
                    raise OSError(errno, os.strerror(errno))
                if kind == RTM_NEWADDR:
                    family, _, _, _, index = IFADDRMSG.unpack_from(buf, pos + NLMSGHDR.size)
                    attrs: dict[int, bytes] = {}
                    at = pos + NLMSGHDR.size + IFADDRMSG.size
                    while at + RTATTR.size <= pos + length:
                        alen, atype = RTATTR.unpack_from(buf, at)
                        if alen < RTATTR.size:
                            break
                        attrs[atype] = buf[at + RTATTR.size:at + alen]
                        at += _align(alen)
                    addr = attrs.get(IFA_LOCAL, attrs.get(IFA_ADDRESS))  # IFA_LOCAL: ours on a point-to-point link
                    if addr is not None and family in (socket.AF_INET, socket.AF_INET6):
                        found[socket.inet_ntop(family, addr)] = index
                pos += _align(length)


@dataclass(frozen=True, slots=True)
class Compared:
    """One local address: the TIME_WAIT the capture predicts and the kernel's count."""

    local: str
    predicted: int
    kernel: int
    before_start: int  # of `kernel`: begun before the capture started


@dataclass(frozen=True, slots=True)
class Context:
    """What may hide TIME_WAITs from the capture."""

    watches_all: bool  # -i any: no other interface to miss
    bpf: str
    drops: int


def by_address(predicted: Counter[str]) -> Counter[str]:
    """The capture's TIME_WAITs per address. The capture names hosts by where their connections
    were carried too (vlan10/10.0.0.1, c2/10.0.0.1: overlapping address spaces kept apart); the
    kernel's sockets know only the address (a VLAN's or a tunnel's traffic ends in sockets on
    that address), so an address counts its connections over every carrier."""
    out: Counter[str] = Counter()
    for label, k in predicted.items():
        out[label.rsplit("/", 1)[-1]] += k
    return out


def compare(snap: Snapshot, predicted: Counter[str], hosts: set[str]) -> list[Compared]:
    """Per local address with either count non-zero, busiest first."""
    locals_ = {h for h, k in predicted.items() if k and h in hosts} | {h for h, k in snap.time_wait.items() if k}
    rows = [Compared(h, predicted.get(h, 0), snap.time_wait.get(h, 0), snap.time_wait_before.get(h, 0))
            for h in locals_]
    return sorted(rows, key=lambda r: (-max(r.kernel, r.predicted), r.local))


def why(rows: list[Compared], ctx: Context) -> str:
    """One sentence: do they agree, and if not, the likeliest reasons."""
    more = sum(max(r.kernel - r.predicted, 0) for r in rows)
    fewer = sum(max(r.predicted - r.kernel, 0) for r in rows)
    before = sum(min(r.before_start, max(r.kernel - r.predicted, 0)) for r in rows)
    if not more and not fewer:
        return "the kernel and the capture agree"
    parts = []
    if more:
        unseen = more - before
        reasons = []
        if before:
            reasons.append(f"{before:,} begun before the start (the capture cannot see them)")
        if unseen > 0:
            maybe = ([] if ctx.watches_all else ["on an interface not watched"]) + \
                ([f"outside the filter ({ctx.bpf})"] if ctx.bpf.strip() != "tcp" else []) + \
                ([f"in the {ctx.drops:,} frames dropped"] if ctx.drops else [])
            reasons.append(f"{unseen:,} whose close the capture did not see"
                           + (f" ({', or '.join(maybe)})" if maybe else ""))
        parts.append(f"the kernel holds {more:,} more: " + "; ".join(reasons))
    if fewer:
        parts.append(f"the capture predicts {fewer:,} the kernel does not hold (ended early: reused or "
                     "assassinated, or a TIME_WAIT length other than the kernel's 60 s)")
    return "; ".join(parts)


class KernelSide:
    """The kernel's figures for one live run: polled every POLL_EVERY_S, compared on demand."""

    def __init__(self, watched: list[str], bpf: str, started: float) -> None:
        self.watched = watched
        self.bpf = bpf
        self.started = started
        self.off = ""  # why the kernel's figures are not shown, once decided
        self.snap: Snapshot | None = None
        self.hosts: set[str] = set()
        self.next_poll = 0.0
        self.next_jsonl = 0.0
        self.cost_s = 0.0  # the last poll's time
        self.seen_local = False  # a connection the capture saw has an address of this host
        self.seen_foreign = 0  # connections seen before that, none of whose addresses is this host's
        self.port_range = local_port_range()
        self.diag: Diag | None = None
        try:
            self.diag = Diag()
            self.poll(time.time())
        except OSError as e:
            self.off = f"cannot read this host's sockets through netlink sock_diag ({e.strerror or e})"
            return
        self._check_watched()

    def _check_watched(self) -> None:
        """A watched interface without an address of this host (a mirror or SPAN port) carries
        other hosts' traffic: this host's sockets are not the capture's connections."""
        if "any" in self.watched:
            return
        try:
            indexes = [socket.if_nametoindex(name) for name in self.watched]
        except OSError:
            return
        addressed = set(self._addresses().values())
        bare = [name for name, i in zip(self.watched, indexes) if i not in addressed]
        if bare and len(bare) == len(self.watched):
            self._stop_comparing(f"{', '.join(bare)} has no address of this host (a mirror or SPAN port?): "
                                 "its connections are other hosts'")

    def _check_seen(self, t: Tallies) -> None:
        """The first FOREIGN_AFTER connections the capture saw end, none with an address of
        this host: mirrored traffic, whatever the interface's own addresses."""
        if self.seen_local or self.off:
            return
        ends = [(client, server) for _, _, _, (client, server, _) in t.recent]
        if any(client in self.hosts or server in self.hosts for client, server in ends):
            self.seen_local = True
        elif len(ends) >= FOREIGN_AFTER:
            self._stop_comparing(f"none of the {len(ends):,} connections seen has an address of this host "
                                 "(mirrored traffic?)")

    def _stop_comparing(self, why: str) -> None:
        self.off = why + "; the kernel's sockets are not the capture's"
        self.close()

    def _addresses(self) -> dict[str, int]:
        found = host_addresses()
        self.hosts = set(found)
        return found

    def poll(self, now: float) -> None:
        if self.off or self.diag is None or now < self.next_poll:
            return
        t0 = time.perf_counter()
        self.snap = self.diag.snapshot(now, self.started, self.port_range)
        self._addresses()
        self.cost_s = time.perf_counter() - t0
        self.next_poll = now + self.every_s()

    def every_s(self) -> float:
        return max(POLL_EVERY_S, self.cost_s / MOST_BUSY)

    def tick(self, now: float, t: Tallies, out: TextIO | None) -> None:
        """Once per batch: read the kernel when due, and write its JSON lines when due, each
        from a reading made then (the view's may be a second older than the capture's count)."""
        if out is not None and now >= self.next_jsonl:
            self.next_poll = 0.0
        try:
            self.poll(now)
        except OSError as e:  # netlink refused a later dump: say so, carry on without
            self._stop_comparing(f"netlink sock_diag failed ({e.strerror or e})")
        self._check_seen(t)
        if out is not None:
            self.write_jsonl(out, t.time_wait, now)

    def stop(self, now: float, t: Tallies, counts: Counts, out: TextIO | None) -> list[str]:
        """At the stop, before the engine's last rows end every TIME_WAIT counted: a last reading,
        its JSON lines, and the summary's lines."""
        self.next_poll = self.next_jsonl = 0.0
        self.tick(now, t, out)
        self.close()
        return self.lines(t, counts)

    def compared(self, predicted: Counter[str]) -> list[Compared]:
        return [] if self.snap is None or self.off else compare(self.snap, by_address(predicted), self.hosts)

    def lines(self, t: Tallies, counts: Counts, top: int = 5) -> list[str]:
        """The view's and the summary's lines: per local address, predicted / kernel, and why
        they differ."""
        if self.off:
            return [f"kernel: not compared: {self.off}"]
        if self.snap is None:
            return []
        rows = self.compared(t.time_wait)
        out = [f"TIME_WAIT per local address, capture / kernel (sock_diag, every {self.every_s():.0f} s; of which begun "
               "before the start): " + (", ".join(f"{r.local} {r.predicted:,} / {r.kernel:,} ({r.before_start:,})"
                                                   for r in rows[:top]) if rows else "none")]
        if rows:
            ctx = Context("any" in self.watched, self.bpf, counts.kernel_drops + counts.analyzer_drops)
            out.append(f"  {why(rows, ctx)}")
        if self.snap.time_wait_remote:
            out.append("  kernel's TIME_WAIT per remote endpoint: "
                       + ", ".join(f"{ep} {k:,}" for ep, k in self.snap.time_wait_remote.most_common(3)))
        lo, hi = self.port_range
        if self.snap.ephemeral:
            size = hi - lo + 1
            out.append(f"  kernel's ephemeral ports in use ({lo}-{hi}) per destination: "
                       + ", ".join(f"{ep} {k:,} ({k / size:.1%})" for ep, k in self.snap.ephemeral.most_common(3)))
        return out

    def write_jsonl(self, out: TextIO, predicted: Counter[str], now: float) -> None:
        """`{"event": "kernel_time_wait", ...}` per local address, every JSONL_EVERY_S."""
        if self.off or now < self.next_jsonl:
            return
        self.next_jsonl = now + JSONL_EVERY_S
        for r in self.compared(predicted):
            out.write(json.dumps({"event": "kernel_time_wait", "local": r.local, "predicted": r.predicted,
                                  "kernel": r.kernel, "kernel_before_start": r.before_start, "ts": now}) + "\n")
        out.flush()

    def close(self) -> None:
        if self.diag is not None:
            self.diag.close()
            self.diag = None


def local_port_range() -> tuple[int, int]:
    """net.ipv4.ip_local_port_range of this namespace (connect()'s ephemeral ports); Linux's
    default where it cannot be read."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            lo, hi = fh.read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return DEFAULT_PORT_RANGE
