"""docs/rules.md: every `Example:` line is right about its sample.

Each example names a sample of captures/, a connection, the frames that show the rule (numbered
as tshark numbers them, from 1) with their sender and TCP flags, what the rule concludes (as
`column` value) and how the sample was made. Every part is checked here against the sample
itself, read with tshark (never with teardown), and against the sample's truth file (never
against the expected.csv files, which teardown writes). Every section of the rules that states
a verdict must have an example, or say plainly that no sample shows it yet.

The form of an example (one line):

    Example: captures/FILE, CLIENT_IP:PORT > SERVER_IP:PORT[ (Nth connection)| (VLAN N)]:
    CLAIM[, CLAIM...]; CONCLUSION (PROVENANCE).

CLAIM is `frame N SIDE FLAGS[ with N bytes]` or `frames N, N and N SIDE FLAGS[ with N bytes]`,
SIDE `client` or `server`, FLAGS the frame's SYN/FIN/RST/ACK flags joined by `+` (PSH is not
named); without "with N bytes" the frames carry no payload. PROVENANCE starts with
`kernel-made` or `crafted`. `(Nth connection)` picks the Nth flow of the 4-tuple in the truth
file (capture order), `(VLAN N)` the flow the truth puts in VLAN N.

RULES_DOC=path overrides the document checked (to check a changed copy).
"""

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = Path(os.environ.get("RULES_DOC", ROOT / "docs" / "rules.md"))
TSHARK = shutil.which("tshark")

# Every heading of the document is either a section that states a verdict (it needs an example)
# or one that does not (definitions, advice, limits). A new heading must be put in one of the two.
VERDICT_SECTIONS = {
    "Vocabulary",
    "Close verdicts",
    "Who holds it",
    "Start and length",
    "Restart",
    "Assassination",
    "Reuse of a 4-tuple during TIME_WAIT",
    "A SYN meeting an established socket",
    "RST classes",
    "TIME_WAIT occupancy",
    "Ephemeral-port pressure",
    "Server-side active close",
    "One-sided captures",
    "Capture loss",
    "Findings and their severity",
}
OTHER_SECTIONS = {
    "The rules `teardown` applies",  # the title and the introduction
    "Per-direction state",  # what is kept, not a verdict
    "TIME_WAIT",  # its verdicts are in its subsections
    "Host-level views",  # likewise
    "Mitigations",  # advice
    "Honesty about the capture point",  # its verdicts are in its subsections
    "Two capture points",  # joins captures; tests/test_points.py checks it on captures/points/
    "Display filters",  # how a flow is found in Wireshark, not a verdict
    "What the tool cannot know",
}
# Sections whose rule no sample shows yet: they say so with `Example: none in captures/ yet`.
NO_SAMPLE_YET = {"A SYN meeting an established socket"}

# Verdict columns an example may name; a named one must be in the sample's truth.
VERDICT_COLUMNS = {
    "close_kind", "active_closer", "time_wait_on", "first_fin_by", "first_rst_by", "handshake",
    "half_close", "rst_class", "reuse_verdict", "reuses_tuple_in_time_wait", "tw_assassination",
    "data_after_fin", "final_ack_lost_after_capture", "fin_retransmissions_client",
    "fin_retransmissions_server", "one_sided", "roles_inferred", "capture_loss",
    "capture_loss_bytes", "capture_loss_bytes_c2s", "capture_loss_bytes_s2c", "duplicates_seen",
    "vlan", "time_wait_restarts", "incarnation", "time_wait_peak", "server_time_wait_peak",
    "ports_in_use_peak", "cause", "kind",
}
# Names of the document (findings table) that the truth files spell otherwise.
TRUTH_ALIASES = {"kind": "finding_kind"}

EXAMPLE = re.compile(
    r"^captures/(?P<file>\S+?), "
    r"(?P<cip>[0-9.]+):(?P<cport>\d+) > (?P<sip>[0-9.]+):(?P<sport>\d+)"
    r"(?: \((?:(?P<nth>\d+)(?:st|nd|rd|th) connection|VLAN (?P<vlan>\d+))\))?: "
    r"(?P<claims>[^;]+); (?P<conclusion>.+) \((?P<provenance>(?:kernel-made|crafted)[^()]*)\)\.$"
)
CLAIM = re.compile(
    r"frames? (?P<frames>\d+(?:(?:, | and )\d+)*) (?P<side>client|server) "
    r"(?P<flags>(?:SYN|FIN|RST|ACK)(?:\+(?:SYN|FIN|RST|ACK))*)(?: with (?P<bytes>\d+) bytes)?"
)
VERDICT = re.compile(r"`([a-z_0-9]+)` `?([A-Za-z0-9_.-]+)`?")
FLAG_BITS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "ACK": 0x10}


