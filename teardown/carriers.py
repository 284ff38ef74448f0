"""Where a segment was carried: the interface, link type, VLAN tags and tunnels around it.

A connection is its 4-tuple *and* where it was carried (docs/rules.md "Vocabulary"): the
same addresses in two VLANs or two tunnels are two address spaces. Each distinct carrier of an
analysis gets a number, `Packets.ctx`, which the flow table keys connections by:

  - a frame of the run's first link type, on the capture's first interface, with at most one
    VLAN tag and no tunnel, keeps the number it always had: its VLAN id (0: untagged);
  - every other carrier (another interface or link type, QinQ, a tunnel) is numbered from
    `TUNNEL_CTX_BASE` (4096, past the 12-bit VLAN ids) in the order the run shows them, so
    every reader and every cluster worker numbers them alike.

The fast decoder hashes a frame's carrier in C (`_decode.c`, `where`) and this module names a
hash once, from one frame's layers (`describe`), so a capture costs one dictionary lookup per
distinct carrier per batch. MPLS labels and GTP TEIDs differ per direction and cannot pair a
connection's two directions: they are not part of the carrier (the GTP tunnel's endpoints are).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ._decode import describe  # type: ignore[import-not-found]

TUNNEL_CTX_BASE = 4096

# The names `_decode.describe` gives tunnel layers, as the summary and the encapsulation column
# write them.
TUNNEL_KINDS = {"ip": "IP-in-IP", "gre": "GRE", "erspan": "ERSPAN", "vxlan": "VXLAN", "geneve": "GENEVE",
                "gtpu": "GTP-U"}
_KEY_WORDS = {"GRE": "key", "ERSPAN": "session", "VXLAN": "VNI", "GENEVE": "VNI"}

# The first token of an encapsulation, per link type.
LINK_TOKENS = {1: "eth", 113: "sll", 276: "sll2", 101: "raw", 228: "raw", 229: "raw", 12: "raw", 14: "raw",
               0: "null", 108: "loop", 9: "ppp", 50: "ppp", 104: "chdlc", 239: "nflog", 105: "wlan",
               127: "radiotap/wlan", 242: "ipoib", 129: "arcnet", 258: "pktap"}


@dataclass(frozen=True, slots=True)
class Tunnel:
    """One tunnel a segment was carried in: the same both ways, so its ends are sorted."""

    kind: str  # a value of TUNNEL_KINDS
    ends: tuple[str, str]  # outer endpoints (addresses as text), sorted
    key: int | None  # GRE key, VNI, ERSPAN session; None when the tunnel has none

    def __str__(self) -> str:
        key = f" {_KEY_WORDS.get(self.kind, 'id')} {self.key}" if self.key is not None else ""
        return f"{self.kind}{key} {self.ends[0]} <-> {self.ends[1]}"


def tunnel(kind: str, a: str, b: str, key: int | None) -> Tunnel:
    """A Tunnel with its ends in canonical text and order."""
    ends = sorted((ipaddress.ip_address(a), ipaddress.ip_address(b)), key=lambda x: (x.version, int(x)))
    return Tunnel(kind, (ends[0].compressed, ends[1].compressed), key)


@dataclass(frozen=True, slots=True)
class Carrier:
    """Everything that tells one point of capture apart from another."""

    iface: int = 0  # interface index in the capture file
    link_type: int = 1
    vlans: tuple[int, ...] = ()  # VLAN ids, outermost first (priority tags, VID 0, left out)
    tunnels: tuple[Tunnel, ...] = ()  # outermost first


@dataclass(frozen=True, slots=True)
class Point:
    """A numbered carrier, and how its frames were framed (for the flow rows)."""

    carrier: Carrier
    encapsulation: str  # the layers outside the flow's own IP header: "eth/vlan:100/ipv4/gre:7"

    @property
    def vlan(self) -> int:
        return self.carrier.vlans[0] if self.carrier.vlans else 0

    def __str__(self) -> str:
        """How the summary and `also_seen_on` name it: 'interface 1, VLAN 200, VXLAN VNI 7 a <-> b'."""
        c = self.carrier
        parts = [f"interface {c.iface}"] if c.iface else []
        parts += [f"VLAN {'.'.join(map(str, c.vlans))}"] if c.vlans else []
        parts += [str(t) for t in c.tunnels]
        return ", ".join(parts) or "untagged"


def encapsulation(layers: list[tuple[str, int | None, object]]) -> str:
    """The encapsulation text of `describe`'s layers, but for the innermost IP header (the flow's
    own ip_version ends it, see `encapsulated`): tokens joined by '/', ids after a colon where
    they tell carriers apart (VLAN id, VNI, GRE key, ERSPAN session); "" when the link header
    carries the IP packet directly."""
    tokens = []
    for name, ident, _ends in layers[1:-1]:
        if name == "ip":  # IP-in-IP: the two IP headers say it
            continue
        with_id = name in ("vlan", "vxlan", "geneve", "gre", "erspan") and ident is not None
        tokens.append(f"{name}:{ident}" if with_id else name)
    if not tokens:
        return ""
    link = LINK_TOKENS.get(int(layers[0][1] or 0), f"link{layers[0][1]}")
    return "/".join([link, *tokens])


def encapsulated(outside: str, ip_version: int) -> str:
    """A flow's encapsulation text: its carrier's layers, then its own IP header."""
    return f"{outside}/ipv{ip_version}" if outside else ""


def carrier_of(frame: bytes, link_type: int, iface: int) -> tuple[Carrier, str]:
    """The carrier of one frame the fast decoder read, and its encapsulation text."""
    layers = describe(frame, link_type)
    vlans = tuple(ident for name, ident, _ in layers if name == "vlan" and ident)
    tunnels = tuple(_tunnel(name, ident, ends) for name, ident, ends in layers if ends is not None)
    return Carrier(iface, link_type, vlans, tunnels), encapsulation(layers)


def _tunnel(name: str, ident: int | None, ends: tuple[bytes, bytes]) -> Tunnel:
    a, b = (ipaddress.IPv6Address(e) for e in ends)
    return tunnel(TUNNEL_KINDS[name], str(a.ipv4_mapped or a), str(b.ipv4_mapped or b), ident)


@dataclass(slots=True)
class Contexts:
    """The carriers of one analysis, numbered (see the module comment)."""

    points: dict[int, Point] = field(default_factory=dict)  # ctx -> its point
    numbers: dict[Carrier, int] = field(default_factory=dict)
    main_link_type: int | None = None
    special: int = 0  # carriers numbered from TUNNEL_CTX_BASE so far
    by_where: dict[int, int] = field(default_factory=dict)  # fast path: the hash of (where, link type) -> ctx

    def ctx(self, carrier: Carrier, encapsulation: str = "") -> int:
        """The number of a carrier, given on first sight."""
        k = self.numbers.get(carrier)
        if k is not None:
            return k
        if self.main_link_type is None:
            self.main_link_type = carrier.link_type
        plain = carrier.iface == 0 and len(carrier.vlans) <= 1 and not carrier.tunnels
        if plain and carrier.link_type == self.main_link_type:
            k = carrier.vlans[0] if carrier.vlans else 0
        else:
            k = TUNNEL_CTX_BASE + self.special
            self.special += 1
        self.numbers[carrier] = k
        self.points[k] = Point(carrier, encapsulation)
        return k

    def described(self) -> dict[int, str]:
        """ctx -> what it stands for, for the carriers numbered from TUNNEL_CTX_BASE."""
        return {k: str(p) for k, p in self.points.items() if k >= TUNNEL_CTX_BASE}
