"""The engine carries per-connection state from chunk to chunk: any chunk size, and a capture
split into rotated files, must give the verdicts of one pass over one file."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import teardown
from teardown.verdicts import NOTES, RUNS_ON_NOTE

from .conftest import CAPTURES

SAMPLES = sorted(p for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))


def file_free(flows: pd.DataFrame) -> pd.DataFrame:
    """The table but for what says which file holds a flow: its name, its display filter (the
    frames as that file numbers them) and the note that it runs on into the next file."""
    runs_on = "(; )?" + re.escape(NOTES[RUNS_ON_NOTE])  # the last note: after any other
    return flows.drop(columns=["capture_file", "display_filter"]).assign(
        notes=flows["notes"].str.replace(runs_on, "", regex=True))


@pytest.mark.parametrize("capture", SAMPLES, ids=lambda p: p.stem)
def test_small_chunks_give_the_same_flows(capture: Path) -> None:
    whole = teardown.analyze(str(capture)).flows
    chunked = teardown.analyze(str(capture), chunk_bytes=4096).flows
    assert whole.equals(chunked)


def _split_pcap(path: Path, at_record: int, out_dir: Path) -> list[str]:
    data = path.read_bytes()
    header, off, records = data[:24], 24, []
    while off + 16 <= len(data):
        length = int.from_bytes(data[off + 8: off + 12], "little")
        records.append(data[off: off + 16 + length])
        off += 16 + length
    parts = [records[:at_record], records[at_record:]]
    paths = []
    for i, part in enumerate(parts):
        p = out_dir / f"piece{i}.pcap"
        p.write_bytes(header + b"".join(part))
        paths.append(str(p))
    return paths


@pytest.mark.parametrize("capture", [p for p in SAMPLES if p.suffix == ".pcap"], ids=lambda p: p.stem)
def test_rotated_pieces_give_the_same_flows_at_every_split(capture: Path, tmp_path: Path) -> None:
    whole = file_free(teardown.analyze(str(capture)).flows)
    n = teardown.analyze(str(capture)).capture.frames
    for at in range(1, n):
        pieces = _split_pcap(capture, at, tmp_path)
        joined = file_free(teardown.analyze(pieces).flows)
        assert whole.equals(joined), f"split after record {at} changed the verdicts"


@pytest.mark.parametrize("capture", SAMPLES, ids=lambda p: p.stem)
def test_handing_out_early_gives_the_same_flows(capture: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Incarnations of tuples still in use are handed out early (with their neighbours as
    context) once the table holds many: forced here from the first chunk, the rows must not
    change. many_reuse and the reuse samples are where it bites."""
    from teardown import flows

    whole = teardown.analyze(str(capture)).flows
    monkeypatch.setattr(flows, "EARLY_HELD", 0)
    early = teardown.analyze(str(capture), chunk_bytes=4096).flows
    assert whole.equals(early)


def test_overlapping_files_are_separate_captures(tmp_path: Path) -> None:
    """Two files covering the same time (two capture points, or the same file twice) are not
    pieces of one capture: each is analyzed on its own, frames counted from 1 in each."""
    source = CAPTURES / "tw_assassination.pcap"  # 3.6 s long: more than the rotation slack
    one = teardown.analyze(str(source))
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    a.write_bytes(source.read_bytes())
    b.write_bytes(source.read_bytes())
    both = teardown.analyze([str(b), str(a)])
    assert not both.capture.continuous
    flows = both.flows
    assert len(flows) == 2 * len(one)
    assert sorted(flows["capture_file"].unique()) == ["a.pcap", "b.pcap"]
    for name in ("a.pcap", "b.pcap"):
        mine = flows[flows["capture_file"] == name].drop(columns="capture_file").reset_index(drop=True)
        assert mine.equals(one.flows.drop(columns="capture_file"))


def test_rotated_pieces_name_the_file_of_each_flow(tmp_path: Path) -> None:
    capture = CAPTURES / "many_reuse.pcap"
    pieces = _split_pcap(capture, 60, tmp_path)
    result = teardown.analyze(pieces[::-1])  # given out of order: read in time order all the same
    assert result.capture.continuous
    flows = result.flows
    first_frame = flows["evidence_frames"].str.extract(r"syn (\d+)")[0].astype(float)
    expected = ["piece0.pcap" if f <= 60 else "piece1.pcap" for f in first_frame]
    assert list(flows["capture_file"]) == expected


@pytest.mark.parametrize("capture", [p for p in SAMPLES if p.suffix == ".pcap"], ids=lambda p: p.stem)
def test_rotated_pcapng_pieces_number_frames_across_files(capture: Path, tmp_path: Path) -> None:
    """The same split written as pcapng (dumpcap's and `live --write-size`'s rotation): the
    pcapng reader counts a batch's frames after handing it over, and the second file's numbers
    must still start after the first file's last frame, and each row name the file holding its
    first segment (pieces of records 1..k and k+1..n, k the middle record)."""
    pytest.importorskip("scapy")
    from scapy.utils import PcapNgWriter, rdpcap

    from scapy.layers.l2 import Ether

    packets = rdpcap(str(capture))
    if not isinstance(packets[0], Ether):
        pytest.skip("scapy writes back Ethernet frames byte for byte, not every link type")
    middle = len(packets) // 2
    pieces = []
    for i, part in enumerate((packets[:middle], packets[middle:])):
        path = tmp_path / f"piece{i}.pcapng"
        with PcapNgWriter(str(path)) as out:
            for packet in part:
                out.write(packet)
        pieces.append(str(path))
    whole = teardown.analyze(str(capture)).flows
    joined = teardown.analyze(pieces).flows
    assert file_free(joined).equals(file_free(whole))
    first = teardown.analyze(str(capture)).columns["first_frame"]
    assert list(joined["capture_file"]) == ["piece0.pcapng" if f <= middle else "piece1.pcapng" for f in first]


@pytest.mark.parametrize("name", ["many_reuse.pcap", "reuse_in_time_wait_rejected.pcap", "tw_assassination.pcap"])
def test_tiny_retire_slices_give_the_same_flows(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records are handed out in slices through one reused buffer; a tuple that does not fit
    makes it grow. One incarnation per slice forces both paths."""
    from teardown import flows

    capture = str(CAPTURES / name)
    whole = teardown.analyze(capture).flows
    monkeypatch.setattr(flows, "RETIRE_SLICE", 1)
    monkeypatch.setattr(flows, "EARLY_HELD", 0)
    assert whole.equals(teardown.analyze(capture, chunk_bytes=4096).flows)


@pytest.mark.parametrize("name", ["many_reuse.pcap", "tw_assassination.pcap", "syn_scan.pcap"])
def test_judging_on_a_second_thread_gives_the_same_flows(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With two cores each slice is judged on a thread of its own while the next batch is fed
    (engine.py, judge_aside). One incarnation per slice keeps many slices in flight, each
    handed out through the one buffer the next slice overwrites: rows must equal one core's."""
    import os

    from teardown import flows

    capture = str(CAPTURES / name)
    monkeypatch.setattr(flows, "RETIRE_SLICE", 1)
    monkeypatch.setattr(flows, "EARLY_HELD", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    inline = teardown.analyze(capture, chunk_bytes=4096).flows
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert inline.equals(teardown.analyze(capture, chunk_bytes=4096).flows)
