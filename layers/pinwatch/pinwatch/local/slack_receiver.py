"""A local stand-in for a Slack incoming webhook: a real HTTP server on a free loopback port.

Every POST is recorded (path, headers, body, arrival time) whatever the answer. Answers are
scripted per request — ``ok``, ``429`` with ``Retry-After``, ``500``, ``400 invalid_payload``, or
hanging for N seconds before answering — and default to Slack's ``200 ok``::

    with slack_receiver() as (url, receiver):
        receiver.script(Reply.rate_limited(retry_after_s=1), Reply.ok())
        ...  # send to url
        assert len(receiver.requests) == 2

Used by the tests and by ``pinwatch demo`` (with ``SLACK_ALLOW_LOOPBACK=true``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_PATH = "/services/T00000000/B00000000/localreceiver"


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: str = "ok"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # wait this long before answering (a slow or hanging Slack)

    @classmethod
    def ok(cls) -> Reply:
        return cls()

    @classmethod
    def rate_limited(cls, retry_after_s: int = 1) -> Reply:
        return cls(429, "rate_limited", {"Retry-After": str(retry_after_s)})

    @classmethod
    def server_error(cls, status: int = 500) -> Reply:
        return cls(status, "internal_error")

    @classmethod
    def error(cls, body: str, status: int = 400) -> Reply:
        """A Slack error answer, e.g. ``invalid_payload`` (400), ``channel_not_found`` (404)."""
        return cls(status, body)

    @classmethod
    def invalid_payload(cls) -> Reply:
        return cls.error("invalid_payload", 400)

    @classmethod
    def hang(cls, seconds: float) -> Reply:
        """Hold the connection without answering for ``seconds`` (then answer ok)."""
        return cls(delay_s=seconds)


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    path: str
    headers: Mapping[str, str]
    body: bytes
    received_at: float  # time.monotonic() on arrival
    reply: Reply

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


class SlackReceiver:
    """The recording and the script; shared by the server's handler threads."""

    def __init__(self, path: str = DEFAULT_PATH) -> None:
        self.path = path  # like a real webhook, any other path answers 404 no_service
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self._default = Reply.ok()
        self._requests: list[ReceivedRequest] = []
        self.closing = threading.Event()  # releases hanging replies when the server stops

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order; then the default."""
        with self._lock:
            self._script.extend(replies)

    def set_default(self, reply: Reply) -> None:
        with self._lock:
            self._default = reply

    def clear(self) -> None:
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self._default = Reply.ok()

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def payloads(self) -> list[Any]:
        """The JSON bodies received, in order."""
        return [r.json() for r in self.requests]

    def _take(self, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        with self._lock:
            if path != self.path:
                reply = Reply.error("no_service", 404)
            else:
                reply = self._script.popleft() if self._script else self._default
            self._requests.append(ReceivedRequest(path, dict(headers), body, time.monotonic(), reply))
            return reply


def _handler(receiver: SlackReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            reply = receiver._take(self.path, dict(self.headers.items()), body)
            if reply.delay_s and receiver.closing.wait(reply.delay_s):
                return  # shutting down: drop the connection unanswered
            data = reply.body.encode("utf-8")
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (timed out) while we were hanging

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test and demo output clean

    return Handler


@contextmanager
def slack_receiver(path: str = DEFAULT_PATH) -> Iterator[tuple[str, SlackReceiver]]:
    """Serve on a free port of 127.0.0.1 for the block; yields ``(webhook_url, receiver)``."""
    receiver = SlackReceiver(path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    # A short poll interval keeps shutdown (and so each test using the receiver) fast.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-receiver", daemon=True
    )
    thread.start()
    try:
        port = server.server_address[1]
        yield f"http://127.0.0.1:{port}{path}", receiver
    finally:
        receiver.closing.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
