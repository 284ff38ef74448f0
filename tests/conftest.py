from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen", action="store_true", help="rewrite captures/*.expected.csv from the analyzer")


@pytest.fixture
def regen(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--regen"))


# Hypothesis: CI and the default run draw the same examples every time (derandomized, no example
# database), so a failure is reproduced by running the test again; `HYPOTHESIS_PROFILE=long`
# draws twenty times as many, at random (a longer search before a release).
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("long", deadline=None, print_blob=True)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
LONG_RUN = 20 if PROFILE == "long" else 1


def examples(n: int) -> int:
    """`max_examples` for a property: n on CI, twenty times n in the long profile."""
    return n * LONG_RUN
