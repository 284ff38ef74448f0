"""Shared by the tests of `teardown analyze CAP --annotate OUT.pcapng` and `--extract OUT.pcapng
[--only KIND,...]` (test_wireshark_frames.py, test_wireshark_comments.py): tshark, capinfos and
editcap, the command as a user types it, the truth files, and the annotated copy of every sample
(session fixtures, made once for both files). The truth is taken from outside teardown:

* what a copy must keep of every frame (its bytes, time to the nanosecond, lengths, interface and
  link type) is what tshark and capinfos say of the input and of the copy;
* which frames carry which words is judged by tshark's own view of the frames (SYN, FIN, RST,
  `tcp.analysis.retransmission`) and the samples' truth files (captures/*.truth.json: the
  verdicts each sample was made to show);
* which frames an extract holds is what tshark selects in the input with the `display_filter` of
  the flagged connections' rows of `-o flows.csv` (test_display_filters.py checks that column
  against tshark), the connections being those the truth files flag;
* the file's own structure (section headers, their byte order and length, block types, options)
  is read by Wireshark's file-pcapng dissector (`-X read_format:MIME Files Format`) and, for raw
  bytes, by the small block walker here.

tshark is run once per file (a few at a time), never once per frame; the copies of all the
samples are read by one tshark, one file after another.
"""


from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from teardown import cli

from .conftest import CAPTURES

TSHARK, EDITCAP, CAPINFOS = (shutil.which(tool) for tool in ("tshark", "editcap", "capinfos"))
pytestmark = pytest.mark.skipif(None in (TSHARK, EDITCAP, CAPINFOS),
                                reason="tshark, editcap and capinfos are needed (apt-get install tshark)")

SAMPLES = sorted(p for p in CAPTURES.rglob("*") if p.name.endswith((".pcap", ".pcapng", ".pcap.gz")))

# What a copy keeps of each frame, as tshark prints it: the time to the nanosecond (tshark 4
# prints 9 digits whatever the file's resolution), the original and captured lengths, the
# interface, the link type (wiretap's encapsulation) and an MD5 of the captured bytes.
KEPT = ("frame.time_epoch", "frame.len", "frame.cap_len", "frame.interface_id", "frame.encap_type",
        "frame.md5_hash")
# tshark's view of a frame's TCP segment, dumped with the inputs: the innermost of several
# occurrences (a tunnel's inner header) is the connection's.
TCP = ("ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "tcp.srcport", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack",
       "tcp.flags.fin", "tcp.flags.reset", "tcp.seq_raw", "tcp.analysis.retransmission")
AGGREGATE = "\x1f"  # between several values of one field (a frame's comments): in no comment
ORIGINAL = re.compile(r"^original frame (\d+)(?: \((.+?) frame (\d+)\))?: ")


# ---- what tshark, capinfos and editcap say ----------------------------------------------------

@dataclass(frozen=True)
class Frame:
    number: int
    kept: tuple[str, ...]  # KEPT's values
    comments: tuple[str, ...]  # its packet comments, in the file's order
    extra: tuple[str, ...] = ()  # the values of the dump's `extra` fields

    @property
    def comment(self) -> str:
        return "\n".join(self.comments)

    def tcp(self, name: str) -> str:
        """A TCP field's value (TCP's order), its innermost occurrence; "" where absent."""
        return self.extra[TCP.index(name)].split(AGGREGATE)[-1]

    @property
    def source(self) -> str:
        return self.tcp("ipv6.src") or self.tcp("ip.src")

    @property
    def ends(self) -> set[tuple[str, str]]:
        """The segment's two ends, (address, port) each."""
        destination = self.tcp("ipv6.dst") or self.tcp("ip.dst")
        return {(self.source, self.tcp("tcp.srcport")), (destination, self.tcp("tcp.dstport"))}

    def flag(self, name: str) -> bool:
        return self.tcp(f"tcp.flags.{name}") in ("1", "True")


@dataclass(frozen=True)
class Dump:
    frames: list[Frame]
    returncode: int
    stderr: str


