"""The report's tables -> its verdict: a few headline numbers (who closes first, the highest
TIME_WAIT, the fullest port range, the fastest connection rate against the rate its ports
sustain), then the host-level findings as issue 3 ranked them, each with its advice.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import charts
from .charts import endpoint, percent
from .data import ReportData


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    value: str
    detail: str
    number: float  # what `value` shows, for the tests against the tables
    tone: str = ""  # "critical" or "warning" when the number is the problem


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str
    kind: str
    subject: str
    message: str
    advice: str


def _clock(ts: Any) -> str:
    import pandas as pd

    if pd.isna(ts):
        return "an unknown time"
    return datetime.datetime.fromtimestamp(float(ts), datetime.timezone.utc).strftime("%H:%M:%S UTC")


def figures(data: ReportData) -> list[Figure]:
    flows = data.flows
    kinds = flows["close_kind"].value_counts()
    ended = ", ".join(f"{int(n):,} {kind}" for kind, n in kinds.items() if n)
    out = [Figure("Connections", f"{len(flows):,}", f"by close kind: {ended}" if ended else "none", len(flows))]
    closer = flows["active_closer"].astype(object)
    closed = int(closer.isin(["client", "server", "both"]).sum())
    if closed:
        server = int((closer == "server").sum()) / closed
        out.append(Figure("Closed first by the server", percent(server),
                          f"client {percent(int((closer == 'client').sum()) / closed)}, both "
                          f"{percent(int((closer == 'both').sum()) / closed)} of {closed:,} FIN closes", server,
                          "warning" if server > 0.5 else ""))
    hosts = data.tables.get("hosts")
    if hosts is not None and len(hosts) and hosts["time_wait_peak"].fillna(0).max() > 0:
        top = hosts.iloc[int(np.argmax(hosts["time_wait_peak"].fillna(0).to_numpy(np.int64)))]
        low = " (a lower bound: it falls where TIME_WAITs begun before the capture are invisible)" \
            if bool(top["time_wait_peak_may_be_low"]) else ""
        out.append(Figure("Most TIME_WAIT at once", f"{int(top['time_wait_peak']):,}",
                          f"on {top['host']} at {_clock(top['time_wait_peak_ts'])}{low}", int(top["time_wait_peak"])))
    dests = data.tables.get("destinations")
    if dests is not None and len(dests):
        full = dests.iloc[int(np.argmax(dests["port_utilisation_peak"].fillna(0).to_numpy(np.float64)))]
        share = float(full["port_utilisation_peak"])
        out.append(Figure("Fullest ephemeral port range", percent(share),
                          f"{int(full['ports_in_use_peak']):,} of {int(full['port_range_size']):,} ports, "
                          f"{full['client_ip']} → {endpoint(full['server_ip'], full['server_port'])}", share,
                          "critical" if share >= 0.9 else "warning" if share >= 0.5 else ""))
        load = dests["observed_rate_peak"].astype(float) / dests["sustainable_rate"].astype(float)
        fast = dests.iloc[int(np.argmax(load.fillna(0).to_numpy(np.float64)))]
        rate, sustainable = float(fast["observed_rate_peak"]), float(fast["sustainable_rate"])
        out.append(Figure("Fastest new-connection rate", charts.rate(rate),
                          f"against {charts.rate(sustainable)} sustainable, {fast['client_ip']} → "
                          f"{endpoint(fast['server_ip'], fast['server_port'])}", rate,
                          "warning" if rate > sustainable else ""))
    return out


def findings(data: ReportData) -> list[Finding]:
    table = data.tables.get("findings")
    if table is None:
        return []
    return [Finding(str(r["severity"]), str(r["kind"]), str(r["subject"]), str(r["message"]), str(r["advice"]))
            for r in table.to_dict("records")]
