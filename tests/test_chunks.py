"""The engine carries per-connection state from chunk to chunk: any chunk size, and a capture
split into rotated files, must give the verdicts of one pass over one file."""

from __future__ import annotations

from pathlib import Path

import pytest

import teardown

from .conftest import CAPTURES

SAMPLES = sorted(p for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))


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
    whole = teardown.analyze(str(capture)).flows
    n = teardown.analyze(str(capture)).capture.frames
    for at in range(1, n):
        pieces = _split_pcap(capture, at, tmp_path)
        joined = teardown.analyze(pieces).flows
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