def tshark(path: Path | str, extra: Sequence[str] = (), display_filter: str | None = None,
           pcap_input: bool = False) -> Dump:
    """One tshark run over `path`: every frame's KEPT fields, comments and `extra` fields. A
    pcap file has one interface, which tshark leaves unnumbered: `pcap_input` numbers it 0, as
    pcapng numbers the first interface of a section."""
    cmd = [str(TSHARK), "-r", str(path), "-n", "-o", "frame.generate_md5_hash:TRUE", "-T", "fields",
           "-E", "occurrence=a", "-E", f"aggregator={AGGREGATE}", "-e", "frame.number"]
    for field in (*KEPT, "frame.comment", *extra):
        cmd += ["-e", field]
    if display_filter is not None:
        cmd += ["-Y", display_filter]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    frames = []
    for line in run.stdout.splitlines():
        number, *values = line.split("\t")
        kept, comment, rest = values[:len(KEPT)], values[len(KEPT)], values[len(KEPT) + 1:]
        if pcap_input and kept[3] == "":
            kept[3] = "0"
        frames.append(Frame(int(number), tuple(kept), tuple(comment.split(AGGREGATE)) if comment else (),
                            tuple(rest)))
    return Dump(frames, run.returncode, run.stderr)


def tshark_ok(path: Path | str, extra: Sequence[str] = (), display_filter: str | None = None,
              pcap_input: bool = False) -> list[Frame]:
    dump = tshark(path, extra, display_filter, pcap_input)
    assert dump.returncode == 0, (path, dump.stderr)
    return dump.frames


def selected(path: Path | str, display_filter: str) -> list[int]:
    """The numbers of the frames of `path` Wireshark's `display_filter` selects."""
    return [f.number for f in tshark_ok(path, display_filter=display_filter)]


