"""The dispatcher end to end: state on DynamoDB Local, Slack on a local receiver, SNS on moto server.

Covers the alert timeline (new, quiet, escalated, renotify, resolved), channels failing
independently, overlapping runs, and the wiring from CheckConfig with the webhook in Secrets Manager.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from slack_sdk.http_retry import FixedValueRetryIntervalCalculator

from pinwatch.alerts import AlertDispatcher, ChannelSpec, DeliveryStatus, PolicySettings, Transition
from pinwatch.alerts.policy import AlertState, AlertStatus
from pinwatch.alerts.render import Alert, RenderSettings, render_slack, render_sns
from pinwatch.alerts.secrets import CachedSecretProvider, SecretUnavailableError
from pinwatch.alerts.slack import SlackNotifier, SlackWebhookUrl
from pinwatch.alerts.sns import SnsPublisher
from pinwatch.config import CheckConfig, ConfigError
from pinwatch.findings import Finding, ProxyReport, Severity
from pinwatch.local.dynamodb_local import free_port
from pinwatch.local.slack_receiver import Reply, SlackReceiver, slack_receiver
from pinwatch.store.alert_state import AlertStateStore
from pinwatch.wiring import build_dispatcher

pytestmark = pytest.mark.integration

PROXY = "orders-proxy"
MIN = 60_000
T0 = 1_764_100_000_000
REGION = "us-east-1"
RENDER = RenderSettings(region=REGION)


def report(*severities: tuple[str, Severity], status: str = "available") -> ProxyReport:
    findings = tuple(Finding(PROXY, rule, sev, f"{rule} is {sev.value}") for rule, sev in severities)
    return ProxyReport(PROXY, None, status, findings, figures={"ClientConnections": 100.0, "DatabaseConnections": 90.0})


def pinned(severity: Severity) -> ProxyReport:
    return report(("pinned_share", severity))


@dataclass
class Harness:
    """A dispatcher with both real channels, and what each channel received."""

    dispatcher: AlertDispatcher
    store: AlertStateStore
    receiver: SlackReceiver
    receiver_url: str
    sns_client: Any
    topic: str
    sqs: Any
    queue_url: str

    def slack(self) -> list[dict[str, Any]]:
        return self.receiver.payloads()

    def sns(self) -> list[dict[str, Any]]:
        return drain(self.sqs, self.queue_url)

    def channels(self) -> list[ChannelSpec]:
        """Fresh channels to the same Slack receiver and SNS topic, for a second dispatcher."""
        return [
            ChannelSpec("slack", lambda a: render_slack(a, RENDER), slack_sender(self.receiver_url)),
            ChannelSpec("sns", lambda a: render_sns(a, RENDER), SnsPublisher(self.sns_client, self.topic)),
        ]


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every SNS envelope waiting in the queue (removed from it)."""
    found = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return found
        for m in messages:
            found.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def sns_topic(moto_endpoint: str) -> tuple[Any, Any, str, str]:
    sns = boto3.client("sns", endpoint_url=moto_endpoint, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION)
    name = f"alerts-{time.monotonic_ns()}"
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return sns, sqs, topic, queue_url


@pytest.fixture
def receiver() -> Iterator[tuple[str, SlackReceiver]]:
    with slack_receiver() as pair:
        yield pair


def slack_sender(url: str) -> SlackNotifier:
    return SlackNotifier(
        SlackWebhookUrl(url, allow_loopback=True),
        timeout_s=1.0,
        budget_s=3.0,
        max_retries=1,
        retry_interval=FixedValueRetryIntervalCalculator(0.05),
    )


@pytest.fixture
def harness(
    dynamodb_client: Any, summary_table: str, sns_topic: tuple[Any, Any, str, str], receiver: tuple[str, SlackReceiver]
) -> Harness:
    sns, sqs, topic, queue_url = sns_topic
    url, recv = receiver
    store = AlertStateStore(dynamodb_client, summary_table)
    dispatcher = AlertDispatcher(
        store,
        [
            ChannelSpec("slack", lambda a: render_slack(a, RENDER), slack_sender(url)),
            ChannelSpec("sns", lambda a: render_sns(a, RENDER), SnsPublisher(sns, topic)),
        ],
        PolicySettings(renotify_ms=60 * MIN, resolve_after_checks=3),
    )
    return Harness(dispatcher, store, recv, url, sns, topic, sqs, queue_url)


