"""The README's column table is generated from teardown/schema.py; fail when it is stale."""

from __future__ import annotations

from teardown.schema import END, START, markdown

from .conftest import ROOT


def test_readme_column_table_is_current() -> None:
    text = (ROOT / "README.md").read_text()
    table = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert table == markdown().strip(), "README column table is stale: run python -m teardown.schema --markdown"


def test_every_flow_column_is_produced() -> None:
    import teardown
    from teardown.schema import COLUMN_NAMES, INTERNAL_COLUMNS

    result = teardown.analyze(str(ROOT / "captures" / "client_first_close.pcap"))
    assert list(result.columns) == COLUMN_NAMES + list(INTERNAL_COLUMNS)
    assert list(result.flows.columns) == COLUMN_NAMES


def test_readme_tables_are_current() -> None:
    """Every table the README documents between its markers (the hosts', the diff's, ...)."""
    from teardown.schema import DOCUMENTED, markers

    text = (ROOT / "README.md").read_text()
    for table, columns in DOCUMENTED.items():
        start, end = markers(table)
        assert start in text, f"README has no {table} table"
        assert text.split(start, 1)[1].split(end, 1)[0].strip() == markdown(columns).strip(), \
            f"README {table} table is stale: run python -m teardown.schema --markdown"
