"""Organization mode's hot proxies from member contributor events: the event's time, what is remembered, the store's writes."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from pinwatch.fleet import TriggerKind, parse_trigger, plan_run, remember
from pinwatch.local.alarms import pattern_matches
from pinwatch.store import keys
from pinwatch.store.hot_state import WATCHED_PK, ContributorWatchStore
from tests.unit.test_fleet import BETWEEN
from tests.unit.test_org_fleet import MEMBER, forwarded

KEY = MEMBER.key("orders-db")
SAMPLE_TIME_MS = 1_795_637_764_000  # the sample event's "time", 2026-11-25T20:16:04Z
NOW_S = 1_796_000_000


class Remembered:
    """A watch that keeps every call it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def record(self, proxy: str, state: str, event_ms: int) -> bool:
        self.calls.append((proxy, state, event_ms))
        return True

    def watched(self) -> frozenset[str]:
        return frozenset()


def event_at(state: str, time: Any) -> dict[str, Any]:
    event = forwarded()
    event["detail"]["state"]["value"] = state
    event["time"] = time
    return event


# ---------------------------------------------------------------------------- the event's time
def test_given_a_forwarded_event_when_parsed_then_its_time_orders_it() -> None:
    assert parse_trigger(forwarded(), qualified=True).time_ms == SAMPLE_TIME_MS
    later = parse_trigger(event_at("OK", "2026-11-25T20:21:04Z"), qualified=True)
    assert later.time_ms == SAMPLE_TIME_MS + 5 * 60_000


@pytest.mark.parametrize("time", [None, "", "yesterday", 1_795_637_764, "2026-11-25T20:16:04"])
def test_given_an_event_without_a_valid_zoned_time_when_parsed_then_it_has_none(time: Any) -> None:
    assert parse_trigger(event_at("ALARM", time), qualified=True).time_ms is None


# ---------------------------------------------------------------------------- what is remembered
@pytest.mark.parametrize("state", ["ALARM", "OK"])
def test_given_a_contributor_event_when_remembered_then_its_key_state_and_time_are_stored(state: str) -> None:
    watch = Remembered()
    stored = remember(parse_trigger(event_at(state, "2026-11-25T20:16:04Z"), qualified=True), watch)
    assert stored == 1
    assert watch.calls == [(KEY, state, SAMPLE_TIME_MS)]


@pytest.mark.parametrize(
    "event",
    [
        {"detail-type": "Scheduled Event", "time": "2026-11-25T20:16:04Z"},
        {},
        event_at("INSUFFICIENT_DATA", "2026-11-25T20:16:04Z"),
        event_at("ALARM", None),  # nothing to order it by
        forwarded(account="1111"),  # no valid origin: no key
    ],
)
def test_given_anything_but_a_timed_alarm_or_ok_of_a_proxy_when_remembered_then_nothing_is_stored(
    event: dict[str, Any],
) -> None:
    watch = Remembered()
    assert remember(parse_trigger(event, qualified=True), watch) == 0
    assert watch.calls == []


def test_given_watched_keys_and_open_alerts_between_sweeps_when_planned_then_the_run_reads_their_union() -> None:
    other = MEMBER.key("billing-db")
    plan = plan_run(
        parse_trigger({"detail-type": "Scheduled Event"}),
        BETWEEN,
        sweep_minutes=15,
        hot_sources=[lambda: {other}, lambda: {KEY, other}],
    )
    assert plan.names == tuple(sorted({KEY, other}))


def test_given_an_ok_event_when_planned_then_it_reads_nothing_at_once() -> None:
    trigger = parse_trigger(event_at("OK", "2026-11-25T20:16:04Z"), qualified=True)
    assert trigger.kind is TriggerKind.CONTRIBUTOR
    assert plan_run(trigger, BETWEEN, sweep_minutes=15).names == ()


# ---------------------------------------------------------------------------- the store's writes
@pytest.fixture
def stubbed() -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber


