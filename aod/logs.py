"""Structured logs: one JSON object per line on stderr, for everything `aod serve` writes.

Besides the `logging` records, Python's warnings and uncaught exceptions (main thread, other
threads, "Exception ignored in ...") go through the same handler, so a log reader never meets a
plain-text line. A client that sends something that is not HTTP, or goes away mid-request, is
not aod's failure: the records aiohttp, asyncio and the API write about it become one short line
at info (malformed) or debug (disconnected), with no traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from types import TracebackType
from typing import Any

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

# The loggers that write about HTTP clients. Elsewhere (a webhook notifier, gh) a refused or
# reset connection is a real problem and keeps its level and traceback.
_SERVER_LOGGERS = ("aiohttp.", "asyncio", "aod.api", "aod.stream")
# A malformed request can echo up to a header line's 8 KiB back into its error message.
_ERROR_CHARS = 300

log = logging.getLogger("aod")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format must not cost the line
            message = str(record.msg)
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": message,
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=str).decode()
        except TypeError:  # what orjson refuses (ints past 64 bits, non-str keys) the stdlib takes
            return json.dumps(entry, default=str)


class ClientNoise(logging.Filter):
    """Rewrites records about a misbehaving client: a lower level, the error in one field."""

    def filter(self, record: logging.LogRecord) -> bool:
        level = _client_fault_level(record)
        if level is None:
            return True
        exc = record.exc_info[1] if record.exc_info else None
        level = min(level, record.levelno)  # aiohttp already keeps a TLS hello on port 80 at debug
        record.levelno, record.levelname = level, logging.getLevelName(level)
        # aiohttp's parse errors span lines (the bad bytes, a caret under them): one line reads better.
        record.error = " ".join(f"{type(exc).__name__}: {exc}".split())[:_ERROR_CHARS]
        record.exc_info, record.exc_text = None, None
        # Loggers chose what to pass at the old level; the new one must clear the same bar.
        return level >= logging.getLogger(record.name).getEffectiveLevel()


def _client_fault_level(record: logging.LogRecord) -> int | None:
    if not record.exc_info or not record.name.startswith(_SERVER_LOGGERS):
        return None
    from aiohttp.http_exceptions import HttpProcessingError
    from aiohttp.web_protocol import RequestPayloadError

    exc = record.exc_info[1]
    if isinstance(exc, HttpProcessingError):
        return logging.INFO
    if isinstance(exc, ConnectionError | RequestPayloadError):
        return logging.DEBUG
    if record.name.startswith("asyncio") and isinstance(exc, OSError):
        # A transport or accept() failure (EMFILE, ETIMEDOUT): worth seeing, not a crash.
        return logging.WARNING
    return None


def setup(level: str) -> None:
    """Route every diagnostic of this process to JSON lines on stderr; safe to call again."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    handler.addFilter(ClientNoise())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log is one line per request: useful only when debugging.
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    # yoyo logs every statement of a migration at info; aod logs the outcome itself.
    logging.getLogger("yoyo").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    sys.excepthook = _uncaught
    threading.excepthook = _uncaught_in_thread
    sys.unraisablehook = _unraisable


def _uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):  # Ctrl-C before the loop took over the signals
        log.info("interrupted")
        return
    log.critical("uncaught exception", exc_info=(kind, exc, tb))


def _uncaught_in_thread(args: Any) -> None:
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else None
    log.error("uncaught exception in a thread", extra={"in_thread": thread},
              exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def _unraisable(unraisable: Any) -> None:
    exc = unraisable.exc_value
    log.warning(unraisable.err_msg or "exception ignored", extra={"object": repr(unraisable.object)},
                exc_info=(type(exc), exc, unraisable.exc_traceback) if exc is not None else None)
