"""`--annotate` and `--extract` keep every frame byte for byte (bytes, time to the nanosecond,
lengths, interface, link type), read inputs in chunks, refuse what they cannot write in one line
and copy a damaged input up to the damage; crafted pcapng files with big-endian sections, Simple
and obsolete Packet Blocks keep their blocks. Truth: tshark and capinfos (wireshark_tools.py)."""

from __future__ import annotations

import functools
import gzip
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from teardown import cli

from .conftest import CAPTURES
from .wireshark_tools import copies, seen  # noqa: F401  (fixtures)
from .wireshark_tools import (Copy, KEPT, MADE, SAMPLES, Seen, TSHARK, capinfos, capinfos_value, copy_of, editcap,
    in_parallel, is_pcap, teardown_ok, teardown_process, tshark, tshark_ok)


def test_annotate_keeps_every_frame_byte_for_byte(copies: list[Copy], seen: Seen) -> None:
    """Every sample (pcap, pcapng, .pcap.gz, every link type of captures/encapsulated), a
    nanosecond pcap in both byte orders, a gzipped pcapng and a pcapng whose frames have comments
    of their own: the copy has as many frames, and each has the same bytes (MD5), time to the
    nanosecond, original and captured length, interface and link type; the comments a frame
    already had are kept, after teardown's. A pcapng input's blocks are all there, as they were
    but for the comments given (blocks_kept)."""
    assert len(copies) == len(SAMPLES) + MADE and len(SAMPLES) >= 60
    wrong = []
    for copy in copies:
        given, written = seen.frames[copy.source], seen.frames[copy.annotated]
        assert given, copy.source
        if len(given) != len(written):
            wrong.append(f"{copy.source.name}: {len(given)} frames in, {len(written)} out")
            continue
        for a, b in zip(given, written):
            if a.kept != b.kept:
                wrong.append(f"{copy.source.name} frame {a.number}: {dict(zip(KEPT, a.kept))} became "
                             f"{dict(zip(KEPT, b.kept))}")
                break
            if b.comments[len(b.comments) - len(a.comments):] != a.comments:
                wrong.append(f"{copy.source.name} frame {a.number}: comments {a.comments} became {b.comments}")
                break
    assert not wrong, "\n".join(wrong)
    for copy in copies:  # a pcapng input's blocks, by the block walker of test 6
        if not copy.pcap_input:
            written = seen.frames[copy.annotated]
            assert blocks_kept(blocks_of(copy.source), blocks_of(copy.annotated)) == sum(
                len(f.comments) > len(g.comments) for f, g in zip(written, seen.frames[copy.source])), copy.source
    ns = next(seen.frames[c.annotated] for c in copies if c.source.name == "lost_final_ack_ns.pcap")
    assert ns[0].kept[0].endswith("123"), "the nanosecond input's own nanoseconds"
    commented = next(seen.frames[c.annotated] for c in copies if c.source.name == "tw_assassination_commented.pcapng")
    assert commented[0].comments[-1] == "a comment of the input" and len(commented[0].comments) == 2
    assert commented[20].comments[-1] == "another, on the RST" and "[assassination]" in commented[20].comments[0]


def test_annotate_keeps_interfaces_and_link_types(copies: list[Copy]) -> None:
    """capinfos of each input and its copy (two runs of capinfos in all) agree on the link
    type, the frame count, the span, and every interface (name, link type, snaplen, time
    precision, statistics, frames): only the file's name, size, type and hashes, the section
    comment, and for a pcap input the header's snaplen and the if_tsresol and if_fcslen options
    now written ('Time resolution', 'FCS length': what the pcap header said) may differ; the
    pcap whose header says 4 bytes of FCS has an interface saying so."""
    sources, annotated = capinfos([c.source for c in copies]), capinfos([c.annotated for c in copies])
    ignored = ("File name:", "File size:", "File type:", "SHA256:", "SHA1:", "RIPEMD160:", "Capture comment:")
    wrong = []
    for copy in copies:
        def kept(lines: list[str]) -> list[str]:
            lines = [line for line in lines if not line.startswith(ignored)]
            if copy.pcap_input:
                lines = [line for line in lines if not line.startswith("Packet size limit:")
                         and not line.strip().startswith(("Time resolution = ", "FCS length = "))]
            return lines

        a, b = kept(sources[str(copy.source)]), kept(annotated[str(copy.annotated)])
        if a != b:
            wrong.append(f"{copy.source.name}: {sorted(set(a) ^ set(b))}")
        assert capinfos_value(annotated[str(copy.annotated)], "File type").endswith("pcapng")
    assert not wrong, "\n".join(wrong)
    two = annotated[str(next(c.annotated for c in copies if c.source.name == "two_interfaces.pcapng"))]
    assert capinfos_value(two, "Number of interfaces in file") == "2"
    fcs = annotated[str(next(c.annotated for c in copies if c.source.name == "refused_fcs.pcap"))]
    assert [line.strip() for line in fcs if "FCS length" in line] == ["FCS length = 4"]
    assert not [line for c in copies if c.source.name != "refused_fcs.pcap" for line in annotated[str(c.annotated)]
                if "FCS length" in line]


