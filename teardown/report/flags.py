"""Per-flow columns -> which findings each flow shows: the report's "finding" filter, and the
flows that get a ladder diagram without being clicked.

The conditions are timewait.flow_findings.FLOW_FLAGS, so a flag's name is the finding kind and
the `--fail-on` name of the same flows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..schema import FindingKind
from ..timewait.flow_findings import FLOW_FLAGS


@dataclass(frozen=True, slots=True)
class Flag:
    kind: FindingKind  # the condition is FLOW_FLAGS[kind]: the one list --fail-on and the findings read
    label: str  # what a reader sees in the filter and beside a ladder
    ladder: bool  # the flow is drawn in the ladder section without a click

    @property
    def name(self) -> str:
        return self.kind.value


FLAGS: list[Flag] = [
    Flag(FindingKind.assassination, "TIME_WAIT assassinated", ladder=True),
    Flag(FindingKind.fin_retransmission, "retransmitted FIN (final ACK lost)", ladder=True),
    Flag(FindingKind.reuse_in_time_wait, "4-tuple reused during TIME_WAIT", ladder=True),
    Flag(FindingKind.reuse_rejected, "reuse rejected by TIME_WAIT", ladder=True),
    Flag(FindingKind.simultaneous, "simultaneous close", ladder=True),
    Flag(FindingKind.abort, "ended by RST", ladder=True),
    Flag(FindingKind.half_close, "half-close", ladder=True),
    Flag(FindingKind.data_after_fin, "new data after own FIN", ladder=True),
    Flag(FindingKind.server_close, "server closed first", ladder=False),
    Flag(FindingKind.refused, "refused", ladder=False),
    Flag(FindingKind.handshake_reset, "RST during the handshake", ladder=False),
    Flag(FindingKind.unanswered, "unanswered SYN", ladder=False),
    Flag(FindingKind.capture_loss, "capture loss", ladder=False),
    Flag(FindingKind.one_sided, "one direction only in the capture", ladder=False),
    Flag(FindingKind.roles_inferred, "roles inferred (no handshake)", ladder=False),
    Flag(FindingKind.lost_between_points, "lost between capture points", ladder=True),
]


def flag_bits(columns: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[np.int64]:
    """One integer per flow of the analysis's columns (or of a table read back: TableColumns):
    bit i set when FLAGS[i] holds."""
    bits = np.zeros(len(columns["first_ts"]), np.int64)
    for i, flag in enumerate(FLAGS):
        bits |= np.asarray(FLOW_FLAGS[flag.kind](columns), bool).astype(np.int64) << i
    return bits


LADDER_BITS = sum(1 << i for i, f in enumerate(FLAGS) if f.ladder)  # flag_bits' bits that earn a ladder
