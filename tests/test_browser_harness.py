"""The browser harness itself: Debian's chromium under Playwright, error capture, screenshots, and
the daemon's `/login` as a browser meets it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers.browser import RecordedPage, login, new_page, tcp_base

PAGE = (
    "data:text/html,<title>harness</title><p id=p>hi</p>"
    "<button onclick=\"console.error('deliberate')\">err</button>"
    "<button onclick=\"null.boom()\">throw</button>"
)


def test_a_clean_page_has_its_title_and_no_errors(page: RecordedPage) -> None:
    page.goto(PAGE)
    assert page.title() == "harness"
    assert page.locator("#p").inner_text() == "hi"
    page.assert_no_errors()


def test_console_errors_and_uncaught_exceptions_are_recorded(page: RecordedPage) -> None:
    page.goto(PAGE)
    page.get_by_text("err").click()
    page.get_by_text("throw").click()
    page.wait_for_function("true")  # one round trip: both events have reached Python
    assert [e.split(" (")[0] for e in page.console_errors] == ["deliberate"]
    assert len(page.page_errors) == 1 and "TypeError" in page.page_errors[0]
    try:
        page.assert_no_errors()
    except AssertionError as e:
        assert "deliberate" in str(e)
    else:
        raise AssertionError("assert_no_errors passed on a page with errors")


def test_screenshot_lands_in_artifacts(page: RecordedPage) -> None:
    page.goto(PAGE)
    path = page.screenshot("harness self-test")
    assert path.parent == Path(__file__).parent / "artifacts"
    assert path.name == "harness_self-test.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dark_scheme_and_narrow_viewport_reach_the_page(browser: Any) -> None:
    with new_page(browser, color_scheme="dark", viewport={"width": 400, "height": 700}) as p:
        p.goto("data:text/html,<title>x</title>")
        assert p.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") is True
        assert p.evaluate("innerWidth") == 400


def test_login_sets_the_cookie_and_leaves_no_token_in_the_url(page: RecordedPage, daemon: Any) -> None:
    base = login(page, daemon)
    token = (daemon.data_dir / "token").read_text().strip()
    assert page.url == f"{base}/"
    assert token not in page.url
    cookies = {c["name"]: c for c in page.context.cookies(base)}
    assert cookies["aod_session"]["httpOnly"] is True
    # The cookie alone authorizes the browser's next request.
    page.goto(f"{base}/v1/status")
    assert json.loads(page.locator("body").inner_text())["tcp"] == base.removeprefix("http://")


def test_without_login_the_api_refuses_the_browser(page: RecordedPage, daemon: Any) -> None:
    base = tcp_base(daemon)
    response = page.goto(f"{base}/v1/status")
    assert response is not None and response.status == 401
