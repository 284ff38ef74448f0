"""An analysis -> the words each evidence frame gets: what the frame shows for its connection,
in the words the summary and the report use, and the section comment that sums the run up.

A connection's verdicts rest on its evidence frames (the `evidence` column, present.py's
`evidence_frames`: its SYN, each side's FIN and final ACK, the RST that ended it, the segments
around its first gap of capture loss), and on two kinds of frames found by reading the capture
again (flow_frames.py): FINs sent again, and an assassinating RST of the next incarnation.
Each such frame gets one comment: the flow id, then what the frame shows; a frame that shows
several things (a FIN that also acknowledges the peer's) has them joined by "; ", and parts of
different connections by " | ". A part that shows a finding starts with its kind in brackets,
the names `--fail-on`, `--only` and the report's filter use (report/flags.py), so Wireshark's
display filter `frame.comment contains "fin-retransmission"` finds those frames; each flagged
connection names every one of its kinds on some frame of its own.

Pure: columns and frame numbers in, texts out. The words are made once per distinct
combination of the values they depend on, and per row only where they hold numbers (frames,
bytes, counts), which only rows with a finding have.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..analysis import Analysis
from ..flows import NONE
from ..packed import distinct_objects
from ..present import RowsOf, flow_ids, number_array, text_array, text_scalar
from ..report.flags import FLAGS, flag_bits
from ..schema import FindingKind
from ..terminal import Style, findings_lines, head_lines
from ..timewait.finding import plural
from ..verdicts import EVIDENCE_LABELS, NOTES, RUNS_ON_NOTE
from .flow_frames import FlowFrames
from .numbering import Numbering

if TYPE_CHECKING:
    import pyarrow as pa

I64 = npt.NDArray[np.int64]
Obj = npt.NDArray[np.object_]
Columns = Mapping[str, npt.NDArray[Any]]

SIDES = ("client", "server")
SYN_AT, FIN_AT, FINAL_ACK_AT, RST_AT, GAP_AFTER_AT, GAP_BEFORE_AT = (
    EVIDENCE_LABELS.index(label) for label in ("syn", "fin client", "final ack client", "rst", "gap after", "before"))
BIT = {flag.kind: 1 << i for i, flag in enumerate(FLAGS)}  # flag_bits' bit of each kind


def _note(begins: str) -> int:
    """The bit of the note (verdicts.NOTES) that begins with these words."""
    return next(i for i, note in enumerate(NOTES) if note.startswith(begins))


# Notes said on the frame they are about; every other note is about the whole connection and
# is said on its first commented frame, led by the finding kind it belongs to, if any.
FINAL_ACK_UNSEEN = _note("final ACK not in the capture")
FIN_WAIT_2 = _note("only one FIN before the capture ended")
FIN_AGAIN = _note("the peer retransmitted its FIN")  # the FIN's own words say it, with its frames
KILLED = _note("TIME_WAIT assassinated")
KILL_IGNORED = _note("in-sequence RST during TIME_WAIT, ignored")
LINUX_ISN = _note("ISN = old next sequence")
NEW_DATA = _note("new data after the sender's own FIN")
LOSS = _note("bytes acknowledged that the capture never saw")
GAP_BEFORE_FIN = _note("bytes just before a FIN")
GAP_BEFORE_RST = _note("bytes just before an RST")
PLACED = {FINAL_ACK_UNSEEN, FIN_WAIT_2, FIN_AGAIN, KILLED, KILL_IGNORED, LINUX_ISN, NEW_DATA, LOSS, GAP_BEFORE_FIN,
          GAP_BEFORE_RST}
# Notes about the table's columns, not about what the frames show, said nowhere here: a flow
# running on into the next file (its `display_filter` selects its frames in `capture_file` only,
# the next file numbering from 1 again) is not so in the copy, one file numbering on.
UNSAID = {RUNS_ON_NOTE}
NOTE_KINDS = {_note("roles inferred"): FindingKind.roles_inferred,
              **{i: FindingKind.one_sided for i, note in enumerate(NOTES) if note.startswith("one direction only")}}

RST_CLASS_WORDS = {  # schema.RstClass, as its receiver takes it
    "exact": "in sequence (exactly the sequence number its receiver expects next)",
    "in_window": "in the receiver's window but not exact: answered with a challenge ACK (RFC 5961)",
    "out_of_window": "outside the receiver's window: dropped (stale or injected)",
    "to_closed_port": "from an endpoint with no socket for the connection, answering a segment",
    "unverifiable": "its class cannot be judged: the capture lacks the receiver's state",
}
REUSE_WORDS = {
    "accepted_timestamps": "accepted, timestamps newer (RFC 6191)",
    "accepted_isn": "accepted, ISN above the old connection's (RFC 1122)",
    "rejected": "rejected: the TIME_WAIT answered with an ACK of the old connection",
}
Said = tuple[str, int]  # words, and the flag bits of the findings they show


@dataclass(frozen=True, slots=True)
class Comments:
    """One comment per frame, held as Arrow holds texts: one UTF-8 buffer and where each starts
    (400,000 comments are 40 MB of text, not 400,000 Python strings)."""

    frames: I64  # frame numbers of the whole run (numbering.py), sorted, each once
    offsets: I64  # comment i is utf8[offsets[i]:offsets[i + 1]]
    utf8: bytes

    def __len__(self) -> int:
        return len(self.frames)

    def raw(self, i: int) -> bytes:
        return self.utf8[int(self.offsets[i]): int(self.offsets[i + 1])]

    def text(self, i: int) -> str:
        return self.raw(i).decode()

    @classmethod
    def of(cls, frames: I64, texts: pa.Array) -> Comments:
        """From an Arrow array of texts (string or large_string), one per frame."""
        import pyarrow as pa

        texts = texts.cast(pa.large_string())
        _, offsets, data = texts.buffers()
        at = np.frombuffer(offsets, np.int64)[texts.offset: texts.offset + len(texts) + 1] if offsets is not None \
            else np.zeros(1, np.int64)
        utf8 = data.to_pybytes() if data is not None else b""
        return cls(frames, at - at[0], utf8[int(at[0]): int(at[-1])])


class _Parts:
    """What frames show, gathered label by label: one entry per (frame, row, thing shown)."""

    def __init__(self) -> None:
        self.frame: list[I64] = []
        self.row: list[I64] = []  # position among the rows commented
        self.rank: list[I64] = []  # order of a row's parts on one frame: the evidence labels' order
        self.text: list[Obj] = []
        self.bits: list[I64] = []  # flag_bits of the findings each part shows

    def add(self, frame: I64, row: I64, rank: int, text: Obj | Sequence[str], bits: I64 | int) -> None:
        n = len(frame)
        self.frame.append(np.asarray(frame, np.int64))
        self.row.append(np.asarray(row, np.int64))
        self.rank.append(np.full(n, rank, np.int64))
        self.text.append(np.asarray(text, object).reshape(n))
        self.bits.append(np.broadcast_to(np.asarray(bits, np.int64), (n,)))

    def shown(self, rows: int) -> I64:
        """The flag bits some part of each row shows."""
        out = np.zeros(rows, np.int64)
        if self.row:
            np.bitwise_or.at(out, np.concatenate(self.row), np.concatenate(self.bits))
        return out


# What the words read, besides the flow id's columns and flag_bits' (report/flags.py).
READ = ("evidence", "capture", "note_bits", "first_ts", "close_kind", "handshake", "active_closer", "first_fin_by",
        "first_rst_by", "rst_class", "time_wait_on", "half_close", "data_after_fin", "reuses_tuple_in_time_wait",
        "reuse_verdict", "tw_assassination", "fin_retransmissions_client", "fin_retransmissions_server",
        "final_ack_lost_after_capture", "capture_loss", "capture_loss_bytes", "one_sided", "roles_inferred",
        "ctx", "client_ip", "client_port", "server_ip", "server_port", "incarnation", "lost_between_c2s",
        "lost_between_s2c", "lost_between")


def frame_comments(columns: Columns, rows: I64, numbering: Numbering, found: FlowFrames,
                   originals: bool = False) -> Comments:
    """The comment of every frame the verdicts of `rows` (of the analysis's `columns`) rest on;
    with `originals`, each first says its number in the whole capture (an extract renumbers
    the frames it keeps)."""
    at_rows = RowsOf(columns, rows)
    c = {name: at_rows[name] for name in READ}
    parts = _Parts()
    evidence = np.asarray(c["evidence"], np.int64)
    whole = np.where(evidence == NONE, NONE, numbering.of_rows(np.asarray(c["capture"], np.int64)[:, None], evidence))
    refer: Refer = (lambda frame: f"original {numbering.text(frame)}") if originals else numbering.text
    for rank, (texts, bits) in enumerate(_evidence_words(c, rows, whole, found, refer)):
        at = np.flatnonzero(whole[:, rank] != NONE)
        parts.add(whole[at, rank], at, rank, texts[at], bits[at])
    _frames_found(parts, c, rows, whole, found, refer)
    _lost_between_points(parts, c, numbering)
    _flow_notes(parts, c, whole)
    _unshown(parts, c, whole)
    return _assembled(parts, flow_ids(c), (lambda f: numbering.texts(f, "original ")) if originals else None)


def _said(keys: Sequence[npt.NDArray[Any]], say: Callable[..., Said]) -> tuple[Obj, I64]:
    """`say(*key)` of each row's key (one value of each of `keys`), called once per distinct key."""
    n = len(keys[0])
    if not n:
        return np.zeros(0, object), np.zeros(0, np.int64)
    key = np.zeros(n, np.int64)
    values: list[list[Any]] = []
    for k in keys:  # each key's code, in a mixed radix: one integer per row, sorted once
        k = np.asarray(k)
        if k.dtype == np.bool_:
            distinct, code = [False, True], k.astype(np.int64)
        else:
            distinct, code32 = distinct_objects(k.astype(object))
            code = code32.astype(np.int64)
        key = key * len(distinct) + code
        values.append(distinct)
    combos, inverse = np.unique(key, return_inverse=True)
    said = []
    for combo in combos.tolist():
        picked = []
        for distinct in reversed(values):
            combo, code = divmod(combo, len(distinct))
            picked.append(distinct[code])
        said.append(say(*reversed(picked)))
    texts = np.array([s[0] for s in said], object)
    bits = np.array([s[1] for s in said], np.int64)
    return texts[inverse], bits[inverse]


def _notes(c: Columns, bit: int) -> npt.NDArray[np.bool_]:
    out: npt.NDArray[np.bool_] = (np.asarray(c["note_bits"], np.int64) >> bit & 1).astype(bool)
    return out


def _flags(c: Columns) -> I64:
    """flag_bits of the rows (the report's and --fail-on's conditions)."""
    return flag_bits(c)


Refer = Callable[[int], str]  # how a comment names a frame: 'frame 14', 'original frame 14 (b.pcap frame 3)'


def _evidence_words(c: Columns, rows: I64, whole: I64, found: FlowFrames, refer: Refer) -> list[tuple[Obj, I64]]:
    """The words of each evidence label (EVIDENCE_LABELS order), for every row."""
    flags = _flags(c)
    kind = np.asarray(c["close_kind"], object)
    closer = np.asarray(c["active_closer"], object)
    first_fin = np.asarray(c["first_fin_by"], object)
    holder = np.asarray(c["time_wait_on"], object)
    half = np.asarray(c["half_close"], bool)
    new_data = _notes(c, NEW_DATA)
    out = [_syn_words(c, flags)]
    for side in SIDES:
        peer_ack_unseen = whole[:, FINAL_ACK_AT + 1 - SIDES.index(side)] == NONE
        out.append(_said([np.full(len(kind), side, object), kind, closer, first_fin == side, half, new_data, holder,
                          _notes(c, FINAL_ACK_UNSEEN) & peer_ack_unseen, _notes(c, FIN_WAIT_2),
                          (flags & BIT[FindingKind.server_close]) != 0], _fin))
    for side in SIDES:
        out.append(_said([np.full(len(kind), side, object), holder], _final_ack))
    out.append(_rst_words(c))
    out += _gap_words(c)
    _fin_again_words(out, c, rows, whole, found, refer)
    return out


def _syn_words(c: Columns, flags: I64) -> tuple[Obj, I64]:
    def say(kind: str, handshake: str, rst_by: str, reused: bool, verdict: str | None, linux_isn: bool) -> Said:
        words, bits = "client's SYN", 0
        if kind == "refused":
            words, bits = words + ", refused: the server answered RST+ACK (nothing listening)", BIT[FindingKind.refused]
        elif kind == "unanswered":
            words += ", unanswered" + (": the client gave up with an RST" if rst_by == "client" else "")
            bits = BIT[FindingKind.unanswered]
        elif kind == "handshake_reset":
            words, bits = words + "; its SYN-ACK was answered by an RST before the handshake completed", \
                BIT[FindingKind.handshake_reset]
        elif kind == "unknown":
            words += ", no answer in the capture"
        elif handshake == "answered_unseen":
            words += ", answered by a SYN-ACK the capture does not hold"
        if reused:
            words = f"SYN reuses a 4-tuple still in TIME_WAIT: {REUSE_WORDS.get(verdict or '', 'no answer seen')}"
            bits |= BIT[FindingKind.reuse_in_time_wait] | (BIT[FindingKind.reuse_rejected] if verdict == "rejected" else 0)
        elif verdict == "after_time_wait":
            words += "; it reuses the 4-tuple of a connection whose TIME_WAIT had ended"
        return words + (f"; {NOTES[LINUX_ISN]}" if linux_isn else ""), bits

    return _said([c["close_kind"], c["handshake"], c["first_rst_by"], np.asarray(c["reuses_tuple_in_time_wait"], bool),
                  c["reuse_verdict"], _notes(c, LINUX_ISN)], say)


def _fin(side: str, kind: str, closer: str, first: bool, half: bool, new_data: bool, holder: str,
         start_here: bool, fin_wait_2: bool, server_close: bool) -> Said:
    """A side's (first) FIN."""
    peer = SIDES[1 - SIDES.index(side)]
    bits = 0
    if kind == "simultaneous":
        words, bits = (f"{side}'s FIN, crossing the {peer}'s (simultaneous close): both sides go through CLOSING "
                       "and hold TIME_WAIT"), BIT[FindingKind.simultaneous]
    elif closer == side and side == "server" and server_close:
        words, bits = "server's FIN: the server closes first (active close), so it holds the TIME_WAIT", \
            BIT[FindingKind.server_close]
    elif closer == side:
        words = f"{side}'s FIN: the {side} closes first (active close)"
    elif closer == peer:
        words = f"{side}'s FIN, after the {peer}'s (passive close)"
    else:
        words = f"{side}'s FIN"
    if fin_wait_2:
        words += f"; {NOTES[FIN_WAIT_2]}"
    if start_here and holder in (peer, "both"):
        words += f"; the {peer}'s final ACK is not in the capture: its TIME_WAIT is taken to start at this FIN"
    if first and half:
        words, bits = words + f"; the {peer} kept sending after it (half-close)", bits | BIT[FindingKind.half_close]
    if first and new_data:
        words, bits = words + f"; {NOTES[NEW_DATA]}", bits | BIT[FindingKind.data_after_fin]
    return words, bits


def _final_ack(side: str, holder: str) -> Said:
    """A side's ACK of the peer's FIN."""
    peer = SIDES[1 - SIDES.index(side)]
    if holder in (side, "both"):
        return f"{side}'s final ACK (of the {peer}'s FIN): the {side}'s TIME_WAIT starts here", 0
    return f"{side} acknowledges the {peer}'s FIN", 0


def _rst_words(c: Columns) -> tuple[Obj, I64]:
    def say(kind: str, by: str, rst_class: str | None) -> Said:
        who = f"the {by}" if by in SIDES else "a side"
        words, bits = {
            "rst": (f"RST by {who}: aborts the connection (no FIN before it)", BIT[FindingKind.abort]),
            "fin_then_rst": (f"RST by {who} after a FIN: ends the connection", BIT[FindingKind.abort]),
            "refused": ("RST+ACK by the server: refuses the SYN (nothing listening)", BIT[FindingKind.refused]),
            "handshake_reset": (f"RST by {who} before the handshake completed", BIT[FindingKind.handshake_reset]),
            "unanswered": (f"RST by {who}: it gives up on the SYN", 0),
        }.get(kind, (f"RST by {who} after the close" if kind in ("fin", "simultaneous") else f"RST by {who}", 0))
        return words + (f", {RST_CLASS_WORDS[rst_class]}" if rst_class in RST_CLASS_WORDS else ""), bits

    return _said([c["close_kind"], c["first_rst_by"], c["rst_class"]], say)


def _gap_words(c: Columns) -> list[tuple[Obj, I64]]:
    n = len(c["first_ts"])
    lost = np.nan_to_num(np.asarray(c["capture_loss_bytes"], np.float64)).astype(np.int64)
    after = np.full(n, "the last segment before a gap in the capture", object)
    for i in np.flatnonzero(lost > 0).tolist():
        after[i] = f"the last segment before a gap: the capture misses {plural(int(lost[i]), 'byte')} the peer acknowledged"

    def before(fin: bool, rst: bool) -> Said:
        return "the first segment after that gap" + "".join(
            f"; {NOTES[bit]}" for bit, holds in ((GAP_BEFORE_FIN, fin), (GAP_BEFORE_RST, rst)) if holds), 0

    texts, _ = _said([_notes(c, GAP_BEFORE_FIN), _notes(c, GAP_BEFORE_RST)], before)
    return [(after, np.full(n, BIT[FindingKind.capture_loss], np.int64)),
            (texts, np.full(n, BIT[FindingKind.capture_loss], np.int64))]


def _fin_again_words(out: list[tuple[Obj, I64]], c: Columns, rows: I64, whole: I64, found: FlowFrames,
                     refer: Refer) -> None:
    """Per row, where a side sent its FIN again: on that FIN, how many times and where; on the
    peer's final ACK, whether the capture shows it before the copy (lost beyond the capture
    point) or after it (lost before, or the FIN itself beyond)."""
    beyond = np.asarray(c["final_ack_lost_after_capture"], object)
    holder = np.asarray(c["time_wait_on"], object)
    for s, side in enumerate(SIDES):
        peer = SIDES[1 - s]
        again = np.asarray(c[f"fin_retransmissions_{side}"], np.int64)
        fin_texts, fin_bits = out[FIN_AT + s]
        ack_texts, ack_bits = out[FINAL_ACK_AT + 1 - s]  # the peer's ACK of this FIN
        for i in np.flatnonzero(again > 0).tolist():
            frames = found.fins_again.get((int(rows[i]), s), [])
            where = f" ({', '.join(refer(f) for f in frames)})" if frames else ""
            restarted = f"; the {peer}'s TIME_WAIT restarts" if holder[i] in (peer, "both") else ""
            fin_texts[i] += (f"; sent again {plural(int(again[i]), 'time')}{where}: the {peer}'s final ACK, or this "
                             f"FIN, was lost{restarted}")
            fin_bits[i] |= BIT[FindingKind.fin_retransmission]
            if whole[i, FINAL_ACK_AT + 1 - s] == NONE:
                continue
            copy = f" ({refer(frames[-1])})" if frames else ""
            if beyond[i] is True:
                ack_texts[i] += f"; final ACK lost after this point: the {side} retransmits its FIN{copy}"
            else:
                ack_texts[i] += (f"; it answers the {side}'s FIN sent again{copy}: the final ACK before it was lost "
                                 "before the capture point, or the FIN itself beyond it")
            ack_bits[i] |= BIT[FindingKind.fin_retransmission]


def _frames_found(parts: _Parts, c: Columns, rows: I64, whole: I64, found: FlowFrames, refer: Refer) -> None:
    """The FINs sent again and the assassinating RSTs, each on its own frame."""
    if not found.fins_again and not found.killed_by:
        return
    local = {int(r): i for i, r in enumerate(rows.tolist())}
    holder = np.asarray(c["time_wait_on"], object)
    for (row, s), frames in found.fins_again.items():
        if row in local and frames:
            i = local[row]
            first = int(whole[i, FIN_AT + s])
            said = f"{SIDES[s]}'s FIN sent again" + (f" (first sent in {refer(first)})" if first != NONE else "")
            parts.add(np.array(frames), np.full(len(frames), i), FIN_AT + s, [said] * len(frames),
                      BIT[FindingKind.fin_retransmission])
    killed = _notes(c, KILLED)
    for row, frame in found.killed_by.items():
        if row not in local:
            continue
        i = local[row]
        whose = {"client": "the client's", "server": "the server's", "both": "both sides'"}.get(holder[i], "a")
        said = (f"RST in sequence: assassinates {whose} TIME_WAIT (RFC 1337)" if killed[i]
                else f"RST in sequence hits {whose} TIME_WAIT: {NOTES[KILL_IGNORED]}")
        parts.add(np.array([frame]), np.array([i]), RST_AT, [said], BIT[FindingKind.assassination])


# One segment of `lost_between` (points/join.py's words): who sent it, what, the file and frame
# that saw it, and the rest of its clause.
LOST = re.compile(r"the (?:client|server)'s .+? \((?P<file>.+?) frame (?P<frame>\d+)\) never reached [^;]+(?:; (?!the (?:client|server)'s \w[^;]* \(.+? frame \d+\) never)[^;]+)?")


def _lost_between_points(parts: _Parts, c: Columns, numbering: Numbering) -> None:
    """Each segment lost between two capture points (a joined run), on its frame at the point
    that saw it leave: what it was and what the other point saw next."""
    words = np.asarray(c["lost_between"], object)
    for i in np.flatnonzero(np.array([isinstance(w, str) and bool(w) for w in words.tolist()], bool)).tolist():
        for m in LOST.finditer(words[i]):
            if m.group("file") not in numbering.names:  # a point of several files: named by them all
                continue
            f = numbering.names.index(m.group("file"))
            parts.add(np.array([int(numbering.before[f]) + int(m.group("frame"))]), np.array([i]), -1,
                      [m.group(0).removeprefix("the ")], BIT[FindingKind.lost_between_points])


def _flow_notes(parts: _Parts, c: Columns, whole: I64) -> None:
    """Notes about the whole connection (roles inferred, one direction only, ...), on its first frame."""
    first = _first_frames(whole)
    for bit in (b for b in range(len(NOTES)) if b not in PLACED | UNSAID):
        rows = np.flatnonzero(_notes(c, bit) & (first != NONE))
        kind = NOTE_KINDS.get(bit)
        parts.add(first[rows], rows, -1, [NOTES[bit]] * len(rows), BIT[kind] if kind is not None else 0)


def _first_frames(whole: I64) -> I64:
    """Each row's first evidence frame; NONE where it has none."""
    never = np.iinfo(np.int64).max
    first = np.where(whole == NONE, never, whole).min(axis=1, initial=never)
    out: I64 = np.where(first == never, NONE, first)
    return out


def _unshown(parts: _Parts, c: Columns, whole: I64) -> None:
    """A finding of a row that none of its parts shows (its frame was not found): named on the
    row's first frame, in the report's words, so that every flagged row names each of its kinds."""
    missing = _flags(c) & ~parts.shown(len(whole))
    first = _first_frames(whole)
    rows = np.flatnonzero((missing != 0) & (first != NONE))
    labels = [", ".join(f.label for i, f in enumerate(FLAGS) if m >> i & 1) for m in missing[rows].tolist()]
    parts.add(first[rows], rows, len(EVIDENCE_LABELS), labels, missing[rows])


def _assembled(parts: _Parts, ids: pa.Array, originals: Callable[[I64], pa.Array] | None) -> Comments:
    """One comment per frame: per row, its flow id and its parts in label order joined by "; "
    (a part showing a finding led by its kinds in brackets); rows of one frame joined by " | ".
    Joined by Arrow's string kernels: no Python step per frame."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not sum(map(len, parts.frame)):
        return Comments(np.zeros(0, np.int64), np.zeros(1, np.int64), b"")
    frame, row, rank, bits = (np.concatenate(x) for x in (parts.frame, parts.row, parts.rank, parts.bits))
    order = np.lexsort((rank, row, frame))
    frame, row, bits = frame[order], row[order], bits[order]
    kinds, which = np.unique(bits, return_inverse=True)
    tags = [" ".join(f"[{flag.name}]" for b, flag in enumerate(FLAGS) if k >> b & 1) for k in kinds.tolist()]
    tagged = pc.binary_join_element_wise(text_array([t + " " if t else "" for t in tags]).take(number_array(which)),
                                         text_array(np.concatenate(parts.text)[order]), text_scalar(""))
    # A row's parts on one frame, then a frame's rows.
    of_row = np.flatnonzero(np.r_[True, (frame[1:] != frame[:-1]) | (row[1:] != row[:-1])])
    said = pc.binary_join(_lists(tagged, of_row), text_scalar("; "))
    said = pc.binary_join_element_wise(ids.take(number_array(row[of_row])), said, text_scalar(": "))
    of_frame = np.flatnonzero(np.r_[True, frame[of_row][1:] != frame[of_row][:-1]])
    texts = pc.binary_join(_lists(said, of_frame), text_scalar(" | "))
    frames = frame[of_row][of_frame]
    if originals is not None:
        texts = pc.binary_join_element_wise(originals(frames), texts, text_scalar(": "))
    return Comments.of(frames, texts.cast(pa.large_string()))


def _lists(values: pa.Array, starts: I64) -> pa.Array:
    """`values` in lists, each starting at one of `starts` and running to the next."""
    import pyarrow as pa

    return pa.LargeListArray.from_arrays(number_array(np.r_[starts, len(values)].astype(np.int64)), values)


def section_text(result: Analysis, lead: str) -> str:
    """A section comment: `lead` (what the file holds), then what the terminal summary says
    first, unwrapped: the capture, who closed its connections, the findings and their advice."""
    style = Style(width=1 << 20)  # no wrapping: a viewer wraps the comment as it shows it
    return "\n".join([lead, ""] + head_lines(result, style) + [""] + findings_lines(result, style))
