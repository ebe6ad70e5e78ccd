"""Per-account routing (``ACCOUNT_ROUTES``): a member account's alerts reach its own channels too.

Wired as the check function wires it (``build_dispatcher`` from a ``CheckConfig``): state on
DynamoDB Local, Slack webhooks on local receivers with their URLs in moto's Secrets Manager, SNS
topics on moto server delivering to SQS queues.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from pinwatch.alerts import AlertDispatcher, DeliveryStatus
from pinwatch.alerts.secrets import CachedSecretProvider
from pinwatch.config import AccountRoute, CheckConfig, ConfigError
from pinwatch.findings import Finding, ProxyReport, Severity
from pinwatch.local.slack_receiver import Reply, SlackReceiver, slack_receiver
from pinwatch.scope import Scope
from pinwatch.wiring import build_dispatcher

pytestmark = pytest.mark.integration

REGION = "us-east-1"
T0 = 1_764_100_000_000
MIN = 60_000
ROUTED = "111111111111"
OTHER = "222222222222"
ROUTED_KEY = Scope(ROUTED, "eu-west-1").key("orders-db")
OTHER_KEY = Scope(OTHER, "eu-west-1").key("orders-db")  # the same proxy name in another account


def pinned(proxy: str) -> ProxyReport:
    finding = Finding(proxy, "pinned_share", Severity.CRITICAL, "64% of DB connections are pinned (61 of 95).")
    return ProxyReport(proxy, None, "available", (finding,), figures={"ClientConnections": 100.0})


@dataclass
class Topic:
    arn: str
    sqs: Any
    queue_url: str

    def subjects(self) -> list[str]:
        found: list[str] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for m in messages:
                found.append(json.loads(m["Body"])["Subject"])
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


@dataclass
class Org:
    """Central Slack + SNS, and account 111111111111's own Slack + SNS."""

    sns: Any
    secrets: Any
    central_slack: SlackReceiver
    central_url: str
    routed_slack: SlackReceiver
    routed_url: str
    central_topic: Topic
    routed_topic: Topic
    secret_reads: list[str]

    def secret(self, value: str) -> str:
        arn: str = self.secrets.create_secret(Name=f"pinwatch/slack-{time.monotonic_ns()}", SecretString=value)["ARN"]
        return arn

    def config(self, table: str, routed_secret: str | None = None) -> CheckConfig:
        return CheckConfig(
            summary_table_name=table,
            alert_topic_arn=self.central_topic.arn,
            slack_webhook_secret_arn=self.secret(self.central_url),
            slack_allow_loopback=True,
            account_routes=(
                AccountRoute(
                    ROUTED,
                    slack_webhook_secret_arn=routed_secret or self.secret(self.routed_url),
                    alert_topic_arn=self.routed_topic.arn,
                ),
            ),
        )

    def dispatcher(self, dynamodb: Any, config: CheckConfig) -> AlertDispatcher:
        provider = CachedSecretProvider(SecretsProvider(boto3_client=self.secrets))
        # Short Slack budgets: a failing routed webhook is given up on within seconds.
        return build_dispatcher(config, dynamodb, self.sns, provider, slack_timeout_s=1.0, slack_budget_s=2.0)


def _topic(sns: Any, sqs: Any, name: str) -> Topic:
    arn = sns.create_topic(Name=name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    return Topic(arn, sqs, queue_url)


@pytest.fixture
def org(moto_endpoint: str) -> Iterator[Org]:
    sns = boto3.client("sns", endpoint_url=moto_endpoint, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION)
    secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name=REGION)
    reads: list[str] = []
    secrets.meta.events.register(
        "before-parameter-build.secrets-manager.GetSecretValue", lambda params, **_: reads.append(params["SecretId"])
    )
    suffix = time.monotonic_ns()
    with slack_receiver() as (central_url, central), slack_receiver() as (routed_url, routed):
        yield Org(
            sns,
            secrets,
            central,
            central_url,
            routed,
            routed_url,
            _topic(sns, sqs, f"pinwatch-central-{suffix}"),
            _topic(sns, sqs, f"pinwatch-team-{suffix}"),
            reads,
        )


def test_given_a_routed_account_when_its_proxy_alerts_then_its_own_channels_get_it_as_well_as_the_central_ones(
    org: Org, dynamodb_client: Any, summary_table: str
) -> None:
    dispatcher = org.dispatcher(dynamodb_client, org.config(summary_table))

    result = dispatcher.process(pinned(ROUTED_KEY), T0)

    assert set(result.delivered) == {"slack", "sns", f"slack:{ROUTED}", f"sns:{ROUTED}"}
    subject = "CRITICAL - orders-db (111111111111, eu-west-1) - connections pinned"
    assert org.central_topic.subjects() == org.routed_topic.subjects() == [subject]
    (central,) = org.central_slack.payloads()
    (routed,) = org.routed_slack.payloads()
    assert central == routed
    assert central["blocks"][0]["text"]["text"].startswith("🔴 CRITICAL · orders-db (111111111111, eu-west-1)")


