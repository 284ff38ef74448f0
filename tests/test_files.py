"""The tables as files (rows.py builds them as Arrow, report/files.py writes them): every file
format read back by another reader gives exactly the DataFrame the API gives, on every sample,
for every table; text that needs escaping survives; a file is written whole or not at all."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import teardown
from teardown.cli import main
from teardown.flows import NONE
from teardown.report import files
from teardown.report.saved import read_parquet
from teardown import rows as rows_module
from teardown.present import evidence_frames, text_array, text_columns
from teardown.rows import TableColumns
from teardown.schema import TABLES
from teardown.verdicts import EVIDENCE_LABELS

from .conftest import CAPTURES
from .crafted import C_ISN, S_ISN, SERVER, back, seg

SAMPLES = sorted(p for p in CAPTURES.iterdir() if p.name.endswith((".pcap", ".pcapng", ".pcap.gz")))


def plain(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as Python values, None where empty (NaN and infinities too, as JSON has them)."""
    rows: list[dict[str, Any]] = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for row in rows:
        for k, v in row.items():
            if isinstance(v, float) and not math.isfinite(v):
                row[k] = None
    return rows


def same_values(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert list(g) == list(w)
        for k in g:  # equal and of the same type: 2.0 stays a float, 2 an int, False a bool
            assert g[k] == w[k] and type(g[k]) is type(w[k]), (k, g[k], w[k])


def read_csv(path: Path, like: pd.DataFrame) -> pd.DataFrame:
    """A CSV read back with the schema's dtypes."""
    dtypes = {c: ("string" if str(t) == "category" else str(t)) for c, t in like.dtypes.items()}
    return pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])


