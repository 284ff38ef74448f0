"""A long watch: does `teardown live` keep flat memory and CPU for half an hour and more?

    sudo python bench/soak.py                              # 30 minutes at ~2,000 packets/s
    sudo python bench/soak.py --minutes 5 --rate 200 --out /tmp/soak.json

A fresh network namespace (nothing else on its loopback), bench/live.py's server and client
processes opening short connections at `--rate` per second (~10 packets each: request ~100 B,
response 300-1000 B, half closed by the client first, half by the server), and

    teardown live -i lo --write DIR/soak.pcapng -o DIR/soak.html --every 60 --duration ...

(with `--write-size`/`--write-files` rotation where this teardown has it). Every minute it
samples teardown's resident memory (VmRSS, and VmHWM, the peak, from /proc/PID/status) and its
CPU time (utime + stime from /proc/PID/stat, and cutime + cstime: the --every children it
reaped). Prints a Markdown table and writes bench/data/soak.json. Everything is bounded: the
run stops after MINUTES plus a few, and the namespace goes with it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIVE = str(HERE / "live.py")  # its `_serve` and `_clients` are the load
TICKS = os.sysconf("SC_CLK_TCK")


def sample(pid: int) -> dict[str, float]:
    """RSS and peak RSS in MiB, CPU seconds of the process and of its reaped children."""
    with open(f"/proc/{pid}/status") as fh:
        status = fh.read()
    kib = {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # After ")": state is field 3, utime 14, stime 15, cutime 16, cstime 17 (proc(5)).
    utime, stime, cutime, cstime = (int(fields[i - 3]) / TICKS for i in (14, 15, 16, 17))
    return {"rss_mib": kib["VmRSS"] / 1024, "peak_mib": kib["VmHWM"] / 1024, "cpu_s": utime + stime,
            "children_cpu_s": cutime + cstime}


def has_rotation(python: str) -> bool:
    out = subprocess.run([python, "-m", "teardown.cli", "live", "--help"], capture_output=True, text=True).stdout
    return "--write-size" in out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=200.0, help="new connections per second (~10 packets each)")
    ap.add_argument("--every", type=float, default=60.0, help="teardown live --every SECONDS")
    ap.add_argument("--sample", type=float, default=60.0, help="seconds between samples")
    ap.add_argument("--write-size", type=int, default=100, help="MB per --write file, where rotation exists")
    ap.add_argument("--no-output", action="store_true",
                    help="without -o and --every: the memory of the watch alone, without the rows kept for -o")
    ap.add_argument("--dir", help="where the capture and report go (default: a temporary directory)")
    ap.add_argument("--out", default=str(HERE / "data" / "soak.json"))
    args = ap.parse_args()
    python = sys.executable
    work = Path(args.dir or tempfile.mkdtemp(prefix="tdsoak"))
    work.mkdir(parents=True, exist_ok=True)
    seconds = args.minutes * 60
    rotation = has_rotation(python)
    write = ["--write", str(work / "soak.pcapng")]
    if rotation:
        write += ["--write-size", str(args.write_size)]
    ns = f"tdsoak{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    samples: list[dict[str, float]] = []
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        inns = ["ip", "netns", "exec", ns, python]
        server = subprocess.Popen([*inns, LIVE, "_serve", str(seconds + 30)])
        outputs = [] if args.no_output else ["-o", str(work / "soak.html"), "--every", f"{args.every:g}"]
        cmd = [*inns, "-m", "teardown.cli", "live", "-i", "lo", *write, *outputs, "--duration", f"{seconds + 5:g}"]
        print("$", " ".join(cmd[4:]), flush=True)
        log, errlog = open(work / "teardown.out", "w"), open(work / "teardown.err", "w")
        live = subprocess.Popen(cmd, stdout=log, stderr=errlog, text=True)  # `ip netns exec` execs: same pid
        while not (work / "teardown.err").stat().st_size and live.poll() is None:
            time.sleep(0.05)  # the first status line: sniffing
        clients = subprocess.Popen([*inns, LIVE, "_clients", str(args.rate), str(seconds)])
        t0 = time.monotonic()
        last_cpu = sample(live.pid)["cpu_s"]
        print(f"rate {args.rate:g} conn/s for {args.minutes:g} min; --every {args.every:g}; "
              f"rotation: {'--write-size ' + str(args.write_size) if rotation else 'none (plain --write)'}", flush=True)
        print("| minute | RSS MiB | peak RSS MiB | CPU s in the minute | --every children CPU s (total) | "
              "capture MB |", flush=True)
        print("|---:|---:|---:|---:|---:|---:|", flush=True)
        minute = 0
        while live.poll() is None and time.monotonic() - t0 < seconds:
            minute += 1
            time.sleep(max(0.0, t0 + minute * args.sample - time.monotonic()))
            if live.poll() is not None:
                break
            s = sample(live.pid)
            s["minute"], s["cpu_in_minute_s"] = minute, s["cpu_s"] - last_cpu
            last_cpu = s["cpu_s"]
            s["capture_mb"] = sum(f.stat().st_size for f in work.glob("soak*.pcapng")) / 1e6
            samples.append(s)
            print(f"| {minute} | {s['rss_mib']:,.0f} | {s['peak_mib']:,.0f} | {s['cpu_in_minute_s']:.1f} | "
                  f"{s['children_cpu_s']:.1f} | {s['capture_mb']:,.0f} |", flush=True)
        clients.wait(60)
        live.wait(1800)
        log.close()
        errlog.close()
        server.wait(60)
    finally:
        subprocess.run(["ip", "netns", "del", ns])
    summary = (work / "teardown.out").read_text()
    err = (work / "teardown.err").read_text().replace("\r", "\n")
    print(summary)
    print(err[-2000:])
    result = {"minutes": args.minutes, "rate_conn_s": args.rate, "every_s": None if args.no_output else args.every,
              "outputs": not args.no_output, "rotation": rotation, "command": " ".join(cmd[4:]),
              "cpus": os.cpu_count(), "samples": samples, "summary": summary, "stderr_tail": err[-2000:]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