def headers(slack_payloads: list[dict[str, Any]]) -> list[str]:
    return [p["blocks"][0]["text"]["text"] for p in slack_payloads]


def subjects(sns_messages: list[dict[str, Any]]) -> list[str]:
    return [m["Subject"] for m in sns_messages]


# ---------------------------------------------------------------------------------------------
# The timeline


def test_given_a_pinning_incident_when_checked_every_minute_then_each_channel_gets_exactly_the_expected_alerts(
    harness: Harness,
) -> None:
    timeline = [
        (0, pinned(Severity.WARNING)),  # new
        (1, pinned(Severity.WARNING)),  # quiet (cooldown)
        (2, pinned(Severity.CRITICAL)),  # escalated
        (3, pinned(Severity.WARNING)),  # de-escalation: quiet
        (4, pinned(Severity.CRITICAL)),  # back up, already told: quiet
        (62, pinned(Severity.CRITICAL)),  # renotify
        (63, pinned(Severity.OK)),
        (64, pinned(Severity.OK)),
        (65, pinned(Severity.OK)),  # resolved on the third healthy check
        (66, pinned(Severity.OK)),  # nothing more
    ]
    decided = []
    for minute, proxy_report in timeline:
        result = harness.dispatcher.process(proxy_report, T0 + minute * MIN)
        decided += [(minute, n.transition) for n in result.notifications]
        assert result.failures == ()
    assert decided == [
        (0, Transition.NEW),
        (2, Transition.ESCALATED),
        (62, Transition.RENOTIFY),
        (65, Transition.RESOLVED),
    ]
    assert headers(harness.slack()) == [
        "🟠 WARNING · orders-proxy · connections pinned",
        "🔴 CRITICAL · orders-proxy · connections pinned",
        "🔴 CRITICAL · orders-proxy · connections pinned",
        "✅ RESOLVED · orders-proxy · connections pinned",
    ]
    assert [m["MessageAttributes"]["transition"]["Value"] for m in harness.sns()] == [
        "new",
        "escalated",
        "renotify",
        "resolved",
    ]
    assert harness.store.load(PROXY)["pinned_share"].status is AlertStatus.OK


def test_given_two_rules_transitioning_together_when_processed_then_one_message_per_channel_covers_both(
    harness: Harness,
) -> None:
    result = harness.dispatcher.process(
        report(("pinned_share", Severity.WARNING), ("exhaustion_forecast", Severity.CRITICAL)), T0
    )
    assert sorted(n.rule for n in result.notifications) == ["exhaustion_forecast", "pinned_share"]
    (slack,) = harness.slack()
    assert slack["blocks"][0]["text"]["text"].startswith("🔴 CRITICAL · orders-proxy")
    assert "Connections pinned" in slack["blocks"][1]["text"]["text"]
    assert subjects(harness.sns()) == ["CRITICAL - orders-proxy - pool exhaustion forecast"]


def test_given_dry_run_when_processed_then_messages_are_rendered_but_nothing_is_sent_or_stored(
    harness: Harness,
) -> None:
    result = harness.dispatcher.process(pinned(Severity.CRITICAL), T0, dry_run=True)
    assert set(result.messages) == {"slack", "sns"}
    assert result.messages["slack"]["blocks"][0]["text"]["text"].startswith("🔴 CRITICAL")
    assert {o.status for o in result.outcomes.values()} == {DeliveryStatus.SKIPPED}
    assert [n.transition for n in result.notifications] == [Transition.NEW]
    assert harness.slack() == []
    assert harness.sns() == []
    assert harness.store.load(PROXY) == {}


# ---------------------------------------------------------------------------------------------
# One channel down never blocks the other