def in_parallel(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run tshark (and the like) two or four at a time: each run is mostly tshark's start."""
    with ThreadPoolExecutor(max(2, min(4, os.cpu_count() or 2))) as pool:
        return list(pool.map(lambda call: call(), calls))


def is_pcap(path: Path | str) -> bool:
    """A classic pcap file (gzipped or not), as its magic says."""
    opener: Callable[..., Any] = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        return fh.read(4) in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")


def capinfos(paths: Sequence[Path | str]) -> dict[str, list[str]]:
    """capinfos -M of several files in one run: each file's lines, keyed by its name as given."""
    run = subprocess.run([str(CAPINFOS), "-M", *map(str, paths)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out: dict[str, list[str]] = {}
    current: list[str] = []
    for line in run.stdout.splitlines():
        if line.startswith("File name:"):
            current = out.setdefault(line.split(":", 1)[1].strip(), [])
        current.append(line)
    return out


def section_comments(info: list[str]) -> list[str]:
    """The section comments (capinfos "Capture comment"), one per comment, in file order."""
    return [line.split(":", 1)[1].strip() for line in info if line.startswith("Capture comment:")]


def capinfos_value(info: list[str], name: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in info if line.startswith(name + ":"))


def editcap(*args: str | Path) -> None:
    run = subprocess.run([str(EDITCAP), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


# ---- the command -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def teardown(*args: str | Path) -> Ran:
    """`teardown analyze ARGS...` as a user types it, in this process (teardown.cli.main)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["analyze", *map(str, args)])
    return Ran(code, out.getvalue(), err.getvalue())


def teardown_ok(*args: str | Path) -> Ran:
    ran = teardown(*args)
    assert ran.code == 0, ran.err
    return ran


def teardown_process(*args: str | Path) -> Ran:
    """`teardown analyze ARGS...` in a process of its own: what a shell shows."""
    run = subprocess.run([sys.executable, "-m", "teardown.cli", "analyze", *map(str, args)], capture_output=True,
                         text=True, timeout=120)
    return Ran(run.returncode, run.stdout, run.stderr)


def rows_of(table: Path) -> list[dict[str, str]]:
    with open(table, newline="") as fh:
        return list(csv.DictReader(fh))


# ---- the truth files -------------------------------------------------------------------------

def truth(sample: Path | str) -> dict[str, Any]:
    name = Path(sample).name
    stem = name[: -len(".pcap.gz")] if name.endswith(".pcap.gz") else Path(name).stem
    with open(Path(sample).with_name(stem + ".truth.json")) as fh:
        found: dict[str, Any] = json.load(fh)
    return found


def truth_kinds(flow: dict[str, Any]) -> set[str]:
    """The finding kinds (report/flags.py names) the truth file's verdicts give a connection, by
    the rules of docs/rules.md: the sample was made to show them."""
    kind = flow.get("close_kind")
    out = set()
    if flow.get("tw_assassination"):
        out.add("assassination")
    if flow.get("fin_retransmissions_client", 0) + flow.get("fin_retransmissions_server", 0) > 0:
        out.add("fin-retransmission")
    if flow.get("reuses_tuple_in_time_wait"):
        out.add("reuse-in-time-wait")
    if flow.get("reuse_verdict") == "rejected":
        out.add("reuse-rejected")
    if kind == "simultaneous":
        out.add("simultaneous")
    if kind in ("rst", "fin_then_rst"):
        out.add("abort")
    if flow.get("half_close"):
        out.add("half-close")
    if flow.get("data_after_fin") == "new_data":
        out.add("data-after-fin")
    if flow.get("active_closer") == "server" and kind in ("fin", "fin_then_rst"):
        out.add("server-close")
    if kind in ("refused", "handshake_reset", "unanswered"):
        out.add(kind.replace("_", "-"))
    return out


def flow_id(flow: dict[str, Any]) -> str:
    """How teardown's tables and comments name a connection: its 4-tuple and incarnation (1, 2,
    ... in the truth files, 0, 1, ... in teardown's names)."""
    def end(ip: str, port: int) -> str:
        return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"

    carrier = f"vlan{flow['vlan']}/" if "vlan" in flow else ""
    return (f"{carrier}{end(flow['client_ip'], flow['client_port'])}>{end(flow['server_ip'], flow['server_port'])}/"
            f"{flow.get('incarnation', 1) - 1}")


def row_of(rows: list[dict[str, str]], flow: dict[str, Any]) -> dict[str, str]:
    """The table row of a truth flow."""
    found = [r for r in rows if r["flow_id"] == flow_id(flow)]
    assert len(found) == 1, (flow, [r["flow_id"] for r in rows])
    return found[0]


# ---- 1. frames byte for byte -----------------------------------------------------------------

@dataclass(frozen=True)
class Copy:
    source: Path
    annotated: Path
    pcap_input: bool


MADE = 5  # inputs made_inputs makes


def made_inputs(tmp: Path) -> list[Path]:
    """Inputs no sample is: a nanosecond pcap with nanoseconds of its own (editcap -F nsecpcap
    -t 0.000000123: each time moved by 123 ns), the same byte-swapped by hand (crafted: a
    big-endian nanosecond pcap), a gzipped pcapng (gzip of two_interfaces.pcapng), a pcapng
    whose frames already hold comments (editcap -a), and a pcap whose header says its frames end
    in a 4-byte frame check sequence (crafted: libpcap's FCS bits set in its link type)."""
    ns = tmp / "lost_final_ack_ns.pcap"
    editcap("-F", "nsecpcap", "-t", "0.000000123", CAPTURES / "lost_final_ack.pcap", ns)
    swapped = tmp / "lost_final_ack_ns_big_endian.pcap"
    swapped.write_bytes(byte_swapped_pcap(ns.read_bytes()))
    zipped = tmp / "two_interfaces.pcapng.gz"
    zipped.write_bytes(gzip.compress((CAPTURES / "two_interfaces.pcapng").read_bytes()))
    commented = tmp / "tw_assassination_commented.pcapng"
    editcap("-F", "pcapng", "-a", "1:a comment of the input", "-a", "21:another, on the RST",
            CAPTURES / "tw_assassination.pcap", commented)
    fcs = tmp / "refused_fcs.pcap"
    data = bytearray((CAPTURES / "refused.pcap").read_bytes())
    struct.pack_into("<I", data, 20, struct.unpack_from("<I", data, 20)[0] | 0x04000000 | 2 << 28)  # 2 x 16 bits
    fcs.write_bytes(data)
    return [ns, swapped, zipped, commented, fcs]


def byte_swapped_pcap(data: bytes) -> bytes:
    """A little-endian pcap file as its big-endian twin: every header field swapped, frames as they are."""
    head = struct.unpack_from("<IHHiIII", data)
    out = [struct.pack(">IHHiIII", *head)]
    at = 24
    while at + 16 <= len(data):
        record = struct.unpack_from("<IIII", data, at)
        out.append(struct.pack(">IIII", *record) + data[at + 16: at + 16 + record[2]])
        at += 16 + record[2]
    return b"".join(out)


@pytest.fixture(scope="session")
def copies(tmp_path_factory: pytest.TempPathFactory) -> list[Copy]:
    """Every sample of captures/ and captures/encapsulated/ and the made inputs, each annotated
    by `teardown analyze SAMPLE --annotate OUT.pcapng`."""
    tmp = tmp_path_factory.mktemp("annotated")
    out = []
    for i, source in enumerate([*SAMPLES, *made_inputs(tmp)]):
        annotated = tmp / f"{i:02d}-{source.name}.pcapng"
        teardown_ok(source, "--quiet", "--annotate", annotated)
        out.append(Copy(source, annotated, is_pcap(source)))
    return out


@dataclass(frozen=True)
class Seen:
    """tshark's view of the inputs and their copies."""

    frames: dict[Path, list[Frame]]  # of each input (with its TCP fields) and each copy
    whole: Path  # every copy, one after another
    before: dict[Path, int]  # frames of `whole` before each copy's


@pytest.fixture(scope="session")
def seen(copies: list[Copy], tmp_path_factory: pytest.TempPathFactory) -> Seen:
    """tshark's view of every input and every copy. The inputs are read one tshark each (two or
    four at a time); the copies, all pcapng, are read by one tshark from their concatenation (a
    pcapng file is a run of sections: one file of them all is a valid pcapng file), and split
    again by the inputs' frame counts. tshark 4.0 numbers the interfaces of each section from 0
    (frame.interface_id); a later tshark may number them over the file, so the copies of inputs
    with several interfaces are also read alone for it, and the others (one interface, as
    capinfos says of them and their copies) have it 0."""
    inputs = in_parallel([functools.partial(tshark_ok, c.source, TCP, pcap_input=c.pcap_input) for c in copies])
    out: dict[Path, list[Frame]] = {c.source: frames for c, frames in zip(copies, inputs)}
    whole = tmp_path_factory.mktemp("concatenated") / "every_copy.pcapng"
    with open(whole, "wb") as fh:
        for c in copies:
            fh.write(c.annotated.read_bytes())
    read = tshark_ok(whole)
    if len(read) != sum(map(len, inputs)):  # some copy has frames too many or too few: which one
        for c, frames in zip(copies, in_parallel([functools.partial(tshark_ok, c.annotated) for c in copies])):
            assert len(frames) == len(out[c.source]), f"{c.source.name}: {len(out[c.source])} in, {len(frames)} out"
    infos = capinfos([c.annotated for c in copies])
    several = [c for c in copies if capinfos_value(infos[str(c.annotated)], "Number of interfaces in file") != "1"]
    alone = dict(zip(several, in_parallel([functools.partial(tshark_ok, c.annotated) for c in several])))
    assert len(several) >= 4  # two_interfaces, mixed_links, unknown_link, the gzipped two_interfaces
    before = {}
    at = 0
    for c, given in zip(copies, inputs):
        mine = read[at: at + len(given)]
        before[c.annotated] = at
        at += len(given)
        interfaces = [f.kept[3] for f in alone[c]] if c in alone else ["0"] * len(mine)
        out[c.annotated] = [Frame(f.number - at + len(given), (*f.kept[:3], i, *f.kept[4:]), f.comments, f.extra)
                            for f, i in zip(mine, interfaces)]
    return Seen(out, whole, before)


def copy_of(copies: list[Copy], name: str) -> Copy:
    return next(c for c in copies if c.source.name == name)
