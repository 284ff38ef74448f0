"""The report's command line: `analyze --html` / `-o NAME.html`, Parquet that `teardown report`
renders without the capture, one-line errors (exit 2) for anything else, and never a write over
an input file."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from teardown.cli import main
from teardown.report.saved import read_parquet

from .conftest import CAPTURES

SAMPLE = CAPTURES / "tw_assassination.pcap"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def run(cwd: Path, *args: str) -> Run:
    """`teardown ARGS` in `cwd`, in this process (a subprocess costs a second of imports)."""
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(here)
    return Run(code, out.getvalue(), err.getvalue())


def page_data(html: str) -> str:
    """The JSON the page's script reads: everything the report shows but its generation time."""
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert match
    return match.group(1)


def test_html_flag_writes_under_reports(tmp_path: Path) -> None:
    r = run(tmp_path, "analyze", str(SAMPLE), "--html")
    assert r.returncode == 0, r.stderr
    report = tmp_path / "reports" / "tw_assassination.html"
    assert report.exists() and f"wrote the report of 2 flows to {Path('reports', report.name)}" in r.stdout
    r = run(tmp_path, "analyze", str(SAMPLE), "-o", "ticket/evidence.html", "--quiet")
    assert r.returncode == 0 and r.stdout == ""
    assert page_data((tmp_path / "ticket" / "evidence.html").read_text()) == page_data(report.read_text())


def test_one_flow_is_one_flow(tmp_path: Path) -> None:
    one = SAMPLE.parent / "server_first_close.pcap"
    for out, said in (("one.html", "wrote the report of 1 flow to"), ("one.parquet", "wrote 1 flow to")):
        r = run(tmp_path, "analyze", str(one), "-o", out)
        assert r.returncode == 0 and said in r.stdout, r.stdout
    r = run(tmp_path, "report", "one.parquet", "-o", "again.html")
    assert r.returncode == 0 and "wrote the report of 1 flow to" in r.stdout, r.stdout


def test_saved_parquet_renders_the_same_report(tmp_path: Path) -> None:
    assert run(tmp_path, "analyze", str(SAMPLE), "-o", "flows.parquet", "--html", "--quiet").returncode == 0
    r = run(tmp_path, "report", "flows.parquet", "-o", "again.html")
    assert r.returncode == 0, r.stderr
    assert page_data((tmp_path / "again.html").read_text()) == \
        page_data((tmp_path / "reports" / "tw_assassination.html").read_text())
    assert run(tmp_path, "analyze", str(SAMPLE), "-o", "tables/", "--quiet").returncode == 0
    r = run(tmp_path, "report", "tables/flows.parquet")
    assert r.returncode == 0 and (tmp_path / "reports" / "flows.html").exists()


def test_report_says_where_connections_were_carried_and_what_was_set_aside(tmp_path: Path) -> None:
    """A capture of one router on two interfaces: the report names the second interface as a
    carrier and the copies set aside, and says the same when rendered again from Parquet."""
    sample = CAPTURES / "two_interfaces.pcapng"
    assert run(tmp_path, "analyze", str(sample), "-o", "flows.parquet", "--html", "--quiet").returncode == 0
    html = (tmp_path / "reports" / "two_interfaces.html").read_text()
    assert '<span class="mono">c1/</span> interface 1' in html
    assert "3 connections seen at several points: 28 copied segments set aside (interface 1: 28)" in html
    assert run(tmp_path, "report", "flows.parquet", "-o", "again.html").returncode == 0
    assert page_data((tmp_path / "again.html").read_text()) == page_data(html)
    assert "28 copied segments set aside" in (tmp_path / "again.html").read_text()


@pytest.mark.parametrize("make, message", [
    (lambda d: (d / "x.parquet").write_text("flow_id,close_kind\n"), "not a Parquet file (starts with 66 6c 6f 77)"),
    (lambda d: shutil.copy(SAMPLE, d / "x.parquet"), "not a Parquet file (starts with d4 c3 b2 a1)"),
    (lambda d: __import__("pandas").DataFrame({"a": [1]}).to_parquet(d / "x.parquet"),
     "a Parquet file without teardown's report data"),
    (lambda d: (d / "x.parquet").write_bytes(b"PAR1" + b"\0" * 20), "damaged Parquet file"),
    (lambda d: None, "x.parquet: no such file"),
    (lambda d: (d / "x.parquet").mkdir(), "x.parquet: is a directory"),
])
def test_report_of_anything_else_is_one_line_and_exit_2(tmp_path: Path, make: object, message: str) -> None:
    make(tmp_path)  # type: ignore[operator]
    r = run(tmp_path, "report", "x.parquet")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and message in r.stderr, r.stderr
    assert not (tmp_path / "reports").exists()


