"""Connection check function: on a schedule, diagnose every RDS Proxy and alert on what changed.

Thin wiring. Settings, AWS clients, the alert dispatcher and the check are built once per cold
start (an invalid setting or an unreadable Slack secret fails there, naming the variable); the
work happens in :mod:`pinwatch.check` (discover, read metrics, diagnose, explain) and
:mod:`pinwatch.alerts` (policy, rendering, delivery).

Alert channels are delivered concurrently, each within its own deadline and all within one taken
from the invocation's remaining time, so a slow Slack or SNS cannot run the function into its
timeout before the alert state is written. A proxy whose alerting failed does not stop the others; the invocation then fails at the end so
the function's Errors metric and alarm see it. The schedule does not retry: the next run checks
again with fresh numbers, and undelivered messages stay pending in the alert state.

Metrics (namespace ``POWERTOOLS_METRICS_NAMESPACE``, default ``Pinwatch``), per invocation:
``ChecksRun``, ``ProxiesChecked``, ``AlertsSent`` (messages a channel accepted),
``AlertDeliveryFailures`` (messages a channel failed or rejected, plus proxies whose alerting
raised), and ``FindingsBySeverity`` with a ``Severity`` dimension (ok, info, warning, critical;
findings without enough data are not counted).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from pinwatch.alerts.policy import DeliveryStatus
from pinwatch.alerts.wiring import SNS_CLIENT_CONFIG, CachedSecretProvider, build_dispatcher
from pinwatch.check import CheckResult, build_connection_check
from pinwatch.config import CheckConfig

# Cold start: a missing or invalid setting fails here with a message naming the variable.
CONFIG = CheckConfig.from_env(os.environ)

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Pinwatch"
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "pinwatch")
metrics = Metrics(namespace=NAMESPACE)
# The library logs through the standard logging module; give it the same JSON format and level.
copy_config_to_registered_loggers(source_logger=logger, include={"pinwatch"})

# botocore's standard retry mode backs off on throttling and 5xx; timeouts stay well inside the
# function's, so one slow API cannot eat the whole run.
_AWS_CONFIG = Config(retries={"mode": "standard"}, connect_timeout=3, read_timeout=10)
_DYNAMODB = boto3.client("dynamodb", config=_AWS_CONFIG)
_SECRETS = (
    CachedSecretProvider(SecretsProvider(boto3_client=boto3.client("secretsmanager", config=_AWS_CONFIG)))
    if CONFIG.slack_webhook_secret_arn
    else CachedSecretProvider()
)
DISPATCHER = build_dispatcher(
    CONFIG,
    _DYNAMODB,
    boto3.client("sns", config=SNS_CLIENT_CONFIG) if CONFIG.alert_topic_arn else None,
    _SECRETS,
)
CHECK = build_connection_check(
    CONFIG,
    rds_client=boto3.client("rds", config=_AWS_CONFIG),
    cloudwatch_client=boto3.client("cloudwatch", config=_AWS_CONFIG),
    dynamodb_client=_DYNAMODB,
    dispatcher=DISPATCHER,
)


# Where "now" comes from: the wall clock in Lambda. `pinwatch demo` replays an incident on a
# simulated clock and swaps this for it, so every run diagnoses the minute it simulates.
clock: Callable[[], float] = time.time

# Time kept back from the function's timeout for what follows delivery: the alert-state write (a
# transaction with its retries) and the metrics flush. A quarter of what is left, at most 5 s.
RESERVE_FRACTION = 0.25
RESERVE_MAX_S = 5.0


def delivery_deadline(context: Any) -> float | None:
    """``time.monotonic()`` by which every alert channel must be done, from the Lambda's remaining time."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None  # not in Lambda: the channels' own deadlines still hold
    remaining_s = remaining() / 1000
    return time.monotonic() + remaining_s - min(RESERVE_MAX_S, remaining_s * RESERVE_FRACTION)


class CheckFailed(RuntimeError):
    """Alerting failed for at least one proxy (the others were checked and alerted)."""


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = CHECK.run(int(clock() * 1000), deadline=delivery_deadline(context))
    summary = _emit_metrics(result)
    logger.info("Check complete", **summary)
    if result.failures:
        raise CheckFailed(f"alerting failed for {len(result.failures)} proxies: {', '.join(sorted(result.failures))}")
    return summary


def _emit_metrics(result: CheckResult) -> dict[str, Any]:
    sent = failed = 0
    for outcome in result.outcomes:
        if outcome.error is not None:
            failed += 1
        if outcome.dispatch is None:
            continue
        for delivery in outcome.dispatch.outcomes.values():
            if delivery.status is DeliveryStatus.ACCEPTED:
                sent += 1
            elif delivery.status in (DeliveryStatus.FAILED, DeliveryStatus.REJECTED):
                failed += 1
    by_severity = result.findings_by_severity()
    metrics.add_metric(name="ChecksRun", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ProxiesChecked", unit=MetricUnit.Count, value=len(result.outcomes))
    metrics.add_metric(name="AlertsSent", unit=MetricUnit.Count, value=sent)
    metrics.add_metric(name="AlertDeliveryFailures", unit=MetricUnit.Count, value=failed)
    for severity, count in by_severity.items():
        # Each severity is its own dimension value, so each needs its own EMF document.
        with single_metric(
            name="FindingsBySeverity", unit=MetricUnit.Count, value=count, namespace=NAMESPACE
        ) as metric:
            metric.add_dimension(name="Severity", value=severity.value)
    return {
        "proxies": len(result.outcomes),
        "findingsBySeverity": {s.value: n for s, n in by_severity.items()},
        # Healthy proxies are left out: with hundreds of them the line would bury the ones that matter.
        "unhealthyProxies": {r.proxy: r.severity.value for r in result.reports if r.severity.rank > 0},
        "alertsSent": sent,
        "alertDeliveryFailures": failed,
        "failedProxies": sorted(result.failures),
    }
