"""Fault-injection fixtures: fault proxies in front of DynamoDB Local and moto server, fast botocore backoff."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fault_proxy import FaultProxy, fault_proxy, scale_botocore_backoff


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    scale_botocore_backoff(monkeypatch)


@pytest.fixture
def table_proxy(dynamodb_endpoint: str) -> Iterator[FaultProxy]:
    """DynamoDB Local behind a fault proxy (no faults until a test asks for them)."""
    with fault_proxy(dynamodb_endpoint, seed=7) as proxy:
        yield proxy


@pytest.fixture
def aws_proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    """moto server behind a fault proxy (no faults until a test asks for them)."""
    with fault_proxy(moto_endpoint, seed=11) as proxy:
        yield proxy