def test_given_slack_down_when_alerting_then_sns_delivers_and_slack_gets_the_message_on_the_next_run(
    harness: Harness,
) -> None:
    harness.receiver.set_default(Reply.server_error(503))
    first = harness.dispatcher.process(pinned(Severity.CRITICAL), T0)
    assert first.outcomes["slack"].status is DeliveryStatus.FAILED
    assert first.outcomes["sns"].status is DeliveryStatus.ACCEPTED
    assert harness.store.load(PROXY)["pinned_share"].pending_channels == {"slack"}

    harness.receiver.set_default(Reply.ok())
    second = harness.dispatcher.process(pinned(Severity.CRITICAL), T0 + MIN)
    assert second.delivered == ("slack",)
    assert [(n.transition, n.retry, n.channels) for n in second.notifications] == [(Transition.NEW, True, ("slack",))]
    assert len(harness.sns()) == 1  # SNS was not sent the same alert twice
    accepted = [r for r in harness.receiver.requests if r.reply.status == 200]
    assert len(accepted) == 1
    assert harness.store.load(PROXY)["pinned_share"].pending_channels == frozenset()

    third = harness.dispatcher.process(pinned(Severity.CRITICAL), T0 + 2 * MIN)
    assert third.notifications == ()


def test_given_slack_down_when_one_run_alerts_on_several_proxies_then_slack_is_tried_once_and_all_retried_next_run(
    harness: Harness,
) -> None:
    harness.receiver.set_default(Reply.server_error(503))
    proxies = ["orders-proxy", "billing-proxy", "search-proxy"]

    def run(now_ms: int) -> list[Any]:
        reports = [
            ProxyReport(p, None, "available", (Finding(p, "pinned_share", Severity.CRITICAL, "pinned"),))
            for p in proxies
        ]
        return [harness.dispatcher.process(r, now_ms) for r in reports]

    first = run(T0)
    assert [r.outcomes["slack"].error for r in first] == ["http_503", "skipped_after_failure", "skipped_after_failure"]
    assert len(harness.receiver.requests) == 2  # one message, one retry; the other proxies were not attempted
    assert all(r.outcomes["sns"].status is DeliveryStatus.ACCEPTED for r in first)

    harness.receiver.set_default(Reply.ok())
    second = run(T0 + MIN)
    assert [r.delivered for r in second] == [("slack",)] * 3
    assert sorted(p["blocks"][0]["text"]["text"].split(" · ")[1] for p in harness.slack()[2:]) == sorted(proxies)


def test_given_sns_unreachable_when_alerting_then_slack_delivers_and_sns_is_retried_next_run(
    dynamodb_client: Any, summary_table: str, receiver: tuple[str, SlackReceiver], sns_topic: tuple[Any, Any, str, str]
) -> None:
    url, recv = receiver
    sns, sqs, topic, queue_url = sns_topic
    dead = boto3.client(
        "sns",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name=REGION,
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )
    store = AlertStateStore(dynamodb_client, summary_table)

    def dispatcher(sns_client: Any) -> AlertDispatcher:
        return AlertDispatcher(
            store,
            [
                ChannelSpec("slack", lambda a: render_slack(a, RENDER), slack_sender(url)),
                ChannelSpec("sns", lambda a: render_sns(a, RENDER), SnsPublisher(sns_client, topic)),
            ],
        )

    first = dispatcher(dead).process(pinned(Severity.WARNING), T0)
    assert (first.outcomes["slack"].status, first.outcomes["sns"].status) == (
        DeliveryStatus.ACCEPTED,
        DeliveryStatus.FAILED,
    )
    second = dispatcher(sns).process(pinned(Severity.WARNING), T0 + MIN)
    assert second.delivered == ("sns",)
    assert len(recv.requests) == 1
    assert subjects(drain(sqs, queue_url)) == ["WARNING - orders-proxy - connections pinned"]


def test_given_every_channel_down_when_alerting_then_state_does_not_advance_and_the_next_run_sends_it_as_new(
    harness: Harness,
) -> None:
    harness.receiver.set_default(Reply.server_error(500))
    broken = AlertDispatcher(
        harness.store,
        [
            ChannelSpec("slack", lambda a: render_slack(a, RENDER), slack_sender(harness.receiver_url)),
            ChannelSpec("sns", _raise, SnsPublisher(harness.sns_client, harness.topic)),
        ],
    )
    first = broken.process(pinned(Severity.CRITICAL), T0)
    assert first.outcomes["slack"].status is DeliveryStatus.FAILED
    assert first.outcomes["sns"].error == "render_error"
    assert harness.store.load(PROXY)["pinned_share"].status is AlertStatus.OK

    harness.receiver.set_default(Reply.ok())
    second = harness.dispatcher.process(pinned(Severity.CRITICAL), T0 + MIN)
    assert [n.transition for n in second.notifications] == [Transition.NEW]
    assert set(second.delivered) == {"slack", "sns"}


