"""Alerts about an organization's proxy (key ``<account>:<region>:<name>``): every channel says where it lives.

Same reviewed-snapshot workflow as tests/unit/test_alert_render.py (``UPDATE_SNAPSHOTS=1``); the
snapshots of single-account alerts there must stay byte-identical.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

from pinwatch.alerts.policy import GONE_STATUS, AlertState, AlertStatus, Transition, evaluate
from pinwatch.alerts.render import Alert, RenderSettings, render_slack, render_sns, render_text
from pinwatch.check import Check, Dispatcher
from pinwatch.findings import Finding, ProxyReport, Severity
from pinwatch.org import OrgCheck, TargetListing
from pinwatch.scope import Scope
from tests.unit.test_alert_render import (
    CRITICAL_FORECAST,
    LOGGING_OFF,
    MIN,
    NOW,
    PINNED_WARNING,
    POLICY,
    SETTINGS,
    active,
    assert_snapshot,
    readable_sns,
    report,
)
from tests.unit.test_check_orchestration import RecordingDispatcher

SCOPE = Scope("111111111111", "ap-southeast-2")  # not SETTINGS.region (eu-west-1): the proxy's own Region counts
KEY = SCOPE.key("orders-proxy")
CHAT = RenderSettings(region=SETTINGS.region, dashboard_url=SETTINGS.dashboard_url, chat_notifications=True)


def scoped_alert(proxy_report: ProxyReport, states: dict[str, AlertState] | None = None) -> Alert:
    plan = evaluate(proxy_report.proxy, proxy_report.findings, states or {}, NOW, POLICY, ["slack", "sns"])
    return Alert.from_decisions(proxy_report, plan.for_channel("slack"), NOW)


def critical_new(key: str = KEY) -> Alert:
    return scoped_alert(report(CRITICAL_FORECAST, PINNED_WARNING, LOGGING_OFF, proxy=key))


def resolved() -> Alert:
    ok = Finding(KEY, "pinned_share", Severity.OK, "3% of DB connections are pinned (1 of 38).")
    state = active("pinned_share", Severity.CRITICAL, since_min=42, notified_min=10, streak=2)
    return scoped_alert(report(ok, proxy=KEY, exhaustion_eta_minutes=None), {"pinned_share": replace(state, proxy=KEY)})


SCENARIOS = {"critical_new": critical_new, "resolved": resolved}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_given_an_org_proxy_when_rendered_for_slack_then_it_matches_the_reviewed_snapshot(scenario: str) -> None:
    assert_snapshot(f"alert_org_{scenario}.slack.json", render_slack(SCENARIOS[scenario](), SETTINGS))


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_given_an_org_proxy_when_rendered_for_sns_then_it_matches_the_reviewed_snapshot(scenario: str) -> None:
    payload = render_sns(SCENARIOS[scenario](), SETTINGS)
    assert_snapshot(f"alert_org_{scenario}.sns.json", readable_sns(payload))
    assert_snapshot(f"alert_org_{scenario}.email.txt", json.loads(payload["Message"])["email"] + "\n")


def test_given_an_org_proxy_and_chat_notifications_when_rendered_then_it_matches_the_reviewed_snapshot() -> None:
    assert_snapshot("alert_org_critical_new.sns-chat.json", readable_sns(render_sns(critical_new(), CHAT)))


# ---------------------------------------------------------------------------------------------
# What the snapshots should not be the only guard of


def test_given_an_org_proxy_when_rendered_then_every_channel_names_the_proxy_its_account_and_region() -> None:
    alert = critical_new()
    slack = render_slack(alert, SETTINGS)
    assert (
        slack["blocks"][0]["text"]["text"]
        == "🔴 CRITICAL · orders-proxy (111111111111, ap-southeast-2) · pool exhausted in ~14 min"
    )
    fields = [f["text"] for f in slack["blocks"][1]["fields"]]
    assert fields[:2] == ["*Account*\n111111111111", "*Region*\nap-southeast-2"]
    assert "orders-proxy (111111111111, ap-southeast-2)" in slack["text"]

    sns = render_sns(alert, SETTINGS)
    assert sns["Subject"] == "CRITICAL - orders-proxy (111111111111, ap-southeast-2) - pool exhausted in ~14 min"
    attributes = {name: a["StringValue"] for name, a in sns["MessageAttributes"].items()}
    assert attributes == {
        "severity": "critical",
        "proxy": "orders-proxy",
        "account": "111111111111",
        "region": "ap-southeast-2",
        "transition": "new",
    }
    message = json.loads(sns["Message"])
    assert "Proxy orders-proxy in account 111111111111, Region ap-southeast-2" in message["email"]
    assert message["sms"].startswith("CRITICAL orders-proxy (111111111111, ap-southeast-2)")


def test_given_an_org_proxy_when_linked_then_the_console_opens_the_proxys_own_region_with_its_bare_name() -> None:
    text = render_text(critical_new(), SETTINGS)
    assert (
        "RDS console: https://console.aws.amazon.com/rds/home?region=ap-southeast-2#proxy-details:id=orders-proxy"
        in text
    )
    assert "region=eu-west-1" not in text
    # Without a deployment Region (the CLI), the scope still knows where the proxy is.
    assert "region=ap-southeast-2#proxy-details:id=orders-proxy" in render_text(critical_new(), RenderSettings())


def test_given_two_accounts_with_the_same_proxy_name_when_sent_to_chat_then_they_get_separate_threads() -> None:
    def schema(key: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(json.loads(render_sns(critical_new(key), CHAT)["Message"])["default"])
        return found

    first, second = schema(KEY), schema(Scope("222222222222", "ap-southeast-2").key("orders-proxy"))
    assert first["metadata"]["threadId"] == KEY
    assert first["metadata"]["threadId"] != second["metadata"]["threadId"]
    assert first["id"] != second["id"]
    context = second["metadata"]["additionalContext"]
    assert (context["proxy"], context["account"], context["region"]) == (
        "orders-proxy",
        "222222222222",
        "ap-southeast-2",
    )
    assert {"orders-proxy", "222222222222", "ap-southeast-2"} <= set(second["content"]["keywords"])


def test_given_a_single_account_proxy_when_rendered_for_sns_then_there_are_no_account_or_region_attributes() -> None:
    alert = scoped_alert(report(CRITICAL_FORECAST))
    assert set(render_sns(alert, SETTINGS)["MessageAttributes"]) == {"severity", "proxy", "transition"}


@pytest.mark.parametrize("region", ["ap-southeast-2", "us-gov-west-1", "eu-central-1"])
@pytest.mark.parametrize("name_length", [1, 30, 50, 63])
def test_given_any_name_length_in_an_org_when_made_an_sns_subject_then_account_and_region_survive_under_100(
    region: str, name_length: int
) -> None:
    name = "p" + "x" * (name_length - 1)
    for alert in (critical_new(Scope("123456789012", region).key(name)), resolved()):
        subject = render_sns(alert, SETTINGS)["Subject"]
        assert len(subject) < 100
        assert all(" " <= ch <= "~" for ch in subject)
        assert subject.startswith(("CRITICAL - p", "RESOLVED - orders-proxy"))
        assert re.search(r"\((123456789012, " + region + r"|111111111111, ap-southeast-2)\)", subject)


def test_given_a_long_name_in_an_org_when_made_an_sns_subject_then_the_title_goes_first_then_the_name_is_cut() -> None:
    where = "(123456789012, ap-southeast-2)"
    fits = "p" + "x" * 39  # 40 characters: the name whole, the title cut
    subject = render_sns(critical_new(Scope("123456789012", "ap-southeast-2").key(fits)), SETTINGS)["Subject"]
    assert subject == f"CRITICAL - {fits} {where} - pool exhaus..."
    assert len(subject) == 99

    longest = "p" + "x" * 62  # 63, the most RDS allows: no room for a title, and the name is cut
    subject = render_sns(critical_new(Scope("123456789012", "ap-southeast-2").key(longest)), SETTINGS)["Subject"]
    assert subject == f"CRITICAL - {longest[:54]}... {where}"
    assert len(subject) == 99


def test_given_a_name_carrying_slack_markup_when_rendered_then_it_is_inert_in_every_mrkdwn_surface() -> None:
    # Proxy names cannot hold these characters on AWS; a forged key from outside must still stay inert.
    alert = critical_new(SCOPE.key("<!channel>&`x`"))
    slack = render_slack(alert, RenderSettings(mention_on_critical="none"))
    assert "<!channel>" not in slack["text"]
    assert "&lt;!channel&gt;&amp;" in slack["text"]
    schema = json.loads(json.loads(render_sns(alert, CHAT)["Message"])["default"])
    for text in (schema["content"]["title"], schema["metadata"]["summary"], *schema["content"]["keywords"]):
        assert "<!channel>" not in text
        assert "`" not in text


def test_given_an_org_proxy_that_is_gone_when_resolved_then_the_message_says_which_account_and_region() -> None:
    state = AlertState(
        proxy=KEY,
        rule="pinned_share",
        status=AlertStatus.ACTIVE,
        severity=Severity.WARNING,
        first_active_ms=NOW - 30 * MIN,
        last_notified_ms=NOW - 30 * MIN,
        last_notified_severity=Severity.WARNING,
        last_transition=Transition.NEW,
        summary="64% of DB connections are pinned (61 of 95).",
    )
    gone = report(proxy=KEY, status=GONE_STATUS, exhaustion_eta_minutes=None)
    plan = evaluate(KEY, (), {"pinned_share": state}, NOW, POLICY, ["sns"], proxy_gone=True)
    text = render_text(Alert.from_decisions(gone, plan.for_channel("sns"), NOW), SETTINGS)
    assert "orders-proxy is gone (no longer found in account 111111111111, ap-southeast-2)" in text


def test_given_a_whole_member_finding_when_rendered_then_it_names_the_account_and_region_and_no_proxy_link() -> None:
    # The contract's key for a member whose read role is missing or denied: <account>:<region>:*.
    key = SCOPE.key("*")
    unreachable = Finding(key, "member_unreachable", Severity.WARNING, "cannot assume pinwatch-member-reader")
    member = report(unreachable, proxy=key, exhaustion_eta_minutes=None, figures={}, top_reasons_last_hour=(), hints={})
    alert = scoped_alert(member)

    sns = render_sns(alert, SETTINGS)
    assert sns["Subject"] == "WARNING - all proxies (111111111111, ap-southeast-2) - member account unreachable"
    text = json.loads(sns["Message"])["email"]
    assert "Every proxy in account 111111111111, Region ap-southeast-2" in text
    assert "RDS console" not in text
    header = render_slack(alert, SETTINGS)["blocks"][0]["text"]["text"]
    assert header == "🟠 WARNING · all proxies (111111111111, ap-southeast-2) · member account unreachable"


def test_given_a_member_no_longer_enrolled_when_its_open_alerts_close_then_each_says_so_once() -> None:
    # The gone report as the organization's sweep makes it for a member its StackSet no longer lists.
    dispatcher = RecordingDispatcher(alerting=frozenset({KEY, SCOPE.key("*")}))
    OrgCheck(targets=Listed(), factory=_no_member, role_name="pinwatch-member-reader", dispatcher=dispatcher).run(NOW)
    gone = {r.proxy: r for r, _, _ in dispatcher.calls}
    unreachable = AlertState(
        proxy=SCOPE.key("*"),
        rule="member_unreachable",
        status=AlertStatus.ACTIVE,
        severity=Severity.WARNING,
        first_active_ms=NOW - 30 * MIN,
        last_notified_ms=NOW - 30 * MIN,
        last_notified_severity=Severity.WARNING,
        last_transition=Transition.NEW,
        summary="cannot assume pinwatch-member-reader",
    )
    pinned = replace(unreachable, proxy=KEY, rule="pinned_share", summary="64% of DB connections are pinned.")
    texts = {}
    for key, state in ((SCOPE.key("*"), unreachable), (KEY, pinned)):
        plan = evaluate(key, gone[key].findings, {state.rule: state}, NOW, POLICY, ["sns"], proxy_gone=True)
        assert [d.transition for d in plan.decisions] == [Transition.RESOLVED]
        texts[key] = render_text(Alert.from_decisions(gone[key], plan.for_channel("sns"), NOW), SETTINGS)
        again = evaluate(
            key, gone[key].findings, {state.rule: plan.decisions[0].after}, NOW, POLICY, ["sns"], proxy_gone=True
        )
        assert [d.transition for d in again.decisions] == [None]  # closed once: the next sweep sends nothing
    enrolled = "account 111111111111 in ap-southeast-2 is no longer enrolled"
    assert enrolled in texts[SCOPE.key("*")]
    assert "* is gone" not in texts[SCOPE.key("*")]
    assert f"orders-proxy is no longer watched: {enrolled}" in texts[KEY]
    assert "no longer found" not in texts[KEY]


class Listed:
    def listing(self) -> TargetListing:
        return TargetListing((), current=True)


def _no_member(scope: Scope, dispatcher: Dispatcher | None) -> Check:
    raise AssertionError(f"{scope} is not listed: nothing to check")
