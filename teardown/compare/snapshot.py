"""One analysis as a diff sees it (`Snapshot`): per scope, each subject's figures, and the
findings by kind and subject; made from the host-level tables and a few per-flow columns,
whether an analysis has just made them or a saved result holds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..options import Options
from ..packed import distinct_objects
from ..present import endpoint
from ..schema import CloseKind, Scope, Severity
from ..timewait.tables import host_labels
from .metrics import close_kind, of_scope

Columns = Mapping[str, npt.NDArray[Any]]  # a table as column -> numpy values (NaN or None where empty)
Figures = dict[str, float]  # metric -> value; NaN where the table leaves it empty
CAPTURE = "capture"  # the subject of Scope.capture
# The per-flow columns a snapshot reads (and flow_id or ctx, which say where a flow was carried).
FLOW_COLUMNS_READ = ("close_kind", "server_ip", "server_port")


@dataclass(frozen=True, slots=True)
class Seen:
    """A finding as one analysis states it."""

    severity: Severity
    message: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    label: str  # the input as given (a capture's path, a saved result's)
    files: tuple[str, ...]  # the capture files the analysis read
    first_ts: float | None
    last_ts: float | None
    options: Options  # the settings the analysis ran with
    subjects: dict[Scope, dict[str, Figures]] = field(default_factory=dict)  # scope -> subject -> figures
    findings: dict[tuple[str, str], Seen] = field(default_factory=dict)  # (kind, subject) -> as stated
    warnings: tuple[str, ...] = ()  # what reading the capture warned of (damage, skipped frames)

    def figures(self, scope: Scope, subject: str) -> Figures | None:
        return self.subjects.get(scope, {}).get(subject)

    @property
    def connections(self) -> int:
        return int(self.subjects[Scope.capture][CAPTURE]["connections"])


def snapshot(label: str, files: tuple[str, ...], span: tuple[float | None, float | None], options: Options,
             tables: Mapping[str, Columns], flows: Columns, warnings: tuple[str, ...] = ()) -> Snapshot:
    """`tables`: hosts, servers, destinations and findings (schema.TABLES' columns); `flows`: at
    least FLOW_COLUMNS_READ, and ctx (a fresh analysis) or flow_id (a saved one)."""
    hosts, servers, dests = tables["hosts"], tables["servers"], tables["destinations"]
    endpoints = [endpoint(ip, int(port)) for ip, port in zip(servers["server_ip"].tolist(),
                                                              np.asarray(servers["server_port"]).tolist())]
    clients = np.asarray(dests["client_ip"], object).tolist()
    toward = [endpoint(ip, int(port)) for ip, port in zip(dests["server_ip"].tolist(),
                                                          np.asarray(dests["server_port"]).tolist())]
    subjects = {
        Scope.host: _rows(hosts, [str(h) for h in hosts["host"].tolist()], Scope.host),
        Scope.endpoint: _rows(servers, endpoints, Scope.endpoint),
        Scope.destination: _rows(dests, [f"{c} -> {t}" for c, t in zip(clients, toward)], Scope.destination),
    }
    kinds = _close_kinds(flows)
    for subject, counts in kinds.items():
        if subject in subjects[Scope.endpoint]:
            subjects[Scope.endpoint][subject].update(counts)
    subjects[Scope.capture] = {CAPTURE: _capture(hosts, servers, dests, kinds)}
    return Snapshot(label, files, span[0], span[1], options, subjects, _findings(tables["findings"]), warnings)


def _rows(table: Columns, subjects: list[str], scope: Scope) -> dict[str, Figures]:
    """Each row's figures of `scope` (close kinds are added from the flows)."""
    names = [m.name for m in of_scope(scope) if m.name in table]
    values = {name: np.asarray(table[name], np.float64) for name in names}  # NaN stays NaN: empty
    return {subject: {name: float(values[name][i]) for name in names} for i, subject in enumerate(subjects)}


def _close_kinds(flows: Columns) -> dict[str, Figures]:
    """Per server endpoint ("198.18.0.2:8080", with the host label's vlanN/ or cN/ where it was
    carried so), the connections of each close kind it had (the kinds it had none of left out)."""
    ips = np.asarray(flows["server_ip"], object)
    if "ctx" in flows:
        labels = host_labels(ips, np.asarray(flows["ctx"]))
    else:  # a saved result: the flow id starts with where it was carried ("vlan100/", "c2/")
        ids = np.asarray(flows["flow_id"], object).tolist()
        prefixes = np.array([i.split("/", 1)[0] + "/" if i[:1] in ("v", "c") else "" for i in ids], object)
        labels = np.char.add(prefixes.astype(str), ips.astype(str)).astype(object) if prefixes.any() else ips
    label_names, label_codes = distinct_objects(np.asarray(labels, object))
    kind_names, kind_codes = distinct_objects(np.asarray(flows["close_kind"], object))
    port = np.asarray(flows["server_port"], np.int64)
    key = (label_codes.astype(np.int64) * 65536 + port) * len(kind_names) + kind_codes
    out: dict[str, Figures] = {}
    keys, counts = np.unique(key, return_counts=True)
    for k, n in zip(keys.tolist(), counts.tolist()):
        where, kind = divmod(k, len(kind_names))
        subject = endpoint(label_names[where // 65536], where % 65536)
        if kind_names[kind] in CloseKind.__members__:
            out.setdefault(subject, {})[close_kind(CloseKind(kind_names[kind]))] = float(n)
    return out


def _capture(hosts: Columns, servers: Columns, dests: Columns, kinds: Mapping[str, Figures]) -> Figures:
    """All connections: the servers table summed (every connection has one server endpoint),
    its shares weighted by each endpoint's closed connections; the worst host and destination."""
    def total(name: str) -> float:
        return float(np.nansum(np.asarray(servers[name], np.float64)))

    closed = np.asarray(servers["closed"], np.float64)
    out: Figures = {name: total(name) for name in ("connections", "closed", "aborted_by_server", "aborted_by_client",
                                                   "refused", "server_time_wait_total", "client_time_wait_total")}
    for share in ("server_closed_first_share", "client_closed_first_share", "simultaneous_share", "aborted_share"):
        part = float(np.nansum(np.asarray(servers[share], np.float64) * closed))
        out[share] = part / out["closed"] if out["closed"] else np.nan
    for counts in kinds.values():
        for name, n in counts.items():
            out[name] = out.get(name, 0.0) + n
    out["time_wait_peak"] = float(np.max(np.asarray(hosts["time_wait_peak"], np.float64), initial=0.0))
    utilisation = np.asarray(dests["port_utilisation_peak"], np.float64)
    out["port_utilisation_peak"] = float(np.nanmax(utilisation)) if np.isfinite(utilisation).any() else np.nan
    exhaustion = np.asarray(dests["seconds_to_exhaustion"], np.float64)
    out["seconds_to_exhaustion"] = float(np.nanmin(exhaustion)) if np.isfinite(exhaustion).any() else np.nan
    return out


def _findings(table: Columns) -> dict[tuple[str, str], Seen]:
    """By (kind, subject); one finding of a kind per subject (findings.py makes no more)."""
    out: dict[tuple[str, str], Seen] = {}
    for severity, kind, subject, message in zip(*(np.asarray(table[c], object).tolist()
                                                  for c in ("severity", "kind", "subject", "message"))):
        out.setdefault((str(kind), str(subject)), Seen(Severity(severity), str(message)))
    return out
