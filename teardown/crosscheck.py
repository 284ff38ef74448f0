"""`teardown crosscheck CAPTURE`: our verdicts against Wireshark's own TCP analysis (tshark).

What both can say, connection by connection: where each TCP stream begins and ends (our
incarnations against `tcp.stream`, which Wireshark also splits on port reuse), which side sent
the first FIN and the first RST, and how many FINs each side sent again
(`tcp.analysis.retransmission` on FIN segments). Every disagreement is listed; where one of the
known reasons applies, checked on the frames themselves, it comes with our explanation, and an
unexplained disagreement fails the check (exit 1 in the CLI).

Frames are put in our incarnations the way the flow engine does it: a frame belongs to the
latest incarnation of its 4-tuple and context (VLAN or tunnel) that started at or before it.
"""

from __future__ import annotations

import bisect
import functools
import subprocess
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
import numpy as np

from .analysis import Analysis, analyze
from .decode import ACK, FIN, RST, SYN
from .dissect import address, tshark_path
from .dissect.tshark_reader import (Chain, chain, check_readable, command, first_occurrence, hex_values, nth_occurrence,
                                    start_tshark, stop_tshark, tshark_message)
from .errors import CaptureError
from .options import Options
from .present import where_prefix
from .seq import seq_diff
from .source import Decoding, open_source

NONE_FRAME = -1
Endpoint = tuple[int, int, int]  # (address hi, address lo, port)

# Wireshark's view, one line per TCP frame. Its TCP analysis runs with its defaults: sequence
# analysis on (it flags retransmissions), streams as Wireshark numbers them.
FIELDS = [
    ("frame", "frame.number"), ("time", "frame.time_epoch"), ("iface", "frame.interface_id"),
    ("protocols", "frame.protocols"),
    ("stream", "tcp.stream"), ("ip_src", "ip.src"), ("ip_dst", "ip.dst"), ("ip_id", "ip.id"),
    ("ip6_src", "ipv6.src"), ("ip6_dst", "ipv6.dst"), ("sport", "tcp.srcport"), ("dport", "tcp.dstport"),
    ("flags", "tcp.flags"), ("seq", "tcp.seq_raw"), ("ack", "tcp.ack_raw"), ("length", "tcp.len"),
    ("retransmission", "tcp.analysis.retransmission"),
]


@dataclass(slots=True)
class Frame:
    """One TCP frame as Wireshark saw it."""

    number: int
    ts: float
    stream: int
    src: Endpoint
    dst: Endpoint
    flags: int
    seq: int
    ack: int
    length: int
    retransmission: bool
    iface: int
    ip_id: int


@dataclass(slots=True)
class Disagreement:
    flow: str  # our flow_id(s), or Wireshark's stream when we have no flow
    aspect: str  # "boundaries", "FIN senders", "active closer", "RST senders", "FIN retransmissions"
    wireshark: str
    ours: str
    explanation: str | None  # None: unexplained


@dataclass(slots=True)
class Crosscheck:
    path: str
    tshark_version: str
    compared: Counter[str] = field(default_factory=Counter)  # aspect -> connections compared
    agreed: Counter[str] = field(default_factory=Counter)
    disagreements: list[Disagreement] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def unexplained(self) -> list[Disagreement]:
        return [d for d in self.disagreements if d.explanation is None]

    def text(self) -> str:
        lines = [f"{self.path}: our verdicts against {self.tshark_version}'s TCP analysis"]
        lines += [f"  warning: {w}" for w in self.warnings]
        for aspect in ASPECTS:
            n, ok = self.compared[aspect], self.agreed[aspect]
            explained = sum(1 for d in self.disagreements if d.aspect == aspect and d.explanation)
            unexplained = sum(1 for d in self.disagreements if d.aspect == aspect and not d.explanation)
            tail = (f" ({explained:,} explained" + (f", {unexplained:,} NOT explained" if unexplained else "") + ")"
                    if explained or unexplained else "")
            lines.append(f"  {aspect:<22} {ok:,} of {n:,} agree{tail}")
        if self.disagreements:
            lines.append("")
            lines.append("disagreements")
        for d in self.disagreements:
            lines.append(f"  {d.flow}: {d.aspect}: Wireshark {d.wireshark}; we {d.ours}")
            lines.append(f"      {'why: ' + d.explanation if d.explanation else 'NOT EXPLAINED'}")
        lines.append("")
        bad = len(self.unexplained)
        n = len(self.disagreements)
        lines.append(f"{n:,} disagreement{'s' if n != 1 else ''}, "
                     + (f"{bad:,} not explained" if bad else "all explained" if n else "nothing to explain"))
        return "\n".join(lines)


