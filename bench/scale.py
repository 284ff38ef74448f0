"""The scaling curve of `teardown analyze --workers N` on 8 files of the benchmark capture.

    python bench/scale.py                      # both sets, workers 0 (one process), 1, 2, ... cores
    python bench/scale.py --set rotated --workers 1,2 --repeat 3

Two sets of 8 files, made once under bench/data from the 10x capture (bench/repeat_capture.py):
  rotated  its 10 M packets cut into 8 pieces of one capture, as `tcpdump -C` writes them
           (connections run across files: the pieces are read as one capture);
  hosts    8 copies of the 1 M-packet capture, as 8 hosts' captures of the same minutes
           (each read as a capture of its own).
Each run is the command a user types, in a fresh process, so the cluster's start counts. Peak
memory is the largest sum of RSS over the process tree (driver, scheduler, workers), sampled
every 50 ms. Prints a Markdown table with the speed-up over --workers 1 and over one process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data"
ONE = DATA / "loopback_1000000.pcap"
TEN = DATA / "loopback_1000000_x10.pcap"


def files(which: str) -> list[Path]:
    """The 8 files of a set, made on first use."""
    folder = DATA / f"scale_{which}"
    if not folder.is_dir() or len(list(folder.glob("*.pcap"))) != 8:
        folder.mkdir(parents=True, exist_ok=True)
        if which == "rotated":
            if not TEN.exists():
                sys.exit(f"missing {TEN}: run bench/make_capture.py, then bench/repeat_capture.py {ONE} 10")
            editcap = shutil.which("editcap")
            if not editcap:
                sys.exit("editcap (Wireshark) is needed to cut the rotated set")
            packets = 10_000_000 // 8
            subprocess.run([editcap, "-F", "pcap", "-c", str(packets), str(TEN), str(folder / "rot.pcap")], check=True)
        else:
            if not ONE.exists():
                sys.exit(f"missing {ONE}: run bench/make_capture.py")
            for i in range(8):
                target = folder / f"host{i + 1}.pcap"
                if not target.exists():
                    os.link(ONE, target)  # the same bytes, 8 names: no disk spent
    return sorted(folder.glob("*.pcap"))


def run(paths: list[Path], workers: int) -> tuple[float, float]:
    """Wall seconds and peak MB of the whole process tree for one `teardown analyze`."""
    teardown = shutil.which("teardown", path=str(Path(sys.executable).parent)) or "teardown"
    cmd = [teardown, "analyze", *map(str, paths), "--workers", str(workers), "--quiet"]
    start = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, peak / 1e6


def main() -> int:
    cores = os.cpu_count() or 1
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=["rotated", "hosts", "both"], default="both")
    ap.add_argument("--workers", default=",".join(str(n) for n in range(cores + 1)),
                    help="comma-separated; 0 is one process without Dask (default 0..cores)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per point; the best counts")
    args = ap.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    print(f"{cores} cores, Python {sys.version.split()[0]}\n")
    print("| set | files | --workers | wall s | peak MB (all processes) | vs --workers 1 | vs one process |")
    print("|---|---|---|---|---|---|---|")
    for which in (["rotated", "hosts"] if args.set == "both" else [args.set]):
        paths = files(which)
        size = sum(p.stat().st_size for p in paths)
        times: dict[int, float] = {}
        for n in counts:
            best = min((run(paths, n) for _ in range(args.repeat)), key=lambda r: r[0])
            times[n] = best[0]
            vs1 = f"{times[1] / best[0]:.2f}×" if 1 in times else ""
            vs0 = f"{times[0] / best[0]:.2f}×" if 0 in times else ""
            print(f"| {which} | 8 ({size / 1e9:.2f} GB) | {n} | {best[0]:.2f} | {best[1]:,.0f} | {vs1} | {vs0} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
