"""The host-level views on real-kernel captures (captures/tw_*.pcap.gz, made by
captures/make/make_timewait_samples.sh), checked against what the construction guarantees
and against the kernel's own TIME_WAIT count (`ss`) taken while the sample was made."""

from __future__ import annotations

import gzip
import json
import socket
import struct
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import teardown
from teardown.schema import FindingKind, Severity
from teardown.http import CAUSES, close_cause_codes

from .conftest import CAPTURES

# The kernel enters TIME_WAIT a few microseconds before the ACK of the peer's FIN crosses the
# tap, and `date` is read a few microseconds around `ss`; 2 ms covers both on this veth pair.
CLOCK_SLACK_S = 0.002


@cache
def sample(stem: str, **options: Any) -> tuple[teardown.Analysis, dict[str, Any]]:
    truth = json.loads((CAPTURES / f"{stem}.truth.json").read_text())
    return teardown.analyze(str(CAPTURES / truth["capture"]), **options), truth


def kinds(result: teardown.Analysis) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for f in result.host_views.findings:
        out.setdefault(f.kind.value, []).append(f)
    return out


def test_burst_peak_matches_the_kernels_count() -> None:
    """2,000 server-first closes: the server's computed peak equals what ss counted once the
    burst was over (nothing expires within the 60 s TIME_WAIT, so the count is final)."""
    result, truth = sample("tw_server_burst")
    after = int(truth["kernel_observations"]["server_time_wait_after"][-1])
    hosts = result.hosts.set_index("host")
    assert hosts.loc["198.18.0.2", "time_wait_peak"] == after == 2000
    assert hosts.loc["198.18.0.1", "time_wait_peak"] == int(truth["kernel_observations"]["client_time_wait_after"][-1])


def test_burst_series_brackets_every_ss_sample_taken_during_it() -> None:
    """`ss` walks the TIME_WAIT table while sockets keep arriving (~800 a second): each count is
    taken at some instant between the wall-clock readings before and after it, and the count
    only rises during the burst, so it must lie between the computed series at those two
    instants (widened by CLOCK_SLACK_S). That bracket is the tolerance: 8-18 sockets here."""
    result, truth = sample("tw_server_burst")
    ts, count = result.host_views.series("198.18.0.2")

    def at(t: float) -> int:
        i = int(np.searchsorted(ts, t, side="right")) - 1
        return int(count[i]) if i >= 0 else 0

    samples = truth["ss_time_wait_samples"]
    assert len(samples) >= 20 and any(0 < n < 2000 for _, _, n in samples)
    for before, after, counted in samples:
        assert at(before - CLOCK_SLACK_S) <= counted <= at(after + CLOCK_SLACK_S), (before, after, counted)


def test_burst_finding_names_the_server_that_closes_first() -> None:
    result, _ = sample("tw_server_burst")
    found = kinds(result)
    (f,) = found["server-close"]
    assert f.subject == "198.18.0.2:8080" and f.severity == Severity.warning
    assert f.message.startswith("198.18.0.2:8080 closed 100 % of 2,000 connections first; it held 2,000 TIME_WAIT "
                                "sockets at ")
    assert "let clients close first" in f.advice
    assert found["time-wait-pile-up"][0].subject == "198.18.0.2"
    server = result.servers.iloc[0]
    assert server["server_closed_first_share"] == 1.0 and server["server_time_wait_peak"] == 2000
    # the client's ports are free again after each close: no pressure, whatever its rate
    assert "port-pressure" not in found and "port-exhaustion" not in found
    assert result.destinations.iloc[0]["client_time_wait_share"] == 0.0


def test_narrow_port_range_is_exhausted_and_reused() -> None:
    """50 ephemeral ports (the sysctl recorded in the truth file), client closes first, 400
    connections: all 50 held at once, 4-tuples taken over in TIME_WAIT (nstat TWRecycled)."""
    _, truth = sample("tw_narrow_port_range")
    sysctl = next(line for line in truth["kernel_observations"]["sysctl"] if "ip_local_port_range =" in line)
    port_range = sysctl.split("=")[1].strip()
    result, _ = sample("tw_narrow_port_range", port_range=port_range)
    d = result.destinations.iloc[0]
    assert d["port_range_size"] == 50 and d["client_ports_seen"] == 50 and d["connections"] == 400
    assert d["ports_in_use_peak"] == 50 and d["port_utilisation_peak"] == 1.0 and d["seconds_to_exhaustion"] == 0
    assert d["sustainable_rate"] == pytest.approx(50 / 60)
    recycled = next(line for line in truth["kernel_observations"]["client_nstat"] if line.startswith("TcpExtTWRecycled"))
    assert d["time_wait_reuses"] == int(recycled.split()[1]) == 350
    # the client's TIME_WAITs never exceed its ports: a reuse ends the old TIME_WAIT
    assert result.hosts.set_index("host").loc["198.18.0.1", "time_wait_peak"] == 50
    (f,) = kinds(result)["port-exhaustion"]
    assert f.severity == Severity.critical and f.subject == "198.18.0.1 -> 198.18.0.2:8080"
    assert "held 50 of 50 ephemeral ports (100 %)" in f.message and "ip_local_port_range" in f.advice


