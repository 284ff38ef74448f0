"""Packets, chunk after chunk -> finished flow rows. The one flow engine for files and live.

Segments go into the flow table (flows.py) in capture order; after each batch, the
incarnations that nothing can change any more are taken out and judged (verdicts.py). A tuple
is done once it has been idle past the longest TIME_WAIT plus a new-incarnation gap after it
closed, or past the keepalive horizon while open; a tuple reused over and over gives up its
older incarnations before that, when the table is crowded. A failed connection attempt (a
scan's or a flood's SYN, a refused connect) is held as long, but frozen into a few words once
its SYN's next retry is past due (docs/rules.md "Vocabulary", how long an incarnation is held).
So memory follows the connections alive at once, not the capture's size, and feeding a capture
in any pieces gives the same rows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar, overload

import numpy as np
import numpy.typing as npt

from .carriers import Contexts, Point
from .decode import Packets
from .flows import FlowTable, Records
from .options import Options
from .present import readable
from .verdicts import Columns, judge

# An open connection idle this long is given up: past Linux's default keepalive time (7200 s)
# plus its probes, a silent peer is gone.
OPEN_IDLE_S = 7200.0 + 9 * 75.0


Rows = TypeVar("Rows")  # what the engine gives for each judged slice


def _as_judged(columns: Columns) -> Columns:
    return columns


class Engine(Generic[Rows]):
    @overload
    def __init__(self: Engine[Columns], options: Options, contexts: Contexts | None = None,
                 judge_aside: bool = False) -> None: ...

    @overload
    def __init__(self, options: Options, contexts: Contexts | None, judge_aside: bool,
                 keep: Callable[[Columns], Rows]) -> None: ...

    def __init__(self, options: Options, contexts: Contexts | None = None, judge_aside: bool = False,
                 keep: Callable[[Columns], Rows] | None = None) -> None:
        """`judge_aside`: judge each slice of records on a thread of its own while this one reads
        and feeds the next batch. The flow table's C steps and numpy's loops release the GIL, so
        two cores overlap them (the 10 M-packet benchmark, --quiet: 9.6 s -> 6.3 s); rows come out
        one slice later, which suits a file read to its end, not a live view.

        `keep`: what to make of each judged slice, on the judging thread (the analysis packs the
        rows it holds to the end: packed.py); by default the columns as judged."""
        self._keep: Callable[[Columns], Rows] = keep if keep is not None else _as_judged  # type: ignore[assignment]
        self.options = options
        self.contexts = Contexts() if contexts is None else contexts  # the carriers the packets' ctx number
        gap = options.longest_time_wait_s  # a new incarnation may follow an idle gap of 2*MSL
        # Held past a close: the TIME_WAIT, then the gap after which a new SYN is a new incarnation.
        self.table = FlowTable(idle_gap_s=gap, closed_hold_s=2 * gap, open_hold_s=OPEN_IDLE_S)
        self._aside = ThreadPoolExecutor(1, thread_name_prefix="teardown-judge") if judge_aside else None
        self._judging: deque[Future[Rows]] = deque()

    def feed(self, packets: Packets, data: npt.NDArray[np.uint8], now: float | None = None) -> Iterator[Rows]:
        """Add packets (in capture order) from the batch `data`; yield the rows that are final,
        in the order they were handed out.

        `now` is the capture's clock (the latest timestamp read so far, or the wall clock live).
        """
        for records in self.records(packets, data, now):
            yield from self._judge(records)

    def _judged(self, records: Records, points: Mapping[int, Point]) -> Rows:
        return self._keep(readable(judge(records, self.options), points))

    def _judge(self, records: Records) -> Iterator[Rows]:
        """The rows of `records`, or, judging aside, of the slice before: one slice at most is
        judged while the next is handed out and fed, so the copies never pile up."""
        if self._aside is None:
            yield self._judged(records, self.contexts.points)
            return
        # The records are views of a buffer the next hand-out reuses, and the carriers may gain
        # entries meanwhile: the thread gets copies of both.
        copied = {name: values.copy() for name, values in records.items()}
        self._judging.append(self._aside.submit(self._judged, copied, dict(self.contexts.points)))
        while len(self._judging) > 1:
            yield self._judging.popleft().result()

    def records(self, packets: Packets, data: npt.NDArray[np.uint8], now: float | None = None) -> Iterator[Records]:
        """`feed`, giving the incarnation records instead of judging them (valid until the next)."""
        if len(packets):
            self.table.feed(packets, data)
        if now is None:
            if not len(packets):
                return
            now = float(np.nanmax(packets.ts))
        yield from self.table.retire(now)

    def track_changes(self) -> None:
        """Live: from now on, `provisional` can tell which incarnations changed."""
        self.table.track()

    def provisional(self) -> Columns | None:
        """Live: the rows of incarnations whose teardown is over (both FINs acknowledged, or
        reset) that got segments since the last call, judged as they stand. Later segments
        (a retransmitted FIN, an RST in TIME_WAIT, a reuse of the 4-tuple) can still change
        them; `feed` and `finish` give the final rows later. Call `track_changes` first."""
        records = self.table.peek()
        return None if records is None else readable(judge(records, self.options), self.contexts.points)

    def finish(self) -> Iterator[Rows]:
        """Everything still held, as the capture ends."""
        for records in self.table.finish():
            yield from self._judge(records)
        while self._judging:
            yield self._judging.popleft().result()
        if self._aside is not None:
            self._aside.shutdown()
