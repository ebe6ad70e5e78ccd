"""The stream ingest handler (organization mode), called in process with DynamoDB Local and moto's SQS behind it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from pinwatch.config import ConfigError
from pinwatch.local.lambda_harness import load_handler
from pinwatch.local.log_destination import control_document, destination_document, encode
from pinwatch.local.stream_mapping import PIN_STREAM_APP, kinesis_event, kinesis_record, stream_context
from pinwatch.parking import SqsParking
from pinwatch.store import keys
from pinwatch.store.summary import SummaryStore
from tests.integration.test_pin_ingest_handler import capture_logs, metric_values
from tests.payloads import log_events
from tests.support.table import fail_write, own_client, proxies_seen, total_counts

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_795_600_800_000
GROUP, STREAM = "/aws/rds/proxy/orders-db", "proxy-orders-db-1"
A, B = "111111111111", "222222222222"


class Output:
    def __init__(self, text: str) -> None:
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        self.emf = [doc for doc in lines if "_aws" in doc]
        self.logs = [doc for doc in lines if "_aws" not in doc]

    def metric(self, name: str) -> float:
        return sum(v for _, v in metric_values(self.emf, name))


@pytest.fixture
def invoke(pin_stream_app: ModuleType, capsys: pytest.CaptureFixture[str]) -> Any:
    def call(records: list[dict[str, Any]], **overrides: Any) -> tuple[dict[str, Any], Output]:
        capture_logs(pin_stream_app)
        capsys.readouterr()
        if overrides:
            kwargs = {
                "store": pin_stream_app.STORE,
                "parking": pin_stream_app.PARKING,
                "now_ms": T0 + 3_600_000,
                **overrides,
            }
            response = pin_stream_app.handle(kinesis_event(records), stream_context(), **kwargs)
        else:
            response = pin_stream_app.lambda_handler(kinesis_event(records), stream_context())
        return response, Output(capsys.readouterr().out)

    return call


def member_record(account: str, region: str, seq: int, *, seed: int = 7, count: int = 30) -> dict[str, Any]:
    events = log_events(count, T0, 30 * 60_000, seed=seed)
    return kinesis_record(
        encode(destination_document(account, region, GROUP, STREAM, events)), sequence_number=str(seq)
    )


def key(account: str, region: str = "eu-west-1") -> str:
    return f"{account}:{region}:orders-db"


def totals_by_proxy(dynamodb_client: Any, table: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for (pk, _), count in total_counts(dynamodb_client, table).items():
        out[pk] = out.get(pk, 0) + count
    return out


def test_given_two_accounts_with_the_same_proxy_group_and_stream_when_handled_then_each_is_counted_under_its_own_key(
    invoke: Any, dynamodb_client: Any, summary_table: str
) -> None:
    # The same lines, ids included, from two accounts: only the scope tells them apart.
    records = [member_record(A, "eu-west-1", 1), member_record(B, "eu-west-1", 2)]

    response, out = invoke(records)

    assert response == {"batchItemFailures": []}
    assert totals_by_proxy(dynamodb_client, summary_table) == {keys.proxy_pk(key(A)): 30, keys.proxy_pk(key(B)): 30}
    assert proxies_seen(dynamodb_client, summary_table) == {key(A), key(B)}
    counted = [r for r in out.logs if r["message"] == "Pin counts"]
    assert {r["proxy"] for r in counted} == {key(A), key(B)}
    assert out.metric("PinEvents") + out.metric("WouldPinEvents") == 2 * 2 * 30  # per-reason and per-record series


def test_given_a_record_twice_in_one_batch_when_handled_then_it_is_counted_once_and_reported_duplicate(
    invoke: Any, dynamodb_client: Any, summary_table: str
) -> None:
    first = member_record(A, "eu-west-1", 1)
    again = {**first, "kinesis": {**first["kinesis"], "sequenceNumber": "2"}}

    response, out = invoke([first, again])

    assert response == {"batchItemFailures": []}
    assert totals_by_proxy(dynamodb_client, summary_table) == {keys.proxy_pk(key(A)): 30}
    assert out.metric("DuplicateBatches") == 1


def test_given_an_undecodable_record_when_handled_then_it_is_parked_with_its_data_and_the_rest_is_applied(
    invoke: Any, dynamodb_client: Any, summary_table: str, parking_queue_url: str, moto_endpoint: str
) -> None:
    bad = kinesis_record(b"\x1f\x8b truncated gzip", sequence_number="2", shard_id="shardId-000000000003")

    response, out = invoke([member_record(A, "eu-west-1", 1), bad, member_record(B, "eu-west-1", 3)])

    assert response == {"batchItemFailures": []}
    assert totals_by_proxy(dynamodb_client, summary_table) == {keys.proxy_pk(key(A)): 30, keys.proxy_pk(key(B)): 30}
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    [message] = sqs.receive_message(QueueUrl=parking_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert message["Body"] == bad["kinesis"]["data"]
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert "gzip" in attributes["error"]
    assert (attributes["sequenceNumber"], attributes["shardId"]) == ("2", "shardId-000000000003")
    assert attributes["eventSourceARN"] == bad["eventSourceARN"]
    assert out.metric("InvalidPayloads") == 1


def test_given_parking_fails_when_handled_then_the_record_is_a_batch_item_failure_and_the_others_are_applied(
    invoke: Any, pin_stream_app: ModuleType, dynamodb_client: Any, summary_table: str, moto_endpoint: str
) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    missing = SqsParking(sqs, f"{moto_endpoint}/123456789012/no-such-queue")
    bad = kinesis_record(b"not a payload", sequence_number="2")

    response, out = invoke([member_record(A, "eu-west-1", 1), bad, member_record(B, "eu-west-1", 3)], parking=missing)

    assert response == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert totals_by_proxy(dynamodb_client, summary_table) == {keys.proxy_pk(key(A)): 30, keys.proxy_pk(key(B)): 30}
    assert out.metric("FailedBatches") == 1
    assert out.metric("InvalidPayloads") == 0


def test_given_a_failing_write_when_handled_then_that_record_fails_and_its_retry_makes_the_counts_exact(
    invoke: Any, dynamodb_endpoint: str, dynamodb_client: Any, summary_table: str
) -> None:
    client = own_client(dynamodb_endpoint)
    fail_write(client, 2)  # the second record's transaction
    store = SummaryStore(client, summary_table)
    records = [member_record(A, "eu-west-1", 1), member_record(B, "eu-west-1", 2, seed=8)]

    first, out = invoke(records, store=store)
    retry, _ = invoke(records[1:], store=store)  # Lambda re-sends from the failed sequence number

    assert first == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert out.metric("FailedBatches") == 1
    assert retry == {"batchItemFailures": []}
    assert totals_by_proxy(dynamodb_client, summary_table) == {keys.proxy_pk(key(A)): 30, keys.proxy_pk(key(B)): 30}


def test_given_a_control_message_when_handled_then_it_is_acknowledged_and_nothing_is_written(
    invoke: Any, dynamodb_client: Any, summary_table: str
) -> None:
    control = kinesis_record(
        encode(control_document("arn:aws:logs:eu-west-1:999999999999:destination:x", T0)), sequence_number="1"
    )

    response, out = invoke([control])

    assert response == {"batchItemFailures": []}
    assert dynamodb_client.scan(TableName=summary_table)["Items"] == []
    assert out.metric("ControlMessages") == 1


def test_given_no_parking_queue_when_the_function_cold_starts_then_it_fails_saying_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUMMARY_TABLE_NAME", "pinwatch-summary")
    monkeypatch.delenv("PARKING_QUEUE_URL", raising=False)

    with pytest.raises(ConfigError, match="PARKING_QUEUE_URL is not set"):
        load_handler(PIN_STREAM_APP)


def test_given_the_sample_kinesis_event_when_handled_then_each_members_lines_are_counted_under_its_key(
    invoke: Any, dynamodb_client: Any, summary_table: str
) -> None:
    event = json.loads((ROOT / "events" / "kinesis-org.json").read_text())
    source = json.loads((ROOT / "events" / "src" / "kinesis-org.json").read_text())
    documents = [r["kinesis"]["data"] for r in source["Records"]]
    expected = {
        keys.proxy_pk(f"{d['owner']}:{d['subscriptionFilters'][0].removeprefix('pinwatch-')}:orders-db"): len(
            d["logEvents"]
        )
        for d in documents
        if d["messageType"] == "DATA_MESSAGE"
    }

    response, out = invoke(event["Records"])

    assert response == {"batchItemFailures": []}
    assert len(expected) == 2
    assert totals_by_proxy(dynamodb_client, summary_table) == expected
    assert out.metric("ControlMessages") == 1


def test_given_a_cold_start_when_the_handler_is_imported_then_no_cli_local_tooling_or_sqs_client_is_loaded() -> None:
    # A fresh interpreter: this test process has the CLI, the emulators and boto3's models loaded already.
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(PIN_STREAM_APP)!r})\n"
        "app = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(app)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'yaml', 'moto')"
        " or m.startswith(('pinwatch.cli', 'pinwatch.local'))))\n"
        "print(app.PARKING._sqs._client)\n"
    )
    env = {
        **os.environ,
        "SUMMARY_TABLE_NAME": "pinwatch-summary",
        "PARKING_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/pinwatch-dlq",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env)

    assert out.stdout.split("\n")[:2] == ["[]", "None"]
