"""Command line: arguments in; a summary, table files and exit codes out.

Exit codes: 0 success, 1 a finding listed in --fail-on is present, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .analysis import Analysis, analyze
from .errors import TeardownError, UsageError
from .options import DEFAULT_PORT_RANGE, Options, OsProfile, ReaderKind
from .outputs import Outputs, refuse_inputs, replaced_together
from .report.flags import FLAGS
from .schema import FORMATS, TABLES, FindingKind
from .terminal import Style, analysis_text, findings_lines
from .timewait.finding import plural
from .timewait.flow_findings import FLOW_FLAGS

if TYPE_CHECKING:
    from .live import LiveResult
    from .read.rotation import Rotation
    from .live.every import Rewriter
    from .report import ReportData

# --fail-on names: every finding kind, and nothing else (docs/rules.md "Findings and their severity").
FAIL_ON = [k.value for k in FindingKind]


# --reader: the names of what runs, and `pyshark`, the tshark reader's first name (ReaderKind).
READERS = [k.value for k in ReaderKind] + ["pyshark"]

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teardown", description="How every TCP connection in a capture "
                                     "ended, and who is left holding TIME_WAIT.")
    parser.add_argument("--version", action="version", version=f"teardown {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="judge every connection in pcap/pcapng captures",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example:\n  teardown analyze captures/server_first_close.pcap -o flows.csv")
    a.add_argument("captures", nargs="+", metavar="CAPTURE",
                   help="pcap or pcapng file, optionally gzipped; a quoted glob ('dumps/host*.pcap*') is expanded here")
    a.add_argument("-o", "--output", metavar="OUT", help="write the per-flow table; the suffix picks the format. "
                   "A directory (trailing slash or existing) gets every table: flows, hosts, destinations, "
                   "servers, findings (default format parquet)")
    a.add_argument("--format", choices=FORMATS, help="force the output format")
    a.add_argument("--os", choices=[p.value for p in OsProfile], default="linux",
                   help="OS profile of the hosts: TIME_WAIT length and RST handling (default linux)")
    a.add_argument("--time-wait", type=float, metavar="SECONDS", help="override the TIME_WAIT length")
    a.add_argument("--host-os", action="append", default=[], metavar="IP=PROFILE",
                   help="OS profile of one host (repeatable)")
    a.add_argument("--port-range", metavar="LOW-HIGH",
                   help="the clients' ephemeral port range (net.ipv4.ip_local_port_range; default 32768-60999)")
    a.add_argument("--fail-on", metavar="FINDING,...", default="",
                   help="exit 1 when any listed finding is present: " + ", ".join(FAIL_ON))
    a.add_argument("--quiet", action="store_true", help="no summary on stdout")
    a.add_argument("--html", action="store_true",
                   help="also write the HTML incident report to reports/NAME.html (-o NAME.html picks the path)")
    a.add_argument("--points", action="store_true",
                   help="the files are the same traffic captured at several points of its path (client side "
                        "first, then server side): one row per connection, the clocks' offset and the segments "
                        "lost between the points (files that overlap in time and share connections are joined "
                        "without it)")
    a.add_argument("--annotate", metavar="OUT.pcapng",
                   help="also write the capture back as pcapng with a comment on each frame a verdict rests on, "
                        "saying what it shows (Wireshark shows it; display filter: frame.comment)")
    a.add_argument("--extract", metavar="OUT.pcapng",
                   help="also write only the frames of the connections with findings, annotated as --annotate, each "
                        "comment giving the frame's number in the original capture: small enough for a ticket")
    a.add_argument("--only", metavar="KIND,...",
                   help="with --extract: only the connections with these findings (the report's filter names): "
                        + ", ".join(flag.name for flag in FLAGS))
    a.add_argument("--workers", type=int, metavar="N",
                   help="analyze on a local Dask cluster of N worker processes; 0: in this process (default: "
                        "all cores where a measured model predicts the cluster is faster: many cores, big input; "
                        "else this process)")
    a.add_argument("--scheduler", metavar="ADDRESS",
                   help="analyze on the Dask cluster at ADDRESS (tcp://HOST:8786); its workers read the paths, "
                        "which may be fsspec URLs (s3://...)")
    a.add_argument("--reader", choices=READERS, default=ReaderKind.auto.value, metavar="{auto,fast,scapy,tshark}",
                   help="what decodes the frames: auto (default: fast, and what it cannot decode handed to scapy or "
                        "tshark), fast, scapy, or tshark (asked for the needed fields only; `pyshark`, its "
                        "former name, still works)")
    r = sub.add_parser("report", help="render the HTML report of a saved analysis, without the capture",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example:\n  teardown analyze dump.pcap -o dump.parquet\n"
                              "  teardown report dump.parquet -o reports/dump.html")
    r.add_argument("result", metavar="RESULT.parquet", help="the flows table written by teardown analyze -o NAME.parquet")
    r.add_argument("-o", "--output", metavar="OUT.html", help="where to write the report (default reports/NAME.html)")
    _live_parser(sub)
    _diff_parser(sub)
    x = sub.add_parser("crosscheck", help="compare our verdicts with Wireshark's own TCP analysis (tshark)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Runs tshark on the capture and compares, connection by connection, TCP stream "
                                   "boundaries, FIN and RST senders and FIN retransmissions with our analysis. "
                                   "Exit 1 when a disagreement has no explanation.",
                       epilog="example:\n  teardown crosscheck captures/simultaneous_close.pcap")
    x.add_argument("capture", metavar="CAPTURE", help="pcap or pcapng file (or any format tshark reads)")
    x.add_argument("--reader", choices=READERS, default=ReaderKind.auto.value, metavar="{auto,fast,scapy,tshark}",
                   help="the reader of our side of the comparison (default auto)")
    return parser


def _live_parser(sub: Any) -> None:
    """`teardown live`: sniff an interface, show connections as they end (issue 5)."""
    v = sub.add_parser("live", help="sniff an interface and judge connections as they end",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example:\n  sudo teardown live -i eth0 -f 'tcp port 443' --duration 60 "
                              "--write cap.pcapng --jsonl > flows.jsonl")
    v.add_argument("-i", "--interface", required=True, action="append", metavar="IFACE",
                   help="the interface to sniff; repeat for several (-i eth0 -i eth1), or `any` for every one. "
                        "Each frame keeps its interface: a segment seen on two is a copy, set aside as offline")
    v.add_argument("-f", "--filter", default="tcp", metavar="BPF",
                   help="capture filter, compiled by libpcap and run in the kernel (default: tcp)")
    v.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    v.add_argument("--count", type=int, metavar="PACKETS", help="stop after this many frames")
    v.add_argument("--write", metavar="FILE.pcapng", help="keep the raw frames as pcapng")
    v.add_argument("--write-size", type=float, metavar="MB",
                   help="with --write, rotate as tcpdump -C: FILE-000001.pcapng, FILE-000002.pcapng, ..., a new "
                        "file once the current one passes MB megabytes (10^6 bytes)")
    v.add_argument("--write-files", type=int, metavar="N",
                   help="with --write-size, keep only the newest N files (as tcpdump -W): the oldest is deleted")
    v.add_argument("-o", "--output", metavar="OUT",
                   help="at the stop, write the per-flow table (.csv, .json, .parquet) or the HTML report "
                        "(.html, which needs --write: it draws packets from that file)")
    v.add_argument("--format", choices=FORMATS, help="force the output format")
    v.add_argument("--every", type=float, metavar="SECONDS",
                   help="with -o: also rewrite the outputs every SECONDS while the watch runs, from what was judged "
                        "so far (each version whole; written by a child process, off the capture)")
    v.add_argument("--jsonl", action="store_true",
                   help="one JSON line per connection on stdout as its teardown completes, "
                        "further lines with \"update\": true when it changes")
    v.add_argument("--reader", choices=["scapy", "dumpcap", "pyshark"], default="scapy", metavar="{scapy,dumpcap}",
                   help="scapy: a packet socket through scapy (default); dumpcap: Wireshark's capture program into "
                        "a pipe (`pyshark`, its former name, still works)")
    v.add_argument("--quiet", action="store_true", help="no terminal view and no summary")
    v.add_argument("--os", choices=[p.value for p in OsProfile], default="linux",
                   help="OS profile of the hosts: TIME_WAIT length and RST handling (default linux)")
    v.add_argument("--time-wait", type=float, metavar="SECONDS", help="override the TIME_WAIT length")
    v.add_argument("--host-os", action="append", default=[], metavar="IP=PROFILE",
                   help="OS profile of one host (repeatable)")
    v.add_argument("--port-range", metavar="LOW-HIGH",
                   help="the clients' ephemeral port range (default: this host's net.ipv4.ip_local_port_range, "
                        "as the kernel's figures use; give the watched clients' own when they are other hosts)")
    v.add_argument("--no-kernel", action="store_true",
                   help="do not read this host's TCP sockets (netlink sock_diag, as ss does) to show the kernel's "
                        "TIME_WAIT and ephemeral ports beside the capture's")


def _diff_parser(sub: Any) -> None:
    """`teardown diff BEFORE AFTER`: what changed between two analyses of one service."""
    d = sub.add_parser("diff", help="compare two captures or saved analyses of one service: what changed",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Per host, server endpoint and client -> endpoint: connections, who closes\n"
                                   "first, close kinds, aborts, TIME_WAIT peak and total, port utilisation and\n"
                                   "time to exhaustion, before and after; the findings lost and gained.\n"
                                   "Biggest change first.",
                       epilog="example:\n  teardown diff monday.pcap tuesday.pcap\n"
                              "  teardown analyze monday.pcap -o monday.parquet\n"
                              "  teardown diff monday.parquet tuesday.pcap -o diff.html")
    for name, when in (("before", "earlier"), ("after", "later")):
        d.add_argument(name, metavar=name.upper(), help=f"the {when} capture (pcap, pcapng, gzipped or not), or an "
                       "analysis saved by teardown analyze -o NAME.parquet")
    d.add_argument("-o", "--output", metavar="OUT", help="also write the diff: .csv, .json, .jsonl or .parquet (one "
                   "row per scope, subject and figure: before, after, change) or .html (a page for a ticket)")
    d.add_argument("--quiet", action="store_true", help="no text on stdout but what was written")
    d.add_argument("--os", choices=[p.value for p in OsProfile],
                   help="OS profile of the hosts, for both (default linux, or what a saved analysis was made with)")
    d.add_argument("--time-wait", type=float, metavar="SECONDS", help="override the TIME_WAIT length, for both")
    d.add_argument("--host-os", action="append", default=[], metavar="IP=PROFILE",
                   help="OS profile of one host, for both (repeatable)")
    d.add_argument("--port-range", metavar="LOW-HIGH", help="the clients' ephemeral port range, for both "
                   "(default 32768-60999, or what a saved analysis was made with)")


def _options(args: argparse.Namespace) -> Options:
    host_os = []
    for item in args.host_os:
        host, _, profile = item.partition("=")
        if profile not in {p.value for p in OsProfile}:
            raise UsageError(f"--host-os {item}: expected IP=PROFILE with PROFILE one of "
                             + ", ".join(p.value for p in OsProfile))
        host_os.append((host, OsProfile(profile)))
    port_range = DEFAULT_PORT_RANGE if args.port_range is None else Options.parse_port_range(args.port_range)
    return Options(os=OsProfile(args.os), time_wait_s=args.time_wait, host_os=tuple(host_os), port_range=port_range)


def _is_directory(out: str) -> bool:
    return out.endswith(("/", "\\")) or Path(out).is_dir()


def _format_of(out: str, forced: str | None) -> str:
    if forced:
        return forced
    if _is_directory(out):
        return "parquet"
    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    if suffix in ("html", "htm"):
        return "html"
    raise UsageError(f"-o {out}: cannot tell the format from the suffix; use .csv, .json, .jsonl or .parquet, "
                     "or --format")


def table_paths(out: str, fmt: str) -> dict[str, str]:
    """Each table's file in directory `out`: NAME.FORMAT."""
    return {name: str(Path(out) / f"{name}.{fmt}") for name in TABLES}


