"""`teardown analyze` and the host-level views: findings first, every table into a directory,
--port-range, the host-level --fail-on names, no pandas on the terminal path, and the README's
generated column tables for them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from teardown.cli import main
from teardown.schema import TABLES, markdown, markers

from .conftest import CAPTURES, ROOT

BURST = str(CAPTURES / "tw_server_burst.pcap.gz")
NARROW = str(CAPTURES / "tw_narrow_port_range.pcap.gz")


def test_findings_come_before_the_tables(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    assert main(["analyze", BURST]) == 0
    out = capsys.readouterr().out
    assert "\nfindings, most severe first\n  WARNING  server-close: 198.18.0.2:8080 closed 100 % of 2,000 connections " \
        "first" in out
    assert out.index("advice: ") < out.index("close kind ")


def test_no_findings_still_says_the_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(CAPTURES / "client_first_close.pcap")]) == 0
    out = capsys.readouterr().out
    assert "none: peak TIME_WAIT 1 on 198.18.0.1" in out.split("\n\n")[1]


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_a_directory_gets_every_table(tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tables"
    assert main(["analyze", NARROW, "--port-range", "40000-40049", "-o", f"{out}/", "--format", fmt]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.{fmt}" for name in TABLES)
    if fmt == "json":
        findings = json.loads((out / "findings.json").read_text())
        assert findings[0]["kind"] == "port-exhaustion" and findings[0]["severity"] == "critical"
        dest = json.loads((out / "destinations.json").read_text())
        assert dest[0]["ports_in_use_peak"] == 50
    assert "flows.%s, hosts.%s" % (fmt, fmt) in capsys.readouterr().out


def test_an_existing_directory_defaults_to_parquet(tmp_path: Path) -> None:
    assert main(["analyze", BURST, "-o", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "servers.parquet").exists() and (tmp_path / "flows.parquet").exists()


@pytest.mark.parametrize("bad", ["40000", "40000-", "a-b", "5-3", "1-70000"])
def test_a_malformed_port_range_is_one_line_and_exit_2(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", BURST, "--port-range", bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"teardown: --port-range {bad}") and err.count("\n") == 1


def test_host_level_fail_on(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", NARROW, "--quiet", "--port-range", "40000-40049", "--fail-on", "port-exhaustion"]) == 1
    assert "findings present: port-exhaustion" in capsys.readouterr().err
    assert main(["analyze", NARROW, "--quiet", "--fail-on", "port-exhaustion,abort"]) == 0
    assert main(["analyze", BURST, "--quiet", "--fail-on", "time-wait-pile-up"]) == 1
    assert main(["analyze", BURST, "--quiet", "--fail-on", "no-such-thing"]) == 2
    assert "port-exhaustion" in capsys.readouterr().err


def test_the_terminal_path_does_not_import_pandas() -> None:
    code = ("import sys; from teardown.cli import main; rc = main(['analyze', %r]); "
            "sys.exit(10 if 'pandas' in sys.modules else rc)" % BURST)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr + "(10: pandas was imported)"
    assert "server-close" in done.stdout


@pytest.mark.parametrize("table", [t for t in TABLES if t != "flows"])
def test_readme_documents_each_host_table(table: str) -> None:
    start, end = markers(table)
    text = (ROOT / "README.md").read_text()
    assert start in text, f"README lacks {start}: add the markers and run python -m teardown.schema --markdown"
    assert text.split(start, 1)[1].split(end, 1)[0].strip() == markdown(TABLES[table]).strip(), (
        f"README {table} columns are stale: run python -m teardown.schema --markdown")
