"""The HTML report in a real headless Chromium (Debian's, driven by Playwright): every sample's
report opens from disk with the network blocked, asks for nothing and logs no error; the table
sorts, filters and downloads as CSV exactly the per-flow table; a flow's ladder shows its
arrows and states; the page prints to PDF; script planted in a capture never runs; 100,000
flows stay responsive. Screenshots and PDFs land in test-artifacts/report/."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from teardown.report import ReportData
from teardown.report.flags import flag_bits
from teardown.report.listing import LISTED_ROWS

from .chromium import ARTIFACTS, Viewer, browser, viewer  # noqa: F401  (fixtures)
from .report_samples import SAMPLES, many_flows, report_data, stem, write_report

SHOWN = {"server_first_close", "simultaneous_close", "tw_mixed_servers", "half_close"}  # full-page screenshots

ROWS = "els => els.map(e => Number(e.dataset.row))"


def rows_shown(page: Any) -> list[int]:
    return list(page.eval_on_selector_all("#flow-body tr[data-row]", ROWS))


def status_reads(page: Any, shown: int, total: int) -> None:
    """Wait until the table's status line counts `shown` of `total` rows (the search box applies
    what was typed once typing pauses for 150 ms; a filter applies at once)."""
    want = f"{total:,} flows" if shown == total else f"{shown:,} of {total:,} flows match"
    page.wait_for_function("want => document.getElementById('flow-status').textContent.startsWith(want)", arg=want)


def download_csv(page: Any) -> pd.DataFrame:
    with page.expect_download() as info:
        page.click("#csv-download")
    return pd.read_csv(io.StringIO(Path(info.value.path()).read_text()), dtype=str, keep_default_na=False)


def as_text(flows: pd.DataFrame) -> pd.DataFrame:
    return flows.astype(object).where(flows.notna(), "").astype(str)


def assert_same_table(got: pd.DataFrame, flows: pd.DataFrame) -> None:
    """The page's CSV equals the per-flow table: text columns exactly, times to the microsecond."""
    want = as_text(flows)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for name in want.columns:
        if str(flows[name].dtype) == "Float64":
            a = pd.to_numeric(got[name].replace("", np.nan)).to_numpy(float)
            b = flows[name].to_numpy(float, na_value=np.nan)
            assert np.allclose(a, b, atol=1.5e-6, equal_nan=True), name
        else:
            assert got[name].tolist() == want[name].tolist(), name


@pytest.mark.parametrize("capture", SAMPLES, ids=stem)
def test_sample_report_opens_offline_without_errors(viewer: Viewer, tmp_path: Path, capture: Path) -> None:
    data = report_data(stem(capture))
    page = viewer.open(write_report(data, tmp_path / f"{stem(capture)}.html")).page
    assert viewer.requests == [] and viewer.errors == [] and viewer.dialogs == []
    shown = rows_shown(page)
    assert shown == list(range(len(shown))) and len(shown) >= min(data.flows.num_rows, 15)
    assert page.locator("#featured-ladders svg.ladder").count() == len(page.locator("#featured-ladders section").all())
    if stem(capture) in SHOWN:
        viewer.shot(stem(capture))


def test_csv_download_is_the_flows_table(viewer: Viewer, tmp_path: Path) -> None:
    """All samples' flows in one report: IPv4 and IPv6, VLANs, missing values, every close kind."""
    parts = [report_data(stem(c)) for c in SAMPLES]
    flows = pa.concat_tables([d.flows for d in parts])
    viewer.open(write_report(ReportData(parts[0].facts, flows), tmp_path / "all.html"))
    assert_same_table(download_csv(viewer.page), flows.to_pandas())
    assert viewer.requests == [] and viewer.errors == []


