"""Flow verdict rows written by hand (the columns the engine gives each incarnation), for the
tests of the host views and findings (tests/test_rules_timewait.py, tests/test_rules_findings.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from teardown.http import CAUSES, NO_CAUSE
from teardown.schema import CloseCause

T0 = 1_700_000_000.0  # 22:13:20 UTC, the capture's start in every test here
A, B, C = "198.18.0.1", "198.18.0.2", "198.18.0.3"

# One flow's verdicts: a client-first orderly close from A:40000 to B:8080 at T0, 1 s long.
ROW: dict[str, Any] = dict(
    client_ip=A, client_port=40000, server_ip=B, server_port=8080, ctx=0, incarnation=0, at=(0.0, 1.0),
    roles_inferred=False, one_sided=False, handshake="complete", close_kind="fin", active_closer="client",
    first_rst_by="none", rst_class=None, time_wait_on="none", tw=None, fin_retransmissions_client=0,
    fin_retransmissions_server=0, time_wait_restarts=0, final_ack_lost_after_capture=None, tw_assassination=False,
    reuses_tuple_in_time_wait=False, reuse_verdict=None, data_after_fin="none", half_close=False,
    half_close_s=np.nan, capture_loss=False, capture_loss_bytes=0, packets_c2s=3, cause=None)
OBJECT = {"client_ip", "server_ip", "handshake", "close_kind", "active_closer", "first_rst_by", "rst_class",
          "time_wait_on", "final_ack_lost_after_capture", "reuse_verdict", "data_after_fin"}


def flows(*rows: dict[str, Any]) -> dict[str, Any]:
    """Flow columns from rows given as changes to ROW: `at` (first, last) and `tw` (TIME_WAIT
    start, end) in seconds from T0; `cause` the close cause of a server-first close (no_payload
    unless given: the engine reads one for every such close, and only for those)."""
    out: dict[str, list[Any]] = {}
    for row in rows:
        row = {**ROW, **row}
        first, last = row.pop("at")
        tw = row.pop("tw")
        cause = row.pop("cause")
        if cause is None and row["active_closer"] == "server" and row["close_kind"] in ("fin", "fin_then_rst"):
            cause = CloseCause.no_payload
        row.update(first_ts=T0 + first, last_ts=T0 + last,
                   time_wait_start_ts=np.nan if tw is None else T0 + tw[0],
                   time_wait_end_ts=np.nan if tw is None else T0 + tw[1],
                   close_cause=NO_CAUSE if cause is None else CAUSES.index(cause))
        for k, v in row.items():
            out.setdefault(k, []).append(v)
    return {k: np.array(v, dtype=object if k in OBJECT else None) for k, v in out.items()}
