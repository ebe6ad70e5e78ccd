"""A loopback HTTP proxy that injects AWS faults between a boto3 client and a local service.

Point a client (or a Lambda handler, through ``AWS_ENDPOINT_URL_<SERVICE>``) at :attr:`FaultProxy.url`.
Every request is forwarded to the upstream — DynamoDB Local or moto server — unless a rule, by a
seeded random draw, answers it with a fault instead. The faults are what the real services send,
so botocore's own retry logic (standard mode: which codes it retries, how often, its retry quota)
decides what happens next, exactly as it would against AWS:

- ``400`` ``ProvisionedThroughputExceededException`` / ``ThrottlingException`` (JSON protocols) or
  ``Throttling`` (query protocols): throttled, not applied;
- ``400`` ``TransactionCanceledException`` whose every cancellation reason is ``ThrottlingError``
  (only for ``TransactWriteItems``/``TransactGetItems``): a throttled transaction, not applied;
- ``500`` ``InternalServerError`` and ``503`` ``ServiceUnavailable``: not applied;
- *lost response*: forwarded and applied upstream, then answered ``500`` — the caller cannot tell
  it from an error before the write, which is what makes retries dangerous for counters;
- *connection reset*: the connection is closed without an answer, the request not forwarded.

Rules match on the service (the signing name in the SigV4 credential scope: ``dynamodb``, ``sns``,
``secretsmanager``) and the operation (``X-Amz-Target`` or the query ``Action``). The random draws
are made in request order under a lock, so a single-threaded client sees the same faults on every
run with the same seed.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import threading
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape


class Fault(StrEnum):
    THROUGHPUT_EXCEEDED = "throughput_exceeded"
    THROTTLING = "throttling"
    TRANSACTION_THROTTLED = "transaction_throttled"
    INTERNAL_ERROR = "internal_error"
    UNAVAILABLE = "unavailable"
    LOST_RESPONSE = "lost_response"
    CONNECTION_RESET = "connection_reset"


THROTTLES = (Fault.THROUGHPUT_EXCEEDED, Fault.THROTTLING)
SERVER_ERRORS = (Fault.INTERNAL_ERROR, Fault.UNAVAILABLE)
EVERY_FAULT = tuple(Fault)
_TRANSACTIONS = frozenset({"TransactWriteItems", "TransactGetItems"})
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection", "content-length"})
_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/[^/]+/([^/]+)/aws4_request")


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Answer a matching request with one of `faults` (chosen at random) with probability `rate`."""

    rate: float
    faults: tuple[Fault, ...]
    service: str | None = None  # SigV4 signing name; None = any
    operations: frozenset[str] = frozenset()  # empty = every operation
    max_in_a_row: int | None = None  # after this many faults in a row, the next matching request passes

    def matches(self, service: str, operation: str) -> bool:
        return (self.service is None or self.service == service) and (
            not self.operations or operation in self.operations
        )


@dataclass(frozen=True, slots=True)
class Injected:
    service: str
    operation: str
    fault: Fault