def test_chunk_boundaries_cut_no_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       copies: list[Copy], seen: Seen) -> None:
    """Read in chunks of 4 KiB, the least allowed (a test seam: no option sets it), a pcap
    and a pcapng of thousands of frames have blocks and records across hundreds of chunk
    boundaries: the copy is the same, frame for frame, as the input, and has the comments it has
    when read in one chunk."""
    original = cli._options

    def small_chunks(args: Any) -> Any:
        from dataclasses import replace
        return replace(original(args), chunk_bytes=4096)

    monkeypatch.setattr(cli, "_options", small_chunks)
    pcapng = tmp_path / "tw_narrow_port_range.pcapng"
    editcap("-F", "pcapng", CAPTURES / "tw_narrow_port_range.pcap.gz", pcapng)
    sources = [CAPTURES / "tw_keepalive.pcap.gz", pcapng,
               next(c.source for c in copies if c.source.name == "tw_assassination_commented.pcapng")]
    outs = [tmp_path / f"{s.name}.pcapng" for s in sources]
    for source, out in zip(sources, outs):
        teardown_ok(source, "--quiet", "--annotate", out)
    given = [seen.frames[sources[0]], tshark_ok(pcapng), seen.frames[sources[2]]]
    written = in_parallel([functools.partial(tshark_ok, o) for o in outs])
    for source, a, b in zip(sources, given, written):
        assert len(a) == len(b) > 20, source
        assert [f.kept for f in a] == [f.kept for f in b], source
    assert written[2][20].comments[-1] == "another, on the RST"
    for source, b in ((sources[0], written[0]), (sources[2], written[2])):
        assert [f.comments for f in b] == [f.comments for f in seen.frames[copy_of(copies, source.name).annotated]]



# ---- 5. refusals and damage ------------------------------------------------------------------

REFUSALS = [
    # (name, the arguments after the input ({IN}: the input, {DIR}: the run's directory), words on stderr)
    ("output is the input", ["--annotate", "{IN}"], "--annotate {IN}: is an input of this run"),
    ("output is the input by a symlink", ["--extract", "{DIR}/link.pcapng"], "is an input of this run"),
    ("output is the input by another path", ["--annotate", "{DIR}/sub/../input.pcapng"], "is an input of this run"),
    ("a .pcap name", ["--annotate", "{DIR}/out.pcap"], "writes one pcapng file (only pcapng holds comments)"),
    ("a .pcap.gz name", ["--extract", "{DIR}/out.pcap.gz"], "writes one pcapng file"),
    ("a directory", ["--annotate", "{DIR}/sub"], "--annotate {DIR}/sub: writes one pcapng file"),
    ("a directory, by its slash", ["--extract", "{DIR}/new/"], "writes one pcapng file"),
    ("both copies one file", ["--annotate", "{DIR}/same.pcapng", "--extract", "{DIR}/same.pcapng"],
     "another output of this run has that name"),
    ("a copy over the table", ["-o", "{DIR}/flows.csv", "--annotate", "{DIR}/flows.csv"],
     "another output of this run has that name"),
    ("--only without --extract", ["--annotate", "{DIR}/out.pcapng", "--only", "abort"],
     "--only abort: picks the connections of --extract"),
    ("--only of an unknown kind", ["--extract", "{DIR}/out.pcapng", "--only", "abort,teardown"],
     "--only abort,teardown: unknown finding kind teardown; choose from assassination, fin-retransmission"),
    ("--only of no kind", ["--extract", "{DIR}/out.pcapng", "--only", ","], "no kind given"),
]


