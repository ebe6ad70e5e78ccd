"""Real RDS proxies and AWS/RDS metric series on moto server, for the connection-check tests.

The series are put with :func:`pinwatch.local.metric_series.put_series` (re-exported here with its
``Shape`` and ``WINDOW``), as the local organization puts its members' series.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import boto3

from pinwatch.local.metric_series import WINDOW as WINDOW
from pinwatch.local.metric_series import Shape as Shape
from pinwatch.local.metric_series import put_series as put_series
from pinwatch.metrics import (
    BORROW_LATENCY,
    BORROWED,
    CLIENT_CONNECTIONS,
    DATABASE_CONNECTIONS,
    IN_TRANSACTION,
    MAX_ALLOWED,
    PINNED,
)

# A region of their own keeps these proxies out of other tests' "every proxy" listings.
REGION = "us-west-2"


def clients(endpoint: str, *services: str, region: str = REGION) -> list[Any]:
    return [boto3.client(s, endpoint_url=endpoint, region_name=region) for s in services]


class ProxyFactory:
    """Creates proxies the way a user would: VPC subnets, a credentials secret and a role."""

    def __init__(self, endpoint: str, region: str = REGION) -> None:
        self.rds, ec2, secrets = clients(endpoint, "rds", "ec2", "secretsmanager", region=region)
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{region}{az}")["Subnet"][
                "SubnetId"
            ]
            for i, az in enumerate("ab")
        ]
        self.secret_arn = secrets.create_secret(Name=f"db-{uuid.uuid4().hex[:8]}", SecretString='{"u":"p"}')["ARN"]

    def create(
        self,
        prefix: str,
        engine: str,
        *,
        debug_logging: bool,
        pinning_filters: Sequence[str] = (),
        pool: Mapping[str, int] | None = None,
    ) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.rds.create_db_proxy(
            DBProxyName=name,
            EngineFamily=engine,
            Auth=[{"AuthScheme": "SECRETS", "SecretArn": self.secret_arn, "IAMAuth": "DISABLED"}],
            RoleArn="arn:aws:iam::123456789012:role/rds-proxy",
            VpcSubnetIds=self.subnets,
            DebugLogging=debug_logging,
            IdleClientTimeout=900,
        )
        config: dict[str, Any] = dict(pool or {})
        if pinning_filters:
            config["SessionPinningFilters"] = list(pinning_filters)
        if config:
            self.rds.modify_db_proxy_target_group(
                DBProxyName=name, TargetGroupName="default", ConnectionPoolConfig=config
            )
        return name


def draining_shapes() -> dict[str, Shape]:
    """Per instance (two instances): pins eat the pool at +3 connections/min in total, 127 of 150 at the end."""
    return {
        CLIENT_CONNECTIONS: lambda m: 22.0 + 1.5 * m,
        DATABASE_CONNECTIONS: lambda m: 20.0 + 1.5 * m,
        PINNED: lambda m: 15.0 + 1.5 * m,
        IN_TRANSACTION: lambda m: 1.0,
        BORROWED: lambda m: 20.0 + 1.5 * m,
        MAX_ALLOWED: lambda m: 75.0,
        BORROW_LATENCY: lambda m: 250_000.0,
    }


def healthy_busy_shapes() -> dict[str, Shape]:
    """Per instance (two instances): 400 clients on 80 connections, nothing pinned (so nothing published)."""
    return {
        CLIENT_CONNECTIONS: lambda m: 200.0,
        DATABASE_CONNECTIONS: lambda m: 40.0 + (m % 3),
        IN_TRANSACTION: lambda m: 5.0,
        BORROWED: lambda m: 25.0,
        MAX_ALLOWED: lambda m: 100.0,
        BORROW_LATENCY: lambda m: 1_500.0,
    }


class CallRecorder:
    """Counts the requests of one operation a client sends, and keeps each request's API parameters."""

    def __init__(self, client: Any, operation: str) -> None:
        self.sent = 0
        self.params: list[dict[str, Any]] = []
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-parameter-build.{service}.{operation}", self._record_params)
        client.meta.events.register(f"before-call.{service}.{operation}", self._count)

    def _record_params(self, params: dict[str, Any], **_: Any) -> None:
        self.params.append(dict(params))

    def _count(self, **_: Any) -> None:
        self.sent += 1
