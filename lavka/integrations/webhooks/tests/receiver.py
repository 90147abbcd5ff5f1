"""A webhook receiver on loopback for the tests: a real `http.server` in a thread that records every request
and answers whatever the test scripts (a status per request, or holding a request until released)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lavka.integrations.webhooks.signing import verify_signature


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a sender that died mid-request leaves a broken pipe; that is what some tests do on purpose


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    at: float = field(default_factory=time.time)

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def delivery_id(self) -> str:
        return self.headers["x-lavka-delivery"]

    def signed_with(self, secret: str) -> bool:
        return verify_signature(
            secret, self.headers["x-lavka-timestamp"], self.body, self.headers["x-lavka-signature"]
        )


class Receiver:
    """`answer(request, n)` gives the status of the n-th request (0-based); a `hold` event, when set on a
    request by `answer`, keeps that request open until `release()`."""

    def __init__(self, port: int = 0, answer: Callable[[Received, int], int] | None = None) -> None:
        self.port = port
        self.answer = answer or (lambda request, n: 200)
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.holding = threading.Event()
        self.released = threading.Event()
        self.hold_next = False
        self.delay = 0.0
        self.server: ThreadingHTTPServer | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer.lock:
                    n = len(outer.requests)
                    outer.requests.append(request)
                    hold, outer.hold_next = outer.hold_next, False
                if hold:
                    outer.holding.set()
                    outer.released.wait(60)
                if outer.delay:
                    time.sleep(outer.delay)
                request.status = outer.answer(request, n)
                self.send_response(request.status)
                if 300 <= request.status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Type", "text/plain")
                reply = f"answer {request.status} <b>".encode()
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def release(self) -> None:
        self.released.set()

    def stop(self) -> None:
        self.release()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def answered(self, status: int = 200) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.status == status]
