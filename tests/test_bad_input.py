"""Bad input: one clear line naming the file, exit 2, never a traceback; a capture damaged
part-way is analyzed up to the damage with a warning."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import teardown
from teardown.errors import CaptureError

from .conftest import CAPTURES

SAMPLE = CAPTURES / "server_first_close.pcap"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "teardown.cli", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"PK\x03\x04" + b"\0" * 60, "zip archive"),
    (b"hello world, not a capture\n", "not a pcap or pcapng file"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "truncated pcap file header"),
    (b"\xd4", "too short"),
])
def test_not_a_capture_is_one_line_and_exit_2(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(content)
    r = run_cli("analyze", str(bad))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert str(bad) in r.stderr and message in r.stderr


def test_missing_file_directory_and_no_permission(tmp_path: Path) -> None:
    assert "no such file" in run_cli("analyze", str(tmp_path / "nope.pcap")).stderr
    r = run_cli("analyze", str(tmp_path))
    assert r.returncode == 2 and "is a directory" in r.stderr
    locked = tmp_path / "locked.pcap"
    locked.write_bytes(SAMPLE.read_bytes())
    locked.chmod(0)
    if os.geteuid() != 0:
        r = run_cli("analyze", str(locked))
    elif shutil.which("setpriv"):
        # root reads files whatever their mode: take away the capabilities that let it.
        r = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all",
                            sys.executable, "-m", "teardown.cli", "analyze", str(locked)],
                           capture_output=True, text=True, timeout=60)
    else:
        pytest.skip("running as root without setpriv: root reads files whatever their mode")
    assert r.returncode == 2 and "permission denied" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_truncated_capture_is_analyzed_up_to_the_damage(tmp_path: Path) -> None:
    data = SAMPLE.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])
    r = run_cli("analyze", str(cut))
    assert r.returncode == 0, r.stderr
    # The summary says it in its first lines; with --quiet, stderr does.
    assert "warning:" in r.stdout and "truncated" in r.stdout and "analyzed up to there" in r.stdout
    r = run_cli("analyze", str(cut), "--quiet")
    assert r.returncode == 0 and "warning:" in r.stderr and "analyzed up to there" in r.stderr


def test_corrupt_record_length_stops_with_warning(tmp_path: Path) -> None:
    data = bytearray(SAMPLE.read_bytes())
    # Second record's captured length: after the 24-byte header and the first record.
    first_len = int.from_bytes(data[24 + 8: 24 + 12], "little")
    at = 24 + 16 + first_len + 8
    data[at: at + 4] = (0x7FFFFFFF).to_bytes(4, "little")
    bad = tmp_path / "corrupt.pcap"
    bad.write_bytes(bytes(data))
    result = teardown.analyze(str(bad))
    assert result.capture.frames == 1
    assert any("corrupt record length" in w for w in result.capture.warnings)


def test_gzip_capture_reads_like_the_plain_one(tmp_path: Path) -> None:
    gz = tmp_path / "sample.pcap.gz"
    gz.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    plain = teardown.analyze(str(SAMPLE)).flows.drop(columns="capture_file")
    zipped = teardown.analyze(str(gz)).flows.drop(columns="capture_file")
    assert plain.equals(zipped)


def test_input_is_not_modified(tmp_path: Path) -> None:
    before = SAMPLE.read_bytes()
    run_cli("analyze", str(SAMPLE), "-o", str(tmp_path / "out.csv"))
    assert SAMPLE.read_bytes() == before


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_captures_give_a_result_or_a_capture_error(tmp_path: Path, data: st.DataObject) -> None:
    """Fuzz: flip, cut and overwrite bytes of real captures; only a result or CaptureError."""
    sources = sorted(p for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))
    raw = bytearray(data.draw(st.sampled_from(sources)).read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    path = tmp_path / "fuzz.pcap"
    path.write_bytes(bytes(raw))
    try:
        teardown.analyze(str(path), chunk_bytes=4096)
    except CaptureError:
        pass


def test_four_bytes_tshark_takes_for_another_format(tmp_path: Path) -> None:
    """Found by the fuzz test: tshark reads '00 c3 b2 a1' as one frame of some other format,
    with no timestamp; the auto reader's hand-off to tshark must still end in one line."""
    odd = tmp_path / "odd.pcap"
    odd.write_bytes(bytes.fromhex("00c3b2a1"))
    r = run_cli("analyze", str(odd))
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