def test_refusals_are_one_line_and_leave_nothing(tmp_path: Path) -> None:
    """What the copies cannot be, refused before anything is read, by the command in a process
    of its own: exit 2, one line on stderr ("teardown: ..." naming the option and why), no
    traceback, nothing on stdout, no file written or left behind (no temporary either), the input
    as it was. Inputs teardown reads through tshark (a snoop file and a "modified pcap" file,
    made by editcap -F snoop / -F modpcap) are refused for a copy, saying how to convert them."""
    runs: list[tuple[str, Path, Path, list[str | Path], str]] = []
    for i, (name, args, words) in enumerate(REFUSALS):
        run_dir = tmp_path / f"run{i}"
        (run_dir / "sub").mkdir(parents=True)
        given = run_dir / "input.pcapng"
        shutil.copy(CAPTURES / "two_interfaces.pcapng", given)
        (run_dir / "link.pcapng").symlink_to(given)
        fill = {"{IN}": str(given), "{DIR}": str(run_dir)}

        def filled(text: str) -> str:
            for key, value in fill.items():
                text = text.replace(key, value)
            return text

        runs.append((name, run_dir, given, [given, *map(filled, args)], filled(words)))
    for fmt in ("snoop", "modpcap"):
        run_dir = tmp_path / fmt
        run_dir.mkdir()
        given = run_dir / f"input.{fmt}"
        editcap("-F", fmt, CAPTURES / "lost_final_ack.pcap", given)
        words = f"--extract: {given} is not pcap or pcapng (teardown reads it through tshark)"
        runs.append((fmt, run_dir, given, [given, "--extract", run_dir / "out.pcapng"], words))
    before = {r[1]: sorted(os.listdir(r[1])) for r in runs}
    sums = {r[2]: r[2].read_bytes() for r in runs}
    done = in_parallel([functools.partial(teardown_process, *r[3]) for r in runs])
    for (name, run_dir, given, _, words), ran in zip(runs, done):
        assert ran.code == 2, (name, ran)
        assert ran.err.count("\n") == 1 and ran.err.startswith("teardown: ") and words in ran.err, (name, ran.err)
        assert "Traceback" not in ran.err and ran.out == "", name
        assert sorted(os.listdir(run_dir)) == before[run_dir], (name, os.listdir(run_dir))
        assert not (run_dir / "sub").exists() or os.listdir(run_dir / "sub") == [], name
        assert given.read_bytes() == sums[given], name


def damaged_inputs(tmp: Path) -> list[tuple[Path, str]]:
    """Samples damaged as files are: a pcap cut inside a record (head -c), a pcapng cut inside a
    block, a pcap whose fifth record header says 4 GB (a corrupt length), a .pcap.gz whose gzip
    stream stops early, and a pcapng whose 30th packet block ends with a length not its own; and
    the words teardown's warning must have."""
    cut_pcap, cut_pcapng = tmp / "cut.pcap", tmp / "cut.pcapng"
    cut_pcap.write_bytes((CAPTURES / "tw_assassination.pcap").read_bytes()[:1800])
    cut_pcapng.write_bytes((CAPTURES / "two_interfaces.pcapng").read_bytes()[:6300])
    corrupt = tmp / "corrupt.pcap"
    data = bytearray((CAPTURES / "tw_assassination.pcap").read_bytes())
    at = 24
    for _ in range(4):
        at += 16 + struct.unpack_from("<I", data, at + 8)[0]
    struct.pack_into("<I", data, at + 8, 0xFFFFFF00)
    corrupt.write_bytes(data)
    cut_gz = tmp / "cut.pcap.gz"
    cut_gz.write_bytes((CAPTURES / "tw_keepalive.pcap.gz").read_bytes()[:40000])
    trailer = tmp / "bad_trailer.pcapng"
    data = bytearray((CAPTURES / "two_interfaces.pcapng").read_bytes())
    at, packets = 0, 0
    while packets < 30:  # the 30th Enhanced Packet Block's trailing length made 4 more than its leading one
        kind, total = struct.unpack_from("<II", data, at)
        packets += kind == EPB
        at += total
    struct.pack_into("<I", data, at - 4, total + 4)
    trailer.write_bytes(data)
    return [(cut_pcap, "file ends inside a record (truncated)"), (cut_pcapng, "file ends inside a block (truncated)"),
            (corrupt, "corrupt record length 4,294,967,040"), (cut_gz, "gzip data cut short"),
            (trailer, "corrupt packet block")]


