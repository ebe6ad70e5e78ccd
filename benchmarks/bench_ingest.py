"""Ingest: max-size subscription batches through the real handler, against the unavoidable decode floor.

Each payload is about 1 MB as Lambda receives it (the asynchronous invocation limit), built as
CloudWatch Logs builds it: base64(gzip(JSON)) of realistic RDS Proxy pin lines over one hour, in
time order. The batches differ in how many distinct statements they hold, because the handler
parses each distinct reason tail once per batch: a real application sends many (every prepared
query appears in would-pin lines, every ORM and tenant has its own SETs).

* ``ingest_vs_decode_floor_{5,100,1000,all}_distinct``: process CPU of ``lambda_handler`` (decode
  with Powertools, parse, tally, build the DynamoDB requests, emit EMF metrics and the log line)
  divided by the CPU of base64 + gunzip + ``json.loads`` of the same payload, for a batch of 5
  distinct pin bodies (the verbatim shapes of ``tests/payloads.py``), of 100 and 1,000 distinct
  statements, and of a distinct statement on every line. The store's client is a *recording fake*
  (no network), so the figure is pure handler CPU. Best of N on both sides.
* ``ingest_vs_decode_floor``: the headline, the 1,000-distinct batch.
* ``ingest_dynamodb_local_vs_decode_floor``: the headline batch with the store writing to DynamoDB
  Local (adds botocore request building and HTTP; the database's own CPU is another process).
* ``ingest_writes_per_batch`` (item writes: one update per distinct key + one marker per chunk)
  next to ``naive_writes_per_batch`` (one write per line), and the transactions they take.
* ``ingest_peak_rss_mb``: peak RSS of a fresh interpreter that imports the handler and processes
  the headline batch (the recording fake behind the store): what a 128 MB function must hold.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tests.payloads import (
    PIN_TEMPLATE,
    SETTINGS_REASON,
    WOULD_PIN_TEMPLATE,
    max_size_event,
    proxy_line,
    subscription_event,
)
from tests.support.lambda_runtime import PIN_INGEST, FakeContext, load_function, quiet

from benchmarks.common import HANDLER_ENV, Figure, interleaved_best_cpu
from pinwatch.local.lambda_harness import decode_subscription, encode_subscription

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ROOT = Path(__file__).resolve().parents[1]
REPEAT = 15
T0_MS = 1_795_600_800_000  # the hour every batch spans


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
import json, os, resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from benchmarks.bench_ingest import RecordingDynamoDB
from tests.support.lambda_runtime import FakeContext, load_function
app = load_function(Path({handler!r}))
from pinwatch.store.summary import SummaryStore
store = SummaryStore(RecordingDynamoDB(), "pinwatch-bench")
with open({event!r}) as fh:
    event = json.load(fh)
with open(os.devnull, "w") as devnull:
    app.logger.registered_handler.stream = devnull
    sys.stdout = devnull
    app.handle(event, FakeContext(), store=store, now_ms=int(time.time() * 1000))
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


# ---- batches with realistic statement variety

# Distinct statements come from what differs in a real fleet: the variables each ORM/driver sets,
# tenant schemas, partitioned tables, the columns each prepared query reads, sqlcommenter tags.
_PG_VARIABLES = (
    *("statement_timeout", "application_name", "work_mem", "lock_timeout", "timezone", "client_encoding"),
    *("idle_in_transaction_session_timeout", "datestyle", "extra_float_digits", "jit", "random_page_cost"),
    *("intervalstyle", "row_security", "default_transaction_read_only", "enable_seqscan", "app.tenant_id"),
)
_MYSQL_VARIABLES = (
    *("optimizer_search_depth", "group_concat_max_len", "max_execution_time", "innodb_lock_wait_timeout"),
    *("sql_safe_updates", "max_join_size", "sort_buffer_size", "sql_select_limit", "foreign_key_checks"),
    *("unique_checks", "session_track_gtids", "tmp_table_size", "long_query_time", "div_precision_increment"),
)
_TABLES = (
    *("orders", "order_items", "customers", "invoices", "payments", "shipments", "products", "carts"),
    *("sessions", "audit_log", "tenants", "users", "refunds", "coupons", "addresses", "webhooks"),
)
_COLUMNS = (
    *("id", "tenant_id", "customer_id", "status", "created_at", "updated_at", "amount", "currency"),
    *("email", "sku", "quantity", "deleted_at", "region", "version", "external_ref", "priority"),
)
_LARGE_REASON = "The connection ran a SQL query which exceeded the 16384 byte limit."


def _pick(seq: tuple[str, ...], n: int, salt: int) -> str:
    return seq[(n * 7 + salt * 13) % len(seq)]


def _columns(n: int, count: int) -> str:
    return ", ".join(_COLUMNS[(n + k * 5) % len(_COLUMNS)] for k in range(count))


def _pg_set(n: int) -> str:
    a, b = _pick(_PG_VARIABLES, n, 1), _pick(_PG_VARIABLES, n // 16, 2)
    forms = (
        f"set search_path to tenant_{n:05d}, public; set {a} = $1",
        f"/* service='api-{n}' */ SET {a} = $1; SET LOCAL {b} TO $2",
        f"select set_config('{a}', $1, false), set_config('app.shard_{n}', $2, false)",
        f"SET SESSION {a} TO $1; SET {b} = $2; /* tenant {n} */",
    )
    return forms[n % len(forms)]


def _mysql_set(n: int) -> str:
    a, b = _pick(_MYSQL_VARIABLES, n, 3), _pick(_MYSQL_VARIABLES, n // 16, 4)
    forms = (
        f"SET sql_mode = ?, @@session.{a} = ?, @@session.{b}_{n} = ?",
        f"SET SESSION {a} = ?, names ? /* orm=worker-{n} */",
        f"SET @tenant_{n} := ?, @@session.{a} = ?",
        f"SET NAMES ? COLLATE ?; SET {b} = ?; SET @request_{n} = ?",
    )
    return forms[n % len(forms)]


def _prepared_query(n: int) -> str:
    table = f"{_pick(_TABLES, n, 5)}_p{n // len(_TABLES)}"
    cols = _columns(n, 2 + n % 5)
    where = _pick(_COLUMNS, n, 6)
    return f"select {cols} from {table} where {where} = $1 and deleted_at is null order by id limit $2"  # noqa: S608 (log text, never run)


def _other_pinning(n: int) -> str:
    forms = (
        f"select pg_advisory_lock($1) /* job {n} */",
        f"LOCK TABLES `{_pick(_TABLES, n, 7)}_{n}` WRITE",
        f"create temp table scratch_{n} (id int, {_pick(_COLUMNS, n, 8)} text)",
        f"DECLARE c_{n} CURSOR WITH HOLD FOR select {_columns(n, 3)} from {_pick(_TABLES, n, 9)}",  # noqa: S608
    )
    return forms[n % len(forms)]


def _large_insert(n: int) -> str:
    """A normalised multi-row INSERT just over 16 KB: the statement that pins for its size alone."""
    cols = _columns(n, 4)
    rows: list[str] = []
    size = 0
    while size <= 16_384:
        k = len(rows) * 4
        rows.append(f"(${k + 1}, ${k + 2}, ${k + 3}, ${k + 4})")
        size += len(rows[-1]) + 2
    return f"insert into {_pick(_TABLES, n, 10)}_{n} ({cols}) values {', '.join(rows)}"  # noqa: S608


def variety_body(n: int) -> tuple[str, str, str]:
    """The `n`-th distinct (level, template, reason) of a realistic mix; distinct `n` give distinct digests.

    Out of 100 bodies: 30 PostgreSQL SETs, 30 MySQL SETs, 25 would-pin prepared statements, 10 other
    pinning statements (locks, temp tables, cursors), 4 parse messages on a pinned session, and 1
    statement over 16 KB. The 16 KB line is the proxy's verbatim one, the same on every line, except
    one in ten that carries its (distinct) digest: even the every-line-distinct batch repeats it.
    """
    slot = n % 100
    if slot == 99:  # the proxy's verbatim line; one in ten also carries the statement (debug logging)
        return (
            "WARN",
            PIN_TEMPLATE,
            f'{_LARGE_REASON} Digest: "{_large_insert(n)}".' if n % 1000 == 999 else _LARGE_REASON,
        )
    if slot < 30:
        return ("WARN", PIN_TEMPLATE, f'{SETTINGS_REASON} Digest: "{_pg_set(n)}".')
    if slot < 60:
        return ("WARN", PIN_TEMPLATE, f'{SETTINGS_REASON} Digest: "{_mysql_set(n)}".')
    if slot < 85:
        return ("INFO", WOULD_PIN_TEMPLATE, f'A parse message was detected. Digest: "{_prepared_query(n)}".')
    if slot < 95:
        return ("WARN", PIN_TEMPLATE, f'{SETTINGS_REASON} Digest: "{_other_pinning(n)}".')
    return ("WARN", PIN_TEMPLATE, f'A parse message was detected. Digest: "{_prepared_query(n)}".')


def variety_events(count: int, distinct: int | None, start_ms: int = T0_MS, seed: int = 7) -> list[dict[str, Any]]:
    """`count` events over one hour using `distinct` bodies each at least once (None: every line distinct)."""
    rnd = random.Random(seed)
    pool = count if distinct is None else distinct
    bodies = [variety_body(n) for n in range(pool)]
    order = [i % pool for i in range(count)]
    rnd.shuffle(order)
    step = 3_600_000 // count
    events = []
    for i, index in enumerate(order):
        ts = start_ms + i * step
        events.append(
            {
                "id": f"{ts:020d}{rnd.randrange(10**35, 10**36):036d}",
                "timestamp": ts,
                "message": proxy_line(rnd, ts, bodies[index]),
            }
        )
    return events


def variety_event(distinct: int | None, limit_bytes: int = 1_000_000) -> tuple[dict[str, Any], int]:
    """(event, line count): about the largest event under `limit_bytes` with `distinct` statements."""
    if distinct == 5:  # the five verbatim pin bodies of tests/payloads.py
        return max_size_event(limit_bytes, start_ms=T0_MS)
    count = 4000
    for _ in range(8):
        event = subscription_event(variety_events(count, distinct))
        size = len(json.dumps(event))
        if 0.98 * limit_bytes <= size <= limit_bytes:
            return event, count
        count = max(1, int(count * limit_bytes * 0.99 / size))
    raise AssertionError(f"no event size within 2% under {limit_bytes} bytes")


# (figure suffix, distinct statements in the batch; None: every line distinct)
VARIETIES: tuple[tuple[str, int | None], ...] = (("5", 5), ("100", 100), ("1000", 1000), ("all", None))
HEADLINE = "1000"


def run() -> list[Figure]:
    from pinwatch.store.summary import SummaryStore

    os.environ.update(HANDLER_ENV)
    app = load_function(PIN_INGEST)
    figures: list[Figure] = []
    headline: dict[str, Any] = {}
    for label, distinct in VARIETIES:
        event, lines = variety_event(distinct)
        recorder = RecordingDynamoDB()
        store = SummaryStore(cast("DynamoDBClient", recorder), HANDLER_ENV["SUMMARY_TABLE_NAME"])
        floor_s, handler_s, results = _measure(app, event, store)
        what = "every line distinct" if distinct is None else f"{distinct} distinct statements"
        figures.append(
            Figure(
                f"ingest_vs_decode_floor_{label}_distinct",
                handler_s / floor_s,
                f"handler CPU / decode floor, {lines} lines, {what}",
            )
        )
        if label == HEADLINE:
            headline = {
                "event": event,
                "lines": lines,
                "floor_s": floor_s,
                "handler_s": handler_s,
                "summary": results[-1],
                "transactions": len(recorder.transactions) // len(results),
            }

    event, lines = headline["event"], headline["lines"]
    floor_s, handler_s = headline["floor_s"], headline["handler_s"]
    encoded = len(json.dumps(event))
    raw = len(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    figures[:0] = [
        Figure("ingest_payload_kb", encoded / 1024, "invocation event size (Lambda async limit: 1024 KB)", 0),
        Figure("ingest_payload_lines", lines, f"pin lines in it ({raw / 1_048_576:.1f} MB of JSON after gunzip)"),
        Figure("decode_floor_ms", floor_s * 1000, "baseline: base64 + gunzip + json.loads of the payload (CPU)"),
        Figure("ingest_handler_ms", handler_s * 1000, "lambda_handler CPU, store client = recording fake"),
        Figure(
            "ingest_vs_decode_floor",
            handler_s / floor_s,
            f"headline: handler CPU / decode floor, {HEADLINE} distinct statements (goal <= 1.5)",
        ),
    ]
    figures += [
        Figure(
            "ingest_writes_per_batch",
            headline["summary"]["writes"],
            "item writes: one per distinct key + one marker per chunk",
        ),
        Figure(
            "ingest_transactions_per_batch", headline["transactions"], "TransactWriteItems calls (<= 100 items each)"
        ),
        Figure("naive_writes_per_batch", lines, "one write per line, for comparison"),
    ]
    figures.extend(_dynamodb_local_figures(event, floor_s))
    figures.extend(proxies_item_figures())
    figures.append(Figure("ingest_peak_rss_mb", peak_rss_mb(event), "fresh interpreter: import handler + max batch"))
    return figures


def _measure(app: Any, event: dict[str, Any], store: Any) -> tuple[float, float, list[dict[str, Any]]]:
    """(decode floor CPU s, handler CPU s, handler results), best of REPEAT each."""
    results: list[dict[str, Any]] = []
    now_ms = int(time.time() * 1000)
    with quiet(app):
        # Interleaved, so load from other processes on a shared machine hits both sides alike.
        floor_s, handler_s = interleaved_best_cpu(
            [
                lambda: decode_floor(event),
                lambda: results.append(app.handle(event, FakeContext(), store=store, now_ms=now_ms)),
            ],
            REPEAT,
        )
    return floor_s, handler_s, results


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
            store = SummaryStore(client, HANDLER_ENV["SUMMARY_TABLE_NAME"])
            # A distinct stream per run: each run is a new batch, never a duplicate.
            events = [with_stream(event, f"bench-{i}") for i in range(REPEAT)]
            now_ms = int(time.time() * 1000)
            with quiet(app):
                floor_s, seconds = interleaved_best_cpu(
                    [
                        lambda: decode_floor(event),
                        lambda: app.handle(events.pop(), FakeContext(), store=store, now_ms=now_ms),
                    ],
                    REPEAT,
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


# ---------------------------------------------------------------------------------------------------
# The PROXIES item under many concurrent invocations (self-contained: only the registration line in
# run() refers to it).

HOT_ENVIRONMENTS = 8  # concurrent execution environments, each with its own store, as Lambda scales out
HOT_BATCHES = 800  # subscription batches in all, from HOT_PROXIES proxies
HOT_PROXIES = ("orders-db", "billing-db", "search-db", "auth-db")
HOT_STEP_MS = 150  # log time between consecutive batches: 800 batches over two minutes of traffic
HOT_LINES = 10


def _hot_events() -> list[tuple[int, dict[str, Any]]]:
    """(batch index, invocation event): batch k comes from proxy (k // environments) % proxies."""
    from tests.payloads import log_events

    batches = []
    for k in range(HOT_BATCHES):
        proxy = HOT_PROXIES[(k // HOT_ENVIRONMENTS) % len(HOT_PROXIES)]
        events = log_events(HOT_LINES, T0_MS + k * HOT_STEP_MS, HOT_STEP_MS, seed=k)
        batches.append(
            (
                k,
                subscription_event(events, log_group=f"/aws/rds/proxy/{proxy}", log_stream=f"{proxy}-{k % 3}"),
            )
        )
    return batches


def _drive_concurrently(client: Any, table: str, step_ms: int | None) -> tuple[int, int]:
    """(writes to the PROXIES partition, lines counted): every batch ingested by HOT_ENVIRONMENTS threads.

    Writes are counted from the requests botocore sends (a client hook), not from the store's results.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from pinwatch.ingest import ingest
    from pinwatch.store import keys
    from pinwatch.store.summary import SummaryStore

    lock = threading.Lock()
    sent = {"proxies": 0}

    def count(params: dict[str, Any], **_: Any) -> None:
        n = sum(
            1
            for action in params["TransactItems"]
            for op in action.values()
            if op.get("Key", {}).get(keys.PK, {}).get("S") == keys.PROXIES_PK
        )
        with lock:
            sent["proxies"] += n

    client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", count)
    batches = _hot_events()

    def environment(e: int) -> None:
        store = SummaryStore(client, table, last_seen_step_ms=step_ms)
        for k, event in batches:
            if k % HOT_ENVIRONMENTS == e:
                ingest(event, store, T0_MS + HOT_BATCHES * HOT_STEP_MS)

    try:
        with ThreadPoolExecutor(HOT_ENVIRONMENTS) as pool:
            list(pool.map(environment, range(HOT_ENVIRONMENTS)))
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.TransactWriteItems", count)
    paginator = client.get_paginator("scan")
    lines = sum(
        int(item["count"]["N"])
        for page in paginator.paginate(TableName=table)
        for item in page["Items"]
        if item[keys.SK]["S"].startswith(keys.HOUR_PREFIX)
    )
    return sent["proxies"], lines


def proxies_item_figures() -> list[Figure]:
    """PROXIES-partition writes per 100 batches when every batch writes it (before) and with the write rule."""
    import boto3
    from botocore.config import Config

    from pinwatch.local.dynamodb_local import DynamoDBLocalUnavailable, dynamodb_local
    from pinwatch.local.template import table_create_args

    os.environ.update(HANDLER_ENV)  # the credentials DynamoDB Local wants signed requests with
    try:
        with dynamodb_local() as endpoint:
            client = boto3.client(
                "dynamodb",
                endpoint_url=endpoint,
                region_name="us-east-1",
                config=Config(max_pool_connections=HOT_ENVIRONMENTS, retries={"mode": "standard"}),
            )
            measured = {}
            for label, step_ms in (("every_batch", None), ("rule", 60_000)):
                table = f"pinwatch-bench-proxies-{label}"
                client.create_table(**table_create_args(table))
                measured[label] = _drive_concurrently(client, table, step_ms)
    except DynamoDBLocalUnavailable as exc:
        print(f"bench_ingest: skipping the PROXIES item figures: {exc}", file=sys.stderr)
        return []
    (before, lines_before), (after, lines_after) = measured["every_batch"], measured["rule"]
    if lines_before != lines_after or lines_after != HOT_BATCHES * HOT_LINES:
        raise AssertionError(f"counts differ: {lines_before} / {lines_after} of {HOT_BATCHES * HOT_LINES} lines")
    per_100 = 100 / HOT_BATCHES
    where = (
        f"{HOT_BATCHES} batches of {len(HOT_PROXIES)} proxies over "
        f"{HOT_BATCHES * HOT_STEP_MS // 1000} s of log time, {HOT_ENVIRONMENTS} concurrent environments"
    )
    return [
        Figure(
            "ingest_proxies_item_writes_per_100_batches_every_batch",
            before * per_100,
            f"PROXIES partition writes, the item written by every batch (before); {where}",
        ),
        Figure(
            "ingest_proxies_item_writes_per_100_batches",
            after * per_100,
            "PROXIES partition writes with the write rule (first per environment, log group change, "
            "last-seen + 1 min); counts identical",
        ),
    ]
