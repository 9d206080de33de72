"""Every error the API gives is JSON: `{"error": {"code", "message"}}`, never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from aod.storage.health import Kind, classify

log = logging.getLogger("aod.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "body_too_large", 415: "unsupported_media_type", 503: "not_ready",
}
# 507 Insufficient Storage (DESIGN §6): nothing of the request was stored; a client that can keep
# it (the hook client's spool) should, and send it again later.
STORAGE_STATUS = 507
STORAGE_MESSAGES: dict[Kind, str] = {
    "full": "the disk holding the database is full: nothing of this request was stored",
    "readonly": "the database is read-only (its file system or file refuses writes): nothing of this request was stored",
}


class ApiError(web.HTTPException):
    """Raised by handlers; rendered by the middleware."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status_code = status
        super().__init__(text=message)
        self.code = code
        self.message = message


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def error_body(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.Response(body=error_body(code, message), status=status, content_type="application/json")


def storage_code(kind: Kind) -> str:
    return f"storage_{kind}"


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status_code, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status_code < 400:
            raise  # redirects and the like
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status_code}:") else exc.reason
        response = error_response(exc.status_code, _CODES.get(exc.status_code, "error"), message)
        if exc.status_code == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception as exc:
        return error_response(*failure(exc, request.method, request.path))


def failure(exc: Exception, method: str, path: str) -> tuple[int, str, str]:
    """(status, code, message) for what a handler raised: the one mapping aiohttp's routes and the
    lean ingest protocol (aod/api/lean.py) both answer with. Call it from an `except` block."""
    if isinstance(exc, ApiError):
        return exc.status_code, exc.code, exc.message
    kind = classify(exc)
    if kind is not None:
        # Not logged per request: the storage health state logs when the condition begins and ends.
        return STORAGE_STATUS, storage_code(kind), STORAGE_MESSAGES[kind]
    log.exception("unhandled error", extra={"path": path, "method": method})
    return 500, "internal", "internal error; the daemon log has the details"
