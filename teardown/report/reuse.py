"""A connection that reused a 4-tuple during TIME_WAIT -> one ladder with what met: the end of
the old incarnation (its FINs, its final ACK, the TIME_WAIT it left), then the reusing SYN and
its answer (docs/rules.md, "TIME_WAIT": reuse of a 4-tuple during TIME_WAIT).

The two ladders are joined when drawn (`as_drawn` here, `joined` in templates/ladder.js alike):
the old one's segments from its first FIN on, numbered against its own ISNs (`old_isn`), times
and frames counted from the new connection's first packet, its TIME_WAIT band ending where the
row of the old incarnation says it ended. The report stores each of the two ladders once.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import accumulate
from typing import Any

import numpy as np
import numpy.typing as npt

from ..decode import FIN, RST
from ..packed import distinct_objects
from .ladder import Ladder
from .states import NOTE

OLD_TAIL_MIN = 4  # segments of the old incarnation drawn when it sent no FIN
VERDICT_TEXT = {
    "accepted_timestamps": "reuse accepted: newer timestamps (RFC 6191)",
    "accepted_isn": "reuse accepted: ISN above the old connection's (RFC 1122)",
    "rejected": "reuse rejected: TIME_WAIT answers with an ACK of the old connection",
}


def previous_incarnations(flows: Mapping[str, npt.NDArray[Any]]) -> dict[int, int]:
    """Position of each flow that reused its 4-tuple during TIME_WAIT -> its previous
    incarnation's, from the analysis's columns."""
    incarnation = np.asarray(flows["incarnation"], np.int64)
    reusing = np.flatnonzero(np.asarray(flows["reuses_tuple_in_time_wait"], bool) & (incarnation > 0))
    if not len(reusing):
        return {}
    # One number per 4-tuple and carrier (what a flow id names before "/incarnation"): a rank
    # among the distinct ones of (addresses and carrier ranked together, the two ports).
    client = distinct_objects(np.asarray(flows["client_ip"], object))[1].astype(np.int64)
    server = distinct_objects(np.asarray(flows["server_ip"], object))[1].astype(np.int64)
    ctx = np.asarray(flows["ctx"], np.int64)
    # Ranked a pair at a time, so no product exceeds (rows x distinct values): no overflow.
    pair = np.unique(server * (int(client.max()) + 1) + client, return_inverse=True)[1].ravel()
    where = np.unique(pair * (int(ctx.max()) + 1) + ctx, return_inverse=True)[1]
    ports = np.asarray(flows["client_port"], np.int64) << 16 | np.asarray(flows["server_port"], np.int64)
    tuple_of = np.unique(where.ravel().astype(np.int64) << 32 | ports, return_inverse=True)[1].ravel()
    span = int(incarnation.max(initial=0)) + 1
    key = tuple_of * span + incarnation
    # The last row of each key, as a dict would keep them: the first of the keys reversed.
    distinct, first_reversed = np.unique(key[::-1], return_index=True)
    row_of_key = len(key) - 1 - first_reversed
    wanted = key[reusing] - 1  # the incarnation before, on the same tuple
    at = np.minimum(np.searchsorted(distinct, wanted), len(distinct) - 1)
    found = distinct[at] == wanted
    return dict(zip(reusing[found].tolist(), row_of_key[at[found]].tolist()))


def as_drawn(ladders: dict[int, Ladder], row: int, flows: Mapping[str, npt.NDArray[Any]]) -> Ladder:
    """Flow `row`'s ladder as the report draws it: joined after the end of its previous
    incarnation (`Ladder.previous`) when it has one, else as it is. `flows`: the per-flow
    table's columns as numpy."""
    lad, old = ladders[row], ladders[row].previous
    if old is None or old not in ladders:
        return lad
    first_ts = np.asarray(flows["first_ts"], np.float64)
    ended = float(np.asarray(flows["time_wait_end_ts"], np.float64)[old])
    verdict = flows["reuse_verdict"][row]
    return joined(lad, ladders[old], float(first_ts[row]), float(first_ts[old]), ended,
                  None if verdict is None else str(verdict))


def _absolute(lad: Ladder, first_us: int) -> tuple[list[int], list[int]]:
    return [first_us + t for t in accumulate(lad.times_us)], list(accumulate(lad.frames))


def joined(new: Ladder, old: Ladder, new_first_ts: float, old_first_ts: float,
           old_time_wait_end_ts: float | None, reuse_verdict: str | None) -> Ladder:
    """The old incarnation's end, then the new one: one ladder (see the module's docstring).
    The times are the two flows' rows' (`first_ts`, the old one's `time_wait_end_ts`: None or
    NaN when it had none), the verdict the new one's `reuse_verdict`."""
    o, n = old.shape, new.shape
    fins = [k for k, f in enumerate(o["flags"]) if f & FIN]
    start = fins[0] if fins else max(0, len(o["dir"]) - OLD_TAIL_MIN)
    count = len(o["dir"]) - start
    new_first = round(new_first_ts * 1e6)
    old_t, old_f = _absolute(old, round(old_first_ts * 1e6))
    new_t, new_f = _absolute(new, new_first)
    times, frames = old_t[start:] + new_t, old_f[start:] + new_f
    end_at = None
    if old_time_wait_end_ts is not None and old_time_wait_end_ts == old_time_wait_end_ts:  # not NaN
        end_us = round(old_time_wait_end_ts * 1e6)
        end_at = next((k for k, t in enumerate(times) if t >= end_us - 1), None)
    flags = o["flags"][start:] + n["flags"]
    if end_at is None:
        how = "still held when the capture ends"
    elif flags[end_at] & RST:
        how = "ended by an RST (assassinated)"
    else:
        how = "taken over by the reusing SYN" if end_at == count else "ended"
    bands = [[side, at - start, end_at, f"old connection's TIME_WAIT, {how}"] for side, at, *_ in o["tw"] if at >= start]
    note = VERDICT_TEXT.get(reuse_verdict) if reuse_verdict is not None else None
    syn_notes = [[count, int(n["dir"][0]), note, NOTE]] if note and n["dir"] else []
    shape = {
        "dir": o["dir"][start:] + n["dir"], "flags": flags,
        "seq": o["seq"][start:] + n["seq"], "ack": o["ack"][start:] + n["ack"], "len": o["len"][start:] + n["len"],
        "retr": o["retr"][start:] + n["retr"],
        "gap": [[at - start, k] for at, k in o["gap"] if at > start] + [[at + count, k] for at, k in n["gap"]],
        "lab": [[at - start, side, text, kind] for at, side, text, kind in o["lab"] if at >= start]
               + syn_notes + [[at + count, side, text, kind] for at, side, text, kind in n["lab"]],
        "tw": bands + [[side, at + count, *rest] for side, at, *rest in n["tw"]],
        "n": count + n["n"], "old": count, "old_isn": list(old.isn)}
    return Ladder(shape, [t - s for s, t in zip([new_first, *times], times)],
                  [f - e for e, f in zip([0, *frames], frames)], new.isn)
