"""A ladder (ladder.py, reuse.py) and its flow's row -> the diagram as SVG markup, drawn here so
the page shows the top flows' ladders without JavaScript and prints them. templates/ladder.js
draws the same geometry for any flow a reader picks; the two follow the same `LAYOUT`.

Labels never share a line: segment text above its arrow, notes under it (the rows make room),
states beside the lifelines, and each TIME_WAIT band's text on a line of its own at the bottom.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from ..decode import FIN, RST, SYN
from ..present import endpoint
from ..times import utc
from .ladder import Ladder
from .states import NOTE

if TYPE_CHECKING:
    import pyarrow as pa

LAYOUT = {"width": 880, "top": 74, "row": 36, "slope": 12, "client": 300, "server": 660, "time_x": 4,
          "note_h": 14, "band_text_h": 16}
FLAG_NAMES = [(0x02, "SYN"), (0x01, "FIN"), (0x04, "RST"), (0x08, "PSH"), (0x10, "ACK"), (0x20, "URG"),
              (0x40, "ECE"), (0x80, "CWR")]


def flag_text(flags: int) -> str:
    return ", ".join(name for bit, name in FLAG_NAMES if flags & bit) or "none"


def number(relative: int, isn: int | None) -> str:
    """Relative to the side's ISN; below it the relative number means nothing: the real one."""
    if relative >= 0 or isn is None:
        return str(relative)
    return f"{(isn + relative) % 2**32} (absolute)"


def clock(ts: float) -> str:
    return utc(ts, "%H:%M:%S.%f")


def seconds(s: float) -> str:
    if float(s).is_integer():
        return f"{s:.0f} s"
    return f"{s:.3f} s" if abs(s) >= 1 else f"{s * 1e3:.3f} ms"


def row_of(flows: pa.Table, r: int) -> dict[str, Any]:
    """Row `r` of the per-flow table as column -> value, None where empty (NaN too), with its
    position as "row". From the table itself: a few rows, not every column converted."""
    row: dict[str, Any] = flows.slice(r, 1).to_pylist()[0]
    return {k: None if v is None or v != v else v for k, v in row.items()} | {"row": r}


@dataclass(slots=True)
class _Svg:
    parts: list[str]

    def add(self, tag: str, attrs: dict[str, Any], text: str | None = None) -> None:
        a = " ".join(f'{k}="{escape(str(v))}"' for k, v in attrs.items())
        self.parts.append(f"<{tag} {a}>{escape(text)}</{tag}>" if text is not None else f"<{tag} {a}></{tag}>")


def band_text(row: dict[str, Any], capture_last_ts: float | None) -> str:
    """What the flow's own TIME_WAIT band says at its end."""
    if bool(row.get("tw_assassination")) and row.get("tw_assassination_ts") is not None:
        return f"TIME_WAIT ended early by RST at {clock(float(row['tw_assassination_ts']))} UTC"
    if row.get("time_wait_end_ts") is None or row.get("time_wait_start_ts") is None:
        return "TIME_WAIT"
    until, began = float(row["time_wait_end_ts"]), float(row["time_wait_start_ts"])
    text = f"TIME_WAIT until {clock(until)} UTC ({seconds(until - began)})"
    if capture_last_ts is not None and until > capture_last_ts:
        text += ", after the capture ended"
    if row.get("time_wait_restarts") is not None and int(row["time_wait_restarts"]):
        text += f" · restarted {int(row['time_wait_restarts'])}×"
    return text