ASPECTS = ("stream boundaries", "FIN senders", "active closer", "RST senders", "FIN retransmissions")


def crosscheck(path: str, options: Options | None = None) -> Crosscheck:
    """Compare our analysis of `path` with tshark's; see the module comment."""
    options = options or Options()
    check_readable(path)
    ours = analyze(path, options)
    result = Crosscheck(path, tshark_version(), warnings=list(ours.capture.warnings))
    frames = wireshark_frames(path, result.warnings)
    assignment = our_frames(path, options, ours)
    Comparison(ours, frames, assignment, options, result).run()
    return result


def tshark_version() -> str:
    return _version(tshark_path())


@functools.lru_cache(maxsize=4)
def _version(tshark: str) -> str:
    """'TShark 4.0.17', asked once per tshark (it costs a tshark start)."""
    out = subprocess.run([tshark, "--version"], capture_output=True, text=True, check=False).stdout
    first = out.splitlines()[0] if out else "tshark"
    return first.split(" (")[0] + (" " + first.split()[2] if len(first.split()) > 2 else "")


def wireshark_frames(path: str, warnings: list[str]) -> list[Frame]:
    """Every TCP frame with its tcp.stream, as tshark's own analysis numbers them; a capture cut
    short is compared up to the cut, with a warning."""
    import pandas as pd

    with tempfile.TemporaryFile() as errors:
        proc = start_tshark(command(path, FIELDS, preferences=[]) + ["-Y", "tcp"], errors)
        try:
            assert proc.stdout is not None
            table = pd.read_csv(proc.stdout, sep="\t", header=None, names=[c for c, _ in FIELDS], dtype=str,
                                quoting=3, na_filter=False, engine="c")
        except pd.errors.EmptyDataError:
            table = pd.DataFrame(columns=[c for c, _ in FIELDS])
        finally:
            stop_tshark(proc)
        if proc.returncode:
            message = tshark_message(errors) or f"exit status {proc.returncode}"
            if table.empty:
                raise CaptureError(path, f"tshark: {message}")
            warnings.append(f"tshark stopped early ({message.rstrip('.')}); compared the frames before that")
    out = []
    codes, chains = pd.factorize(table["protocols"])
    parsed = [chain(c) for c in chains]
    for k, c in enumerate(parsed):
        if not isinstance(c, Chain):
            continue  # a TCP header quoted in an ICMP error, or no segment by our rules
        part = table[codes == k]
        if part.empty:
            continue
        prefix = "ip" if c.version == 4 else "ip6"
        src = nth_occurrence(part[f"{prefix}_src"], c.ip_occurrence)
        dst = nth_occurrence(part[f"{prefix}_dst"], c.ip_occurrence)
        ip_id = hex_values(nth_occurrence(part["ip_id"], c.ip_occurrence)) if c.version == 4 else np.full(len(part), -1)
        cols = [first_occurrence(part[n]).tolist()
                for n in ("frame", "time", "stream", "sport", "dport", "seq", "ack", "length", "iface")]
        flags = hex_values(first_occurrence(part["flags"]))
        for row, s, d, fl, i, rt in zip(zip(*cols), src.tolist(), dst.tolist(), flags.tolist(), ip_id.tolist(),
                                        part["retransmission"].tolist()):
            number, ts, stream, sport, dport, seq, ack, length, iface = row
            if not stream or not seq:
                continue
            out.append(Frame(int(number), float(ts), int(stream), (*address(s), int(sport)), (*address(d), int(dport)),
                             int(fl) & 0xFF, int(seq), int(ack or 0), int(length or 0), bool(rt), int(iface or 0),
                             int(i)))
    out.sort(key=lambda f: f.number)
    return out


