"""A small local webhook receiver for tests: records each request, verifies signatures, can fail on demand.

`requests` holds the accepted requests (duplicates included, each with its arrival time `at`); `attempts`
holds every request with the status it got, refused ones too. `effects()` is what a receiver that drops
duplicates by idempotency key keeps; `hold_seconds` keeps each accepted request open that long before
answering, so that a test can kill the sender while a delivery is in flight.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, port: int = 0) -> None:
        self.requests: list[dict] = []
        self.attempts: list[dict] = []
        self.fail_with: int | None = None
        self.hold_seconds: float = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                at = time.time()
                key = self.headers.get("Idempotency-Key", "")
                status = receiver.fail_with or 204
                with receiver.lock:
                    receiver.attempts.append({"key": key, "at": at, "status": status})
                if receiver.fail_with:
                    self.send_response(receiver.fail_with)
                    self.end_headers()
                    return
                record = {
                    "headers": dict(self.headers), "body": body, "json": json.loads(body), "key": key,
                    "at": at, "answered_at": None,
                }  # fmt: skip
                with receiver.lock:
                    receiver.requests.append(record)
                if receiver.hold_seconds:
                    time.sleep(receiver.hold_seconds)
                self.send_response(204)
                self.end_headers()
                record["answered_at"] = time.time()

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a sender killed mid-request (the point of some tests) is not an error here

        self.server = Server(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def keys(self) -> list[str]:
        return [r["headers"]["Idempotency-Key"] for r in self.requests]

    def effects(self) -> dict[str, dict]:
        """The first accepted request of each idempotency key: what a deduplicating receiver acts on."""
        first: dict[str, dict] = {}
        with self.lock:
            for request in self.requests:
                first.setdefault(request["key"], request)
        return first

    def duplicates(self) -> dict[str, int]:
        """Keys accepted more than once, with how many times."""
        with self.lock:
            counts = Counter(r["key"] for r in self.requests)
        return {key: n for key, n in counts.items() if n > 1}

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