def test_sort_and_filter_the_table(viewer: Viewer, tmp_path: Path) -> None:
    data = report_data("many_reuse")
    flows = data.flows.to_pandas()
    page = viewer.open(write_report(data, tmp_path / "many_reuse.html")).page
    assert rows_shown(page) == list(range(len(flows)))
    page.click("th[data-column=duration_s] button")
    by_duration = flows["duration_s"].to_numpy(float)
    assert rows_shown(page) == sorted(range(len(flows)), key=lambda r: (by_duration[r], r))
    assert page.get_attribute("th[data-column=duration_s]", "aria-sort") == "ascending"
    page.click("th[data-column=duration_s] button")
    shown = rows_shown(page)
    assert [by_duration[r] for r in shown] == sorted(by_duration, reverse=True)
    port = int(flows["client_port"].iloc[3])
    want = flows.index[flows["client_port"] == port].tolist()
    page.fill("#flow-search", f":{port}>")
    status_reads(page, len(want), len(flows))
    assert sorted(rows_shown(page)) == want
    assert page.text_content("#flow-status") == f"{len(want)} of {len(flows)} flows match"
    page.fill("#flow-search", "")
    reused = flows.index[flows["reuses_tuple_in_time_wait"].fillna(False)].tolist()
    page.select_option("#filter-finding", "reuse-in-time-wait")
    status_reads(page, len(reused), len(flows))
    assert sorted(rows_shown(page)) == reused


def test_filter_by_close_kind_and_closer(viewer: Viewer, tmp_path: Path) -> None:
    data = report_data("tw_mixed_servers") if any(stem(p) == "tw_mixed_servers" for p in SAMPLES) \
        else report_data("two_interfaces")
    flows = data.flows.to_pandas()
    page = viewer.open(write_report(data, tmp_path / "mixed.html")).page
    rst = flows.index[flows["close_kind"] == "rst"].tolist()
    page.select_option("#filter-close-kind", "rst")
    status_reads(page, len(rst), len(flows))
    assert sorted(rows_shown(page)) == rst[: len(rows_shown(page))]
    page.select_option("#filter-close-kind", "")
    page.select_option("#filter-closer", "server")
    status_reads(page, int((flows["active_closer"] == "server").sum()), len(flows))


