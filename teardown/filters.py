"""Judged rows -> Wireshark display filters: for each incarnation, a filter that selects exactly
its frames in the file named by `capture_file`, and the filter of a flow's evidence frames.

A display filter (Wireshark 4.0 syntax) is made of three parts (docs/rules.md "Display
filters"):

  - the 4-tuple, both ways round: each direction's source and destination, address and port;
  - the frame range, `frame.number in {F..L}`, in the numbers Wireshark gives the frames of
    `capture_file` (each file from 1; teardown numbers frames across the files of a rotation);
  - where the run holds more than one carrier, what tells this flow's carrier from the others:
    interface, VLAN tags, tunnels. Copies of the flow seen at other points are other carriers'
    frames, so the filter leaves them out, as the analysis does.

The texts are joined by a joiner passed as `how` (present.py's: Arrow's string kernels for whole
tables, plain Python for a few rows); Python runs once per distinct address or carrier only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from .carriers import TUNNEL_CTX_BASE, Carrier, Point, Tunnel
from .packed import distinct_objects

# Protocol names and the field holding each tunnel kind's key (carriers.TUNNEL_KINDS' values);
# IP-in-IP has neither: its two IP headers say it.
TUNNEL_PROTOCOLS = {"GRE": "gre", "ERSPAN": "erspan", "VXLAN": "vxlan", "GENEVE": "geneve", "GTP-U": "gtp",
                    "IP-in-IP": ""}
TUNNEL_KEYS = {"GRE": "gre.key", "ERSPAN": "erspan.spanid", "VXLAN": "vxlan.vni", "GENEVE": "geneve.vni"}
IP_IN_IP = {4: 4, 6: 41}  # the IP protocol number of an IP header carried in another: IPv4, IPv6
# Clauses are looked up by carrier and IP version together (how many IP headers a frame of the
# carrier has depends on the flow's own): ctx * VERSIONS + ip_version.
VERSIONS = 8


def display_filters(columns: Mapping[str, npt.NDArray[Any]], clauses: Callable[[int], str], how: Any) -> Any:
    """Each row's display filter (`clauses`: `carrier_clauses` of the run's carriers), joined by
    `how`: an Arrow array, or a list of str from present._Python."""
    version = np.asarray(columns["ip_version"], np.int64)
    client = written_addresses(columns["client_ip"], version)
    server = written_addresses(columns["server_ip"], version)
    frames = np.asarray(columns["file_frames"], np.int64)
    client_port, server_port = how.number(columns["client_port"]), how.number(columns["server_port"])
    carrier = np.asarray(columns["ctx"], np.int64) * VERSIONS + version
    return how.join([
        how.word("(("), how.each(client, _source, texts=True), client_port, how.word(" && "),
        how.each(server, _destination, texts=True), server_port, how.word(") || ("),
        how.each(server, _source, texts=True), server_port, how.word(" && "),
        how.each(client, _destination, texts=True), client_port, how.word(")) && frame.number in {"),
        how.number(frames[:, 0]), how.word(".."), how.number(frames[:, 1]), how.word("}"),
        how.each(carrier, clauses)])


def _source(ip: str) -> str:
    return f"{_protocol(ip)}.src=={ip} && tcp.srcport=="


def _destination(ip: str) -> str:
    return f"{_protocol(ip)}.dst=={ip} && tcp.dstport=="


def _protocol(ip: str) -> str:
    return "ipv6" if ":" in ip else "ip"


def written_addresses(ips: npt.NDArray[Any], version: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
    """The addresses as a filter writes them: as the table shows them, but for an IPv4-mapped
    address in an IPv6 header, which the table shows as a.b.c.d (present.format_addresses) and
    Wireshark knows only as ::ffff:a.b.c.d in ipv6.src."""
    ips = np.asarray(ips, object)
    v6 = version == 6
    if not v6.any():
        return ips
    distinct, codes = distinct_objects(ips)
    dotted = np.array([":" not in str(ip) for ip in distinct], bool)[codes]
    mapped = v6 & dotted
    if not mapped.any():
        return ips
    out = ips.copy()
    out[mapped] = np.array([f"::ffff:{ip}" for ip in distinct], object)[codes[mapped]]
    return out


# ---- carriers ----------------------------------------------------------------------------------

def carrier_clauses(points: Mapping[int, Point]) -> Callable[[int], str]:
    """For a carrier and IP version (ctx * VERSIONS + ip_version), what a filter adds to tell that
    carrier's frames from the other carriers' of the run (`points`: carriers.Contexts.points):
    " && ..." naming only what differs between them (interface, VLAN tags, tunnels); "" when the
    run has one carrier, or its carriers differ in link type only (one file has one link type per
    interface)."""
    carriers = {ctx: point.carrier for ctx, point in points.items()}
    main = next(iter(carriers.values())).link_type if carriers else 1
    every = set(carriers.values())
    interfaces = len({c.iface for c in every}) > 1
    vlans = len({c.vlans for c in every}) > 1
    stacked = any(len(c.vlans) > 1 for c in every)
    tunnels = len({c.tunnels for c in every}) > 1
    # Tunnels told apart by their kinds and keys alone need no endpoints (two VNIs of one pair).
    ends = len({tuple((t.kind, t.key) for t in c.tunnels) for c in every}) < len({c.tunnels for c in every})

    def clause(key: int) -> str:
        ctx, version = divmod(key, VERSIONS)
        carrier = carriers.get(ctx) or _plain(ctx, main)
        parts = [_interface(carrier.iface)] if interfaces else []
        parts += [_vlans(carrier.vlans, stacked)] if vlans else []
        if tunnels:
            inner = [_version(t.ends[0]) for t in carrier.tunnels[1:]] + [version]
            parts += [_tunnel(t, layer, inside, ends)
                      for t, layer, inside in zip(carrier.tunnels, _outer_layers(carrier.tunnels), inner)]
            if any(other.tunnels[:len(carrier.tunnels)] == carrier.tunnels and other != carrier
                   and len(other.tunnels) > len(carrier.tunnels) for other in every):
                parts.append(_no_deeper(carrier.tunnels, version))
        return "".join(f" && {p}" for p in parts if p)

    return clause


def _plain(ctx: int, link_type: int) -> Carrier:
    """A carrier the run did not describe: below TUNNEL_CTX_BASE its number is its VLAN id on the
    run's first link type (carriers.Contexts)."""
    return Carrier(0, link_type, (ctx,) if 0 < ctx < TUNNEL_CTX_BASE else (), ())


