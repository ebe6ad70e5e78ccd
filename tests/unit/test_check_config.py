"""CheckConfig.from_env: every variable of the template contract, its default and its validation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pinwatch.config import AccountRoute, CheckConfig, ConfigError, Thresholds

TABLE = {"SUMMARY_TABLE_NAME": "pinwatch-summary"}
TOPIC = "arn:aws:sns:us-east-1:123456789012:pinwatch-alerts"
FIFO_TOPIC = "arn:aws-cn:sns:cn-north-1:123456789012:alerts.fifo"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pinwatch/slack-AbCdEf"


def test_given_only_the_table_when_parsed_then_every_setting_has_its_documented_default() -> None:
    config = CheckConfig.from_env(TABLE)
    assert config == CheckConfig(
        summary_table_name="pinwatch-summary",
        alert_topic_arn=None,
        slack_webhook_secret_arn=None,
        proxy_names=(),
        pinned_warning_pct=10,
        pinned_critical_pct=50,
        pinned_min_connections=3,
        multiplexing_max_ratio=1.5,
        multiplexing_min_clients=20,
        pool_warning_pct=80,
        pool_critical_pct=95,
        exhaustion_warning_minutes=60,
        exhaustion_critical_minutes=15,
        borrow_latency_warning_ms=100,
        renotify_minutes=60,
        resolve_after_checks=3,
        metrics_window_minutes=30,
        slack_mention_on_critical="here",
        slack_allow_loopback=False,
        chat_notifications=False,
        dashboard_url=None,
    )


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("ALERT_TOPIC_ARN", TOPIC, "alert_topic_arn", TOPIC),
        ("ALERT_TOPIC_ARN", FIFO_TOPIC, "alert_topic_arn", FIFO_TOPIC),
        ("SLACK_WEBHOOK_SECRET_ARN", SECRET, "slack_webhook_secret_arn", SECRET),
        ("PROXY_NAMES", " orders-proxy, billing ,orders-proxy,, ", "proxy_names", ("orders-proxy", "billing")),
        ("PINNED_WARNING_PCT", "12.5", "pinned_warning_pct", 12.5),
        ("PINNED_CRITICAL_PCT", "40", "pinned_critical_pct", 40.0),
        ("PINNED_MIN_CONNECTIONS", "5", "pinned_min_connections", 5),
        ("MULTIPLEXING_MAX_RATIO", "2", "multiplexing_max_ratio", 2.0),
        ("MULTIPLEXING_MIN_CLIENTS", "50", "multiplexing_min_clients", 50),
        ("POOL_WARNING_PCT", "70", "pool_warning_pct", 70.0),
        ("POOL_CRITICAL_PCT", "90", "pool_critical_pct", 90.0),
        ("EXHAUSTION_WARNING_MINUTES", "120", "exhaustion_warning_minutes", 120.0),
        ("EXHAUSTION_CRITICAL_MINUTES", "10", "exhaustion_critical_minutes", 10.0),
        ("BORROW_LATENCY_WARNING_MS", "250", "borrow_latency_warning_ms", 250.0),
        ("RENOTIFY_MINUTES", "15", "renotify_minutes", 15),
        ("RESOLVE_AFTER_CHECKS", "5", "resolve_after_checks", 5),
        ("METRICS_WINDOW_MINUTES", "60", "metrics_window_minutes", 60),
        ("SETUP_FAILED_EVERY_MINUTES", "1", "setup_failed_every_minutes", 1),
        ("SLACK_MENTION_ON_CRITICAL", "Channel", "slack_mention_on_critical", "channel"),
        ("SLACK_MENTION_ON_CRITICAL", "none", "slack_mention_on_critical", "none"),
        ("SLACK_ALLOW_LOOPBACK", "TRUE", "slack_allow_loopback", True),
        ("CHAT_NOTIFICATIONS", "true", "chat_notifications", True),
        ("CHAT_NOTIFICATIONS", "false", "chat_notifications", False),
        (
            "DASHBOARD_URL",
            "https://console.aws.amazon.com/cloudwatch/x",
            "dashboard_url",
            "https://console.aws.amazon.com/cloudwatch/x",
        ),
    ],
)
def test_given_a_valid_value_when_parsed_then_it_reaches_its_field(
    variable: str, value: str, field: str, expected: Any
) -> None:
    assert getattr(CheckConfig.from_env({**TABLE, variable: value}), field) == expected


@pytest.mark.parametrize(
    "variable",
    [
        "ALERT_TOPIC_ARN",
        "SLACK_WEBHOOK_SECRET_ARN",
        "PROXY_NAMES",
        "PINNED_WARNING_PCT",
        "DASHBOARD_URL",
        "CHAT_NOTIFICATIONS",
    ],
)
def test_given_a_blank_optional_variable_when_parsed_then_the_default_applies(variable: str) -> None:
    # CloudFormation passes unset optional parameters as empty strings.
    assert CheckConfig.from_env({**TABLE, variable: "  "}) == CheckConfig.from_env(TABLE)


@pytest.mark.parametrize(
    ("variable", "value", "advice"),
    [
        ("ALERT_TOPIC_ARN", "pinwatch-alerts", "SNS topic ARN"),
        ("ALERT_TOPIC_ARN", "arn:aws:sqs:us-east-1:123456789012:q", "SNS topic ARN"),
        ("SLACK_WEBHOOK_SECRET_ARN", "https://hooks.slack.com/services/T/B/X", "Secrets Manager secret ARN"),
        ("PROXY_NAMES", "good,-bad", "proxy names"),
        ("PROXY_NAMES", "two--hyphens", "proxy names"),
        ("PINNED_WARNING_PCT", "ten", "from 0.1 to 100"),
        ("PINNED_WARNING_PCT", "0", "from 0.1 to 100"),
        ("PINNED_CRITICAL_PCT", "101", "from 0.1 to 100"),
        ("PINNED_MIN_CONNECTIONS", "2.5", "whole number"),
        ("PINNED_MIN_CONNECTIONS", "0", "whole number"),
        ("MULTIPLEXING_MAX_RATIO", "-1", "number"),
        ("MULTIPLEXING_MIN_CLIENTS", "many", "whole number"),
        ("POOL_WARNING_PCT", "120", "from 1 to 100"),
        ("EXHAUSTION_CRITICAL_MINUTES", "0", "from 1 to 1440"),
        ("BORROW_LATENCY_WARNING_MS", "fast", "number"),
        ("RENOTIFY_MINUTES", "0", "whole number"),
        ("RESOLVE_AFTER_CHECKS", "0", "whole number"),
        ("METRICS_WINDOW_MINUTES", "2", "from 5 to 1440"),
        ("SETUP_FAILED_EVERY_MINUTES", "0", "from 1 to 60"),
        ("SLACK_MENTION_ON_CRITICAL", "everyone", "here|channel|none"),
        ("SLACK_ALLOW_LOOPBACK", "maybe", "true or false"),
        ("CHAT_NOTIFICATIONS", "sometimes", "true or false"),
        ("DASHBOARD_URL", "dashboards/pinwatch", "https://"),
    ],
)
def test_given_an_invalid_value_when_parsed_then_the_error_names_the_variable_and_what_to_set(
    variable: str, value: str, advice: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        CheckConfig.from_env({**TABLE, variable: value})
    (problem,) = raised.value.problems
    assert problem.startswith(variable)
    assert advice in problem


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"PINNED_WARNING_PCT": "50", "PINNED_CRITICAL_PCT": "50"}, ("PINNED_WARNING_PCT", "PINNED_CRITICAL_PCT")),
        ({"PINNED_WARNING_PCT": "60"}, ("PINNED_WARNING_PCT", "PINNED_CRITICAL_PCT")),
        ({"POOL_WARNING_PCT": "96"}, ("POOL_WARNING_PCT", "POOL_CRITICAL_PCT")),
        ({"EXHAUSTION_CRITICAL_MINUTES": "90"}, ("EXHAUSTION_CRITICAL_MINUTES", "EXHAUSTION_WARNING_MINUTES")),
    ],
)
def test_given_warning_not_before_critical_when_parsed_then_the_error_names_both_variables(
    env: dict[str, str], names: tuple[str, str]
) -> None:
    with pytest.raises(ConfigError) as raised:
        CheckConfig.from_env({**TABLE, **env})
    (problem,) = raised.value.problems
    assert all(name in problem for name in names)
    assert "must be below" in problem


def test_given_no_table_when_parsed_then_the_error_says_to_set_it() -> None:
    with pytest.raises(ConfigError, match="SUMMARY_TABLE_NAME is not set; set it to the summary table's name"):
        CheckConfig.from_env({})


def test_given_no_table_when_the_table_is_optional_then_the_config_has_an_empty_table_name() -> None:
    assert CheckConfig.from_env({"PROXY_NAMES": "a"}, require_table=False).summary_table_name == ""


def test_given_several_invalid_values_when_parsed_then_one_error_lists_them_all() -> None:
    env = {"SUMMARY_TABLE_NAME": "x", "POOL_CRITICAL_PCT": "lots", "SLACK_MENTION_ON_CRITICAL": "all"}
    with pytest.raises(ConfigError) as raised:
        CheckConfig.from_env(env)
    assert [p.split("=")[0] for p in raised.value.problems] == [
        "SUMMARY_TABLE_NAME",
        "POOL_CRITICAL_PCT",
        "SLACK_MENTION_ON_CRITICAL",
    ]
    assert str(raised.value).startswith("invalid configuration: SUMMARY_TABLE_NAME='x' is not valid")


def test_given_custom_thresholds_when_config_is_parsed_then_thresholds_carry_them_and_keep_the_guards() -> None:
    config = CheckConfig.from_env({**TABLE, "PINNED_WARNING_PCT": "20", "BORROW_LATENCY_WARNING_MS": "250"})
    thresholds = config.thresholds
    assert (thresholds.pinned_warning_pct, thresholds.borrow_latency_warning_ms) == (20.0, 250.0)
    assert thresholds.forecast_min_points == Thresholds().forecast_min_points


def test_given_sweep_settings_when_parsed_then_sweep_minutes_and_contributor_alarms_reach_their_fields() -> None:
    config = CheckConfig.from_env(TABLE | {"SWEEP_MINUTES": "15", "CONTRIBUTOR_ALARMS": "stack-pinned, other ,"})
    assert (config.sweep_minutes, config.contributor_alarms) == (15, ("stack-pinned", "other"))
    # Unset: every scheduled run reads every proxy, and no alarm is asked.
    assert (CheckConfig.from_env(TABLE).sweep_minutes, CheckConfig.from_env(TABLE).contributor_alarms) == (1, ())


@pytest.mark.parametrize("value", ["0", "61", "often"])
def test_given_an_invalid_sweep_when_parsed_then_the_error_names_sweep_minutes(value: str) -> None:
    with pytest.raises(ConfigError, match="SWEEP_MINUTES"):
        CheckConfig.from_env(TABLE | {"SWEEP_MINUTES": value})


# ---------------------------------------------------------------------------------------------
# ACCOUNT_ROUTES (organization mode): a member account's alerts also go to its own channels

OTHER_TOPIC = "arn:aws:sns:us-east-1:123456789012:pinwatch-team-b"


def test_given_account_routes_when_parsed_then_each_account_gets_its_channels_sorted_by_account() -> None:
    routes = {
        "222222222222": {"alert_topic_arn": OTHER_TOPIC},
        "111111111111": {"slack_webhook_secret_arn": SECRET, "alert_topic_arn": TOPIC},
    }
    config = CheckConfig.from_env({**TABLE, "ACCOUNT_ROUTES": json.dumps(routes)})
    assert config.account_routes == (
        AccountRoute("111111111111", slack_webhook_secret_arn=SECRET, alert_topic_arn=TOPIC),
        AccountRoute("222222222222", alert_topic_arn=OTHER_TOPIC),
    )


@pytest.mark.parametrize("value", ["", "  ", "{}"])
def test_given_no_account_routes_when_parsed_then_there_is_no_routing(value: str) -> None:
    assert CheckConfig.from_env({**TABLE, "ACCOUNT_ROUTES": value}).account_routes == ()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{'111111111111': {}}", "ACCOUNT_ROUTES is not JSON"),
        ('["111111111111"]', "ACCOUNT_ROUTES is a JSON list, not an object"),
        ('{"11111111111": {"alert_topic_arn": "' + TOPIC + '"}}', "'11111111111' is not a 12-digit AWS account ID"),
        ('{"111111111111": "' + TOPIC + '"}', "111111111111: the route is not an object"),
        ('{"111111111111": {"alert_topic": "' + TOPIC + '"}}', "111111111111: unknown field 'alert_topic'"),
        ('{"111111111111": {"alert_topic_arn": "pinwatch-alerts"}}', "alert_topic_arn='pinwatch-alerts' is not an SNS"),
        ('{"111111111111": {"slack_webhook_secret_arn": "' + TOPIC + '"}}', "is not a Secrets Manager secret ARN"),
        ('{"111111111111": {"alert_topic_arn": 7}}', "alert_topic_arn=7 is not an SNS topic ARN"),
        ('{"111111111111": {}}', "111111111111: the route names no channel"),
    ],
)
def test_given_invalid_account_routes_when_parsed_then_the_error_names_the_variable_and_the_account(
    value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        CheckConfig.from_env({**TABLE, "ACCOUNT_ROUTES": value})
    (message,) = caught.value.problems
    assert message.startswith("ACCOUNT_ROUTES ")
    assert problem in message
    assert "e.g. {" in message  # says what to set
