"""Alert rendering: Slack Block Kit and SNS within their limits, and reviewed snapshots of both.

Snapshots live in tests/snapshots/. After an intended change to a message, rewrite them with
``UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/unit/test_alert_render.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinwatch.alerts.policy import AlertState, AlertStatus, PolicySettings, Transition, evaluate
from pinwatch.alerts.render import (
    SLACK_FIELD_MAX,
    SLACK_HEADER_MAX,
    SLACK_MAX_BLOCKS,
    SLACK_SECTION_MAX,
    Alert,
    RenderSettings,
    render_slack,
    render_sns,
    render_text,
    sns_subject,
    utf16_len,
)
from pinwatch.findings import Finding, ProxyReport, Severity
from pinwatch.records import EngineFamily, ReasonCount

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"
PROXY = "orders-proxy"
MIN = 60_000
NOW = 1_764_102_660_000  # 2025-11-25 20:31 UTC
SETTINGS = RenderSettings(
    region="eu-west-1", dashboard_url="https://console.aws.amazon.com/cloudwatch/home#dashboards:name=pinwatch"
)
POLICY = PolicySettings(renotify_ms=60 * MIN, resolve_after_checks=3)


def report(*findings: Finding, **overrides: Any) -> ProxyReport:
    base: dict[str, Any] = {
        "proxy": PROXY,
        "engine": EngineFamily.POSTGRESQL,
        "status": "available",
        "findings": findings,
        "figures": {
            "ClientConnections": 412.0,
            "DatabaseConnections": 95.0,
            "MaxDatabaseConnectionsAllowed": 100.0,
            "DatabaseConnectionsCurrentlySessionPinned": 61.0,
            "DatabaseConnectionsCurrentlyInTransaction": 7.0,
            "DatabaseConnectionsBorrowLatency": 182_000.0,
        },
        "debug_logging": False,
        "exhaustion_eta_minutes": 13.6,
        "top_reasons_last_hour": (
            ReasonCount(
                PROXY,
                "session_settings",
                1834,
                example_digest="set search_path = $1; set names $2;",
                reason_text="SQL changed session settings that the proxy doesn't track.",
            ),
            ReasonCount(PROXY, "prepared_statement", 377, reason_text="A parse message was detected."),
            ReasonCount(
                PROXY,
                "large_statement",
                12,
                example_digest="select * from orders where id in ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                reason_text="The connection ran a SQL query which exceeded the 16384 byte limit.",
            ),
        ),
        "hints": {
            "session_settings": (
                "`SET search_path` pins on PostgreSQL: set it with `ALTER ROLE … SET search_path`, or in the "
                "proxy's initialization query (InitQuery) where your proxy supports it.",
                "Prisma sends `SET search_path` for `schema=` in the URL: drop it and set the role's search_path.",
            ),
            "prepared_statement": (
                "PostgreSQL: keep the driver's statement cache on; what still pins is SQL-level "
                "`DEALLOCATE ALL`/`DISCARD ALL` from a driver's or pool's cleanup.",
            ),
            "large_statement": ("Batch huge `IN (...)` lists; statements over 16 KB always pin.",),
        },
        "checked_at_ms": NOW,
    }
    base.update(overrides)
    return ProxyReport(**base)


def finding(rule: str, severity: Severity, summary: str, *details: str) -> Finding:
    return Finding(PROXY, rule, severity, summary, details=details)


CRITICAL_FORECAST = finding(
    "exhaustion_forecast",
    Severity.CRITICAL,
    "Pool exhausted in ~14 min at +3.1 connections/min (95 of 100 in use).",
    "Driven by pinned connections, which rose from 12 to 61 in 30 min.",
)
PINNED_WARNING = finding("pinned_share", Severity.WARNING, "64% of DB connections are pinned (61 of 95).")
PINNED_CRITICAL = finding("pinned_share", Severity.CRITICAL, "64% of DB connections are pinned (61 of 95).")
LOGGING_OFF = finding(
    "enhanced_logging_off",
    Severity.INFO,
    "Enhanced logging is off: reasons and digests may be missing. Turn it on with "
    "`aws rds modify-db-proxy --db-proxy-name orders-proxy --debug-logging` (it switches itself off after 24 h).",
)


# What the check says about a pool that is too small (pinwatch.diagnose wording), on a proxy that also pins a little.
UNDERSIZED = finding(
    "undersized_pool",
    Severity.CRITICAL,
    "the pool is too small, not pinned: 59 of 60 allowed connections in use (98%), borrowing takes 3400 ms, "
    "2% of the connections in use pinned: raise MaxConnectionsPercent (now 20%) or the database's max_connections",
    "Raise MaxConnectionsPercent (now 20%) on the proxy's target group; AWS recommends at least 30% headroom above "
    "the peak in use, e.g. to 26%: aws rds modify-db-proxy-target-group --db-proxy-name orders-proxy "
    "--target-group-name default --connection-pool-config MaxConnectionsPercent=26",
    "Size the database's max_connections: the pool may use MaxConnectionsPercent of it, and a small instance class "
    "has a small default max_connections (a larger class, or a higher max_connections parameter, raises the pool's "
    "ceiling)",
    "Review ConnectionBorrowTimeout (now 120 s): clients queue up to that long for a connection before they get a "
    "timeout error; a shorter one fails fast instead of piling up requests",
)
UNDERSIZED_FIGURES = {
    "ClientConnections": 240.0,
    "DatabaseConnections": 60.0,
    "DatabaseConnectionsCurrentlyBorrowed": 59.0,
    "MaxDatabaseConnectionsAllowed": 60.0,
    "DatabaseConnectionsCurrentlySessionPinned": 1.0,
    "DatabaseConnectionsCurrentlyInTransaction": 12.0,
    "DatabaseConnectionsBorrowLatency": 3_400_000.0,
}


def active(rule: str, severity: Severity, *, since_min: int, notified_min: int, streak: int = 0) -> AlertState:
    return AlertState(
        proxy=PROXY,
        rule=rule,
        status=AlertStatus.ACTIVE,
        severity=severity,
        first_active_ms=NOW - since_min * MIN,
        last_notified_ms=NOW - notified_min * MIN,
        last_notified_severity=severity,
        last_transition=Transition.NEW,
        healthy_streak=streak,
        summary="64% of DB connections are pinned (61 of 95).",
        version=4,
    )


def alert_for(proxy_report: ProxyReport, states: dict[str, AlertState] | None = None) -> Alert:
    plan = evaluate(PROXY, proxy_report.findings, states or {}, NOW, POLICY, ["slack", "sns"])
    return Alert.from_decisions(proxy_report, plan.for_channel("slack"), NOW)


SCENARIOS: dict[str, Any] = {
    # a pool too small for its load: its own "what to change" section leads, before the pinning hints
    "undersized_new": lambda: alert_for(
        report(UNDERSIZED, LOGGING_OFF, exhaustion_eta_minutes=None, figures=UNDERSIZED_FIGURES)
    ),
    # new critical forecast + new pinned warning in one message, with an info note
    "critical_new": lambda: alert_for(report(CRITICAL_FORECAST, PINNED_WARNING, LOGGING_OFF)),
    "escalated": lambda: alert_for(
        report(PINNED_CRITICAL, exhaustion_eta_minutes=None),
        {"pinned_share": active("pinned_share", Severity.WARNING, since_min=25, notified_min=25)},
    ),
    "renotify": lambda: alert_for(
        report(PINNED_WARNING, exhaustion_eta_minutes=None),
        {"pinned_share": active("pinned_share", Severity.WARNING, since_min=125, notified_min=61)},
    ),
    "resolved": lambda: alert_for(
        report(
            finding("pinned_share", Severity.OK, "3% of DB connections are pinned (1 of 38)."),
            exhaustion_eta_minutes=None,
            figures={
                "ClientConnections": 398.0,
                "DatabaseConnections": 38.0,
                "MaxDatabaseConnectionsAllowed": 100.0,
                "DatabaseConnectionsCurrentlySessionPinned": 1.0,
                "DatabaseConnectionsCurrentlyInTransaction": 5.0,
            },
        ),
        {"pinned_share": active("pinned_share", Severity.CRITICAL, since_min=42, notified_min=10, streak=2)},
    ),
}


def assert_snapshot(name: str, rendered: Any) -> None:
    text = rendered if isinstance(rendered, str) else json.dumps(rendered, indent=2, ensure_ascii=False) + "\n"
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}; run with UPDATE_SNAPSHOTS=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} changed; if intended, rerun with UPDATE_SNAPSHOTS=1"


def readable_sns(payload: dict[str, Any]) -> dict[str, Any]:
    """The publish request with its JSON-in-JSON message unpacked, for a reviewable snapshot."""
    message = json.loads(payload["Message"])
    if message["default"].startswith("{"):
        message["default"] = json.loads(message["default"])
    return {**payload, "Message": message}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_given_fixed_report_when_rendered_for_slack_then_it_matches_the_reviewed_snapshot(scenario: str) -> None:
    assert_snapshot(f"alert_{scenario}.slack.json", render_slack(SCENARIOS[scenario](), SETTINGS))


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_given_fixed_report_when_rendered_for_sns_then_it_matches_the_reviewed_snapshot(scenario: str) -> None:
    payload = render_sns(SCENARIOS[scenario](), SETTINGS)
    assert_snapshot(f"alert_{scenario}.sns.json", readable_sns(payload))
    assert_snapshot(f"alert_{scenario}.email.txt", json.loads(payload["Message"])["email"] + "\n")


def test_given_chat_notifications_when_rendered_for_sns_then_it_matches_the_reviewed_snapshot() -> None:
    chat = RenderSettings(region=SETTINGS.region, dashboard_url=SETTINGS.dashboard_url, chat_notifications=True)
    assert_snapshot("alert_critical_new.sns-chat.json", readable_sns(render_sns(SCENARIOS["critical_new"](), chat)))


# ---------------------------------------------------------------------------------------------
# Behaviour the snapshots should not be the only guard of


def test_given_new_critical_when_rendered_then_slack_mentions_here_in_text_and_first_section() -> None:
    payload = render_slack(SCENARIOS["critical_new"](), SETTINGS)
    assert payload["text"].startswith("<!here> ")
    assert payload["blocks"][1]["text"]["text"].startswith("<!here>")
    assert payload["blocks"][0]["text"]["text"] == "🔴 CRITICAL · orders-proxy · pool exhausted in ~14 min"


@pytest.mark.parametrize(
    ("scenario", "mention", "expected"),
    [
        ("critical_new", "channel", "<!channel>"),
        ("critical_new", "none", None),
        ("escalated", "here", "<!here>"),
        ("renotify", "here", None),  # reminders do not page
        ("resolved", "here", None),
    ],
)
def test_given_mention_setting_when_rendered_then_only_new_or_escalated_criticals_page(
    scenario: str, mention: Any, expected: str | None
) -> None:
    payload = render_slack(SCENARIOS[scenario](), RenderSettings(mention_on_critical=mention))
    mentions = re.findall(r"<!(?:here|channel)>", json.dumps(payload))
    assert mentions == ([expected, expected] if expected else [])


def test_given_resolution_when_rendered_then_it_is_green_says_what_resolved_and_how_long_it_lasted() -> None:
    payload = render_slack(SCENARIOS["resolved"](), SETTINGS)
    assert payload["blocks"][0]["text"]["text"] == "✅ RESOLVED · orders-proxy · connections pinned"
    assert "resolved after 42 min active, was critical" in payload["blocks"][1]["text"]["text"]
    sns = render_sns(SCENARIOS["resolved"](), SETTINGS)
    assert sns["MessageAttributes"]["transition"]["StringValue"] == "resolved"
    assert sns["MessageAttributes"]["severity"]["StringValue"] == "critical"  # how bad it was, for filters


def test_given_chat_notifications_when_rendered_then_default_is_the_q_schema_and_email_stays_plain_text() -> None:
    alert = SCENARIOS["critical_new"]()
    message = json.loads(render_sns(alert, RenderSettings(chat_notifications=True))["Message"])
    schema = json.loads(message["default"])
    assert (schema["version"], schema["source"]) == ("1.0", "custom")
    assert schema["metadata"]["threadId"] == PROXY
    assert schema["metadata"]["enableCustomActions"] is False
    assert schema["content"]["title"].startswith("🔴 CRITICAL")
    assert schema["content"]["nextSteps"]
    assert message["email"] == render_text(alert, RenderSettings())
    assert json.loads(render_sns(alert, RenderSettings())["Message"])["default"] == message["email"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("🔴 CRITICAL · orders-proxy", "CRITICAL orders-proxy"),
        ("line one\nline two\r\tthree", "line one line two three"),
        ("Überlast – café", "Uberlast cafe"),
        ("x" * 300, "x" * 96 + "..."),
        ("🔥🔥", "pinwatch alert"),
    ],
)
def test_given_any_text_when_made_an_sns_subject_then_it_is_one_ascii_line_under_100_chars(
    raw: str, expected: str
) -> None:
    assert sns_subject(raw) == expected


# ---------------------------------------------------------------------------------------------
# Limits hold for any input (hypothesis)

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=400)
nasty = st.sampled_from(["&", "<", ">", "`", "<https://x|y>", "&amp;", "\n", "🔥", "*", "_"])
long_text = st.lists(st.one_of(text, nasty), max_size=12).map("".join)
reason = st.builds(
    ReasonCount,
    proxy=st.just(PROXY),
    reason=st.text(min_size=1, max_size=80),
    count=st.integers(0, 10**9),
    example_digest=st.none() | long_text,
    reason_text=st.none() | long_text,
)
any_finding = st.builds(
    Finding,
    proxy=st.just(PROXY),
    rule=st.sampled_from(["pinned_share", "pool_pressure", "exhaustion_forecast", "x" * 200, "enhanced_logging_off"]),
    severity=st.sampled_from(list(Severity)),
    summary=long_text,
    details=st.lists(long_text, max_size=8).map(tuple),
    insufficient_data=st.booleans(),
)
any_report = st.builds(
    ProxyReport,
    proxy=st.text(min_size=1, max_size=300),
    engine=st.none() | st.sampled_from(list(EngineFamily)),
    status=st.just("available"),
    findings=st.lists(any_finding, min_size=1, max_size=12).map(tuple),
    figures=st.dictionaries(
        st.sampled_from(["ClientConnections", "DatabaseConnections", "MaxDatabaseConnectionsAllowed"]),
        st.none() | st.floats(0, 1e9),
    ),
    exhaustion_eta_minutes=st.none() | st.floats(0, 1e6),
    top_reasons_last_hour=st.lists(reason, max_size=8).map(tuple),
    hints=st.dictionaries(st.text(max_size=80), st.lists(long_text, max_size=5).map(tuple), max_size=8),
    checked_at_ms=st.integers(0, 4_000_000_000_000),
)


def alerts_of(proxy_report: ProxyReport) -> Alert | None:
    plan = evaluate(proxy_report.proxy, proxy_report.findings, {}, NOW, POLICY, ["slack"])
    decisions = plan.for_channel("slack")
    return Alert.from_decisions(proxy_report, decisions, NOW) if decisions else None


def mrkdwn_texts(payload: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for block in payload["blocks"]:
        if block["type"] == "section":
            found.append(("section", block["text"]["text"]))
            found += [("field", f["text"]) for f in block.get("fields", [])]
        elif block["type"] == "context":
            assert len(block["elements"]) <= 10
            found += [("section", e["text"]) for e in block["elements"]]
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(any_report)
def test_property_slack_payload_stays_within_block_kit_limits_and_never_breaks_markup(
    proxy_report: ProxyReport,
) -> None:
    alert = alerts_of(proxy_report)
    if alert is None:
        return
    payload = render_slack(alert, SETTINGS)
    assert payload["text"].strip()
    assert utf16_len(payload["text"]) <= 3000
    assert not re.search(r"&(?!amp;|lt;|gt;)", payload["text"])
    assert re.sub(r"^<!(here|channel)> ", "", payload["text"]).count("<") == 0
    assert len(payload["blocks"]) <= SLACK_MAX_BLOCKS
    assert utf16_len(payload["blocks"][0]["text"]["text"]) <= SLACK_HEADER_MAX
    for kind, body in mrkdwn_texts(payload):
        assert utf16_len(body) <= (SLACK_FIELD_MAX if kind == "field" else SLACK_SECTION_MAX)
        assert not re.search(r"&(?!amp;|lt;|gt;)", body), "a cut or unescaped entity"
        for line in body.split("\n"):
            assert line.count("`") % 2 == 0, "an unbalanced code span"
    for block in payload["blocks"]:
        assert len(block.get("fields", [])) <= 10


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(any_report, st.booleans())
def test_property_sns_request_stays_within_sns_limits(proxy_report: ProxyReport, chat: bool) -> None:
    alert = alerts_of(proxy_report)
    if alert is None:
        return
    payload = render_sns(alert, RenderSettings(chat_notifications=chat))
    subject = payload["Subject"]
    assert 0 < len(subject) < 100
    assert all(" " <= ch <= "~" for ch in subject)
    assert len(payload["Message"].encode("utf-8")) <= 256 * 1024
    message = json.loads(payload["Message"])
    assert {"default", "email", "sms"} <= message.keys()
    assert payload["MessageAttributes"]["proxy"]["StringValue"] == proxy_report.proxy
    assert payload["MessageAttributes"]["severity"]["StringValue"] in {"warning", "critical", "info"}


@pytest.mark.parametrize("chat", [False, True])
def test_given_a_huge_report_when_rendered_for_sns_then_the_message_is_shrunk_under_256_kb(chat: bool) -> None:
    huge = finding("pinned_share", Severity.CRITICAL, "é" * 300_000, *("detail " * 5000 for _ in range(20)))
    payload = render_sns(alert_for(report(huge)), RenderSettings(chat_notifications=chat))
    assert len(payload["Message"].encode("utf-8")) <= 256 * 1024
    message = json.loads(payload["Message"])
    assert message["email"].startswith("CRITICAL - orders-proxy - ")
    assert message["email"].endswith("…")


# ---------------------------------------------------------------------------------------------
# The undersized pool: its fixes in a section of their own, ahead of the pinning advice


def test_given_an_undersized_pool_when_rendered_then_every_channel_leads_with_the_pool_size_fix() -> None:
    alert = SCENARIOS["undersized_new"]()
    slack = render_slack(alert, SETTINGS)
    sections = [b["text"]["text"] for b in slack["blocks"] if b["type"] == "section"]
    pool = next(i for i, text in enumerate(sections) if text.startswith("*What to change: pool size*"))
    hints = next(i for i, text in enumerate(sections) if text.startswith("*What to change*"))
    assert pool < hints
    assert "MaxConnectionsPercent=26" in sections[pool]
    # Shown once, in its section, not again under the finding.
    assert sum("MaxConnectionsPercent=26" in text for text in sections) == 1

    text = render_text(alert, SETTINGS)
    assert text.index("What to change: pool size") < text.index("What to change\n")
    assert text.count("MaxConnectionsPercent=26") == 1
    assert re.search(r"DB connections in use / max +59 / 60 \(98%\)", text)

    chat = RenderSettings(region=SETTINGS.region, chat_notifications=True)
    default = json.loads(json.loads(render_sns(alert, chat)["Message"])["default"])
    assert default["content"]["nextSteps"][0].startswith("Raise MaxConnectionsPercent (now 20%)")
    assert "*What to change: pool size*" in default["content"]["description"]


def test_given_an_undersized_pool_dominated_by_pinning_when_rendered_then_there_is_no_pool_size_section() -> None:
    info = finding("undersized_pool", Severity.INFO, "the pool is 98% used, but pinning dominates", "Raise it")
    alert = alert_for(report(PINNED_CRITICAL, info, exhaustion_eta_minutes=None))
    assert "What to change: pool size" not in render_text(alert, SETTINGS)


def test_given_idle_pooled_connections_when_numbers_are_rendered_then_they_are_shown_apart_from_those_in_use() -> None:
    figures = {**UNDERSIZED_FIGURES, "DatabaseConnections": 45.0, "DatabaseConnectionsCurrentlyBorrowed": 2.0}
    text = render_text(alert_for(report(UNDERSIZED, figures=figures, exhaustion_eta_minutes=None)), SETTINGS)
    assert re.search(r"DB connections in use / max +2 / 60 \(3%\)", text)
    assert re.search(r"DB connections open +45 \(43 idle in the pool\)", text)


def test_given_the_docs_rendered_alert_when_compared_then_it_is_the_critical_snapshot_verbatim() -> None:
    # docs/alerts.md shows a rendered alert; it must be what the renderer produces, not a hand copy.
    page = (SNAPSHOTS.parent.parent / "docs" / "alerts.md").read_text(encoding="utf-8")
    section = page[page.index("## A rendered alert") :]
    block = section[section.index("```text\n") + len("```text\n") :]
    block = block[: block.index("\n```")]
    assert block == (SNAPSHOTS / "alert_critical_new.email.txt").read_text(encoding="utf-8").rstrip("\n")
