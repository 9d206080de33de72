"""Who may talk to the API.

The Unix socket is protected by its 0600 mode. TCP needs the token from `<data_dir>/token`
(Bearer header, or the `aod_session` cookie that `/login?token=` sets for the browser); Host
must be a loopback name so a DNS-rebound page cannot reach us; and a state-changing request
from a browser must come from our own origin.
"""

from __future__ import annotations

import hmac
import os
import secrets
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from aod.api.errors import ApiError, Handler

TOKEN_FILE = "token"
COOKIE = "aod_session"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def ensure_token(data_dir: Path) -> str:
    """Read the token, creating it (0600) on first start."""
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text().strip()
        if token:
            os.chmod(path, 0o600)
            return token
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{TOKEN_FILE}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.replace(tmp, path)
    return token


def over_tcp(request: web.Request) -> bool:
    # A Unix socket's peer name is a string (often empty); TCP's is a (host, port) tuple.
    return isinstance(request.transport.get_extra_info("peername") if request.transport else None, tuple)


def guard(token: str) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not over_tcp(request):
            return await handler(request)
        refused = refusal(request.method, request.host, request.headers.get("Origin"), request.scheme)
        if refused is not None:
            raise refused
        if request.path == "/login":
            return _login(request, token)
        if request.path in ("/healthz",):
            return await handler(request)
        if not authorized(request.headers.get("Authorization", ""), request.headers.get("Cookie", ""), token):
            raise unauthorized()
        return await handler(request)

    return middleware


# The same checks for aiohttp's routes (the middleware above) and the lean ingest protocol
# (aod/api/lean.py), on plain header values, so the two paths cannot drift apart.
def unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", "send the token of <data_dir>/token as 'Authorization: Bearer …'")


def refusal(method: str, host_header: str | None, origin: str | None, scheme: str) -> ApiError | None:
    """Why a TCP request is refused before its token is looked at (DNS rebinding, cross-origin writes)."""
    try:
        host = urlsplit("//" + (host_header or "")).hostname or ""
    except ValueError:
        host = ""
    if host not in LOOPBACK_HOSTS:
        return ApiError(403, "forbidden_host", f"Host {host_header!r} is not a loopback name")
    if method not in SAFE_METHODS and origin is not None and origin != f"{scheme}://{host_header}":
        return ApiError(403, "forbidden_origin", f"Origin {origin!r} may not change state here")
    return None


def authorized(authorization: str, cookie_header: str, token: str) -> bool:
    scheme, _, credentials = authorization.strip().partition(" ")
    # RFC 7235: the scheme name is case-insensitive.
    offered = credentials.strip() if scheme.lower() == "bearer" else _cookie(cookie_header)
    return bool(offered) and _same(offered, token)


def _cookie(header: str) -> str:
    try:
        morsel = SimpleCookie(header).get(COOKIE)
    except (CookieError, ValueError, UnicodeError):  # a header no browser would send: no cookie
        return ""
    return morsel.value if morsel is not None else ""


def _same(offered: str, token: str) -> bool:
    # Header text arrives with undecodable bytes as surrogates, which a plain encode() refuses.
    return hmac.compare_digest(offered.encode("utf-8", "surrogateescape"), token.encode())


def _login(request: web.Request, token: str) -> web.StreamResponse:
    offered = request.query.get("token", "")
    if not offered or not _same(offered, token):
        raise ApiError(401, "unauthorized", "wrong or missing token")
    response = web.HTTPFound("/")
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
    raise response
