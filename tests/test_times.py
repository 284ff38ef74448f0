"""Every line that shows a time is written whatever the capture's timestamps: a time no date
holds is shown as seconds since 1970, and a pcapng whose interface shifts its clock by 2^62 s
still gives the summary, the report and `teardown report`, saying what was set aside."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from teardown.times import CLOCK, utc

from .crafted import C_ISN, S_ISN, back, seg


def test_a_time_in_the_calendar_is_written_as_a_date() -> None:
    assert utc(1_700_000_000.25) == "2023-11-14 22:13:20"
    assert utc(1_700_000_000.25, CLOCK + ".%f") == "22:13:20.250000"


@pytest.mark.parametrize("ts", [2.0**63, -2.0**63, 1e16, -1e11, math.nan, math.inf])
def test_a_time_no_date_holds_is_written_as_seconds(ts: float) -> None:
    assert utc(ts) == f"{ts:.6g} s since 1970"


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def _pcapng_offset_by(path: Path, offset_s: int) -> None:
    """One whole connection on an interface whose if_tsoffset is `offset_s` (pcapng spec)."""
    packets = [seg(1.0, "S", C_ISN), back(1.001, "SA", S_ISN, C_ISN + 1), seg(1.002, "A", C_ISN + 1, S_ISN + 1),
               seg(2.0, "FA", C_ISN + 1, S_ISN + 1), back(2.001, "FA", S_ISN + 1, C_ISN + 2),
               seg(2.002, "A", C_ISN + 2, S_ISN + 2)]
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    option = struct.pack("<HHq", 14, 8, offset_s) + struct.pack("<HH", 0, 0)
    idb = _block(1, struct.pack("<HHI", 1, 0, 65535) + option)
    epbs = b""
    for p in packets:
        raw = bytes(p)
        units = round(float(p.time) * 1e6)
        epbs += _block(6, struct.pack("<IIIII", 0, units >> 32, units & 0xFFFFFFFF, len(raw), len(raw)) + raw)
    path.write_bytes(shb + idb + epbs)


@pytest.mark.parametrize("offset_s", [2**62, -(2**62), 10**13])
def test_summary_report_and_saved_report_survive_any_clock(tmp_path: Path, offset_s: int) -> None:
    cap = tmp_path / "shifted.pcapng"
    _pcapng_offset_by(cap, offset_s)
    run = [sys.executable, "-m", "teardown.cli"]
    for args in (["analyze", str(cap)], ["analyze", str(cap), "-o", str(tmp_path / "r.html")],
                 ["analyze", str(cap), "-o", str(tmp_path / "f.parquet")],
                 ["report", str(tmp_path / "f.parquet"), "-o", str(tmp_path / "again.html")]):
        done = subprocess.run(run + args, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (args, done.stderr)
        assert "Traceback" not in done.stderr
    # The reader sets such an offset aside and says so (read/pcapng.py); the times stay the
    # frames' own, and every output says why.
    said = f"if_tsoffset of {offset_s:,} s would put every time before 1970 or after year 9999; read without it"
    summary = subprocess.run(run + ["analyze", str(cap)], capture_output=True, text=True, timeout=120).stdout
    assert said in " ".join(summary.split())
    assert said in (tmp_path / "r.html").read_text()
