"""Reason capture through the real check function: moto server (with ModifyDBProxy) and DynamoDB Local.

Each test imports the check handler as a cold start does, with ``REASON_CAPTURE`` set, and calls it at
simulated times over metrics published for those times; what the proxy's ``DebugLogging`` became is
read back with ``DescribeDBProxies``, what the alert said from an SQS queue subscribed to the topic.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from pinwatch.cli import EXIT_OK, EXIT_USAGE, main
from pinwatch.local.lambda_harness import CONNECTION_CHECK_APP, check_context, load_handler, schedule_event
from pinwatch.local.rds_shim import fail_modify_db_proxy
from pinwatch.metrics import window_end_ms
from pinwatch.parse import parse_message
from pinwatch.store import keys
from pinwatch.store.summary import SummaryStore
from pinwatch.timebase import HOUR_MS, MINUTE_MS
from tests.integration.aws_proxies import ProxyFactory, clients, draining_shapes, healthy_busy_shapes, put_series
from tests.support.builders import tally_records

pytestmark = [
    pytest.mark.integration,
    # IAM's AccessDenied is not an RDS error shape; moto warns when it serialises one.
    pytest.mark.filterwarnings(r"ignore:Exception\(RDSClientError\) with code:UserWarning"),
]

REGION = "us-east-1"  # DynamoDB Local keeps tables per region: the one the table fixture uses
PIN_LINE = (
    "2026-12-06T08:28:13.685Z [WARN] [proxyEndpoint=default] [clientConnection=51706963] The client session was "
    "pinned to the database connection [dbConnection=973587044] for the remainder of the session. The proxy can't "
    "reuse this connection until the session ends. Reason: SQL changed session settings that the proxy doesn't "
    'track. Consider moving session configuration to the proxy\'s initialization query. Digest: "set names ?".'
)


class World:
    """One proxy, the stack's table and topic, and the check function with reason capture configured."""

    def __init__(self, endpoint: str, dynamodb: Any, table: str, logging: bool, mode: str) -> None:
        factory = ProxyFactory(endpoint, region=REGION)
        self.proxy = factory.create("orders", "POSTGRESQL", debug_logging=logging)
        self.rds = factory.rds
        self.cloudwatch, sns, self.sqs = clients(endpoint, "cloudwatch", "sns", "sqs", region=REGION)
        self.dynamodb = dynamodb
        self.table = table
        topic = sns.create_topic(Name=f"pinwatch-{uuid.uuid4().hex[:8]}")["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName=f"alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        self.env = {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "SUMMARY_TABLE_NAME": table,
            "ALERT_TOPIC_ARN": topic,
            "PROXY_NAMES": self.proxy,
            "REASON_CAPTURE": mode,
            "RENOTIFY_MINUTES": "5",
            "POWERTOOLS_SERVICE_NAME": "pinwatch",
        }
        self.start_ms = int(time.time() * 1000)
        self.app: Any = None

    def cold_start(self, dynamodb_endpoint: str) -> None:
        self.app_env = self.env | {"AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint}
        self.app = load_handler(CONNECTION_CHECK_APP, self.app_env)

    def check(self, at_ms: int, shapes: Callable[[], dict[str, Any]] = draining_shapes) -> dict[str, Any]:
        put_series(self.cloudwatch, self.proxy, window_end_ms(at_ms), shapes())
        summary: dict[str, Any] = self.app.handle(schedule_event(), check_context(), check=self.app.CHECK, now_ms=at_ms)
        return summary

    def debug_logging(self) -> bool:
        return bool(self.rds.describe_db_proxies(DBProxyName=self.proxy)["DBProxies"][0]["DebugLogging"])

    def set_logging(self, enabled: bool) -> None:
        """What a person (or AWS's 24-hour switch-off) does outside pinwatch."""
        self.rds.modify_db_proxy(DBProxyName=self.proxy, DebugLogging=enabled)

    def capture_item(self) -> dict[str, Any]:
        key = {keys.PK: {"S": keys.proxy_pk(self.proxy)}, keys.SK: {"S": keys.CAPTURE_SK}}
        item: dict[str, Any] = self.dynamodb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get(
            "Item", {}
        )
        return item

    def pins_at(self, at_ms: int, count: int = 5) -> None:
        """Pin lines the proxy wrote (only possible with enhanced logging on), counted by the ingest's store."""
        records = [parse_message(PIN_LINE, at_ms + i * 1000) for i in range(count)]
        SummaryStore(self.dynamodb, self.table).apply_batch(
            f"pins-{uuid.uuid4().hex}", tally_records(self.proxy, records), at_ms
        )

    def alerts(self) -> list[str]:
        """Plain-text alert bodies received since the last call."""
        bodies = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return bodies
            for m in messages:
                bodies.append(m["Body"])  # raw delivery: the plain-text "default" message
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def make_world(moto_endpoint: str, dynamodb_endpoint: str, summary_table: str) -> Callable[..., World]:
    def make(*, logging: bool = False, mode: str = "on-incident") -> World:
        dynamodb = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name=REGION)
        world = World(moto_endpoint, dynamodb, summary_table, logging, mode)
        world.cold_start(dynamodb_endpoint)
        return world

    return make


def test_given_an_incident_with_logging_off_when_checked_then_capture_starts_reasons_flow_and_it_stops_after(
    make_world: Callable[..., World],
) -> None:
    w = make_world()
    t0 = w.start_ms

    w.check(t0)
    assert w.debug_logging() is True
    (first,) = w.alerts()
    assert "pin reasons are unknown so far; pinwatch switched it on" in first
    assert "Reason capture started: pinwatch switched enhanced logging on at" in first
    item = w.capture_item()
    assert item["active"] == {"BOOL": True}
    assert int(item["started_ms"]["N"]) == t0

    # Pin lines arrive once logging is on; the next alert names the reason and how much the reasons cover.
    w.pins_at(t0 + 2 * MINUTE_MS)
    w.check(t0 + 6 * MINUTE_MS)
    (second,) = w.alerts()
    assert "session_settings" in second
    assert "Capturing reasons since" in second
    assert "Reasons from the last 6 of 30 minutes" in second

    # The fix: healthy metrics. After the minimum hold pinwatch switches its own capture off.
    w.check(t0 + 20 * MINUTE_MS, healthy_busy_shapes)
    assert w.debug_logging() is False
    item = w.capture_item()
    assert (item["active"], item["stop_cause"]) == ({"BOOL": False}, {"S": "resolved"})


def test_given_modify_db_proxy_is_denied_when_an_incident_starts_then_the_alert_goes_out_saying_why(
    make_world: Callable[..., World],
) -> None:
    w = make_world()

    with fail_modify_db_proxy(w.proxy, "AccessDenied"):
        summary = w.check(w.start_ms)

    assert (summary["alertsSent"], summary["failedProxies"]) == (1, [])
    (alert,) = w.alerts()
    assert "Reason capture did not start: AccessDenied: User is not authorized to perform: rds:ModifyDBProxy" in alert
    assert "pinwatch could not switch it on" in alert
    assert w.debug_logging() is False
    item = w.capture_item()
    assert item["active"] == {"BOOL": False}
    assert item["error"]["S"].startswith("AccessDenied")


def test_given_a_proxy_that_is_not_available_to_modify_when_capture_starts_then_the_alert_names_the_rds_error(
    make_world: Callable[..., World],
) -> None:
    w = make_world()

    with fail_modify_db_proxy(w.proxy, "InvalidDBProxyStateFault", "The proxy is in the modifying state."):
        w.check(w.start_ms)

    (alert,) = w.alerts()
    assert "Reason capture did not start: InvalidDBProxyStateFault: The proxy is in the modifying state." in alert


def test_given_logging_a_user_switched_on_when_the_incident_ends_then_pinwatch_leaves_it_on(
    make_world: Callable[..., World],
) -> None:
    w = make_world(logging=True)
    t0 = w.start_ms

    w.check(t0)
    w.pins_at(t0 + MINUTE_MS)
    w.check(t0 + 30 * MINUTE_MS, healthy_busy_shapes)
    w.check(t0 + 200 * MINUTE_MS, healthy_busy_shapes)

    assert w.debug_logging() is True
    assert w.capture_item() == {}  # pinwatch never recorded owning it


def test_given_a_user_switches_logging_off_during_pinwatch_capture_then_pinwatch_does_not_switch_it_back_on(
    make_world: Callable[..., World],
) -> None:
    w = make_world()
    t0 = w.start_ms
    w.check(t0)
    assert w.debug_logging() is True

    w.set_logging(False)
    w.check(t0 + 5 * MINUTE_MS)
    w.check(t0 + 45 * MINUTE_MS)  # past the cooldown, same incident

    assert w.debug_logging() is False
    assert w.capture_item()["stop_cause"] == {"S": "external"}


def test_given_always_when_aws_switches_logging_off_after_24_hours_then_pinwatch_switches_it_on_again(
    make_world: Callable[..., World],
) -> None:
    w = make_world(mode="always")
    t0 = w.start_ms

    w.check(t0, healthy_busy_shapes)
    assert w.debug_logging() is True

    w.set_logging(False)  # RDS Proxy's own switch-off, 24 hours after it was enabled
    w.check(t0 + 24 * HOUR_MS, healthy_busy_shapes)

    assert w.debug_logging() is True
    item = w.capture_item()
    assert (int(item["started_ms"]["N"]), int(item["enabled_ms"]["N"])) == (t0, t0 + 24 * HOUR_MS)


def test_given_always_when_pinwatch_switch_on_is_23_hours_old_then_it_is_renewed(
    make_world: Callable[..., World],
) -> None:
    w = make_world(mode="always")
    t0 = w.start_ms
    w.check(t0, healthy_busy_shapes)

    w.check(t0 + 22 * HOUR_MS, healthy_busy_shapes)
    assert int(w.capture_item()["enabled_ms"]["N"]) == t0
    w.check(t0 + 23 * HOUR_MS, healthy_busy_shapes)

    assert int(w.capture_item()["enabled_ms"]["N"]) == t0 + 23 * HOUR_MS
    assert w.debug_logging() is True


# ---------------------------------------------------------------------------- pinwatch check
def _cli(w: World, *extra: str) -> list[str]:
    return ["check", "--region", REGION, "--table", w.table, "--proxy", w.proxy, "--format", "json", *extra]


def test_given_the_cli_with_reason_capture_when_run_dry_then_it_says_it_would_switch_logging_on_and_does_not(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    w = make_world(mode="off")
    put_series(w.cloudwatch, w.proxy, window_end_ms(int(time.time() * 1000)), draining_shapes())
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.setenv(name, w.app_env[name])

    assert main(_cli(w, "--reason-capture", "on-incident", "--dry-run")) == EXIT_OK

    findings = json.loads(capsys.readouterr().out)
    capture = findings[0]["reason_capture"]
    assert (capture["mode"], capture["status"]) == ("on-incident", "planned")
    assert w.debug_logging() is False
    assert w.capture_item() == {}


def test_given_the_cli_with_reason_capture_when_run_then_it_switches_logging_on_like_the_function(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    w = make_world(mode="off")
    put_series(w.cloudwatch, w.proxy, window_end_ms(int(time.time() * 1000)), draining_shapes())
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.setenv(name, w.app_env[name])

    assert main(_cli(w, "--reason-capture", "on-incident", "--reason-capture-max-hours", "1")) == EXIT_OK

    findings = json.loads(capsys.readouterr().out)
    assert findings[0]["reason_capture"]["status"] == "started"
    assert w.debug_logging() is True
    assert w.capture_item()["active"] == {"BOOL": True}


def test_given_the_cli_with_reason_capture_but_no_table_when_run_then_it_refuses_with_a_usage_error(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    w = make_world(mode="off")

    argv = ["check", "--region", REGION, "--proxy", w.proxy, "--reason-capture", "always"]
    assert main(argv) == EXIT_USAGE
    assert "--reason-capture needs --table" in capsys.readouterr().err


def test_given_a_capture_that_started_mid_window_when_reported_then_the_report_says_what_the_reasons_cover(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    w = make_world()
    t0 = w.start_ms
    w.check(t0)  # capture starts now
    w.pins_at(t0 + MINUTE_MS)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.setenv(name, w.app_env[name])
    monkeypatch.setenv("COLUMNS", "250")
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((t0 - 60 * MINUTE_MS) / 1000))
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((t0 + 10 * MINUTE_MS) / 1000))

    argv = ["report", "--region", REGION, "--table", w.table, "--proxy", w.proxy, "--since", since, "--until", until]
    assert main(argv) == EXIT_OK

    out = " ".join(capsys.readouterr().out.split())
    covered = ((t0 + 10 * MINUTE_MS) // 1000 * 1000 - t0) // MINUTE_MS  # the window is given in whole seconds
    assert f"reasons from {covered} of 70 minutes: pinwatch's reason capture had enhanced logging on" in out
