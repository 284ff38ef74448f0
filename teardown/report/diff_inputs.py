"""The two inputs of `teardown diff`, each a capture (analyzed here) or a result saved by
`teardown analyze -o NAME.parquet` (read back, not analyzed again), as compare.Snapshots.

The settings that shape the figures (--os, --time-wait, --host-os, --port-range) apply to both.
A saved result keeps the settings it was made with: a capture compared with it is analyzed
with those, unless the command line says otherwise, and a setting given that a saved result
was not made with is refused (its tables cannot be made again without the capture).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

from ..analysis import analyze
from ..compare import Snapshot, snapshot
from ..errors import CaptureError, UsageError
from ..options import Options
from .data import HOST_TABLES, ReportData
from .saved import PARQUET_MAGIC, read_parquet

# Options field -> the command line's flag for it.
SETTINGS = {"os": "--os", "time_wait_s": "--time-wait", "host_os": "--host-os", "port_range": "--port-range"}


def is_saved(path: str) -> bool:
    """A Parquet file (a saved result, or something to refuse as one); else taken as a capture."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == PARQUET_MAGIC
    except OSError:
        return False  # the capture reader says what is wrong with it


def snapshots(paths: Sequence[str], options: Options, given: set[str]) -> list[Snapshot]:
    """Each input as a snapshot, in order. `given`: the SETTINGS fields the command line set
    (the others in `options` are defaults, which a saved result's own settings replace)."""
    for path in paths:  # a missing input fails before the other is analyzed
        if not os.path.exists(path):
            raise CaptureError(path, "no such file")
    saved = {path: read_parquet(path) for path in paths if is_saved(path)}
    for path, data in saved.items():
        _check_settings(path, data.facts.options(), options, given)
    if saved:  # the captures as the saved results were made, where the command line is silent
        made_with = next(iter(saved.values())).facts.options()
        options = replace(options, **{f: getattr(made_with, f) for f in SETTINGS if f not in given})
    return [_of_saved(path, saved[path]) if path in saved else _of_capture(path, options) for path in paths]


def _check_settings(path: str, made_with: Options, options: Options, given: set[str]) -> None:
    for field, flag in SETTINGS.items():
        if field in given and getattr(options, field) != getattr(made_with, field):
            raise UsageError(f"{path}: a saved analysis, made with {flag} {_setting(made_with, field)}; "
                             f"{flag} {_setting(options, field)} cannot change it: analyze its capture again with "
                             f"{flag}, or leave {flag} out")


def _setting(options: Options, field: str) -> str:
    value = getattr(options, field)
    if field == "port_range":
        return f"{value[0]}-{value[1]}"
    if field == "host_os":
        return ",".join(f"{host}={profile.value}" for host, profile in value) or "(none)"
    if field == "time_wait_s":
        return "(the profile's)" if value is None else f"{value:g}"
    return str(value.value)


def _of_capture(path: str, options: Options) -> Snapshot:
    result = analyze(path, options)
    views = result.host_views
    tables = {"hosts": views.tables.hosts, "servers": views.tables.servers,
              "destinations": views.tables.destinations, "findings": views.findings_table()}
    cap = result.capture
    return snapshot(path, tuple(f.path for f in cap.files), (cap.first_ts, cap.last_ts), result.options, tables,
                    result.columns, tuple(cap.warnings))


def _of_saved(path: str, data: ReportData) -> Snapshot:
    missing = [name for name in HOST_TABLES if name not in data.tables]
    if missing:
        raise UsageError(f"{path}: saved without its {', '.join(missing)} table; write it again with "
                         "`teardown analyze CAPTURE -o NAME.parquet`")
    facts = data.facts
    tables = {name: data.columns_of(name) for name in HOST_TABLES}
    return snapshot(path, tuple(f.path for f in facts.files), (facts.first_ts, facts.last_ts), facts.options(),
                    tables, data.columns, facts.warnings)
