"""The dashboard's files as the daemon serves them: one page for every view path, strict headers,
ETags with 304, behind the token over TCP, JSON errors for what is not there."""

from __future__ import annotations

import re
from typing import Any

from tests.helpers.daemon import Daemon, SocketClient

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _tcp(daemon: Daemon, path: str, headers: dict[str, str | bytes] | None = None) -> tuple[int, dict[str, str], Any]:
    reply = daemon.tcp("GET", path, headers=headers)
    return reply.status, reply.headers, reply.body


def test_every_view_path_is_the_same_page_with_strict_headers(api: SocketClient) -> None:
    home = api.get("/")
    assert home.status == 200 and home.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/assets/app.js"></script>' in home.body
    for path in ("/sessions/web-3", "/sessions/a%20b", "/feed", "/stats"):
        page = api.get(path)
        assert (page.status, page.body, page.headers["etag"]) == (200, home.body, home.headers["etag"]), path
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"), ("favicon.svg", "image/svg+xml")):
        asset = api.get(f"/assets/{name}")
        assert asset.status == 200 and asset.headers["content-type"].startswith(kind), name
    for reply in (home, asset):
        h = reply.headers
        assert h["content-security-policy"] == CSP
        assert (h["referrer-policy"], h["x-content-type-options"], h["cache-control"]) == ("no-referrer", "nosniff", "no-cache")
        assert re.fullmatch(r'"[0-9a-f]{32}"', h["etag"])
    # Nothing the CSP would block: no inline script, style attribute or handler in the page.
    assert not re.search(r"<script(?![^>]*\bsrc=)|\bstyle=|<style|\bon[a-z]+=", home.body)


def test_etags_answer_304_and_unknown_files_are_json_404s(api: SocketClient) -> None:
    first = api.get("/assets/store.js")
    again = api.get("/assets/store.js", headers={"If-None-Match": f'"x", {first.headers["etag"]}'})
    assert again.status == 304 and again.body is None and again.headers["etag"] == first.headers["etag"]
    assert again.headers["content-security-policy"] == CSP
    assert api.get("/assets/store.js", headers={"If-None-Match": '"stale"'}).status == 200
    for path in ("/assets/nope.js", "/assets/index.html", "/assets/..%2Fapi%2Fapp.py", "/assets/%2e%2e"):
        missing = api.get(path)
        assert missing.status == 404 and missing.body["error"]["code"] == "not_found", path
    # The API's errors stay JSON next to the page.
    assert api.get("/v1/sessions/nope").body["error"]["code"] == "not_found"
    assert api.get("/sessions/a/b").body["error"]["code"] == "not_found"


def test_over_tcp_the_page_needs_the_login_cookie(daemon: Daemon) -> None:
    status, _, body = _tcp(daemon, "/")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    token = (daemon.data_dir / "token").read_text().strip()
    status, headers, _ = _tcp(daemon, f"/login?token={token}")
    assert status == 302 and headers["location"] == "/"
    cookie = headers["set-cookie"].split(";", 1)[0]
    status, headers, body = _tcp(daemon, "/sessions/web-1", {"Cookie": cookie})
    assert status == 200 and "/assets/app.js" in body and headers["content-security-policy"] == CSP
    status, _, _ = _tcp(daemon, "/assets/app.js", {"Cookie": cookie})
    assert status == 200
