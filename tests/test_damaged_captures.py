"""Damaged and impossible captures, each found by fuzzing: read up to the damage with a warning
saying where, or read whole with a warning saying what could not be true, and never a traceback.
Every capture is built here: gzip cut short or corrupt, pcapng sections in both byte orders,
interface ids, timestamp resolutions and offsets, original lengths and times that cannot be."""

from __future__ import annotations

import gzip
import struct
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import teardown
from teardown.carriers import Contexts
from teardown.decode import Packets, decode
from teardown.dissect import have_tshark
from teardown.errors import CaptureError
from teardown.read import ORDER_JITTER_S, FrameBatch, open_capture
from teardown.read.ranges import open_range

from .conftest import CAPTURES
from .crafted import C_ISN, S_ISN, back, seg
from .test_bad_input import run_cli

BURST = CAPTURES / "tw_server_burst.pcap.gz"  # 1.9 MB of pcap: several 32 KiB gzip pieces
SAMPLE = CAPTURES / "server_first_close.pcap"
T0 = 1_700_000_000.0
needs_tshark = pytest.mark.skipif(not have_tshark(), reason="needs tshark (CI installs it)")
FAST_READERS = ("fast", "scapy")  # our record walker, then each decoder


# ---- crafting --------------------------------------------------------------------------------

def conversation() -> list[Any]:
    """A handshake and a close, one frame a millisecond from T0."""
    c, s = C_ISN, S_ISN
    return [seg(T0, "S", c), back(T0 + .001, "SA", s, c + 1), seg(T0 + .002, "A", c + 1, s + 1),
            seg(T0 + .003, "FA", c + 1, s + 1), back(T0 + .004, "FA", s + 1, c + 2), seg(T0 + .005, "A", c + 2, s + 2)]


def block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack(order + "II", btype, len(body) + 12) + body + struct.pack(order + "I", len(body) + 12)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def shb(order: str) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order: str, *options: bytes) -> bytes:
    opts = b"".join(options) + (option(order, 0, b"") if options else b"")
    return block(order, 1, struct.pack(order + "HHI", 1, 0, 0) + opts)


def epb(order: str, frame: Any, iface: int = 0, units: int | None = None, wirelen: int | None = None) -> bytes:
    """An Enhanced Packet Block of a scapy frame, timestamped in microseconds (its own time unless
    `units` is given)."""
    raw = bytes(frame)
    units = int(round(float(frame.time) * 1e6)) if units is None else units
    return block(order, 6, struct.pack(order + "IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(raw),
                                       len(raw) if wirelen is None else wirelen) + raw)


def pcapng(path: Path, *sections: tuple[str, list[Any]]) -> Path:
    """One section per (byte order, frames), each with one Ethernet interface."""
    path.write_bytes(b"".join(shb(o) + idb(o) + b"".join(epb(o, f) for f in frames) for o, frames in sections))
    return path


def pcap(path: Path, frames: list[Any]) -> Path:
    from scapy.utils import wrpcap

    wrpcap(str(path), frames)
    return path


