"""The ingest Lambda handler, called in process with its environment and DynamoDB Local behind it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pinwatch.config import ConfigError
from pinwatch.ingest import InvalidPayload
from pinwatch.local.lambda_harness import PIN_INGEST_APP, LambdaContext, load_handler
from pinwatch.store import keys
from tests.payloads import log_events, subscription_event, wrap

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_795_600_800_000


def cold_start() -> ModuleType:
    """Import the handler module afresh, reading the environment as it is now."""
    return load_handler(PIN_INGEST_APP)


@pytest.fixture
def handler_env(monkeypatch: pytest.MonkeyPatch, dynamodb_endpoint: str, summary_table: str) -> str:
    monkeypatch.setenv("SUMMARY_TABLE_NAME", summary_table)
    monkeypatch.setenv("AWS_ENDPOINT_URL", dynamodb_endpoint)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "pinwatch")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "PinwatchTest")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    return summary_table


@pytest.fixture
def app(handler_env: str) -> ModuleType:
    return cold_start()


Invoke = Callable[[Any], tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]]


@pytest.fixture
def invoke(app: ModuleType, capsys: pytest.CaptureFixture[str]) -> Invoke:
    """Call the handler; return (result, EMF documents, log records) printed during the call."""

    def call(event: Any) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
        capture_logs(app)
        capsys.readouterr()
        error: BaseException | None = None
        result = None
        try:
            result = app.lambda_handler(event, LambdaContext())
        except Exception as exc:  # re-raised below, after the output is captured
            error = exc
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        emf = [doc for doc in lines if "_aws" in doc]
        logs = [doc for doc in lines if "_aws" not in doc]
        if error is not None:
            raise error
        return result, emf, logs

    return call


def capture_logs(app: ModuleType) -> None:
    # Powertools keeps one stdlib logger per service name across imports, bound to the stdout of the
    # first import; point it at the stdout this test captures (Lambda reads the real one).
    handler = app.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    handler.stream = sys.stdout  # not setStream(): that flushes the previous, already closed capture


def metric_values(emf: list[dict[str, Any]], name: str) -> list[tuple[dict[str, str], float]]:
    """(dimensions, value) of every EMF document carrying `name`."""
    out = []
    for doc in emf:
        [directive] = doc["_aws"]["CloudWatchMetrics"]
        if any(m["Name"] == name for m in directive["Metrics"]):
            dims = {d: doc[d] for dims in directive["Dimensions"] for d in dims}
            out.append((dims, sum(doc[name]) if isinstance(doc[name], list) else doc[name]))
    return out


def table_items(dynamodb_client: Any, table: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = dynamodb_client.scan(TableName=table)["Items"]
    return found


def test_given_one_payload_delivered_three_times_when_handled_then_the_table_and_metrics_count_it_once(
    invoke: Invoke, dynamodb_client: Any, handler_env: str
) -> None:
    event = subscription_event(log_events(300, T0, 30 * 60_000), log_group="/aws/rds/proxy/orders-db")

    runs = [invoke(event) for _ in range(3)]

    totals = {
        i[keys.SK]["S"]: int(i["count"]["N"])
        for i in table_items(dynamodb_client, handler_env)
        if i[keys.SK]["S"].startswith(keys.TOTAL_PREFIX)
    }
    assert sum(totals.values()) == 300
    first_emf, repeat_emf = runs[0][1], runs[1][1]
    pins = sum(c for sk, c in totals.items() if sk.startswith("TOTAL#PIN#"))
    per_reason = metric_values(first_emf, "PinEvents")
    reason_docs = [(d, v) for d, v in per_reason if "Reason" in d]
    assert sum(v for _, v in reason_docs) == pins
    assert len(reason_docs) == len({d["Reason"] for d, _ in reason_docs})  # one document per reason
    # Fleet-level series only: a series per proxy would bill every pinning proxy for its own metrics.
    assert all(set(d) == {"Reason", "service"} for d, _ in reason_docs)
    assert all("ProxyName" not in d for _, emf, _ in runs for d, _ in metric_values(emf, "PinEvents"))
    # Per proxy and reason, one log line each, for the Contributor Insights rule.
    counted = [r for r in runs[0][2] if r["message"] == "Pin counts" and r["kind"] == "PinEvents"]
    assert {r["proxy"] for r in counted} == {"orders-db"}
    assert sum(r["count"] for r in counted) == pins
    assert not [r for _, _, logs in runs[1:] for r in logs if r["message"] == "Pin counts"]
    assert all(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "PinwatchTest" for doc in first_emf)
    assert [v for _, v in metric_values(first_emf, "DuplicateBatches")] == [0]
    for _, emf, _ in runs[1:]:
        assert [v for _, v in metric_values(emf, "DuplicateBatches")] == [1]
        assert [d for d, _ in metric_values(emf, "PinEvents") if "Reason" in d] == []
    assert [v for d, v in metric_values(repeat_emf, "PinEvents")] == [0]
    assert [r[0]["duplicateChunks"] for r in runs] == [0, 1, 1]


def test_given_a_batch_when_handled_then_every_log_line_names_the_log_group_and_stream_and_no_statement_leaks(
    invoke: Invoke,
) -> None:
    event = subscription_event(log_events(50, T0, 60_000), log_group="/aws/rds/proxy/orders-db", log_stream="s-9")

    _, _, logs = invoke(event)

    assert logs
    assert all(r["log_group"] == "/aws/rds/proxy/orders-db" and r["log_stream"] == "s-9" for r in logs)
    text = json.dumps(logs)
    assert "search_path" not in text
    assert "dbConnection" not in text


def test_given_unparsed_lines_when_handled_then_unparsed_lines_are_a_metric(invoke: Invoke) -> None:
    events = [*log_events(5, T0, 1000), {"id": "j1", "timestamp": T0 + 9, "message": '{"not": "a proxy line"}'}]

    _, emf, _ = invoke(subscription_event(events))

    assert [v for _, v in metric_values(emf, "UnparsedLines")] == [1]


def test_given_a_control_message_when_handled_then_it_is_acknowledged_and_nothing_is_written(
    invoke: Invoke, dynamodb_client: Any, handler_env: str
) -> None:
    control = json.loads((ROOT / "events" / "src" / "logs-control.json").read_text())

    result, emf, _ = invoke(wrap(control))

    assert result == {"messageType": "CONTROL_MESSAGE", "applied": False}
    assert table_items(dynamodb_client, handler_env) == []
    assert metric_values(emf, "PinEvents") == []
    assert [v for _, v in metric_values(emf, "ControlMessages")] == [1]


def test_given_a_broken_payload_when_handled_then_it_fails_with_invalid_payload_and_writes_nothing(
    invoke: Invoke, dynamodb_client: Any, handler_env: str
) -> None:
    with pytest.raises(InvalidPayload, match="gzip"):
        invoke({"awslogs": {"data": "aGVsbG8gd29ybGQ="}})

    assert table_items(dynamodb_client, handler_env) == []


def test_given_a_broken_payload_when_handled_then_the_invalid_payload_metric_is_emitted(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    capture_logs(app)
    capsys.readouterr()

    with pytest.raises(InvalidPayload):
        app.lambda_handler({"awslogs": {"data": "aGVsbG8gd29ybGQ="}}, LambdaContext())

    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert [v for _, v in metric_values(emf, "InvalidPayloads")] == [1]


@pytest.mark.parametrize("log_group", ["/aws/rds/proxy/", "/aws/rds/proxy//", "/aws/rds/proxy/orders--db"])
def test_given_a_proxy_log_group_without_a_valid_name_when_handled_then_it_is_an_invalid_payload_and_nothing_is_written(
    app: ModuleType,
    capsys: pytest.CaptureFixture[str],
    dynamodb_client: Any,
    handler_env: str,
    log_group: str,
) -> None:
    capture_logs(app)
    capsys.readouterr()

    with pytest.raises(InvalidPayload, match="RDS proxy name"):
        app.lambda_handler(subscription_event(log_events(2, T0, 60_000), log_group=log_group), LambdaContext())

    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert [v for _, v in metric_values(emf, "InvalidPayloads")] == [1]
    assert metric_values(emf, "PinEvents") == []  # no metric with an empty ProxyName dimension
    assert table_items(dynamodb_client, handler_env) == []


def test_given_the_sam_sample_event_when_handled_then_it_is_flagged_foreign_and_counts_no_pins(
    invoke: Invoke, dynamodb_client: Any, handler_env: str
) -> None:
    event = json.loads((ROOT / "tests" / "fixtures" / "sam-cloudwatch-logs-event.json").read_text())

    result, emf, logs = invoke(event)

    assert (result["proxy"], result["foreignLogGroup"], result["pinned"]) == ("testLogGroup", True, 0)
    assert metric_values(emf, "ForeignLogGroup") == [({"service": "pinwatch"}, 1)]
    assert [v for _, v in metric_values(emf, "PinEvents")] == [0]
    assert any(r["level"] == "WARNING" for r in logs)
    hourly = [i for i in table_items(dynamodb_client, handler_env) if i[keys.SK]["S"].startswith("HOUR#")]
    assert hourly == []


def test_given_the_table_is_missing_when_handled_then_the_error_propagates_for_a_retry(
    monkeypatch: pytest.MonkeyPatch, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUMMARY_TABLE_NAME", "pinwatch-missing-table")
    monkeypatch.setenv("AWS_ENDPOINT_URL", dynamodb_endpoint)
    app = cold_start()
    capture_logs(app)

    with pytest.raises(ClientError):
        app.lambda_handler(subscription_event(log_events(3, T0, 1000)), LambdaContext())

    out = capsys.readouterr().out
    assert "Batch not applied" in out
    emf = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    assert [v for _, v in metric_values(emf, "FailedBatches")] == [1]


def test_given_no_table_name_when_the_function_cold_starts_then_it_fails_saying_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SUMMARY_TABLE_NAME", raising=False)

    with pytest.raises(ConfigError, match="SUMMARY_TABLE_NAME is not set"):
        cold_start()


def test_given_an_invalid_ttl_when_the_function_cold_starts_then_it_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUMMARY_TABLE_NAME", "pinwatch-summary")
    monkeypatch.setenv("SUMMARY_TTL_DAYS", "ninety")

    with pytest.raises(ConfigError, match="SUMMARY_TTL_DAYS"):
        cold_start()


def test_given_a_cold_start_when_the_handler_is_imported_then_no_cli_or_local_tooling_is_loaded() -> None:
    # A fresh interpreter: this test process has the CLI and the local emulators loaded already.
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(PIN_INGEST_APP)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'yaml', 'moto')"
        " or m.startswith(('pinwatch.cli', 'pinwatch.local'))))\n"
    )
    env = {**os.environ, "SUMMARY_TABLE_NAME": "pinwatch-summary", "AWS_DEFAULT_REGION": "us-east-1"}

    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env)

    assert out.stdout.strip() == "[]"
