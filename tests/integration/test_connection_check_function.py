"""The scheduled check function, called in process: moto server for RDS/CloudWatch/SNS, DynamoDB Local for the table."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import boto3
import pytest

from pinwatch.config import ConfigError
from pinwatch.local.lambda_harness import CONNECTION_CHECK_APP, check_context, load_handler, schedule_event
from pinwatch.metrics import window_end_ms
from pinwatch.parse import parse_message
from pinwatch.store.summary import SummaryStore
from tests.integration.aws_proxies import ProxyFactory, clients, draining_shapes, healthy_busy_shapes, put_series
from tests.support.builders import tally_records

pytestmark = pytest.mark.integration

SCHEDULE_EVENT = schedule_event()

REGION = "us-east-1"  # DynamoDB Local keeps tables per region: use the one the table fixture uses
PIN_LINE = (
    "2023-09-06T08:28:13.685Z [WARN] [proxyEndpoint=default] [clientConnection=51706963] The client session was "
    "pinned to the database connection [dbConnection=973587044] for the remainder of the session. The proxy can't "
    "reuse this connection until the session ends. Reason: SQL changed session settings that the proxy doesn't "
    'track. Consider moving session configuration to the proxy\'s initialization query. Digest: "set names ?".'
)


@pytest.fixture
def deployed(
    moto_endpoint: str, dynamodb_endpoint: str, summary_table: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Two proxies with metrics, pins counted in the summary table, an alert topic with a queue subscribed."""
    factory = ProxyFactory(moto_endpoint, region=REGION)
    draining = factory.create("orders", "MYSQL", debug_logging=True)
    healthy = factory.create("billing", "POSTGRESQL", debug_logging=True)
    cloudwatch, sns, sqs = clients(moto_endpoint, "cloudwatch", "sns", "sqs", region=REGION)
    now_ms = int(time.time() * 1000)
    put_series(cloudwatch, draining, window_end_ms(now_ms), draining_shapes())
    put_series(cloudwatch, healthy, window_end_ms(now_ms), healthy_busy_shapes())

    table_client = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name=REGION)
    records = [parse_message(PIN_LINE, now_ms - 60_000 * i) for i in range(12)]
    SummaryStore(table_client, summary_table).apply_batch(
        f"seed-{uuid.uuid4().hex}", tally_records(draining, records), now_ms
    )

    topic = sns.create_topic(Name=f"pinwatch-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})

    env = {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "SUMMARY_TABLE_NAME": summary_table,
        "ALERT_TOPIC_ARN": topic,
        "SLACK_WEBHOOK_SECRET_ARN": "",
        "PROXY_NAMES": f"{draining},{healthy}",
        "POWERTOOLS_SERVICE_NAME": "pinwatch",
        "POWERTOOLS_METRICS_NAMESPACE": "Pinwatch",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {"draining": draining, "healthy": healthy, "sqs": sqs, "queue_url": queue_url}


def emf_documents(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{") and '"_aws"' in line]


def test_given_a_draining_proxy_when_the_function_runs_then_one_sns_alert_carries_eta_reasons_and_hints(
    deployed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    app = load_handler(CONNECTION_CHECK_APP)
    summary = app.lambda_handler(SCHEDULE_EVENT, check_context())

    assert summary["proxies"] == 2
    assert summary["unhealthyProxies"] == {deployed["draining"]: "critical"}
    assert (summary["alertsSent"], summary["alertDeliveryFailures"], summary["failedProxies"]) == (1, 0, [])
    messages = deployed["sqs"].receive_message(QueueUrl=deployed["queue_url"], WaitTimeSeconds=1)["Messages"]
    (body,) = [m["Body"] for m in messages]
    assert deployed["draining"] in body
    assert "pool exhausted in ~8 min" in body
    assert "session_settings" in body or "session settings" in body.lower()
    # The numbers and a hint for the reason the summary table counted, for this engine.
    assert re.search(r"DB connections in use / max\s+127 / 150 \(85%\)", body)
    assert re.search(r"Pinned\s+117 \(92%\)", body)
    assert "MySQL: only untracked variables pin" in body

    docs = emf_documents(capsys.readouterr().out)
    run = next(d for d in docs if "ChecksRun" in d)
    # EMF documents carry each metric's values as a list.
    assert (run["ChecksRun"], run["ProxiesChecked"], run["AlertsSent"], run["AlertDeliveryFailures"]) == (
        [1.0],
        [2.0],
        [1.0],
        [0.0],
    )
    by_severity = {d["Severity"]: d["FindingsBySeverity"][0] for d in docs if "FindingsBySeverity" in d}
    assert set(by_severity) == {"ok", "info", "warning", "critical"}
    assert by_severity["critical"] >= 2  # pinned share and the exhaustion forecast


def test_given_an_alert_already_sent_when_the_function_runs_again_then_nothing_new_is_sent(
    deployed: dict[str, Any],
) -> None:
    app = load_handler(CONNECTION_CHECK_APP)
    first = app.lambda_handler(SCHEDULE_EVENT, check_context())
    second = app.lambda_handler(SCHEDULE_EVENT, check_context())
    assert (first["alertsSent"], second["alertsSent"]) == (1, 0)
    assert second["unhealthyProxies"] == {deployed["draining"]: "critical"}


def test_given_an_invalid_setting_when_the_function_cold_starts_then_it_fails_naming_the_variable(
    deployed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POOL_WARNING_PCT", "eighty")
    with pytest.raises(ConfigError, match="POOL_WARNING_PCT='eighty' is not a number"):
        load_handler(CONNECTION_CHECK_APP)