def _files_of(out: str, fmt: str | None) -> list[str]:
    """The files `-o out` writes: a directory's table files (d/ may hold a capture d/flows.csv), else `out`."""
    return list(table_paths(out, fmt).values()) if fmt and _is_directory(out) else [out]


def write_tables(result: Analysis, out: str, fmt: str) -> list[str]:
    """Every table into directory `out` as NAME.FORMAT, renamed into place together once all
    are written (all or none); the paths written."""
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"-o {out}: cannot create the directory ({e.strerror or e})") from None
    paths = table_paths(out, fmt)
    with replaced_together() as outputs:
        for name, path in paths.items():
            if name == "flows":
                write_flows(result, path, fmt, into=outputs)
            else:
                _write_table(result, name, path, fmt, into=outputs)
    return list(paths.values())


def write_flows(result: Analysis, out: str, fmt: str, into: Outputs | None = None) -> None:
    """The per-flow table; as Parquet it also holds what `teardown report` needs to draw it.
    With `into`, the file appears with the rest of that set."""
    if fmt == "parquet":
        from .report import write_parquet

        write_parquet(result, out, into=into)
    else:
        _write_table(result, "flows", out, fmt, into=into)


def _write_table(result: Analysis, name: str, out: str, fmt: str, into: Outputs | None = None) -> None:
    from .report.files import write_table

    write_table(result.batches(name), out, fmt, into=into)