def ladder_of(page: Any, scope: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(direction, flags) of each arrow, and (side, text) of each state label, in `scope`."""
    arrows = page.eval_on_selector_all(f"{scope} svg.ladder g.seg",
                                       "els => els.map(e => [e.dataset.dir, e.dataset.flags])")
    states = page.eval_on_selector_all(f"{scope} svg.ladder text.state",
                                       "els => els.map(e => [e.dataset.side, e.textContent])")
    return [tuple(a) for a in arrows], [tuple(s) for s in states]


def test_click_a_flow_to_see_its_ladder(viewer: Viewer, tmp_path: Path) -> None:
    data = report_data("simultaneous_close")
    page = viewer.open(write_report(data, tmp_path / "simultaneous.html")).page
    page.click("#flow-body button.flow-link")
    arrows, states = ladder_of(page, "#flow-detail")
    flows = data.flows.to_pandas()
    packets = int(flows["packets_c2s"].iloc[0] + flows["packets_s2c"].iloc[0])
    assert len(arrows) == packets
    assert arrows[0] == ("c2s", "SYN") and arrows[1] == ("s2c", "SYN, ACK")
    fins = [a for a in arrows if "FIN" in a[1]]
    assert {a[0] for a in fins} == {"c2s", "s2c"}
    client = [text for side, text in states if side == "client"]
    server = [text for side, text in states if side == "server"]
    assert client[:2] == ["SYN_SENT", "ESTABLISHED"] and server[:2] == ["SYN_RECEIVED", "ESTABLISHED"]
    assert "CLOSING" in " ".join(client) and "CLOSING" in " ".join(server)
    assert client[-1].endswith("TIME_WAIT") and server[-1].endswith("TIME_WAIT")
    assert page.locator("#flow-detail g.tw").count() == 2
    assert viewer.errors == []
    viewer.shot("simultaneous_close-ladder", "#flow-detail")


def test_featured_ladders_show_assassination_and_lost_final_ack(viewer: Viewer, tmp_path: Path) -> None:
    page = viewer.open(write_report(report_data("tw_assassination"), tmp_path / "tw.html")).page
    group = "#featured-ladders section[data-flag=assassination]"
    arrows, states = ladder_of(page, group)
    assert arrows[-1] == ("s2c", "RST, ACK")
    assert [t for s, t in states if s == "client"][-1] == "CLOSED"
    notes = page.eval_on_selector_all(f"{group} text.note", "els => els.map(e => e.textContent)")
    assert any("assassinated" in n for n in notes)
    assert "ended early by RST" in (page.text_content(f"{group} g.tw") or "")

    page = viewer.open(write_report(report_data("lost_final_ack"), tmp_path / "lost.html")).page
    group = "#featured-ladders section[data-flag=fin-retransmission]"
    retransmitted = page.eval_on_selector_all(f"{group} g.seg.retransmission", "els => els.map(e => e.dataset.flags)")
    assert retransmitted == ["FIN, ACK"]
    notes = page.eval_on_selector_all(f"{group} text.note", "els => els.map(e => e.textContent)")
    assert any("restarts" in n for n in notes)


def test_prints_to_pdf(viewer: Viewer, tmp_path: Path) -> None:
    page = viewer.open(write_report(report_data("tw_mixed_servers"), tmp_path / "mixed.html")).page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = ARTIFACTS / "tw_mixed_servers.pdf"
    page.pdf(path=str(pdf), format="A4", print_background=True)
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 10_000
    page.emulate_media(media="print")
    try:
        assert page.locator("#flow-controls").is_hidden() and page.locator(".toc").is_hidden()
        assert (page.locator("#chart-occupancy svg").bounding_box() or {"width": 0})["width"] <= 760
        viewer.shot("tw_mixed_servers-print")
    finally:
        page.emulate_media(media="screen")


def test_dark_mode(viewer: Viewer, tmp_path: Path) -> None:
    page = viewer.open(write_report(report_data("tw_assassination"), tmp_path / "tw.html")).page
    page.emulate_media(color_scheme="dark")
    try:
        background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        assert background != "rgb(255, 255, 255)"
        viewer.shot("tw_assassination-dark")
    finally:
        page.emulate_media(color_scheme="light")


def test_script_in_a_capture_never_runs(viewer: Viewer, tmp_path: Path) -> None:
    from .test_report_data import xss_report

    opened = viewer.open(xss_report(tmp_path))
    page = opened.page
    page.click("#flow-body button.flow-link")
    page.wait_for_function("document.getElementById('flow-detail').textContent.includes('alert(1)')")
    assert opened.dialogs == [] and opened.errors == [] and opened.requests == []
    assert page.evaluate("document.querySelectorAll('b, img, iframe').length") == 0
    assert "<b>" in (page.text_content("h1") or "")
    assert "<script>alert(1)</script>" in (page.text_content("#flow-detail") or "")
    opened.shot("xss")


def test_100000_flows_stay_responsive(viewer: Viewer, tmp_path: Path) -> None:
    data = many_flows(100_000)
    path = write_report(data, tmp_path / "many.html")
    assert path.stat().st_size < 20_000_000
    start = time.monotonic()
    opened = viewer.open(path)
    page = opened.page
    loaded = time.monotonic() - start
    assert len(rows_shown(page)) < 100 and page.text_content("#flow-status") == "100,000 flows"
    start = time.monotonic()
    page.click("th[data-column=duration_s] button")
    sorted_in = time.monotonic() - start
    start = time.monotonic()
    page.fill("#flow-search", ":40000>")
    page.wait_for_function("document.getElementById('flow-status').textContent.includes('match')")
    filtered_in = time.monotonic() - start
    assert (page.text_content("#flow-status") or "").startswith("2 of 100,000")
    page.fill("#flow-search", "")
    page.wait_for_function("document.getElementById('flow-status').textContent.startsWith('100,000')")
    page.eval_on_selector("#flow-scroll", "e => { e.scrollTop = e.scrollHeight; }")
    page.wait_for_function("Number(document.querySelector('#flow-body tr[data-row]').dataset.row) > 0")
    assert max(rows_shown(page)) > 0 and len(rows_shown(page)) < 100
    assert opened.errors == [] and opened.requests == []
    assert loaded < 10 and sorted_in < 3 and filtered_in < 3, (loaded, sorted_in, filtered_in)


# Text boxes of every <text> in each ladder on the page, pairs of them that intersect.
OVERLAPS = """svgs => svgs.flatMap(svg => {
  const boxes = [...svg.querySelectorAll('text')].map(t => [t.getBoundingClientRect(), t.textContent])
    .filter(([b]) => b.width > 0);
  const out = [];
  boxes.forEach(([a, at], i) => boxes.slice(i + 1).forEach(([b, bt]) => {
    if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) {
      out.push(at + ' | ' + bt);
    }
  }));
  return out;
})"""
LADDER_SAMPLES = ["tw_assassination", "reuse_in_time_wait", "reuse_in_time_wait_rejected", "lost_final_ack",
                  "simultaneous_close", "half_close"]


@pytest.mark.parametrize("name", LADDER_SAMPLES)
def test_no_label_overlaps_another_in_a_ladder(viewer: Viewer, tmp_path: Path, name: str) -> None:
    """The page's own ladders (drawn in Python) and the script's ladder of every flow alike."""
    data = report_data(name)
    page = viewer.open(write_report(data, tmp_path / f"{name}.html")).page
    assert page.locator("#featured-ladders svg.ladder").count() >= 1
    assert page.eval_on_selector_all("#featured-ladders svg.ladder", OVERLAPS) == []
    for r in range(data.flows.num_rows):
        page.click(f"#flow-body tr[data-row='{r}'] button.flow-link")
        assert page.eval_on_selector_all("#flow-detail svg.ladder", OVERLAPS) == [], data.flows.to_pandas()["flow_id"].iat[r]
    assert viewer.errors == []


@pytest.mark.parametrize("name", ["reuse_in_time_wait", "reuse_in_time_wait_rejected"])
def test_reuse_ladder_shows_the_old_connections_end(viewer: Viewer, tmp_path: Path, name: str) -> None:
    """The old incarnation's FINs and final ACK, its TIME_WAIT band, then the reusing SYN and its answer."""
    data = report_data(name)
    reusing = int(np.flatnonzero(data.flows.to_pandas()["reuses_tuple_in_time_wait"].fillna(False))[0])
    page = viewer.open(write_report(data, tmp_path / f"{name}.html")).page
    page.click(f"#flow-body tr[data-row='{reusing}'] button.flow-link")
    for scope in ("#featured-ladders section[data-flag=reuse-in-time-wait]", "#flow-detail"):
        old = page.eval_on_selector_all(f"{scope} g.seg.old", "els => els.map(e => [e.dataset.dir, e.dataset.flags])")
        holder = {"client": "c2s", "server": "s2c"}[str(data.flows.to_pandas()["time_wait_on"].iat[reusing - 1])]
        assert [f for _, f in old if "FIN" in f] and old[-1] == [holder, "ACK"], old  # the final ACK
        arrows, _ = ladder_of(page, scope)
        assert arrows[len(old)] == ("c2s", "SYN") and arrows[len(old) + 1][0] == "s2c"
        bands = page.eval_on_selector_all(f"{scope} g.tw text", "els => els.map(e => e.textContent)")
        assert any(b.startswith("old connection's TIME_WAIT") for b in bands)
        verdict = str(data.flows.to_pandas()["reuse_verdict"].iat[reusing])
        notes = page.eval_on_selector_all(f"{scope} text.note", "els => els.map(e => e.textContent)")
        assert any(n.startswith("reuse " + verdict.split("_")[0]) for n in notes), notes


