"""What a finding is, and the few ways findings write numbers, times, endpoints and examples:
one place, so every rule (host-level or per-flow) reads the same to the person on call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..present import endpoint
from ..schema import FindingKind, Severity
from ..times import CLOCK, utc

Columns = Mapping[str, npt.NDArray[Any]]  # the per-flow columns (teardown.schema.FLOW_COLUMNS)
SEVERITY_RANK = {Severity.critical: 0, Severity.warning: 1, Severity.info: 2}
EXAMPLES = 3  # flow ids quoted in a finding's message


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    kind: FindingKind
    subject: str
    message: str
    advice: str
    weight: float = 0.0  # the number that ranks findings of one severity: larger first


def clock(ts: float) -> str:
    return utc(ts, CLOCK) + " UTC"


def percent(share: float) -> str:
    """Whole percent, never rounded up to 100 % or down to 0 % when it is not."""
    value = round(share * 100)
    if share < 1:
        value = min(value, 99)
    if 0 < share and value == 0:
        return "< 1 %"
    return f"{value} %"


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 connection', '2,000 connections'."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"


def of_its(k: int, total: int, word: str, words: str | None = None) -> str:
    """'2 of its 5 connections', 'all 5 of its connections', 'its only connection'."""
    if k == total:
        return f"its only {word}" if total == 1 else f"all {total:,} of its {words or word + 's'}"
    return f"{k:,} of its {plural(total, word, words)}"


def of_all(k: int, total: int, word: str, words: str | None = None) -> str:
    """'2 of 5 connections', 'all 5 connections', 'the only connection'."""
    if k == total:
        return f"the only {word}" if total == 1 else f"all {total:,} {words or word + 's'}"
    return f"{k:,} of {plural(total, word, words)}"


def examples(c: Columns, rows: npt.NDArray[np.int64]) -> str:
    """' (e.g. a>b/0, c>d/0 and 12 more)': a few of the flows behind a count, by flow_id."""
    if not len(rows):
        return ""
    first = rows[:EXAMPLES]
    text_at = getattr(c, "text_at", None)  # FlowColumns builds text columns for these rows only
    if text_at is not None:
        ids = text_at(first)["flow_id"]
    elif "flow_id" in c:
        ids = np.asarray(c["flow_id"])[first]
    else:  # bare columns (tests, hand-made tables): the endpoints say which flows
        ids = [f"{endpoint(c['client_ip'][i], c['client_port'][i])}>{endpoint(c['server_ip'][i], c['server_port'][i])}"
               for i in first.tolist()]
    more = len(rows) - len(first)
    return f" (e.g. {', '.join(map(str, ids))}{f' and {more:,} more' if more else ''})"
