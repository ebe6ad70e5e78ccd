"""Organization mode's logs path end to end: member lines -> destination -> Kinesis -> event source mapping -> table.

Real components: moto's Kinesis stream and SQS queue, DynamoDB Local, the stream ingest handler
cold-started in process. :class:`~pinwatch.local.log_destination.LogDestination` plays CloudWatch
Logs (pin pattern, payload, re-sends, control messages) and
:class:`~pinwatch.local.stream_mapping.StreamMapping` plays Lambda's event source mapping
(batches, partial batch responses, bisection, retries, redelivery). The expected counts come from
the generator's labels (:mod:`tests.support.ground_truth`), never from the pipeline.
"""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from types import ModuleType
from typing import Any

import boto3
import pytest

from pinwatch.local.lambda_harness import decode_subscription
from pinwatch.local.log_destination import LogDestination
from pinwatch.local.stream_mapping import StreamMapping, stream_context
from pinwatch.scope import Scope
from pinwatch.store import keys
from pinwatch.store.summary import SummaryStore
from tests.support.ground_truth import T0, Mix, Traffic
from tests.support.lambda_runtime import quiet
from tests.support.table import Crash, fail_write, hourly_counts, items, own_client, proxies_seen, total_counts

pytestmark = [
    pytest.mark.integration,
    # A batch whose every record fails ends before the handler adds a metric; Powertools warns.
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

PROXY = "orders-db"
GROUP, STREAM = f"/aws/rds/proxy/{PROXY}", "proxy-orders-db-1"
A = Scope("111111111111", "eu-west-1")
B = Scope("222222222222", "eu-west-1")
DESTINATION_ARN = "arn:aws:logs:eu-west-1:999999999999:destination:pinwatch"
# What a destination forwards: pins, would-pins and other proxy lines (which the pattern drops).
# Junk matches no pin phrase either, so it never reaches the stream.
PROXY_LINES = Mix(pins=0.7, would_pins=0.15, others=0.15, junk=0.0)


@pytest.fixture
def aws(moto_endpoint: str) -> dict[str, Any]:
    settings = {"endpoint_url": moto_endpoint, "region_name": "us-east-1"}
    return {"kinesis": boto3.client("kinesis", **settings), "sqs": boto3.client("sqs", **settings)}


@pytest.fixture
def stream(aws: dict[str, Any]) -> str:
    name = f"pinwatch-org-logs-{uuid.uuid4().hex[:8]}"
    aws["kinesis"].create_stream(StreamName=name, ShardCount=2)
    aws["kinesis"].get_waiter("stream_exists").wait(StreamName=name)
    return name


def mapping(app: ModuleType, aws: dict[str, Any], stream: str, store: Any, **settings: Any) -> StreamMapping:
    def invoke(event: dict[str, Any]) -> Any:
        with quiet(app):
            return app.handle(event, stream_context(), store=store, parking=app.PARKING, now_ms=T0 + 3_600_000)

    return StreamMapping(aws["kinesis"], stream, invoke, **settings)


def scoped(expected: Counter[tuple[str, str]], scope: Scope) -> Counter[tuple[str, str]]:
    """Ground truth of one member: the generator keys by proxy name; the table by the member's key."""
    plain, qualified = keys.proxy_pk(PROXY), keys.proxy_pk(scope.key(PROXY))
    assert {pk for pk, _ in expected} == {plain}
    return Counter({(qualified, sk): n for (_, sk), n in expected.items()})


def member_traffic(destination: LogDestination, scope: Scope, deliveries: int) -> tuple[Traffic, list[Any]]:
    """The same seed for every member: same lines, ids, group and stream; only the account differs."""
    traffic = Traffic(seed=20261206)
    sent = []
    for i in range(deliveries):
        event = traffic.delivery(PROXY, 40, T0 + i * 20 * 60_000, 20 * 60_000, mix=PROXY_LINES, stream=STREAM)
        sent.append(
            destination.deliver(scope.account, scope.region, GROUP, STREAM, decode_subscription(event)["logEvents"])
        )
    return traffic, sent


def test_given_two_members_with_the_same_proxy_when_resent_and_redelivered_after_a_failure_then_counts_are_exact(
    pin_stream_app: ModuleType,
    aws: dict[str, Any],
    stream: str,
    dynamodb_endpoint: str,
    dynamodb_client: Any,
    summary_table: str,
) -> None:
    destination = LogDestination(aws["kinesis"], stream)
    destination.control(DESTINATION_ARN, T0)
    traffic_a, sent_a = member_traffic(destination, A, 6)
    traffic_b, sent_b = member_traffic(destination, B, 6)
    for earlier in (sent_a[1], sent_b[4], sent_a[1]):  # at-least-once: CloudWatch Logs sends some again
        destination.resend(earlier)
    client = own_client(dynamodb_endpoint)
    fail_write(client, 4, "DynamoDB unavailable for one write")
    mapper = mapping(pin_stream_app, aws, stream, SummaryStore(client, summary_table), batch_size=5)

    checkpointed = mapper.poll()

    assert checkpointed == len(destination.sent) == 1 + 6 + 6 + 3
    assert mapper.stats.partial_failures == 1
    assert mapper.stats.records_sent > checkpointed  # the records from the failed one on came again
    assert mapper.stats.on_failure == []
    expected_hourly = scoped(traffic_a.expected_hourly, A) + scoped(traffic_b.expected_hourly, B)
    expected_totals = scoped(traffic_a.expected_totals, A) + scoped(traffic_b.expected_totals, B)
    assert sum(expected_hourly.values()) > 0
    assert hourly_counts(dynamodb_client, summary_table) == expected_hourly
    assert total_counts(dynamodb_client, summary_table) == expected_totals
    assert proxies_seen(dynamodb_client, summary_table) == {A.key(PROXY), B.key(PROXY)}
    # The pattern kept other proxy lines out of the stream: the records hold pin lines only.
    assert all(
        "pinned to the database connection" in e["message"] for s in sent_a + sent_b for e in s.document["logEvents"]
    )


def test_given_an_undecodable_record_in_the_stream_when_mapped_then_it_is_parked_with_its_data_and_the_rest_applied(
    pin_stream_app: ModuleType,
    aws: dict[str, Any],
    stream: str,
    parking_queue_url: str,
    dynamodb_client: Any,
    summary_table: str,
) -> None:
    destination = LogDestination(aws["kinesis"], stream)
    traffic, _ = member_traffic(destination, A, 2)
    garbage = destination.send_raw(b"\x1f\x8b\x08 not really gzip")
    traffic_more = Traffic(seed=99)
    event = traffic_more.delivery(PROXY, 30, T0 + 5 * 3_600_000, 60_000, mix=PROXY_LINES, stream="proxy-orders-db-2")
    destination.deliver(A.account, A.region, GROUP, "proxy-orders-db-2", decode_subscription(event)["logEvents"])

    mapping(pin_stream_app, aws, stream, pin_stream_app.STORE).poll()

    messages = aws["sqs"].receive_message(
        QueueUrl=parking_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    [parked] = messages["Messages"]
    assert base64.b64decode(parked["Body"]) == garbage.data
    attributes = {k: v["StringValue"] for k, v in parked["MessageAttributes"].items()}
    assert (attributes["sequenceNumber"], attributes["shardId"]) == (garbage.sequence_number, garbage.shard_id)
    assert "gzip" in attributes["error"]
    expected = scoped(traffic.expected_hourly, A) + scoped(traffic_more.expected_hourly, A)
    assert hourly_counts(dynamodb_client, summary_table) == expected


def test_given_only_control_messages_when_mapped_then_nothing_is_written(
    pin_stream_app: ModuleType, aws: dict[str, Any], stream: str, dynamodb_client: Any, summary_table: str
) -> None:
    destination = LogDestination(aws["kinesis"], stream)
    for _ in range(3):
        destination.control(DESTINATION_ARN, T0)

    mapper = mapping(pin_stream_app, aws, stream, pin_stream_app.STORE)

    assert mapper.poll() == 3
    assert mapper.stats.partial_failures == mapper.stats.function_errors == 0
    assert items(dynamodb_client, summary_table) == []


def test_given_writes_that_keep_failing_when_mapped_then_retries_bisect_and_end_in_on_failure_records(
    pin_stream_app: ModuleType,
    aws: dict[str, Any],
    stream: str,
    dynamodb_endpoint: str,
    dynamodb_client: Any,
    summary_table: str,
) -> None:
    destination = LogDestination(aws["kinesis"], stream)
    member_traffic(destination, A, 4)
    client = own_client(dynamodb_endpoint)

    def always_fails(**_: Any) -> None:
        raise Crash("DynamoDB unavailable")

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", always_fails)
    mapper = mapping(pin_stream_app, aws, stream, SummaryStore(client, summary_table), maximum_retry_attempts=2)

    mapper.poll()

    # Every record fails, so the function errors (Powertools raises when a whole batch failed) and is bisected.
    assert mapper.stats.bisections > 0
    given_up = sorted((f.shard_id, f.start_sequence_number, f.end_sequence_number) for f in mapper.stats.on_failure)
    sent = sorted((s.shard_id, s.sequence_number, s.sequence_number) for s in destination.sent)
    assert sum(f.batch_size for f in mapper.stats.on_failure) == len(destination.sent)
    assert {(shard, start) for shard, start, _ in given_up} <= {(shard, seq) for shard, seq, _ in sent}
    assert items(dynamodb_client, summary_table) == []


def one_shard_stream(aws: dict[str, Any], records: int) -> tuple[str, list[str]]:
    name = f"pinwatch-mapping-{uuid.uuid4().hex[:8]}"
    aws["kinesis"].create_stream(StreamName=name, ShardCount=1)
    aws["kinesis"].get_waiter("stream_exists").wait(StreamName=name)
    put = [aws["kinesis"].put_record(StreamName=name, Data=f"r{i}".encode(), PartitionKey="k") for i in range(records)]
    return name, [p["SequenceNumber"] for p in put]


def test_given_a_partial_batch_response_when_mapped_then_the_batch_is_retried_from_the_lowest_failed_record(
    aws: dict[str, Any],
) -> None:
    name, seqs = one_shard_stream(aws, 6)
    batches: list[list[str]] = []

    def function(event: dict[str, Any]) -> dict[str, Any]:
        sent = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
        batches.append(sent)
        if len(batches) == 1:  # records 2 and 4 fail the first time
            return {"batchItemFailures": [{"itemIdentifier": seqs[4]}, {"itemIdentifier": seqs[2]}]}
        return {"batchItemFailures": []}

    mapper = StreamMapping(aws["kinesis"], name, function)

    assert mapper.poll() == 6
    assert batches == [seqs, seqs[2:]]
    assert mapper.stats.on_failure == []


def test_given_a_record_that_always_fails_the_function_when_mapped_then_bisection_isolates_it_for_the_on_failure_record(
    aws: dict[str, Any],
) -> None:
    name, seqs = one_shard_stream(aws, 8)
    poison = seqs[5]
    succeeded: list[str] = []

    def function(event: dict[str, Any]) -> dict[str, Any]:
        sent = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
        if poison in sent:
            raise RuntimeError("function error")
        succeeded.extend(sent)
        return {}

    mapper = StreamMapping(aws["kinesis"], name, function, maximum_retry_attempts=5)

    assert mapper.poll() == 8
    assert [(f.start_sequence_number, f.end_sequence_number, f.batch_size) for f in mapper.stats.on_failure] == [
        (poison, poison, 1)
    ]
    assert sorted(set(succeeded), key=int) == [s for s in seqs if s != poison]
    assert mapper.stats.bisections == 3  # 8 -> 4 -> 2 -> 1


def test_given_lines_without_ids_when_delivered_then_each_gets_its_own_id_and_only_a_resend_is_not_counted_again(
    pin_stream_app: ModuleType, aws: dict[str, Any], stream: str, dynamodb_client: Any, summary_table: str
) -> None:
    destination = LogDestination(aws["kinesis"], stream)
    traffic = Traffic(seed=5)
    event = traffic.delivery(PROXY, 20, T0, 60_000, mix=PROXY_LINES, stream=STREAM)
    lines = [{"timestamp": e["timestamp"], "message": e["message"]} for e in decode_subscription(event)["logEvents"]]
    first = destination.deliver(A.account, A.region, GROUP, STREAM, lines)
    second = destination.deliver(A.account, A.region, GROUP, STREAM, lines)  # the same text logged again
    assert first is not None
    assert second is not None
    destination.resend(second)

    mapping(pin_stream_app, aws, stream, pin_stream_app.STORE).poll()

    ids = [e["id"] for s in (first, second) for e in s.document["logEvents"]]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 56 and i.isdigit() for i in ids)
    once = scoped(traffic.expected_hourly, A)
    assert hourly_counts(dynamodb_client, summary_table) == once + once
