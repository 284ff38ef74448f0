"""Packets, chunk after chunk -> finished flow rows. The one flow engine for files and live.

Each feed judges the new packets together with the rows carried for tuples still alive. A
tuple is retired (its rows emitted, its state dropped) once nothing more can change its
verdicts: idle past the longest TIME_WAIT after a close, or past the keepalive horizon while
open. So memory follows the connections alive at once, not the capture's size.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from .decode import Packets
from .flows import Rows, build, order
from .options import Options
from .verdicts import judge

Columns = dict[str, npt.NDArray[np.generic]]
# An open connection idle this long is given up: past Linux's default keepalive time (7200 s)
# plus its probes, a silent peer is gone.
OPEN_IDLE_S = 7200.0 + 9 * 75.0


class Engine:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.idle_gap_s = options.longest_time_wait_s
        self.carry: Rows | None = None
        self.carried_verdicts: Columns | None = None  # the carried tuples' rows as last judged
        self.emitted_per_tuple: dict[bytes, int] = {}

    def feed(self, packets: Packets, now: float | None = None) -> Iterator[Columns]:
        """Add packets (in capture order); yield the rows of tuples that can no longer change."""
        rows = Rows.of(packets)
        if self.carry is not None and len(self.carry):
            rows = Rows.concat([self.carry, rows])
        if not len(rows):
            return
        if now is None:
            now = float(np.nanmax(packets.ts)) if len(packets) else float(np.nanmax(rows.p.ts))
        yield from self._judge(rows, now)

    def finish(self) -> Iterator[Columns]:
        """Everything still held, as the capture ends."""
        # Nothing arrived since the carried tuples were judged: their rows are final as they are.
        if self.carried_verdicts is not None and len(self.carried_verdicts["flow_id"]):
            out, self.carried_verdicts, self.carry = self.carried_verdicts, None, None
            if self.emitted_per_tuple:
                self._renumber(out)
            yield out

    def _judge(self, rows: Rows, now: float) -> Iterator[Columns]:
        o = order(rows)
        inc = build(o, self.idle_gap_s)
        cols = judge(inc, self.options)
        # A tuple retires when all its incarnations are past the point where anything can change.
        closed = cols["close_kind"] != "open"
        horizon = np.where(closed, np.fmax(cols["last_ts"], np.nan_to_num(cols["time_wait_end_ts"], nan=-np.inf))
                           + self.idle_gap_s, cols["last_ts"] + OPEN_IDLE_S)
        tuple_horizon = np.full(o.n_tuples, -np.inf)
        np.maximum.at(tuple_horizon, inc.tuple_id, horizon)
        done_tuple = tuple_horizon < now
        done = done_tuple[inc.tuple_id]
        keep_rows = ~done_tuple[o.tuple_id]
        carried = o.rows.take(keep_rows)
        carried.known_u[:] = True
        self.carry = carried
        self.carried_verdicts = {k: v[~done] for k, v in cols.items()}
        if done.any():
            out = {k: v[done] for k, v in cols.items()}
            self._renumber(out)
            yield out

    def _renumber(self, out: Columns) -> None:
        """Continue the incarnation numbers of tuples that retired before and came back."""
        keys = [f"{v}|{ci}|{cp}|{si}|{sp}".encode() for v, ci, cp, si, sp in zip(
            out["vlan"].tolist(), out["client_ip"].tolist(), out["client_port"].tolist(),
            out["server_ip"].tolist(), out["server_port"].tolist())]
        index = out["incarnation"]
        for i, key in enumerate(keys):
            base = self.emitted_per_tuple.get(key, 0)
            if base:
                index[i] += base
                flow = out["flow_id"][i]
                out["flow_id"][i] = flow.rsplit("/", 1)[0] + f"/{index[i]}"
        for key, count in zip(*np.unique(np.array(keys, dtype=object), return_counts=True)):
            self.emitted_per_tuple[key] = self.emitted_per_tuple.get(key, 0) + int(count)