def _prepare_report() -> None:
    """The page's modules imported and its template compiled ahead of need; a failure is left
    for where they are used, which raises it again."""
    try:
        from .report.render import page_template

        page_template()
    except Exception:
        return


def _report_data(result: Analysis) -> ReportData:
    """The report's data (it reads the capture again for the ladders, once a run: drawn_of)."""
    from .report import from_analysis

    return from_analysis(result)


class _Progress:
    """A one-line progress bar on stderr, redrawn at most a few times a second."""

    def __init__(self) -> None:
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if (now - self.last < 0.25 and done < total) or not total:
            return
        self.last = now
        share = min(done / total, 1.0)
        bar = "#" * int(share * 30)
        size = f"{total / 1e6:,.1f} MB" if total >= 1e6 else f"{total / 1e3:,.0f} kB"
        sys.stderr.write(f"\r[{bar:<30}] {share:6.1%} of {size}")
        sys.stderr.flush()
        self.shown = True

    def note(self, line: str, file: Any = None) -> None:
        """A line of its own above the bar."""
        self.close()
        print(line, file=sys.stderr)

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 60 + "\r")


def main(argv: list[str] | None = None) -> int:
    # Arrow's default allocator keeps what the text columns' intermediate arrays freed: 65 MB
    # more at the peak of `-o flows.csv` on the benchmark, for no speed. Read when pyarrow loads.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    args = _parser().parse_args(argv)
    try:
        return {"report": _report, "live": _live, "crosscheck": _crosscheck,
                "diff": _diff}.get(args.command, _analyze)(args)
    except TeardownError as e:
        print(f"teardown: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("teardown: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`teardown analyze ... | head`): not an error of
        # ours. Point stdout at /dev/null so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _analyze(args: argparse.Namespace) -> int:
    fail_on = [f for f in args.fail_on.split(",") if f]
    unknown = [f for f in fail_on if f not in FAIL_ON]
    if unknown:
        raise UsageError(f"--fail-on {','.join(unknown)}: unknown finding; choose from {', '.join(FAIL_ON)}")
    fmt = _format_of(args.output, args.format) if args.output else None
    captures = expand(args.captures)
    html = args.output if fmt == "html" else _default_report(captures) if args.html else None
    for out in (args.output, html):
        if out:  # before anything is read
            refuse_inputs(out, _files_of(out, fmt), captures)
    kinds = _check_copies(args, captures, [w for out in (args.output, html) if out for w in _files_of(out, fmt)])
    options = replace(_options(args), reader=ReaderKind(args.reader))
    if args.points and len(captures) < 2:
        raise UsageError("--points: give the capture of each point (two files or more)")
    if args.points and (args.workers or args.scheduler):
        raise UsageError("--points analyzes in this process: leave out --workers and --scheduler")
    workers = 0 if args.points else _workers(args, captures)
    if html:  # the page's modules and template (0.25 s) on a second core while the capture is read
        threading.Thread(target=_prepare_report, daemon=True).start()
    progress = _Progress() if sys.stderr.isatty() else None
    try:
        if workers or args.scheduler:
            from .scale import analyze_on_cluster

            def tell(line: str) -> None:
                if not args.quiet:
                    (progress.note if progress else print)(f"teardown: {line}", file=sys.stderr)

            result = analyze_on_cluster(captures, options, workers, args.scheduler, progress, tell)
        else:
            result = analyze(captures, options, progress=progress, points=args.points)
    finally:
        if progress:
            progress.close()
    from .points import join_points

    result = join_points(result)
    written = []
    if args.output and fmt and fmt != "html":
        if not args.quiet:
            # The summary's host views first: their temporaries come and go before Arrow's
            # buffers and library are in memory, so the run peaks no higher than one without a file.
            _ = result.host_views
        if _is_directory(args.output):
            written = write_tables(result, args.output, fmt)
        else:
            write_flows(result, args.output, fmt)
            written = [args.output]
    done = [f"wrote {plural(len(result), 'flow')} to {args.output}" + (
        f" ({', '.join(Path(w).name for w in written)})" if len(written) > 1 else "")] if written else []
    copies = _write_copies(result, args.annotate, args.extract, kinds)
    done += list(copies.values())
    if not args.quiet:
        print(analysis_text(result, Style.of(sys.stdout), "\n".join(done)))
    if html:
        data = _report_data(result)
        if copies:  # the report says which files hold the frames for Wireshark, and what each holds
            data = replace(data, facts=replace(data.facts, for_wireshark={
                os.path.basename(path): line.split(": ", 1)[1] for path, line in copies.items()}))
        _write_report(data, html, captures, args.quiet)
    if args.quiet:  # otherwise the head of the summary said them, before any table
        for w in result.capture.warnings:
            print(f"warning: {w}", file=sys.stderr)
    hits = present(result, fail_on)
    if hits:
        print(f"teardown: findings present: {', '.join(hits)}", file=sys.stderr)
        return 1
    return 0


