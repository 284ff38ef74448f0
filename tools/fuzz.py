"""Fuzz teardown's readers, engine and report with damaged captures.

    python tools/fuzz.py                      # 2,000 mutants, the analysis on each, the report on every 10th
    python tools/fuzz.py --mutants 100000     # before a release (README, "Fuzzing")
    python tools/fuzz.py --asan               # the C steps built with AddressSanitizer

Seeds are every capture under captures/ and a few made here to reach the pcapng structures the
samples lack (two sections in opposite byte orders, several interfaces with timestamp options,
a simple packet block, a gzipped and a big-endian nanosecond pcap). Each mutant is one seed
changed by one to four mutations: bytes flipped, the file cut short, a 32-bit field set to an
edge value, or (knowing the format) a pcap record header's or a pcapng block's fields, options,
length or order changed; sometimes the result is gzipped and the compressed bytes damaged too.

The mutants run in worker processes, so that a crash in C (or an AddressSanitizer report)
costs one worker, not the run. A mutant passes when the analysis returns or raises a
CaptureError (the one line a user sees) and the report renders; anything else (another
exception, a numpy warning, a worker that dies) is written to --out with the mutant's bytes
and the traceback, and the run exits 1.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
EDGE_32 = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFF, 0x10000, 12, 16, 28, 32]
EDGE_64 = [0, 1, 2**63 - 1, -(2**63), 2**62, -(2**62), 10**13, -(10**11)]
SHB, IDB, EPB, SPB = 0x0A0D0D0A, 1, 6, 3


# ------------------------------------------------------------------------------------ seeds
def _pcap_records(data: bytes) -> list[tuple[float, bytes, int]]:
    """(time, frame, wire length) of each record of a little-endian microsecond pcap."""
    out, off = [], 24
    while off + 16 <= len(data):
        sec, usec, caplen, wirelen = struct.unpack_from("<IIII", data, off)
        out.append((sec + usec / 1e6, data[off + 16: off + 16 + caplen], wirelen))
        off += 16 + caplen
    return out


def _block(kind: int, body: bytes, order: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack(order + "II", kind, len(body) + 12) + body + struct.pack(order + "I", len(body) + 12)


def _option(code: int, value: bytes, order: str) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _section(records: list[tuple[float, bytes, int]], order: str, tsresol: int = 6, tsoffset: int = 0,
             interfaces: int = 1) -> bytes:
    """One pcapng section: its header, `interfaces` Ethernet interfaces (if_tsresol, if_tsoffset,
    a comment), the records spread over them as enhanced packet blocks, one simple packet block."""
    out = _block(SHB, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1) + _option(1, b"fuzz seed", order)
                 + _option(0, b"", order), order)
    for i in range(interfaces):
        options = _option(9, bytes([tsresol]), order) + _option(14, struct.pack(order + "q", tsoffset), order)
        out += _block(IDB, struct.pack(order + "HHI", 1, 0, 262144) + _option(2, f"if{i}".encode(), order)
                      + options + _option(0, b"", order), order)
    for n, (ts, frame, wirelen) in enumerate(records):
        units = round((ts - tsoffset) * 10**tsresol)
        out += _block(EPB, struct.pack(order + "IIIII", n % interfaces, units >> 32, units & 0xFFFFFFFF,
                                       len(frame), wirelen) + frame, order)
    if records:
        out += _block(SPB, struct.pack(order + "I", len(records[-1][1])) + records[-1][1], order)
    return out


def made_seeds() -> dict[str, bytes]:
    """Captures that reach the pcapng and pcap structures the samples do not have."""
    records = _pcap_records((CAPTURES / "server_first_close.pcap").read_bytes())
    half = len(records) // 2
    big_nano = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1) + b"".join(
        struct.pack(">IIII", int(ts), round(ts % 1 * 1e9), len(f), w) + f for ts, f, w in records)
    plain = (CAPTURES / "server_first_close.pcap").read_bytes()
    return {
        "two_sections.pcapng": _section(records[:half], "<") + _section(records[half:], ">"),
        "interfaces_nanoseconds.pcapng": _section(records, "<", tsresol=9, tsoffset=3600, interfaces=3),
        "big_endian_nanoseconds.pcap": big_nano,
        "gzipped.pcap.gz": gzip.compress(plain, mtime=0),
    }


def seeds() -> dict[str, bytes]:
    found = {str(p.relative_to(CAPTURES)): p.read_bytes() for p in sorted(CAPTURES.rglob("*"))
             if p.is_file() and (".pcap" in p.name)}
    return found | made_seeds()


# -------------------------------------------------------------------------------- mutations
def flip_bytes(data: bytearray, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 8)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)


def cut_short(data: bytearray, rng: random.Random) -> None:
    del data[rng.randrange(len(data) + 1):]


def edge_word(data: bytearray, rng: random.Random) -> None:
    if len(data) >= 4:
        at = rng.randrange(len(data) - 3)
        data[at: at + 4] = struct.pack(rng.choice("<>") + "I", rng.choice(EDGE_32))


def pcap_record_field(data: bytearray, rng: random.Random) -> None:
    """A record header's time, captured or wire length set to an edge value (little-endian pcap)."""
    if data[:4] != b"\xd4\xc3\xb2\xa1":
        return edge_word(data, rng)
    offsets, off = [], 24
    while off + 16 <= len(data):
        offsets.append(off)
        off += 16 + int.from_bytes(data[off + 8: off + 12], "little")
    if offsets:
        at = rng.choice(offsets) + 4 * rng.randrange(4)
        data[at: at + 4] = struct.pack("<I", rng.choice(EDGE_32))


