"""A short run of the fuzzer (tools/fuzz.py) on every CI run: 300 damaged captures, fixed seed,
each analyzed (and every 10th reported) in a worker process, must give a result or one line.
The long runs before a release are in the README ("How it is tested")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import ROOT


def test_damaged_captures_give_a_result_or_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "fuzz.py"), "--mutants", "300", "--jobs", "1",
                           "--seed", "17", "--out", str(tmp_path / "found")],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    found = sorted(p.read_text() for p in (tmp_path / "found").glob("*.txt")) if (tmp_path / "found").exists() else []
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:] + "".join(found)[:5000]
    assert "300 mutants" in done.stdout and " 0 failures" in done.stdout


def test_what_the_fuzzer_found_stays_fixed() -> None:
    """Captures the fuzzer made that once crashed, each analyzed and reported in a process of its
    own (a crash in C would end the test run). tuples_given_back_while_waiting.pcap: a mutated
    PKTAP capture after which every tuple had retired while one still waited for its SYN's
    retry; the flow table gave back its tuple array and then read it (_flows.c give_back)."""
    for capture in sorted((ROOT / "tests" / "fuzz_found").iterdir()):
        done = subprocess.run([sys.executable, str(ROOT / "tools" / "fuzz.py"), "--worker"], input=f"{capture}\t1\n",
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 0 and done.stdout.startswith('["ok"'), (capture.name, done.returncode,
                                                                             done.stderr[-2000:])
