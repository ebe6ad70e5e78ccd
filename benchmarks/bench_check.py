"""Connection check: GetMetricData calls and wall time per check for 1, 10, 100 and 500 proxies.

Runs the real check (discovery, batched metric read, diagnosis) against in-process moto. The
design bar is calls = ceil(proxies x metrics / 500), independent of how many metrics each proxy
has; the naive alternative, one GetMetricStatistics call per (proxy, metric), is computed next to
it. Only a few proxies get metric data: moto evaluates every query against every stored
datapoint, so with data for all 500 the emulator, not the check, would be measured. The pure
diagnosis of 500 proxies with full 30-minute series is timed separately, without any I/O.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from benchmarks.common import Figure
from pinwatch.check import ConnectionCheck
from pinwatch.config import Thresholds
from pinwatch.diagnose import diagnose
from pinwatch.discovery import ProxyInfo, RdsProxyDiscovery
from pinwatch.metrics import (
    METRICS,
    CloudWatchMetricsReader,
    ProxyMetrics,
    calls_needed,
    metrics_for,
    window_end_ms,
)
from pinwatch.records import EngineFamily
from pinwatch.timebase import MINUTE_MS

REGION = "us-east-1"
SIZES = (1, 10, 100, 500)
WINDOW = 30
PROXIES_WITH_DATA = 2


@contextmanager
def _emulated_aws() -> Iterator[dict[str, Any]]:
    import boto3
    from moto import mock_aws

    # mock_aws supplies fake credentials; moto caps proxies per region at 100 unless told otherwise.
    saved = os.environ.get("MOTO_RDS_PROXY_LIMIT")
    os.environ["MOTO_RDS_PROXY_LIMIT"] = str(max(SIZES) * 2)
    try:
        with mock_aws():
            yield {s: boto3.client(s, region_name=REGION) for s in ("rds", "cloudwatch", "ec2", "secretsmanager")}
    finally:
        if saved is None:
            os.environ.pop("MOTO_RDS_PROXY_LIMIT", None)
        else:
            os.environ["MOTO_RDS_PROXY_LIMIT"] = saved


def _create_proxies(aws: dict[str, Any], count: int) -> list[str]:
    ec2 = aws["ec2"]
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    secret = aws["secretsmanager"].create_secret(Name="bench-db", SecretString="{}")["ARN"]
    names = [f"bench-{i:04d}" for i in range(count)]
    for name in names:
        aws["rds"].create_db_proxy(
            DBProxyName=name,
            EngineFamily="POSTGRESQL",
            Auth=[{"AuthScheme": "SECRETS", "SecretArn": secret}],
            RoleArn="arn:aws:iam::123456789012:role/bench",
            VpcSubnetIds=subnets,
        )
    return names


def _put_metrics(cloudwatch: Any, proxies: list[str], end_ms: int) -> None:
    start_ms = end_ms - WINDOW * MINUTE_MS
    data = [
        {
            "MetricName": spec.name,
            "Dimensions": [{"Name": "ProxyName", "Value": proxy}],
            "Timestamp": datetime.fromtimestamp((start_ms + m * MINUTE_MS) / 1000, tz=UTC),
            "Value": 10.0 + m,
        }
        for proxy in proxies
        for spec in METRICS
        for m in range(WINDOW)
    ]
    for start in range(0, len(data), 1000):
        cloudwatch.put_metric_data(Namespace="AWS/RDS", MetricData=data[start : start + 1000])


def _measure(count: int) -> tuple[int, float]:
    """(GetMetricData calls, wall seconds) of one check run over ``count`` proxies."""
    with _emulated_aws() as aws:
        names = _create_proxies(aws, count)
        now_ms = int(time.time() * 1000)
        if len(metrics_for(window_end_ms(now_ms))) > len(METRICS):
            now_ms -= MINUTE_MS  # measure the usual run, not one of those that also read the periodic metric
        _put_metrics(aws["cloudwatch"], names[:PROXIES_WITH_DATA], window_end_ms(now_ms))
        calls: list[int] = []
        aws["cloudwatch"].meta.events.register("before-call.cloudwatch.GetMetricData", lambda **_: calls.append(1))
        check = ConnectionCheck(
            proxies=RdsProxyDiscovery(aws["rds"]),
            metrics=CloudWatchMetricsReader(aws["cloudwatch"]),
            thresholds=Thresholds(),
            window_minutes=WINDOW,
        )
        start = time.perf_counter()
        result = check.run(now_ms)
        elapsed = time.perf_counter() - start
        if len(result.reports) != count:
            raise RuntimeError(f"checked {len(result.reports)} proxies, expected {count}")
        return len(calls), elapsed


def _diagnose_seconds(count: int) -> float:
    """Diagnosis alone (rules, trends, forecast) for ``count`` proxies with full series: best of 3."""
    start_ms = window_end_ms(int(time.time() * 1000)) - WINDOW * MINUTE_MS
    timestamps = tuple(start_ms + i * MINUTE_MS for i in range(WINDOW))
    series = {spec.name: tuple(10.0 + i * 0.5 for i in range(WINDOW)) for spec in METRICS}
    proxies = [ProxyInfo(f"p{i}", EngineFamily.MYSQL, "available", debug_logging=False) for i in range(count)]
    data = {p.name: ProxyMetrics(p.name, timestamps, series) for p in proxies}
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for proxy in proxies:
            diagnose(proxy, data[proxy.name], Thresholds())
        best = min(best, time.perf_counter() - start)
    return best


def run() -> list[Figure]:
    figures: list[Figure] = []
    wall: dict[int, float] = {}
    for count in SIZES:
        calls, wall[count] = _measure(count)
        bar = calls_needed(count)
        figures.append(
            Figure(
                f"check_getmetricdata_calls_{count}_proxies",
                calls,
                f"GetMetricData calls per check, {count} proxies x {len(METRICS)} metrics (bar: ceil(queries/500) = {bar})",
            )
        )
    figures.append(
        Figure(
            "check_naive_calls_500_proxies",
            500 * len(METRICS),
            "GetMetricStatistics calls a per-metric, per-proxy loop would make for 500 proxies",
        )
    )
    figures.append(
        Figure(
            "check_wall_s_500_proxies",
            wall[500],
            "one check of 500 proxies on in-process moto (discovery incl. 500 target-group reads + metrics + diagnosis)",
        )
    )
    figures.append(
        Figure(
            "check_diagnose_ms_500_proxies",
            _diagnose_seconds(500) * 1000,
            "diagnosis alone of 500 proxies with full 30-minute series (no I/O)",
        )
    )
    return figures
