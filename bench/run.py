"""Time teardown and its peers on one capture, each as a fresh subprocess.

    python bench/run.py bench/data/loopback_1000000.pcap
    python bench/run.py CAPTURE --only teardown,tshark --repeat 3
    python bench/run.py CAPTURE --ten-times bench/data/loopback_1000000_x10.pcap --repeat 3

Every peer runs as its own process so start-up and import time count, as they do for
a user, and the peers run in turn, round after round (--repeat), the median run reported.  Wall time is measured around spawn..reap; CPU and peak RSS come from the
child's rusage (via /usr/bin/time when present, else os.wait4).  Packets/s always means "records in the file / wall time",
so peers that count differently are still compared on the same work.  Slow peers
(scapy, pyshark) read only the first --limit records; their full time is
extrapolated and marked "~".  Prints a Markdown table and writes the same data as
JSON (bench/data/results.json).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pcapcount import count_records

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / "peers"
# Default --limit per slow peer, sized so each takes ~15-40 s (scapy ~3,400 pkt/s,
# pyshark ~300 pkt/s on the 2-core reference machine).
SLOW_DEFAULT_LIMIT = {"scapy": 50_000, "pyshark": 10_000, "teardown-scapy": 50_000, "teardown-tshark": 200_000}


@dataclass
class Peer:
    name: str
    base: list[str]
    what: str  # one line for the table's footnotes
    limit: int = 0  # slow peers: read only this many records (0: all)
    records: int = 0  # records of its own capture (the --ten-times rows); 0: the main capture's

    def cmd(self, limit: int | None = None) -> list[str]:
        n = self.limit if limit is None else limit
        return [*self.base, "--limit", str(n)] if n else self.base


@dataclass
class Result:
    name: str
    command: str
    ok: bool
    returncode: int | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mib: float = 0.0
    packets_timed: int = 0  # records this run actually read
    extrapolated: bool = False
    startup_s: float | None = None  # slow peers: wall time of a 1-packet run
    full_time_s: float = 0.0  # wall_s, or the extrapolation to the whole file
    pps: float = 0.0
    ratio_vs_teardown: float | None = None  # full_time / teardown's; > 1 = slower
    output_tail: str = ""


def teardown_cmd(python: str, explicit: str | None) -> list[str]:
    """The `teardown` entry point of the same environment as --python, else PATH.

    Falls back to calling teardown.cli:main through the interpreter, so a checkout
    that is importable but not installed still works.
    """
    if explicit:
        return shlex.split(explicit)
    beside = Path(python).parent / "teardown"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("teardown")
    if found:
        return [found]
    return [python, "-c", "import sys; from teardown.cli import main; sys.exit(main())"]


def make_peers(capture: str, python: str, teardown: list[str], limit: dict[str, int], tmp: str) -> list[Peer]:
    return [
        Peer("teardown", [*teardown, "analyze", capture], "`teardown analyze` (findings and summary on the terminal)"),
        Peer("teardown-quiet", [*teardown, "analyze", capture, "--quiet"],
             "`teardown analyze --quiet`: no terminal output, so no host-level views (findings); "
             "the difference to `teardown` is their cost"),
        Peer("teardown-csv", [*teardown, "analyze", capture, "-o", f"{tmp}/flows.csv"],
             "`teardown analyze -o flows.csv` (per-connection table as CSV, with the summary)"),
        Peer("teardown-parquet", [*teardown, "analyze", capture, "-o", f"{tmp}/x.parquet"],
             "`teardown analyze -o x.parquet` (per-connection table)"),
        Peer("teardown-html", [*teardown, "analyze", capture, "-o", f"{tmp}/report.html"],
             "`teardown analyze -o report.html` (the incident report; reads the capture again for ladders)"),
        Peer("teardown-one-process", [*teardown, "analyze", capture, "--workers", "0"],
             "`teardown analyze --workers 0`: always this process, whatever the default would choose"),
        Peer("teardown-fast", [*teardown, "analyze", capture, "--reader", "fast"],
             "`teardown analyze --reader fast` (the default `auto` is this plus a hand-off of what it cannot decode)"),
        Peer("teardown-scapy", [python, str(PEERS / "teardown_reader.py"), capture, "--reader", "scapy"],
             "`teardown analyze --reader scapy`: every frame dissected by scapy's layers", limit["teardown-scapy"]),
        Peer("teardown-tshark", [python, str(PEERS / "teardown_reader.py"), capture, "--reader", "tshark"],
             "`teardown analyze --reader pyshark`: tshark `-T fields`, only the fields needed",
             limit["teardown-tshark"]),
        Peer("tshark", ["tshark", "-q", "-n", "-z", "conv,tcp", "-r", capture], "TCP conversations table"),
        Peer("tcptrace", ["tcptrace", "-n", capture], "per-connection summary"),
        Peer("dpkt", [python, str(PEERS / "dpkt_flows.py"), capture], "Ethernet/IP/TCP parse, flows in a dict"),
        Peer("scapy", [python, str(PEERS / "scapy_loop.py"), capture],
             "`for p in PcapReader(f): if TCP in p: n += 1`", limit["scapy"]),
        Peer("pyshark", [python, str(PEERS / "pyshark_loop.py"), capture],
             "`FileCapture(keep_packets=False)` iteration", limit["pyshark"]),
    ]


# GNU time, when present, measures peak RSS from a ~2 MB parent.  Reaping the child
# ourselves (os.wait4) is the fallback: Linux carries the parent's own RSS high-water
# mark into a child's ru_maxrss across fork+exec, so a Python parent adds a floor of
# ~20 MB to every figure.
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run_once(cmd: list[str], timeout: float) -> tuple[int | None, float, float, float, str]:
    """Spawn, reap; return (rc, wall s, cpu s, peak RSS MiB, output tail)."""
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rss_file:
        argv = [GNU_TIME, "-f", "maxrss_kib=%M", "-o", rss_file.name, *cmd] if GNU_TIME else cmd
        t0 = time.perf_counter()
        try:
            # Own session, so a timeout can kill the whole tree (pyshark's tshark).
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:  # command not found, not executable
            return None, 0.0, 0.0, 0.0, str(e)

        def kill() -> None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        # wait4 rather than proc.wait(): it also gives the rusage (CPU of the child
        # and of every descendant it reaped; ru_maxrss is a max over them, not a sum).
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: tell Popen
        rss_kib = float(ru.ru_maxrss)
        if m := re.search(r"maxrss_kib=(\d+)", rss_file.read()):
            rss_kib = float(m.group(1))
        out.seek(0)
        tail = out.read()[-2000:].decode(errors="replace")
        return proc.returncode, wall, ru.ru_utime + ru.ru_stime, rss_kib / 1024, tail


def run_peer(peer: Peer, records: int, timeout: float) -> Result:
    """One fresh process of `peer`."""
    rc, wall, cpu, rss, tail = run_once(peer.cmd(), timeout)
    res = Result(peer.name, shlex.join(peer.cmd()), rc == 0, rc, wall, cpu, rss, output_tail=tail.strip())
    # Peers print "packets=N"; for limited runs that is the number actually timed.
    m = re.search(r"packets=(\d+)", tail)
    res.packets_timed = int(m.group(1)) if m else records
    res.full_time_s = wall
    return res


def median_run(peer: Peer, runs: list[Result], records: int, timeout: float) -> Result:
    """The run of median wall time (a failure, if any run failed), extrapolated for slow peers."""
    failed = next((r for r in runs if not r.ok), None)
    if failed:
        return failed
    best = sorted(runs, key=lambda r: r.wall_s)[(len(runs) - 1) // 2]
    if best.packets_timed < records:
        # Partial run: a 1-packet run measures start-up (imports, tshark launch), so
        # that only the per-packet part is scaled up:
        #   full = startup + (records - 1) * (wall - startup) / (timed - 1)
        best.extrapolated = True
        best.startup_s = min(run_once(peer.cmd(1), timeout)[1] for _ in runs)
        per_packet = (best.wall_s - best.startup_s) / max(best.packets_timed - 1, 1)
        if per_packet <= 0:  # noise on a tiny --limit: fall back to a plain ratio
            per_packet = best.wall_s / best.packets_timed
        best.full_time_s = best.startup_s + (records - 1) * per_packet
    best.pps = records / best.full_time_s
    return best


def markdown(results: list[Result], capture: Path, records: int, peers: list[Peer], python: str, tmp: str) -> str:
    def pretty(cmd: list[str]) -> str:  # paste-able in a README: no machine-specific paths
        short = {str(capture): capture.name, python: "python", f"{tmp}/": "/tmp/"}
        text = shlex.join(short.get(a, a) for a in cmd).replace(f"{tmp}/", "/tmp/")
        return text.replace(str(BENCH.parent) + "/", "").replace(str(Path(python).parent) + "/", "")

    lines = [
        f"Capture `{capture.name}`: {records:,} packets, {capture.stat().st_size / 2**20:.0f} MiB; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {datetime.date.today()}.",
        "",
        "| Tool | Wall time (s) | Packets/s | vs `teardown analyze` | Peak RSS (MiB) | CPU (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if not r.ok:
            lines.append(f"| {r.name} | failed (rc={r.returncode}) | | | | |")
            continue
        t = f"~{r.full_time_s:,.1f}" if r.extrapolated else f"{r.full_time_s:,.2f}"
        pps = f"~{r.pps:,.0f}" if r.extrapolated else f"{r.pps:,.0f}"
        if r.ratio_vs_teardown is None:
            ratio = "n/a"
        elif r.name == "teardown":
            ratio = "1× (reference)"
        elif r.ratio_vs_teardown >= 1:
            ratio = f"{r.ratio_vs_teardown:,.1f}× slower"
        else:
            ratio = f"{1 / r.ratio_vs_teardown:,.1f}× faster"
        name = f"{r.name}¹" if r.extrapolated else r.name
        lines.append(f"| {name} | {t} | {pps} | {ratio} | {r.peak_rss_mib:,.0f} | {r.cpu_s:,.2f} |")
    lines.append("")
    extra = [r for r in results if r.ok and r.extrapolated]
    if extra:
        lines.append("¹ Timed on the first " + ", ".join(f"{r.packets_timed:,} packets ({r.name})" for r in extra)
                     + f" only; time extrapolated to {records:,} packets as start-up (a 1-packet run: "
                     + ", ".join(f"{r.startup_s:.1f} s {r.name}" for r in extra)
                     + ") + per-packet rate of the partial run; peak RSS is that of the partial run.")
    lines.append("Each tool runs as a fresh process (start-up and imports included); peak RSS is the "
                 "largest single process of the tool's tree (pyshark: python or its tshark child).")
    lines.append("")
    shown = {r.name for r in results}
    for p in peers:
        if p.name in shown:
            lines.append(f"- **{p.name}**: {p.what} — `{pretty(p.cmd())}`")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture", type=Path)
    ap.add_argument("--python", default=sys.executable, help="interpreter for the Python peers (default: this one)")
    ap.add_argument("--teardown", help="teardown command (default: beside --python, then PATH)")
    ap.add_argument("--only", help="comma-separated subset: teardown,teardown-quiet,teardown-csv,teardown-parquet,"
                    "teardown-html,teardown-one-process,teardown-fast,"
                    "teardown-scapy,teardown-tshark,tshark,tcptrace,dpkt,scapy,pyshark")
    ap.add_argument("--repeat", type=int, default=1, help="K rounds of every peer in turn; the median run is reported")
    ap.add_argument("--ten-times", type=Path, metavar="CAPTURE",
                    help="also time `teardown`, `teardown -o flows.csv` and `teardown --workers 0` on this capture "
                         "(bench/repeat_capture.py CAPTURE 10): their rows say whether time and memory grow with the "
                         "capture, and whether the default's choice of a cluster or one process pays")
    ap.add_argument("--limit", type=int, help="records read by slow peers (scapy, pyshark); 0 = whole file "
                    f"(default {SLOW_DEFAULT_LIMIT})")
    ap.add_argument("--timeout", type=float, default=1800, help="per run, seconds")
    ap.add_argument("--json", type=Path, default=BENCH / "data" / "results.json")
    args = ap.parse_args()

    capture = args.capture.resolve()
    records = count_records(str(capture))
    # pip compiles a package's bytecode as it installs it; an editable install (or a shell with
    # PYTHONDONTWRITEBYTECODE set, as here) leaves every run to compile teardown's modules again
    # (~50 ms a run): compiled once, as an installed teardown is.
    subprocess.run([args.python, "-m", "compileall", "-q", str(BENCH.parent / "teardown")], check=True)
    limits = dict.fromkeys(SLOW_DEFAULT_LIMIT, args.limit) if args.limit is not None else SLOW_DEFAULT_LIMIT
    with tempfile.TemporaryDirectory(prefix="teardown-bench-") as tmp:
        peers = make_peers(str(capture), args.python, teardown_cmd(args.python, args.teardown), limits, tmp)
        if args.only:
            wanted = set(args.only.split(","))
            unknown = wanted - {p.name for p in peers}
            if unknown:
                sys.exit(f"run.py: unknown peer(s) {', '.join(sorted(unknown))}")
            peers = [p for p in peers if p.name in wanted]

        if args.ten_times:  # the same commands on a capture ten times as long: does memory stay flat?
            big = args.ten_times.resolve()
            big_records = count_records(str(big))
            peers += [Peer(f"{p.name} (10×)", [str(big) if a == str(capture) else a for a in p.base],
                           f"{p.what}, on `{big.name}` ({big_records:,} packets)", records=big_records)
                      for p in peers if p.name in ("teardown", "teardown-csv", "teardown-one-process")]

        print(f"{capture}: {records:,} packets", file=sys.stderr)
        # In turn, round after round (A B C A B C ...): a machine whose speed drifts slows every
        # peer alike, and each run is a fresh process. The median run of each is reported.
        runs: dict[str, list[Result]] = {p.name: [] for p in peers}
        for k in range(args.repeat):
            for p in peers:
                if runs[p.name] and not runs[p.name][-1].ok:
                    continue  # a failure will not get better by repeating it
                print(f"-- round {k + 1}: {p.name}: {shlex.join(p.cmd())}", file=sys.stderr, flush=True)
                r = run_peer(p, p.records or records, args.timeout)
                print(f"   {r.wall_s:.2f} s, {r.peak_rss_mib:.0f} MiB" if r.ok else
                      f"   FAILED (rc={r.returncode}), continuing:\n" + r.output_tail[-800:], file=sys.stderr)
                runs[p.name].append(r)
        results = [median_run(p, runs[p.name], p.records or records, args.timeout) for p in peers]

    ref = next((r for r in results if r.name == "teardown" and r.ok), None)
    for r in results:
        if ref and r.ok:
            r.ratio_vs_teardown = r.full_time_s / ref.full_time_s

    table = markdown(results, capture, records, peers, args.python, tmp)  # tmp: only its name
    print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "capture": str(capture), "packets": records, "bytes": capture.stat().st_size,
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "cpus": os.cpu_count(),
        "python": args.python, "repeat": args.repeat, "limits": limits,
        "results": [asdict(r) for r in results], "markdown": table,
    }, indent=2) + "\n")
    print(f"\nwritten {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