def as_csv_reads_it(frame: pd.DataFrame) -> pd.DataFrame:
    """What a CSV reader makes of the frame: categories as text, an empty text as empty."""
    out = frame.copy()
    for c, t in frame.dtypes.items():
        if str(t) in ("category", "string"):
            out[c] = frame[c].astype("string").replace("", pd.NA)
    return out


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_every_format_reads_back_as_the_dataframe(sample: Path, tmp_path: Path) -> None:
    result = teardown.analyze(str(sample))
    for name in TABLES:
        frame = result.dataframe(name)
        for fmt in ("csv", "json", "jsonl", "parquet"):  # in batches of 2 rows: what joins them is tried
            files.write_table(result.batches(name, rows=2), str(tmp_path / f"{name}.{fmt}"), fmt)
        # An empty category column keeps no values in Parquet, so no categories either.
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"{name}.parquet"), frame, check_exact=True,
                                      check_dtype=len(frame) > 0, check_categorical=len(frame) > 0)
        pd.testing.assert_frame_equal(read_csv(tmp_path / f"{name}.csv", frame), as_csv_reads_it(frame),
                                      check_exact=True)
        array = json.loads((tmp_path / f"{name}.json").read_text())
        lines = [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
        same_values(array, plain(frame))
        same_values(lines, plain(frame))


def test_a_file_name_that_needs_escaping_survives_every_format(tmp_path: Path) -> None:
    odd = tmp_path / 'a "quoted", back\\slashed\tname.pcap'
    shutil.copy(CAPTURES / "linger_abort.pcap", odd)
    out = tmp_path / "out"
    assert main(["analyze", str(odd), "--quiet", "-o", f"{out}/", "--format", "jsonl"]) == 0
    assert main(["analyze", str(odd), "--quiet", "-o", str(out / "flows.csv")]) == 0
    assert main(["analyze", str(odd), "--quiet", "-o", str(out / "flows.json")]) == 0
    row = json.loads((out / "flows.jsonl").read_text().splitlines()[0])
    assert row["capture_file"] == odd.name
    assert json.loads((out / "flows.json").read_text())[0]["capture_file"] == odd.name
    assert pd.read_csv(out / "flows.csv")["capture_file"][0] == odd.name


def test_an_empty_table_is_an_empty_file_of_its_format(tmp_path: Path) -> None:
    result = teardown.analyze(str(CAPTURES / "linger_abort.pcap"))
    empty = result.table("flows").slice(0, 0)
    for fmt in ("csv", "json", "jsonl", "parquet"):
        files.write_table(empty, str(tmp_path / f"e.{fmt}"), fmt)
    assert json.loads((tmp_path / "e.json").read_text()) == []
    assert (tmp_path / "e.jsonl").read_text() == ""
    assert list(pd.read_csv(tmp_path / "e.csv").columns) == list(result.flows.columns)
    assert len(pd.read_parquet(tmp_path / "e.parquet")) == 0


def test_a_write_that_fails_leaves_the_old_file_and_no_partial_one(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "flows.csv"
    out.write_text("what was there before\n")
    table = teardown.analyze(str(CAPTURES / "linger_abort.pcap")).table("flows")

    def broken(_first: Any, _rest: Any, fh: Any) -> None:
        fh.write(b"half a table")
        raise KeyboardInterrupt  # as a user's ^C halfway

    monkeypatch.setattr(files, "_csv", broken)
    with pytest.raises(KeyboardInterrupt):
        files.write_table(table, str(out), "csv")
    assert out.read_text() == "what was there before\n"
    assert [p.name for p in tmp_path.iterdir()] == ["flows.csv"]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_the_table_says_what_the_verdicts_said(sample: Path) -> None:
    """The Arrow-built DataFrame against the judged numpy columns, value by value: empty exactly
    where they are (NaN, None), and the text columns as present.text_columns writes them for
    a few rows (the summary's examples)."""
    result = teardown.analyze(str(sample))
    frame = result.flows
    texts = text_columns(result.columns)
    for name in frame.columns:
        want = texts[name] if name in texts else result.columns[name]
        got = frame[name].astype(object).where(frame[name].notna(), None).tolist()
        expected = [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in want.tolist()]
        assert got == expected, name


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_the_table_read_back_as_numpy_is_the_judged_columns(sample: Path) -> None:
    """rows.TableColumns (what the report reads, fresh or from a Parquet file) gives back the
    judged columns value by value, empty where they are; also from a slice of the table, whose
    columns start inside Arrow's buffers (and inside a byte of a validity or boolean bitmap)."""
    result = teardown.analyze(str(sample))
    table = result.table("flows")
    texts = text_columns(result.columns)

    def plain(values: Any) -> list[Any]:
        return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in np.asarray(values).tolist()]

    for rows in (slice(None), slice(1, None), slice(3, 5)):
        start, stop, _ = rows.indices(table.num_rows)
        back = TableColumns(table.slice(start, stop - start))
        for name in table.column_names:
            want = texts[name] if name in texts else result.columns[name]
            assert plain(back[name]) == plain(want[rows]), (name, rows)
            assert back[name].dtype.kind in "fiub" or back[name].dtype == object, name
            # An array that starts inside its buffers, as a slice of one does (TableColumns
            # joins a column's chunks first, which starts it afresh).
            inside = table.column(name).chunk(0).slice(start, stop - start)
            assert plain(rows_module._numpy(inside)) == plain(want[rows]), (name, rows)


@pytest.mark.parametrize("size", [5, 300])  # rows.py encodes up to 64 values one by one, more per distinct object
def test_texts_and_enums_go_to_arrow_as_pyarrow_itself_converts_them(size: int) -> None:
    import numpy as np
    import pyarrow as pa

    from teardown import rows
    from teardown.schema import CloseKind

    made_apart = "".join(["fi", "n"])  # equal to "fin", another object
    pool = ["fin", made_apart, None, float("nan"), "rst", "no such kind", "é ünïcode"]
    values = np.array([pool[i % len(pool)] for i in range(size)], object)
    texts = np.where([isinstance(v, float) for v in values], None, values)
    assert text_array(texts).to_pylist() == pa.array(texts.tolist(), pa.large_string()).to_pylist()
    enum = rows._enum_array(CloseKind, values)
    want = [v if v in {k.value for k in CloseKind} else None for v in values.tolist()]
    assert enum.to_pylist() == want
    assert enum.dictionary.to_pylist() == [k.value for k in CloseKind]


def test_files_are_written_without_importing_pandas(tmp_path: Path) -> None:
    """pyarrow.array imports pandas to recognise its types (0.2-0.4 s): the files are made
    without it, so a run that writes them never pays for pandas; nor for the report's page
    (jinja2 and the templates: 60 ms). A Parquet file too, with the ladders in it."""
    import subprocess
    import sys

    sample = str(SAMPLES[0])
    outs = [f"{tmp_path}/{name}" for name in ("f.csv", "f.jsonl", "f.json", "d/", "f.parquet", "p/")]
    script = ("import sys; from teardown.cli import main\n"
              f"for out in {outs!r}:\n"
              f"    main(['analyze', {sample!r}, '-o', out, '--quiet'] + (['--format', 'csv'] if out.endswith('d/') else []))\n"
              "print('pandas' in sys.modules, 'jinja2' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
    assert (tmp_path / "d" / "hosts.csv").exists() and (tmp_path / "p" / "hosts.parquet").exists()
    assert len(read_parquet(str(tmp_path / "f.parquet")).ladders) > 0


def test_reports_are_made_without_importing_pandas(tmp_path: Path) -> None:
    """The report is built from the Arrow tables and numpy columns, fresh from a capture or read
    back from a Parquet file: neither imports pandas (0.25 s of import, 0.2 s of DataFrames)."""
    import subprocess
    import sys

    sample = str(CAPTURES / "reuse_in_time_wait.pcap")  # a reusing flow: its ladder joins the old one's
    saved, pages = f"{tmp_path}/f.parquet", [f"{tmp_path}/fresh.html", f"{tmp_path}/saved.html"]
    script = ("import sys; from teardown.cli import main\n"
              f"main(['analyze', {sample!r}, '-o', {pages[0]!r}, '--quiet'])\n"
              f"main(['analyze', {sample!r}, '-o', {saved!r}, '--quiet'])\n"
              f"main(['report', {saved!r}, '-o', {pages[1]!r}])\n"
              "print('pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split()[-1] == "False"
    fresh, again = (Path(p).read_text() for p in pages)
    assert fresh.count("<svg") == again.count("<svg") > 0


def test_a_flow_caught_midstream_and_still_open_is_written_with_no_evidence(tmp_path: Path) -> None:
    """Crafted with scapy (a capture that starts after the handshake and ends before any close):
    the flow has no SYN, FIN, RST or gap, so its evidence_frames is "" in every format, and the
    rows after it keep theirs (Arrow's join kernel once dropped such a row and failed the table)."""
    from scapy.utils import wrpcap

    capture = tmp_path / "midstream.pcap"
    wrpcap(str(capture), [seg(1.0, "PA", C_ISN + 1, S_ISN + 1, b"hello"), back(1.1, "A", S_ISN + 1, C_ISN + 6),
                          seg(1.2, "S", 7000, src=("10.0.0.1", 40001))])
    for fmt in ("csv", "json", "jsonl", "parquet"):
        out = tmp_path / f"flows.{fmt}"
        main(["analyze", str(capture), "-o", str(out), "--quiet"])
        if fmt == "parquet":
            evidence = pd.read_parquet(out)["evidence_frames"].tolist()
        elif fmt == "csv":
            evidence = pd.read_csv(out, keep_default_na=False)["evidence_frames"].tolist()
        else:
            evidence = pd.read_json(out, lines=fmt == "jsonl", dtype=False)["evidence_frames"].tolist()
        assert evidence == ["", "syn 3"], fmt
    assert main(["analyze", str(capture), "-o", str(tmp_path / "r.html"), "--quiet"]) == 0


def test_evidence_text_is_the_per_row_builders_with_any_frames_absent() -> None:
    """Random evidence frames, any of them absent (rows with none at all among them): the
    Arrow-built text is the labelled frames present, in order, joined by ", "."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        rows = int(rng.integers(1, 25))
        frames = rng.integers(0, 10 ** rng.integers(1, 12, (rows, 8)), dtype=np.int64)
        frames[rng.random((rows, 8)) < 0.6] = NONE
        columns = {"evidence": frames, "ctx": np.zeros(rows, np.uint32), "incarnation": np.zeros(rows, np.int64),
                   "client_ip": np.full(rows, "10.0.0.1", object), "server_ip": np.full(rows, "10.0.0.2", object),
                   "client_port": np.arange(rows) + 40000, "server_port": np.full(rows, 80),
                   "note_bits": np.zeros(rows, np.int64)}
        want = [", ".join(f"{label} {f}" for label, f in zip(EVIDENCE_LABELS, row) if f != NONE)
                for row in frames.tolist()]
        assert evidence_frames(columns).to_pylist() == want


SELF = ("10.0.0.1", 5000)  # a socket connected to itself: both ends one address and port
ODD_FLOWS = {  # crafted with scapy: one connection seen in an odd way -> how many flows it makes
    "lone ACK": ([seg(1.0, "A", 1, 1)], 1),
    "lone FIN": ([seg(1.0, "FA", 1, 1)], 1),
    "lone RST": ([back(1.0, "R", 1)], 1),
    "SYN-ACK only": ([back(1.0, "SA", S_ISN, C_ISN + 1)], 1),
    "data one way": ([seg(1.0 + i / 100, "PA", 1 + 10 * i, 1, b"0123456789") for i in range(5)], 1),
    "data after FIN": ([seg(1.0, "FA", 1, 1), seg(1.1, "PA", 2, 1, b"x")], 1),
    "to itself": ([seg(1.0 + i / 1000, flags, seq, ack, src=SELF, dst=SELF) for i, (flags, seq, ack) in enumerate(
        [("S", C_ISN, 0), ("SA", S_ISN, C_ISN + 1), ("A", C_ISN + 1, S_ISN + 1), ("FA", C_ISN + 1, S_ISN + 1),
         ("FA", S_ISN + 1, C_ISN + 2), ("A", C_ISN + 2, S_ISN + 2)])], 1),
    "ACK, RST, refused SYN": ([seg(1.0, "A", 1, 1), back(1.0, "R", 1), seg(2.0, "S", 100, src=("10.0.0.1", 40010)),
                               seg(2.1, "RA", 0, 101, src=SERVER, dst=("10.0.0.1", 40010))], 2),
}


@pytest.mark.parametrize("name", ODD_FLOWS)
def test_odd_flows_are_written_in_every_format(name: str, tmp_path: Path) -> None:
    """Flows with no handshake, no close or a single segment: every file holds each, whole."""
    from scapy.utils import wrpcap

    packets, flows = ODD_FLOWS[name]
    capture = tmp_path / "odd.pcap"
    wrpcap(str(capture), packets)
    for out in ("f.csv", "f.json", "f.jsonl", "f.parquet", "report.html", "tables/"):
        assert main(["analyze", str(capture), "-o", f"{tmp_path}/{out}", "--quiet"]) == 0, out
    assert len(pd.read_csv(tmp_path / "f.csv")) == len(pd.read_parquet(tmp_path / "f.parquet")) == flows
    assert len(json.loads((tmp_path / "f.json").read_text())) == flows
    assert len((tmp_path / "f.jsonl").read_text().splitlines()) == flows
    assert len(pd.read_parquet(tmp_path / "tables" / "flows.parquet")) == flows


def test_json_floats_read_back_as_the_same_floats() -> None:
    """Arrow writes some whole floats with an exponent (1e+10: a time in 2286) and others as
    digits (2): each must read back as that float, never as an int nor as broken JSON."""
    import pyarrow as pa

    values = [1e10, 2.0, -3.0, 1e10 + 0.5, 1e21, 1.5e-7, 1795947111.0, 1795947111.999414, 2e10, 0.0]
    texts = files._json_values(pa.chunked_array([pa.array(values + [float("nan"), None], pa.float64())]))
    back = [json.loads(t) for t in texts.to_pylist()]
    assert back == values + [None, None] and all(isinstance(v, float) for v in back[:len(values)])
