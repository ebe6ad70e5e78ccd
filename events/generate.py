"""Write the invocation events in events/ from their readable sources in events/src/.

CloudWatch Logs delivers a subscription batch as ``{"awslogs": {"data": base64(gzip(JSON))}}``,
which nobody can read or edit. The sources keep that JSON in the clear; this script wraps each
``messageType`` source the way CloudWatch Logs does, encodes the ``data`` of each Kinesis record
whose payload is written out (organization mode: the destination's stream, read by the stream
ingest function) the same way, and copies any other event (the scheduled EventBridge event) as it is. Output is deterministic (gzip mtime 0), so regenerating an unchanged
source changes no file. The encoding is the local Lambda harness's
(:mod:`pinwatch.local.lambda_harness`), so run it where pinwatch is installed (``.venv/bin/python``).

    .venv/bin/python events/generate.py          # rewrite events/*.json
    .venv/bin/python events/generate.py --check  # exit 1 if a committed event differs from its source

Use the results with ``sam local invoke PinIngestFunction -e events/logs-orders-db.json`` (and
``PinStreamFunction -e events/kinesis-org.json``) or in tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pinwatch.local.lambda_harness import decode_subscription, encode_subscription

EVENTS_DIR = Path(__file__).resolve().parent
SOURCE_DIR = EVENTS_DIR / "src"


def build_event(source: dict[str, Any]) -> dict[str, Any]:
    if "messageType" in source:
        return encode_subscription(source)
    if _kinesis_records(source):
        return {
            **source,
            "Records": [
                _with_data(r, encode_subscription(r["kinesis"]["data"])["awslogs"]["data"]) for r in source["Records"]
            ],
        }
    return source


def readable(event: dict[str, Any]) -> dict[str, Any]:
    """An event with its subscription payloads decoded (what its source holds)."""
    if "awslogs" in event:
        return decode_subscription(event)
    if _kinesis_records(event):
        return {
            **event,
            "Records": [_with_data(r, decode_subscription({"awslogs": r["kinesis"]})) for r in event["Records"]],
        }
    return event


def _kinesis_records(event: dict[str, Any]) -> bool:
    records = event.get("Records")
    return isinstance(records, list) and bool(records) and all(r.get("eventSource") == "aws:kinesis" for r in records)


def _with_data(record: dict[str, Any], data: Any) -> dict[str, Any]:
    return {**record, "kinesis": {**record["kinesis"], "data": data}}


def render(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2) + "\n"


def build_all(source_dir: Path = SOURCE_DIR) -> dict[str, str]:
    """Event file name -> file text, for every source."""
    return {
        path.name: render(build_event(json.loads(path.read_text(encoding="utf-8"))))
        for path in sorted(source_dir.glob("*.json"))
    }


def stale(events_dir: Path = EVENTS_DIR, source_dir: Path = SOURCE_DIR) -> list[str]:
    """Names of events that are missing or whose content differs from their source.

    Compares decoded content rather than gzip bytes: another zlib build may compress the same
    payload differently, and that is not a stale event.
    """
    problems = []
    for name, text in build_all(source_dir).items():
        target = events_dir / name
        if not target.exists():
            problems.append(name)
            continue
        committed, expected = json.loads(target.read_text(encoding="utf-8")), json.loads(text)
        if readable(committed) != readable(expected):
            problems.append(name)
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Write events/*.json from events/src/*.json.")
    parser.add_argument("--check", action="store_true", help="only report events that differ from their source")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale()
        for name in problems:
            print(f"events/{name} is stale: run python events/generate.py", file=sys.stderr)
        return 1 if problems else 0
    for name, text in build_all().items():
        (EVENTS_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote events/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
