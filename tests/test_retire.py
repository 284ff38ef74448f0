"""Failed connection attempts (a scan's or a flood's SYNs, refused connects) wait out their hold
in the flow table frozen, once their SYN's next retry is past due (docs/rules.md "Vocabulary",
how long an incarnation stays in the flow table). Frozen or not, every verdict is the same: a late
retry is counted in its incarnation, a new ISN opens the next one, and a lone SYN is judged on
all the traffic of its hold. Each test crafts a capture with scapy; other probes run beside the
tuple under test, so that the table freezes between its segments."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import teardown
from teardown.decode import decode
from teardown.engine import Engine
from teardown.options import Options
from teardown.read import open_capture

from .crafted import C_ISN, CLIENT, S_ISN, back, seg

pytest.importorskip("scapy")

SCANNER = "10.0.0.9"  # sends the probes beside the tuple under test, never the client


def probes(until: float, every: float = 0.25) -> list[Any]:
    """A scanner's lone SYNs, one new 4-tuple every `every` s: segments that move the table's clock."""
    return [seg(i * every, "S", 7000 + i, src=(SCANNER, 20000 + i), dst=("10.0.1.1", 80))
            for i in range(int(until / every) + 1)]


def capture(tmp_path: Path, packets: list[Any]) -> str:
    """The packets in time order, each padded to 1,400 bytes so that a 4 kB chunk holds two or
    three: the table hands records out (retire) between most segments, as in a busy capture."""
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    padded = []
    for p in sorted(packets, key=lambda p: float(p.time)):
        q = Ether(bytes(p) + bytes(1400 - len(p)))
        q.time = p.time
        padded.append(q)
    path = tmp_path / "crafted.pcap"
    wrpcap(str(path), padded)
    return str(path)


def client_rows(tmp_path: Path, packets: list[Any]) -> pd.DataFrame:
    """The rows of the client's 4-tuple (not the probes'), read in small chunks."""
    flows = teardown.analyze(capture(tmp_path, packets), chunk_bytes=4096).flows
    return flows[flows["client_port"] == CLIENT[1]].reset_index(drop=True)


def most_frozen(path: str) -> int:
    """The most tuples the flow table held frozen at once, fed the capture in small chunks."""
    engine = Engine(Options())
    most = 0
    for batch in open_capture(path, 4096):
        for _ in engine.feed(decode(batch, Counter(), engine.contexts), batch.data, now=float(batch.ts[-1])):
            pass
        most = max(most, engine.table.stats()["frozen_tuples"])
    return most


@pytest.mark.parametrize("retries", [(3.0, 7.0), (4.0, 13.0), (1.0, 3.0, 7.0, 15.0, 31.0, 63.0)],
                         ids=["3s-7s", "unseen-retries-between", "linux-schedule"])
def test_retried_syn_stays_one_incarnation_with_its_retries_counted(tmp_path: Path,
                                                                     retries: tuple[float, ...]) -> None:
    """Retries with the first SYN's ISN, on time or after some went by the capture unseen (the
    table froze the attempt in between): one incarnation, every copy counted."""
    syns = [seg(t, "S", C_ISN) for t in (0.0, *retries)]
    rows = client_rows(tmp_path, syns + probes(retries[-1] + 5))
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row["packets_c2s"], row["close_kind"]) == (len(syns), "unanswered")


def test_the_table_freezes_between_the_retries(tmp_path: Path) -> None:
    """The retries above do meet a frozen tuple: otherwise they would test nothing."""
    path = capture(tmp_path, [seg(0.0, "S", C_ISN), seg(13.0, "S", C_ISN)] + probes(20))
    assert most_frozen(path) > 0


def test_refused_connect_retried_after_its_rst_was_lost_is_one_incarnation(tmp_path: Path) -> None:
    """The server's RST/ACK did not reach the client (lost past the capture point): the client
    retries its SYN with the same ISN 5 s later and is refused again."""
    packets = [seg(0.0, "S", C_ISN), back(0.001, "RA", 0, C_ISN + 1),
               seg(5.0, "S", C_ISN), back(5.001, "RA", 0, C_ISN + 1)]
    rows = client_rows(tmp_path, packets + probes(10))
    assert len(rows) == 1
    assert (rows.iloc[0]["close_kind"], rows.iloc[0]["packets_c2s"], rows.iloc[0]["packets_s2c"]) == ("refused", 2, 2)


def test_new_isn_after_a_frozen_attempt_is_the_next_incarnation(tmp_path: Path) -> None:
    """The client gave up and connected again from the same port, answered this time."""
    isn = C_ISN + 5000
    packets = [seg(0.0, "S", C_ISN), seg(10.0, "S", isn), back(10.001, "SA", S_ISN, isn + 1),
               seg(10.002, "A", isn + 1, S_ISN + 1)]
    rows = client_rows(tmp_path, packets + probes(12))
    assert list(rows["incarnation"]) == [0, 1]
    assert list(rows["close_kind"]) == ["unanswered", "open"]
    assert list(rows["handshake"]) == ["syn_only", "complete"]


def test_lone_syn_is_judged_on_the_traffic_of_its_whole_hold(tmp_path: Path) -> None:
    """A SYN sent once, frozen after 3 s; a minute later the capture shows the client answered on
    another connection: the direction toward it is captured, so no answer came (`unanswered`),
    as when the attempt is held unfrozen. Handed out when frozen, it would say `unknown`."""
    other = ("10.0.0.3", 443)
    packets = [seg(0.0, "S", C_ISN), seg(60.0, "S", 9000, src=(CLIENT[0], 40001), dst=other),
               seg(60.001, "SA", 3000, 9001, src=other, dst=(CLIENT[0], 40001))]
    rows = client_rows(tmp_path, packets + probes(61, every=1.0))
    assert len(rows) == 1
    assert (rows.iloc[0]["close_kind"], rows.iloc[0]["one_sided"]) == ("unanswered", False)


def test_a_flood_gives_every_probe_its_row_frozen_or_not(tmp_path: Path) -> None:
    """Many probes, most of them frozen by the time the capture ends, some refused: one row per
    4-tuple, the refused ones with the target's answer."""
    packets = probes(30, every=0.05)
    refused = packets[::7]
    packets += [seg(float(p.time) + 0.001, "RA", 0, p["TCP"].seq + 1, src=("10.0.1.1", 80), dst=(SCANNER, p["TCP"].sport))
                for p in refused]
    flows = teardown.analyze(capture(tmp_path, packets), chunk_bytes=4096).flows
    assert len(flows) == len(packets) - len(refused)
    assert (flows["close_kind"] == "refused").sum() == len(refused)
    assert set(flows["close_kind"]) == {"refused", "unanswered"}  # the target is seen answering the scanner
    assert most_frozen(capture(tmp_path, packets)) > len(flows) // 2
