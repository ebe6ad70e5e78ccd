"""The check function's time is an input: `pinwatch demo` runs the real handler at a simulated minute."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pinwatch.local.lambda_harness import CONNECTION_CHECK_APP, check_context, load_handler, schedule_event
from pinwatch.metrics import window_end_ms
from tests.integration.aws_proxies import ProxyFactory, clients, draining_shapes, put_series

pytestmark = pytest.mark.integration

SCHEDULE_EVENT = schedule_event()

REGION = "us-east-1"
HOURS_AGO = 3


@pytest.fixture
def past_incident(
    moto_endpoint: str, dynamodb_endpoint: str, summary_table: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, int]:
    """A proxy whose metrics show a draining pool that ended hours ago, and nothing since."""
    proxy = ProxyFactory(moto_endpoint, region=REGION).create("clock", "POSTGRESQL", debug_logging=True)
    (cloudwatch,) = clients(moto_endpoint, "cloudwatch", region=REGION)
    then_ms = window_end_ms(int(time.time() * 1000)) - HOURS_AGO * 3_600_000
    put_series(cloudwatch, proxy, then_ms, draining_shapes())
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "SUMMARY_TABLE_NAME": summary_table,
        "ALERT_TOPIC_ARN": "",
        "SLACK_WEBHOOK_SECRET_ARN": "",
        "PROXY_NAMES": proxy,
    }.items():
        monkeypatch.setenv(name, value)
    return proxy, then_ms


def test_given_metrics_from_hours_ago_when_the_check_runs_at_that_minute_then_it_diagnoses_that_minute(
    past_incident: tuple[str, int],
) -> None:
    proxy, then_ms = past_incident
    app = load_handler(CONNECTION_CHECK_APP)
    summary: dict[str, Any] = app.handle(SCHEDULE_EVENT, check_context(), check=app.CHECK, now_ms=then_ms + 5_000)
    assert summary["unhealthyProxies"] == {proxy: "critical"}


def test_given_metrics_from_hours_ago_when_lambda_invokes_the_function_now_then_it_sees_no_recent_data(
    past_incident: tuple[str, int],
) -> None:
    app = load_handler(CONNECTION_CHECK_APP)
    summary: dict[str, Any] = app.lambda_handler(SCHEDULE_EVENT, check_context())
    assert summary["proxies"] == 1
    assert summary["unhealthyProxies"] == {}