def _check_copies(args: argparse.Namespace, captures: list[str], other_outputs: list[str]) -> list[str]:
    """--annotate, --extract and --only checked before anything is read; --only's kinds."""
    if args.only is not None and not args.extract:
        raise UsageError(f"--only {args.only}: picks the connections of --extract; add --extract OUT.pcapng")
    copies = [(option, out) for option, out in (("--annotate", args.annotate), ("--extract", args.extract)) if out]
    if not copies:
        return []
    from .wireshark import check_formats, parse_kinds

    kinds = parse_kinds(args.only) if args.only is not None else []
    taken = list(other_outputs)
    for option, out in copies:
        if _is_directory(out) or out.lower().endswith((".pcap", ".cap", ".gz")):
            raise UsageError(f"{option} {out}: writes one pcapng file (only pcapng holds comments); name it .pcapng")
        refuse_inputs(out, [out], captures, option)
        if any(os.path.realpath(out) == os.path.realpath(t) for t in taken):
            raise UsageError(f"{option} {out}: another output of this run has that name; give each its own")
        taken.append(out)
    check_formats(captures, copies[0][0])
    return kinds


def _write_copies(result: Analysis, annotate: str | None, extract: str | None, kinds: list[str]) -> dict[str, str]:
    """The capture written back for Wireshark (--annotate, --extract): each file written, and
    a line telling it ("wrote PATH: what it holds")."""
    if not annotate and not extract:
        return {}
    from . import wireshark

    lines = {}
    if annotate:
        w = wireshark.annotate(result, annotate)
        lines[annotate] = (f"wrote {annotate}: the capture, {plural(w.frames, 'frame')}, with "
                           f"{plural(w.comments, 'frame comment')} ({_size(w.size)}){w.said_too()}")
    if extract:
        w = wireshark.extract(result, extract, kinds)
        which = f" ({', '.join(kinds)})" if kinds else ""
        lines[extract] = (f"wrote {extract}: {plural(w.frames, 'frame')} of the "
                          f"{plural(w.connections, 'connection')} with findings{which}, "
                          f"{plural(w.comments, 'frame comment')} ({_size(w.size)}){w.said_too()}")
    return lines


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"