def _raise(alert: Alert) -> dict[str, Any]:
    raise RuntimeError("renderer bug")


# ---------------------------------------------------------------------------------------------
# Overlapping runs


class InterleavingStore(AlertStateStore):
    """Runs ``between`` once, right after this store's first load: another run overtakes."""

    def __init__(self, client: Any, table: str, between: Callable[[], None]) -> None:
        super().__init__(client, table)
        self._between: Callable[[], None] | None = between

    def load(self, proxy: str) -> dict[str, AlertState]:
        states = super().load(proxy)
        if self._between is not None:
            between, self._between = self._between, None
            between()
        return states


def test_given_two_overlapping_runs_deciding_the_same_alert_when_both_process_then_only_one_notifies(
    harness: Harness, dynamodb_client: Any, summary_table: str
) -> None:
    other_results = []
    slow = AlertDispatcher(
        InterleavingStore(
            dynamodb_client,
            summary_table,
            lambda: other_results.append(harness.dispatcher.process(pinned(Severity.CRITICAL), T0)),
        ),
        harness.channels(),
    )
    mine = slow.process(pinned(Severity.CRITICAL), T0)
    (theirs,) = other_results
    assert set(theirs.delivered) == {"slack", "sns"}
    assert mine.skipped is not None
    assert mine.outcomes == {}
    assert len(harness.slack()) == 1
    assert len(harness.sns()) == 1


def test_given_a_run_that_died_after_claiming_when_the_next_run_comes_then_it_waits_for_the_lease_and_then_notifies(
    harness: Harness,
) -> None:
    (claimed,) = (
        harness.store.save([AlertState(PROXY, "pinned_share", lease_owner="dead-run", lease_until_ms=T0 + 2 * MIN)])
        or ()
    )
    assert claimed.version == 1
    during = harness.dispatcher.process(pinned(Severity.CRITICAL), T0 + MIN)
    assert during.skipped is not None
    assert harness.slack() == []
    after = harness.dispatcher.process(pinned(Severity.CRITICAL), T0 + 3 * MIN)
    assert [n.transition for n in after.notifications] == [Transition.NEW]
    assert set(after.delivered) == {"slack", "sns"}
    assert harness.store.load(PROXY)["pinned_share"].lease_owner is None


# ---------------------------------------------------------------------------------------------
# Wiring: CheckConfig + Secrets Manager + clients


@pytest.fixture
def secrets(moto_endpoint: str) -> Any:
    return boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name=REGION)


def make_secret(secrets: Any, value: str) -> str:
    arn: str = secrets.create_secret(Name=f"pinwatch/slack-{time.monotonic_ns()}", SecretString=value)["ARN"]
    return arn


def provider_for(secrets: Any) -> CachedSecretProvider:
    return CachedSecretProvider(SecretsProvider(boto3_client=secrets))


def test_given_check_config_with_both_channels_when_wired_then_an_alert_reaches_slack_and_sns(
    dynamodb_client: Any,
    summary_table: str,
    sns_topic: tuple[Any, Any, str, str],
    receiver: tuple[str, SlackReceiver],
    secrets: Any,
) -> None:
    sns, sqs, topic, queue_url = sns_topic
    url, recv = receiver
    config = CheckConfig(
        summary_table_name=summary_table,
        alert_topic_arn=topic,
        slack_webhook_secret_arn=make_secret(secrets, json.dumps({"url": url})),
        slack_allow_loopback=True,
        dashboard_url="https://example.com/dashboard",
    )
    dispatcher = build_dispatcher(config, dynamodb_client, sns, provider_for(secrets))
    result = dispatcher.process(pinned(Severity.CRITICAL), T0)
    assert set(result.delivered) == {"slack", "sns"}
    (payload,) = recv.payloads()
    links = payload["blocks"][-1]["elements"][0]["text"]
    assert "https://example.com/dashboard" in links
    assert f"region={REGION}#proxy-details:id={PROXY}" in links
    assert payload["text"].startswith("<!here>")
    assert subjects(drain(sqs, queue_url)) == ["CRITICAL - orders-proxy - connections pinned"]


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("http://hooks.slack.com/services/T1/B1/s3cr3tTOKEN", "must use https"),
        ("https://example.com/services/T1/B1/s3cr3tTOKEN", "not a Slack webhook host"),
        ("http://127.0.0.1:9/services/T1/B1/s3cr3tTOKEN", "SLACK_ALLOW_LOOPBACK"),
    ],
)
def test_given_unacceptable_webhook_in_the_secret_when_wired_then_cold_start_fails_naming_the_variable(
    dynamodb_client: Any, summary_table: str, secrets: Any, secret: str, problem: str
) -> None:
    config = CheckConfig(summary_table_name=summary_table, slack_webhook_secret_arn=make_secret(secrets, secret))
    with pytest.raises(ConfigError) as caught:
        build_dispatcher(config, dynamodb_client, None, provider_for(secrets))
    assert "SLACK_WEBHOOK_SECRET_ARN" in str(caught.value)
    assert problem in str(caught.value)
    assert "s3cr3tTOKEN" not in str(caught.value)


