"""End to end against a deployed stack: pin lines written to a proxy log group end up counted, exactly.

Opt-in and costs a few cents: set ``AWS_SAM_STACK_NAME`` (and credentials for the stack's account
and region, e.g. ``AWS_PROFILE`` and ``AWS_REGION``), then ``.venv/bin/pytest tests/e2e``.

The test creates its own log group ``/aws/rds/proxy/pinwatch-e2e-<random>`` (no real proxy
needed) and writes proxy log lines into it. With named proxies the stack subscribes only their
log groups, so the test adds the same subscription filter to its log group (the stack's invoke
permission covers every ``/aws/rds/proxy/*`` group); with the account-level policy the new log
group is covered without that. It then polls the summary table until the totals appear and
checks them against what the parser says the lines are. The log group and the proxy's table
items are deleted afterwards.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from pinwatch.local.template import load_template
from pinwatch.parse import parse_message
from pinwatch.records import Kind
from pinwatch.store import keys
from pinwatch.store.summary import SummaryStore

STACK_NAME = os.environ.get("AWS_SAM_STACK_NAME", "")
# Captured at import, before the suite's autouse fixture swaps in fake credentials for local services.
_REAL_AWS_ENV = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
POLL_TIMEOUT_S = float(os.environ.get("PINWATCH_E2E_TIMEOUT_S", "300"))

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not STACK_NAME, reason="set AWS_SAM_STACK_NAME to run against a deployed stack"),
]

PIN = (
    "{ts} [WARN] [proxyEndpoint=default] [clientConnection={client}] The client session was pinned to the database "
    "connection [dbConnection={db}] for the remainder of the session. The proxy can't reuse this connection until "
    "the session ends. Reason: {reason}"
)
SET_REASON = (
    "SQL changed session settings that the proxy doesn't track. Consider moving session configuration to the "
    'proxy\'s initialization query. Digest: "set search_path = $1".'
)
SIZE_REASON = "The connection ran a SQL query which exceeded the 16384 byte limit."
WOULD_PIN = (
    "{ts} [INFO] [proxyEndpoint=default] [clientConnection={client}] If this prepared statement runs, the client "
    "session will be pinned to the database connection [dbConnection={db}]. Reason: A prepared statement was "
    'detected. Digest: "select 1 where $1".'
)
NOT_A_PIN = "{ts} [INFO] [proxyEndpoint=default] [clientConnection={client}] A new client connected from 10.0.0.1:5000."


@pytest.fixture(scope="module")
def aws() -> Iterator[boto3.session.Session]:
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith("AWS_")]:
            mp.delenv(name)
        for name, value in _REAL_AWS_ENV.items():
            mp.setenv(name, value)
        yield boto3.session.Session()


@pytest.fixture(scope="module")
def outputs(aws: boto3.session.Session) -> dict[str, str]:
    (stack,) = aws.client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


@pytest.fixture
def proxy_log_group(aws: boto3.session.Session, outputs: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A fresh ``/aws/rds/proxy/<name>`` log group subscribed to the stack's ingest; yields (proxy, group)."""
    logs = aws.client("logs")
    proxy = f"pinwatch-e2e-{uuid.uuid4().hex[:10]}"
    group = f"/aws/rds/proxy/{proxy}"
    logs.create_log_group(logGroupName=group)
    try:
        logs.put_retention_policy(logGroupName=group, retentionInDays=1)
        if outputs["SubscriptionMode"] == "log-group":
            function_arn = aws.client("lambda").get_function(FunctionName=outputs["PinIngestFunctionName"])[
                "Configuration"
            ]["FunctionArn"]
            logs.put_subscription_filter(
                logGroupName=group,
                filterName="pinwatch-e2e",
                filterPattern=load_template()["Mappings"]["Pins"]["Filter"]["Pattern"],
                destinationArn=function_arn,
            )
        yield proxy, group
    finally:
        logs.delete_log_group(logGroupName=group)
        _delete_proxy_items(aws.client("dynamodb"), outputs["SummaryTableName"], proxy)


def _delete_proxy_items(dynamodb: Any, table: str, proxy: str) -> None:
    paginator = dynamodb.get_paginator("query")
    pages = paginator.paginate(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.proxy_pk(proxy)}},
        ProjectionExpression="pk, sk",
    )
    for page in pages:
        for item in page["Items"]:
            dynamodb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    dynamodb.delete_item(TableName=table, Key={"pk": {"S": keys.PROXIES_PK}, "sk": {"S": keys.proxies_sk(proxy)}})


def _lines(now_ms: int) -> list[tuple[int, str]]:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms / 1000)) + f".{now_ms % 1000:03d}Z"
    lines = [PIN.format(ts=ts, client=100 + i, db=200 + i, reason=SET_REASON) for i in range(3)]
    lines += [PIN.format(ts=ts, client=110 + i, db=210 + i, reason=SIZE_REASON) for i in range(2)]
    lines += [WOULD_PIN.format(ts=ts, client=120, db=220), NOT_A_PIN.format(ts=ts, client=130)]
    return [(now_ms + i, line) for i, line in enumerate(lines)]


def test_given_a_deployed_stack_when_pin_lines_reach_a_proxy_log_group_then_the_summary_table_counts_them_exactly(
    aws: boto3.session.Session, outputs: dict[str, str], proxy_log_group: tuple[str, str]
) -> None:
    proxy, group = proxy_log_group
    logs = aws.client("logs")
    events = _lines(int(time.time() * 1000))
    expected_pins = Counter(
        r.reason for r in (parse_message(m, t) for t, m in events) if r.kind is Kind.PINNED and r.reason
    )
    expected_would = Counter(
        r.reason for r in (parse_message(m, t) for t, m in events) if r.kind is Kind.WOULD_PIN and r.reason
    )
    assert sum(expected_pins.values()) == 5  # the lines above are what the test means them to be

    logs.create_log_stream(logGroupName=group, logStreamName="e2e")
    logs.put_log_events(
        logGroupName=group, logStreamName="e2e", logEvents=[{"timestamp": t, "message": m} for t, m in events]
    )

    store = SummaryStore(aws.client("dynamodb"), outputs["SummaryTableName"])
    deadline = time.monotonic() + POLL_TIMEOUT_S
    totals: dict[str, int] = {}
    while time.monotonic() < deadline:
        totals = {r.reason: r.count for r in store.reason_totals(proxy)}
        if sum(totals.values()) >= sum(expected_pins.values()):
            break
        time.sleep(10)

    assert totals == dict(expected_pins)
    since = events[0][0] - 3_600_000
    would = {r.reason: r.count for r in store.would_pin_counts(proxy, since, events[-1][0] + 3_600_000)}
    assert would == dict(expected_would)
    assert proxy in {p.proxy for p in store.proxies()}