class FaultProxy:
    """The proxy's rules and record; shared by its handler threads."""

    def __init__(self, upstream: str, seed: int = 0) -> None:
        parts = urlsplit(upstream)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream_host: str = parts.hostname
        self.upstream_port: int = parts.port
        self.url = ""  # set once the server listens
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._script: deque[FaultRule] = deque()
        self._outage: FaultRule | None = None
        self._streaks: dict[int, int] = {}  # rule index -> faults injected in a row
        self._injected: list[Injected] = []
        self._forwarded: Counter[tuple[str, str]] = Counter()
        self._local = threading.local()

    # ---------------------------------------------------------------- control

    def inject(
        self,
        rate: float,
        *faults: Fault,
        service: str | None = None,
        operations: tuple[str, ...] = (),
        max_in_a_row: int | None = None,
    ) -> None:
        """Add a rule (rules are tried in order; the first that matches draws).

        `max_in_a_row` bounds a burst: below a client's retry count, every call still succeeds in
        the end, so a test can state "exactly once" instead of "unless unlucky".
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {rate}")
        with self._lock:
            self._rules.append(FaultRule(rate, faults or EVERY_FAULT, service, frozenset(operations), max_in_a_row))

    def script(self, *faults: Fault | None, service: str | None = None, operations: tuple[str, ...] = ()) -> None:
        """Answer the next matching requests with these faults, in order (None: forward that one untouched)."""
        with self._lock:
            self._script.extend(
                FaultRule(0.0, (), service, frozenset(operations))
                if f is None
                else FaultRule(1.0, (f,), service, frozenset(operations))
                for f in faults
            )

    def outage(self, fault: Fault = Fault.UNAVAILABLE, *, service: str | None = None) -> None:
        """Every matching request fails with `fault` until :meth:`end_outage` or :meth:`heal`."""
        with self._lock:
            self._outage = FaultRule(1.0, (fault,), service)

    def end_outage(self) -> None:
        with self._lock:
            self._outage = None

    def heal(self) -> None:
        """Drop every rule, script and outage: from now on everything is forwarded."""
        with self._lock:
            self._rules.clear()
            self._script.clear()
            self._outage = None
            self._streaks.clear()

    # ----------------------------------------------------------------- record

    @property
    def injected(self) -> list[Injected]:
        with self._lock:
            return list(self._injected)

    def injected_counts(self) -> Counter[Fault]:
        return Counter(i.fault for i in self.injected)

    def forwarded(self, operation: str | None = None) -> int:
        """Requests that reached the upstream (lost responses included), optionally of one operation."""
        with self._lock:
            return sum(n for (_, op), n in self._forwarded.items() if operation is None or op == operation)

    # --------------------------------------------------------------- handling

    def decide(self, service: str, operation: str) -> Fault | None:
        """The fault for this request, if any: the outage, then the script, then the rules' draws."""
        with self._lock:
            if self._outage is not None and self._outage.matches(service, operation):
                return self._record(service, operation, self._outage.faults[0])
            if self._script and self._script[0].matches(service, operation):
                scripted = self._script.popleft()
                return self._record(service, operation, scripted.faults[0]) if scripted.faults else None
            for index, rule in enumerate(self._rules):
                if not rule.matches(service, operation):
                    continue
                applicable = [
                    f for f in rule.faults if f is not Fault.TRANSACTION_THROTTLED or operation in _TRANSACTIONS
                ]
                # One draw per matching request, even when nothing applies, keeps the sequence stable.
                draw = self._random.random()
                streak = self._streaks.get(index, 0)
                if (
                    not applicable
                    or draw >= rule.rate
                    or (rule.max_in_a_row is not None and streak >= rule.max_in_a_row)
                ):
                    self._streaks[index] = 0
                    return None
                self._streaks[index] = streak + 1
                return self._record(service, operation, applicable[self._random.randrange(len(applicable))])
            return None

    def _record(self, service: str, operation: str, fault: Fault) -> Fault:
        self._injected.append(Injected(service, operation, fault))
        return fault

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes, service: str, operation: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request upstream on this thread's keep-alive connection; (status, headers, body)."""
        for attempt in (1, 2):
            conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
                self._local.conn = conn
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                # A keep-alive connection the upstream closed meanwhile: reconnect once.
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
                continue
            with self._lock:
                self._forwarded[(service, operation)] += 1
            return response.status, response.getheaders(), data
        raise AssertionError("unreachable")  # pragma: no cover


def _service_and_operation(headers: Any, body: bytes) -> tuple[str, str]:
    scope = _SCOPE.search(headers.get("Authorization", ""))
    service = scope.group(1) if scope else ""
    target = headers.get("X-Amz-Target", "")
    if target:
        return service, target.rsplit(".", 1)[-1]
    if headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode("utf-8", errors="replace")).get("Action", [""])[0]
        return service, action
    return service, ""


