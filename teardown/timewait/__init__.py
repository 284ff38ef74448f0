"""Per-flow verdicts -> TIME_WAIT as a resource: per-host occupancy, ephemeral-port pressure,
who closes first per server endpoint, and ranked findings with advice.

    occupancy.py  intervals -> step series, peaks, sliding-window counts
    http.py       first payload bytes -> why the server closed first (HTTP/1.x)
    tables.py     flow columns -> hosts, destinations, servers (numpy)
    finding.py    what a finding is; how findings write numbers, endpoints, examples
    flow_findings.py  per-flow flags -> findings per host or endpoint (FLOW_FLAGS)
    findings.py   tables -> host-level findings, and every finding ranked

Everything here is numpy; `analysis.Analysis` turns the tables into DataFrames on demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..options import Options
from .finding import Finding
from .findings import findings, peers_text
from .occupancy import Floats, Ints
from .tables import Columns, Table, Tables, compute

__all__ = ["Finding", "HostViews", "host_views"]


@dataclass(slots=True)
class HostViews:
    tables: Tables
    findings: list[Finding]

    def hosts_table(self) -> Table:
        """The hosts table with the peers at each host's peak written out."""
        hosts = dict(self.tables.hosts)
        peers = hosts["time_wait_peak_peers"].copy()
        for i in np.flatnonzero(hosts["time_wait_peak"] > 0):
            peers[i] = peers_text(self.tables, int(i))
        hosts["time_wait_peak_peers"] = peers
        return hosts

    def findings_table(self) -> Table:
        f = self.findings
        return {"severity": np.array([x.severity.value for x in f], object),
                "kind": np.array([x.kind.value for x in f], object),
                "subject": np.array([x.subject for x in f], object),
                "message": np.array([x.message for x in f], object),
                "advice": np.array([x.advice for x in f], object)}

    def series(self, subject: str) -> tuple[Floats, Ints]:
        """The TIME_WAIT step series of a host ("198.18.0.2") or of the server's side of one
        server endpoint ("198.18.0.2:8080", "[fd00::2]:8080"): (ts, count from ts on)."""
        t = self.tables
        hosts = t.host_labels
        found = np.flatnonzero(hosts == subject)
        if len(found):
            return t.time_wait.series(t.flow_client, t.flow_server, int(found[0]))
        ip, _, port = subject.rpartition(":")
        ip = ip.strip("[]")
        if port.isdigit():
            s = t.servers
            row = np.flatnonzero((s["server_ip"] == ip) & (s["server_port"] == int(port)))
            if len(row):
                return t.time_wait.series(None, t.flow_endpoint, int(row[0]))
        raise UsageError(f"{subject}: no such host or server endpoint in this capture "
                         "(hosts: .hosts['host'], endpoints: server_ip:server_port of .servers)")


def host_views(columns: Columns, first_ts: float | None, last_ts: float | None, options: Options) -> HostViews:
    tables = compute(columns, first_ts, last_ts, options)
    return HostViews(tables, findings(tables, columns, options))
