"""A real local HTTP receiver for webhook pages, which can fail the first attempts (HTTP 503)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.attempts: list[dict[str, Any]] = []  # every request: its page and the answer given
        self.accepted: list[dict[str, Any]] = []  # pages answered with 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                page = json.loads(body)
                with receiver._lock:
                    failing = len(receiver.attempts) < receiver.fail_first
                    receiver.attempts.append({"page": page, "status": 503 if failing else 200,
                                              "idempotency_key": self.headers.get("Idempotency-Key")})
                    if not failing:
                        receiver.accepted.append(page)
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/aod"
        # shutdown() waits for the loop's next poll: 0.5 s by default, at the end of every test using it.
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def pages_for(self, escalation_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.accepted if p["escalation"]["id"] == escalation_id]
