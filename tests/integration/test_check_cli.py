"""``pinwatch check`` against real proxies and metrics on moto server (and DynamoDB Local for the table)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest

from pinwatch import diagnose as dx
from pinwatch.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, main
from pinwatch.metrics import window_end_ms
from pinwatch.parse import parse_message
from pinwatch.store import keys
from pinwatch.store.summary import SummaryStore
from tests.integration.aws_proxies import (
    REGION,
    ProxyFactory,
    clients,
    draining_shapes,
    healthy_busy_shapes,
    put_series,
)
from tests.support.builders import tally_records

pytestmark = pytest.mark.integration

SEVERITIES = {"ok", "info", "warning", "critical"}
PIN_LINE = (
    "2020-08-04T11:47:24.251Z [WARN] [clientConnection=3888679423] The client session was pinned to the database "
    "connection [dbConnection=529039385] for the remainder of the session. The proxy can't reuse this connection "
    "until the session ends. Reason: A parse message was detected."
)


def _proxies(endpoint: str, region: str) -> dict[str, str]:
    factory = ProxyFactory(endpoint, region=region)
    draining = factory.create("orders", "POSTGRESQL", debug_logging=True)
    healthy = factory.create("billing", "POSTGRESQL", debug_logging=True)
    (cloudwatch,) = clients(endpoint, "cloudwatch", region=region)
    end_ms = window_end_ms(int(time.time() * 1000))
    put_series(cloudwatch, draining, end_ms, draining_shapes())
    put_series(cloudwatch, healthy, end_ms, healthy_busy_shapes())
    return {"draining": draining, "healthy": healthy}


@pytest.fixture(scope="module")
def world(moto_endpoint: str) -> dict[str, str]:
    return {**_proxies(moto_endpoint, REGION), "endpoint": moto_endpoint}


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps table cells to the terminal width


def check(world: dict[str, str], *extra: str) -> list[str]:
    args = ["check", "--endpoint-url", world["endpoint"], "--region", REGION]
    return [*args, "--proxy", world["draining"], "--proxy", world["healthy"], *extra]


def test_given_a_draining_and_a_healthy_proxy_when_checked_as_json_then_findings_carry_severity_figures_and_eta(
    world: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(check(world, "--format", "json")) == EXIT_OK
    findings = json.loads(capsys.readouterr().out)
    assert {f["proxy"] for f in findings} == {world["draining"], world["healthy"]}
    assert all({"proxy", "rule", "severity", "summary", "figures", "hints"} <= f.keys() for f in findings)
    assert not any({"account", "region", "name"} & f.keys() for f in findings)  # organization mode only
    assert {f["severity"] for f in findings} <= SEVERITIES
    forecast = next(f for f in findings if f["proxy"] == world["draining"] and f["rule"] == dx.EXHAUSTION_FORECAST)
    assert forecast["severity"] == "critical"
    assert forecast["figures"]["eta_minutes"] == pytest.approx(23 / 3, abs=0.05)
    assert forecast["figures"]["max_connections_allowed"] == 150
    healthy = [f for f in findings if f["proxy"] == world["healthy"]]
    assert {f["severity"] for f in healthy} == {"ok"}


def test_given_problems_when_checked_as_a_table_then_problem_rows_are_listed_and_healthy_rules_folded(
    world: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(check(world)) == EXIT_OK
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    draining_rows = [line for line in lines if world["draining"] in line]
    assert any("exhaustion_forecast" in line and "critical" in line and "~8 min" in line for line in draining_rows)
    healthy_rows = [line for line in lines if world["healthy"] in line]
    assert len(healthy_rows) == 1
    assert f"{len(dx.METRIC_RULES)} rules" in healthy_rows[0]
    assert "no alerts sent: pass --table" in captured.err


@pytest.mark.parametrize(("fail_on", "code"), [("critical", EXIT_FINDINGS), ("info", EXIT_FINDINGS)])
def test_given_fail_on_when_a_finding_reaches_it_then_the_exit_code_is_1(
    world: dict[str, str], fail_on: str, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(check(world, "--fail-on", fail_on, "--format", "json")) == code
    capsys.readouterr()


def test_given_only_a_healthy_proxy_when_failing_on_warning_then_the_exit_code_is_0(
    world: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["check", "--endpoint-url", world["endpoint"], "--region", REGION, "--proxy", world["healthy"]]
    assert main([*args, "--fail-on", "warning"]) == EXIT_OK
    capsys.readouterr()


def test_given_a_dry_run_with_table_and_topic_when_checked_then_messages_are_shown_and_nothing_sent_or_stored(
    moto_endpoint: str,
    dynamodb_endpoint: str,
    summary_table: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    region = "us-east-1"  # DynamoDB Local keeps tables per region: the one the table fixture uses
    proxies = _proxies(moto_endpoint, region)
    table = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name=region)
    now_ms = int(time.time() * 1000)
    records = [parse_message(PIN_LINE, now_ms - 30_000 * i) for i in range(5)]
    SummaryStore(table, summary_table).apply_batch("seed", tally_records(proxies["draining"], records), now_ms)
    sns, sqs = clients(moto_endpoint, "sns", "sqs", region=region)
    topic = sns.create_topic(Name=f"alerts-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "ALERT_TOPIC_ARN": topic,
    }.items():
        monkeypatch.setenv(name, value)

    argv = ["check", "--region", region, "--table", summary_table, "--dry-run", "--format", "json"]
    assert main([*argv, "--proxy", proxies["draining"]]) == EXIT_OK
    findings: list[dict[str, Any]] = json.loads(capsys.readouterr().out)

    forecast = next(f for f in findings if f["rule"] == dx.EXHAUSTION_FORECAST)
    assert forecast["notification"] == {"transition": "new", "channels": ["sns"]}
    assert "pool exhausted in ~8 min" in forecast["messages"]["sns"]["Subject"]
    assert [r["reason"] for r in forecast["top_reasons_last_hour"]] == ["prepared_statement"]
    assert forecast["hints"]["prepared_statement"]  # PostgreSQL-specific advice for the counted reason
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0).get("Messages", []) == []
    stored = table.query(
        TableName=summary_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :alert)",
        ExpressionAttributeValues={
            ":pk": {"S": keys.proxy_pk(proxies["draining"])},
            ":alert": {"S": keys.ALERT_PREFIX},
        },
    )
    assert stored["Items"] == []


@pytest.mark.usefixtures("no_aws_credentials")
def test_given_no_credentials_when_checked_then_a_one_line_error_exits_2(
    world: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(check(world)) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err == (
        "pinwatch check: error: no AWS credentials found; "
        "configure a profile (--profile) or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    )


def test_given_an_unreachable_endpoint_when_checked_then_a_one_line_error_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "--endpoint-url", "http://127.0.0.1:9", "--region", REGION]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("pinwatch check: error: cannot reach the AWS endpoint http://127.0.0.1:9")
    assert "\n" not in err


def test_given_an_invalid_threshold_in_the_environment_when_checked_then_the_error_names_it(
    world: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PINNED_CRITICAL_PCT", "5")
    assert main(check(world)) == EXIT_USAGE
    assert "PINNED_WARNING_PCT (10) must be below PINNED_CRITICAL_PCT (5)" in capsys.readouterr().err