def test_never_writes_over_an_input(tmp_path: Path) -> None:
    capture = tmp_path / "dump.pcap"
    shutil.copy(SAMPLE, capture)
    before = capture.read_bytes()
    r = run(tmp_path, "analyze", "dump.pcap", "-o", "dump.pcap", "--format", "csv")
    assert r.returncode == 2 and "is an input of this run" in r.stderr
    assert capture.read_bytes() == before
    assert run(tmp_path, "analyze", "dump.pcap", "-o", "flows.parquet", "--quiet").returncode == 0
    saved = (tmp_path / "flows.parquet").read_bytes()
    r = run(tmp_path, "report", "flows.parquet", "-o", "flows.parquet")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "is an input of this run" in r.stderr
    assert (tmp_path / "flows.parquet").read_bytes() == saved


def test_report_data_of_another_version_is_refused_in_one_line(tmp_path: Path) -> None:
    import json

    import pyarrow.parquet as pq

    assert run(tmp_path, "analyze", str(SAMPLE), "-o", "flows.parquet", "--quiet").returncode == 0
    table = pq.read_table(tmp_path / "flows.parquet")
    metadata = dict(table.schema.metadata)
    extra = json.loads(metadata[b"teardown.report"])
    assert extra["version"] == 2
    metadata[b"teardown.report"] = json.dumps({**extra, "version": 3}).encode()
    pq.write_table(table.replace_schema_metadata(metadata), tmp_path / "x.parquet")
    r = run(tmp_path, "report", "x.parquet")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "report data of version 3, this teardown reads version 2" in r.stderr


def test_a_version_1_file_with_its_tables_as_json_makes_the_same_report(tmp_path: Path) -> None:
    """Files written before the host tables moved to Arrow IPC (version 1) keep them as JSON
    columns, None where empty: read back with the schema's types, they make the same page.
    The capture's host tables have empty values (a peak never reached, a rate never seen)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    capture = CAPTURES / "tw_mixed_servers.pcap.gz"
    assert run(tmp_path, "analyze", str(capture), "-o", "v2.parquet", "--quiet").returncode == 0
    table = pq.read_table(tmp_path / "v2.parquet")
    metadata = dict(table.schema.metadata)
    extra = json.loads(metadata[b"teardown.report"])
    tables = {}
    for name in extra["tables"]:
        saved = pa.ipc.open_stream(metadata.pop(f"teardown.table.{name}".encode())).read_all()
        tables[name] = {column: saved.column(column).to_pylist() for column in saved.column_names}
    assert any(None in values for columns in tables.values() for values in columns.values())
    metadata[b"teardown.report"] = json.dumps({**extra, "version": 1, "tables": tables}).encode()
    pq.write_table(table.replace_schema_metadata(metadata), tmp_path / "v1.parquet")
    old, new = (read_parquet(str(tmp_path / f"{v}.parquet")) for v in ("v1", "v2"))
    for name in extra["tables"]:
        assert old.tables[name].schema.types == new.tables[name].schema.types, name
        assert old.tables[name].to_pylist() == new.tables[name].to_pylist(), name
    for version in ("v1", "v2"):
        assert run(tmp_path, "report", f"{version}.parquet", "-o", f"{version}.html").returncode == 0
    pages = [re.sub(r"on [-0-9]+ [:.0-9]+ UTC\. One", "", (tmp_path / f"{v}.html").read_text()) for v in ("v1", "v2")]
    assert pages[0] == pages[1]


def test_the_report_names_the_files_written_for_wireshark(tmp_path: Path) -> None:
    """With --annotate and --extract, the report's header names each file and what it holds,
    as the summary line says it; without them it names none."""
    r = run(tmp_path, "analyze", str(SAMPLE), "--annotate", "all.pcapng", "--extract", "flagged.pcapng",
            "--only", "assassination", "-o", "r.html")
    assert r.returncode == 0, r.stderr
    told = {line.split(": ", 1)[0].removeprefix("wrote "): line.split(": ", 1)[1]
            for line in r.stdout.splitlines() if line.startswith("wrote ") and ".pcapng:" in line}
    assert set(told) == {"all.pcapng", "flagged.pcapng"} and "(assassination)" in told["flagged.pcapng"]
    html = (tmp_path / "r.html").read_text()
    header = html.split("<dt>For Wireshark</dt>", 1)[1].split("</dd>", 1)[0]
    for name, what in told.items():
        assert f'<span class="mono">{name}</span>: {what}</li>' in header.replace("&#39;", "'")
    run(tmp_path, "analyze", str(SAMPLE), "-o", "plain.html")
    assert "For Wireshark" not in (tmp_path / "plain.html").read_text()
