"""Imports point only forward along the pipeline: read -> decode -> flows -> verdicts -> engine."""

from __future__ import annotations

import ast

from .conftest import ROOT

ORDER = ["errors", "times", "options", "seq", "schema", "read", "decode", "flows", "verdicts", "engine", "analysis", "cli"]


def test_no_stage_imports_a_later_one() -> None:
    for path in (ROOT / "teardown").rglob("*.py"):
        stage = path.relative_to(ROOT / "teardown").parts[0].removesuffix(".py")
        if stage not in ORDER:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                target = node.module.split(".")[0]
                if target in ORDER:
                    assert ORDER.index(target) <= ORDER.index(stage), f"{path.name} imports {target}"
