"""Alert state lifecycle on DynamoDB Local: states expire like the summary items, and the alerts of a
proxy that no longer exists are resolved with one message instead of staying open for ever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest

from pinwatch.alerts import AlertDispatcher, ChannelSpec, DeliveryStatus, Transition
from pinwatch.alerts.channels import DeliveryOutcome
from pinwatch.alerts.policy import GONE_STATUS, AlertStatus
from pinwatch.alerts.render import RenderSettings, render_sns
from pinwatch.check import ConnectionCheck
from pinwatch.config import Thresholds
from pinwatch.discovery import Discovery, ProxyInfo
from pinwatch.findings import Finding, ProxyReport, Severity
from pinwatch.metrics import ProxyMetrics
from pinwatch.records import EngineFamily
from pinwatch.store import keys
from pinwatch.store.alert_state import ALERTING_PK, DEFAULT_TTL_DAYS, AlertStateStore
from tests.support.fakes import Recorder

pytestmark = pytest.mark.integration

NOW_S = 1_795_600_800
NOW_MS = NOW_S * 1000
MIN = 60_000


@dataclass
class Region:
    """The proxies that exist right now (a test deletes one by removing it)."""

    names: list[str]

    def discover(self, names: Sequence[str] = ()) -> Discovery:
        wanted = [n for n in sorted(self.names) if not names or n in names]
        missing = tuple(n for n in names if n not in self.names)
        return Discovery(tuple(ProxyInfo(n, EngineFamily.MYSQL, "available") for n in wanted), missing)


class NoMetrics:
    def read(self, proxies: Sequence[str], end_ms: int, window_minutes: int) -> dict[str, ProxyMetrics]:
        return {}


def critical(proxy: str) -> ProxyReport:
    finding = Finding(proxy, "pinned_share", Severity.CRITICAL, "64% of DB connections are pinned (61 of 95).")
    return ProxyReport(proxy, EngineFamily.MYSQL, "available", (finding,), checked_at_ms=NOW_MS)


@pytest.fixture
def store(dynamodb_client: Any, summary_table: str) -> AlertStateStore:
    return AlertStateStore(dynamodb_client, summary_table, clock=lambda: NOW_S)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def dispatcher(store: AlertStateStore, recorder: Recorder) -> AlertDispatcher:
    return AlertDispatcher(store, [ChannelSpec("sns", partial(render_sns, settings=RenderSettings()), recorder)])


def raw_items(client: Any, table: str, pk: str) -> list[dict[str, Any]]:
    response = client.query(
        TableName=table,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": keys.PK},
        ExpressionAttributeValues={":pk": {"S": pk}},
        ConsistentRead=True,
    )
    items: list[dict[str, Any]] = response["Items"]
    return items


def test_given_an_alert_state_written_when_stored_then_it_expires_like_the_summary_items_and_is_indexed(
    dispatcher: AlertDispatcher, store: AlertStateStore, dynamodb_client: Any, summary_table: str
) -> None:
    dispatcher.process(critical("orders"), NOW_MS)

    [state_item] = raw_items(dynamodb_client, summary_table, keys.proxy_pk("orders"))
    assert int(state_item[keys.TTL_ATTRIBUTE]["N"]) == NOW_S + DEFAULT_TTL_DAYS * 86_400
    [index_item] = raw_items(dynamodb_client, summary_table, ALERTING_PK)
    assert int(index_item[keys.TTL_ATTRIBUTE]["N"]) == NOW_S + DEFAULT_TTL_DAYS * 86_400
    assert store.alerting_proxies() == {"orders"}


def test_given_a_proxy_with_an_open_alert_deleted_when_the_check_runs_then_it_is_resolved_once_and_left_to_expire(
    dispatcher: AlertDispatcher, store: AlertStateStore, recorder: Recorder
) -> None:
    region = Region(["orders", "billing"])
    dispatcher.process(critical("orders"), NOW_MS)
    dispatcher.process(critical("billing"), NOW_MS)
    assert store.alerting_proxies() == {"orders", "billing"}
    recorder.sent.clear()
    check = ConnectionCheck(
        proxies=region, metrics=NoMetrics(), thresholds=Thresholds(), window_minutes=30, dispatcher=dispatcher
    )

    region.names.remove("orders")  # deleted
    first = check.run(NOW_MS + 5 * MIN)
    second = check.run(NOW_MS + 10 * MIN)

    gone = [o for o in first.outcomes if o.report.proxy == "orders"]
    assert [o.report.status for o in gone] == [GONE_STATUS]
    [dispatch] = [o.dispatch for o in gone]
    assert dispatch is not None
    assert [(n.rule, n.transition) for n in dispatch.notifications] == [("pinned_share", Transition.RESOLVED)]
    orders_messages = [m for m in recorder.sent if "orders" in m["Subject"]]
    assert len(orders_messages) == 1
    assert "gone" in orders_messages[0]["Message"]
    assert store.load("orders")["pinned_share"].status is AlertStatus.OK
    assert store.alerting_proxies() == {"billing"}  # the live proxy's alert stays open
    # The next run has nothing more to say about it.
    assert "orders" not in [o.report.proxy for o in second.outcomes]
    assert len([m for m in recorder.sent if "orders" in m["Subject"]]) == 1


def test_given_the_gone_message_failing_when_the_check_runs_again_then_it_is_retried_until_delivered(
    store: AlertStateStore, dynamodb_client: Any, summary_table: str
) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.fail = False
            self.sent: list[Mapping[str, Any]] = []

        def send(self, payload: Mapping[str, Any]) -> DeliveryOutcome:
            if self.fail:
                return DeliveryOutcome("sns", DeliveryStatus.FAILED, "down", 1, "http_503")
            self.sent.append(payload)
            return DeliveryOutcome("sns", DeliveryStatus.ACCEPTED, "ok", 1)

    channel = Flaky()
    dispatcher = AlertDispatcher(store, [ChannelSpec("sns", partial(render_sns, settings=RenderSettings()), channel)])
    dispatcher.process(critical("orders"), NOW_MS)
    check = ConnectionCheck(
        proxies=Region([]), metrics=NoMetrics(), thresholds=Thresholds(), window_minutes=30, dispatcher=dispatcher
    )

    channel.fail = True
    check.run(NOW_MS + 5 * MIN)
    assert store.alerting_proxies() == {"orders"}  # nobody was told: still open
    channel.fail = False
    check.run(NOW_MS + 10 * MIN)
    check.run(NOW_MS + 15 * MIN)

    assert len(channel.sent) == 2  # the alert, then exactly one "gone" resolution
    assert store.alerting_proxies() == frozenset()


def test_given_a_check_limited_to_some_proxies_when_it_runs_then_it_leaves_the_other_proxies_alerts_open(
    dispatcher: AlertDispatcher, store: AlertStateStore, recorder: Recorder
) -> None:
    dispatcher.process(critical("orders"), NOW_MS)
    dispatcher.process(critical("billing"), NOW_MS)
    recorder.sent.clear()
    only_billing = ConnectionCheck(
        proxies=Region(["orders", "billing"]),
        metrics=NoMetrics(),
        thresholds=Thresholds(),
        window_minutes=30,
        proxy_names=["billing"],  # what PROXY_NAMES or `pinwatch check --proxy billing` gives
        dispatcher=dispatcher,
    )

    result = only_billing.run(NOW_MS + 5 * MIN)

    assert [o.report.proxy for o in result.outcomes] == ["billing"]
    assert store.alerting_proxies() >= {"orders"}
    assert not [m for m in recorder.sent if "orders" in m["Subject"]]