def present(result: Analysis, names: list[str]) -> list[str]:
    """The finding kinds among `names` that this analysis found: as a finding, or as a flag on
    any flow (a scan's refused SYNs are told in the scan finding, and are still `refused`)."""
    if not names:
        return []
    kinds = {f.kind.value for f in result.host_views.findings}
    flagged = {k.value for k, test in FLOW_FLAGS.items() if k.value in names and np.asarray(test(result.columns)).any()}
    return [n for n in names if n in kinds or n in flagged]


# When a local Dask cluster beats one process, from bench/scale.py's runs (README "Many files,
# big files"): a cluster of n workers takes CLUSTER_START_S + (serial + parallel / n) seconds per
# GB, one process ONE_PROCESS_S_PER_GB (it judges on a second core meanwhile: engine.py). Each
# figure is the one of the two measured sets that favours one process, so the model errs
# towards it: on 2 cores a cluster never pays, on 4 from about 1.6 GB.
CLUSTER_START_S = 2.0
CLUSTER_SERIAL_S_PER_GB = 2.1
CLUSTER_PARALLEL_S_PER_GB = 11.2
ONE_PROCESS_S_PER_GB = 6.8
CLUSTER_MARGIN = 1.1  # the cluster must win by 10 %: a default never runs slower than one process
CLUSTER_FROM_BYTES = 256 << 20  # below this the cluster's start alone outweighs any gain
SEGMENT_BYTES_PER_CAPTURE_BYTE = 1.2  # measured: 110 bytes held per segment of ~96 bytes on disk