def test_first_screen_carries_the_verdict(browser: Any, tmp_path: Path) -> None:
    """At 1400×900: the headline and the findings (severity, kind, subject, message, advice)
    before the capture's facts; each tile coloured by the worst finding of its kinds."""
    data = report_data("tw_mixed_servers")
    shown = Viewer(browser, width=1400)
    try:
        page = shown.open(write_report(data, tmp_path / "mixed.html")).page
        assert page.viewport_size == {"width": 1400, "height": 900}
        rows = page.locator("#findings tbody tr")
        assert rows.count() == data.tables["findings"].num_rows >= 3
        headline = page.locator(".headline").bounding_box()
        first = rows.first.bounding_box()
        assert headline and first and headline["y"] < first["y"] and first["y"] + first["height"] <= 900
        facts = page.locator("#capture").bounding_box()
        assert facts and facts["y"] > first["y"]
        cells = rows.first.locator("td").all_text_contents()
        top = data.tables["findings"].to_pandas().iloc[0]
        assert [c.strip() for c in cells] == [str(top[k]) for k in ("severity", "kind", "subject", "message", "advice")]
        severities = page.eval_on_selector_all(".figure", "els => els.map(e => e.dataset.severity)")
        assert set(severities) <= {"critical", "warning", "info", "none"} and set(severities) != {"none"}
        shown.shot("first-screen", None)
    finally:
        shown.context.close()


A4_CONTENT_PX = {"portrait": round((210 - 24) / 25.4 * 96), "landscape": round((297 - 24) / 25.4 * 96)}  # @page margins 12 mm
RIGHT_EDGES = """() => [...document.querySelectorAll('body *')].filter(e => e.getClientRects().length)
  .map(e => [e.getBoundingClientRect().right, e.tagName + '#' + e.id + '.' + e.getAttribute('class')])"""


