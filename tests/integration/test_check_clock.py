"""The check function's clock: what `pinwatch demo` swaps to run the real handler at a simulated minute."""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pinwatch.metrics import window_end_ms
from tests.integration.aws_proxies import ProxyFactory, clients, draining_shapes, put_series

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "functions" / "connection_check" / "app.py"
SCHEDULE_EVENT = json.loads((ROOT / "events" / "schedule.json").read_text())
REGION = "us-east-1"
HOURS_AGO = 3


@dataclass
class Context:
    function_name: str = "pinwatch-connection-check"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:pinwatch-connection-check"
    aws_request_id: str = "c10c0000-0000-4000-8000-000000000000"


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"connection_check_clock_{uuid.uuid4().hex}", APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_given_metrics_from_hours_ago_when_the_clock_is_set_back_to_then_the_check_diagnoses_that_minute(
    past_incident: tuple[str, int],
) -> None:
    proxy, then_ms = past_incident
    app = load_app()
    app.clock = lambda: (then_ms + 5_000) / 1000
    summary: dict[str, Any] = app.lambda_handler(SCHEDULE_EVENT, Context())
    assert summary["unhealthyProxies"] == {proxy: "critical"}


def test_given_metrics_from_hours_ago_when_the_wall_clock_is_used_then_the_check_sees_no_recent_data(
    past_incident: tuple[str, int],
) -> None:
    app = load_app()
    assert app.clock is time.time
    summary: dict[str, Any] = app.lambda_handler(SCHEDULE_EVENT, Context())
    assert summary["proxies"] == 1
    assert summary["unhealthyProxies"] == {}
