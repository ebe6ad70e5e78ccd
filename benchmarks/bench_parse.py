"""Parser throughput against the unavoidable cost of a CloudWatch Logs subscription payload.

Two ~1 MB (decoded JSON) payloads in the real wire format, base64(gzip(JSON)): one of pin lines
only (what a subscription filter on the pin phrase delivers) and one realistic mix with ~15% pin
lines (an unfiltered subscription). For each, the decode floor (b64decode + gunzip + json.loads)
and decode + parse of every message are timed as process CPU, best of N, in turn; the ratio is
the figure that carries across machines. The classifier cache is warm, as it is in a warm Lambda.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import time
from typing import Any

from benchmarks.common import Figure, interleaved_best_cpu
from pinwatch.parse import PIN_PHRASE, parse_message

TARGET_JSON_BYTES = 1_000_000
PIN_SHARE_IN_MIX = 0.15
REPEAT = 15

_TAIL = "for the remainder of the session. The proxy can't reuse this connection until the session ends. Reason: "
_SETTINGS = (
    "SQL changed session settings that the proxy doesn't track. Consider moving session configuration to the "
    "proxy's initialization query."
)
_PIN_REASONS = (
    f'{_SETTINGS} Digest: "set search_path = $1; set names $2;".',
    f'{_SETTINGS} Digest: "set client_encoding to $1".',
    f'{_SETTINGS} Digest: "SET sql_mode = ?, names ?, @@session.optimizer_search_depth = ?".',
    "A parse message was detected.",
    "The connection ran a SQL query which exceeded the 16384 byte limit.",
)
_OTHER = (
    "[INFO] [proxyEndpoint=default] [clientConnection={c}] A new client connected from 10.0.10.{n}:5{n}2.",
    "[INFO] [dbConnection={d}] A TCP connection was established from the proxy at 10.0.11.{n}:1{n}9 to the "
    "database at 10.0.10.246:5432.",
    "[INFO] [proxyEndpoint=default] [clientConnection={c}] The client connection closed. Reason: The TCP channel "
    "was closed by either the client or the proxy.",
    "[INFO] [dbConnection={d}] The database connection was released to the connection pool upon session reset.",
    "[WARN] [dbConnection={d}] The database connection closed. Reason: The client connection that borrowed this "
    "database connection from the connection pool was closed in the middle of a request.",
)


def _stamp(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _message(rng: random.Random, ms: int, pin: bool) -> str:
    c, d, n = rng.randint(10**7, 4 * 10**9), rng.randint(10**7, 4 * 10**9), rng.randint(2, 250)
    if pin:
        return (
            f"{_stamp(ms)} [WARN] [proxyEndpoint=default] [clientConnection={c}] {PIN_PHRASE} [dbConnection={d}] "
            f"{_TAIL}{rng.choice(_PIN_REASONS)}"
        )
    return f"{_stamp(ms)} " + rng.choice(_OTHER).format(c=c, d=d, n=n)


def build_payload(pin_share: float, seed: int = 1) -> tuple[str, int]:
    """A subscription event's ``awslogs.data`` holding ~TARGET_JSON_BYTES of JSON; returns (data, lines)."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    size = 0
    ms = 1_764_000_000_000
    while size < TARGET_JSON_BYTES:
        ms += rng.randint(1, 400)
        message = _message(rng, ms, rng.random() < pin_share)
        event = {"id": str(rng.getrandbits(180)), "timestamp": ms, "message": message}
        events.append(event)
        size += len(json.dumps(event)) + 2
    document = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/rds/proxy/orders-proxy",
        "logStream": "prx-0123456789abcdef",
        "subscriptionFilters": ["pinwatch-pins"],
        "logEvents": events,
    }
    return base64.b64encode(gzip.compress(json.dumps(document).encode())).decode(), len(events)


def _decode(data: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(gzip.decompress(base64.b64decode(data)))["logEvents"]
    return events


def _decode_and_parse(data: str) -> None:
    for event in _decode(data):
        parse_message(event["message"], event["timestamp"])


def _measure(label: str, pin_share: float, meaning: str) -> list[Figure]:
    data, lines = build_payload(pin_share)
    events = _decode(data)
    _decode_and_parse(data)  # warm the classifier cache, as in a warm function

    def parse_only() -> None:
        for event in events:
            parse_message(event["message"], event["timestamp"])

    # Interleaved: the floor and what is compared with it are timed under the same load.
    floor_s, full_s, parse_s = interleaved_best_cpu(
        [lambda: _decode(data), lambda: _decode_and_parse(data), parse_only], REPEAT
    )
    suffix = "" if label == "pins" else "_mix"
    return [
        Figure(f"parse{suffix}_payload_kb", len(data) / 1024, f"{meaning}: base64(gzip(JSON)) size, {lines} lines", 0),
        Figure(f"parse{suffix}_decode_floor_ms", floor_s * 1000, f"{meaning}: b64decode + gunzip + json.loads"),
        Figure(f"parse{suffix}_lines_per_s", lines / parse_s, f"{meaning}: parse_message throughput", 0),
        Figure(
            f"parse{suffix}_vs_decode_floor",
            full_s / floor_s,
            f"{meaning}: (decode + parse every line) / decode floor",
        ),
    ]


def run() -> list[Figure]:
    return _measure("pins", 1.0, "pin lines only") + _measure("mix", PIN_SHARE_IN_MIX, "15% pins mix")
