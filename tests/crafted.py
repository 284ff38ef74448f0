"""Segments crafted with scapy for the tests that build a small capture by hand: a client and a
server with fixed addresses and ISNs, one function per direction."""

from __future__ import annotations

from typing import Any

CLIENT, SERVER = ("10.0.0.1", 40000), ("10.0.0.2", 8080)
C_ISN, S_ISN = 1000, 5000


def seg(t: float, flags: str, seq: int, ack: int = 0, payload: bytes = b"", src: tuple[str, int] = CLIENT,
        dst: tuple[str, int] = SERVER) -> Any:
    """A segment from the client to the server (or from `src` to `dst`) at capture time `t`."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=src[0], dst=dst[0]) / TCP(
        sport=src[1], dport=dst[1], flags=flags, seq=seq, ack=ack, window=65000) / Raw(payload)
    p.time = t
    return p


def back(t: float, flags: str, seq: int, ack: int = 0, payload: bytes = b"") -> Any:
    """A segment from the server to the client."""
    return seg(t, flags, seq, ack, payload, src=SERVER, dst=CLIENT)
