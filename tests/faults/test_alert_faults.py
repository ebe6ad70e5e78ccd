"""Fault injection on the alert path: the real check function, one proxy draining its pool.

RDS and CloudWatch on moto server; SNS and Secrets Manager on moto server behind a fault proxy;
the alert state on DynamoDB Local behind another; Slack a real local HTTP server. Each case runs
the scheduled function a few times and checks what every channel received in the end: every
alert delivered — at once, or by the next run — exactly once per channel, nothing silently lost.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from pinwatch.alerts.policy import AlertState, Transition
from pinwatch.config import ConfigError
from pinwatch.local.lambda_harness import CONNECTION_CHECK_APP, check_context, load_handler, schedule_event
from pinwatch.local.slack_receiver import Reply, SlackReceiver, slack_receiver
from pinwatch.metrics import window_end_ms
from pinwatch.store.alert_state import AlertStateStore
from pinwatch.store.transactions import DEFAULT_RETRY
from tests.integration.aws_proxies import ProxyFactory, clients, draining_shapes, put_series
from tests.support.fault_proxy import SERVER_ERRORS, THROTTLES, Fault, FaultProxy

pytestmark = pytest.mark.integration

SCHEDULE_EVENT = schedule_event()

REGION = "us-east-1"  # the region of the summary-table fixture (DynamoDB Local keeps tables per region)
CONTEXT = check_context()
HEADLINE = "CRITICAL"  # the draining proxy's pinned share and exhaustion forecast are both critical
STATE_WRITES = ("TransactWriteItems",)  # the check function writes alert state in transactions only
STATE_WRITE_ATTEMPTS = DEFAULT_RETRY.attempts  # how often the alert state store sends a cancelled write


@dataclass
class CheckWorld:
    proxy: str
    receiver: SlackReceiver
    webhook_url: str
    sqs: Any
    queue_url: str
    dynamodb: Any
    table: str

    @staticmethod
    def cold_start() -> ModuleType:
        return load_handler(CONNECTION_CHECK_APP)

    @staticmethod
    def run(app: ModuleType, *, later_s: float = 0) -> dict[str, Any]:
        """One scheduled run, now or ``later_s`` seconds from now (the function's own check either way)."""
        if not later_s:
            summary: dict[str, Any] = app.lambda_handler(SCHEDULE_EVENT, CONTEXT)
            return summary
        now_ms = int((time.time() + later_s) * 1000)
        later: dict[str, Any] = app.handle(SCHEDULE_EVENT, CONTEXT, check=app.CHECK, now_ms=now_ms)
        return later

    def sns_messages(self) -> list[str]:
        """Alert texts that reached the topic's subscriber since the last call."""
        found = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append(message["Body"])
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def alert_states(self) -> dict[str, AlertState]:
        """The proxy's alert state per rule, read straight from DynamoDB Local."""
        return AlertStateStore(self.dynamodb, self.table).load(self.proxy)

    def slack_accepted(self) -> list[dict[str, Any]]:
        """Messages Slack answered ``200 ok`` in time (a hung request is answered after the sender gave up)."""
        return [r.json() for r in self.receiver.requests if r.reply.status == 200 and not r.reply.delay_s]


@pytest.fixture
def world(
    moto_endpoint: str,
    dynamodb_client: Any,
    summary_table: str,
    table_proxy: FaultProxy,
    aws_proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CheckWorld]:
    factory = ProxyFactory(moto_endpoint, region=REGION)
    proxy = factory.create("orders", "MYSQL", debug_logging=True)
    cloudwatch, sns, sqs, secrets = clients(moto_endpoint, "cloudwatch", "sns", "sqs", "secretsmanager", region=REGION)
    put_series(cloudwatch, proxy, window_end_ms(int(time.time() * 1000)), draining_shapes())
    topic = sns.create_topic(Name=f"pinwatch-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    with slack_receiver() as (webhook_url, receiver):
        secret = secrets.create_secret(Name=f"pinwatch/slack-{uuid.uuid4().hex[:8]}", SecretString=webhook_url)["ARN"]
        for name, value in {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": moto_endpoint,  # RDS and CloudWatch
            "AWS_ENDPOINT_URL_SNS": aws_proxy.url,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": aws_proxy.url,
            "AWS_ENDPOINT_URL_DYNAMODB": table_proxy.url,
            "SUMMARY_TABLE_NAME": summary_table,
            "ALERT_TOPIC_ARN": topic,
            "SLACK_WEBHOOK_SECRET_ARN": secret,
            "SLACK_ALLOW_LOOPBACK": "true",
            "PROXY_NAMES": proxy,
            "POWERTOOLS_SERVICE_NAME": "pinwatch",
            "POWERTOOLS_METRICS_NAMESPACE": "PinwatchFaults",
        }.items():
            monkeypatch.setenv(name, value)
        yield CheckWorld(proxy, receiver, webhook_url, sqs, queue_url, dynamodb_client, summary_table)


def headline(slack_payload: dict[str, Any]) -> str:
    text: str = slack_payload["blocks"][0]["text"]["text"]
    return text


# ---------------------------------------------------------------------------------------------
# Slack


def test_given_slack_down_when_the_check_runs_then_sns_alerts_at_once_and_slack_gets_the_alert_on_the_next_run(
    world: CheckWorld,
) -> None:
    app = world.cold_start()
    world.receiver.set_default(Reply.server_error(503))

    first = world.run(app)

    assert (first["alertsSent"], first["alertDeliveryFailures"]) == (1, 1)
    assert len(world.sns_messages()) == 1
    assert world.slack_accepted() == []
    assert len(world.receiver.requests) == 3  # slack_sdk's retries, within the run's budget

    world.receiver.set_default(Reply.ok())
    second = world.run(app)
    third = world.run(app)

    assert (second["alertsSent"], second["alertDeliveryFailures"]) == (1, 0)
    [slack] = world.slack_accepted()
    assert HEADLINE in headline(slack)
    assert world.proxy in headline(slack)
    assert world.sns_messages() == []  # SNS already had it
    assert (third["alertsSent"], third["alertDeliveryFailures"]) == (0, 0)


def test_given_slack_rate_limiting_within_the_budget_when_alerting_then_it_waits_retry_after_and_delivers_in_the_run(
    world: CheckWorld,
) -> None:
    app = world.cold_start()
    world.receiver.script(Reply.rate_limited(retry_after_s=1))

    summary = world.run(app)

    limited, accepted = world.receiver.requests
    assert accepted.received_at - limited.received_at >= 1.0
    assert (summary["alertsSent"], summary["alertDeliveryFailures"]) == (2, 0)
    assert len(world.slack_accepted()) == 1
    assert len(world.sns_messages()) == 1


def test_given_slack_rate_limiting_beyond_the_budget_when_alerting_then_it_gives_up_at_once_and_delivers_next_run(
    world: CheckWorld,
) -> None:
    app = world.cold_start()
    world.receiver.script(Reply.rate_limited(retry_after_s=600))

    first = world.run(app)  # (sitting out the Retry-After would hold this test for ten minutes)
    second = world.run(app)

    assert (first["alertsSent"], first["alertDeliveryFailures"]) == (1, 1)
    assert (second["alertsSent"], second["alertDeliveryFailures"]) == (1, 0)
    assert [r.reply.status for r in world.receiver.requests] == [429, 200]
    assert len(world.sns_messages()) == 1


def test_given_slack_hanging_when_alerting_then_the_attempt_times_out_and_the_alert_is_delivered_by_the_next_run(
    world: CheckWorld,
) -> None:
    app = world.cold_start()
    world.receiver.script(Reply.hang(8))  # longer than the function's 5 s per attempt

    first = world.run(app)
    second = world.run(app)

    # Cut by the attempt timeout: had the run waited for Slack's late "ok", run 1 would have delivered.
    assert (first["alertsSent"], first["alertDeliveryFailures"]) == (1, 1)
    assert (second["alertsSent"], second["alertDeliveryFailures"]) == (1, 0)
    assert [r.reply.delay_s for r in world.receiver.requests] == [8, 0]
    assert len(world.slack_accepted()) == 1
    assert len(world.sns_messages()) == 1


# ---------------------------------------------------------------------------------------------
# SNS


@pytest.mark.parametrize("fault", [Fault.UNAVAILABLE, Fault.CONNECTION_RESET, Fault.THROTTLING])
def test_given_sns_failing_every_request_when_alerting_then_slack_alerts_at_once_and_sns_on_the_next_run(
    world: CheckWorld, aws_proxy: FaultProxy, fault: Fault
) -> None:
    app = world.cold_start()
    aws_proxy.outage(fault, service="sns")

    first = world.run(app)

    assert (first["alertsSent"], first["alertDeliveryFailures"]) == (1, 1)
    assert len(world.slack_accepted()) == 1
    assert world.sns_messages() == []
    # SNS_CLIENT_CONFIG: standard mode, max_attempts 3 = the first try and 3 retries.
    assert [i.operation for i in aws_proxy.injected] == ["Publish"] * 4

    aws_proxy.heal()
    second = world.run(app)

    assert (second["alertsSent"], second["alertDeliveryFailures"]) == (1, 0)
    [message] = world.sns_messages()
    assert world.proxy in message
    assert len(world.slack_accepted()) == 1  # Slack was not sent the same alert twice


def test_given_sns_throttling_briefly_when_alerting_then_botocore_retries_and_the_alert_is_published_once(
    world: CheckWorld, aws_proxy: FaultProxy
) -> None:
    app = world.cold_start()
    aws_proxy.script(*THROTTLES, service="sns")

    summary = world.run(app)

    assert (summary["alertsSent"], summary["alertDeliveryFailures"]) == (2, 0)
    assert len(world.sns_messages()) == 1
    assert len(world.slack_accepted()) == 1


def test_given_both_channels_down_when_alerting_then_nothing_counts_as_sent_and_the_next_run_sends_it_as_new(
    world: CheckWorld, aws_proxy: FaultProxy
) -> None:
    app = world.cold_start()
    aws_proxy.outage(Fault.UNAVAILABLE, service="sns")
    world.receiver.set_default(Reply.server_error(500))

    first = world.run(app)
    aws_proxy.heal()
    world.receiver.set_default(Reply.ok())
    second = world.run(app)
    third = world.run(app)

    assert (first["alertsSent"], first["alertDeliveryFailures"]) == (0, 2)
    assert (second["alertsSent"], second["alertDeliveryFailures"]) == (2, 0)
    assert third["alertsSent"] == 0
    assert len(world.sns_messages()) == 1
    assert len(world.slack_accepted()) == 1
    states = world.alert_states()
    assert states
    assert all(s.last_transition is Transition.NEW for s in states.values() if s.active)
    assert all(s.accepted_channels == {"slack", "sns"} for s in states.values() if s.active)


# ---------------------------------------------------------------------------------------------
# Secrets Manager


def test_given_secrets_manager_down_at_a_cold_start_when_the_function_starts_then_it_fails_naming_the_setting(
    world: CheckWorld, aws_proxy: FaultProxy
) -> None:
    aws_proxy.outage(Fault.UNAVAILABLE, service="secretsmanager")

    with pytest.raises(ConfigError) as failed:
        world.cold_start()

    message = str(failed.value)
    assert "SLACK_WEBHOOK_SECRET_ARN: the secret cannot be read" in message
    assert world.webhook_url not in message
    assert "/services/" not in message
    assert {i.operation for i in aws_proxy.injected} == {"GetSecretValue"}


def test_given_secrets_manager_down_after_the_cached_secret_expired_when_alerting_then_slack_still_delivers(
    world: CheckWorld, aws_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = world.cold_start()  # reads the secret
    aws_proxy.outage(Fault.UNAVAILABLE, service="secretsmanager")
    six_minutes_later(monkeypatch)  # past the five minutes Powertools caches the secret for

    summary = world.run(app)

    assert {(i.service, i.operation) for i in aws_proxy.injected} == {("secretsmanager", "GetSecretValue")}
    assert (summary["alertsSent"], summary["alertDeliveryFailures"]) == (2, 0)
    assert len(world.slack_accepted()) == 1


def six_minutes_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """Move the clock Powertools' parameter cache reads six minutes ahead."""
    from aws_lambda_powertools.utilities.parameters import base

    class Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + timedelta(minutes=6)

    monkeypatch.setattr(base, "datetime", Later)


# ---------------------------------------------------------------------------------------------
# DynamoDB (alert state and pin reasons)


def test_given_the_alert_state_table_throttling_and_failing_when_checks_run_then_each_channel_gets_the_alert_once(
    world: CheckWorld, table_proxy: FaultProxy
) -> None:
    app = world.cold_start()
    # Two in a row at most: botocore's standard mode (4 attempts for DynamoDB) absorbs every burst.
    table_proxy.inject(0.4, *THROTTLES, *SERVER_ERRORS, Fault.CONNECTION_RESET, service="dynamodb", max_in_a_row=2)

    runs = [world.run(app) for _ in range(3)]

    assert {"Query", "TransactWriteItems"} <= {i.operation for i in table_proxy.injected}  # reads and writes
    assert [r["failedProxies"] for r in runs] == [[], [], []]
    assert sum(r["alertsSent"] for r in runs) == 2
    assert len(world.slack_accepted()) == 1
    assert len(world.sns_messages()) == 1


@pytest.mark.parametrize("write", [0, 1], ids=["claim", "record-delivery"])
def test_given_a_throttled_alert_state_transaction_when_the_check_runs_then_it_is_retried_and_each_channel_gets_the_alert_once(
    world: CheckWorld, table_proxy: FaultProxy, write: int
) -> None:
    app = world.cold_start()
    # DynamoDB's answer to a throttled transaction; botocore does not retry TransactionCanceledException,
    # the alert state store does (its reasons are all ThrottlingError: nothing was written).
    table_proxy.script(*[None] * write, Fault.TRANSACTION_THROTTLED, operations=STATE_WRITES)

    first = world.run(app)
    after_lease = world.run(app, later_s=180)  # past the 2-minute lease

    assert [i.fault for i in table_proxy.injected] == [Fault.TRANSACTION_THROTTLED]
    assert (first["alertsSent"], first["failedProxies"]) == (2, [])
    assert after_lease["alertsSent"] == 0  # the delivery was recorded: no claim was left to expire
    assert len(world.slack_accepted()) == 1
    assert len(world.sns_messages()) == 1
    active = [s for s in world.alert_states().values() if s.active]
    assert active
    assert all(s.accepted_channels == {"slack", "sns"} and s.lease_owner is None for s in active)


def test_given_the_claim_throttled_beyond_the_retries_when_the_check_runs_then_it_fails_loudly_and_the_next_run_alerts(
    world: CheckWorld, table_proxy: FaultProxy
) -> None:
    app = world.cold_start()
    table_proxy.script(*[Fault.TRANSACTION_THROTTLED] * STATE_WRITE_ATTEMPTS, operations=STATE_WRITES)

    with pytest.raises(app.CheckFailed):  # the function's Errors alarm sees it
        world.run(app)
    assert len(table_proxy.injected) == STATE_WRITE_ATTEMPTS
    assert world.alert_states() == {}  # nothing claimed, nothing sent
    assert world.slack_accepted() == []
    assert world.sns_messages() == []

    second = world.run(app)
    third = world.run(app)

    assert (second["alertsSent"], third["alertsSent"]) == (2, 0)
    assert len(world.slack_accepted()) == 1
    assert len(world.sns_messages()) == 1


def test_given_the_state_write_after_delivery_throttled_beyond_the_retries_when_later_runs_come_then_the_alert_is_repeated_after_the_lease(
    world: CheckWorld, table_proxy: FaultProxy
) -> None:
    app = world.cold_start()
    # The claim goes through; every attempt of the write that records the delivery is cancelled for throttling.
    table_proxy.script(None, *[Fault.TRANSACTION_THROTTLED] * STATE_WRITE_ATTEMPTS, operations=STATE_WRITES)

    with pytest.raises(app.CheckFailed):
        world.run(app)
    claimed = world.alert_states()
    during_lease = world.run(app)
    after_lease = world.run(app, later_s=180)  # the 2-minute lease has expired
    settled = world.run(app, later_s=180)

    # The state did not advance past the claim: the delivery is not recorded anywhere.
    assert claimed
    assert all(s.lease_owner is not None and not s.accepted_channels for s in claimed.values())
    # At least once, never lost: the run that cannot record a delivery leaves the claim to expire,
    # and the alert goes out again after it (a repeat, not a loss).
    assert during_lease["alertsSent"] == 0
    assert (after_lease["alertsSent"], settled["alertsSent"]) == (2, 0)
    assert len(world.slack_accepted()) == 2
    assert len(world.sns_messages()) == 2


@pytest.mark.parametrize("write", [0, 1], ids=["claim", "record-delivery"])
def test_given_an_alert_state_write_applied_but_its_response_lost_when_resent_then_the_alert_goes_out_once(
    world: CheckWorld, table_proxy: FaultProxy, write: int
) -> None:
    app = world.cold_start()
    # botocore resends the same TransactWriteItems with the same ClientRequestToken (an idempotency
    # token it fills in itself), so DynamoDB answers the resend without applying it twice.
    table_proxy.script(*[None] * write, Fault.LOST_RESPONSE, operations=("TransactWriteItems",))

    runs = [world.run(app) for _ in range(3)]

    assert [i.fault for i in table_proxy.injected] == [Fault.LOST_RESPONSE]
    assert [(r["alertsSent"], r["failedProxies"]) for r in runs] == [(2, []), (0, []), (0, [])]
    assert len(world.slack_accepted()) == 1
    assert len(world.sns_messages()) == 1
