"""Traffic shapes through the real ``pinwatch check --dry-run --format json`` on moto server.

Each shape in :mod:`tests.integration.traffic_shapes` becomes its own proxy (with its target-group
settings), publishing per-instance datapoints for 30 minutes; one check run reads them all, and
each shape's row says which findings it must raise, at which severity, and which must stay quiet.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from typing import Any

import pytest

from pinwatch.cli import EXIT_OK, main
from pinwatch.findings import Severity
from pinwatch.metrics import METRICS, window_end_ms
from tests.integration.aws_proxies import ProxyFactory, Shape, clients, put_series
from tests.integration.traffic_shapes import NEWEST, SHAPES, WINDOW, TrafficShape

pytestmark = pytest.mark.integration

REGION = "ap-southeast-2"  # a region of its own: no other test's proxies in the listing
Findings = dict[str, dict[str, Any]]  # rule -> finding, as ``pinwatch check --format json`` prints it


# Latency is a per-borrow figure every instance reports as is (read as Average); counts are shares (Sum).
_AVERAGED = frozenset(spec.name for spec in METRICS if spec.stat == "Average")


def _per_instance(shape: TrafficShape, metric: str) -> Shape:
    total = shape.series[metric]
    share = 1 if metric in _AVERAGED else shape.instances

    def value(minute: int) -> float | None:
        v = total(minute)
        return None if v is None else v / share

    return value


def _publish(factory: ProxyFactory, cloudwatch: Any, index: int, shape: TrafficShape, end_ms: int) -> str:
    name = factory.create(f"shape{index}", "POSTGRESQL", debug_logging=shape.debug_logging, pool=shape.pool)
    partial = shape.newest_minute_instances

    def published(minute: int) -> int:
        return partial if partial is not None and minute == NEWEST else shape.instances

    per_instance = {metric: _per_instance(shape, metric) for metric in shape.series}
    put_series(cloudwatch, name, end_ms, per_instance, instances=shape.instances, window=WINDOW, published=published)
    return name


@pytest.fixture(scope="module")
def checked(moto_endpoint: str) -> dict[str, Findings]:
    """Shape name -> its proxy's findings, from one dry-run check of every shape's proxy."""
    factory = ProxyFactory(moto_endpoint, region=REGION)
    (cloudwatch,) = clients(moto_endpoint, "cloudwatch", region=REGION)
    end_ms = window_end_ms(int(time.time() * 1000))
    names = {_publish(factory, cloudwatch, i, shape, end_ms): shape.name for i, shape in enumerate(SHAPES)}
    argv = ["check", "--endpoint-url", moto_endpoint, "--region", REGION, "--dry-run", "--format", "json"]
    for name in names:
        argv += ["--proxy", name]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(argv) == EXIT_OK
    out: dict[str, Findings] = {shape.name: {} for shape in SHAPES}
    for finding in json.loads(stdout.getvalue()):
        assert {"proxy", "rule", "severity", "summary", "details"} <= finding.keys()
        out[names[finding["proxy"]]][finding["rule"]] = finding
    return out


def _rank(severity: str) -> int:
    return Severity(severity).rank


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_given_a_traffic_shape_when_checked_then_its_row_holds(
    shape: TrafficShape, checked: dict[str, Findings]
) -> None:
    findings = checked[shape.name]
    got = {rule: f["severity"] for rule, f in findings.items()}
    for rule, severity in shape.raises.items():
        assert got[rule] == severity.value, f"{rule}: {findings[rule]['summary']}"
        assert not findings[rule]["insufficient_data"]
    loud = {rule: got[rule] for rule in shape.quiet if _rank(got[rule]) >= Severity.WARNING.rank}
    assert loud == {}, [findings[r]["summary"] for r in loud]
    worst = max(got.values(), key=_rank)
    assert worst == shape.worst.value, {r: s for r, s in got.items() if s == worst}
    for rule in shape.decided:
        assert not findings[rule]["insufficient_data"], findings[rule]["summary"]
    for rule, text in shape.mentions.items():
        assert text in findings[rule]["summary"]
    for rule, figures in shape.figures.items():
        assert {k: findings[rule]["figures"][k] for k in figures} == pytest.approx(figures), findings[rule]["summary"]
