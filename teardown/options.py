"""Settings of one analysis run: one frozen `Options`, passed down whole, never as **kwargs.
Also the OS profiles that decide how long TIME_WAIT lasts and whether an RST can end it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from .errors import UsageError


class OsProfile(StrEnum):
    linux = "linux"
    macos = "macos"
    bsd = "bsd"
    windows = "windows"
    rfc793 = "rfc793"


class ReaderKind(StrEnum):
    """What turns the capture into TCP segments (README, "Readers")."""

    auto = "auto"  # the fast reader; frames it cannot decode (tunnels, link types) handed to scapy or tshark
    fast = "fast"  # the C record walker and header decoder (pcap, pcapng; Ethernet, SLL, raw IP, loopback)
    scapy = "scapy"  # the C record walker, every frame dissected by scapy's layers
    tshark = "tshark"  # tshark dissects the capture and gives only the fields needed (-T fields)
    # The name it had first: pyshark drives the same tshark, but reading tshark's own output is
    # what this reader does (README "Readers"). Kept so that scripts written then still run.
    pyshark = "tshark"

    @classmethod
    def _missing_(cls, value: object) -> ReaderKind | None:
        return cls.tshark if value == "pyshark" else None


@dataclass(frozen=True, slots=True)
class OsBehaviour:
    time_wait_s: float
    rst_kills_time_wait: bool
    why: str


OS_BEHAVIOUR: dict[OsProfile, OsBehaviour] = {
    OsProfile.linux: OsBehaviour(
        60.0, True, "TCP_TIMEWAIT_LEN is fixed at 60 s (measured 60-62 s); tcp_rfc1337=0 by default, "
        "so an in-sequence RST ends TIME_WAIT"),
    OsProfile.macos: OsBehaviour(
        30.0, False, "2*MSL with net.inet.tcp.msl=15000 ms (XNU TCPTV_MSL); tcp_input drops RSTs in TIME_WAIT"),
    OsProfile.bsd: OsBehaviour(
        60.0, False, "2*MSL with net.inet.tcp.msl=30000 ms (FreeBSD TCPTV_MSL, as OpenBSD and NetBSD); "
        "tcp_twcheck drops RSTs in TIME_WAIT"),
    OsProfile.windows: OsBehaviour(
        240.0, True, "TcpTimedWaitDelay defaults to 240 s"),
    OsProfile.rfc793: OsBehaviour(
        240.0, True, "2*MSL with MSL = 2 min (RFC 793); an RST in TIME_WAIT closes it (the hazard of RFC 1337)"),
}

DEFAULT_CHUNK_BYTES = 8 << 20  # 8 MiB: about 90,000 segments; bigger chunks only cost memory
# Linux's net.ipv4.ip_local_port_range default: 28,232 ephemeral ports for connect().
DEFAULT_PORT_RANGE = (32768, 60999)


@dataclass(frozen=True, slots=True)
class Options:
    """How to judge: the OS profile of the hosts, and an optional TIME_WAIT override."""

    os: OsProfile = OsProfile.linux
    time_wait_s: float | None = None
    host_os: tuple[tuple[str, OsProfile], ...] = ()
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    port_range: tuple[int, int] = DEFAULT_PORT_RANGE  # clients' ephemeral ports, inclusive
    reader: ReaderKind = ReaderKind.auto

    def __post_init__(self) -> None:
        lo, hi = self.port_range
        if not 1 <= lo <= hi <= 65535:
            raise UsageError(f"--port-range {lo}-{hi}: expected LOW-HIGH with 1 <= LOW <= HIGH <= 65535")
        if self.time_wait_s is not None and not 0 < self.time_wait_s <= 86400:
            raise UsageError(f"--time-wait must be between 0 and 86400 seconds, not {self.time_wait_s}")
        if self.chunk_bytes < 1 << 12:
            raise UsageError(f"chunk size must be at least 4096 bytes, not {self.chunk_bytes}")

    @staticmethod
    def parse_port_range(text: str) -> tuple[int, int]:
        """'32768-60999' (or '32768 60999', as sysctl prints it) -> (32768, 60999)."""
        found = re.fullmatch(r"\s*(\d{1,5})\s*(?:-|\s)\s*(\d{1,5})\s*", text)
        if found is None:
            raise UsageError(f"--port-range {text}: expected LOW-HIGH, e.g. 32768-60999 "
                             "(sysctl net.ipv4.ip_local_port_range)")
        return int(found[1]), int(found[2])

    def profile_of(self, host: str) -> OsProfile:
        """The OS profile of `host`: its own if given with --host-os, else --os."""
        return dict(self.host_os).get(host, self.os)

    def behaviour_of(self, profile: OsProfile) -> OsBehaviour:
        """The profile's TIME_WAIT behaviour, with --time-wait applied."""
        base = OS_BEHAVIOUR[profile]
        if self.time_wait_s is None:
            return base
        return OsBehaviour(self.time_wait_s, base.rst_kills_time_wait, f"set with --time-wait ({base.why})")

    @property
    def longest_time_wait_s(self) -> float:
        """The longest TIME_WAIT any host can hold under these options: how long state is kept,
        and the idle gap after which a SYN opens a new incarnation even without a close
        (docs/rules.md "Vocabulary": after 2*MSL no segment of the old one can be in flight)."""
        profiles = {self.os, *(p for _, p in self.host_os)}
        return max(self.behaviour_of(p).time_wait_s for p in profiles)