def _blocks(data: bytearray) -> list[tuple[int, int, int, str]]:
    """(offset, type, total length, byte order) of each pcapng block up to the first bad one."""
    out, off, order = [], 0, "<"
    while off + 12 <= len(data):
        kind = struct.unpack_from("<I", data, off)[0]
        if kind == SHB and len(data) >= off + 12:
            order = "<" if struct.unpack_from("<I", data, off + 8)[0] == 0x1A2B3C4D else ">"
        total = struct.unpack_from(order + "I", data, off + 4)[0]
        if total < 12 or off + total > len(data):
            break
        out.append((off, struct.unpack_from(order + "I", data, off)[0], total, order))
        off += total
    return out


def pcapng_block(data: bytearray, rng: random.Random) -> None:
    """A pcapng block changed knowing its layout: its length, its type, an EPB's interface or
    timestamp, an IDB's timestamp resolution or offset; or a block dropped or repeated."""
    blocks = _blocks(data)
    if not blocks:
        return edge_word(data, rng)
    off, kind, total, order = rng.choice(blocks)
    choice = rng.randrange(7)
    if choice == 0:
        struct.pack_into(order + "I", data, off + 4, rng.choice(EDGE_32 + [total + 4, total - 4]))
    elif choice == 1:
        struct.pack_into(order + "I", data, off, rng.choice([SHB, IDB, EPB, SPB, 2, 5, 0x0BAD, 0xFFFFFFFF]))
    elif choice == 2 and kind == EPB and total >= 28:
        struct.pack_into(order + "I", data, off + 8, rng.choice(EDGE_32))  # interface id
    elif choice == 3 and kind == EPB and total >= 28:
        struct.pack_into(order + "q", data, off + 12, rng.choice(EDGE_64))  # timestamp (high, low words)
    elif choice == 4 and kind == IDB:
        _set_idb_option(data, off, total, order, rng)
    elif choice == 5:
        del data[off: off + total]
    else:
        data[off + total: off + total] = data[off: off + total]


def _set_idb_option(data: bytearray, off: int, total: int, order: str, rng: random.Random) -> None:
    at = off + 16
    while at + 4 <= off + total - 4:
        code, length = struct.unpack_from(order + "HH", data, at)
        if code == 9 and length >= 1:
            data[at + 4] = rng.randrange(256)
            return
        if code == 14 and length == 8:
            struct.pack_into(order + "q", data, at + 4, rng.choice(EDGE_64))
            return
        if code == 0:
            return
        at += 4 + (length + 3) // 4 * 4


def gzip_damaged(data: bytearray, rng: random.Random) -> None:
    packed = bytearray(gzip.compress(bytes(data), compresslevel=1, mtime=0))
    if rng.random() < 0.5:
        cut_short(packed, rng)
    else:
        flip_bytes(packed, rng)
    data[:] = packed


MUTATIONS: list[Callable[[bytearray, random.Random], None]] = [
    flip_bytes, flip_bytes, cut_short, edge_word, pcap_record_field, pcapng_block, pcapng_block, gzip_damaged]


def mutant(seed: bytes, rng: random.Random) -> bytes:
    data = bytearray(gzip.decompress(seed) if seed[:2] == b"\x1f\x8b" else seed)
    for _ in range(rng.randint(1, 4)):
        mutation = rng.choice(MUTATIONS)
        if mutation is gzip_damaged:
            mutation(data, rng)
            break  # what is left to damage is the compressed stream
        mutation(data, rng)
    return bytes(data)