@pytest.mark.parametrize("proxy", [OTHER_KEY, "orders-db"], ids=["another-account", "single-account-name"])
def test_given_a_proxy_outside_the_routed_account_when_it_alerts_then_only_the_central_channels_get_it(
    org: Org, dynamodb_client: Any, summary_table: str, proxy: str
) -> None:
    dispatcher = org.dispatcher(dynamodb_client, org.config(summary_table))

    result = dispatcher.process(pinned(proxy), T0)

    assert set(result.delivered) == {"slack", "sns"}
    assert len(org.central_slack.payloads()) == 1
    assert len(org.central_topic.subjects()) == 1
    assert org.routed_slack.payloads() == []
    assert org.routed_topic.subjects() == []


def test_given_the_routed_webhook_failing_when_alerting_then_the_central_channels_deliver_and_only_it_is_retried(
    org: Org, dynamodb_client: Any, summary_table: str
) -> None:
    dispatcher = org.dispatcher(dynamodb_client, org.config(summary_table))
    org.routed_slack.set_default(Reply.server_error(503))

    first = dispatcher.process(pinned(ROUTED_KEY), T0)

    assert set(first.delivered) == {"slack", "sns", f"sns:{ROUTED}"}
    failed = first.outcomes[f"slack:{ROUTED}"]
    assert (failed.channel, failed.status, failed.error) == (f"slack:{ROUTED}", DeliveryStatus.FAILED, "http_503")
    assert len(org.central_slack.payloads()) == 1

    # Another proxy of the same account in the same run: the routed webhook is not waited on again.
    started = time.monotonic()
    again = dispatcher.process(pinned(Scope(ROUTED, "us-east-1").key("billing-db")), T0)
    assert again.outcomes[f"slack:{ROUTED}"].error == "skipped_after_failure"
    assert time.monotonic() - started < 1.0
    assert {"slack", "sns", f"sns:{ROUTED}"} <= set(again.delivered)

    # The next run: the webhook is back; only the channel that missed the message gets it.
    org.routed_slack.set_default(Reply.ok())
    org.central_slack.clear()
    org.central_topic.subjects()
    org.routed_topic.subjects()
    retry = dispatcher.process(pinned(ROUTED_KEY), T0 + MIN)
    assert retry.delivered == (f"slack:{ROUTED}",)
    assert org.central_slack.payloads() == []
    assert org.central_topic.subjects() == org.routed_topic.subjects() == []
    assert "delivery retried" in json.dumps(org.routed_slack.payloads()[-1])


def test_given_a_routed_secret_when_wired_then_it_is_read_at_the_first_alert_and_then_from_the_cache(
    org: Org, dynamodb_client: Any, summary_table: str
) -> None:
    config = org.config(summary_table)
    routed_secret = config.account_routes[0].slack_webhook_secret_arn
    assert routed_secret is not None
    dispatcher = org.dispatcher(dynamodb_client, config)
    assert org.secret_reads == [config.slack_webhook_secret_arn]  # cold start checks the central one only

    dispatcher.process(pinned(ROUTED_KEY), T0)
    dispatcher.process(pinned(Scope(ROUTED, "us-east-1").key("billing-db")), T0)

    assert org.secret_reads.count(routed_secret) == 1
    assert len(org.routed_slack.payloads()) == 2


def test_given_a_routed_secret_that_cannot_be_read_when_alerting_then_only_that_channel_fails(
    org: Org, dynamodb_client: Any, summary_table: str
) -> None:
    missing = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:pinwatch/missing-AbCdEf"
    dispatcher = org.dispatcher(dynamodb_client, org.config(summary_table, routed_secret=missing))

    result = dispatcher.process(pinned(ROUTED_KEY), T0)

    assert set(result.delivered) == {"slack", "sns", f"sns:{ROUTED}"}
    failed = result.outcomes[f"slack:{ROUTED}"]
    assert (failed.status, failed.error) == (DeliveryStatus.FAILED, "no_webhook")
    assert f"ACCOUNT_ROUTES[{ROUTED}].slack_webhook_secret_arn" in failed.detail


def test_given_a_routed_topic_in_another_region_when_wired_then_cold_start_fails_naming_account_routes(
    org: Org, dynamodb_client: Any, summary_table: str
) -> None:
    config = CheckConfig(
        summary_table_name=summary_table,
        account_routes=(AccountRoute(ROUTED, alert_topic_arn="arn:aws:sns:eu-west-1:123456789012:pinwatch-team"),),
    )
    with pytest.raises(ConfigError, match=r"ACCOUNT_ROUTES\[111111111111\]\.alert_topic_arn is a topic in eu-west-1"):
        org.dispatcher(dynamodb_client, config)
