"""Per-flow columns -> which findings each flow shows: the report's "finding" filter, and the
flows that get a ladder diagram without being clicked.

The names are `teardown analyze --fail-on`'s where a flow condition has one there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd



@dataclass(frozen=True, slots=True)
class Flag:
    name: str
    label: str  # what a reader sees in the filter and beside a ladder
    test: Callable[[pd.DataFrame], pd.Series]
    ladder: bool  # the flow is drawn in the ladder section without a click (issue 4's list)


def _yes(s: pd.Series) -> pd.Series:
    return s.fillna(False).astype(bool)


FLAGS: list[Flag] = [
    Flag("assassination", "TIME_WAIT assassinated", lambda f: _yes(f["tw_assassination"]), ladder=True),
    Flag("fin-retransmission", "retransmitted FIN (final ACK lost)",
         lambda f: (f["fin_retransmissions_client"].fillna(0) + f["fin_retransmissions_server"].fillna(0)) > 0,
         ladder=True),
    Flag("reuse-in-time-wait", "4-tuple reused during TIME_WAIT", lambda f: _yes(f["reuses_tuple_in_time_wait"]),
         ladder=True),
    Flag("reuse-rejected", "reuse rejected by TIME_WAIT", lambda f: f["reuse_verdict"] == "rejected", ladder=True),
    Flag("simultaneous", "simultaneous close", lambda f: f["close_kind"] == "simultaneous", ladder=True),
    Flag("rst", "ended by RST", lambda f: f["close_kind"].isin(["rst", "fin_then_rst"]), ladder=True),
    Flag("half-close", "half-close", lambda f: _yes(f["half_close"]), ladder=True),
    Flag("data-after-fin", "new data after own FIN", lambda f: f["data_after_fin"] == "new_data", ladder=True),
    Flag("server-close", "server closed first", lambda f: f["active_closer"] == "server", ladder=False),
    Flag("refused", "refused", lambda f: f["close_kind"] == "refused", ladder=False),
    Flag("unanswered", "unanswered SYN", lambda f: f["close_kind"] == "unanswered", ladder=False),
    Flag("capture-loss", "capture loss", lambda f: _yes(f["capture_loss"]), ladder=False),
    Flag("roles-inferred", "roles inferred (no handshake)", lambda f: _yes(f["roles_inferred"]), ladder=False),
]


def flag_bits(flows: pd.DataFrame) -> npt.NDArray[np.int64]:
    """One integer per flow: bit i set when FLAGS[i] holds."""
    bits = np.zeros(len(flows), np.int64)
    for i, flag in enumerate(FLAGS):
        bits |= np.asarray(flag.test(flows), bool).astype(np.int64) << i
    return bits


LADDER_BITS = sum(1 << i for i, f in enumerate(FLAGS) if f.ladder)  # flag_bits' bits that earn a ladder
