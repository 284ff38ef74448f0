"""Every flow's `display_filter`, given to Wireshark, selects exactly that flow's frames, and the
filter of its evidence frames exactly those: on every sample of captures/, and on a sample cut
into the files of a rotation (frame numbers run on in teardown, each file numbers from 1 in
Wireshark).

A flow's own frames are read apart from the filter text: matching.match reads the capture again
and puts each packet in the flow of its 4-tuple, carrier and time span, as the ladders do. The
filters are run by tshark once per file, with a Lua listener per filter printing the frames it
selects: one tshark per flow would take minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from teardown.analysis import Analysis, analyze
from teardown.filters import evidence_filter
from teardown.flows import NONE
from teardown.matching import match
from teardown.verdicts import NOTES, RUNS_ON_NOTE

from .chromium import Viewer, browser, viewer  # noqa: F401  (fixtures)
from .conftest import ROOT
from .report_samples import write_report

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")

SAMPLES = sorted(p for p in (ROOT / "captures").rglob("*") if p.name.endswith((".pcap", ".pcapng", ".pcap.gz")))

# One listener per line of the file TEARDOWN_FILTERS names; each prints "line frame" for every
# frame its filter selects. A filter Wireshark cannot compile stops tshark with its message.
LISTENERS = """
local i = 0
for line in io.lines(os.getenv("TEARDOWN_FILTERS")) do
  i = i + 1
  local index = i
  local listener = Listener.new(nil, line)
  function listener.packet(pinfo, tvb) print(index .. " " .. pinfo.number) end
end
"""

RANGE = re.compile(r"frame\.number in \{(\d+)\.\.(\d+)\}")
Frames = dict[int, set[int]]  # row -> frame numbers of one file, as Wireshark numbers them


def selected(path: Path, filters: list[str], tmp: Path) -> Frames:
    """The frames of `path` each filter selects, by its position in `filters`."""
    script, lines = tmp / "listeners.lua", tmp / "filters.txt"
    script.write_text(LISTENERS)
    lines.write_text("".join(f"{f}\n" for f in filters))
    run = subprocess.run([str(TSHARK), "-r", str(path), "-q", "-X", f"lua_script:{script}"], capture_output=True,
                         text=True, env={**os.environ, "TEARDOWN_FILTERS": str(lines)}, timeout=600)
    assert run.returncode == 0 and "rror" not in run.stderr, run.stderr
    out: Frames = defaultdict(set)
    for line in run.stdout.splitlines():
        index, frame = line.split()
        out[int(index) - 1].add(int(frame))
    return out


def own_frames(analysis: Analysis) -> dict[tuple[int, int], set[int]]:
    """(row, file) -> the row's frames in that file (its position in the run), as Wireshark
    numbers them: read by matching.match, which numbers frames on across the files it reads."""
    files = analysis.capture.files
    starts = np.cumsum([0] + [f.frames for f in files])
    m = match(files, analysis.columns, analysis.options)
    file = np.searchsorted(starts, m.frame, side="left") - 1
    out: dict[tuple[int, int], set[int]] = defaultdict(set)
    for row, f, frame in zip(m.flow.tolist(), file.tolist(), (m.frame - starts[file]).tolist()):
        out[(row, f)].add(frame)
    return out


def check_filters(analysis: Analysis, tmp: Path) -> int:
    """Run every row's display filter and evidence filter on its file; the rows checked."""
    files = analysis.capture.files
    c = analysis.columns
    by_name = {os.path.basename(f.path): i for i, f in enumerate(files)}
    assert len(by_name) == len(files), "file names must tell the files apart"
    truth = own_frames(analysis)
    rows_of = defaultdict(list)
    for row, name in enumerate(c["capture_file"].tolist()):
        rows_of[by_name[name]].append(row)
    for f, rows in rows_of.items():
        before, frames = files[f].frames_before, files[f].frames
        evidence = [evidence_filter(c["evidence_frames"][r], before, before + frames)[0] for r in rows]
        # A flow without evidence frames has an empty filter, which selects every frame: left out.
        checked = [(r, e) for r, e in zip(rows, evidence) if e]
        got = selected(Path(files[f].path), [c["display_filter"][r] for r in rows] + [e for _, e in checked], tmp)
        for i, r in enumerate(rows):
            assert got[i] == truth[(r, f)], (c["flow_id"][r], c["display_filter"][r])
            first, last = map(int, RANGE.search(c["display_filter"][r]).groups())  # type: ignore[union-attr]
            assert 1 <= first <= last <= frames, ("a range past the file's frames", c["display_filter"][r])
            later = any(truth.get((r, g)) for g in range(f + 1, len(files)))
            assert (NOTES[RUNS_ON_NOTE] in c["notes"][r]) == later, c["flow_id"][r]
        for i, (r, text) in enumerate(checked, len(rows)):
            global_numbers = c["evidence"][r][c["evidence"][r] != NONE]
            want = {int(n) - before for n in global_numbers if before < n <= before + frames}
            assert got[i] == want, (c["flow_id"][r], text)
            assert want <= truth[(r, f)], (c["flow_id"][r], "evidence frames outside the flow")
    return len(c["flow_id"])


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: str(p.relative_to(ROOT / "captures")))
def test_each_flow_filter_selects_its_frames(sample: Path, tmp_path: Path) -> None:
    analysis = analyze(str(sample))
    assert check_filters(analysis, tmp_path) == len(analysis)


