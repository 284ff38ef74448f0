"""Verdicts depend on what the segments say, not on where the capture sits in time, which port
numbers the peers chose, or which IP version carried them: the real samples, rewritten with
scapy (times shifted, ports renumbered, IPv4 turned into IPv6), must get the same verdicts,
with only the shifted or renamed values changed, exactly (to the microsecond a pcap holds).
Splitting a capture at any record is checked in test_chunks.py."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import teardown
from teardown.options import DEFAULT_PORT_RANGE
from teardown.verdicts import WELL_KNOWN_PORT_LIMIT

from .conftest import CAPTURES, examples

ABSOLUTE_TIMES = ["first_ts", "last_ts", "first_fin_ts", "first_rst_ts", "time_wait_start_ts", "time_wait_end_ts",
                  "tw_assassination_ts"]
RELATIVE_TIMES = ["duration_s", "half_close_s"]
SAMPLES = sorted(p for p in CAPTURES.glob("*.pcap"))
# IPv4 over Ethernet, whole frames: where an IPv6 header can stand in for the IPv4 one. (A frame
# cut at a snap length would lose 20 more bytes of TCP behind the longer header.)
IPV4_SAMPLES = [p for p in SAMPLES if p.stem not in ("ipv6_client_first", "cooked_sll", "cooked_sll1",
                                                      "truncated_snaplen", "vlan")]
# Port classes the rules tell apart: a well-known port marks the server; the clients' ephemeral
# range is what the port-pressure views count. A renumbering keeps each port in its class.
PORT_CLASSES = [(1, WELL_KNOWN_PORT_LIMIT - 1), (WELL_KNOWN_PORT_LIMIT, DEFAULT_PORT_RANGE[0] - 1),
                (DEFAULT_PORT_RANGE[0], DEFAULT_PORT_RANGE[1]), (DEFAULT_PORT_RANGE[1] + 1, 65535)]

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # scapy's own imports


@functools.cache
def _packets(path: Path) -> tuple[list[Any], int]:
    import scapy.layers.inet  # noqa: F401  binds IP and TCP under Ethernet: without it frames read as Raw
    import scapy.layers.inet6  # noqa: F401
    from scapy.utils import PcapReader

    with PcapReader(str(path)) as reader:
        return list(reader), int(reader.linktype)


@functools.cache
def _flows(path: Path) -> pd.DataFrame:
    return teardown.analyze(str(path)).flows.drop(columns="capture_file")


def _rewritten(path: Path, tmp: Path, change: Callable[[Any], Any]) -> pd.DataFrame:
    from scapy.utils import wrpcap

    packets, linktype = _packets(path)
    out = tmp / path.name
    wrpcap(str(out), [change(p.copy()) for p in packets], linktype=linktype)
    return teardown.analyze(str(out)).flows.drop(columns="capture_file")


def _micros(values: pd.Series) -> list[int | None]:
    return [None if pd.isna(v) else round(float(v) * 1e6) for v in values]


def _same_except(before: pd.DataFrame, after: pd.DataFrame, changed: list[str]) -> None:
    """Every column but `changed` equal, the times to the microsecond."""
    assert list(after.columns) == list(before.columns) and len(after) == len(before)
    for name in before.columns:
        if name in changed:
            continue
        if name in ABSOLUTE_TIMES + RELATIVE_TIMES:
            assert _micros(after[name]) == _micros(before[name]), name
        else:
            assert after[name].equals(before[name]), name


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sample=st.sampled_from(SAMPLES), shift_us=st.integers(-10**15, 10**15))
def test_shifting_every_time_shifts_only_the_times(tmp_path: Path, sample: Path, shift_us: int) -> None:
    before = _flows(sample)
    if float(before["first_ts"].min()) + shift_us / 1e6 < 0:
        shift_us = -shift_us  # a pcap holds no time before 1970
    shift = Decimal(shift_us) / 1_000_000

    def later(p: Any) -> Any:
        p.time = p.time + shift
        return p

    after = _rewritten(sample, tmp_path, later)
    _same_except(before, after, ABSOLUTE_TIMES)
    for name in ABSOLUTE_TIMES:
        moved = [None if v is None else v - shift_us for v in _micros(after[name])]
        assert moved == _micros(before[name]), name


def _renumbering(ports: list[int], turns: list[int]) -> dict[int, int]:
    """Each port turned round its class by that class's number of steps: one-to-one, class kept."""
    out = {}
    for port in ports:
        for (low, high), turn in zip(PORT_CLASSES, turns):
            if low <= port <= high:
                out[port] = low + (port - low + turn) % (high - low + 1)
        out.setdefault(port, port)  # port 0 stays itself
    return out


def _endpoint_renamed(endpoint: str, ip: Callable[[str], str], port: Callable[[int], int]) -> str:
    address, _, number = endpoint.rpartition(":")
    new = ip(address.strip("[]"))
    return f"[{new}]:{port(int(number))}" if ":" in new else f"{new}:{port(int(number))}"


