"""The package type-checks under mypy --strict (pyproject.toml [tool.mypy])."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def test_mypy_strict_is_clean() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