def cluster_pays(cores: int, total_bytes: int) -> bool:
    """Whether a local cluster of `cores` workers is predicted to beat one process by the margin."""
    gb = total_bytes / 1e9
    cluster = CLUSTER_START_S + (CLUSTER_SERIAL_S_PER_GB + CLUSTER_PARALLEL_S_PER_GB / max(cores, 1)) * gb
    return total_bytes >= CLUSTER_FROM_BYTES and cluster * CLUSTER_MARGIN < ONE_PROCESS_S_PER_GB * gb


def _workers(args: argparse.Namespace, captures: list[str]) -> int:
    """Worker processes to start: --workers, else all cores where the model says a cluster pays
    and the input fits in memory; 0: this process."""
    if args.workers is not None and args.scheduler:
        raise UsageError("give --workers or --scheduler, not both")
    if args.workers is not None:
        if args.workers < 0:
            raise UsageError(f"--workers {args.workers}: give 0 (this process) or more")
        return int(args.workers)
    if args.scheduler:
        return 0
    total = sum(os.path.getsize(c) for c in captures if os.path.isfile(c))
    cores = os.cpu_count() or 1
    if not cluster_pays(cores, total):
        return 0
    # A cluster holds every segment between its two rounds (~1.2x the capture's bytes), where
    # one process streams in bounded memory: past half the free memory, one process is safer.
    import psutil  # type: ignore[import-untyped]

    return cores if total * SEGMENT_BYTES_PER_CAPTURE_BYTE < psutil.virtual_memory().available / 2 else 0


GLOB_CHARS = "*?["


def expand(captures: list[str]) -> list[str]:
    """Each argument that names no file but holds a glob pattern, replaced by the files it
    matches (sorted); local paths with glob, URLs with fsspec. A pattern matching nothing is an error."""
    import glob

    out: list[str] = []
    for c in captures:
        if not any(ch in c for ch in GLOB_CHARS) or os.path.exists(c):
            out.append(c)
            continue
        if "://" in c:
            from fsspec.core import url_to_fs  # type: ignore[import-untyped]

            fs, inner = url_to_fs(c)
            protocol = c.split("://", 1)[0]
            found = [f"{protocol}://{m}" for m in sorted(fs.glob(inner))]
        else:
            found = sorted(m for m in glob.glob(c) if os.path.isfile(m))
        if not found:
            raise UsageError(f"{c}: matches no file")
        out += found
    return out


