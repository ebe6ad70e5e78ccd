"""One proxy's API failure is that proxy's alone: the others are checked and alerted as usual.

Three proxies draining their pools on moto server, the alert state on DynamoDB Local, a recording
channel. RDS and CloudWatch are real clients wrapped by adapters that fail the calls a test names,
with the errors botocore raises once its own retries are spent.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pinwatch.alerts import AlertDispatcher, ChannelSpec
from pinwatch.alerts.render import RenderSettings, render_sns
from pinwatch.check import NOT_CHECKED_STATUS, ConnectionCheck
from pinwatch.config import Thresholds
from pinwatch.diagnose import NOT_CHECKED, PINNED_SHARE
from pinwatch.discovery import RdsProxyDiscovery
from pinwatch.findings import Severity
from pinwatch.metrics import CALL_ATTEMPTS, CloudWatchMetricsReader, window_end_ms
from pinwatch.store.alert_state import AlertStateStore
from tests.integration.aws_proxies import WINDOW, ProxyFactory, clients, draining_shapes, put_series
from tests.support.fakes import Recorder

pytestmark = pytest.mark.integration


def throttled(operation: str) -> ClientError:
    """What botocore raises when throttling outlasts its retries."""
    return ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, operation)


class FailingRds:
    """A real RDS client whose target-group read fails for the named proxies."""

    def __init__(self, client: Any, fail_for: frozenset[str]) -> None:
        self._client = client
        self._fail_for = fail_for

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def describe_db_proxy_target_groups(self, **kwargs: Any) -> Any:
        if kwargs["DBProxyName"] in self._fail_for:
            raise throttled("DescribeDBProxyTargetGroups")
        return self._client.describe_db_proxy_target_groups(**kwargs)


class FailingCloudWatch:
    """A real CloudWatch client whose first ``failures`` GetMetricData calls fail."""

    def __init__(self, client: Any, failures: int) -> None:
        self._client = client
        self.failures = failures
        self.calls = 0

    def get_metric_data(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise throttled("GetMetricData")
        return self._client.get_metric_data(**kwargs)


@pytest.fixture(scope="module")
def proxies(moto_endpoint: str) -> dict[str, Any]:
    factory = ProxyFactory(moto_endpoint)
    names = [factory.create(prefix, "MYSQL", debug_logging=True) for prefix in ("orders", "billing", "search")]
    (cloudwatch,) = clients(moto_endpoint, "cloudwatch")
    now_ms = int(time.time() * 1000)
    for name in names:
        put_series(cloudwatch, name, window_end_ms(now_ms), draining_shapes())
    return {"names": names, "now_ms": now_ms, "endpoint": moto_endpoint}


def run_check(
    proxies: dict[str, Any], dynamodb_client: Any, table: str, *, rds: Any, cloudwatch: Any
) -> tuple[Any, Recorder, AlertStateStore]:
    recorder = Recorder()
    store = AlertStateStore(dynamodb_client, table)
    dispatcher = AlertDispatcher(store, [ChannelSpec("sns", partial(render_sns, settings=RenderSettings()), recorder)])
    check = ConnectionCheck(
        proxies=RdsProxyDiscovery(rds),
        metrics=CloudWatchMetricsReader(cloudwatch),
        thresholds=Thresholds(),
        window_minutes=WINDOW,
        proxy_names=proxies["names"],
        dispatcher=dispatcher,
    )
    return check.run(proxies["now_ms"]), recorder, store


def test_given_a_throttled_target_group_read_on_one_of_three_proxies_when_checked_then_the_other_two_are_checked_and_alerted(
    proxies: dict[str, Any], dynamodb_client: Any, summary_table: str
) -> None:
    orders, billing, search = proxies["names"]
    rds, cloudwatch = clients(proxies["endpoint"], "rds", "cloudwatch")

    result, recorder, store = run_check(
        proxies, dynamodb_client, summary_table, rds=FailingRds(rds, frozenset({billing})), cloudwatch=cloudwatch
    )

    by_proxy = {r.proxy: r for r in result.reports}
    assert result.failures == {}
    for name in (orders, search):
        assert by_proxy[name].status == "available"
        assert by_proxy[name].severity is Severity.CRITICAL
        assert store.load(name)[PINNED_SHARE].active
    broken = by_proxy[billing]
    assert broken.status == NOT_CHECKED_STATUS
    [finding] = broken.findings
    assert (finding.rule, finding.severity) == (NOT_CHECKED, Severity.WARNING)
    assert "not checked" in finding.summary
    assert "DescribeDBProxyTargetGroups" in finding.summary
    assert "Throttling" in finding.summary
    # Every proxy got its message: two about pins, one saying why it could not be checked.
    subjects = [m["Subject"] for m in recorder.sent]
    assert len(subjects) == 3
    assert sum(billing in s for s in subjects) == 1
    assert set(store.load(billing)) == {NOT_CHECKED}


def test_given_an_active_alert_when_the_proxy_cannot_be_read_then_the_alert_is_neither_resolved_nor_raised(
    proxies: dict[str, Any], dynamodb_client: Any, summary_table: str
) -> None:
    orders, _, _ = proxies["names"]
    rds, cloudwatch = clients(proxies["endpoint"], "rds", "cloudwatch")
    run_check(proxies, dynamodb_client, summary_table, rds=rds, cloudwatch=cloudwatch)
    before = AlertStateStore(dynamodb_client, summary_table).load(orders)[PINNED_SHARE]

    for _ in range(4):  # more than resolve_after_checks
        run_check(
            proxies, dynamodb_client, summary_table, rds=FailingRds(rds, frozenset({orders})), cloudwatch=cloudwatch
        )

    after = AlertStateStore(dynamodb_client, summary_table).load(orders)[PINNED_SHARE]
    assert (after.active, after.severity, after.healthy_streak) == (True, before.severity, 0)


def test_given_get_metric_data_failing_once_when_checked_then_the_batch_is_retried_and_every_proxy_is_checked(
    proxies: dict[str, Any], dynamodb_client: Any, summary_table: str
) -> None:
    rds, cloudwatch = clients(proxies["endpoint"], "rds", "cloudwatch")
    flaky = FailingCloudWatch(cloudwatch, failures=CALL_ATTEMPTS - 1)

    result, _, _ = run_check(proxies, dynamodb_client, summary_table, rds=rds, cloudwatch=flaky)

    assert flaky.calls == CALL_ATTEMPTS
    assert [r.status for r in result.reports] == ["available"] * 3


def test_given_get_metric_data_failing_past_its_retries_when_checked_then_every_proxy_is_reported_not_checked(
    proxies: dict[str, Any], dynamodb_client: Any, summary_table: str
) -> None:
    rds, cloudwatch = clients(proxies["endpoint"], "rds", "cloudwatch")
    down = FailingCloudWatch(cloudwatch, failures=10**6)

    result, recorder, _ = run_check(proxies, dynamodb_client, summary_table, rds=rds, cloudwatch=down)

    assert down.calls == CALL_ATTEMPTS
    assert {r.proxy: r.status for r in result.reports} == dict.fromkeys(proxies["names"], NOT_CHECKED_STATUS)
    for report in result.reports:
        [finding] = report.findings
        assert finding.rule == NOT_CHECKED
        assert "GetMetricData" in finding.summary
    assert len(recorder.sent) == 3