def _flow_ids_renamed(ids: pd.Series, ip: Callable[[str], str], port: Callable[[int], int]) -> list[str]:
    """'10.0.0.1:40000>10.0.0.2:8080/0' with each address and port renamed (no carrier prefix in
    these samples)."""
    out = []
    for flow_id in ids:
        pair, _, incarnation = flow_id.rpartition("/")
        client, _, server = pair.partition(">")
        out.append(f"{_endpoint_renamed(client, ip, port)}>{_endpoint_renamed(server, ip, port)}/{incarnation}")
    return out


def _filters_renamed(filters: pd.Series, ip: Callable[[str], str], port: Callable[[int], int]) -> list[str]:
    """Display filters with each address (and its protocol: ip or ipv6) and port renamed."""
    def address(m: re.Match[str]) -> str:
        new = ip(m.group(3))
        return f"{'ipv6' if ':' in new else 'ip'}.{m.group(2)}=={new}"

    return [re.sub(r"(ip|ipv6)\.(src|dst)==([0-9a-f.:]+)", address,
                   re.sub(r"(tcp\.(?:src|dst)port==)(\d+)", lambda m: f"{m.group(1)}{port(int(m.group(2)))}", text))
            for text in filters]


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sample=st.sampled_from(SAMPLES), turns=st.lists(st.integers(0, 65535), min_size=4, max_size=4))
def test_renumbering_ports_renames_only_the_ports(tmp_path: Path, sample: Path, turns: list[int]) -> None:
    from scapy.layers.inet import TCP

    before = _flows(sample)
    ports = sorted(set(before["client_port"]) | set(before["server_port"]))
    mapping = _renumbering([int(p) for p in ports], turns)

    def renumbered(p: Any) -> Any:
        if TCP in p:
            p[TCP].sport, p[TCP].dport = mapping.get(p[TCP].sport, p[TCP].sport), mapping.get(p[TCP].dport, p[TCP].dport)
            del p[TCP].chksum
        return p

    after = _rewritten(sample, tmp_path, renumbered)
    _same_except(before, after, ["flow_id", "display_filter", "client_port", "server_port"])
    for side in ("client_port", "server_port"):
        assert after[side].tolist() == [mapping[int(v)] for v in before[side]]
    assert after["flow_id"].tolist() == _flow_ids_renamed(before["flow_id"], str, lambda p: mapping[p])
    assert after["display_filter"].tolist() == _filters_renamed(before["display_filter"], str, lambda p: mapping[p])


def _as_ipv6(address: str) -> str:
    """198.18.0.1 -> fd00::c612:1: the IPv4 address as the low 32 bits of a unique local one."""
    return str(ipaddress.IPv6Address((0xFD00 << 112) | int(ipaddress.IPv4Address(address))))


def _ipv6_frame(p: Any) -> Any:
    """The same Ethernet frame with an IPv6 header in place of the IPv4 one (hop limit from the
    TTL, payload and TCP header kept byte for byte)."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    if IP not in p:
        return p
    ip = p[IP]
    tcp = ip.payload.copy()
    del tcp.chksum  # the pseudo-header changed
    frame = Ether(src=p[Ether].src, dst=p[Ether].dst) / IPv6(src=_as_ipv6(ip.src), dst=_as_ipv6(ip.dst),
                                                             hlim=ip.ttl) / tcp
    frame.time = p.time
    return frame


@settings(max_examples=examples(len(IPV4_SAMPLES)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sample=st.sampled_from(IPV4_SAMPLES))
def test_ipv6_in_place_of_ipv4_changes_only_the_addresses(tmp_path: Path, sample: Path) -> None:
    before = _flows(sample)
    after = _rewritten(sample, tmp_path, _ipv6_frame)
    _same_except(before, after, ["flow_id", "display_filter", "client_ip", "server_ip", "ip_version"])
    assert (after["ip_version"] == 6).all()
    for side in ("client_ip", "server_ip"):
        assert after[side].astype(str).tolist() == [_as_ipv6(str(v)) for v in before[side]]
    assert after["flow_id"].tolist() == _flow_ids_renamed(before["flow_id"], _as_ipv6, lambda p: p)
    assert after["display_filter"].tolist() == _filters_renamed(before["display_filter"], _as_ipv6, lambda p: p)


def test_the_rewrites_are_seen() -> None:
    """The properties above compare rewritten captures with the originals: a rewrite that
    changed nothing would pass them all, so check the rewrites take."""
    packets, _ = _packets(CAPTURES / "server_first_close.pcap")
    frame = _ipv6_frame(packets[0].copy())
    assert frame.haslayer("IPv6") and not frame.haslayer("IP")
    assert np.isclose(float(frame.time), float(packets[0].time))
    mapping = _renumbering([80, 8080, 40000, 61000], [1, 1, 1, 1])
    assert mapping == {80: 81, 8080: 8081, 40000: 40001, 61000: 61001}
    assert len(set(_renumbering(list(range(1, 65536)), [7, 9, 11, 13]).values())) == 65535