def _live(args: argparse.Namespace) -> int:
    """`teardown live`: sniff until a stop, then write what was asked and the summary."""
    from .live import LiveSettings, analysis_of, run, summary_lines
    from .live.kernel import local_port_range

    fmt = _format_of(args.output, args.format) if args.output else None
    if fmt == "html" and not args.write:
        raise UsageError(f"-o {args.output}: the report draws each flow's packets from the capture; "
                         "add --write FILE.pcapng")
    if args.output and _is_directory(args.output):
        raise UsageError(f"-o {args.output}: give a file (.csv, .json, .jsonl, .parquet or .html), not a directory")
    if args.output and args.write:
        refuse_inputs(args.output, [args.output], [args.write])
    options = _options(args)
    if args.port_range is None:  # the watched host is most often this one: its own range
        options = replace(options, port_range=local_port_range())
    settings = LiveSettings(iface=",".join(args.interface), ifaces=tuple(args.interface),
                            write_rotation=_rotation(args, fmt), bpf=args.filter, duration_s=args.duration, count=args.count,
                            write=args.write, jsonl=args.jsonl, reader=args.reader, keep_rows=bool(args.output),
                            view=not args.quiet, kernel=not args.no_kernel)
    every = _rewriter(args, fmt, options)
    try:
        result = run(settings, options, sys.stdout, sys.stderr, every)
    finally:
        if every is not None:
            every.close()  # before the final outputs: no older version lands over them
    text = sys.stderr if args.jsonl else sys.stdout  # stdout is for the JSON lines
    analysis = analysis_of(result, options) if args.output else None
    if analysis is not None and fmt:
        print(write_live_outputs(analysis, args.output, fmt, args.write), file=text)
    if every is not None and not args.quiet:
        print(every.summary(), file=text)
    if not args.quiet:
        if analysis is not None:
            print("\n".join(findings_lines(analysis, Style.of(text))), file=text)
            print(file=text)
        print("\n".join(summary_lines(result)), file=text)
    if result.counts.kernel_drops or result.counts.analyzer_drops:
        print(f"warning: {result.counts.kernel_drops:,} frames dropped by the kernel, "
              f"{result.counts.analyzer_drops:,} by the analyzer: verdicts resting on them may be wrong",
              file=sys.stderr)
    print(f"teardown live: stopped: {result.stop_reason}", file=sys.stderr)
    return 0


def _rotation(args: argparse.Namespace, fmt: str | None) -> Rotation | None:
    """--write-size and --write-files, checked."""
    from .read.rotation import Rotation

    rotation = Rotation.of(args.write_size, args.write_files)
    if rotation is not None and not args.write:
        raise UsageError(f"--write-size {args.write_size:g}: rotates the files of --write; add --write FILE.pcapng")
    if rotation is not None and rotation.files is not None and fmt == "html":
        raise UsageError(f"-o {args.output}: the report draws packets by their number in the whole capture, whose "
                         f"first files --write-files {rotation.files} deletes; write a table (.parquet) instead")
    return rotation


def write_live_outputs(analysis: Analysis, out: str, fmt: str, capture: str | None) -> str:
    """`teardown live -o`: the per-flow table or the report (its ladders drawn from the --write
    file `capture`, as far as it is written), at the stop and for --every; the line telling it."""
    if fmt == "html":
        assert capture is not None
        size = _write_html(_report_data(analysis), out, [capture])
        return f"wrote the report of {plural(len(analysis), 'flow')} to {out} ({size / 1e6:,.1f} MB)"
    if fmt == "parquet" and not capture:  # no capture to draw ladders from: the plain table
        _write_table(analysis, "flows", out, fmt)
    else:
        write_flows(analysis, out, fmt)
    return f"wrote {plural(len(analysis), 'flow')} to {out}"


