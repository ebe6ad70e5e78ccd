"""Alert state in the summary table, on DynamoDB Local: one Query per proxy, conditional writes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pinwatch.alerts.policy import AlertState, AlertStatus, Transition
from pinwatch.findings import Severity
from pinwatch.store import keys
from pinwatch.store.alert_state import AlertStateStore
from pinwatch.store.transactions import TransientRetry
from tests.support.table import cancelled_transaction

pytestmark = pytest.mark.integration

PROXY = "orders-proxy"


def state(rule: str = "pinned_share", **changes: Any) -> AlertState:
    base = AlertState(
        proxy=PROXY,
        rule=rule,
        status=AlertStatus.ACTIVE,
        severity=Severity.CRITICAL,
        first_active_ms=1_000,
        last_notified_ms=2_000,
        last_notified_severity=Severity.WARNING,
        last_transition=Transition.ESCALATED,
        healthy_streak=1,
        accepted_channels=frozenset({"sns"}),
        pending_channels=frozenset({"slack"}),
        summary="64% of DB connections are pinned",
    )
    return replace(base, **changes)


@pytest.fixture
def store(dynamodb_client: Any, summary_table: str) -> AlertStateStore:
    return AlertStateStore(dynamodb_client, summary_table, retry=TransientRetry(attempts=3, sleep=lambda _: None))


class CancelledWrites:
    """Cancels the next `n` TransactWriteItems calls of a client with `codes`; counts every call."""

    def __init__(self, client: Any, n: int, *codes: str) -> None:
        self.left, self.codes, self.calls = n, list(codes), 0
        client.meta.events.register("before-call.dynamodb.TransactWriteItems", self._before)

    def _before(self, **_: Any) -> Any:
        self.calls += 1
        if self.left <= 0:
            return None
        self.left -= 1
        return cancelled_transaction(self.codes)


def test_given_empty_table_when_loading_then_no_states(store: AlertStateStore) -> None:
    assert store.load(PROXY) == {}


def test_given_saved_states_when_loading_then_they_round_trip_with_a_new_version(store: AlertStateStore) -> None:
    saved = store.save([state("pinned_share"), state("pool_pressure", pending_channels=frozenset(), summary="")])
    assert saved is not None
    loaded = store.load(PROXY)
    assert loaded == {s.rule: s for s in saved}
    assert {s.version for s in loaded.values()} == {1}


def test_given_other_items_of_the_proxy_and_other_proxies_when_loading_then_only_its_alert_items_come_back(
    store: AlertStateStore, dynamodb_client: Any, summary_table: str
) -> None:
    dynamodb_client.put_item(
        TableName=summary_table,
        Item={keys.PK: {"S": keys.proxy_pk(PROXY)}, keys.SK: {"S": keys.pin_hour_sk("2026-11-25T20", "lock")}},
    )
    dynamodb_client.put_item(
        TableName=summary_table,
        Item={keys.PK: {"S": keys.proxy_pk(PROXY)}, keys.SK: {"S": keys.pin_total_sk("lock")}},
    )
    store.save([replace(state(), proxy="other-proxy")])
    store.save([state()])
    assert list(store.load(PROXY)) == ["pinned_share"]


def test_given_one_load_when_counting_requests_then_a_single_query_reads_every_rule(
    store: AlertStateStore, dynamodb_client: Any
) -> None:
    store.save([state(f"rule_{i}") for i in range(8)])
    calls: list[str] = []
    dynamodb_client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    assert len(store.load(PROXY)) == 8
    assert calls == ["Query"]


def test_given_state_changed_by_another_run_when_saving_the_stale_copy_then_the_write_is_refused(
    store: AlertStateStore,
) -> None:
    (stored,) = store.save([state()]) or ()
    mine = store.load(PROXY)["pinned_share"]
    theirs = store.save([replace(mine, healthy_streak=0)])
    assert theirs is not None
    assert store.save([replace(mine, status=AlertStatus.OK)]) is None  # my copy is stale now
    assert store.load(PROXY)["pinned_share"].status is AlertStatus.ACTIVE
    assert stored.version == 1


def test_given_two_runs_creating_the_same_rule_when_both_save_then_only_the_first_wins(store: AlertStateStore) -> None:
    first = state(status=AlertStatus.ACTIVE)
    second = state(status=AlertStatus.OK)
    assert store.save([first]) is not None
    assert store.save([second]) is None
    assert store.load(PROXY)["pinned_share"].status is AlertStatus.ACTIVE


def test_given_one_stale_state_among_several_when_saving_then_nothing_is_written(store: AlertStateStore) -> None:
    saved = store.save([state("a"), state("b")])
    assert saved is not None
    fresh_a, stale_b = replace(saved[0], healthy_streak=5), replace(saved[1], version=0)
    assert store.save([fresh_a, stale_b]) is None
    assert store.load(PROXY)["a"].healthy_streak == 1


def test_given_lease_fields_when_saved_and_cleared_then_both_round_trip(store: AlertStateStore) -> None:
    (leased,) = store.save([state(lease_owner="run-1", lease_until_ms=99_000)]) or ()
    assert store.load(PROXY)["pinned_share"].lease_owner == "run-1"
    assert store.save([replace(leased, lease_owner=None, lease_until_ms=None)]) is not None
    loaded = store.load(PROXY)["pinned_share"]
    assert (loaded.lease_owner, loaded.lease_until_ms, loaded.version) == (None, None, 2)


@pytest.mark.parametrize("reason", ["ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict"])
def test_given_a_write_cancelled_for_a_transient_reason_when_saving_then_it_is_retried_and_stored_once(
    store: AlertStateStore, dynamodb_client: Any, reason: str
) -> None:
    writes = CancelledWrites(dynamodb_client, 2, reason, reason)

    saved = store.save([state("a"), state("b")])

    assert saved is not None
    assert writes.calls == 3
    assert store.load(PROXY) == {s.rule: s for s in saved}
    assert {s.version for s in saved} == {1}


def test_given_throttling_that_outlasts_the_retries_when_saving_then_it_raises_and_nothing_is_written(
    store: AlertStateStore, dynamodb_client: Any
) -> None:
    writes = CancelledWrites(dynamodb_client, 3, "ThrottlingError")

    with pytest.raises(ClientError) as raised:
        store.save([state()])

    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert writes.calls == 3
    assert store.load(PROXY) == {}


def test_given_a_conflict_that_clears_into_a_newer_version_when_saving_then_the_race_is_lost(
    store: AlertStateStore, dynamodb_client: Any
) -> None:
    (mine,) = store.save([state()]) or ()
    assert store.save([replace(mine, healthy_streak=0)]) is not None  # another run, first
    writes = CancelledWrites(dynamodb_client, 1, "TransactionConflict")

    assert store.save([replace(mine, status=AlertStatus.OK)]) is None

    assert writes.calls == 2  # the conflict was retried; the retry found the other run's version
    assert store.load(PROXY)["pinned_share"].status is AlertStatus.ACTIVE


def test_given_a_non_transient_cancellation_when_saving_then_it_is_raised_at_once(
    store: AlertStateStore, dynamodb_client: Any
) -> None:
    writes = CancelledWrites(dynamodb_client, 1, "ValidationError")

    with pytest.raises(ClientError):
        store.save([state()])

    assert writes.calls == 1
