"""Organization mode's triggers: a member alarm's forwarded event names its proxy by key; hot keys plan the run."""

from __future__ import annotations

from typing import Any

import pytest

from pinwatch.fleet import AlarmContributors, TriggerKind, parse_trigger, plan_run
from pinwatch.local.alarms import MetricsInsightsAlarm
from pinwatch.scope import Scope
from pinwatch.timebase import MINUTE_MS
from tests.unit.test_fleet import BETWEEN, contributor_event

MEMBER = Scope("111111111111", "eu-west-1")


def forwarded(account: Any = MEMBER.account, region: Any = MEMBER.region) -> dict[str, Any]:
    """The member's contributor event as the central bus delivers it: its own account and Region on top."""
    event = contributor_event()
    event["account"], event["region"] = account, region
    return event


def test_given_a_forwarded_member_event_when_parsed_in_org_mode_then_the_proxy_is_named_by_its_key() -> None:
    trigger = parse_trigger(forwarded(), qualified=True)
    assert (trigger.kind, trigger.proxies) == (TriggerKind.CONTRIBUTOR, (MEMBER.key("orders-db"),))
    plan = plan_run(trigger, BETWEEN, sweep_minutes=15)
    assert plan.names == (MEMBER.key("orders-db"),)


def test_given_the_same_event_in_single_account_mode_when_parsed_then_the_plain_name_as_before() -> None:
    assert parse_trigger(forwarded()).proxies == ("orders-db",)


@pytest.mark.parametrize(("account", "region"), [(None, "eu-west-1"), ("1111", "eu-west-1"), (MEMBER.account, "")])
def test_given_an_event_without_a_valid_origin_when_parsed_in_org_mode_then_it_names_no_proxy(
    account: Any, region: Any
) -> None:
    assert parse_trigger(forwarded(account, region), qualified=True).proxies == ()


def test_given_hot_keys_between_sweeps_when_planned_then_the_keys_of_every_member_are_read() -> None:
    other = Scope("222222222222", "us-east-1")
    hot = [MEMBER.key("orders-db"), other.key("orders-db"), other.key("*")]
    plan = plan_run(
        parse_trigger({"detail-type": "Scheduled Event"}), BETWEEN, sweep_minutes=15, hot_sources=[lambda: hot]
    )
    assert plan.names == tuple(sorted(hot))


def test_given_a_scope_when_alarm_contributors_are_listed_then_they_are_keys() -> None:
    class Client:
        def describe_alarm_contributors(self, **_: Any) -> dict[str, Any]:
            return {"AlarmContributors": [{"ContributorId": "a", "ContributorAttributes": {"ProxyName": "orders-db"}}]}

    found = AlarmContributors(Client(), ["pinned"], scope=MEMBER).in_alarm()  # type: ignore[arg-type]
    assert found == frozenset({MEMBER.key("orders-db")})


def test_given_a_member_accounts_alarm_when_it_fires_then_its_event_carries_that_account_and_region() -> None:
    minute = BETWEEN - BETWEEN % MINUTE_MS - MINUTE_MS
    alarm = MetricsInsightsAlarm(
        "pinwatch-pinned-connections",
        lambda metric, start, end: {"orders-db": {minute: 4.0}},
        region=MEMBER.region,
        account=MEMBER.account,
    )
    (event,) = alarm.evaluate(BETWEEN)
    assert (event["account"], event["region"]) == (MEMBER.account, MEMBER.region)
    assert event["resources"] == [f"arn:aws:cloudwatch:eu-west-1:{MEMBER.account}:alarm:pinwatch-pinned-connections"]
    assert parse_trigger(event, qualified=True).proxies == (MEMBER.key("orders-db"),)