def test_a_damaged_input_is_copied_up_to_the_damage(tmp_path: Path) -> None:
    """A damaged input: the command warns (naming the file, the damage and the frames before
    it) and exits 0; the copy holds exactly the frames tshark reads before the damage (tshark
    says the file is cut short or corrupt), byte for byte, and the extract is written too."""
    damaged = damaged_inputs(tmp_path)
    made = []
    for path, words in damaged:
        annotated, extracted = tmp_path / f"{path.name}.pcapng", tmp_path / f"{path.name}.extract.pcapng"
        ran = teardown_ok(path, "--quiet", "--annotate", annotated, "--extract", extracted)
        (warning,) = [line for line in ran.err.splitlines() if line.startswith(f"warning: {path}: ")]
        assert words in warning and "analyzed up to there" in warning, warning
        made.append((path, annotated, extracted, warning))
    views = in_parallel([functools.partial(tshark, p, pcap_input=pcap)
                         for m in made for p, pcap in ((m[0], is_pcap(m[0])), (m[1], False), (m[2], False))])
    kept = 0
    for i, (path, _, _, warning) in enumerate(made):
        given, copy, extract = views[3 * i: 3 * i + 3]
        assert given.returncode != 0 and ("cut short" in given.stderr or "corrupt" in given.stderr), given.stderr
        assert copy.returncode == 0 and extract.returncode == 0, (copy.stderr, extract.stderr)
        assert 0 < len(given.frames) and [f.kept for f in copy.frames] == [f.kept for f in given.frames], path
        assert f"after {len(given.frames):,} frames" in warning, warning
        assert {f.kept for f in extract.frames} <= {f.kept for f in given.frames}
        kept += len(extract.frames)
    assert kept > 0

# ---- 6. big-endian sections, Simple and obsolete Packet Blocks (crafted) -----------------------

SHB, IDB, OPB, SPB, NRB, ISB, EPB = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6


def pcap_records(path: Path) -> list[tuple[int, int, bytes, int]]:
    """A little-endian microsecond pcap file's records: (seconds, microseconds, frame, original length)."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    out, at = [], 24
    while at < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, at)
        out.append((sec, usec, data[at + 16: at + 16 + incl], orig))
        at += 16 + incl
    return out


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def options(order: str, *pairs: tuple[int, bytes]) -> bytes:
    return b"".join(option(order, c, v) for c, v in pairs) + option(order, 0, b"") if pairs else b""


def block(order: str, kind: int, body: bytes) -> bytes:
    return struct.pack(order + "II", kind, 12 + len(body)) + body + struct.pack(order + "I", 12 + len(body))


def padded(frame: bytes) -> bytes:
    return frame + b"\0" * (-len(frame) % 4)


def crafted_pcapng(path: Path) -> dict[str, int]:
    """A pcapng file as no sample is (crafted by hand): a big-endian section (its header's
    section length given, an shb_userappl option; one interface at 10^-9 s with a name) holding
    the 11 frames of lost_final_ack.pcap, the first with an epb_flags option, the client's FIN
    (frame 8) in a Simple Packet Block, then interface statistics and a name resolution block; then a
    little-endian section (microseconds) with the 2 frames of refused.pcap, the SYN in an
    obsolete Packet Block that has a comment of its own. Returns where things are."""
    be, le = ">", "<"
    body = [block(be, IDB, struct.pack(be + "HHI", 1, 0, 0) + options(be, (2, b"be0"), (9, bytes([9]))))]
    for i, (sec, usec, frame, orig) in enumerate(pcap_records(CAPTURES / "lost_final_ack.pcap"), 1):
        if i == 8:
            body.append(block(be, SPB, struct.pack(be + "I", orig) + padded(frame)))
            continue
        ns = sec * 10**9 + usec * 1000 + 7  # nanoseconds of their own
        extra = options(be, (2, struct.pack(be + "I", 1))) if i == 1 else b""  # epb_flags: inbound
        body.append(block(be, EPB, struct.pack(be + "IIIII", 0, ns >> 32, ns & 0xFFFFFFFF, len(frame), orig)
                          + padded(frame) + extra))
    body.append(block(be, ISB, struct.pack(be + "III", 0, 0, 0) + options(be, (4, struct.pack(be + "Q", 11)))))
    name = b"server.example\0"  # a Name Resolution Block: one IPv4 record, then the end of records
    body.append(block(be, NRB, struct.pack(be + "HH", 1, 4 + len(name)) + bytes([198, 18, 0, 2]) + padded(name)
                      + struct.pack(be + "HH", 0, 0)))
    rest = b"".join(body)
    first_section_rest = rest
    shb_options = options(be, (4, b"crafted by tests/test_wireshark.py"))
    section = block(be, SHB, struct.pack(be + "IHHq", 0x1A2B3C4D, 1, 0, len(first_section_rest)) + shb_options)
    second = [block(le, SHB, struct.pack(le + "IHHq", 0x1A2B3C4D, 1, 0, -1)),
              block(le, IDB, struct.pack(le + "HHI", 1, 0, 65535))]
    for i, (sec, usec, frame, orig) in enumerate(pcap_records(CAPTURES / "refused.pcap"), 1):
        us = sec * 10**6 + usec
        if i == 1:
            second.append(block(le, OPB, struct.pack(le + "HHIIII", 0, 0, us >> 32, us & 0xFFFFFFFF, len(frame), orig)
                                + padded(frame) + options(le, (1, b"a comment of the input"))))
        else:
            second.append(block(le, EPB, struct.pack(le + "IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(frame), orig)
                                + padded(frame)))
    path.write_bytes(section + rest + b"".join(second))
    return {"spb_frame": 8, "flagged_frame": 1, "opb_frame": 12, "frames": 13}


@dataclass(frozen=True)
class Block:
    kind: int
    order: str
    raw: bytes

    def packet_parts(self) -> tuple[bytes, bytes]:
        """A packet block's head and frame (padded), and its options."""
        if self.kind == SPB:
            return self.raw[:-4], b""
        caplen = struct.unpack_from(self.order + "I", self.raw, 20)[0]
        at = 28 + caplen + (-caplen % 4)
        return self.raw[8:at], self.raw[at:-4]