def put_params(state: str, event_ms: int) -> dict[str, Any]:
    return {
        "TableName": "t",
        "Item": {
            keys.PK: {"S": WATCHED_PK},
            keys.SK: {"S": f"PROXY#{KEY}"},
            "proxy": {"S": KEY},
            "watched": {"BOOL": state == "ALARM"},
            "event_ms": {"N": str(event_ms)},
            keys.TTL_ATTRIBUTE: {"N": str(NOW_S + 24 * 3600)},
        },
        "ConditionExpression": ANY,
        "ExpressionAttributeNames": ANY,
        "ExpressionAttributeValues": {":event_ms": {"N": str(event_ms)}},
    }


@pytest.mark.parametrize("state", ["ALARM", "OK"])
def test_given_an_event_when_recorded_then_one_conditional_put_keeps_state_time_and_a_day_of_ttl(
    stubbed: Any, state: str
) -> None:
    # OK is a put too (watched false): the item keeps the OK's time, so a late older ALARM loses.
    client, stubber = stubbed
    stubber.add_response("put_item", {}, put_params(state, SAMPLE_TIME_MS))
    assert ContributorWatchStore(client, "t", clock=lambda: NOW_S).record(KEY, state, SAMPLE_TIME_MS)
    stubber.assert_no_pending_responses()


def test_given_a_newer_event_stored_when_an_older_one_is_recorded_then_it_is_reported_stale(stubbed: Any) -> None:
    client, stubber = stubbed
    stubber.add_client_error("put_item", "ConditionalCheckFailedException", http_status_code=400)
    assert not ContributorWatchStore(client, "t", clock=lambda: NOW_S).record(KEY, "ALARM", SAMPLE_TIME_MS)


def test_given_throttling_when_recorded_then_the_error_reaches_the_caller(stubbed: Any) -> None:
    client, stubber = stubbed
    stubber.add_client_error("put_item", "ProvisionedThroughputExceededException", http_status_code=400)
    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        ContributorWatchStore(client, "t", clock=lambda: NOW_S).record(KEY, "OK", SAMPLE_TIME_MS)


def test_given_another_state_or_ttl_when_used_then_it_is_refused(stubbed: Any) -> None:
    client, _ = stubbed
    with pytest.raises(ValueError, match="ALARM or OK"):
        ContributorWatchStore(client, "t").record(KEY, "INSUFFICIENT_DATA", SAMPLE_TIME_MS)
    with pytest.raises(ValueError, match="ttl_hours"):
        ContributorWatchStore(client, "t", ttl_hours=0)


# ---------------------------------------------------------------------------- the rules' patterns, emulated
PATTERN = {
    "source": ["aws.cloudwatch"],
    "detail-type": ["CloudWatch Alarm Contributor State Change"],
    "detail": {"alarmName": ["pinwatch-pinned-connections"], "state": {"value": ["ALARM", "OK"]}},
}


@pytest.mark.parametrize(("state", "matches"), [("ALARM", True), ("OK", True), ("INSUFFICIENT_DATA", False)])
def test_given_the_contributor_rule_pattern_when_an_event_is_matched_then_alarm_and_ok_pass(
    state: str, matches: bool
) -> None:
    assert pattern_matches(PATTERN, event_at(state, "2026-11-25T20:16:04Z")) is matches


def test_given_an_event_of_another_alarm_or_without_a_field_when_matched_then_it_does_not_pass() -> None:
    other = forwarded()
    other["detail"]["alarmName"] = "something-else"
    missing = forwarded()
    del missing["detail"]["state"]
    assert not pattern_matches(PATTERN, other)
    assert not pattern_matches(PATTERN, missing)


def test_given_a_content_filter_when_matched_then_the_emulation_refuses_it() -> None:
    with pytest.raises(ValueError, match="content filters"):
        pattern_matches({"detail-type": [{"prefix": "CloudWatch"}]}, forwarded())