def test_given_secret_that_does_not_exist_when_wired_then_cold_start_fails_with_a_clear_error(
    dynamodb_client: Any, summary_table: str, secrets: Any
) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pinwatch/missing-AbCdEf"
    config = CheckConfig(summary_table_name=summary_table, slack_webhook_secret_arn=arn)
    with pytest.raises(ConfigError, match="SLACK_WEBHOOK_SECRET_ARN: the secret cannot be read"):
        build_dispatcher(config, dynamodb_client, None, provider_for(secrets))


def test_given_secret_read_twice_within_max_age_when_providing_then_secrets_manager_is_called_once(
    secrets: Any,
) -> None:
    arn = make_secret(secrets, "https://hooks.slack.com/services/T1/B1/x")
    calls: list[str] = []
    secrets.meta.events.register("before-call.secrets-manager.GetSecretValue", lambda **_: calls.append("get"))
    provider = provider_for(secrets)
    assert provider(arn) == provider(arn) == "https://hooks.slack.com/services/T1/B1/x"
    assert calls == ["get"]


def _unavailable(**_: Any) -> None:
    raise EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com")


def test_given_secrets_manager_down_after_a_successful_read_when_alerting_then_slack_still_works(
    dynamodb_client: Any, summary_table: str, receiver: tuple[str, SlackReceiver], secrets: Any
) -> None:
    url, recv = receiver
    powertools = SecretsProvider(boto3_client=secrets)
    provider = CachedSecretProvider(powertools)
    config = CheckConfig(
        summary_table_name=summary_table,
        slack_webhook_secret_arn=make_secret(secrets, url),
        slack_allow_loopback=True,
    )
    dispatcher = build_dispatcher(config, dynamodb_client, None, provider)
    powertools.clear_cache()  # the cached value expired ...
    secrets.meta.events.register("before-send.secrets-manager.GetSecretValue", _unavailable)  # ... and SM is down
    result = dispatcher.process(pinned(Severity.CRITICAL), T0)
    assert result.delivered == ("slack",)
    assert len(recv.payloads()) == 1


def test_given_secrets_manager_down_at_cold_start_when_wired_then_it_fails_clearly(
    dynamodb_client: Any, summary_table: str, secrets: Any
) -> None:
    arn = make_secret(secrets, "https://hooks.slack.com/services/T1/B1/x")
    secrets.meta.events.register("before-send.secrets-manager.GetSecretValue", _unavailable)
    provider = provider_for(secrets)
    with pytest.raises(SecretUnavailableError):
        provider(arn)
    config = CheckConfig(summary_table_name=summary_table, slack_webhook_secret_arn=arn)
    with pytest.raises(ConfigError, match="SLACK_WEBHOOK_SECRET_ARN"):
        build_dispatcher(config, dynamodb_client, None, provider)


def test_given_no_channel_configured_when_previewing_then_both_formats_are_rendered(
    dynamodb_client: Any, summary_table: str
) -> None:
    dispatcher = build_dispatcher(CheckConfig(summary_table_name=summary_table), dynamodb_client, None, _no_secret)
    assert dispatcher.channels == ()
    result = dispatcher.process(pinned(Severity.WARNING), T0, dry_run=True)
    assert set(result.messages) == {"slack", "sns"}
    assert result.messages["sns"]["Subject"] == "WARNING - orders-proxy - connections pinned"


def _no_secret(arn: str) -> str:
    raise AssertionError("no secret should be read without SLACK_WEBHOOK_SECRET_ARN")