@pytest.mark.parametrize("orientation", ["portrait", "landscape"])
def test_print_is_not_clipped_and_lists_flagged_flows_first(browser: Any, tmp_path: Path, orientation: str) -> None:
    data = report_data("tw_mixed_servers")
    width = A4_CONTENT_PX[orientation]
    printed = Viewer(browser, width=width)
    try:
        page = printed.open(write_report(data, tmp_path / "mixed.html")).page
        page.emulate_media(media="print")
        wide = [(right, what) for right, what in page.evaluate(RIGHT_EDGES) if right > width + 0.5]
        assert wide == []
        assert page.locator("#flow-scroll").is_hidden() and page.locator("#flow-listing").is_visible()
        listed = [int(r) for r in page.eval_on_selector_all("table.listing tbody tr", "els => els.map(e => e.dataset.row)")]
        flagged = set(np.flatnonzero(flag_bits(data.columns) != 0).tolist())
        assert listed and listed[: len(flagged)] == [r for r in listed if r in flagged]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pdf = ARTIFACTS / f"tw_mixed_servers-{orientation}.pdf"
        page.pdf(path=str(pdf), format="A4", landscape=orientation == "landscape", print_background=True)
        assert pdf.read_bytes().startswith(b"%PDF")
    finally:
        printed.context.close()


def test_without_javascript(browser: Any, tmp_path: Path) -> None:
    """A static table of the flows with findings (capped, counted), the top ladders drawn,
    nothing false about them, and no control that needs the script."""
    data = report_data("tw_server_burst")
    context = browser.new_context(viewport={"width": 1400, "height": 900}, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(write_report(data, tmp_path / "burst.html").resolve().as_uri())
        listing = page.locator("table.listing")
        assert listing.is_visible()
        assert listing.locator("tbody tr").count() == min(data.flows.num_rows, LISTED_ROWS)
        assert int(listing.get_attribute("data-total") or 0) == data.flows.num_rows
        assert f"{data.flows.num_rows:,} flows" in (page.text_content("#flow-listing") or "")
        assert page.locator("#featured-ladders svg.ladder").count() >= 1
        assert "No flow has a finding" not in (page.text_content("body") or "")
        controls = page.locator("button, select, input, .column-picker, .pager, .needs-js, #flow-scroll")
        visible = [controls.nth(i).evaluate("e => e.outerHTML.slice(0, 80)") for i in range(controls.count())
                   if controls.nth(i).is_visible()]
        assert visible == []
        page.screenshot(path=str(ARTIFACTS / "no-javascript.png"), full_page=False)
    finally:
        context.close()


def test_headers_read_as_words_and_times_carry_the_date(viewer: Viewer, tmp_path: Path) -> None:
    data = report_data("linger_abort")
    page = viewer.open(write_report(data, tmp_path / "linger.html")).page
    closer = page.locator("th[data-column=active_closer] button")
    assert closer.text_content() == "Closed first by" and (closer.get_attribute("title") or "").startswith("active_closer: ")
    headers = page.eval_on_selector_all("#flow-head th button", "els => els.map(e => e.textContent)")
    assert headers and not [h for h in headers if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", h)]  # no snake_case
    first = page.text_content("#flow-body tr[data-row='0'] td:nth-child(2)") or ""
    day = pd.Timestamp(float(data.flows.to_pandas()["first_ts"].iat[0]), unit="s", tz="UTC").strftime("%Y-%m-%d")
    assert first.startswith(day + " "), first
    by_client = data.flows.to_pandas().index[data.flows.to_pandas()["active_closer"] == "client"].tolist()
    page.select_option("#filter-closer", "client")  # aborts are counted by their RST's sender
    status_reads(page, len(by_client), len(data.flows))
    assert by_client and sorted(rows_shown(page)) == by_client


@pytest.mark.parametrize("width", [1400, 900])
def test_columns_popover_stays_in_the_viewport(browser: Any, tmp_path: Path, width: int) -> None:
    shown = Viewer(browser, width=width)
    try:
        page = shown.open(write_report(report_data("half_close"), tmp_path / "half.html")).page
        page.click(".column-picker summary")
        box = page.locator("#column-picker").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)
        assert shown.errors == []
    finally:
        shown.context.close()