def blocks_of(path: Path) -> list[Block]:
    """A pcapng file's blocks (gzipped or not), each section in its own byte order (this walker is
    the test's own)."""
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    out, at, order = [], 0, "<"
    while at < len(data):
        if struct.unpack_from("<I", data, at)[0] == SHB:
            order = "<" if struct.unpack_from("<I", data, at + 8)[0] == 0x1A2B3C4D else ">"
        kind, total = struct.unpack_from(order + "II", data, at)
        out.append(Block(kind, order, data[at: at + total]))
        at += total
    return out


def option_list(order: str, raw: bytes) -> list[tuple[int, bytes]]:
    out, at = [], 0
    while at + 4 <= len(raw):
        code, length = struct.unpack_from(order + "HH", raw, at)
        out.append((code, raw[at + 4: at + 4 + length]))
        at += 4 + length + (-length % 4)
        if code == 0:
            break
    return out


def blocks_kept(before: list[Block], after: list[Block]) -> int:
    """Check that `after`, a copy of the pcapng file of blocks `before`, has every block where it
    was in its section's byte order: the section headers the same but for their length, unknown
    (-1), and the file's first, teardown's comment put first among its options; each packet block
    the same, or the same but for a comment put first among its options; every other block
    (interfaces, statistics, Simple Packet Blocks, ...) byte for byte. Returns the blocks given a
    comment."""
    assert [(b.kind, b.order) for b in before] == [(b.kind, b.order) for b in after]
    commented = 0
    for i, (a, b) in enumerate(zip(before, after)):
        if a.kind == SHB:
            assert b.raw[8:16] == a.raw[8:16] and struct.unpack_from(b.order + "q", b.raw, 16)[0] == -1
            mine, theirs = option_list(b.order, b.raw[24:-4]), option_list(a.order, a.raw[24:-4])
            if i == 0:
                assert mine[0][0] == 1 and mine[0][1].decode().startswith("teardown ")
                assert mine[1:] == theirs or (not theirs and mine[1:] == [(0, b"")]), (i, mine)
            else:
                assert mine == theirs
        elif a.kind in (EPB, OPB):
            (head_a, opts_a), (head_b, opts_b) = a.packet_parts(), b.packet_parts()
            assert head_a == head_b, f"packet block {i} changed"
            mine, theirs = option_list(b.order, opts_b), option_list(a.order, opts_a)
            if mine != theirs:
                commented += 1
                assert mine[0][0] == 1 and (mine[1:] == theirs or (not theirs and mine[1:] == [(0, b"")])), (i, mine)
        else:
            assert a.raw == b.raw, f"block {i} (type {a.kind:#x}) changed"
    return commented