# Cut where flows run on into the next file; the second reuses its 4-tuples within each file, so a
# range too wide takes another incarnation's frames.
ROTATIONS = [("tw_server_burst.pcap.gz", 2997), ("tw_narrow_port_range.pcap.gz", 997)]


@pytest.mark.parametrize(("sample", "frames"), ROTATIONS, ids=[s for s, _ in ROTATIONS])
def test_filters_of_a_rotation_number_each_file_from_one(sample: str, frames: int, tmp_path: Path) -> None:
    """A sample cut into pieces of `frames` frames (as tcpdump -C rotates) and read as one
    capture: every flow's filter selects its frames in its first file, by that file's numbers,
    and a flow running on into the next file says so."""
    whole = tmp_path / "whole.pcap"
    subprocess.run(["editcap", "-F", "pcap", str(ROOT / "captures" / sample), str(whole)], check=True,
                   capture_output=True)
    subprocess.run(["editcap", "-c", str(frames), str(whole), str(tmp_path / "piece.pcap")], check=True,
                   capture_output=True)
    pieces = sorted(str(p) for p in tmp_path.glob("piece*.pcap"))
    assert len(pieces) > 2
    analysis = analyze(pieces)
    assert analysis.capture.continuous
    runs_on = np.asarray(analysis.columns["note_bits"]) >> RUNS_ON_NOTE & 1
    assert runs_on.sum() > 0, "no flow runs on into the next file: the cut tests nothing"
    assert check_filters(analysis, tmp_path) == len(analysis)


def test_evidence_filter_names_only_frames_of_its_file() -> None:
    """Evidence frames numbered across a rotation, as a filter on one file: numbered from 1 in
    it, sorted and each once; those past its end counted, not named."""
    text = "syn 1003, fin client 1010, fin server 1009, final ack client 1011, final ack server 1010, gap after 1012"
    assert evidence_filter(text, 1000, 1011) == ("frame.number in {3,9,10,11}", 1)
    assert evidence_filter("", 0, 10) == ("", 0)
    assert evidence_filter("syn 12", 0, 10) == ("", 1)


