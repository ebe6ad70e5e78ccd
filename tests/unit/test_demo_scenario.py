"""The demo's pure parts: the incident it replays, the functions' environment from the template, Slack rendering."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from pinwatch.alerts.policy import DeliveryStatus, PolicySettings, evaluate, settle
from pinwatch.cli.demo import mrkdwn, slack_panel
from pinwatch.config import CheckConfig, IngestConfig, Thresholds
from pinwatch.diagnose import EXHAUSTION_FORECAST, PINNED_SHARE, diagnose
from pinwatch.discovery import ProxyInfo
from pinwatch.findings import Severity
from pinwatch.local.demo import DEMO_OVERRIDES, DemoStack, Endpoints, SlackMessage
from pinwatch.local.incident import MIN_MINUTES, Incident
from pinwatch.local.template import load_template
from pinwatch.metrics import MAX_ALLOWED, METRICS, PINNED, ProxyMetrics
from pinwatch.parse import parse_message
from pinwatch.records import EngineFamily, Kind
from pinwatch.timebase import MINUTE_MS

START = 1_795_600_800_000
WINDOW = 30


def test_given_the_incident_when_every_line_is_parsed_then_the_parser_files_it_as_the_scenario_says() -> None:
    incident = Incident("orders-db", START, 30)
    verdicts = [(parse_message(line.message, line.timestamp_ms), line) for line in incident.lines]
    assert [(r.kind, r.reason) for r, _ in verdicts] == [(line.kind, line.reason) for _, line in verdicts]
    kinds = Counter(line.kind for line in incident.lines)
    assert min(kinds[Kind.PINNED], kinds[Kind.WOULD_PIN], kinds[Kind.OTHER]) > 0
    assert kinds[Kind.UNPARSED] == 1
    assert {line.reason for line in incident.lines if line.kind is Kind.PINNED} == {
        "session_settings",
        "prepared_statement",
        "large_statement",
    }


def test_given_the_incident_when_built_twice_then_it_is_the_same_and_event_ids_are_unique_and_in_time_order() -> None:
    one, two = Incident("orders-db", START, 20), Incident("orders-db", START, 20)
    assert one.lines == two.lines
    ids = [line.event_id for line in one.lines]
    assert len(set(ids)) == len(ids)
    for minute in one:
        for lines in minute.by_stream().values():
            assert [line.timestamp_ms for line in lines] == sorted(line.timestamp_ms for line in lines)
            assert all(minute.start_ms <= line.timestamp_ms < minute.end_ms for line in lines)


def test_given_the_fix_when_it_lands_then_the_prisma_set_stops_and_pinned_connections_drain() -> None:
    incident = Incident("orders-db", START, 30)
    settings_minutes = {line.timestamp_ms // MINUTE_MS for line in incident.lines if line.reason == "session_settings"}
    assert max(settings_minutes) < incident[incident.fix].start_ms // MINUTE_MS
    assert incident[incident.fix - 1].metrics[PINNED] > 0.7 * incident[incident.fix - 1].metrics[MAX_ALLOWED]
    assert all(incident[m].metrics[PINNED] < Thresholds().pinned_min_connections for m in range(incident.fix + 2, 30))


def test_given_too_few_minutes_when_an_incident_is_built_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match=f"at least {MIN_MINUTES} minutes"):
        Incident("orders-db", START, MIN_MINUTES - 1)


def _window(incident: Incident, check_ms: int) -> ProxyMetrics:
    end = check_ms - check_ms % MINUTE_MS
    stamps = tuple(end - (WINDOW - i) * MINUTE_MS for i in range(WINDOW))
    series: dict[str, list[float | None]] = {spec.name: [] for spec in METRICS}
    for stamp in stamps:
        index = (stamp - incident.start_ms) // MINUTE_MS
        values = incident[index].metrics if 0 <= index < len(incident) else {}
        for name, column in series.items():
            column.append(values.get(name))
    return ProxyMetrics("orders-db", stamps, {name: tuple(v) for name, v in series.items()})


@pytest.mark.parametrize("minutes", [MIN_MINUTES, 30, 45])
def test_given_the_incident_when_diagnosed_every_minute_then_it_warns_turns_critical_with_an_eta_and_resolves(
    minutes: int,
) -> None:
    """The scenario tells the story the demo promises with the default thresholds, whatever its length."""
    incident = Incident("orders-db", START, minutes)
    proxy = ProxyInfo("orders-db", EngineFamily.POSTGRESQL, "available", debug_logging=True)
    settings = PolicySettings.from_minutes(int(DEMO_OVERRIDES["RENOTIFY_MINUTES"]), 3)
    states: dict = {}
    story: list[tuple[int, str, str, Severity]] = []
    for minute in incident:
        now = minute.end_ms + 5_000
        diagnosis = diagnose(proxy, _window(incident, now), Thresholds())
        plan = evaluate("orders-db", diagnosis.findings, states, now, settings, ["slack"])
        for state in settle(plan, {"slack": DeliveryStatus.ACCEPTED}):
            states[state.rule] = state
        story += [
            (minute.index, d.rule, d.transition.value, d.after.severity)
            for d in plan.decisions
            if d.transition is not None
        ]
        if minute.index == incident.fix - 1:
            assert diagnosis.exhaustion_eta_minutes is not None
            assert diagnosis.exhaustion_eta_minutes < Thresholds().exhaustion_critical_minutes

    first_new = min(m for m, _, t, _ in story if t == "new")
    critical = [(m, rule) for m, rule, t, s in story if s is Severity.CRITICAL and t in ("new", "escalated")]
    assert first_new < min(m for m, _ in critical) < incident.fix
    assert {PINNED_SHARE, EXHAUSTION_FORECAST} <= {rule for _, rule in critical}
    opened = {rule for _, rule, t, _ in story if t == "new"}
    resolved = {rule for m, rule, t, _ in story if t == "resolved" and m >= incident.fix}
    assert opened == resolved
    assert all(not state.active for state in states.values())


def _stack() -> DemoStack:
    endpoints = Endpoints("http://127.0.0.1:5000", "http://127.0.0.1:8000", "DynamoDB Local")
    return DemoStack(
        endpoints=endpoints,
        proxy="orders-db",
        table="pinwatch-demo-abc",
        topic_arn="arn:aws:sns:us-east-1:123456789012:pinwatch-demo-alerts-abc",
        queue_url="http://127.0.0.1:5000/123456789012/q",
        secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:pinwatch-demo/slack-AbCdEf",
        log_group="/aws/rds/proxy/orders-db",
        db_instance="orders-db-primary",
    )


def test_given_the_template_when_the_check_environment_is_built_then_it_is_valid_config_with_its_defaults() -> None:
    template = load_template()
    env = _stack().function_environment("ConnectionCheckFunction", template)
    config = CheckConfig.from_env(env)
    assert (config.summary_table_name, config.alert_topic_arn, config.proxy_names) == (
        "pinwatch-demo-abc",
        "arn:aws:sns:us-east-1:123456789012:pinwatch-demo-alerts-abc",
        ("orders-db",),
    )
    assert config.slack_webhook_secret_arn == _stack().secret_arn
    assert config.slack_allow_loopback is True  # the template says false: a demo override
    assert config.renotify_minutes == int(DEMO_OVERRIDES["RENOTIFY_MINUTES"])
    parameters = template["Parameters"]
    assert config.pinned_critical_pct == float(parameters["PinnedCriticalPct"]["Default"])
    assert config.exhaustion_critical_minutes == float(parameters["ExhaustionCriticalMinutes"]["Default"])
    assert config.dashboard_url is None  # the dashboard link has no local meaning
    assert env["POWERTOOLS_SERVICE_NAME"] == "pinwatch"


def test_given_the_template_when_the_ingest_environment_is_built_then_it_is_valid_config() -> None:
    env = _stack().function_environment("PinIngestFunction", load_template())
    config = IngestConfig.from_env(env)
    assert (config.summary_table_name, config.ttl_days) == ("pinwatch-demo-abc", 90)


def test_given_slack_mrkdwn_when_rendered_then_markup_becomes_styles_and_entities_text() -> None:
    text = mrkdwn("<!here> *Pinned* — `set names $1` &lt;b&gt; &amp; <https://x.example/a|RDS console>")
    assert text.plain == "@here Pinned — set names $1 <b> & RDS console"
    styles = {text.plain[span.start : span.end]: str(span.style) for span in text.spans}
    assert styles["Pinned"] == "bold"
    assert styles["set names $1"] == "cyan"
    assert "link https://x.example/a" in styles["RDS console"]


def test_given_messages_repeating_their_advice_when_rendered_then_the_repeat_points_back_to_the_first() -> None:
    from rich.console import Console

    def payload(header: str) -> dict:
        return {
            "text": header,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": header}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Pool* — critical, new"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*What to change*\n• move SETs to InitQuery"}},
            ],
        }

    seen: dict[str, str] = {}
    console = Console(width=100, record=True)
    console.print(slack_panel(SlackMessage(3, START + 3 * MINUTE_MS, payload("🔴 CRITICAL · a")), seen))
    console.print(slack_panel(SlackMessage(5, START + 5 * MINUTE_MS, payload("🔴 CRITICAL · b")), seen))
    out = console.export_text()
    assert out.count("move SETs to InitQuery") == 1
    first_at = datetime.fromtimestamp((START + 3 * MINUTE_MS) / 1000, tz=UTC).strftime("%H:%M")
    assert f"What to change: as in the {first_at} message" in out
    assert out.count("critical, new") == 2