def _rewriter(args: argparse.Namespace, fmt: str | None, options: Options) -> Rewriter[LiveResult] | None:
    """--every's rewriter of the outputs, or None; a usage error without -o."""
    if args.every is None:
        return None
    if not args.output or fmt is None:
        raise UsageError(f"--every {args.every:g}: rewrites the outputs while the watch runs; add -o OUT")
    if not args.every > 0:
        raise UsageError(f"--every must be a positive number of seconds, not {args.every:g}")
    from .live import analysis_of
    from .live.every import Rewriter

    out, capture = args.output, args.write

    def write(result: LiveResult) -> str:
        return write_live_outputs(analysis_of(result, options), out, fmt, capture)

    return Rewriter(args.every, write)


def _write_html(data: ReportData, out: str, inputs: list[str]) -> int:
    from .report import write_html

    return write_html(data, out, inputs)


def _crosscheck(args: argparse.Namespace) -> int:
    """`teardown crosscheck CAPTURE`: exit 1 when a disagreement with tshark is unexplained."""
    from .crosscheck import crosscheck

    result = crosscheck(args.capture, Options(reader=ReaderKind(args.reader)))
    print(result.text())
    return 1 if result.unexplained else 0


def _report(args: argparse.Namespace) -> int:
    """`teardown report RESULT.parquet`: the HTML report of a saved analysis."""
    from .report import read_parquet

    out = args.output or _default_report([args.result])
    refuse_inputs(out, [out], [args.result])
    _write_report(read_parquet(args.result), out, [args.result], quiet=False)
    return 0


def _diff(args: argparse.Namespace) -> int:
    """`teardown diff BEFORE AFTER`: the diff on stdout, and in -o OUT."""
    from .compare import DIFF_COLUMNS, compare, diff_columns, diff_lines
    from .compare.text import hanging_indent
    from .report.diff_inputs import snapshots

    inputs = [args.before, args.after]
    if args.output:  # before anything is read
        refuse_inputs(args.output, [args.output], inputs)
    fmt = _diff_format(args.output) if args.output else None
    # Settings the command line gave apply to both; the others are a saved analysis's own, or defaults.
    given = {field for field, value in (("os", args.os), ("time_wait_s", args.time_wait),
                                        ("host_os", args.host_os or None), ("port_range", args.port_range))
             if value is not None}
    options = _options(argparse.Namespace(**{**vars(args), "os": args.os or OsProfile.linux.value}))
    diff = compare(*snapshots(inputs, options, given))
    if not args.quiet:
        style = Style.of(sys.stdout)
        for line in diff_lines(diff):
            body = line.lstrip(" ")
            lead = line[:len(line) - len(body)]
            print("\n".join(style.wrap(body, hanging_indent(line), lead)))
    if fmt == "html":
        from .report.diff_page import write_diff_html

        size = write_diff_html(diff, args.output, inputs)
        print(f"wrote the diff page to {args.output} ({_size(size)})")
    elif fmt:
        from .report.files import write_table
        from .rows import arrow_table

        table = arrow_table(diff_columns(diff), DIFF_COLUMNS)
        write_table(table, args.output, fmt)
        print(f"wrote the diff, {plural(table.num_rows, 'row')}, to {args.output}")
    return 0


def _diff_format(out: str) -> str:
    if _is_directory(out):
        raise UsageError(f"-o {out}: the diff is one file; name it .csv, .json, .jsonl, .parquet or .html")
    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix in FORMATS or suffix == "html":
        return suffix
    if suffix == "htm":
        return "html"
    raise UsageError(f"-o {out}: cannot tell the format from the suffix; use .csv, .json, .jsonl, .parquet or .html")


def _default_report(inputs: list[str]) -> str:
    from .report import default_path

    return default_path(inputs)


def _write_report(data: ReportData, out: str, inputs: list[str], quiet: bool) -> None:
    from .report import write_html

    size = write_html(data, out, inputs)
    if not quiet:
        print(f"wrote the report of {plural(data.flows.num_rows, 'flow')} to {out} ({size / 1e6:,.1f} MB)")


if __name__ == "__main__":
    sys.exit(main())