def carriers_capture(path: Path) -> None:
    """Seven connections on one 4-tuple at once, each at a point of its own, segment after
    segment in turn: untagged on two interfaces, in VLAN 100, in VLANs 100 and 200 (QinQ), in
    VXLAN VNI 5 between two pairs of tunnel endpoints, and in IP-in-IP. Each has its own ISNs, so
    none is a copy of another: seven rows, whose frame ranges all overlap, so that only what
    tells the carriers apart keeps each filter to its own frames."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Dot1Q, Ether
    from scapy.layers.vxlan import VXLAN
    from scapy.utils import PcapNgWriter

    def eth(inner: Any) -> Any:
        return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / inner

    def vxlan(a: str, b: str) -> Callable[[Any], Any]:
        return lambda p: eth(IP(src=a, dst=b) / UDP(sport=40000, dport=4789) / VXLAN(vni=5) / eth(p))

    points: list[tuple[str, Callable[[Any], Any]]] = [
        ("eth0", eth), ("eth1", eth), ("eth0", lambda p: eth(Dot1Q(vlan=100) / p)),
        ("eth0", lambda p: eth(Dot1Q(vlan=100) / Dot1Q(vlan=200) / p)),
        ("eth0", vxlan("10.9.0.1", "10.9.0.2")), ("eth0", vxlan("10.9.0.3", "10.9.0.4")),
        ("eth0", lambda p: eth(IP(src="10.9.0.1", dst="10.9.0.2") / p))]
    client, server = ("10.0.0.1", 40000), ("10.0.0.2", 8080)
    # (from the client?, flags, seq, ack) relative to the ISNs
    exchange = [(True, "S", 0, 0), (False, "SA", 0, 1), (True, "A", 1, 1), (True, "FA", 1, 1),
                (False, "A", 1, 2), (False, "FA", 1, 2), (True, "A", 2, 2)]
    frames = []
    for step, (forward, flags, seq, ack) in enumerate(exchange):
        for k, (iface, carry) in enumerate(points):
            c_isn, s_isn = 1000 * (k + 1), 500000 * (k + 1)
            (src, dst), (mine, theirs) = ((client, server), (c_isn, s_isn)) if forward else \
                ((server, client), (s_isn, c_isn))
            segment = IP(src=src[0], dst=dst[0]) / TCP(sport=src[1], dport=dst[1], flags=flags, seq=mine + seq,
                                                       ack=theirs + ack if "A" in flags else 0)
            frame = carry(segment)
            frame.time = 1_700_000_000 + step * 0.01 + k * 1e-4
            frame.sniffed_on = iface
            frames.append(frame)
    with PcapNgWriter(str(path)) as writer:
        for frame in frames:
            writer.write(frame)


def test_filters_tell_carriers_apart_frame_by_frame(tmp_path: Path) -> None:
    pytest.importorskip("scapy")
    path = tmp_path / "carriers.pcapng"
    carriers_capture(path)
    analysis = analyze(str(path))
    assert len(analysis) == 7 and not analysis.capture.copies
    assert check_filters(analysis, tmp_path) == 7


# ---- the report ------------------------------------------------------------------------------

def test_the_report_shows_each_flow_s_filters_with_copy_buttons(viewer: Viewer, tmp_path: Path) -> None:
    """The page spells every display filter as the table holds it (or is sent them), and the
    evidence filter as the report's Python writes it; the chosen flow shows both, each with a
    button that copies it, and each featured ladder its flow's."""
    pytest.importorskip("playwright")
    from teardown.report import from_analysis
    from teardown.report.listing import filters_of

    for name, path in (("server_first_close", ROOT / "captures" / "server_first_close.pcap"),
                       ("vxlan", ROOT / "captures" / "encapsulated" / "vxlan.pcap")):
        data = from_analysis(analyze(str(path)))
        numbering = data.facts.frame_numbering()
        want = [filters_of(data.columns, numbering, r) for r in range(data.flows.num_rows)]
        page = viewer.open(write_report(data, tmp_path / f"{name}.html")).page
        assert page.evaluate("teardownReport.VALUES.display_filter") == data.flows.column("display_filter").to_pylist()
        assert page.evaluate("[...Array(teardownReport.N).keys()].map(r => teardownReport.evidenceFilter(r).text)") == \
            [f.evidence for f in want]
        page.click("#flow-body tr[data-row='0'] button.flow-link")
        shown = page.eval_on_selector_all("#flow-detail-filters code.filter", "els => els.map(e => e.textContent)")
        assert shown == [want[0].display, want[0].evidence]
        viewer.context.grant_permissions(["clipboard-read", "clipboard-write"])
        for i, text in enumerate(shown):
            page.locator("#flow-detail-filters button.copy").nth(i).click()
            page.wait_for_function("document.querySelectorAll('#flow-detail-filters button.copy')[%d].textContent"
                                   " === 'Copied'" % i)
            assert page.evaluate("navigator.clipboard.readText()") == text
        ids = data.flows.column("flow_id").to_pylist()
        for section in page.locator("#featured-ladders section.ladder-group").all():
            r = ids.index((section.locator(".ladder-title").text_content() or "").split(" · ")[0])
            assert section.locator("code.filter").all_text_contents() == [want[r].display, want[r].evidence]
            assert section.locator("button.copy").count() == 2
        assert viewer.errors == [] and viewer.requests == []


def test_the_report_without_javascript_shows_the_filters_as_text(browser: Any, tmp_path: Path) -> None:
    """Without the script: each featured ladder's flow and each listed flow has its filters
    written out, and no button."""
    from teardown.report import from_analysis
    from teardown.report.listing import filters_of

    data = from_analysis(analyze(str(ROOT / "captures" / "server_first_close.pcap")))
    want = filters_of(data.columns, data.facts.frame_numbering(), 0)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(write_report(data, tmp_path / "static.html").resolve().as_uri())
        ladder = page.locator("#featured-ladders section.ladder-group").first
        assert ladder.locator("code.filter").all_text_contents() == [want.display, want.evidence]
        page.locator("#flow-listing details.l-filters summary").first.click()
        listed = page.locator("#flow-listing details.l-filters").first
        assert listed.locator("code.filter").all_text_contents() == [want.display, want.evidence]
        assert page.locator("button.copy").count() == 0
    finally:
        context.close()
