"""Parser throughput against the unavoidable cost of a CloudWatch Logs subscription payload.

Two ~1 MB (decoded JSON) payloads in the real wire format, base64(gzip(JSON)): one of pin lines
only (what a subscription filter on the pin phrase delivers) and one realistic mix with ~15% pin
lines (an unfiltered subscription). For each, the decode floor (b64decode + gunzip + json.loads)
and decode + parse of every message are timed as process CPU, best of N, in turn; the ratio is
the figure that carries across machines. The classifier cache is warm, as it is in a warm Lambda.

``analyze_lines_per_s_variety``: ``pinwatch analyze`` (a fresh process, JSON output) over a plain
text export written to a temporary directory (``ANALYZE_EXPORT_MB``, 200 MB unless the environment
variable ``PINWATCH_BENCH_ANALYZE_MB`` says otherwise): 15% pin lines drawn from an application's
5,000 distinct statements (the realistic shapes of ``benchmarks.bench_ingest``), the rest other
proxy lines. Lines per second of the process's CPU time, start-up included.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Figure, interleaved_best_cpu
from pinwatch.parse import PIN_PHRASE, parse_message

TARGET_JSON_BYTES = 1_000_000
PIN_SHARE_IN_MIX = 0.15
REPEAT = 15
ANALYZE_EXPORT_MB = float(os.environ.get("PINWATCH_BENCH_ANALYZE_MB", "200"))
ANALYZE_STATEMENTS = 5000

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


def write_export(path: Path, target_bytes: int, seed: int = 3) -> int:
    """A plain-text proxy log export of about `target_bytes`; returns its line count."""
    from tests.payloads import proxy_line

    from benchmarks.bench_ingest import variety_body

    rng = random.Random(seed)
    bodies = [variety_body(n) for n in range(ANALYZE_STATEMENTS)]
    lines = size = 0
    ms = 1_764_000_000_000
    with path.open("w", encoding="utf-8") as fh:
        while size < target_bytes:
            ms += rng.randint(1, 40)
            if rng.random() < PIN_SHARE_IN_MIX:
                line = proxy_line(rng, ms, bodies[rng.randrange(ANALYZE_STATEMENTS)])
            else:
                line = _message(rng, ms, pin=False)
            fh.write(line + "\n")
            size += len(line) + 1
            lines += 1
    return lines


_ANALYZE = "import sys; from pinwatch.cli import main; sys.exit(main())"


def _analyze_figures() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="pinwatch-bench-") as tmp:
        export = Path(tmp) / "proxy-export.log"
        lines = write_export(export, int(ANALYZE_EXPORT_MB * 1_048_576))
        size_mb = export.stat().st_size / 1_048_576
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [sys.executable, "-c", _ANALYZE, "analyze", "--format", "json", str(export)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return [
        Figure("analyze_export_mb", size_mb, f"plain-text export for pinwatch analyze, {lines} lines", 0),
        Figure(
            "analyze_lines_per_s_variety",
            lines / cpu_s,
            f"pinwatch analyze CPU throughput, {ANALYZE_STATEMENTS} distinct statements",
            0,
        ),
    ]


def run() -> list[Figure]:
    return (
        _measure("pins", 1.0, "pin lines only") + _measure("mix", PIN_SHARE_IN_MIX, "15% pins mix") + _analyze_figures()
    )
