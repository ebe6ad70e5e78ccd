"""Ingest: a max-size subscription batch through the real handler, against the unavoidable decode floor.

The payload is about 1 MB as Lambda receives it (the asynchronous invocation limit), built as
CloudWatch Logs builds it: base64(gzip(JSON)) of realistic RDS Proxy pin lines (see
``tests/payloads.py``) over one hour, in time order.

* ``ingest_vs_decode_floor``: process CPU of ``lambda_handler`` (decode with Powertools, parse,
  tally, build the DynamoDB requests, emit EMF metrics and the log line) divided by the CPU of
  base64 + gunzip + ``json.loads`` of the same payload. The store's client is a *recording fake*
  (no network), so the figure is pure handler CPU. Best of N on both sides.
* ``ingest_dynamodb_local_vs_decode_floor``: the same with the store writing to DynamoDB Local
  (adds botocore request building and HTTP; the database's own CPU is another process).
* ``ingest_writes_per_batch`` (item writes: one update per distinct key + one marker per chunk)
  next to ``naive_writes_per_batch`` (one write per line), and the transactions they take.
* ``ingest_peak_rss_mb``: peak RSS of a fresh interpreter that imports the handler and processes
  the batch (the recording fake behind the store): what a 128 MB function must hold.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tests.support.lambda_runtime import PIN_INGEST, FakeContext, load_function, quiet

from benchmarks.common import HANDLER_ENV, Figure, interleaved_best_cpu
from pinwatch.local.lambda_harness import decode_subscription, encode_subscription

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ROOT = Path(__file__).resolve().parents[1]
REPEAT = 15


class RecordingDynamoDB:
    """Accepts every transaction and remembers it: the handler's CPU without a network round trip."""

    def __init__(self) -> None:
        self.transactions: list[list[dict[str, Any]]] = []

    def transact_write_items(self, TransactItems: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        self.transactions.append(TransactItems)
        return {}


def decode_floor(event: dict[str, Any]) -> Any:
    """What any consumer of the payload must do: base64, gunzip, JSON."""
    return json.loads(zlib.decompress(base64.b64decode(event["awslogs"]["data"]), zlib.MAX_WBITS | 32))


def with_stream(event: dict[str, Any], stream: str) -> dict[str, Any]:
    """The same lines under another log stream: a new batch id, so nothing is skipped as a duplicate."""
    document = decode_subscription(event)
    document["logStream"] = stream
    return encode_subscription(document)


_RSS_SCRIPT = """
import json, os, resource, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from benchmarks.bench_ingest import RecordingDynamoDB
from tests.support.lambda_runtime import FakeContext, load_function
app = load_function(Path({handler!r}))
from pinwatch.store.summary import SummaryStore
app.STORE = SummaryStore(RecordingDynamoDB(), "pinwatch-bench")
with open({event!r}) as fh:
    event = json.load(fh)
with open(os.devnull, "w") as devnull:
    app.logger.registered_handler.stream = devnull
    sys.stdout = devnull
    app.lambda_handler(event, FakeContext())
    sys.stdout = sys.__stdout__
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def peak_rss_mb(event: dict[str, Any]) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(event, fh)
        path = fh.name
    try:
        script = _RSS_SCRIPT.format(root=str(ROOT), handler=str(PIN_INGEST), event=path)
        out = subprocess.run(
            [sys.executable, "-c", script],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, **HANDLER_ENV},
            cwd=ROOT,
        )
        return float(out.stdout.strip().splitlines()[-1])
    finally:
        os.unlink(path)


def run() -> list[Figure]:
    from tests.payloads import max_size_event

    from pinwatch.store.summary import SummaryStore

    os.environ.update(HANDLER_ENV)
    event, lines = max_size_event()
    encoded = len(json.dumps(event))
    raw = len(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))

    app = load_function(PIN_INGEST)
    recorder = RecordingDynamoDB()
    app.STORE = SummaryStore(cast("DynamoDBClient", recorder), HANDLER_ENV["SUMMARY_TABLE_NAME"])
    results: list[dict[str, Any]] = []
    with quiet(app):
        # Interleaved, so load from other processes on a shared machine hits both sides alike.
        floor_s, handler_s = interleaved_best_cpu(
            [lambda: decode_floor(event), lambda: results.append(app.lambda_handler(event, FakeContext()))], REPEAT
        )
    summary = results[-1]
    transactions = len(recorder.transactions) // len(results)

    figures = [
        Figure("ingest_payload_kb", encoded / 1024, "invocation event size (Lambda async limit: 1024 KB)", 0),
        Figure("ingest_payload_lines", lines, f"pin lines in it ({raw / 1_048_576:.1f} MB of JSON after gunzip)"),
        Figure("decode_floor_ms", floor_s * 1000, "baseline: base64 + gunzip + json.loads of the payload (CPU)"),
        Figure("ingest_handler_ms", handler_s * 1000, "lambda_handler CPU, store client = recording fake"),
        Figure("ingest_vs_decode_floor", handler_s / floor_s, "headline: handler CPU / decode floor (goal <= 1.5)"),
        Figure(
            "ingest_writes_per_batch", summary["writes"], "item writes: one per distinct key + one marker per chunk"
        ),
        Figure("ingest_transactions_per_batch", transactions, "TransactWriteItems calls (<= 100 items each)"),
        Figure("naive_writes_per_batch", lines, "one write per line, for comparison"),
    ]
    figures.extend(_dynamodb_local_figures(event, floor_s))
    figures.append(Figure("ingest_peak_rss_mb", peak_rss_mb(event), "fresh interpreter: import handler + max batch"))
    return figures


def _dynamodb_local_figures(event: dict[str, Any], floor_s: float) -> list[Figure]:
    import boto3

    from pinwatch.local.dynamodb_local import DynamoDBLocalUnavailable, dynamodb_local
    from pinwatch.local.template import table_create_args
    from pinwatch.store.summary import SummaryStore

    try:
        with dynamodb_local() as endpoint:
            client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
            client.create_table(**table_create_args(HANDLER_ENV["SUMMARY_TABLE_NAME"]))
            app = load_function(PIN_INGEST)
            app.STORE = SummaryStore(client, HANDLER_ENV["SUMMARY_TABLE_NAME"])
            # A distinct stream per run: each run is a new batch, never a duplicate.
            events = [with_stream(event, f"bench-{i}") for i in range(REPEAT)]
            with quiet(app):
                floor_s, seconds = interleaved_best_cpu(
                    [lambda: decode_floor(event), lambda: app.lambda_handler(events.pop(), FakeContext())], REPEAT
                )
    except DynamoDBLocalUnavailable as exc:
        print(f"bench_ingest: skipping the DynamoDB Local figure: {exc}", file=sys.stderr)
        return []
    return [
        Figure(
            "ingest_dynamodb_local_vs_decode_floor",
            seconds / floor_s,
            "handler CPU writing to DynamoDB Local (incl. botocore + HTTP) / decode floor",
        )
    ]