# ----------------------------------------------------------------------------------- worker
def worker() -> None:
    """Read 'PATH\\tREPORT' lines; answer each with one JSON line (outcome, detail)."""
    import traceback
    import warnings

    warnings.simplefilter("error")  # numpy's overflow and invalid-value warnings are bugs here
    import teardown
    from teardown.errors import CaptureError
    from teardown.report import from_analysis, render_html

    for line in sys.stdin:
        path, report = line.rstrip("\n").split("\t")
        outcome, detail = "ok", ""
        try:
            result = teardown.analyze(path, chunk_bytes=4096)
            if report == "1":
                render_html(from_analysis(result))
        except CaptureError as e:
            outcome, detail = "capture_error", str(e)
        except BaseException:  # noqa: BLE001  what is looked for: anything but the above
            outcome, detail = "failure", traceback.format_exc()
        print(json.dumps([outcome, detail]), flush=True)


class Worker:
    """One worker process; restarted when a mutant kills it."""

    def __init__(self, python_path: str, env: dict[str, str]) -> None:
        self.args, self.env = [sys.executable, __file__, "--worker"], env | {"PYTHONPATH": python_path}
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=self.env)

    def run(self, path: Path, report: bool) -> tuple[str, str]:
        assert self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(f"{path}\t{int(report)}\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline()
        except BrokenPipeError:
            answer = ""
        if answer:
            outcome, detail = json.loads(answer)
            return outcome, detail
        dead = self.proc
        code = dead.wait()
        stderr = dead.stderr.read() if dead.stderr else ""
        self.start()
        return "crash", f"worker ended with {code} (a negative number is the signal)\n{stderr[-20000:]}"

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()


def asan_build(out: Path) -> tuple[str, dict[str, str]]:
    """A copy of the package whose C steps are built with AddressSanitizer, and the environment
    that loads its runtime into the (uninstrumented) Python."""
    tree = out / "asan"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(ROOT / "teardown", tree / "teardown", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copy(ROOT / "setup.py", tree)
    flags = "-fsanitize=address -fno-omit-frame-pointer -g -O1"
    subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=tree, check=True,
                   env=os.environ | {"CFLAGS": flags, "LDFLAGS": "-fsanitize=address"},
                   stdout=subprocess.DEVNULL)
    runtime = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True,
                             check=True).stdout.strip()
    # Python's own allocations are not ours to judge: leaks off; stop at the first error.
    return str(tree), {"LD_PRELOAD": runtime, "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mutants", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1, help="the random seed: a run is repeatable")
    parser.add_argument("--report-every", type=int, default=10, help="render the report for every Nth mutant")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)), help="worker processes")
    parser.add_argument("--asan", action="store_true", help="build the C steps with AddressSanitizer first")
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"), help="where failing mutants are kept")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return 0
    python_path, env = str(ROOT), dict(os.environ)
    if args.asan:
        python_path, extra = asan_build(args.out)
        env |= extra
    rng = random.Random(args.seed)
    pool = seeds()
    names = sorted(pool)
    workers = [Worker(python_path, env) for _ in range(args.jobs)]
    counts: Counter[str] = Counter()
    failures = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="teardown-fuzz-") as scratch:
        from concurrent.futures import ThreadPoolExecutor

        def one(i: int, w: Worker, name: str, data: bytes) -> tuple[int, str, str, str, bytes]:
            path = Path(scratch) / f"{i % len(workers)}{''.join(Path(name).suffixes) or '.pcap'}"
            path.write_bytes(data)
            outcome, detail = w.run(path, i % args.report_every == 0)
            return i, name, outcome, detail, data

        with ThreadPoolExecutor(len(workers)) as threads:
            for start in range(0, args.mutants, len(workers)):
                batch = []
                for k, w in enumerate(workers):
                    i = start + k
                    if i >= args.mutants:
                        break
                    name = rng.choice(names)
                    batch.append(threads.submit(one, i, w, name, mutant(pool[name], rng)))
                for future in batch:
                    i, name, outcome, detail, data = future.result()
                    counts[outcome] += 1
                    if outcome in ("failure", "crash"):
                        failures += 1
                        args.out.mkdir(parents=True, exist_ok=True)
                        stem = f"{i:06d}-{Path(name).name}"
                        (args.out / f"{stem}.bin").write_bytes(data)
                        (args.out / f"{stem}.txt").write_text(f"seed {name}, mutant {i}\n{detail}")
                if start and start % 1000 < len(workers):
                    print(f"{start:,} mutants, {dict(counts)}", file=sys.stderr, flush=True)
    for w in workers:
        w.stop()
    elapsed = time.monotonic() - started
    print(f"{args.mutants:,} mutants of {len(pool)} seeds in {elapsed:,.0f} s"
          f"{' (AddressSanitizer)' if args.asan else ''}: {counts['ok']:,} analyzed, "
          f"{counts['capture_error']:,} refused in one line, {failures:,} failures"
          + (f" (kept in {args.out}/)" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
