"""The browser dashboard: `aod/dashboard/` served as it is (no build step).

Every page path answers the same index.html; the app's router reads `location.pathname`, so a deep
link such as `/sessions/{id}` survives a reload. Caching is ETag + `no-cache` for every file,
assets included: the ES modules import each other by plain name, so content-hashed file names
would need a build step (or rewriting imports at serve time), while a revalidation on loopback is a
304 without a body.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from aod.api.errors import ApiError

routes = web.RouteTableDef()
ROOT = Path(__file__).resolve().parent.parent / "dashboard"
INDEX = "index.html"
SECURITY_HEADERS = {
    # No inline script or style anywhere in the app: a strict policy costs it nothing.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


_assets: dict[str, Asset] | None = None


def _load() -> dict[str, Asset]:
    found = {}
    for path in sorted(ROOT.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            body = path.read_bytes()
            kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            found[path.name] = Asset(body, kind, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return found


async def _asset(name: str) -> Asset:
    global _assets
    if _assets is None:
        # Read once per process (two first requests may both read: harmless): the files are
        # package data and do not change under a running daemon.
        _assets = await asyncio.to_thread(_load)
    asset = _assets.get(name)
    if asset is None:
        raise ApiError(404, "not_found", f"no dashboard asset {name!r}")
    return asset


def _answer(request: web.Request, asset: Asset) -> web.Response:
    headers = {**SECURITY_HEADERS, "ETag": asset.etag}
    offered = request.headers.get("If-None-Match", "")
    if asset.etag in (tag.strip() for tag in offered.split(",")) or offered.strip() == "*":
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if asset.content_type.startswith("text/") or asset.content_type.endswith("+xml") else None
    return web.Response(body=asset.body, headers=headers, content_type=asset.content_type, charset=charset)


@routes.get("/")
async def dashboard(request: web.Request) -> web.Response:
    return _answer(request, await _asset(INDEX))


@routes.get("/sessions/{id}")
async def dashboard_session(request: web.Request) -> web.Response:
    return _answer(request, await _asset(INDEX))


@routes.get("/feed")
async def dashboard_feed(request: web.Request) -> web.Response:
    return _answer(request, await _asset(INDEX))


@routes.get("/stats")
async def dashboard_stats(request: web.Request) -> web.Response:
    return _answer(request, await _asset(INDEX))


@routes.get("/assets/{name}")
async def dashboard_asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name == INDEX:
        raise ApiError(404, "not_found", "the dashboard page is at /")
    return _answer(request, await _asset(name))