def test_narrow_port_range_under_the_default_range_is_pressure_not_exhaustion() -> None:
    result, _ = sample("tw_narrow_port_range")
    found = kinds(result)
    assert "port-exhaustion" not in found
    d = result.destinations.iloc[0]
    assert d["port_range_size"] == 28232 and d["ports_in_use_peak"] == 50


def test_keep_alive_shows_no_pressure() -> None:
    result, truth = sample("tw_keepalive")
    want = truth["host_views"]
    assert len(result) == want["connections"]
    hosts = result.hosts.set_index("host")
    assert hosts.loc["198.18.0.1", "time_wait_peak"] == want["client_time_wait_peak"]
    assert hosts.loc["198.18.0.2", "time_wait_peak"] == want["server_time_wait_peak"]
    assert not set(kinds(result)) & set(want["no_finding_kinds"])
    assert all(f.severity == Severity.info for f in result.host_views.findings)


def test_mixed_servers_each_judged_apart() -> None:
    result, truth = sample("tw_mixed_servers")
    servers = result.servers
    servers = servers.set_index(servers["server_ip"].astype(str) + ":" + servers["server_port"].astype(str))
    for name, want in truth["host_views"]["servers"].items():
        row = servers.loc[name]
        assert row["connections"] == want["connections"], name
        share = {"client": "client_closed_first_share", "server": "server_closed_first_share",
                 "abort": "aborted_share"}[want["closer"]]
        assert row[share] == 1.0, name
    found = kinds(result)
    close = [f.subject for f in found["server-close"]]
    assert close[0] == truth["host_views"]["top_server_close"] and "198.18.0.2:8080" not in close
    habits = [f.subject for f in found["abort"] if f.severity == Severity.warning]
    assert habits == [truth["host_views"]["abort_habit"]]
    assert result.findings["kind"].iloc[0] == FindingKind.server_close.value


def test_mixed_servers_causes_from_the_payload() -> None:
    result, truth = sample("tw_mixed_servers")
    servers = result.servers
    servers = servers.set_index(servers["server_ip"].astype(str) + ":" + servers["server_port"].astype(str))
    for name, want in truth["host_views"]["servers"].items():
        if want["cause"] is not None:
            assert servers.loc[name, "cause"] == want["cause"], name


def first_payloads(path: Path) -> dict[tuple[str, int, str, int], list[bytes | None]]:
    """(client ip, port, server ip, port) -> first payload of each direction, read with the
    standard library from a gzipped Ethernet/IPv4 pcap (a reader independent of teardown's)."""
    data = gzip.decompress(path.read_bytes())
    assert struct.unpack("<I", data[:4])[0] == 0xA1B2C3D4 and struct.unpack("<I", data[20:24])[0] == 1
    heads: dict[tuple[str, int, str, int], list[bytes | None]] = {}
    at = 24
    while at < len(data):
        caplen = struct.unpack("<I", data[at + 8: at + 12])[0]
        frame, at = data[at + 16: at + 16 + caplen], at + 16 + caplen
        ip = frame[14:]
        ihl, total = (ip[0] & 15) * 4, struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:]
        sport, dport = struct.unpack("!HH", tcp[:4])
        payload = tcp[(tcp[12] >> 4) * 4: total - ihl]
        if not payload:
            continue
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        to_server = dport in (8080, 9000)
        key = (src, sport, dst, dport) if to_server else (dst, dport, src, sport)
        pair = heads.setdefault(key, [None, None])
        if pair[0 if to_server else 1] is None:
            pair[0 if to_server else 1] = payload
    return heads


def test_mixed_servers_payload_heads_name_each_cause() -> None:
    """Independent of the flow engine: the first payload of each direction in the 128-byte
    snaplen capture holds the whole HTTP head, and `close_cause_codes` names the cause each
    server's construction guarantees."""
    _, truth = sample("tw_mixed_servers")
    heads = first_payloads(CAPTURES / truth["capture"])
    keys = list(heads)
    causes = [CAUSES[c] for c in close_cause_codes(np.array([heads[k][0] for k in keys], object),
                                                   np.array([heads[k][1] for k in keys], object))]
    found = Counter((f"{k[2]}:{k[3]}", cause) for k, cause in zip(keys, causes))
    for name, want in truth["host_views"]["servers"].items():
        if want["cause"] is not None:
            assert found[(name, want["cause"])] == want["connections"], (name, found)
