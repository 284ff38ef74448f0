"""copies.py on hand-made rows: which rows are one connection seen at several points, and what
the row kept says about the others (the samples check it end to end: two_interfaces,
encapsulated/vlan_mirrored and vlan_overlap)."""

from __future__ import annotations

from typing import Any

import numpy as np

from teardown.carriers import Carrier, Point, Tunnel
from teardown.copies import set_aside
from teardown.flows import NONE

POINTS = {0: Point(Carrier(), ""), 100: Point(Carrier(vlans=(100,)), "eth/vlan:100"),
          200: Point(Carrier(vlans=(200,)), "eth/vlan:200"),
          4096: Point(Carrier(tunnels=(Tunnel("GRE", ("10.9.0.1", "10.9.0.2"), 7),)), "eth/ipv4/gre:7")}


def rows(*spec: tuple[Any, ...]) -> dict[str, Any]:
    """One row per (ctx, client, server, first_ts, last_ts, client seq, server seq, packets[, capture])."""
    out: dict[str, list[Any]] = {k: [] for k in ("ctx", "client_ip", "client_port", "server_ip", "server_port",
                                                "first_ts", "last_ts", "first_seq", "packets_c2s", "packets_s2c",
                                                "capture")}
    for ctx, client, server, first, last, cseq, sseq, packets, *capture in spec:
        out["ctx"].append(ctx)
        out["client_ip"].append(client[0]), out["client_port"].append(client[1])
        out["server_ip"].append(server[0]), out["server_port"].append(server[1])
        out["first_ts"].append(first), out["last_ts"].append(last)
        out["first_seq"].append((cseq, sseq))
        out["packets_c2s"].append(packets), out["packets_s2c"].append(packets)
        out["capture"].append(capture[0] if capture else 0)
    c = {k: np.array(v, object if k.endswith("_ip") else None) for k, v in out.items()}
    c["ctx"] = c["ctx"].astype(np.uint32)
    c["duplicates_seen"] = np.zeros(len(spec), np.int64)
    c["also_seen_on"] = np.full(len(spec), "", object)
    return c


C, S = ("10.0.0.1", 40000), ("10.0.0.2", 80)


def test_one_connection_at_two_points_is_one_row() -> None:
    c = rows((100, C, S, 1.0, 2.0, 1000, 5000, 6), (200, C, S, 1.00005, 2.00005, 1000, 5000, 6))
    keep, report = set_aside(c, POINTS)
    assert keep.tolist() == [True, False]
    assert c["duplicates_seen"][0] == 12 and c["also_seen_on"][0] == "VLAN 200"
    assert report.connections == 1 and report.packets == {"VLAN 200": 12}


def test_two_connections_on_one_4_tuple_in_two_vlans_stay_two() -> None:
    c = rows((100, C, S, 1.0, 2.0, 1000, 5000, 6), (200, C, S, 1.1, 2.1, 777, 888, 6))
    keep, report = set_aside(c, POINTS)
    assert keep.all() and not report and c["duplicates_seen"].tolist() == [0, 0]


def test_three_points_and_roles_inferred_the_other_way_round() -> None:
    """The third point saw no handshake and took the server for the client."""
    c = rows((0, C, S, 1.0, 2.0, 1000, 5000, 5), (100, C, S, 1.0001, 2.0, 1000, 5000, 5),
             (4096, S, C, 1.0002, 2.0, 5000, NONE, 4))
    keep, report = set_aside(c, POINTS)
    assert keep.tolist() == [True, False, False] and c["duplicates_seen"][0] == 18
    assert c["also_seen_on"][0] == "GRE key 7 10.9.0.1 <-> 10.9.0.2; VLAN 100"


def test_each_incarnation_keeps_its_own_copies() -> None:
    c = rows((100, C, S, 1.0, 2.0, 1000, 5000, 5), (200, C, S, 1.0001, 2.0001, 1000, 5000, 5),
             (100, C, S, 3.0, 4.0, 9000, 7000, 5), (200, C, S, 3.0001, 4.0001, 9000, 7000, 5))
    keep, _ = set_aside(c, POINTS)
    assert keep.tolist() == [True, False, True, False]
    assert c["also_seen_on"].tolist() == ["VLAN 200", "", "VLAN 200", ""]


def test_not_copies_in_another_capture_or_at_another_time() -> None:
    c = rows((100, C, S, 1.0, 2.0, 1000, 5000, 5), (200, C, S, 1.0, 2.0, 1000, 5000, 5, 1),
             (200, C, S, 50.0, 51.0, 1000, 5000, 5))
    keep, report = set_aside(c, POINTS)
    assert keep.all() and not report


def test_one_point_only_costs_nothing() -> None:
    c = rows((100, C, S, 1.0, 2.0, 1000, 5000, 5), (100, C, S, 1.0, 2.0, 1000, 5000, 5))
    keep, report = set_aside(c, POINTS)
    assert keep.all() and not report