def _interface(iface: int) -> str:
    # Not `frame.interface_id==0`: Wireshark gives a pcap file's frames no interface id, and a
    # run may read a pcap file beside a pcapng file of several interfaces.
    return f"frame.interface_id=={iface}" if iface else "!(frame.interface_id>0)"


def _vlans(stack: tuple[int, ...], stacked: bool) -> str:
    """The VLAN tags, outermost first. Not `!vlan` for none: teardown leaves priority tags (VLAN
    id 0) out of a carrier, and `vlan.id>0` is true where any tag's id is. With stacked tags
    (QinQ) in the run, each tag is named by its place (`#1` the outermost) and no more follow."""
    if not stack:
        return "!(vlan.id>0)"
    if not stacked:
        return f"vlan.id=={stack[0]}"
    return " && ".join([f"vlan.id#{i}=={v}" for i, v in enumerate(stack, 1)] + [f"!vlan.id#{len(stack) + 1}"])


def _outer_layers(tunnels: tuple[Tunnel, ...]) -> list[int]:
    """The place of each tunnel's outer IP header among the frame's IP headers of its version
    (`ip.addr#2`: the second IPv4 header): each tunnel, outermost first, adds one."""
    seen = {4: 0, 6: 0}
    out = []
    for t in tunnels:
        seen[_version(t.ends[0])] += 1
        out.append(seen[_version(t.ends[0])])
    return out


def _tunnel(t: Tunnel, layer: int, inner: int, with_ends: bool) -> str:
    """A tunnel: its kind and key (a keyless one, where its kind can carry a key: none), and, if
    asked, its outer endpoints, in its own IP header (`layer`). IP-in-IP has no header of its
    own: its outer IP header names the inner one's version as the protocol it carries."""
    outer = "ipv6" if _version(t.ends[0]) == 6 else "ip"
    key = TUNNEL_KEYS.get(t.kind)
    protocol = TUNNEL_PROTOCOLS.get(t.kind, "")
    if key is not None and t.key is not None:
        kind = f"{key}=={t.key}"
    elif key is not None:
        kind = f"{protocol} && !{key}"
    else:
        kind = protocol or f"{outer}.{'nxt' if outer == 'ipv6' else 'proto'}#{layer}=={IP_IN_IP[inner]}"
    ends = [f"{outer}.addr#{layer}=={end}" for end in t.ends] if with_ends else []
    return " && ".join([kind, *ends])


def _no_deeper(tunnels: tuple[Tunnel, ...], version: int) -> str:
    """No IP header inside the flow's own: what tells a carrier from another carrier that holds
    the same tunnels and one more (an untunnelled flow from its copy in a tunnel)."""
    count = {v: sum(_version(t.ends[0]) == v for t in tunnels) + (version == v) for v in (4, 6)}
    return " && ".join(f"!{name}.addr#{count[v] + 1}" if count[v] else f"!{name}"
                       for v, name in ((4, "ip"), (6, "ipv6")))


def _version(address: str) -> int:
    return 6 if ":" in address else 4


# ---- evidence frames ---------------------------------------------------------------------------

def evidence_filter(evidence_frames: str | None, before: int, last: int) -> tuple[str, int]:
    """The evidence frames (the `evidence_frames` text, numbered across the files of a capture)
    as a filter on the frames of one file: `before` frames of the capture come before that file,
    `last` is the number of its last frame there. The filter, "" when none lies in the file, and
    how many lie beyond it (a flow running on into the next file). report-data.js spells it alike."""
    numbers = sorted({int(n) - before for n in re.findall(r"\d+", evidence_frames or "")})
    inside = [n for n in numbers if 0 < n <= last - before]
    text = "frame.number in {" + ",".join(map(str, inside)) + "}" if inside else ""
    return text, len(numbers) - len(inside)
