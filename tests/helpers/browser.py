"""A real Chromium driven by Playwright: Debian's `/usr/bin/chromium`, never a downloaded browser.

`launched_browser()` starts one headless browser (the conftest `browser` fixture holds it for a
test module, since a launch costs about a second); `RecordedPage` is one fresh page in its own
context (its own cookies) that records every console error and uncaught page error, so a test can
assert there were none; `save_screenshot` keeps a picture in `tests/artifacts/` (gitignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# No GPU, no sandbox (containers forbid the user namespaces it needs), nothing that phones home.
LAUNCH_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
VIEWPORT = {"width": 1280, "height": 800}


@contextmanager
def launched_browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium package (scripts/test does)")
    with sync_playwright() as pw:
        # Playwright's own headless flag would add --headless (old mode); ours is in LAUNCH_ARGS.
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=False, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class RecordedPage:
    """A page plus what went wrong on it. Attributes the class lacks are the Playwright `Page`'s,
    so `page.goto(url)` and `page.locator(...)` work as on a plain page."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            self.console_errors.append(f"{message.text} ({where})" if where else message.text)

    def _on_page_error(self, error: Error) -> None:
        self.page_errors.append(f"{error.name}: {error.message}")

    @property
    def errors(self) -> list[str]:
        return [*self.console_errors, *self.page_errors]

    def assert_no_errors(self) -> None:
        assert not self.errors, "errors on the page:\n" + "\n".join(self.errors)

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        return save_screenshot(self.page, name, full_page)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.page, name)


@contextmanager
def new_page(browser: Browser, **context_options: Any) -> Iterator[RecordedPage]:
    """A page in a fresh context; `context_options` go to `browser.new_context` (e.g.
    `color_scheme="dark"`, `viewport={"width": 480, "height": 800}`)."""
    context = browser.new_context(**{"viewport": VIEWPORT, **context_options})
    try:
        yield RecordedPage(context.new_page())
    finally:
        context.close()


def save_screenshot(page: Page, name: str, full_page: bool = True) -> Path:
    """`tests/artifacts/<name>.png` (name made file-safe), overwritten by the next run."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png")
    page.screenshot(path=str(path), full_page=full_page)
    return path


def tcp_base(daemon: Any) -> str:
    """`http://127.0.0.1:PORT` of a running `tests.helpers.daemon.Daemon` (it binds port 0)."""
    address = daemon.status()["tcp"]
    assert address, "the daemon serves no TCP (server.tcp is empty)"
    return f"http://{address}"


def login(page: RecordedPage | Page, daemon: Any) -> str:
    """Opens `/login?token=…` as `aod dashboard --url` would; answers the base URL. The page then
    holds the session cookie and is wherever the login redirected it (`/`)."""
    base = tcp_base(daemon)
    token = (daemon.data_dir / "token").read_text().strip()
    page.goto(f"{base}/login?token={token}")
    return base