def _sections(text):
    """[(heading, [lines])] in document order; the title's section holds the introduction."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^#{1,3} (.+)$", line)
        if m:
            out.append((m.group(1).strip(), []))
        elif out:
            out[-1][1].append(line)
    return out


def _examples(text):
    """[(heading, example text)] for every `Example:` line."""
    found = []
    for heading, lines in _sections(text):
        for line in lines:
            m = re.match(r"^\s*Example: (.+)$", line)
            if m:
                found.append((heading, m.group(1).strip()))
    return found


DOC_TEXT = DOC.read_text(encoding="utf-8")
EXAMPLES = _examples(DOC_TEXT)
REAL = [(h, e) for h, e in EXAMPLES if not e.startswith("none in captures/ yet")]


@functools.lru_cache(maxsize=None)
def _frames(path):
    """frame number -> (src ip, src port, dst ip, dst port, flag bits, payload, seq, vlan)."""
    fields = ["frame.number", "ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst",
              "tcp.dstport", "tcp.flags", "tcp.len", "tcp.seq_raw", "vlan.id"]
    cmd = [TSHARK, "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=l"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    frames = {}
    for row in out.splitlines():
        (num, src4, src6, sport, dst4, dst6, dport, flags, length, seq, vlan) = row.split("\t")
        if not sport:  # not TCP (ARP, a frame to skip)
            frames[int(num)] = None
            continue
        frames[int(num)] = (src4 or src6, int(sport), dst4 or dst6, int(dport), int(flags, 16),
                            int(length), int(seq), int(vlan) if vlan else None)
    return frames


def _truth(sample):
    name = re.sub(r"\.pcap(ng)?(\.gz)?$", ".truth.json", sample.name)
    return json.loads((sample.parent / name).read_text(encoding="utf-8"))


def _value(text):
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"\d+", text):
        return int(text)
    return text


def _frame_numbers(text):
    return [int(n) for n in re.split(r", | and ", text)]


def _check(example):
    """The list of what is wrong with one example (empty when it is right)."""
    m = EXAMPLE.match(example)
    if not m:
        return ["not in the form `Example: captures/FILE, C:P > S:P: frame N SIDE FLAGS...; "
                "CONCLUSION (kernel-made|crafted...).`"]
    errors = []
    sample = ROOT / "captures" / m["file"]
    if not sample.is_file():
        return [f"no sample {sample.relative_to(ROOT)}"]
    truth = _truth(sample)
    client = (m["cip"], int(m["cport"]))
    server = (m["sip"], int(m["sport"]))

    # the flow, in the truth
    on_tuple = [f for f in truth["flows"]
                if (f["client_ip"], f["client_port"], f["server_ip"], f["server_port"])
                == client + server]
    if m["vlan"]:
        chosen = [f for f in on_tuple if f.get("vlan") == int(m["vlan"])]
    elif m["nth"]:
        n = int(m["nth"])
        chosen = on_tuple[n - 1:n] if n >= 1 else []
    else:
        chosen = on_tuple
    if len(chosen) != 1:
        return [f"{len(chosen)} flows of the truth match {client} > {server}"
                f"{' (say which: (Nth connection) or (VLAN N))' if len(chosen) > 1 else ''}"]
    flow = chosen[0]

    # the frames, in the sample
    frames = _frames(sample)
    claims = list(CLAIM.finditer(m["claims"]))
    if ", ".join(c.group(0) for c in claims) != m["claims"]:
        errors.append(f"frames not in the form `frame N client|server FLAGS[ with N bytes]`: "
                      f"{m['claims']!r}")
    claimed = []
    for c in claims:
        want_bits = sum(FLAG_BITS[f] for f in c["flags"].split("+"))
        want_len = int(c["bytes"] or 0)
        src, dst = (client, server) if c["side"] == "client" else (server, client)
        for n in _frame_numbers(c["frames"]):
            claimed.append(n)
            seg = frames.get(n)
            if seg is None:
                errors.append(f"frame {n}: no such TCP frame in {m['file']}")
                continue
            if (seg[0], seg[1]) != src or (seg[2], seg[3]) != dst:
                errors.append(f"frame {n} is {seg[0]}:{seg[1]} > {seg[2]}:{seg[3]}, "
                              f"not the {c['side']}'s")
            if seg[4] & 0x17 != want_bits:
                have = "+".join(f for f, b in FLAG_BITS.items() if seg[4] & b) or "no flags"
                errors.append(f"frame {n} is {have}, not {c['flags']}")
            if seg[5] != want_len:
                errors.append(f"frame {n} carries {seg[5]} bytes, not {want_len}")
            if m["vlan"] and seg[7] != int(m["vlan"]):
                errors.append(f"frame {n} is in VLAN {seg[7]}, not {m['vlan']}")
    if not claimed:
        errors.append("no frame named")
    if m["nth"] and claimed and all("client_isn" in f for f in on_tuple):
        # the connection starts with the client's SYN carrying its ISN, and lasts until the next one's
        def start(f):
            return min((k for k, s in frames.items()
                        if s and (s[0], s[1]) == client and (s[2], s[3]) == server
                        and s[4] & 0x12 == 0x02 and s[6] == f["client_isn"]), default=None)
        n = int(m["nth"])
        first = start(flow)
        after = start(on_tuple[n]) if n < len(on_tuple) else None
        if first is None:
            errors.append(f"no SYN with the truth's ISN {flow['client_isn']} in the sample")
        elif not any(first <= k and (after is None or k < after) for k in claimed):
            errors.append(f"no frame named lies in the {m['nth']}th connection "
                          f"(frames {first} to {after - 1 if after else 'the end'})")

    # the verdicts, in the truth
    host = truth.get("host_views", {})
    server_view = host.get("servers", {}).get(f"{server[0]}:{server[1]}", {})
    named = 0
    for column, text in VERDICT.findall(m["conclusion"]):
        if column not in VERDICT_COLUMNS:
            continue  # a word in backquotes, not a verdict
        named += 1
        key = TRUTH_ALIASES.get(column, column)
        for where in (flow, server_view, host):
            if key in where:
                have = where[key]
                break
        else:
            errors.append(f"`{column}` is not in {sample.name}'s truth: it cannot be checked")
            continue
        want = _value(text.rstrip("."))
        if have != want and not (want == "none" and have is None):
            errors.append(f"`{column}` {text}: the truth says {have!r}")
    if not named:
        errors.append("names no verdict (`column` value) to check against the truth")

    # how the sample was made
    text = json.dumps(truth).lower().replace("nothing crafted", "")
    file_crafted = "crafted" in text or "scapy" in text
    per_flow = any("crafted" in f for f in truth["flows"])
    says_crafted = "crafted" in m["provenance"]
    if "crafted" in flow and not says_crafted:
        errors.append(f"the truth says {flow['crafted']} of this flow were crafted; "
                      "the example must say so")
    if says_crafted and not file_crafted:
        errors.append("says crafted, but the truth mentions nothing crafted")
    if not says_crafted and not per_flow and file_crafted:
        errors.append("says kernel-made, but the truth says part of the sample was crafted")
    return errors


def test_examples_are_found():
    assert len(REAL) >= 60, f"only {len(REAL)} examples in {DOC}"


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
@pytest.mark.parametrize("heading,example", REAL,
                         ids=[f"{h}:{i}" for i, (h, _) in enumerate(REAL)])
def test_example_is_right(heading, example):
    errors = _check(example)
    assert not errors, f"docs/rules.md \"{heading}\": {example}\n  " + "\n  ".join(errors)


def test_every_section_is_classified():
    headings = [h for h, _ in _sections(DOC_TEXT)]
    unknown = [h for h in headings if h not in VERDICT_SECTIONS | OTHER_SECTIONS]
    assert not unknown, f"put these sections in VERDICT_SECTIONS or OTHER_SECTIONS: {unknown}"
    gone = (VERDICT_SECTIONS | OTHER_SECTIONS) - set(headings)
    assert not gone, f"sections no longer in the document: {gone}"


def test_every_verdict_section_has_an_example():
    real = {h for h, _ in REAL}
    none_yet = {h for h, e in EXAMPLES if e.startswith("none in captures/ yet")}
    missing = VERDICT_SECTIONS - real - NO_SAMPLE_YET
    assert not missing, f"sections that state a verdict with no example: {sorted(missing)}"
    assert real & NO_SAMPLE_YET == set(), "a sample now shows it: take it out of NO_SAMPLE_YET"
    assert NO_SAMPLE_YET <= none_yet, "say `Example: none in captures/ yet; it needs ...`"


def test_missing_samples_say_what_they_need():
    for heading, example in EXAMPLES:
        if example.startswith("none in captures/ yet"):
            assert "it needs" in example, f"\"{heading}\": say what sample would show it"


def test_examples_stay_out_of_sections_without_verdicts():
    stray = {h for h, _ in EXAMPLES} - VERDICT_SECTIONS
    assert not stray, f"examples under sections that state no verdict: {stray}"
