"""Which proxies a check invocation reads: sweeps, hot proxies in between, an alarm contributor at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pinwatch.fleet import (
    AlarmContributors,
    RunPlan,
    Trigger,
    TriggerKind,
    parse_trigger,
    plan_run,
    sweep_due,
)
from pinwatch.local.lambda_harness import schedule_event
from pinwatch.timebase import MINUTE_MS

EVENTS = Path(__file__).resolve().parents[2] / "events"
SWEEP = 1_796_169_600_000  # a minute divisible by 15
BETWEEN = SWEEP + 7 * MINUTE_MS + 5_000


def contributor_event(state: str = "ALARM") -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "alarm-contributor.json").read_text())
    event["detail"]["state"]["value"] = state
    return event


def test_given_the_sample_contributor_event_when_parsed_then_it_names_the_proxy_state_and_alarm() -> None:
    trigger = parse_trigger(contributor_event())
    changed_at = int(datetime(2026, 11, 25, 20, 16, 4, tzinfo=UTC).timestamp() * 1000)  # the sample's "time"
    assert trigger == Trigger(
        TriggerKind.CONTRIBUTOR, ("orders-db",), "ALARM", "pinwatch-pinned-connections", time_ms=changed_at
    )


@pytest.mark.parametrize(
    ("event", "kind"),
    [(schedule_event(), TriggerKind.SCHEDULE), ({}, TriggerKind.MANUAL), (None, TriggerKind.MANUAL)],
)
def test_given_other_events_when_parsed_then_schedule_or_manual(event: Any, kind: TriggerKind) -> None:
    assert parse_trigger(event).kind is kind


def test_given_a_contributor_event_without_a_proxy_dimension_when_parsed_then_it_names_no_proxy() -> None:
    event = contributor_event()
    event["detail"]["alarmContributor"]["attributes"] = {"DBInstanceIdentifier": "db-1"}
    assert parse_trigger(event).proxies == ()


@pytest.mark.parametrize(("offset_minutes", "due"), [(0, True), (1, False), (14, False), (15, True), (30, True)])
def test_given_the_minute_when_asked_then_a_sweep_is_due_every_sweep_minutes(offset_minutes: int, due: bool) -> None:
    assert sweep_due(SWEEP + offset_minutes * MINUTE_MS + 5_000, 15) is due


def test_given_one_minute_sweeps_when_asked_then_every_minute_is_a_sweep() -> None:
    assert all(sweep_due(SWEEP + m * MINUTE_MS, 1) for m in range(20))


def test_given_a_schedule_on_a_sweep_minute_when_planned_then_every_proxy_is_read_without_asking_who_is_hot() -> None:
    asked: list[str] = []
    plan = plan_run(
        Trigger(TriggerKind.SCHEDULE), SWEEP + 5_000, sweep_minutes=15, hot_sources=(lambda: asked.append("x") or (),)
    )
    assert plan.reads_every_proxy
    assert asked == []


def test_given_a_schedule_between_sweeps_when_planned_then_the_union_of_hot_proxies_is_read() -> None:
    plan = plan_run(
        Trigger(TriggerKind.SCHEDULE),
        BETWEEN,
        sweep_minutes=15,
        hot_sources=(lambda: {"orders", "billing"}, lambda: frozenset({"orders", "reports"})),
    )
    assert plan.names == ("billing", "orders", "reports")


def test_given_a_hot_source_that_fails_when_planned_then_the_other_source_still_counts() -> None:
    def broken() -> frozenset[str]:
        raise TimeoutError("DescribeAlarmContributors timed out")

    plan = plan_run(Trigger(TriggerKind.SCHEDULE), BETWEEN, sweep_minutes=15, hot_sources=(broken, lambda: {"orders"}))
    assert plan.names == ("orders",)


def test_given_configured_names_when_planned_then_hot_proxies_outside_them_are_left_out() -> None:
    plan = plan_run(
        Trigger(TriggerKind.SCHEDULE),
        BETWEEN,
        sweep_minutes=15,
        hot_sources=(lambda: {"orders", "someone-else"},),
        configured=("orders", "billing"),
    )
    assert plan.names == ("orders",)


def test_given_a_contributor_in_alarm_when_planned_then_its_proxy_is_read_at_once_even_between_sweeps() -> None:
    plan = plan_run(parse_trigger(contributor_event()), BETWEEN, sweep_minutes=15)
    assert plan.names == ("orders-db",)


def test_given_a_contributor_back_to_ok_when_planned_then_nothing_is_read() -> None:
    assert plan_run(parse_trigger(contributor_event("OK")), BETWEEN, sweep_minutes=15).names == ()


def test_given_a_manual_invocation_when_planned_then_every_proxy_is_read() -> None:
    assert plan_run(Trigger(TriggerKind.MANUAL), BETWEEN, sweep_minutes=15) == RunPlan(
        None, "manual invocation: every proxy"
    )


class PagedContributors:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def describe_alarm_contributors(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if "NextToken" not in kwargs:
            return {
                "AlarmContributors": [
                    {"ContributorId": "a", "ContributorAttributes": {"ProxyName": "orders"}, "StateReason": ""}
                ],
                "NextToken": "t1",
            }
        return {"AlarmContributors": [{"ContributorId": "b", "ContributorAttributes": {"ProxyName": "billing"}}]}


def test_given_paged_contributors_when_listed_then_every_page_of_every_alarm_is_read() -> None:
    client = PagedContributors()
    found = AlarmContributors(client, ["pinned"]).in_alarm()  # type: ignore[arg-type]
    assert found == frozenset({"orders", "billing"})
    assert client.calls == [{"AlarmName": "pinned"}, {"AlarmName": "pinned", "NextToken": "t1"}]