def our_frames(path: str, options: Options, ours: Analysis) -> dict[int, int]:
    """Frame number -> the row of our table whose incarnation holds it."""
    c = ours.columns
    starts: dict[tuple[int, Endpoint, Endpoint], list[tuple[int, int]]] = defaultdict(list)
    for row in range(len(ours)):
        ctx = int(c["ctx"][row])
        a = (*address(c["client_ip"][row]), int(c["client_port"][row]))
        b = (*address(c["server_ip"][row]), int(c["server_port"][row]))
        starts[(ctx, min(a, b), max(a, b))].append((int(c["first_frame"][row]), row))
    for v in starts.values():
        v.sort()
    out: dict[int, int] = {}
    for p, _ in open_source(path, Decoding(options.reader), options.chunk_bytes):
        for number, ctx, sh, sl, sp, dh, dl, dp in zip(p.frame.tolist(), p.ctx.tolist(), p.src_hi.tolist(),
                                                       p.src_lo.tolist(), p.sport.tolist(), p.dst_hi.tolist(),
                                                       p.dst_lo.tolist(), p.dport.tolist()):
            a, b = (sh, sl, sp), (dh, dl, dp)
            runs = starts.get((ctx, min(a, b), max(a, b)))
            if not runs:
                continue
            k = bisect.bisect_right(runs, (number, len(ours))) - 1
            if k >= 0:
                out[number] = runs[k][1]
    return out


