"""Reports of the sample captures, made once per test session, shared by the report tests."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

import teardown
from teardown.filters import display_filters
from teardown.present import _Python
from teardown.report import ReportData, from_analysis, render_html

from .conftest import CAPTURES

SAMPLES = sorted(p for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng", ".gz"))


def stem(path: Path) -> str:
    return path.name.split(".")[0]


@functools.cache
def report_data(name: str) -> ReportData:
    """The report data of captures/NAME.*"""
    capture = next(p for p in SAMPLES if stem(p) == name)
    return from_analysis(teardown.analyze(str(capture)))


def write_report(data: ReportData, path: Path) -> Path:
    path.write_text(render_html(data), encoding="utf-8")
    return path


def many_flows(n: int) -> ReportData:
    """`n` flows made by repeating the rows of a real sample with new client ports and times,
    for the size and responsiveness checks; no ladders (there is no capture behind them)."""
    base = report_data("many_reuse")
    rows = base.flows.to_pandas()
    rows = rows.iloc[np.arange(n) % len(rows)].reset_index(drop=True)
    i = np.arange(n)
    rows["client_port"] = pd.array(1024 + i % 60000, dtype="Int64")
    rows["incarnation"] = pd.array(i // 60000, dtype="Int64")
    shift = pd.array(i * 0.001, dtype="Float64")
    for name in [c for c in rows.columns if c.endswith("_ts")]:
        rows[name] = rows[name] + shift
    rows["flow_id"] = pd.array([f"{c}:{p}>{s}:{q}/{i}" for c, p, s, q, i in zip(
        rows["client_ip"], rows["client_port"], rows["server_ip"], rows["server_port"], rows["incarnation"])],
        dtype="string")  # no VLAN and IPv4 in many_reuse: as flows.py spells it
    # As filters.py spells them, each flow 10 frames on from the previous one's first, of one carrier.
    first = 1 + 10 * i
    columns = {name: rows[name].to_numpy(object if name.endswith("_ip") else np.int64)
               for name in ("client_ip", "server_ip", "client_port", "server_port", "ip_version")}
    columns |= {"file_frames": np.stack([first, first + 9 + i % 7], axis=1), "ctx": np.zeros(n, np.int64)}
    rows["display_filter"] = pd.array(display_filters(columns, lambda _: "", _Python()), dtype="string")
    return ReportData(base.facts, pa.Table.from_pandas(rows, schema=base.flows.schema, preserve_index=False))
