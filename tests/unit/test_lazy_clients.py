"""Clients made at first use talk to the endpoint the cold start's environment named."""

from __future__ import annotations

from typing import Any

import pytest

from pinwatch.wiring import LazyClient, environment_settings


def test_given_service_and_generic_endpoints_when_read_then_the_service_one_wins_and_the_region_is_kept() -> None:
    environ = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000",
        "AWS_REGION": "eu-west-1",
    }
    assert environment_settings("dynamodb", environ) == {
        "endpoint_url": "http://127.0.0.1:8000",
        "region_name": "eu-west-1",
    }
    assert environment_settings("rds", environ) == {"endpoint_url": "http://127.0.0.1:5000", "region_name": "eu-west-1"}
    assert environment_settings("rds", {}) == {}


def test_given_a_service_whose_id_differs_from_its_client_name_when_read_then_boto3s_variable_name_is_used() -> None:
    environ = {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:7000"}
    assert environment_settings("secretsmanager", environ)["endpoint_url"] == "http://127.0.0.1:7000"
    environ = {"AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": "http://127.0.0.1:7001"}
    assert environment_settings("logs", environ)["endpoint_url"] == "http://127.0.0.1:7001"


def test_given_the_environment_changes_after_the_cold_start_when_first_used_then_the_client_keeps_the_cold_start_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[tuple[str, dict[str, Any]]] = []

    def factory(service: str, **settings: Any) -> Any:
        made.append((service, settings))
        return type("Client", (), {"ping": lambda self: "pong"})()

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    client = LazyClient("rds", factory)
    assert made == []  # nothing is made before it is used
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert client.ping() == "pong"
    assert client.ping() == "pong"
    assert made == [("rds", {"endpoint_url": "http://127.0.0.1:5000", "region_name": "us-east-1"})]