def draw(lad: Ladder, row: dict[str, Any], capture_last_ts: float | None) -> Markup:
    """The ladder of one flow as an <svg class="ladder">."""
    L = LAYOUT
    shape = lad.shape
    n_segs, old = len(shape["dir"]), int(shape.get("old", 0))
    times = [t / 1e6 for t in accumulate(lad.times_us)]
    frames = list(accumulate(lad.frames))
    gap_before = {int(at): int(k) for at, k in shape["gap"]}
    notes: dict[int, list[list[Any]]] = {}
    for lab in shape["lab"]:
        if lab[3] == NOTE:
            notes.setdefault(lab[0], []).append(lab)
    y, ys = L["top"], []
    for i in range(n_segs + 1):
        if gap_before.get(i) or (old and i == old):
            y += L["row"]
        if i < n_segs:
            ys.append(y)
            y += L["row"] + L["note_h"] * len(notes.get(i, []))
    bands = shape["tw"]
    bottom = y + 8 + L["band_text_h"] * len(bands)
    side_x = [L["client"], L["server"]]
    svg = _Svg([])
    title = f"Ladder diagram of flow {row['flow_id']}: {shape['n']} segments" + \
        (f", {n_segs} drawn" if shape["n"] > n_segs else "") + "."
    svg.add("title", {}, title)
    names = [endpoint(row["client_ip"], row["client_port"]), endpoint(row["server_ip"], row["server_port"])]
    roles = ["client (inferred)", "server (inferred)"] if bool(row.get("roles_inferred")) else ["client", "server"]
    for side in (0, 1):
        svg.add("text", {"class": "endpoint", "x": side_x[side], "y": 18, "text-anchor": "middle"}, names[side])
        own = lad.isn[side]
        svg.add("text", {"class": "endpoint-sub", "x": side_x[side], "y": 34, "text-anchor": "middle"},
                roles[side] + ("" if own is None else f" · ISN {own}"))
        svg.add("line", {"class": "lifeline", "x1": side_x[side], "x2": side_x[side], "y1": 46, "y2": bottom - 4})
    svg.add("text", {"class": "time", "x": L["time_x"], "y": 34}, "time · frame")

    def arrives(k: int, side: int) -> float:
        return float(ys[k] + (0 if shape["dir"][k] == side else L["slope"]))

    for j, band in enumerate(bands):
        side, at = int(band[0]), int(band[1])
        start, end = arrives(at, side), float(y)
        if len(band) > 2:  # a band reuse.py carried over from the old incarnation: its end and text
            end = arrives(int(band[2]), side) if band[2] is not None else end
            text = str(band[3])
        else:
            text = band_text(row, capture_last_ts)
            killed = [lab[0] for lab in shape["lab"] if lab[1] == side and lab[3] == NOTE and "assassinated" in lab[2]]
            if killed:
                end = ys[killed[-1]] + L["slope"]
        text_y = y + 8 + L["band_text_h"] * j + 8
        svg.parts.append(f'<g class="tw" data-side="{"server" if side else "client"}">')
        svg.add("rect", {"class": "tw-band", "x": side_x[side] - 6, "y": start, "width": 12,
                         "height": max(4.0, end - start), "rx": 3})
        svg.add("text", {"class": "tw-text", "x": side_x[side] + (-10 if side else 10), "y": text_y,
                         "text-anchor": "end" if side else "start"}, text)
        svg.parts.append("</g>")
    middle = (L["client"] + L["server"]) / 2
    for at, count in gap_before.items():
        gy = (ys[at] if at < len(ys) else y) - L["row"] / 2 - 4
        svg.add("line", {"class": "gap-line", "x1": L["client"], "x2": L["server"], "y1": gy, "y2": gy})
        svg.add("text", {"class": "gap", "x": middle, "y": gy - 5, "text-anchor": "middle"},
                f"⋯ {count:,} segments not drawn ⋯")
    if old:
        gy = ys[old] - L["row"] / 2 - 4
        svg.add("line", {"class": "gap-line reuse-line", "x1": L["time_x"], "x2": L["server"], "y1": gy, "y2": gy})
        svg.add("text", {"class": "gap", "x": middle, "y": gy - 5, "text-anchor": "middle"},
                "the same 4-tuple again: a new connection")
    for k in range(n_segs):
        d, flags = int(shape["dir"][k]), int(shape["flags"][k])
        frm, to, y0 = side_x[d], side_x[1 - d], ys[k]
        retr = shape["retr"][k] == 1
        cls = "seg" + (" rst" if flags & RST else " fin" if flags & FIN else " syn" if flags & SYN else "") + \
            (" retransmission" if retr else "") + (" old" if k < old else "")
        dx = -9 if to > frm else 9
        svg.parts.append(f'<g class="{cls}" data-flags="{flag_text(flags)}" data-dir="{"s2c" if d else "c2s"}" '
                         f'data-frame="{frames[k]}">')
        svg.add("line", {"x1": frm, "y1": y0, "x2": to + dx * 0.6, "y2": y0 + L["slope"]})
        y1 = y0 + L["slope"]
        svg.add("polygon", {"points": f"{to} {y1} {to + dx} {y1 - 4.5} {to + dx} {y1 + 4.5}"})
        isn = shape["old_isn"] if k < old else lad.isn
        ack = shape["ack"][k]
        text = f"{flag_text(flags)}  seq {number(shape['seq'][k], isn[d])}" + \
            ("" if ack is None else f"  ack {number(ack, isn[1 - d])}") + \
            (f"  len {shape['len'][k]}" if shape["len"][k] else "") + ("  retransmission" if retr else "")
        svg.add("text", {"class": "seg-text", "x": middle, "y": y0 - 4, "text-anchor": "middle"}, text)
        svg.parts.append("</g>")
        svg.add("text", {"class": "time", "x": L["time_x"], "y": y0 + 4}, f"{times[k]:+.6f} s")
        svg.add("text", {"class": "frame", "x": L["time_x"], "y": y0 + 17}, f"#{frames[k]}")
    for lab in shape["lab"]:
        k, side, text, kind = int(lab[0]), int(lab[1]), str(lab[2]), int(lab[3])
        data = {"data-side": "server" if side else "client"}
        if kind == NOTE:
            below = ys[k] + L["slope"] + 16 + L["note_h"] * notes[k].index(lab)
            svg.add("text", {"class": "note", "x": middle, "y": below, "text-anchor": "middle", **data}, text)
            continue
        ly = arrives(k, side)
        svg.add("circle", {"cx": side_x[side], "cy": ly, "r": 3, "class": "state-dot"})
        svg.add("text", {"class": "state", "x": side_x[side] + (12 if side else -12), "y": ly + 4,
                         "text-anchor": "start" if side else "end", **data}, text)
    head = (f'<svg class="ladder" viewBox="0 0 {L["width"]} {bottom}" width="{L["width"]}" height="{bottom}" '
            f'role="img" data-row="{escape(str(row.get("row", "")))}">')
    return Markup(head + "".join(svg.parts) + "</svg>")
