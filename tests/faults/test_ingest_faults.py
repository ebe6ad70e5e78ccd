"""Fault injection on the ingest path: the real handler, DynamoDB Local behind a fault proxy.

Each case ends with the table compared, item by item, with the counts of the generated lines:
whatever DynamoDB answered and wherever the function died, every batch counts exactly once — or
waits in the dead-letter queue with its error until it is re-driven.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from pinwatch.ingest import InvalidPayload
from pinwatch.timebase import HOUR_MS
from tests.support.fault_proxy import EVERY_FAULT, SERVER_ERRORS, THROTTLES, Fault, FaultProxy
from tests.support.ground_truth import T0, Traffic
from tests.support.lambda_runtime import AsyncLambda, EnvironmentDied, IngestFunction, quiet
from tests.support.table import hourly_counts, items, total_counts

pytestmark = [
    pytest.mark.integration,
    # A payload that cannot be decoded fails before the handler adds a metric; Powertools warns.
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

WRITE = ("TransactWriteItems",)
# The handler's botocore client: standard mode, retries={"max_attempts": 5} = 5 retries after the first try.
ATTEMPTS = 6


@pytest.fixture
def ingest(monkeypatch: pytest.MonkeyPatch, summary_table: str, table_proxy: FaultProxy) -> Iterator[IngestFunction]:
    monkeypatch.setenv("SUMMARY_TABLE_NAME", summary_table)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", table_proxy.url)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "PinwatchFaults")
    function = IngestFunction()
    with quiet(function.app):
        yield function


def assert_counted_once(dynamodb_client: Any, table: str, traffic: Traffic) -> None:
    assert hourly_counts(dynamodb_client, table) == traffic.expected_hourly
    assert total_counts(dynamodb_client, table) == traffic.expected_totals


@pytest.mark.parametrize("fault", [*THROTTLES, *SERVER_ERRORS, Fault.CONNECTION_RESET])
def test_given_dynamodb_failing_a_write_three_times_when_a_batch_is_ingested_then_botocore_retries_and_it_counts_once(
    ingest: IngestFunction, table_proxy: FaultProxy, dynamodb_client: Any, summary_table: str, fault: Fault
) -> None:
    traffic = Traffic(seed=1)
    event = traffic.delivery("orders-db", 40, T0, 10 * 60_000)
    table_proxy.script(fault, fault, fault, operations=WRITE)

    result = ingest.invoke(event)

    assert (result["appliedChunks"], result["duplicateChunks"]) == (1, 0)
    assert [i.fault for i in table_proxy.injected] == [fault] * 3
    assert table_proxy.forwarded("TransactWriteItems") == 1
    assert_counted_once(dynamodb_client, summary_table, traffic)


def test_given_a_transaction_cancelled_for_throttling_when_ingested_then_the_store_retries_it_and_it_counts_once(
    ingest: IngestFunction, table_proxy: FaultProxy, dynamodb_client: Any, summary_table: str
) -> None:
    traffic = Traffic(seed=2)
    event = traffic.delivery("orders-db", 40, T0, 10 * 60_000)
    # botocore does not retry TransactionCanceledException; the store does, for ThrottlingError reasons.
    table_proxy.script(Fault.TRANSACTION_THROTTLED, Fault.TRANSACTION_THROTTLED, operations=WRITE)

    result = ingest.invoke(event)

    assert (result["appliedChunks"], result["duplicateChunks"]) == (1, 0)
    assert table_proxy.forwarded("TransactWriteItems") == 1
    assert_counted_once(dynamodb_client, summary_table, traffic)


def test_given_a_write_applied_but_its_response_lost_when_botocore_resends_it_then_it_is_ours_and_counts_once(
    ingest: IngestFunction, table_proxy: FaultProxy, dynamodb_client: Any, summary_table: str
) -> None:
    traffic = Traffic(seed=3)
    event = traffic.delivery("orders-db", 40, T0, 10 * 60_000)
    table_proxy.script(Fault.LOST_RESPONSE, operations=WRITE)

    result = ingest.invoke(event)

    # Applied, answered 500, resent with the same ClientRequestToken (botocore's idempotency token), so
    # DynamoDB does not apply it again; and were it applied, the store would find its own marker token.
    assert table_proxy.forwarded("TransactWriteItems") == 2
    assert (result["appliedChunks"], result["duplicateChunks"]) == (1, 0)
    assert_counted_once(dynamodb_client, summary_table, traffic)


def test_given_a_lost_response_and_then_no_answer_when_the_invocation_fails_then_lambdas_retry_does_not_recount_it(
    ingest: IngestFunction, table_proxy: FaultProxy, dynamodb_client: Any, summary_table: str
) -> None:
    traffic = Traffic(seed=4)
    event = traffic.delivery("orders-db", 40, T0, 10 * 60_000)
    table_proxy.script(Fault.LOST_RESPONSE, *[Fault.UNAVAILABLE] * (ATTEMPTS - 1), operations=WRITE)
    lam = AsyncLambda(ingest.invoke)

    lam.submit(event)
    lam.run()

    first, retry = lam.attempts
    assert not first.ok
    assert "ServiceUnavailable" in str(first.error)  # it failed, though its write had been applied
    assert (retry.result["appliedChunks"], retry.result["duplicateChunks"]) == (0, 1)
    assert lam.dead_letters == []
    assert_counted_once(dynamodb_client, summary_table, traffic)


@pytest.mark.parametrize("dies_after", [0, 1, 2], ids=["before-first-chunk", "between-chunks", "after-last-chunk"])
def test_given_the_function_dying_inside_a_multi_chunk_batch_when_lambda_retries_then_applied_chunks_are_skipped(
    ingest: IngestFunction, dynamodb_client: Any, summary_table: str, dies_after: int
) -> None:
    traffic = Traffic(seed=5)
    event = traffic.wide_delivery("orders-db", T0, hours=14)
    ingest.switch.set(dies_after)
    lam = AsyncLambda(ingest.invoke)

    lam.submit(event)
    lam.run()

    crashed, retry = lam.attempts
    assert isinstance(crashed.error, EnvironmentDied)
    assert ingest.cold_starts == 2  # the retry ran in a fresh environment
    assert retry.result["chunks"] == 2
    assert (retry.result["duplicateChunks"], retry.result["appliedChunks"]) == (dies_after, 2 - dies_after)
    assert_counted_once(dynamodb_client, summary_table, traffic)


def test_given_dynamodb_down_through_every_retry_when_a_batch_arrives_then_it_waits_in_the_dlq_and_a_redrive_counts_it(
    ingest: IngestFunction, table_proxy: FaultProxy, dynamodb_client: Any, summary_table: str
) -> None:
    traffic = Traffic(seed=6)
    event = traffic.delivery("orders-db", 40, T0, 10 * 60_000)
    table_proxy.outage(Fault.UNAVAILABLE, service="dynamodb")
    lam = AsyncLambda(ingest.invoke)

    lam.submit(event)
    lam.run()

    [letter] = lam.dead_letters
    assert letter.attempts == AsyncLambda.MAX_ATTEMPTS
    assert "ServiceUnavailable" in letter.error
    assert "TransactWriteItems" in letter.error
    assert table_proxy.forwarded() == 0
    assert items(dynamodb_client, summary_table) == []

    table_proxy.heal()
    lam.redrive()

    assert lam.dead_letters == []
    assert_counted_once(dynamodb_client, summary_table, traffic)


def test_given_a_corrupt_payload_when_delivered_and_redriven_then_it_fails_every_time_and_stays_in_the_dlq(
    ingest: IngestFunction, table_proxy: FaultProxy, dynamodb_client: Any, summary_table: str
) -> None:
    lam = AsyncLambda(ingest.invoke)
    lam.submit(Traffic(seed=7).corrupt())

    lam.run()
    lam.redrive()

    [letter] = lam.dead_letters
    assert letter.error.startswith(f"{InvalidPayload.__name__}: awslogs.data is not gzip data")
    assert all(isinstance(a.error, InvalidPayload) for a in lam.attempts)
    assert len(lam.attempts) == 2 * AsyncLambda.MAX_ATTEMPTS
    assert table_proxy.forwarded() == 0
    assert items(dynamodb_client, summary_table) == []


def test_given_every_fault_kind_at_a_30_percent_rate_with_crashes_and_redeliveries_when_ingested_then_counts_end_exact(
    ingest: IngestFunction, table_proxy: FaultProxy, dynamodb_client: Any, summary_table: str
) -> None:
    rnd = random.Random(8)
    traffic = Traffic(seed=8)
    events = [
        traffic.wide_delivery("orders-db", T0 + i * HOUR_MS, hours=14, stream=f"s{i}")
        if i % 8 == 0
        else traffic.delivery(rnd.choice(("orders-db", "billing-db")), 30, T0 + i * 60_000, 600_000, stream=f"s{i}")
        for i in range(40)
    ]
    table_proxy.inject(0.3, *EVERY_FAULT, service="dynamodb")

    def invoke(event: dict[str, Any]) -> Any:
        ingest.switch.set(rnd.choice((0, 1, 2)) if rnd.random() < 0.1 else None)
        return ingest.invoke(event)

    lam = AsyncLambda(invoke)
    for i, event in enumerate(events):
        lam.submit(event, at=i)
        lam.submit(event, at=i + rnd.randrange(1, 20))  # every batch is delivered twice
    lam.run()
    for _ in range(5):  # re-drive until the queue is empty; the faults go on meanwhile
        if not lam.dead_letters:
            break
        lam.redrive()

    assert lam.dead_letters == []
    assert set(table_proxy.injected_counts()) == set(EVERY_FAULT)
    assert len(lam.failures()) > 0
    assert_counted_once(dynamodb_client, summary_table, traffic)
