"""The PROXIES item on DynamoDB Local: written only when a reader would see a difference, counts stay exact.

Every ingest batch used to update the proxy's item in the one ``PROXIES`` partition; the store now
leaves that update out when the same execution environment wrote it already and last-seen moved by
less than a minute (see :mod:`pinwatch.store.summary`). These tests count the writes the requests
carry (a botocore hook on the client, not the store's own bookkeeping) and read the table back.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from pinwatch.ingest import decode, fold
from pinwatch.parse import parse_message
from pinwatch.records import Kind
from pinwatch.store import keys
from pinwatch.store.summary import LAST_SEEN_STEP_MS, SummaryStore
from pinwatch.store.transactions import TransientRetry
from pinwatch.tally import Tally
from tests.payloads import log_events, max_size_event, subscription_event
from tests.support.table import Crash, crash_after, hourly_counts, items, own_client

pytestmark = pytest.mark.integration

T0 = 1_795_600_800_000  # 2026-11-25T10:00:00Z
HOUR = 3_600_000
NOW = T0 + 10 * HOUR
SECOND = 1000


@pytest.fixture
def client(dynamodb_endpoint: str) -> Any:
    return own_client(dynamodb_endpoint)


def environment(client: Any, table: str, **kwargs: Any) -> SummaryStore:
    """One Lambda execution environment's store (the handler builds one per environment)."""
    return SummaryStore(client, table, retry=TransientRetry(sleep=lambda _: None), **kwargs)


def count_proxies_writes(client: Any) -> list[int]:
    """Per TransactWriteItems request sent, how many of its actions write the PROXIES partition."""
    sent: list[int] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        sent.append(
            sum(
                1
                for action in params["TransactItems"]
                for op in action.values()
                if op.get("Key", op.get("Item", {})).get(keys.PK, {}).get("S") == keys.PROXIES_PK
            )
        )

    client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", hook)
    return sent


def proxies_item(client: Any, table: str, proxy: str) -> dict[str, Any]:
    response = client.get_item(
        TableName=table, Key={keys.PK: {"S": keys.PROXIES_PK}, keys.SK: {"S": keys.proxies_sk(proxy)}}
    )
    return dict(response["Item"])


def number(item: dict[str, Any], name: str) -> int:
    return int(item[name]["N"])


def batch_at(ts_ms: int, lines: int = 5, stream: str = "proxy-orders-db-1") -> tuple[str, Tally]:
    """A subscription batch of `lines` lines within one second from `ts_ms`."""
    return fold(decode(subscription_event(log_events(lines, ts_ms, SECOND, seed=ts_ms), log_stream=stream)))