def times(path: Path) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(frame numbers, timestamps) as our record walker reads them."""
    batches = list(open_capture(str(path), 1 << 16))
    return np.concatenate([b.frame for b in batches]), np.concatenate([b.ts for b in batches])


def flows(path: Path | str, reader: str = "fast") -> Any:
    return teardown.analyze(str(path), reader=reader).flows.drop(columns="capture_file")


def warnings_of(path: Path, reader: str = "fast") -> list[str]:
    return teardown.analyze(str(path), reader=reader).capture.warnings


# ---- gzip ------------------------------------------------------------------------------------

def plain_prefix(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "prefix.pcap"
    path.write_bytes(data)
    return path


def test_gzip_cut_short_is_read_up_to_the_cut(tmp_path: Path) -> None:
    """Cut at 60 %: everything decompressed before the cut is read (GzipFile threw it away and
    read 0 frames), and the damage is placed in both the compressed and decompressed file."""
    gz = BURST.read_bytes()
    cut = tmp_path / "cut.pcap.gz"
    cut.write_bytes(gz[: len(gz) * 6 // 10])
    inflated = zlib.decompressobj(31).decompress(cut.read_bytes())  # all a cut stream gives
    result = teardown.analyze(str(cut))
    expected = teardown.analyze(str(plain_prefix(tmp_path, inflated)))
    assert result.capture.frames == expected.capture.frames > 10_000
    assert result.flows.drop(columns="capture_file").equals(expected.flows.drop(columns="capture_file"))
    damage = result.capture.files[0].damage
    assert damage is not None and damage.offset <= len(inflated)
    assert f"gzip data cut short at compressed byte {len(cut.read_bytes()):,}" in str(damage)
    assert "the decompressed capture ends inside a record" in str(damage)


def test_gzip_damaged_mid_piece_keeps_every_byte_before_the_damage(tmp_path: Path) -> None:
    """A stored deflate block whose length check fails, 20,000 bytes into the stream: those
    20,000 bytes are read, though zlib refuses the piece of compressed bytes holding both."""
    raw = gzip.decompress(BURST.read_bytes())
    deflate = zlib.compressobj(0, zlib.DEFLATED, 31)  # stored blocks: their headers are easy to find
    gz = bytearray(deflate.compress(raw[:20_000]) + deflate.flush(zlib.Z_FULL_FLUSH) + deflate.compress(raw[20_000:])
                   + deflate.flush())
    second = 10 + 5 + 20_000 + 5  # gzip header, the first block, the flush's empty block
    assert struct.unpack_from("<H", gz, second + 1)[0] == 65_531  # the next block: damage its NLEN
    gz[second + 3] ^= 0xFF
    bad = tmp_path / "bad.pcap.gz"
    bad.write_bytes(bytes(gz))
    result = teardown.analyze(str(bad))
    expected = teardown.analyze(str(plain_prefix(tmp_path, raw[:20_000])))
    assert result.capture.frames == expected.capture.frames > 100
    damage = str(result.capture.files[0].damage)
    # zlib checks NLEN once it has both its bytes: the damage shows at the second.
    assert f"gzip data damaged at compressed byte {second + 4:,} (invalid stored block lengths)" in damage


@pytest.mark.parametrize("name", ["rand.pcap.gz", "rand.pcapng.gz"])
def test_gzip_of_random_bytes_is_one_line_and_exit_2(tmp_path: Path, name: str) -> None:
    """Random bytes after a gzip header (a zlib.error traceback): zlib refuses them at once
    (0xFF: a block of type 3), or inflates a few bytes of nonsense first."""
    header = gzip.compress(b"")[:10]
    for deflate in (b"\xff" * 5000, np.random.default_rng(7).bytes(5000)):
        bad = tmp_path / name
        bad.write_bytes(header + deflate)
        r = run_cli("analyze", str(bad))
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
        assert "gzip data damaged at compressed byte" in r.stderr and "no capture could be read" in r.stderr, r.stderr


def test_garbage_after_a_gzip_member_is_a_warning(tmp_path: Path) -> None:
    member = gzip.compress(SAMPLE.read_bytes())
    bad = tmp_path / "tail.pcap.gz"
    bad.write_bytes(member + b"not gzip at all")
    result = teardown.analyze(str(bad))
    assert result.flows.drop(columns="capture_file").equals(flows(SAMPLE))
    assert f"gzip data damaged at compressed byte {len(member) + 1:,}" in str(result.capture.files[0].damage)


def test_concatenated_gzip_members_and_zero_padding_read_as_one(tmp_path: Path) -> None:
    data = SAMPLE.read_bytes()
    both = tmp_path / "members.pcap.gz"
    both.write_bytes(gzip.compress(data[:300]) + gzip.compress(data[300:]) + b"\0" * 512)
    result = teardown.analyze(str(both))
    assert result.flows.drop(columns="capture_file").equals(flows(SAMPLE))
    assert not result.capture.warnings


def test_gzip_reader_reports_compressed_bytes_and_reads_urls() -> None:
    reader = open_capture(str(BURST), 1 << 16)
    positions = [reader.position() for _ in reader]
    assert positions == sorted(positions) and 0 < positions[0] < BURST.stat().st_size  # progress: compressed bytes
    pytest.importorskip("fsspec")
    assert flows(BURST.as_uri()).equals(flows(BURST))


# ---- pcapng sections, interfaces -------------------------------------------------------------

@pytest.mark.parametrize("orders", [("<", ">"), (">", "<")])
def test_sections_in_both_byte_orders_are_all_read(tmp_path: Path, orders: tuple[str, str]) -> None:
    frames = conversation()
    mixed = pcapng(tmp_path / "mixed.pcapng", (orders[0], frames[:3]), (orders[1], frames[3:]))
    same = pcapng(tmp_path / "same.pcapng", (orders[0], frames[:3]), (orders[0], frames[3:]))
    result = teardown.analyze(str(mixed))
    assert result.capture.frames == 6 and not result.capture.warnings
    assert result.flows.drop(columns="capture_file").equals(flows(same))


def test_a_byte_range_starting_before_a_section_of_the_other_order(tmp_path: Path) -> None:
    """The boundary search of a byte range (teardown.scale) steps over the section header."""
    frames = conversation()
    path = pcapng(tmp_path / "mixed.pcapng", ("<", frames[:3]), (">", frames[3:]))
    first_epb = len(shb("<") + idb("<"))
    ranged = open_range(str(path), first_epb + 1, path.stat().st_size, 1 << 16)
    assert [int(f) for b in ranged for f in b.frame] == [1, 2, 3, 4, 5]  # frames 2..6 of the file


def test_an_enhanced_packet_block_on_interface_ffffffff_keeps_its_time(tmp_path: Path) -> None:
    """The walker marks Simple Packet Blocks with interface 0xFFFFFFFF: an Enhanced Packet Block
    naming it kept its own time no more (the frame before's), and no warning said so."""
    frames = conversation()
    path = tmp_path / "iface.pcapng"
    path.write_bytes(shb("<") + idb("<")
                     + b"".join(epb("<", f, 0xFFFFFFFF if i == 2 else 0) for i, f in enumerate(frames)))
    _, ts = times(path)
    assert ts.tolist() == pytest.approx([T0 + k / 1000 for k in range(6)], abs=1e-6)
    for reader in FAST_READERS:
        assert any("1 frame naming an interface that was never described (first: frame 3)" in w
                   for w in warnings_of(path, reader))


# ---- timestamp resolution and offset ---------------------------------------------------------

def described(tmp_path: Path, *options: bytes, units: list[int] | None = None) -> Path:
    frames = conversation()
    path = tmp_path / "described.pcapng"
    path.write_bytes(shb("<") + idb("<", *options)
                     + b"".join(epb("<", f, units=None if units is None else units[i]) for i, f in enumerate(frames)))
    return path


@pytest.mark.parametrize("reader", [*FAST_READERS, pytest.param("pyshark", marks=needs_tshark)])
def test_a_timestamp_resolution_too_fine_is_set_aside_by_every_reader(tmp_path: Path, reader: str) -> None:
    """if_tsresol 10^-20 s overflowed 64 bits (OverflowError): read as microseconds, and said."""
    path = described(tmp_path, option("<", 9, bytes([20])))
    result = teardown.analyze(str(path), reader=reader)
    assert result.capture.frames == 6 and len(result.flows) == 1
    assert any("interface 0" in w and "if_tsresol of 10^-20 s" in w for w in result.capture.warnings)
    if reader != "pyshark":  # tshark applies it: its times are lost (all 0), as the warning says
        assert result.capture.first_ts == pytest.approx(T0)


@needs_tshark
def test_picosecond_timestamps_read_alike_by_tshark(tmp_path: Path) -> None:
    """10^-12 s units: the tshark reader turns tshark's nanoseconds back into them without
    overflowing 64 bits, and gives the fast reader's times."""
    # 10 ms after T0 and on, in picoseconds (since 1970 they would overflow 64 bits): tshark's
    # nanoseconds times 10^12 overflow 64 bits from 9.2 ms. (tshark 4.0 itself overflows from
    # 18.4 ms: (units % 10^12) * 10^9.)
    units = [(10 + k) * 1_000_000_000 for k in range(6)]
    path = described(tmp_path, option("<", 9, bytes([12])), option("<", 14, struct.pack("<q", int(T0))), units=units)
    fast, tshark = teardown.analyze(str(path)), teardown.analyze(str(path), reader="pyshark")
    for result in (fast, tshark):
        assert result.capture.first_ts == pytest.approx(T0 + .01) and result.capture.last_ts == pytest.approx(T0 + .015)
    assert fast.flows.drop(columns="capture_file").equals(tshark.flows.drop(columns="capture_file"))


@pytest.mark.parametrize("offset", [2**63 - 1, -(2**63)])
@pytest.mark.parametrize("reader", [*FAST_READERS, pytest.param("pyshark", marks=needs_tshark)])
def test_an_offset_no_real_time_has_is_set_aside_by_every_reader(tmp_path: Path, offset: int, reader: str) -> None:
    path = described(tmp_path, option("<", 14, struct.pack("<q", offset)))
    result = teardown.analyze(str(path), reader=reader)
    assert result.capture.first_ts == pytest.approx(T0) and result.capture.last_ts == pytest.approx(T0 + .005)
    assert any(f"interface 0: if_tsoffset of {offset:,} s" in w for w in result.capture.warnings)
    assert result.flows.drop(columns="capture_file").equals(flows(described(tmp_path)))


@pytest.mark.parametrize("reader", [*FAST_READERS, pytest.param("pyshark", marks=needs_tshark)])
def test_a_frame_timestamped_past_year_9999_takes_the_time_before_it(tmp_path: Path, reader: str) -> None:
    units = [int(round((T0 + k / 1000) * 1e6)) for k in range(6)]
    units[3] = 2**64 - 1
    result = teardown.analyze(str(described(tmp_path, units=units)), reader=reader)
    assert result.capture.last_ts == pytest.approx(T0 + .005)
    assert any("1 frame with a time no capture has (first: frame 4 at 18,446,744,073,710 s since 1970, after year "
               "9999)" in w for w in result.capture.warnings)
    row = result.flows.iloc[0]
    assert row["duration_s"] == pytest.approx(.005, abs=1e-6)


def test_impossible_times_first_in_the_file_take_the_first_real_one(tmp_path: Path) -> None:
    units = [int(round((T0 + k / 1000) * 1e6)) for k in range(6)]
    units[0] = units[1] = 2**64 - 1
    _, ts = times(described(tmp_path, units=units))
    assert ts.tolist() == pytest.approx([T0 + .002, T0 + .002, T0 + .002, T0 + .003, T0 + .004, T0 + .005], abs=1e-6)


# ---- original lengths ------------------------------------------------------------------------

def tso(tmp_path: Path, kind: str, wirelen: int) -> Path:
    """The conversation with frame 3 a TSO segment (IP total length 0) claiming `wirelen`."""
    from scapy.layers.inet import IP

    frames = conversation()
    frames[2][IP].len = 0
    if kind == "pcapng":
        path = tmp_path / "tso.pcapng"
        path.write_bytes(shb("<") + idb("<") + b"".join(epb("<", f, wirelen=wirelen if i == 2 else None)
                                                         for i, f in enumerate(frames)))
        return path
    raw = bytearray(pcap(tmp_path / "tso.pcap", frames).read_bytes())
    at = 24 + 2 * (16 + 54)  # the third record header: two 54-byte frames before it
    struct.pack_into("<I", raw, at + 12, wirelen)
    (tmp_path / "tso.pcap").write_bytes(bytes(raw))
    return tmp_path / "tso.pcap"


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
@pytest.mark.parametrize("wirelen", [2**31 + 1, 0xFFFFFFF0, 20])
def test_an_original_length_that_cannot_be_is_the_captured_one(tmp_path: Path, kind: str, wirelen: int) -> None:
    """2^31 and more made bytes_c2s negative (fast) and an int32 overflow (scapy); under the
    captured length (20 < 54) is as impossible."""
    path = tso(tmp_path, kind, wirelen)
    results = [teardown.analyze(str(path), reader=r) for r in FAST_READERS]
    for r in results:
        assert r.flows["bytes_c2s"].tolist() == [0]
        assert any(f"1 frame with an original length that cannot be (over 16 MiB, or under the captured length; "
                   f"first: frame 3: {wirelen:,} bytes, 54 captured)" in w for w in r.capture.warnings)
    assert results[0].flows.drop(columns="capture_file").equals(results[1].flows.drop(columns="capture_file"))


def test_decoders_agree_on_a_payload_no_int32_holds() -> None:
    """A batch made elsewhere (not clamped by a reader): the fast decoder wrapped the payload to
    a negative int32, scapy's overflowed; both now call the frame malformed."""
    from scapy.layers.inet import IP

    from teardown.dissect.scapy_reader import ScapyDecoder

    frame = conversation()[2]
    frame[IP].len = 0
    raw = np.frombuffer(bytes(frame) + b"\0" * 128, np.uint8)
    one = FrameBatch(raw, np.zeros(1, np.int64), np.array([54], np.uint32), np.array([0xFFFFFFF0], np.uint32),
                     np.array([T0]), np.ones(1, np.uint16), np.zeros(1, np.uint16), np.ones(1, np.int64))
    fast_skipped: Counter[str] = Counter()
    scapy_skipped: Counter[str] = Counter()
    fast: Packets = decode(one, fast_skipped)
    scapy, _ = ScapyDecoder(Contexts()).decode(one, scapy_skipped)
    assert len(fast) == len(scapy) == 0
    assert fast_skipped == scapy_skipped == {"truncated or malformed IP header": 1}


# ---- time order ------------------------------------------------------------------------------

@pytest.mark.parametrize("reader", [*FAST_READERS, pytest.param("pyshark", marks=needs_tshark)])
@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_frames_going_back_in_time_are_told(tmp_path: Path, reader: str, kind: str) -> None:
    frames = conversation()
    frames[0].time = T0 + 10  # the SYN stamped 10 s late: every frame after it goes back
    path = pcap(tmp_path / "back.pcap", frames) if kind == "pcap" else pcapng(tmp_path / "back.pcapng", ("<", frames))
    result = teardown.analyze(str(path), reader=reader)
    assert any("5 frames timestamped earlier than a frame before (first: frame 2; at most 9.999000 s earlier): "
               "read in capture order" in w for w in result.capture.warnings)
    assert len(result.flows) == 1  # still judged, in capture order


def test_a_step_back_where_a_chunk_begins_is_told(tmp_path: Path) -> None:
    """Each chunk in order, the second starting before the first ended."""
    frames = [seg(T0 + k / 1000, "A", C_ISN + k) for k in range(200)]
    in_order = open_capture(str(pcap(tmp_path / "ok.pcap", frames)), 4096)
    first_batch = len(next(iter(in_order)))
    in_order.close()
    for f in frames[first_batch:]:
        f.time -= 1
    reader = open_capture(str(pcap(tmp_path / "back.pcap", frames)), 4096)
    assert len(list(reader)) > 2
    assert reader.info.warnings == [
        f"{200 - first_batch} frames timestamped earlier than a frame before (first: frame {first_batch + 1}; at most "
        "0.999000 s earlier): read in capture order"]


def test_frames_of_the_same_time_or_within_the_jitter_are_not_going_back(tmp_path: Path) -> None:
    """In order but for ties, or back by no more than capturing on several CPUs or interfaces
    does (ORDER_JITTER_S): nothing to say. With one frame going back further: it alone."""
    frames = conversation()
    frames[2].time = frames[1].time
    frames[4].time = frames[3].time - ORDER_JITTER_S  # as far back as jitter goes
    for path in (pcap(tmp_path / "ok.pcap", frames), pcapng(tmp_path / "ok.pcapng", ("<", frames))):
        assert not warnings_of(path)
    frames[4].time = frames[3].time - .05  # one frame back 50 ms
    for path in (pcap(tmp_path / "back.pcap", frames), pcapng(tmp_path / "back.pcapng", ("<", frames))):
        assert warnings_of(path) == [
            f"{path}: 1 frame timestamped earlier than a frame before (first: frame 5; at most 0.050000 s earlier): "
            "read in capture order"]


def test_the_crafted_oddities_cut_anywhere_give_a_result_or_a_capture_error(tmp_path: Path) -> None:
    """All of the above in one gzipped pcapng, cut at every 5th compressed byte."""
    frames = conversation()
    units = [int(round((T0 + k / 1000) * 1e6)) for k in range(6)]
    units[3] = 2**64 - 1
    whole = gzip.compress(described(tmp_path, option("<", 9, bytes([20])), option("<", 14, struct.pack("<q", -(2**63))),
                                    units=units).read_bytes() + shb(">") + idb(">") + epb(">", frames[0], 0xFFFFFFFF))
    path = tmp_path / "cut.pcapng.gz"
    for cut in range(0, len(whole), 5):
        path.write_bytes(whole[:cut])
        try:
            teardown.analyze(str(path), chunk_bytes=4096)
        except CaptureError:
            pass
