"""Slack delivery against a real local HTTP receiver; SNS delivery through moto server to SQS."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from slack_sdk.http_retry import FixedValueRetryIntervalCalculator

from pinwatch.alerts.policy import DeliveryStatus, PolicySettings, evaluate
from pinwatch.alerts.render import Alert, RenderSettings, render_slack, render_sns
from pinwatch.alerts.slack import SlackNotifier, SlackWebhookUrl
from pinwatch.alerts.sns import SnsPublisher
from pinwatch.findings import Finding, ProxyReport, Severity
from pinwatch.local.dynamodb_local import free_port
from pinwatch.local.slack_receiver import Reply, SlackReceiver, slack_receiver

pytestmark = pytest.mark.integration

PROXY = "orders-proxy"
NOW = 1_764_102_660_000
FAST_RETRY = FixedValueRetryIntervalCalculator(0.05)


def alert(severity: Severity = Severity.CRITICAL) -> Alert:
    report = ProxyReport(
        proxy=PROXY,
        engine=None,
        status="available",
        findings=(Finding(PROXY, "pinned_share", severity, "64% of DB connections are pinned (61 of 95)."),),
        figures={"ClientConnections": 412.0, "DatabaseConnections": 95.0},
        checked_at_ms=NOW,
    )
    plan = evaluate(PROXY, report.findings, {}, NOW, PolicySettings(), ["slack", "sns"])
    return Alert.from_decisions(report, plan.for_channel("slack"), NOW)


@pytest.fixture
def receiver() -> Iterator[tuple[SlackWebhookUrl, SlackReceiver]]:
    with slack_receiver() as (url, recv):
        yield SlackWebhookUrl(url, allow_loopback=True), recv


def notifier(url: SlackWebhookUrl, **options: Any) -> SlackNotifier:
    options.setdefault("timeout_s", 2.0)
    options.setdefault("budget_s", 8.0)
    options.setdefault("retry_interval", FAST_RETRY)
    return SlackNotifier(url, **options)


# ---------------------------------------------------------------------------------------------
# Slack


def test_given_slack_answers_ok_when_sending_then_accepted_and_the_receiver_got_the_blocks(
    receiver: tuple[SlackWebhookUrl, SlackReceiver],
) -> None:
    url, recv = receiver
    payload = render_slack(alert(), RenderSettings())
    outcome = notifier(url).send(payload)
    assert (outcome.status, outcome.attempts) == (DeliveryStatus.ACCEPTED, 1)
    assert recv.payloads() == [payload]
    assert recv.requests[0].headers["Content-Type"].startswith("application/json")


def test_given_429_with_retry_after_when_sending_then_it_waits_that_long_and_retries(
    receiver: tuple[SlackWebhookUrl, SlackReceiver],
) -> None:
    url, recv = receiver
    recv.script(Reply.rate_limited(retry_after_s=1), Reply.ok())
    outcome = notifier(url).send(render_slack(alert(), RenderSettings()))
    first, second = recv.requests
    assert outcome.status is DeliveryStatus.ACCEPTED
    assert outcome.attempts == 2
    assert second.received_at - first.received_at >= 1.0
    assert first.body == second.body


def test_given_retry_after_beyond_the_budget_when_sending_then_it_gives_up_at_once_for_the_next_run(
    receiver: tuple[SlackWebhookUrl, SlackReceiver],
) -> None:
    url, recv = receiver
    recv.script(Reply.rate_limited(retry_after_s=30))
    waits: list[float] = []
    outcome = notifier(url, budget_s=5.0, sleep=waits.append).send(render_slack(alert(), RenderSettings()))
    assert (outcome.status, outcome.error) == (DeliveryStatus.FAILED, "rate_limited")
    assert waits == []
    assert len(recv.requests) == 1


def test_given_500_then_ok_when_sending_then_it_is_retried_and_accepted(
    receiver: tuple[SlackWebhookUrl, SlackReceiver],
) -> None:
    url, recv = receiver
    recv.script(Reply.server_error(500), Reply.ok())
    outcome = notifier(url).send(render_slack(alert(), RenderSettings()))
    assert (outcome.status, outcome.attempts) == (DeliveryStatus.ACCEPTED, 2)
    assert [r.reply.status for r in recv.requests] == [500, 200]


def test_given_slack_keeps_failing_with_5xx_when_sending_then_retries_are_bounded_and_it_fails_transiently(
    receiver: tuple[SlackWebhookUrl, SlackReceiver],
) -> None:
    url, recv = receiver
    recv.set_default(Reply.server_error(503))
    outcome = notifier(url, max_retries=2).send(render_slack(alert(), RenderSettings()))
    assert (outcome.status, outcome.error) == (DeliveryStatus.FAILED, "http_503")
    assert len(recv.requests) == 3


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply.invalid_payload(), "invalid_payload"),
        (Reply.error("channel_not_found", 404), "channel_not_found"),
        (Reply.error("channel_is_archived", 410), "channel_is_archived"),
        (Reply.error("invalid_token", 403), "invalid_token"),
        (Reply.error("no_service", 404), "no_service"),
    ],
)
def test_given_permanent_slack_error_when_sending_then_it_is_rejected_once_and_logged_without_the_url(
    receiver: tuple[SlackWebhookUrl, SlackReceiver], reply: Reply, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    url, recv = receiver
    recv.set_default(reply)
    with caplog.at_level(logging.DEBUG):
        outcome = notifier(url).send(render_slack(alert(), RenderSettings()))
    assert (outcome.status, outcome.error, outcome.permanent) == (DeliveryStatus.REJECTED, error, True)
    assert len(recv.requests) == 1
    rejected = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "pinwatch.alerts.slack"]
    assert len(rejected) == 1
    assert error in rejected[0].getMessage()
    assert_no_secret(caplog, url)


def test_given_slack_hangs_when_sending_then_the_attempt_is_cut_by_the_timeout(
    receiver: tuple[SlackWebhookUrl, SlackReceiver],
) -> None:
    url, recv = receiver
    recv.script(Reply.hang(30))
    started = time.monotonic()
    outcome = notifier(url, timeout_s=0.5, budget_s=2.0).send(render_slack(alert(), RenderSettings()))
    assert (outcome.status, outcome.error) == (DeliveryStatus.FAILED, "timeout")
    assert time.monotonic() - started < 10  # far below the 30 s hang
    assert len(recv.requests) == 1


def test_given_nothing_listening_when_sending_then_it_fails_transiently_without_showing_the_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = SlackWebhookUrl(f"http://127.0.0.1:{free_port()}/services/T1/B1/s3cr3tTOKEN", allow_loopback=True)
    with caplog.at_level(logging.DEBUG):
        outcome = notifier(url, max_retries=1).send(render_slack(alert(), RenderSettings()))
    assert (outcome.status, outcome.error) == (DeliveryStatus.FAILED, "connection_error")
    assert outcome.attempts == 2
    assert "s3cr3tTOKEN" not in outcome.detail
    assert_no_secret(caplog, url)


def test_given_a_rotated_secret_when_sending_then_the_url_is_resolved_per_message(
    receiver: tuple[SlackWebhookUrl, SlackReceiver],
) -> None:
    url, recv = receiver
    urls = iter([url, url])
    sender = notifier(lambda: next(urls))
    assert sender.send({"text": "one"}).accepted
    assert sender.send({"text": "two"}).accepted
    assert [p["text"] for p in recv.payloads()] == ["one", "two"]
    assert sender.send({"text": "three"}).error == "no_webhook"  # the provider failed: retried next run


def assert_no_secret(caplog: pytest.LogCaptureFixture, url: SlackWebhookUrl) -> None:
    secret = url.reveal().rsplit("/", 1)[-1]
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in json.dumps({k: str(v) for k, v in record.__dict__.items()})


# ---------------------------------------------------------------------------------------------
# SNS through moto server


@pytest.fixture
def sns(moto_endpoint: str) -> Any:
    return boto3.client("sns", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def sqs(moto_endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")


def subscribe_queue(sns: Any, sqs: Any, topic_arn: str, name: str, filter_policy: dict[str, Any] | None = None) -> str:
    queue_url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return queue_url


def received(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_given_topic_with_sqs_subscriber_when_publishing_then_subject_text_and_attributes_arrive(
    sns: Any, sqs: Any, request: pytest.FixtureRequest
) -> None:
    topic = sns.create_topic(Name=f"alerts-{request.node.name[:40]}")["TopicArn"]
    queue = subscribe_queue(sns, sqs, topic, f"q-{time.monotonic_ns()}")
    payload = render_sns(alert(), RenderSettings(region="us-east-1"))
    outcome = SnsPublisher(sns, topic).send(payload)
    assert outcome.status is DeliveryStatus.ACCEPTED
    (envelope,) = received(sqs, queue)
    assert envelope["Subject"] == "CRITICAL - orders-proxy - connections pinned"
    assert envelope["Message"] == json.loads(payload["Message"])["default"]
    assert envelope["Message"].startswith("CRITICAL - orders-proxy")
    assert {k: v["Value"] for k, v in envelope["MessageAttributes"].items()} == {
        "severity": "critical",
        "proxy": PROXY,
        "transition": "new",
    }


def test_given_chat_notifications_when_publishing_then_subscribers_of_default_get_the_q_schema(
    sns: Any, sqs: Any
) -> None:
    topic = sns.create_topic(Name="alerts-chat")["TopicArn"]
    queue = subscribe_queue(sns, sqs, topic, f"q-chat-{time.monotonic_ns()}")
    SnsPublisher(sns, topic).send(render_sns(alert(), RenderSettings(chat_notifications=True)))
    (envelope,) = received(sqs, queue)
    schema = json.loads(envelope["Message"])
    assert (schema["version"], schema["source"], schema["metadata"]["threadId"]) == ("1.0", "custom", PROXY)


def test_given_filter_policy_on_severity_when_publishing_then_only_matching_alerts_reach_that_subscriber(
    sns: Any, sqs: Any
) -> None:
    topic = sns.create_topic(Name="alerts-filtered")["TopicArn"]
    everything = subscribe_queue(sns, sqs, topic, f"q-all-{time.monotonic_ns()}")
    critical_only = subscribe_queue(sns, sqs, topic, f"q-crit-{time.monotonic_ns()}", {"severity": ["critical"]})
    publisher = SnsPublisher(sns, topic)
    publisher.send(render_sns(alert(Severity.WARNING), RenderSettings()))
    publisher.send(render_sns(alert(Severity.CRITICAL), RenderSettings()))
    assert sorted(m["MessageAttributes"]["severity"]["Value"] for m in received(sqs, everything)) == [
        "critical",
        "warning",
    ]
    assert [m["MessageAttributes"]["severity"]["Value"] for m in received(sqs, critical_only)] == ["critical"]


def test_given_missing_topic_when_publishing_then_it_fails_transiently(sns: Any) -> None:
    outcome = SnsPublisher(sns, "arn:aws:sns:us-east-1:123456789012:does-not-exist").send(
        render_sns(alert(), RenderSettings())
    )
    assert outcome.status is DeliveryStatus.FAILED
    assert outcome.error == "NotFound"


def test_given_unreachable_sns_when_publishing_then_it_fails_transiently_after_botocore_retries() -> None:
    client = boto3.client(
        "sns",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=1),
    )
    outcome = SnsPublisher(client, "arn:aws:sns:us-east-1:123456789012:alerts").send(
        render_sns(alert(), RenderSettings())
    )
    assert (outcome.status, outcome.error) == (DeliveryStatus.FAILED, "EndpointConnectionError")
