"""Fixtures of the integration suites that run the stream ingest handler (organization mode)."""

from __future__ import annotations

import uuid
from types import ModuleType

import boto3
import pytest

from pinwatch.local.lambda_harness import load_handler
from pinwatch.local.stream_mapping import PIN_STREAM_APP


@pytest.fixture
def parking_queue_url(moto_endpoint: str) -> str:
    """A new SQS queue in moto: the stack's dead-letter queue, where the handler parks what it cannot store."""
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    url: str = sqs.create_queue(QueueName=f"pinwatch-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    return url


@pytest.fixture
def pin_stream_app(
    monkeypatch: pytest.MonkeyPatch,
    dynamodb_endpoint: str,
    moto_endpoint: str,
    summary_table: str,
    parking_queue_url: str,
) -> ModuleType:
    """The stream ingest handler, cold-started with the stack's environment against the local services."""
    monkeypatch.setenv("SUMMARY_TABLE_NAME", summary_table)
    monkeypatch.setenv("PARKING_QUEUE_URL", parking_queue_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_endpoint)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "pinwatch")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "PinwatchTest")
    # The metrics are part of what the handler does: a disabling setting of the shell must not apply.
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    return load_handler(PIN_STREAM_APP)
