"""Member contributor states in the summary table, on DynamoDB Local: ALARM then OK, repeats, out-of-order events."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pinwatch.scope import Scope
from pinwatch.store import keys
from pinwatch.store.hot_state import WATCHED_PK, ContributorWatchStore

pytestmark = pytest.mark.integration

PAGED = Scope("222222222222", "us-east-1").key("orders-db")
HEALTHY = Scope("111111111111", "us-east-1").key("orders-db")
# An event's time, ms: the coming hour, so the table's TTL (which DynamoDB Local applies) leaves the items alone.
T0 = (int(time.time()) + 3_600) * 1_000
MINUTE = 60_000


class Clock:
    def __init__(self, now_s: float = T0 / 1000) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(dynamodb_client: Any, summary_table: str, clock: Clock) -> ContributorWatchStore:
    return ContributorWatchStore(dynamodb_client, summary_table, clock=clock)


def stored(dynamodb_client: Any, table: str, proxy: str) -> dict[str, Any]:
    item: dict[str, Any] = dynamodb_client.get_item(
        TableName=table, Key={keys.PK: {"S": WATCHED_PK}, keys.SK: {"S": f"PROXY#{proxy}"}}, ConsistentRead=True
    )["Item"]
    return item


def test_given_an_alarm_then_its_ok_when_recorded_then_the_key_is_watched_until_the_ok(
    store: ContributorWatchStore,
) -> None:
    assert store.watched() == frozenset()
    assert store.record(PAGED, "ALARM", T0)
    assert store.record(HEALTHY, "ALARM", T0 + MINUTE)
    assert store.watched() == {PAGED, HEALTHY}

    assert store.record(PAGED, "OK", T0 + 10 * MINUTE)
    assert store.watched() == {HEALTHY}


def test_given_an_ok_stored_when_an_older_alarm_arrives_late_then_it_is_ignored(
    store: ContributorWatchStore, dynamodb_client: Any, summary_table: str
) -> None:
    assert store.record(PAGED, "ALARM", T0)
    assert store.record(PAGED, "OK", T0 + 5 * MINUTE)
    assert not store.record(PAGED, "ALARM", T0 + 2 * MINUTE)  # delivered after the OK, but older

    assert store.watched() == frozenset()
    item = stored(dynamodb_client, summary_table, PAGED)
    assert (item["watched"], item["event_ms"]) == ({"BOOL": False}, {"N": str(T0 + 5 * MINUTE)})


def test_given_an_ok_that_overtook_its_alarm_when_the_alarm_arrives_then_the_key_stays_unwatched(
    store: ContributorWatchStore,
) -> None:
    # The OK of the second transition is first; the ALARM before it is stale on arrival.
    assert store.record(PAGED, "OK", T0 + 3 * MINUTE)
    assert not store.record(PAGED, "ALARM", T0)
    assert store.watched() == frozenset()
    # A newer ALARM (the next incident) watches it again.
    assert store.record(PAGED, "ALARM", T0 + 30 * MINUTE)
    assert store.watched() == {PAGED}


def test_given_a_repeated_event_when_recorded_again_then_it_changes_nothing_but_the_expiry(
    store: ContributorWatchStore, dynamodb_client: Any, summary_table: str, clock: Clock
) -> None:
    assert store.record(PAGED, "ALARM", T0)
    first = stored(dynamodb_client, summary_table, PAGED)
    clock.now_s += 3_600
    assert store.record(PAGED, "ALARM", T0)  # EventBridge delivered the same event twice
    again = stored(dynamodb_client, summary_table, PAGED)

    assert store.watched() == {PAGED}
    assert again["event_ms"] == first["event_ms"] == {"N": str(T0)}
    assert int(again[keys.TTL_ATTRIBUTE]["N"]) == int(first[keys.TTL_ATTRIBUTE]["N"]) + 3_600


def test_given_an_alarm_whose_ok_never_came_when_its_day_has_passed_then_it_is_no_longer_watched(
    store: ContributorWatchStore, dynamodb_client: Any, summary_table: str, clock: Clock
) -> None:
    assert store.record(PAGED, "ALARM", T0)
    expires_at = int(stored(dynamodb_client, summary_table, PAGED)[keys.TTL_ATTRIBUTE]["N"])
    assert expires_at == int(T0 / 1000) + 24 * 3_600

    clock.now_s = expires_at - 1
    assert store.watched() == {PAGED}
    # DynamoDB deletes expired items only eventually; the read leaves them out at once.
    clock.now_s = expires_at
    assert store.watched() == frozenset()


def test_given_many_watched_keys_when_listed_then_every_page_is_read(store: ContributorWatchStore) -> None:
    # Long names (a sort key holds up to 1 KB) so that a few hundred items fill a 1 MB Query page.
    many = {Scope(f"{n:012d}", "eu-west-1").key(f"proxy-{n}-" + "x" * 900) for n in range(1, 1_201)}
    for n, proxy in enumerate(sorted(many)):
        assert store.record(proxy, "ALARM", T0 + n)
    # About 2.2 MB of items: three pages.
    assert store.watched() == many
