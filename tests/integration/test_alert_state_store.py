"""Alert state in the summary table, on DynamoDB Local: one Query per proxy, conditional writes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from pinwatch.alerts.policy import AlertState, AlertStatus, Transition
from pinwatch.findings import Severity
from pinwatch.store import keys
from pinwatch.store.alert_state import AlertStateStore

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
    return AlertStateStore(dynamodb_client, summary_table)


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
