"""`teardown live -o OUT --every SECONDS`: the outputs rewritten while the watch runs (issue 21).

A namespace with its loopback, tests/live_traffic.py's server, clients connecting a few times a
second for ~5 s, and `teardown live --duration 6 --every 1` sniffing them. The output must
appear early (before 3 s), grow, be whole every time it is read, and at the stop be what `-o`
alone writes: for a table, the offline analysis of the --write file, byte for byte.

Needs root and network namespaces (as tests/test_live.py); skips with the reason otherwise.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from teardown.live.every import Rewriter

from .conftest import ROOT
from .test_live import TRAFFIC, WHY_NOT, sh

needs_namespaces = pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")
RUN_S = 6.0


@pytest.fixture(scope="module")
def ns() -> Iterator[str]:
    name = f"tdevery{os.getpid() % 100000}"
    try:
        sh("ip", "netns", "add", name)
        sh("ip", "link", "set", "lo", "up", ns=name)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def flows_in(data: bytes, fmt: str) -> int:
    """The number of flows in one version of the output; raises if it is not whole."""
    if fmt == "csv":
        return len(pd.read_csv(io.BytesIO(data)))
    if fmt == "json":
        return len(json.loads(data))
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(data)).num_rows
    text = data.decode()
    assert text.rstrip().endswith("</html>")
    HTMLParser().feed(text)
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    assert found is not None
    json.loads(found[1])  # the page's data, whole
    counted = re.search(r"([\d,]+) flows", text)
    return int(counted[1].replace(",", "")) if counted else 0


def watch(ns: str, tmp: Path, fmt: str, *more: str) -> tuple[float, list[tuple[float, int]],
                                                              subprocess.CompletedProcess[str], Path]:
    """Run the watch with traffic (`more`: more options of live); every version of the output
    read while it runs, as (seconds after the start, flows), the finished process and the
    --write file (its first, with --write-size)."""
    out, capture = tmp / f"out.{fmt}", tmp / ("cap-000001.pcapng" if "--write-size" in more else "cap.pcapng")
    inns = ["ip", "netns", "exec", ns, sys.executable]
    server = subprocess.Popen([*inns, TRAFFIC, "serve", "127.0.0.1", str(RUN_S + 6)], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    proc = subprocess.Popen([*inns, "-m", "teardown.cli", "live", "-i", "lo", "--duration", str(RUN_S), "--quiet",
                             "--write", str(tmp / "cap.pcapng"), "-o", str(out), "--every", "1", *more],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    end = time.monotonic() + 20
    while not (capture.exists() and capture.stat().st_size) and time.monotonic() < end:
        time.sleep(0.02)
    started = time.monotonic()

    def clients() -> None:
        while time.monotonic() - started < RUN_S - 1:
            subprocess.run([*inns, TRAFFIC, "connect", "127.0.0.1", "client_first=3,server_first=3"],
                           capture_output=True, timeout=20)
            time.sleep(0.2)

    load = threading.Thread(target=clients)
    load.start()
    seen: list[tuple[float, int]] = []
    last: tuple[int, int] | None = None
    while proc.poll() is None:
        try:
            st = os.stat(out)
            data = out.read_bytes()
        except FileNotFoundError:
            time.sleep(0.05)
            continue
        if (st.st_ino, st.st_mtime_ns) != last and proc.poll() is None:
            last = (st.st_ino, st.st_mtime_ns)
            seen.append((time.monotonic() - started, flows_in(data, fmt)))
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=30)
    load.join()
    server.wait(30)
    server.stdout.close()
    return started, seen, subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), capture


@needs_namespaces
@pytest.mark.parametrize("fmt", ["csv", "json", "parquet", "html"])
def test_outputs_rewritten_while_the_watch_runs(ns: str, tmp_path: Path, fmt: str) -> None:
    _, seen, done, capture = watch(ns, tmp_path, fmt)
    assert done.returncode == 0, done.stderr
    assert "rewriting the outputs failed" not in done.stderr
    assert seen and seen[0][0] < 3.0, seen  # there early, while the watch goes on
    assert len(seen) >= 3, seen
    counts = [n for _, n in seen]
    assert counts == sorted(counts) and counts[-1] > counts[0], seen  # more flows later
    assert not list(tmp_path.glob(".out.*")), "a rewrite's temporary was left behind"
    assert "--every: rewritten" not in done.stdout  # --quiet: no summary
    final = (tmp_path / f"out.{fmt}").read_bytes()
    if fmt == "html":
        offline = subprocess.run([sys.executable, "-m", "teardown.cli", "analyze", str(capture), "-o",
                                  str(tmp_path / "ref.parquet")], capture_output=True, text=True, cwd=ROOT)
        assert offline.returncode == 0, offline.stderr
        assert flows_in(final, fmt) == pq.read_table(tmp_path / "ref.parquet").num_rows
        return
    # What `-o` alone writes at the stop: the offline analysis of the written capture.
    ref = tmp_path / f"ref.{fmt}"
    offline = subprocess.run([sys.executable, "-m", "teardown.cli", "analyze", str(capture), "-o", str(ref)],
                             capture_output=True, text=True, cwd=ROOT)
    assert offline.returncode == 0, offline.stderr
    if fmt == "parquet":
        pd.testing.assert_frame_equal(pq.read_table(io.BytesIO(final)).to_pandas(), pq.read_table(ref).to_pandas())
    else:
        assert final == ref.read_bytes()


@needs_namespaces
def test_report_rewritten_from_a_rotation_draws_and_hashes_as_offline(ns: str, tmp_path: Path) -> None:
    """With --write-size, the report is rewritten from a set of files still growing: its ladders
    are read by the writer's marks and its hashes are the writer's. At the stop they are what
    `analyze` of the set draws and hashes, reading the files whole."""
    _, seen, done, _ = watch(ns, tmp_path, "html", "--write-size", "0.03")
    assert done.returncode == 0, done.stderr
    assert "rewriting the outputs failed" not in done.stderr
    assert len(seen) >= 3, seen
    files = sorted(tmp_path.glob("cap-*.pcapng"))
    assert len(files) >= 2, files
    ref = tmp_path / "ref.html"
    offline = subprocess.run([sys.executable, "-m", "teardown.cli", "analyze", *map(str, files), "-o", str(ref)],
                             capture_output=True, text=True, cwd=ROOT)
    assert offline.returncode == 0, offline.stderr
    live, alone = (tmp_path / "out.html").read_text(), ref.read_text()

    def page_data(text: str) -> dict[str, object]:
        found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
        assert found is not None
        return dict(json.loads(found[1]))

    assert page_data(live)["ladders"] == page_data(alone)["ladders"]
    assert page_data(live)["ladders"]  # some flows drawn
    hashes = {hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    assert set(re.findall(r"\b[0-9a-f]{64}\b", live)) == hashes == set(re.findall(r"\b[0-9a-f]{64}\b", alone))


def test_every_without_an_output_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, "-m", "teardown.cli", "live", "-i", "lo", "--every", "5"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--every" in done.stderr and "-o" in done.stderr


def test_rewriter_forks_each_turn_skips_while_busy_and_ends_the_last_at_the_stop(tmp_path: Path) -> None:
    """The capture loop's side of --every, without a capture: a turn while the previous child
    still writes is skipped, and the child running at the stop is ended, its output not replaced."""
    out = tmp_path / "out.txt"
    calls = tmp_path / "calls"

    def write(result: object) -> str:
        with open(calls, "a") as fh:
            fh.write("x")
        if calls.stat().st_size >= 2:
            time.sleep(30)  # the second is still writing at the stop
        out.write_text(f"version {calls.stat().st_size}")
        return "wrote"

    every = Rewriter(0.05, write)  # type: ignore[arg-type]
    end = time.monotonic() + 20
    while not (calls.exists() and calls.stat().st_size >= 2) and time.monotonic() < end:
        every.tick(lambda: None)  # type: ignore[arg-type, return-value]
        time.sleep(0.01)
    for _ in range(20):  # due again while the second still writes: skipped
        every.tick(lambda: None)  # type: ignore[arg-type, return-value]
        time.sleep(0.01)
    t0 = time.monotonic()
    every.close()
    assert time.monotonic() - t0 < 5  # ended, not waited for
    assert out.read_text() == "version 1"
    assert len(every.seconds) == 1 and every.ended and not every.failed and every.skipped >= 1
    assert "rewritten 1 times" in every.summary() and "ended" in every.summary()
