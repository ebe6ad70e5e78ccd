"""What template.yaml really creates: checked on the rendered CloudFormation (SAM transform applied).

Two shapes matter: every proxy in the region (the defaults) and a list of named proxies with every
optional piece switched on. Each test says what the stack must do, not how the YAML is spelled.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pinwatch.config import CheckConfig, ConfigError, IngestConfig
from pinwatch.local.template import load_template, table_create_args, table_ttl_attribute
from pinwatch.parse import PIN_PHRASE, WOULD_PIN_PHRASE
from tests.template.cfn import ROOT, Stack, as_list, filter_pattern_terms, iam_statements, stack

pytestmark = pytest.mark.template

NAMED = {
    "ProxyNames": "orders-db,billing-db",
    "AlertEmail": "oncall@example.com",
    "SlackWebhookSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:pinwatch/slack-AbCdEf",
    "EnableTracing": "true",
    "CheckSchedule": "rate(5 minutes)",
    "LogRetentionDays": "90",
    "PinnedWarningPct": "15",
    "PinnedCriticalPct": "45",
    "SummaryTtlDays": "30",
    "SlackMentionOnCritical": "channel",
    "ChatNotifications": "true",
}
PROXIES = ("orders-db", "billing-db")

INGEST_ENV = {
    "SUMMARY_TABLE_NAME",
    "SUMMARY_TTL_DAYS",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
}
CHECK_ENV = {
    "SUMMARY_TABLE_NAME",
    "ALERT_TOPIC_ARN",
    "SLACK_WEBHOOK_SECRET_ARN",
    "PROXY_NAMES",
    "PINNED_WARNING_PCT",
    "PINNED_CRITICAL_PCT",
    "PINNED_MIN_CONNECTIONS",
    "MULTIPLEXING_MAX_RATIO",
    "MULTIPLEXING_MIN_CLIENTS",
    "POOL_WARNING_PCT",
    "POOL_CRITICAL_PCT",
    "EXHAUSTION_WARNING_MINUTES",
    "EXHAUSTION_CRITICAL_MINUTES",
    "BORROW_LATENCY_WARNING_MS",
    "RENOTIFY_MINUTES",
    "RESOLVE_AFTER_CHECKS",
    "METRICS_WINDOW_MINUTES",
    "SETUP_FAILED_EVERY_MINUTES",
    "SWEEP_MINUTES",
    "CONTRIBUTOR_ALARMS",
    "SLACK_MENTION_ON_CRITICAL",
    "SLACK_ALLOW_LOOPBACK",
    "CHAT_NOTIFICATIONS",
    "DASHBOARD_URL",
    "REASON_CAPTURE",
    "REASON_CAPTURE_MAX_HOURS",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
}
RDS_GAUGES = (
    "ClientConnections",
    "DatabaseConnections",
    "DatabaseConnectionsCurrentlySessionPinned",
    "MaxDatabaseConnectionsAllowed",
)


@pytest.fixture(scope="module")
def every_proxy() -> Stack:
    return stack()


@pytest.fixture(scope="module")
def named() -> Stack:
    return stack(NAMED)


def _function_by_code(s: Stack, code_dir: str) -> str:
    """Logical id of the function built from functions/<code_dir>/ (source template)."""
    source = load_template()["Resources"]
    (logical_id,) = [
        k
        for k, v in source.items()
        if isinstance(v, dict)
        and v.get("Type") == "AWS::Serverless::Function"
        and v["Properties"]["CodeUri"].rstrip("/") == f"functions/{code_dir}"
    ]
    assert logical_id in s.of_type("AWS::Lambda::Function")
    return str(logical_id)


def _role_of(s: Stack, function_id: str) -> dict[str, Any]:
    role_ref = s.resources[function_id]["Properties"]["Role"]
    role_id = role_ref["Fn::GetAtt"][0]
    role: dict[str, Any] = s.prop(role_id)
    return role


def _ingest(s: Stack) -> str:
    return _function_by_code(s, "pin_ingest")


def _metric_alarms(s: Stack) -> list[str]:
    """Alarms on one metric (the Metrics Insights alarm has a query instead)."""
    return [a for a in s.of_type("AWS::CloudWatch::Alarm") if "MetricName" in s.resources[a]["Properties"]]


def _check(s: Stack) -> str:
    return _function_by_code(s, "connection_check")


def _group(pattern: str, text: str) -> str:
    match = re.fullmatch(pattern, text)
    assert match is not None, f"{text!r} does not match {pattern!r}"
    return str(match.group(1))


def _expected_pattern() -> str:
    return f'?"{PIN_PHRASE}" ?"{WOULD_PIN_PHRASE}"'


# ---------------------------------------------------------------------------- subscriptions
def test_given_the_filter_pattern_when_compared_with_the_parser_then_it_is_exactly_its_two_phrases(
    named: Stack,
) -> None:
    (filter_id, *_) = named.of_type("AWS::Logs::SubscriptionFilter")
    pattern = named.prop(filter_id, "FilterPattern")

    assert pattern == _expected_pattern()
    assert filter_pattern_terms(pattern) == [(True, PIN_PHRASE), (True, WOULD_PIN_PHRASE)]


def test_given_named_proxies_when_rendered_then_each_proxy_log_group_has_one_filter_to_the_ingest(named: Stack) -> None:
    filters = named.of_type("AWS::Logs::SubscriptionFilter")
    ingest = _ingest(named)

    log_groups = sorted(named.prop(f, "LogGroupName") for f in filters)
    assert log_groups == sorted(f"/aws/rds/proxy/{p}" for p in PROXIES)
    for filter_id in filters:
        assert named.prop(filter_id, "DestinationArn") == f"getatt:{ingest}.Arn"
        assert named.prop(filter_id, "FilterPattern") == _expected_pattern()
        # The invoke permission must exist before CloudWatch Logs tests the destination.
        permission = as_list(named.resources[filter_id]["DependsOn"])
        assert any(named.resources[p]["Type"] == "AWS::Lambda::Permission" for p in permission)
    assert named.of_type("AWS::Logs::AccountPolicy") == {}


def test_given_named_proxies_when_rendered_then_logs_may_invoke_the_ingest_only_from_proxy_log_groups(
    named: Stack,
) -> None:
    ingest = _ingest(named)
    permissions = [
        p
        for p in named.of_type("AWS::Lambda::Permission")
        if named.prop(p, "Principal") == "logs.amazonaws.com"
        and named.prop(p, "FunctionName") == f"getatt:{ingest}.Arn"
    ]

    assert len(permissions) == 1
    assert named.prop(permissions[0], "SourceArn") == "arn:aws:logs:us-east-1:123456789012:log-group:/aws/rds/proxy/*"
    assert named.prop(permissions[0], "SourceAccount") == "123456789012"


def test_given_no_proxy_names_when_rendered_then_an_account_policy_sends_pin_lines_except_pinwatch_own_logs(
    every_proxy: Stack,
) -> None:
    (policy_id,) = every_proxy.of_type("AWS::Logs::AccountPolicy")
    ingest, check = _ingest(every_proxy), _check(every_proxy)

    assert every_proxy.prop(policy_id, "PolicyType") == "SUBSCRIPTION_FILTER_POLICY"
    assert every_proxy.prop(policy_id, "Scope") == "ALL"
    document = json.loads(every_proxy.prop(policy_id, "PolicyDocument"))
    assert document["DestinationArn"] == f"getatt:{ingest}.Arn"
    assert document["FilterPattern"] == _expected_pattern()
    # An alert or a logged sample quoting a pin line must never loop back into the ingest.
    criteria = every_proxy.prop(policy_id, "SelectionCriteria")
    excluded = json.loads(_group(r"LogGroupName NOT IN (\[.*\])", criteria))
    own_groups = {
        every_proxy.ref(every_proxy.resources[f]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"])
        for f in (ingest, check)
    }
    assert set(excluded) == own_groups
    assert every_proxy.of_type("AWS::Logs::SubscriptionFilter") == {}


@pytest.mark.parametrize(
    ("parameter", "variable", "value"),
    [
        ("ProxyNames", "PROXY_NAMES", "orders-db"),
        ("ProxyNames", "PROXY_NAMES", "a"),
        ("ProxyNames", "PROXY_NAMES", "Orders2"),
        ("ProxyNames", "PROXY_NAMES", "orders--db"),
        ("ProxyNames", "PROXY_NAMES", "orders-"),
        ("ProxyNames", "PROXY_NAMES", "2orders"),
        ("ProxyNames", "PROXY_NAMES", "orders_db"),
        ("ProxyNames", "PROXY_NAMES", "a" * 63),
        ("ProxyNames", "PROXY_NAMES", "a" * 64),
        ("SlackWebhookSecretArn", "SLACK_WEBHOOK_SECRET_ARN", NAMED["SlackWebhookSecretArn"]),
        ("SlackWebhookSecretArn", "SLACK_WEBHOOK_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1234:secret:x"),
        ("SlackWebhookSecretArn", "SLACK_WEBHOOK_SECRET_ARN", "https://hooks.slack.com/services/T/B/X"),
    ],
)
def test_given_a_parameter_value_when_checked_by_the_template_and_by_the_check_then_both_agree(
    parameter: str, variable: str, value: str
) -> None:
    # CloudFormation rejects a bad value at deploy time; the check would reject it at cold start.
    # The two must agree, or a stack deploys and then fails (or refuses a valid name).
    pattern = load_template()["Parameters"][parameter]["AllowedPattern"]
    accepted_by_template = re.fullmatch(pattern, value) is not None
    try:
        CheckConfig.from_env({"SUMMARY_TABLE_NAME": "pinwatch-table", variable: value})
        accepted_by_check = True
    except ConfigError:
        accepted_by_check = False

    assert accepted_by_template == accepted_by_check


# ---------------------------------------------------------------------------- schedule
@pytest.mark.parametrize(("params", "expected"), [({}, "rate(1 minute)"), (NAMED, "rate(5 minutes)")])
def test_given_a_check_schedule_when_rendered_then_an_eventbridge_rule_invokes_the_check_on_it(
    params: dict[str, str], expected: str
) -> None:
    s = stack(params)
    check = _check(s)
    rules = s.of_type("AWS::Events::Rule")

    (rule_id,) = [r for r in rules if "ScheduleExpression" in rules[r]["Properties"]]
    assert s.prop(rule_id, "ScheduleExpression") == expected
    assert [t["Arn"] for t in s.prop(rule_id, "Targets")] == [f"getatt:{check}.Arn"]
    (invoke_config,) = [
        c for c in s.of_type("AWS::Lambda::EventInvokeConfig") if s.prop(c, "FunctionName") == f"ref:{check}"
    ]
    # A stale check is worthless: no retries, dropped after a minute.
    assert s.prop(invoke_config, "MaximumRetryAttempts") == 0
    assert s.prop(invoke_config, "MaximumEventAgeInSeconds") == 60


# ---------------------------------------------------------------------------- dead-letter queue
def test_given_the_ingest_when_an_invocation_keeps_failing_then_it_goes_to_an_encrypted_sqs_queue_that_is_alarmed(
    every_proxy: Stack,
) -> None:
    s = every_proxy
    ingest = _ingest(s)
    (config_id,) = [
        c for c in s.of_type("AWS::Lambda::EventInvokeConfig") if s.prop(c, "FunctionName") == f"ref:{ingest}"
    ]

    assert s.prop(config_id, "MaximumRetryAttempts") == 2
    assert 60 <= s.prop(config_id, "MaximumEventAgeInSeconds") <= 21600
    destination = s.prop(config_id, "DestinationConfig", "OnFailure", "Destination")
    queue_id = _group(r"getatt:(\w+)\.Arn", destination)
    assert s.resources[queue_id]["Type"] == "AWS::SQS::Queue"
    assert s.prop(queue_id, "KmsMasterKeyId").startswith("ref:")
    statements = iam_statements(_role_of(s, ingest))
    send = [st["Resource"] for st in statements if any(a.startswith("sqs:SendMessage") for a in as_list(st["Action"]))]
    assert send == [destination]
    key_id = s.prop(queue_id, "KmsMasterKeyId").removeprefix("ref:")
    assert any(
        "kms:GenerateDataKey*" in as_list(st["Action"]) and st["Resource"] == f"getatt:{key_id}.Arn"
        for st in statements
    )
    depth_alarms = [
        a
        for a in _metric_alarms(s)
        if s.prop(a, "MetricName") == "ApproximateNumberOfMessagesVisible"
        and s.prop(a, "Dimensions") == [{"Name": "QueueName", "Value": f"getatt:{queue_id}.QueueName"}]
    ]
    assert len(depth_alarms) == 1


# ---------------------------------------------------------------------------- IAM
@pytest.mark.parametrize("params", [{}, NAMED], ids=["every-proxy", "named"])
def test_given_any_parameters_when_rendered_then_only_the_justified_read_only_statement_uses_a_wildcard_resource(
    params: dict[str, str],
) -> None:
    s = stack(params)
    table_indexes = f"arn:aws:dynamodb:us-east-1:123456789012:table/{s.ref('SummaryTable')}/index/*"
    proxies = "arn:aws:rds:us-east-1:123456789012:db-proxy:*"
    target_groups = "arn:aws:rds:us-east-1:123456789012:target-group:*"
    allowed_on_everything: list[dict[str, Any]] = []
    for role_id in s.of_type("AWS::IAM::Role"):
        for statement in iam_statements(s.prop(role_id)):
            actions = as_list(statement["Action"])
            assert not any(a == "*" or a.endswith(":*") for a in actions), statement
            resources = as_list(statement["Resource"])
            if "*" in resources and statement.get("Effect", "Allow") == "Allow":
                allowed_on_everything.append(statement)
            # Other patterns allowed: the stack's own table indexes (DynamoDB policy templates) and
            # this account's proxies and target groups (RDS names them by id, not by name).
            assert all(r in ("*", table_indexes, proxies, target_groups) for r in resources if "*" in r), statement

    # GetMetricData has no resource types; everything else is scoped.
    assert [as_list(st["Action"]) for st in allowed_on_everything] == [["cloudwatch:GetMetricData"]]


def test_given_the_check_when_rendered_then_it_reads_proxies_of_this_account_and_region_only(
    every_proxy: Stack,
) -> None:
    statements = iam_statements(_role_of(every_proxy, _check(every_proxy)))
    (rds,) = [st for st in statements if any(a.startswith("rds:") for a in as_list(st["Action"]))]

    assert sorted(as_list(rds["Action"])) == ["rds:DescribeDBProxies", "rds:DescribeDBProxyTargetGroups"]
    assert sorted(as_list(rds["Resource"])) == [
        "arn:aws:rds:us-east-1:123456789012:db-proxy:*",
        "arn:aws:rds:us-east-1:123456789012:target-group:*",
    ]


XRAY_WRITES = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


@pytest.mark.parametrize(("params", "tracing"), [({}, False), (NAMED, True)], ids=["tracing-off", "tracing-on"])
def test_given_the_tracing_setting_when_rendered_then_functions_may_write_to_xray_only_with_tracing_on(
    params: dict[str, str], tracing: bool
) -> None:
    s = stack(params)
    for function_id in s.of_type("AWS::Lambda::Function"):
        denied = {
            action
            for st in iam_statements(_role_of(s, function_id))
            if st.get("Effect") == "Deny"
            for action in as_list(st["Action"])
        }
        # SAM adds AWSXrayWriteOnlyAccess whenever Tracing is set; with tracing off it is denied again.
        assert XRAY_WRITES.isdisjoint(denied) if tracing else denied >= XRAY_WRITES


@pytest.mark.parametrize(("params", "has_secret"), [({}, False), (NAMED, True)])
def test_given_a_slack_secret_when_rendered_then_only_the_check_may_read_that_one_secret(
    params: dict[str, str], has_secret: bool
) -> None:
    s = stack(params)
    reads = {
        (role_id, json.dumps(st["Resource"]))
        for role_id in s.of_type("AWS::IAM::Role")
        for st in iam_statements(s.prop(role_id))
        if "secretsmanager:GetSecretValue" in as_list(st["Action"])
    }

    check_role = s.resources[_check(s)]["Properties"]["Role"]["Fn::GetAtt"][0]
    assert reads == ({(check_role, json.dumps(NAMED["SlackWebhookSecretArn"]))} if has_secret else set())


def test_given_the_check_when_rendered_then_it_may_publish_to_the_encrypted_alert_topic_and_use_the_table(
    every_proxy: Stack,
) -> None:
    s = every_proxy
    statements = iam_statements(_role_of(s, _check(s)))
    (topic_id,) = s.of_type("AWS::SNS::Topic")
    key_id = s.prop(topic_id, "KmsMasterKeyId").removeprefix("ref:")

    publish = [st["Resource"] for st in statements if "sns:Publish" in as_list(st["Action"])]
    assert publish == [f"arn:aws:sns:us-east-1:123456789012:getatt:{topic_id}.TopicName"]
    assert any(st["Resource"] == f"getatt:{key_id}.Arn" for st in statements if "kms:Decrypt" in as_list(st["Action"]))
    # The check queries the table, writes alert state in transactions of Put items and the reason-capture
    # state with a conditional PutItem: nothing else (pinwatch.store.capture_state reads with a Query).
    table = f"getatt:{'SummaryTable'}.Arn"
    dynamodb = {a for st in statements for a in as_list(st["Action"]) if a.startswith("dynamodb:")}
    assert dynamodb == {"dynamodb:Query", "dynamodb:PutItem"}
    assert all(st["Resource"] == table for st in statements if "dynamodb:Query" in as_list(st["Action"]))
    # CloudWatch alarms publish through the same key: its policy must let them.
    key_policy = s.prop(key_id, "KeyPolicy")
    assert any(
        st.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com" and "kms:GenerateDataKey*" in st["Action"]
        for st in key_policy["Statement"]
    )


def test_given_the_ingest_when_rendered_then_it_may_write_the_table_but_never_read_scan_or_delete(
    every_proxy: Stack,
) -> None:
    s = every_proxy
    table_arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{s.ref('SummaryTable')}"
    dynamodb = [
        action
        for st in iam_statements(_role_of(s, _ingest(s)))
        if table_arn in as_list(st["Resource"])
        for action in as_list(st["Action"])
    ]

    # TransactWriteItems is authorised per item: Put for the batch marker, Update for counts.
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem"} <= set(dynamodb)
    assert not {"dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:GetItem"} & set(dynamodb)


# ---------------------------------------------------------------------------- functions
@pytest.mark.parametrize("code_dir", ["pin_ingest", "connection_check"])
def test_given_each_function_when_rendered_then_it_runs_python313_arm64_with_the_layer_and_its_own_log_group(
    named: Stack, code_dir: str
) -> None:
    s = named
    function_id = _function_by_code(s, code_dir)
    props = s.prop(function_id)

    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "app.lambda_handler"
    (layer,) = props["Layers"]
    layer_id = layer.removeprefix("ref:")
    assert s.resources[layer_id]["Type"] == "AWS::Lambda::LayerVersion"
    assert s.prop(layer_id, "CompatibleArchitectures") == ["arm64"]
    assert "python3.13" in s.prop(layer_id, "CompatibleRuntimes")
    log_group_id = s.resources[function_id]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert s.resources[log_group_id]["Type"] == "AWS::Logs::LogGroup"
    assert s.prop(log_group_id, "RetentionInDays") == "90"
    assert props["TracingConfig"]["Mode"] == "Active"


def test_given_the_source_template_when_read_then_the_layer_builds_for_arm64_with_its_own_makefile() -> None:
    resources = load_template()["Resources"]
    ((layer_id, layer),) = [
        (k, v) for k, v in resources.items() if isinstance(v, dict) and v.get("Type") == "AWS::Serverless::LayerVersion"
    ]
    makefile = ROOT / layer["Properties"]["ContentUri"] / "Makefile"

    assert layer["Properties"]["ContentUri"] == "layers/pinwatch"
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    # `sam build` runs the target named after the layer's logical id (SAM "Building Lambda layers").
    assert re.search(rf"^build-{layer_id}:", makefile.read_text(encoding="utf-8"), re.MULTILINE)


def test_given_defaults_when_rendered_then_every_function_has_a_retained_log_group_and_no_tracing(
    every_proxy: Stack,
) -> None:
    s = every_proxy
    functions = s.of_type("AWS::Lambda::Function")
    log_groups = {s.resources[f]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in functions}

    assert len(functions) == 2
    assert len(log_groups) == 2
    assert set(log_groups) == set(s.of_type("AWS::Logs::LogGroup"))
    assert {s.prop(g, "RetentionInDays") for g in log_groups} == {"30"}
    assert {s.prop(f, "TracingConfig", "Mode") for f in functions} == {"PassThrough"}


def test_given_the_ingest_when_rendered_then_its_environment_is_the_contract_and_its_config_accepts_it(
    named: Stack,
) -> None:
    env = named.prop(_ingest(named), "Environment", "Variables")

    assert set(env) == INGEST_ENV
    assert env["POWERTOOLS_SERVICE_NAME"] == "pinwatch"
    config = IngestConfig.from_env({k: str(v) for k, v in env.items()})
    assert config.summary_table_name == named.ref("SummaryTable")
    assert config.ttl_days == 30
    assert config.metrics_namespace == "Pinwatch"


@pytest.mark.parametrize("params", [{}, NAMED], ids=["every-proxy", "named"])
def test_given_the_check_when_rendered_then_its_environment_is_the_contract_and_its_config_accepts_it(
    params: dict[str, str],
) -> None:
    s = stack(params)
    env = {k: str(v) for k, v in s.prop(_check(s), "Environment", "Variables").items()}

    assert set(env) == CHECK_ENV
    config = CheckConfig.from_env(env)
    assert config.summary_table_name == s.ref("SummaryTable")
    assert config.alert_topic_arn == s.ref("AlertTopic")
    assert config.slack_allow_loopback is False
    assert config.dashboard_url is not None
    assert config.dashboard_url.endswith(f"#dashboards/dashboard/{s.prop('Dashboard', 'DashboardName')}")
    if params:
        assert config.proxy_names == PROXIES
        assert config.slack_webhook_secret_arn == NAMED["SlackWebhookSecretArn"]
        assert (config.pinned_warning_pct, config.pinned_critical_pct) == (15.0, 45.0)
        assert config.slack_mention_on_critical == "channel"
        assert config.chat_notifications is True
    else:
        assert config.proxy_names == ()
        assert config.slack_webhook_secret_arn is None
        assert config.chat_notifications is False


@pytest.mark.parametrize(("schedule", "every"), [("rate(1 minute)", 5), ("rate(5 minutes)", 1), ("rate(2 minutes)", 1)])
def test_given_a_check_schedule_when_rendered_then_the_setup_failure_metric_is_read_on_some_run(
    schedule: str, every: int
) -> None:
    # A run reads it when its minute is divisible by the cadence: only a one-minute schedule can skip runs.
    s = stack({"CheckSchedule": schedule})
    env = {k: str(v) for k, v in s.prop(_check(s), "Environment", "Variables").items()}
    assert CheckConfig.from_env(env).setup_failed_every_minutes == every


# ---------------------------------------------------------------------------- alerts and alarms
@pytest.mark.parametrize(("params", "subscribed"), [({}, False), (NAMED, True)])
def test_given_an_alert_email_when_rendered_then_it_is_subscribed_to_the_kms_encrypted_topic(
    params: dict[str, str], subscribed: bool
) -> None:
    s = stack(params)
    (topic_id,) = s.of_type("AWS::SNS::Topic")
    subscriptions = s.of_type("AWS::SNS::Subscription")

    key_id = s.prop(topic_id, "KmsMasterKeyId").removeprefix("ref:")
    assert s.resources[key_id]["Type"] == "AWS::KMS::Key"
    assert s.prop(key_id, "EnableKeyRotation") is True
    expected = [("email", NAMED["AlertEmail"], s.ref(topic_id))] if subscribed else []
    assert [(s.prop(i, "Protocol"), s.prop(i, "Endpoint"), s.prop(i, "TopicArn")) for i in subscriptions] == expected


def test_given_the_functions_when_rendered_then_their_errors_and_throttles_are_alarmed_to_the_topic(
    every_proxy: Stack,
) -> None:
    s = every_proxy
    (topic_id,) = s.of_type("AWS::SNS::Topic")
    watched = {
        (s.prop(a, "MetricName"), s.prop(a, "Dimensions")[0]["Value"])
        for a in _metric_alarms(s)
        if s.prop(a, "Namespace") == "AWS/Lambda" and s.prop(a, "AlarmActions") == [s.ref(topic_id)]
    }

    for function_id in (_ingest(s), _check(s)):
        assert ("Errors", f"ref:{function_id}") in watched
        assert ("Throttles", f"ref:{function_id}") in watched
    # Alerts that Slack or SNS refused are themselves alarmed (from the check's EMF metric).
    delivery = [
        a
        for a in _metric_alarms(s)
        if s.prop(a, "MetricName") == "AlertDeliveryFailures"
        and s.prop(a, "Namespace") == "Pinwatch"
        and s.prop(a, "Dimensions") == [{"Name": "service", "Value": "pinwatch"}]
        and s.prop(a, "AlarmActions") == [s.ref(topic_id)]
    ]
    assert len(delivery) == 1


@pytest.mark.parametrize(("params", "proxies"), [({}, ()), (NAMED, PROXIES)], ids=["every-proxy", "named"])
def test_given_proxy_names_when_rendered_then_each_gets_a_native_pinned_alarm_that_treats_no_data_as_healthy(
    params: dict[str, str], proxies: tuple[str, ...]
) -> None:
    s = stack(params)
    (topic_id,) = s.of_type("AWS::SNS::Topic")
    pinned = {
        a: s.prop(a)
        for a in _metric_alarms(s)
        if s.prop(a, "MetricName") == "DatabaseConnectionsCurrentlySessionPinned"
    }

    assert sorted(p["Dimensions"][0]["Value"] for p in pinned.values()) == sorted(proxies)
    for props in pinned.values():
        assert props["Namespace"] == "AWS/RDS"
        assert props["Dimensions"][0]["Name"] == "ProxyName"
        assert (props["Statistic"], props["Period"]) == ("Sum", 60)
        assert props["TreatMissingData"] == "notBreaching"
        assert props["AlarmActions"] == [s.ref(topic_id)]


# ---------------------------------------------------------------------------- dashboard
def _dashboard_expressions(s: Stack) -> list[str]:
    (dashboard_id,) = s.of_type("AWS::CloudWatch::Dashboard")
    body = json.loads(s.prop(dashboard_id, "DashboardBody"))
    return [
        metric["expression"]
        for widget in body["widgets"]
        for row in widget.get("properties", {}).get("metrics", [])
        for metric in row
        if isinstance(metric, dict) and "expression" in metric
    ]


@pytest.mark.parametrize(("params", "proxies"), [({}, ()), (NAMED, PROXIES)], ids=["every-proxy", "named"])
def test_given_the_dashboard_when_rendered_then_it_graphs_each_proxy_gauge_as_a_60s_sum_per_proxy(
    params: dict[str, str], proxies: tuple[str, ...]
) -> None:
    s = stack(params)
    expressions = _dashboard_expressions(s)

    for metric in RDS_GAUGES:
        (expression,) = [e for e in expressions if f'MetricName="{metric}"' in e]
        assert expression.startswith("SEARCH('{AWS/RDS,ProxyName} ")
        assert expression.endswith(", 'Sum', 60)")
        for proxy in proxies:
            assert f'ProxyName="{proxy}"' in expression
        if not proxies:
            assert "ProxyName=" not in expression


def test_given_the_dashboard_when_rendered_then_it_shows_pin_events_by_reason_and_the_ingest_health(
    every_proxy: Stack,
) -> None:
    s = every_proxy
    (dashboard_id,) = s.of_type("AWS::CloudWatch::Dashboard")
    body = s.prop(dashboard_id, "DashboardBody")
    expressions = _dashboard_expressions(s)
    ingest = _ingest(s)

    # The ingest's EMF documents: namespace from the template, dimensions Reason and service (no
    # series per proxy); pins per proxy and reason come from the Contributor Insights rule.
    assert any(
        e.startswith("SEARCH('{Pinwatch,Reason,service} ") and 'MetricName="PinEvents"' in e for e in expressions
    )
    assert not [e for e in expressions if "ProxyName,Reason" in e]
    widgets = json.loads(body)["widgets"]
    (rule_id,) = s.of_type("AWS::CloudWatch::InsightRule")
    assert [w["properties"]["insightRule"]["ruleName"] for w in widgets if "insightRule" in w["properties"]] == [
        f"getatt:{rule_id}.RuleName"
    ]
    plain_metrics = [
        row for w in widgets for row in w.get("properties", {}).get("metrics", []) if isinstance(row[0], str)
    ]
    assert ["AWS/Lambda", "Errors", "FunctionName", f"ref:{ingest}"] in plain_metrics
    assert any(row[:4] == ["AWS/Lambda", "Duration", "FunctionName", f"ref:{ingest}"] for row in plain_metrics)
    assert any(row[:2] == ["AWS/SQS", "ApproximateNumberOfMessagesVisible"] for row in plain_metrics)


# ---------------------------------------------------------------------------- table and outputs
def test_given_the_summary_table_when_rendered_then_keys_ttl_pitr_and_sse_are_kept_and_it_is_retained(
    every_proxy: Stack,
) -> None:
    s = every_proxy
    table = s.resources["SummaryTable"]

    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert table_create_args("t")["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert table_ttl_attribute() == "expires_at"
    assert s.prop("SummaryTable", "BillingMode") == "PAY_PER_REQUEST"
    assert s.prop("SummaryTable", "PointInTimeRecoverySpecification") == {"PointInTimeRecoveryEnabled": True}
    assert s.prop("SummaryTable", "SSESpecification")["SSEEnabled"] is True


def test_given_a_deployed_stack_when_its_outputs_are_read_then_they_name_everything_an_operator_needs(
    every_proxy: Stack,
) -> None:
    s = every_proxy
    (queue_id,) = s.of_type("AWS::SQS::Queue")

    assert s.output("SummaryTableName") == s.ref("SummaryTable")
    assert s.output("AlertTopicArn") == s.ref("AlertTopic")
    assert s.output("DeadLetterQueueUrl") == f"ref:{queue_id}"
    assert s.output("PinIngestFunctionName") == f"ref:{_ingest(s)}"
    assert s.output("ConnectionCheckFunctionName") == f"ref:{_check(s)}"
    assert s.output("DashboardUrl") == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        f"#dashboards/dashboard/{s.prop('Dashboard', 'DashboardName')}"
    )
    assert s.output("SubscriptionMode") == "account-policy"


# ---------------------------------------------------------------------------- edges that used to fail at deploy
@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("rate(1 minute)", True),
        ("rate(5 minutes)", True),
        ("rate(12 hours)", True),
        ("rate(1 day)", True),
        ("cron(0/5 * * * ? *)", True),
        ("rate(1 minutes)", False),  # EventBridge wants the singular for 1
        ("rate(5 minute)", False),  # and the plural above
        ("rate(0 minutes)", False),  # a rate must be positive
        ("rate(05 minutes)", False),
        ("rate(-1 minutes)", False),
        ("cron(0 12 * * ?)", False),  # six fields
        ("every 5 minutes", False),
    ],
)
def test_given_a_check_schedule_when_validated_then_only_what_eventbridge_accepts_passes_and_the_message_says_why(
    value: str, accepted: bool
) -> None:
    parameter = load_template()["Parameters"]["CheckSchedule"]

    assert (re.fullmatch(parameter["AllowedPattern"], value) is not None) == accepted
    # What the console and the CLI show on a rejected value: it must say what to write instead.
    assert "rate(1 minute)" in parameter["ConstraintDescription"]
    assert "singular" in parameter["ConstraintDescription"]


# ---------------------------------------------------------------------------- fleet scale
@pytest.mark.parametrize(("params", "proxies"), [({}, ()), (NAMED, PROXIES)], ids=["every-proxy", "named"])
def test_given_the_stack_when_rendered_then_one_metrics_insights_alarm_watches_pinned_connections_of_every_proxy(
    params: dict[str, str], proxies: tuple[str, ...]
) -> None:
    s = stack(params)
    (alarm_id,) = [a for a in s.of_type("AWS::CloudWatch::Alarm") if "Metrics" in s.resources[a]["Properties"]]
    (query,) = s.prop(alarm_id, "Metrics")
    expression = " ".join(query["Expression"].split())
    assert expression.startswith(
        'SELECT SUM(DatabaseConnectionsCurrentlySessionPinned) FROM SCHEMA("AWS/RDS", ProxyName)'
    )
    assert expression.endswith("GROUP BY ProxyName ORDER BY MAX() DESC")
    for proxy in proxies:
        assert f"ProxyName = '{proxy}'" in expression
    if not proxies:
        assert "WHERE" not in expression
    assert (query["Period"], s.prop(alarm_id, "Threshold"), s.prop(alarm_id, "ComparisonOperator")) == (
        60,
        0,
        "GreaterThanThreshold",
    )
    assert s.prop(alarm_id, "TreatMissingData") == "notBreaching"  # nothing pinned publishes nothing


def test_given_the_alarm_when_a_contributor_goes_to_alarm_then_an_eventbridge_rule_invokes_the_check_which_names_it(
    every_proxy: Stack,
) -> None:
    s = every_proxy
    check = _check(s)
    rules = s.of_type("AWS::Events::Rule")
    (rule_id,) = [r for r in rules if "EventPattern" in rules[r]["Properties"]]
    pattern = s.prop(rule_id, "EventPattern")
    (alarm_id,) = [a for a in s.of_type("AWS::CloudWatch::Alarm") if "Metrics" in s.resources[a]["Properties"]]
    alarm_name = s.prop(alarm_id, "AlarmName")
    assert pattern == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm Contributor State Change"],
        "detail": {"alarmName": [alarm_name], "state": {"value": ["ALARM"]}},
    }
    assert [t["Arn"] for t in s.prop(rule_id, "Targets")] == [f"getatt:{check}.Arn"]
    env = s.prop(check, "Environment", "Variables")
    assert (env["CONTRIBUTOR_ALARMS"], env["SWEEP_MINUTES"]) == (alarm_name, "15")
    role = s.resources[s.prop(check, "Role")[len("getatt:") : -len(".Arn")]]["Properties"]
    (statement,) = [st for st in iam_statements(s.resolve(role)) if st.get("Sid") == "ReadAlarmContributors"]
    assert statement["Action"] == "cloudwatch:DescribeAlarmContributors"
    assert statement["Resource"].endswith(f":alarm:{alarm_name}")


def test_given_the_ingest_log_group_when_rendered_then_a_contributor_insights_rule_sums_pin_counts_by_proxy_and_reason(
    every_proxy: Stack,
) -> None:
    s = every_proxy
    (rule_id,) = s.of_type("AWS::CloudWatch::InsightRule")
    body = json.loads(s.prop(rule_id, "RuleBody"))
    # The ingest function's own log group, where its "Pin counts" lines go.
    assert body["LogGroupNames"] == [s.prop(_ingest(s), "LoggingConfig", "LogGroup")]
    assert body["Contribution"]["Keys"] == ["$.proxy", "$.reason"]
    assert (body["Contribution"]["ValueOf"], body["AggregateOn"]) == ("$.count", "Sum")
    assert {"Match": "$.message", "In": ["Pin counts"]} in body["Contribution"]["Filters"]
