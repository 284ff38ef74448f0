"""Headless Chromium for the report tests: Debian's /usr/bin/chromium driven by Playwright (never
a browser Playwright downloads), every network request blocked and recorded, console errors and
dialogs collected, screenshots and PDFs kept under test-artifacts/report/ (gitignored)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root in a sandbox without a network: no sandbox, no GPU, nothing phoning home.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = ROOT / "test-artifacts" / "report"


def skip_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return "Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


class Viewer:
    """One browser tab that opens reports from disk: offline, every request but the report's own
    file aborted and recorded, console errors, uncaught exceptions and dialogs collected."""

    def __init__(self, browser: Any, color_scheme: str = "light", width: int = 1280) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=color_scheme,
                                           accept_downloads=True)
        self.context.set_offline(True)
        self.page = self.context.new_page()
        self.url = ""
        self.requests: list[str] = []  # every URL asked for but the report itself
        self.errors: list[str] = []  # console errors and uncaught exceptions
        self.dialogs: list[str] = []  # alert/confirm/prompt: script from the capture ran
        self.page.on("request", self._on_request)
        self.page.route("**/*", self._on_route)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._on_dialog)

    def _on_request(self, request: Any) -> None:
        if request.url != self.url:
            self.requests.append(request.url)

    def _on_route(self, route: Any) -> None:
        if route.request.url == self.url:
            route.continue_()
        else:
            route.abort()

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, path: Path) -> Viewer:
        self.url = path.resolve().as_uri()
        self.requests.clear()
        self.errors.clear()
        self.dialogs.clear()
        self.page.goto(self.url, wait_until="load")
        return self

    def shot(self, name: str, selector: str | None = None) -> Path:
        """A screenshot of the whole page, or of one element, kept as a test artifact."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        if selector:
            self.page.locator(selector).first.screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def viewer(browser: Any) -> Iterator[Viewer]:
    """A tab shared by a module's tests (a new one costs about a second here)."""
    v = Viewer(browser)
    yield v
    v.context.close()
