"""Every per-flow flag is a finding (teardown/timewait/flow_findings.py), told by the host or
endpoint concerned, with the severity docs/rules.md "Findings and their severity" gives it;
every --fail-on name is a finding kind and every kind a --fail-on name. Truth comes from how the
samples were made (their truth.json), not from the findings."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import teardown
from teardown.analysis import Analysis
from teardown.cli import FAIL_ON, main
from teardown.schema import FindingKind, Severity
from teardown.timewait.flow_findings import FLOW_FLAGS

from .conftest import CAPTURES

SAMPLES = sorted(p for p in CAPTURES.rglob("*") if p.suffix in (".pcap", ".pcapng", ".gz"))


@cache
def analysis(name: str) -> Analysis:
    return teardown.analyze(str(CAPTURES / name))


def truth(stem: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CAPTURES / f"{stem}.truth.json").read_text())
    return data


def found(name: str, kind: FindingKind) -> list[Any]:
    return [f for f in analysis(name).host_views.findings if f.kind == kind]


@pytest.mark.parametrize("capture", SAMPLES, ids=lambda p: p.name.split(".")[0])
def test_every_flag_on_a_flow_is_a_finding(capture: Path) -> None:
    result = teardown.analyze(str(capture))
    kinds = {f.kind for f in result.host_views.findings}
    for kind, test in FLOW_FLAGS.items():
        if np.asarray(test(result.columns)).any():
            # A scanner's refused, reset and unanswered SYNs are told in its scan finding.
            told = kind in kinds or (kind in (FindingKind.refused, FindingKind.handshake_reset, FindingKind.unanswered)
                                     and FindingKind.scan in kinds)
            assert told, f"{kind.value} flagged on a flow but not a finding"


def test_fail_on_names_are_the_finding_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    assert FAIL_ON == [k.value for k in FindingKind]
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    help_text = "".join(capsys.readouterr().out.split())  # argparse wraps, also at hyphens
    assert all(name in help_text for name in FAIL_ON)


@pytest.mark.parametrize("name, kind", [("lost_final_ack.pcap", "fin-retransmission"), ("linger_abort.pcap", "abort"),
                                        ("unanswered.pcap", "unanswered"), ("refused.pcap", "refused"),
                                        ("simultaneous_close.pcap", "simultaneous"), ("midstream.pcap", "roles-inferred"),
                                        ("tw_assassination.pcap", "assassination"), ("half_close.pcap", "half-close"),
                                        ("reuse_in_time_wait_rejected.pcap", "reuse-rejected")])
def test_fail_on_each_kind_the_sample_was_made_to_show(name: str, kind: str) -> None:
    assert main(["analyze", str(CAPTURES / name), "--quiet", "--fail-on", kind]) == 1
    assert main(["analyze", str(CAPTURES / "client_first_close.pcap"), "--quiet", "--fail-on", kind]) == 0


def test_a_lost_final_ack_is_told_by_the_side_that_sent_its_fin_again() -> None:
    (f,) = found("lost_final_ack.pcap", FindingKind.fin_retransmission)
    assert f.subject == "198.18.0.2:8080" and f.severity == Severity.info
    assert "(server) sent its FIN again" in f.message and "restarted 1 time" in f.message
    # The drop rule sat before the capture point (truth: final_ack_lost_after_capture false).
    assert ("in 1 the capture shows no final ACK of the client's before the FIN came again: the final ACK was "
            "lost before the capture point") in f.message
    (after,) = found("lost_final_ack_after_capture.pcap", FindingKind.fin_retransmission)
    assert "in 1 the capture shows the client's final ACK before the FIN came again" in after.message


@pytest.mark.parametrize("stem", ["linger_abort", "linger_abort_server"])
def test_an_abort_is_told_by_who_sent_the_rst(stem: str) -> None:
    (flow,) = truth(stem)["flows"]
    sender = flow["first_rst_by"]
    want = flow["client_ip"] if sender == "client" else f"{flow['server_ip']}:{flow['server_port']}"
    (f,) = found(f"{stem}.pcap", FindingKind.abort)
    assert f.subject == want and f.severity == Severity.info  # one abort is not a habit
    assert "with no FIN before it" in f.message and "RST classes: exact 1" in f.message


def test_an_abort_habit_is_a_warning() -> None:
    want = truth("tw_mixed_servers")["host_views"]["abort_habit"]
    warnings = [f.subject for f in found("tw_mixed_servers.pcap.gz", FindingKind.abort) if f.severity == Severity.warning]
    assert warnings == [want]


def test_a_syn_scan_is_one_finding_with_its_counts() -> None:
    scan = truth("syn_scan")["scan"]
    (f,) = found("syn_scan.pcap", FindingKind.scan)
    assert f.subject == scan["source"] and f.severity == Severity.warning
    assert f"to {scan['probes']} ports ({scan['ports'].replace('-', '–')}) of {scan['target']}" in f.message
    assert (f"{scan['unanswered']} unanswered, {scan['refused']} refused, {scan['answered']} answered"
            in f.message)
    assert f"up to {scan['new_connections_in_one_second_max']} a second" in f.message
    # Its probes are not told again port by port.
    assert not found("syn_scan.pcap", FindingKind.unanswered) and not found("syn_scan.pcap", FindingKind.refused)


def test_findings_rank_most_severe_first() -> None:
    order = {Severity.critical: 0, Severity.warning: 1, Severity.info: 2}
    for name in ("syn_scan.pcap", "tw_mixed_servers.pcap.gz", "tw_narrow_port_range.pcap.gz"):
        ranks = [order[f.severity] for f in analysis(name).host_views.findings]
        assert ranks == sorted(ranks), name


def test_a_clean_close_has_no_finding() -> None:
    assert analysis("ipv6_client_first.pcap").host_views.findings == []


def test_repeated_attempts_from_one_port_are_told_as_retries() -> None:
    flows = truth("repeated_syn")["flows"]
    failed = [f for f in flows if f["close_kind"] == "unanswered"]
    (f,) = found("repeated_syn.pcap", FindingKind.unanswered)
    assert f"{len(failed)} connection attempts to 198.18.0.2:8080 from 1 client got no answer" in f.message
    # Every attempt after the first reused the client port with a new ISN (construction: one port).
    assert f"{len(failed) - 1} from a client port already tried, with a new ISN" in f.message


def test_a_one_sided_capture_is_a_warning_saying_how_many() -> None:
    sided = [f for f in truth("one_sided")["flows"] if f.get("one_sided")]
    (f,) = found("one_sided.pcap", FindingKind.one_sided)
    assert f.severity == Severity.warning  # every connection of it: more than half
    assert f"one direction only of all {len(sided)} connections" in f.message