class Comparison:
    """One capture's comparison: the rules for each aspect and their explanations."""

    def __init__(self, ours: Analysis, frames: list[Frame], assignment: dict[int, int], options: Options,
                 result: Crosscheck) -> None:
        self.c = ours.columns
        self.n = len(ours)
        self.frames = frames
        self.by_number = {f.number: f for f in frames}
        self.assignment = assignment
        self.options = options
        self.result = result
        self.flow_ids: list[str] = list(self.c["flow_id"])
        self.carried_in = ours.capture.carried_in

    def run(self) -> None:
        streams: dict[int, list[Frame]] = defaultdict(list)
        rows: dict[int, list[int]] = defaultdict(list)
        for f in self.frames:
            streams[f.stream].append(f)
            row = self.assignment.get(f.number, -1)
            rows[row].append(f.number)
        # Connected groups of streams and rows that share frames.
        parent: dict[tuple[str, int], tuple[str, int]] = {}

        def find(x: tuple[str, int]) -> tuple[str, int]:
            while parent.setdefault(x, x) != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for f in self.frames:
            parent[find(("s", f.stream))] = find(("r", self.assignment.get(f.number, -1 - f.stream)))
        for row in range(self.n):
            find(("r", row))
        groups: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)
        for x in list(parent):
            groups[find(x)].append(x)
        for members in sorted(groups.values(), key=lambda m: min(self._first_frame(x, streams) for x in m)):
            ss = sorted(k for kind, k in members if kind == "s")
            rr = sorted(k for kind, k in members if kind == "r" and k >= 0)
            self.result.compared["stream boundaries"] += 1
            if len(ss) == 1 and len(rr) == 1:
                self.result.agreed["stream boundaries"] += 1
                self._compare(rr[0], streams[ss[0]])
            else:
                self._boundaries(ss, rr, streams)

    def _first_frame(self, x: tuple[str, int], streams: dict[int, list[Frame]]) -> int:
        kind, k = x
        if kind == "s":
            return streams[k][0].number if streams.get(k) else 1 << 62
        return int(self.c["first_frame"][k]) if k >= 0 else 1 << 62

    def _name(self, rows: list[int], streams: list[int]) -> str:
        return ", ".join(self.flow_ids[r] for r in rows) if rows else f"tcp.stream {', '.join(map(str, streams))}"

    # ---- stream boundaries ------------------------------------------------------------------

    def _boundaries(self, ss: list[int], rr: list[int], streams: dict[int, list[Frame]]) -> None:
        ws = "; ".join(f"tcp.stream {s}: frames {streams[s][0].number}-{streams[s][-1].number} "
                       f"({len(streams[s])})" for s in ss)
        mine = "; ".join(f"{self.flow_ids[r]} from frame {int(self.c['first_frame'][r])}" for r in rr) or "no connection"
        why = self._why_boundaries(ss, rr, streams)
        self.result.disagreements.append(Disagreement(self._name(rr, ss), "stream boundaries", ws, mine, why))

    def _why_boundaries(self, ss: list[int], rr: list[int], streams: dict[int, list[Frame]]) -> str | None:
        """Why the streams and incarnations of one group start at different frames, when every
        difference is one our rules account for (docs/rules.md, "Vocabulary")."""
        c = self.c
        ctxs = {int(c["ctx"][r]) for r in rr}
        if len(ctxs) > 1:
            names = sorted({self.flow_ids[r].split("/")[0] for r in rr})
            return ("the same addresses and ports were carried in different VLANs or tunnels "
                    f"({', '.join(self._carried(n) for n in names)}): where a connection was carried is part of its "
                    "identity; Wireshark's conversations ignore VLAN ids and tunnels, so its stream mixes their "
                    "segments")
        if not rr:
            return ("we decoded no TCP segment in these frames: their encapsulation or link type is not one "
                    "this reader decodes (see the skipped frames; --reader tshark reads what tshark reads)")
        frames = sorted((f for s in ss for f in streams[s]), key=lambda f: f.number)
        ours = {int(c["first_frame"][r]): r for r in rr}
        theirs = {streams[s][0].number: s for s in ss}
        reasons = []
        for start in sorted(set(ours) | set(theirs)):
            if start in ours and start in theirs:
                continue
            frame = self.by_number.get(start)
            if frame is None:
                return None
            why = (self._why_we_start(ours[start], frame, frames, rr) if start in ours
                   else self._why_wireshark_starts(theirs[start], frame, frames))
            if why is None:
                return None
            reasons.append(why)
        return "; ".join(reasons) if reasons else None

    def _carried(self, prefix: str) -> str:
        what = {where_prefix(k).rstrip("/"): v for k, v in self.carried_in.items()}.get(prefix)
        return f"{prefix} = {what}" if what else prefix or "untagged"

    def _ended(self, row: int) -> int | None:
        """The frame after which our incarnation was over: its closing RST, or the last of its
        FINs and their ACKs once both sides sent one; None while it was open."""
        ev = [int(x) for x in self.c["evidence"][row]]
        if ev[5] >= 0:
            return ev[5]
        if ev[1] >= 0 and ev[2] >= 0:
            return max(ev[1:5])
        return None

    def _row_at(self, number: int, rr: list[int]) -> int | None:
        """Our incarnation (of these rows) that holds frame `number`."""
        before = [r for r in rr if int(self.c["first_frame"][r]) <= number]
        return max(before, key=lambda r: int(self.c["first_frame"][r])) if before else None

    def _why_we_start(self, row: int, start: Frame, frames: list[Frame], rr: list[int]) -> str | None:
        """We start an incarnation where Wireshark does not: it must be a SYN with a new ISN
        after the previous incarnation ended, or after an idle gap longer than 2xMSL."""
        earlier = [f for f in frames if f.number < start.number]
        previous = self._row_at(start.number - 1, rr)
        if not earlier or previous is None or start.flags & (SYN | ACK) != SYN:
            return None
        own_syn = self.by_number.get(int(self.c["evidence"][previous][0]))
        if own_syn is not None and own_syn.src == start.src and own_syn.seq == start.seq:
            return None  # the previous incarnation's own SYN again: no new incarnation
        ended = self._ended(previous)
        gap = start.ts - earlier[-1].ts
        if ended is not None and ended < start.number:
            why = f"after {self.flow_ids[previous]} ended (frame {ended})"
        elif gap > self.options.longest_time_wait_s:
            why = f"after {gap:,.0f} s idle, longer than 2xMSL"
        else:
            return None
        return (f"frame {start.number} is a SYN with a new ISN {why}: a new incarnation, {self.flow_ids[row]}; "
                "Wireshark kept it in the same stream")

    def _why_wireshark_starts(self, stream: int, start: Frame, frames: list[Frame]) -> str | None:
        """Wireshark starts a stream where we do not: it must be a SYN that is no new
        incarnation by our rules, a retransmitted SYN or a SYN meeting an open connection."""
        row = self.assignment.get(start.number)
        if row is None or start.flags & (SYN | ACK) != SYN:
            return None
        syn = self.by_number.get(int(self.c["evidence"][row][0]))
        if syn is not None and syn.number < start.number and start.seq == syn.seq and start.src == syn.src:
            return (f"tcp.stream {stream} starts at frame {start.number}, a SYN with the ISN of frame {syn.number}: "
                    "a retransmitted SYN is no new incarnation")
        earlier = [f for f in frames if f.number < start.number and self.assignment.get(f.number) == row]
        ended = self._ended(row)
        if not earlier or start.ts - earlier[-1].ts > self.options.longest_time_wait_s:
            return None
        if ended is not None and ended < start.number:
            return None  # after the close a new ISN is a new incarnation: we should have started one
        # Nor may a SYN with a new ISN follow our close within the same incarnation.
        if ended is not None and any(f.flags & (SYN | ACK) == SYN and f.number > ended and f.src == start.src
                                     and self.assignment.get(f.number) == row and (syn is None or f.seq != syn.seq)
                                     for f in frames):
            return None
        return (f"tcp.stream {stream} starts at frame {start.number}, a SYN with a new ISN while "
                f"{self.flow_ids[row]} was open: it meets the established socket (answered by a challenge ACK, "
                "RFC 5961), so it is no new incarnation")

    # ---- one stream, one incarnation ----------------------------------------------------------

    def _compare(self, row: int, frames: list[Frame]) -> None:
        c = self.c
        client = (*address(c["client_ip"][row]), int(c["client_port"][row]))
        sides = {"client": [f for f in frames if f.src == client], "server": [f for f in frames if f.src != client]}
        fins = {k: [f for f in v if f.flags & FIN] for k, v in sides.items()}
        rsts = {k: [f for f in v if f.flags & RST] for k, v in sides.items()}
        ev = [int(x) for x in c["evidence"][row]]
        name = self.flow_ids[row]

        theirs = {k: v[0].number if v else NONE_FRAME for k, v in fins.items()}
        mine = {"client": max(ev[1], NONE_FRAME), "server": max(ev[2], NONE_FRAME)}
        self._record("FIN senders", name, theirs == mine, _fin_text(theirs), _fin_text(mine),
                     lambda: self._why_copies([(theirs[k], mine[k]) for k in theirs if theirs[k] != mine[k]]))

        first_fin = min((v[0] for v in fins.values() if v), key=lambda f: f.number, default=None)
        ws_first = "none" if first_fin is None else ("client" if first_fin.src == client else "server")
        first_rst = min((v[0] for v in rsts.values() if v), key=lambda f: f.number, default=None)
        ws_rst = "none" if first_rst is None else ("client" if first_rst.src == client else "server")
        closer = str(c["active_closer"][row])
        if str(c["close_kind"][row]) == "rst":  # an abort: who closed it is who sent the RST (docs/rules.md "Vocabulary")
            ws_closer, shown = ws_rst, (f"shows no FIN and the first RST from the {ws_rst} (frame {first_rst.number})"
                                        if first_rst else "shows neither FIN nor RST")
        else:
            ws_closer, shown = ws_first, (f"shows the first FIN from the {ws_first} (frame {first_fin.number})"
                                          if first_fin else "shows no FIN")
        self._record("active closer", name, closer == ws_closer, shown,
                     {"none": "see no closer", "both": "judge both sides active closers"}.get(
                         closer, f"judge the {closer} the active closer"),
                     lambda: self._why_closer(closer, ws_closer, fins) or self._why_one_sided(closer, ws_closer, sides))

        our_rst = str(c["first_rst_by"][row])
        self._record("RST senders", name,
                     (our_rst, max(ev[5], NONE_FRAME)) == (ws_rst, first_rst.number if first_rst else NONE_FRAME),
                     f"shows the first RST from the {ws_rst} (frame {first_rst.number})" if first_rst else "shows no RST",
                     f"take the {our_rst}'s RST (frame {ev[5]}) as the one that ended it" if our_rst != "none"
                     else "count no RST as ending it",
                     lambda: self._why_rst(our_rst, ev[5], first_rst, frames) or (
                         self._why_copies([(first_rst.number, ev[5])]) if first_rst and our_rst == ws_rst else None))

        agree = True
        for side in ("client", "server"):
            flagged = [f for f in fins[side] if f.retransmission]
            count = int(c[f"fin_retransmissions_{side}"][row])
            if count == len(flagged):
                continue
            agree = False
            self.result.disagreements.append(Disagreement(
                f"{name} ({side})", "FIN retransmissions",
                f"flags {len(flagged)} FIN{'s' if len(flagged) != 1 else ''} from the {side} as retransmissions"
                + (f" (frames {', '.join(str(f.number) for f in flagged)})" if flagged else ""),
                f"count {count}", self._why_fin_retransmissions(count, flagged, fins[side])))
        self.result.compared["FIN retransmissions"] += 1
        self.result.agreed["FIN retransmissions"] += agree

    def _record(self, aspect: str, name: str, agree: bool, wireshark: str, ours: str,
                why: Callable[[], str | None] = lambda: None) -> None:
        self.result.compared[aspect] += 1
        if agree:
            self.result.agreed[aspect] += 1
        else:
            self.result.disagreements.append(Disagreement(name, aspect, wireshark, ours, why()))

    def _why_closer(self, closer: str, ws_first: str, fins: dict[str, list[Frame]]) -> str | None:
        """Our active closer is decided by seq/ACK causality, Wireshark shows capture order."""
        if not fins["client"] or not fins["server"]:
            return None
        a, b = fins["client"][0], fins["server"][0]
        a_acked, b_acked = _acknowledges(b, a), _acknowledges(a, b)
        if closer == "both" and not a_acked and not b_acked:
            return (f"a simultaneous close: the FINs crossed (frame {a.number} does not acknowledge frame {b.number} "
                    "nor the other way round), so both ends went through CLOSING to TIME_WAIT "
                    "(docs/rules.md, \"Close verdicts\" 2); capture order only shows which FIN passed here first")
        first, second = (a, b) if closer == "client" else (b, a)
        if closer in ("client", "server") and closer != ws_first and _acknowledges(second, first):
            return (f"by causality: the {ws_first}'s FIN (frame {second.number}) acknowledges the {closer}'s FIN "
                    f"(frame {first.number}), so the {closer}'s was sent first though it passed this capture point "
                    "later (docs/rules.md, \"Close verdicts\" 1)")
        return None

    def _why_one_sided(self, closer: str, ws_first: str, sides: dict[str, list[Frame]]) -> str | None:
        """The capture holds one direction: the closer's FIN is not in it, but the seen side's FIN
        acknowledges one sequence number more than anything it acknowledged before: that FIN."""
        if closer not in ("client", "server") or ws_first not in ("client", "server") or sides[closer]:
            return None
        seen = sides[ws_first]
        fin = next((f for f in seen if f.flags & FIN), None)
        before = [f.ack for f in seen if fin is not None and f.number < fin.number and f.flags & ACK]
        if fin is None or not before or seq_diff(fin.ack, max(before, key=lambda a: seq_diff(a, before[0]))) != 1:
            return None
        return (f"the capture holds one direction only: the {closer}'s FIN is not in it, and the {ws_first}'s FIN "
                f"(frame {fin.number}) acknowledges one sequence number more than the {ws_first} had acknowledged "
                f"before, the {closer}'s FIN, so the {closer} closed first (docs/rules.md \"Honesty about the capture "
                "point\")")

    def _why_rst(self, ours: str, our_frame: int, first: Frame | None, frames: list[Frame]) -> str | None:
        if first is None:
            return None
        synack = next((f for f in frames if f.flags & (SYN | ACK) == SYN | ACK), None)
        established = next((f for f in frames if synack is not None and f.number > synack.number
                            and f.flags & (SYN | ACK | RST) == ACK and f.src != synack.src), None)
        if established is None or first.number < established.number:
            return (f"the RST in frame {first.number} came before the handshake completed"
                    + (f" (third segment: frame {established.number})" if established else "")
                    + ": not the close of an established connection (docs/rules.md, \"Close verdicts\" 4)"
                    + (f"; the {ours}'s RST in frame {our_frame} ended it" if ours != "none" else ""))
        return None

    def _why_copies(self, pairs: list[tuple[int, int]]) -> str | None:
        """Wireshark's frame and ours are copies of one segment at two points: Wireshark's stream
        mixes the points, we keep the one that saw the connection first (copies.py)."""
        frames = [(self.by_number.get(w), self.by_number.get(o)) for w, o in pairs]
        if not pairs or not all(w is not None and o is not None and _copies(w, o) for w, o in frames):
            return None
        shown = ", ".join(f"frame {w} (Wireshark) and {o} (ours)" for w, o in pairs)
        return (f"{shown} are one segment seen at two points (same header, length and IP id): Wireshark's stream "
                "mixes the points, we keep the point that saw the connection first and set the copies aside "
                "(also_seen_on)")

    def _why_fin_retransmissions(self, mine: int, flagged: list[Frame], fins: list[Frame]) -> str | None:
        """We count FINs repeating an earlier FIN's sequence number (docs/rules.md, Close
        verdicts 5); Wireshark flags segments by its own retransmission rules."""
        repeats = [f for k, f in enumerate(fins) if any(g.seq == f.seq for g in fins[:k])]
        copies = [f for f in repeats if any(_copies(g, f) for g in fins if g.number < f.number)]
        other = [f for f in flagged if f not in repeats]
        if len(repeats) - len(copies) == mine and len(flagged) == len(repeats):
            return (f"{len(copies)} of the FINs Wireshark flags are copies of one FIN seen at another point "
                    "(interface, VLAN or tunnel; same IP id and sequence number): one segment seen twice, not sent "
                    "again, and set aside by us (also_seen_on)")
        if len(repeats) == mine and other:
            return (f"Wireshark also flags FIN segments whose sequence number no earlier FIN had (frames "
                    f"{', '.join(str(f.number) for f in other)}): a retransmission of data by its rules, not of the FIN")
        return None


def _copies(a: Frame, b: Frame) -> bool:
    """One segment seen at two points: the same header, length and IPv4 identification."""
    return (a.number != b.number and a.src == b.src and a.seq == b.seq and a.ack == b.ack and a.flags == b.flags
            and a.length == b.length and a.ip_id == b.ip_id and a.ip_id >= 0)


def _fin_text(frames: dict[str, int]) -> str:
    sent = [f"{k} in frame {v}" for k, v in frames.items() if v != NONE_FRAME]
    return "see FINs from " + ", ".join(sent) if sent else "see no FIN"


def _acknowledges(f: Frame, fin: Frame) -> bool:
    """`f` acknowledges the FIN `fin` (its ACK number is past the FIN's sequence number)."""
    return bool(f.flags & ACK) and seq_diff(f.ack, (fin.seq + fin.length + 1) & 0xFFFFFFFF) >= 0