def test_big_endian_sections_and_simple_packet_blocks(tmp_path: Path) -> None:
    """A crafted file (crafted_pcapng): tshark reads the same frames from it and its copy (bytes,
    nanosecond times, lengths, interfaces, link types); every block is where it was, in its
    section's byte order: interface descriptions and statistics, the name resolution block and the Simple
    Packet Block byte for byte, each section header the same but for its length, now unknown
    (-1), and, the first, teardown's comment put first among its options; each packet block
    given a comment is the same but for that comment, first among its options (epb_flags and the
    block's own comment kept after it). The client's FIN, in the Simple Packet Block, cannot hold
    one: it has none, and the command says which frame went without. Wireshark's file-pcapng
    dissector reads the copy's structure without complaint."""
    crafted = tmp_path / "crafted.pcapng"
    where = crafted_pcapng(crafted)
    copy = tmp_path / "copy.pcapng"
    ran = teardown_ok(crafted, "--annotate", copy)
    assert f"1 frame in Simple Packet Blocks, which hold no comment, went without ({where['spb_frame']})" in ran.out
    structure = [str(TSHARK), "-r", str(copy), "-X", "read_format:MIME Files Format", "-T", "fields",
                 "-E", "occurrence=a", "-e", "pcapng.block.type", "-e", "pcapng.section_header.byte_order_magic",
                 "-e", "pcapng.section_header.section_length", "-e", "_ws.expert", "-e", "_ws.malformed"]
    given, written, dissected = in_parallel([
        functools.partial(tshark_ok, crafted), functools.partial(tshark_ok, copy),
        functools.partial(subprocess.run, structure, capture_output=True, text=True)])
    assert len(given) == len(written) == where["frames"]
    assert [f.kept for f in given] == [f.kept for f in written]
    assert given[0].kept[0].endswith("007") and given[-1].kept[0].endswith("000")
    for a, b in zip(given, written):
        assert b.comments[len(b.comments) - len(a.comments):] == a.comments
    assert not written[where["spb_frame"] - 1].comments
    assert written[0].comments[0].startswith("198.18.0.1:56712>198.18.0.2:8080/0: client's SYN")
    assert written[9].comments[0].startswith(
        "198.18.0.1:56712>198.18.0.2:8080/0: [fin-retransmission] server's FIN sent again")
    ours, theirs = written[where["opb_frame"] - 1].comments  # the section's interface is the file's second: c1/
    assert ours.endswith("198.18.0.1:43472>198.18.0.2:8080/0: [refused] client's SYN, refused: the server answered "
                         "RST+ACK (nothing listening)") and theirs == "a comment of the input"
    types, magics, lengths, expert, malformed = dissected.stdout.rstrip("\n").split("\t")
    assert dissected.returncode == 0 and not expert and not malformed, dissected.stdout
    assert [m.replace(":", "") for m in magics.split(",")] == ["1a2b3c4d", "4d3c2b1a"]  # big-endian, then little
    assert lengths.split(",") == ["-1", "-1"]

    before, after = blocks_of(crafted), blocks_of(copy)
    assert [b.kind for b in before].count(SPB) == 1 and before[0].order == ">" and before[-1].order == "<"
    assert blocks_kept(before, after) == sum(bool(f.comments) for f in written)


def test_extract_of_a_crafted_file_keeps_its_sections(tmp_path: Path) -> None:
    """--extract of the crafted file (crafted_pcapng) with --only refused holds the refused
    connection's two frames of the little-endian section ("original frame 12/13: "), and every
    block that is not a packet of both sections; with --only fin-retransmission, the 11 frames of
    the big-endian section, the Simple Packet Block's among them as it was."""
    crafted = tmp_path / "crafted.pcapng"
    crafted_pcapng(crafted)
    runs = {only: tmp_path / f"{only}.pcapng" for only in ("refused", "fin-retransmission")}
    for only, out in runs.items():
        teardown_ok(crafted, "--quiet", "--extract", out, "--only", only)
    given, refused, resent = in_parallel([functools.partial(tshark_ok, p) for p in (crafted, *runs.values())])
    assert [f.kept for f in refused] == [f.kept for f in given[11:13]]
    assert [f.comments[0].split(": ", 1)[0] for f in refused] == ["original frame 12", "original frame 13"]
    assert [f.kept for f in resent] == [f.kept for f in given[:11]] and not resent[7].comments
    before = [(b.kind, b.order) for b in blocks_of(crafted)]
    for out, frames in ((runs["refused"], range(1, 12)), (runs["fin-retransmission"], range(12, 14))):
        packets = [i for i, (kind, _) in enumerate(before) if kind in (EPB, OPB, SPB)]
        dropped = {packets[n - 1] for n in frames}
        assert [(b.kind, b.order) for b in blocks_of(out)] == [k for i, k in enumerate(before) if i not in dropped]