def _error(fault: Fault, json_protocol: bool, body: bytes) -> tuple[int, str, bytes]:
    """(status, content type, body) of the service error that stands for `fault`."""
    status, code, message = {
        Fault.THROUGHPUT_EXCEEDED: (
            400,
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded.",
        ),
        Fault.THROTTLING: (400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
        Fault.TRANSACTION_THROTTLED: (400, "TransactionCanceledException", ""),
        Fault.INTERNAL_ERROR: (500, "InternalServerError", "Internal server error"),
        Fault.LOST_RESPONSE: (500, "InternalServerError", "Internal server error"),
        Fault.UNAVAILABLE: (503, "ServiceUnavailable", "Service unavailable"),
    }[fault]
    if not json_protocol:
        if fault in THROTTLES:
            code = "Throttling"
        xml = (
            f"<ErrorResponse><Error><Type>{'Sender' if status < 500 else 'Receiver'}</Type><Code>{code}</Code>"
            f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
        return status, "text/xml", xml.encode()
    document: dict[str, Any] = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
    if fault is Fault.TRANSACTION_THROTTLED:
        try:
            actions = len(json.loads(body).get("TransactItems", [])) or 1
        except (ValueError, AttributeError):
            actions = 1
        reasons = [{"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity."}] * actions
        document = {
            "__type": f"com.amazonaws.dynamodb.v20120810#{code}",
            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
            f"[{', '.join(['ThrottlingError'] * actions)}]",
            "CancellationReasons": reasons,
        }
    return status, "application/x-amz-json-1.0", json.dumps(document).encode()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
        # Headers and body go out in two writes; with Nagle's algorithm on, the client's delayed ACK
        # would hold the second one back ~40 ms per request.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            self._handle()

        do_GET = do_PUT = do_DELETE = do_POST

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            service, operation = _service_and_operation(self.headers, body)
            fault = proxy.decide(service, operation)
            if fault is Fault.CONNECTION_RESET:
                self.close_connection = True  # no answer at all; the server closes the socket
                return
            json_protocol = not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
            if fault is None or fault is Fault.LOST_RESPONSE:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                status, upstream_headers, data = proxy.forward(
                    self.command, self.path, headers, body, service, operation
                )
                if fault is None:
                    self._answer(status, [(k, v) for k, v in upstream_headers if k.lower() not in _HOP_BY_HOP], data)
                    return
            status, content_type, data = _error(fault, json_protocol, body)
            self._answer(status, [("Content-Type", content_type), ("x-amzn-RequestId", str(uuid.uuid4()))], data)

        def _answer(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            try:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                self.close_connection = True  # the client went away

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def fault_proxy(upstream: str, seed: int = 0) -> Iterator[FaultProxy]:
    """Serve a :class:`FaultProxy` in front of `upstream` on a free loopback port for the block."""
    proxy = FaultProxy(upstream, seed)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
    )
    thread.start()
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def scale_botocore_backoff(monkeypatch: Any, factor: float = 0.01) -> None:
    """Shrink botocore's standard-mode backoff delays by `factor` for the test.

    Which errors botocore retries, how many attempts it makes and its retry quota stay its own;
    only the sleeps between attempts (up to seconds for throttling) get shorter, so suites that
    inject thousands of faults stay fast.
    """
    from botocore.retries.standard import ExponentialBackoff

    defaults = ExponentialBackoff._DEFAULT_BACKOFF_CONFIG
    for name, value in list(defaults.items()):
        monkeypatch.setitem(defaults, name, value * factor)
    for service, config in ExponentialBackoff._SERVICE_BACKOFF_CONFIG.items():
        for name, value in list(config.items()):
            monkeypatch.setitem(ExponentialBackoff._SERVICE_BACKOFF_CONFIG[service], name, value * factor)
