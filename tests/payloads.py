"""Realistic CloudWatch Logs subscription payloads of RDS Proxy log lines, for tests and benchmarks.

Encoding is the local Lambda harness's (:mod:`pinwatch.local.lambda_harness`); this module holds the lines.

Line bodies are the verbatim shapes quoted in the reference (Prisma, Ruby pg and Doctrine digests,
the 16 KB limit, the PostgreSQL parse message, the INFO would-pin warning); timestamps, ids and
the optional ``proxyEndpoint`` tag vary per line as they do in real logs.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

from pinwatch.local.lambda_harness import encode_subscription, subscription_document

_PIN = (
    "The client session was pinned to the database connection [dbConnection={db}] for the remainder of the "
    "session. The proxy can't reuse this connection until the session ends. Reason: {reason}"
)
_WOULD = (
    "If this prepared statement runs, the client session will be pinned to the database connection "
    "[dbConnection={db}]. Reason: {reason}"
)
_SETTINGS = (
    "SQL changed session settings that the proxy doesn't track. Consider moving session configuration to the "
    "proxy's initialization query."
)
# For suites that build bodies of their own (tests/support/ground_truth.py).
PIN_TEMPLATE, WOULD_PIN_TEMPLATE, SETTINGS_REASON = _PIN, _WOULD, _SETTINGS

# (level, template, reason) - each reason a separate shape seen in public issues.
PIN_BODIES: tuple[tuple[str, str, str], ...] = (
    ("WARN", _PIN, f'{_SETTINGS} Digest: "set search_path = $1; set names $2;".'),
    ("WARN", _PIN, f'{_SETTINGS} Digest: "set client_encoding to $1".'),
    ("WARN", _PIN, "A parse message was detected."),
    ("WARN", _PIN, "The connection ran a SQL query which exceeded the 16384 byte limit."),
)
WOULD_PIN_BODIES: tuple[tuple[str, str, str], ...] = (
    ("INFO", _WOULD, 'A parse message was detected. Digest: "select * from orders where customer_id = $1".'),
)
OTHER_LINES = (
    "A new client connected from 10.0.10.240:56779.",
    "The client connection closed. Reason: The TCP channel was closed by either the client or the proxy.",
)


def iso_ms(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def proxy_line(rnd: random.Random, ts_ms: int, body: tuple[str, str, str]) -> str:
    level, template, reason = body
    endpoint = "[proxyEndpoint=default] " if rnd.random() < 0.8 else ""
    client = rnd.randrange(10**7, 10**10)
    return f"{iso_ms(ts_ms)} [{level}] {endpoint}[clientConnection={client}] " + template.format(
        db=rnd.randrange(10**8, 10**10), reason=reason
    )


def log_events(
    count: int,
    start_ms: int,
    spread_ms: int,
    *,
    bodies: tuple[tuple[str, str, str], ...] = PIN_BODIES + WOULD_PIN_BODIES,
    seed: int = 7,
) -> list[dict[str, Any]]:
    """`count` events with timestamps evenly spread over [start_ms, start_ms + spread_ms), in time order."""
    rnd = random.Random(seed)
    step = max(1, spread_ms // max(1, count))
    events = []
    for i in range(count):
        ts = start_ms + i * step
        events.append(
            {
                "id": f"{ts:020d}{rnd.randrange(10**35, 10**36):036d}",
                "timestamp": ts,
                "message": proxy_line(rnd, ts, bodies[rnd.randrange(len(bodies))]),
            }
        )
    return events


def payload(
    events: list[dict[str, Any]],
    log_group: str = "/aws/rds/proxy/orders-db",
    log_stream: str = "proxy-orders-db-1",
    message_type: str = "DATA_MESSAGE",
) -> dict[str, Any]:
    """A subscription payload (decoded) of ``events``, by default from the orders-db proxy's first stream."""
    return subscription_document(log_group, log_stream, events, message_type=message_type)


def subscription_event(events: list[dict[str, Any]], **kwargs: str) -> dict[str, Any]:
    """:func:`payload` as the invocation event Lambda receives."""
    return encode_subscription(payload(events, **kwargs))


# The invocation event CloudWatch Logs sends for any document: base64(gzip(JSON)).
wrap = encode_subscription


def max_size_event(
    limit_bytes: int = 1_000_000, start_ms: int = 1_795_600_800_000, hours: int = 1, seed: int = 7
) -> tuple[dict[str, Any], int]:
    """(event, line count): about the largest event under `limit_bytes` (Lambda's async payload limit, 1 MB).

    The encoded size grows linearly with the line count, so two scaled guesses land within 1%.
    """
    count = 4000
    for _ in range(8):
        event = subscription_event(log_events(count, start_ms, hours * 3_600_000, seed=seed))
        size = len(json.dumps(event))
        if 0.98 * limit_bytes <= size <= limit_bytes:
            return event, count
        count = max(1, int(count * limit_bytes * 0.99 / size))
    raise AssertionError(f"no event size within 2% under {limit_bytes} bytes")