def expected_counts(events: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """The oracle: every line parsed on its own and counted under its hourly key (orders-db)."""
    out: Counter[tuple[str, str]] = Counter()
    for e in events:
        record = parse_message(e["message"], e["timestamp"])
        hour = keys.hour_bucket(e["timestamp"])
        if record.kind is Kind.PINNED:
            out[(keys.proxy_pk("orders-db"), keys.pin_hour_sk(hour, record.reason or "unknown"))] += 1
        elif record.kind is Kind.WOULD_PIN:
            out[(keys.proxy_pk("orders-db"), keys.would_pin_hour_sk(hour, record.reason or "unknown"))] += 1
        elif record.kind is Kind.UNPARSED:
            out[(keys.proxy_pk("orders-db"), keys.unparsed_hour_sk(hour))] += 1
    return out


def test_given_a_batch_every_five_seconds_when_applied_then_the_proxies_item_is_written_once_a_minute(
    client: Any, summary_table: str
) -> None:
    store = environment(client, summary_table)
    sent = count_proxies_writes(client)
    starts = [T0 + i * 5 * SECOND for i in range(100)]  # 100 batches over 8 min 15 s

    results = [store.apply_batch(*batch_at(ts), NOW) for ts in starts]

    # Written by the first batch, then by each batch whose lines are a minute past the last write:
    # every 12th (12 x 5 s = 60 s), so batches 0, 12, ..., 96.
    assert sum(sent) == len(range(0, 100, 12)) == 9
    assert sum(r.proxies_item_writes for r in results) == sum(sent)
    assert sum(hourly_counts(client, summary_table).values()) == 100 * 5
    item = proxies_item(client, summary_table, "orders-db")
    newest_line = batch_at(starts[-1])[1].proxies[0].last_ms
    assert number(item, "first_seen_ms") == number(item, "live_since_ms") == T0
    assert 0 <= newest_line - number(item, "last_seen_ms") < LAST_SEEN_STEP_MS


def test_given_no_step_when_batches_are_applied_then_every_batch_writes_the_proxies_item(
    client: Any, summary_table: str
) -> None:
    store = environment(client, summary_table, last_seen_step_ms=None)
    sent = count_proxies_writes(client)

    for i in range(3):
        store.apply_batch(*batch_at(T0 + i * SECOND), NOW)

    assert sent == [1, 1, 1]


def test_given_a_second_environment_when_its_first_batch_is_applied_then_it_writes_without_moving_first_or_live_start(
    client: Any, summary_table: str
) -> None:
    first, second = environment(client, summary_table), environment(client, summary_table)
    sent = count_proxies_writes(client)

    first.apply_batch(*batch_at(T0 + 10 * SECOND, stream="s-1"), NOW)
    second.apply_batch(*batch_at(T0, stream="s-2"), NOW)  # older lines, delivered later
    second.apply_batch(*batch_at(T0 + 20 * SECOND, stream="s-2"), NOW)

    assert sent == [1, 1, 0]
    item = proxies_item(client, summary_table, "orders-db")
    assert number(item, "live_since_ms") == number(item, "first_seen_ms") == T0 + 10 * SECOND


def test_given_a_new_log_group_for_the_proxy_when_applied_then_the_proxies_item_is_written_at_once(
    client: Any, summary_table: str
) -> None:
    store = environment(client, summary_table)
    sent = count_proxies_writes(client)
    events = log_events(5, T0, SECOND)

    store.apply_batch(*fold(decode(subscription_event(events))), NOW)
    moved = subscription_event(log_events(5, T0 + SECOND, SECOND), log_group="/custom/orders-db")
    store.apply_batch(*fold(decode(moved)), NOW)

    assert sent == [1, 1]
    assert proxies_item(client, summary_table, "orders-db")["log_group"] == {"S": "/custom/orders-db"}


def test_given_the_first_live_batch_over_several_transactions_when_it_crashes_after_one_then_live_start_is_already_recorded(
    client: Any, summary_table: str
) -> None:
    event, _ = max_size_event(hours=60, start_ms=T0)
    events = json.loads(json.dumps(decode(event).events))
    batch, tally = fold(decode(event))
    store = environment(client, summary_table)
    assert len(store.plan(tally, NOW)) > 2 * 99, "the batch takes three transactions or more"
    crash_after(client, 1)  # the function dies after its first transaction committed

    with pytest.raises(Crash):
        store.apply_batch(batch, tally, NOW)

    # Some counts are visible, and the live start with them (a backfill reading now stops there).
    assert sum(hourly_counts(client, summary_table).values()) > 0
    assert number(proxies_item(client, summary_table, "orders-db"), "live_since_ms") == min(
        e["timestamp"] for e in events
    )

    retry = environment(client, summary_table).apply_batch(batch, tally, NOW)  # Lambda's retry, a new environment

    assert retry.duplicate_chunks == 1
    assert hourly_counts(client, summary_table) == expected_counts(events)


def test_given_an_environment_that_wrote_the_item_when_its_batch_is_retried_after_a_crash_then_chunks_and_counts_hold(
    client: Any, summary_table: str
) -> None:
    event, _ = max_size_event(hours=60, start_ms=T0)
    events = json.loads(json.dumps(decode(event).events))
    batch, tally = fold(decode(event))
    store = environment(client, summary_table)
    crash_after(client, 2)  # the function dies after its second transaction committed
    with pytest.raises(Crash):
        store.apply_batch(batch, tally, NOW)
    sent = count_proxies_writes(client)

    # The same environment retries: it leaves the proxies item out now, and the chunks stay as planned.
    retry = store.apply_batch(batch, tally, NOW)

    assert sum(sent) == 0
    assert (retry.duplicate_chunks, retry.applied_chunks) == (2, retry.chunks - 2)
    assert hourly_counts(client, summary_table) == expected_counts(events)
    markers = [i for i in items(client, summary_table) if i[keys.PK]["S"] == keys.batch_pk(batch)]
    assert len(markers) == retry.chunks


def test_given_a_backfill_when_it_writes_pages_then_each_page_writes_the_proxies_item(
    client: Any, summary_table: str
) -> None:
    store = environment(client, summary_table)
    sent = count_proxies_writes(client)

    for i in range(2):
        _, tally = batch_at(T0 + i * SECOND)
        store.apply_batch(f"backfill-{i}", tally, NOW, backfill_until_ms=T0 + HOUR)

    assert sent == [1, 1]
    assert number(proxies_item(client, summary_table, "orders-db"), "backfilled_until_ms") == T0 + HOUR
