"""Connection check function: diagnose RDS proxies and alert on what changed.

Invoked every minute by its schedule — which reads every proxy on the sweep minutes and only the
hot ones in between — and by the stack's pinned-connections alarm, whose contributor events name
the proxy to read at once (:mod:`pinwatch.fleet`, docs/fleet-scale.md). With
``ORG_MEMBER_STACK_SET`` set it checks every member account and Region of the organization
(:mod:`pinwatch.org`), and a member alarm's forwarded event names the proxy by its key; the
check remembers each member contributor's ALARM or OK from those events, and reads the ones in
ALARM between sweeps (:mod:`pinwatch.store.hot_state`).

Thin entry. Settings, AWS clients, the alert dispatcher and the check are built once per cold
start by :mod:`pinwatch.wiring` (an invalid setting or an unreadable Slack secret fails there,
naming the variable). :func:`handle` takes the check and the time as parameters: Lambda's entry
passes the cold start's check and the wall clock, ``pinwatch demo`` a simulated minute. The work
happens in :mod:`pinwatch.check` (discover, read metrics, diagnose, explain) and
:mod:`pinwatch.alerts` (policy, rendering, delivery); the counts come from the run's
:class:`~pinwatch.check.CheckResult`.

Alert channels are delivered concurrently, each within its own deadline and all within one taken
from the invocation's remaining time, so a slow Slack or SNS cannot run the function into its
timeout before the alert state is written. A proxy whose alerting failed does not stop the
others; the invocation then fails at the end so the function's Errors metric and alarm see it. The schedule does not retry: the next run checks
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
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from pinwatch import wiring
from pinwatch.check import Check, CheckResult
from pinwatch.config import CheckConfig
from pinwatch.fleet import ContributorWatch, HotSource, parse_trigger, plan_run, remember

# Cold start: a missing or invalid setting fails here with a message naming the variable.
CONFIG = CheckConfig.from_env(os.environ)

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Pinwatch"
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "pinwatch")
metrics = Metrics(namespace=NAMESPACE)
# The library logs through the standard logging module; give it the same JSON format and level.
copy_config_to_registered_loggers(source_logger=logger, include={"pinwatch"})

CHECK = wiring.check_function(CONFIG)
# Proxies the stack's Metrics Insights alarm holds in ALARM: hot between two sweeps.
CONTRIBUTORS: HotSource = wiring.alarm_contributors(CONFIG)
# Organization mode: the member alarms' contributor states, remembered from their events (None otherwise).
WATCH: ContributorWatch | None = wiring.contributor_watch(CONFIG)

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


class ContributorNotRecorded(RuntimeError):
    """A member contributor's state could not be stored; failing lets Lambda retry the event."""


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary: dict[str, Any] = handle(
        event, context, check=CHECK, now_ms=int(time.time() * 1000), contributors=CONTRIBUTORS, watch=WATCH
    )
    return summary


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handle(
    event: dict[str, Any],
    context: LambdaContext,
    *,
    check: Check,
    now_ms: int,
    contributors: HotSource | None = None,
    watch: ContributorWatch | None = None,
) -> dict[str, Any]:
    """One check at ``now_ms`` of the proxies ``event`` calls for; returns the summary it logs.

    A schedule event reads every proxy on a sweep minute and the hot ones (open alerts, alarm
    contributors in ALARM) in between; an alarm contributor event reads its proxy; anything else
    every proxy (:mod:`pinwatch.fleet`). ``contributors`` (default: the cold start's) lists the
    stack's alarm contributors in ALARM; ``watch`` (default: the cold start's, organization mode
    only) stores each member contributor event's state and lists those in ALARM.
    Raises :class:`CheckFailed` at the end when alerting failed, :class:`ContributorNotRecorded`
    when the event's state could not be stored (after the check it called for).
    """
    trigger = parse_trigger(event, qualified=CONFIG.org_mode)
    watch = watch or WATCH
    hot_sources: list[HotSource] = [check.alerting_proxies, contributors or CONTRIBUTORS]
    not_recorded: Exception | None = None
    if watch is not None:
        hot_sources.append(watch.watched)
        try:
            remember(trigger, watch)
        except Exception as exc:  # the check still runs; the retried event is stored again (idempotent)
            logger.exception("could not store the alarm contributor's state")
            not_recorded = exc
    plan = plan_run(
        trigger,
        now_ms,
        sweep_minutes=CONFIG.sweep_minutes,
        hot_sources=hot_sources,
        configured=CONFIG.proxy_names,
    )
    if plan.reads_every_proxy:
        result = check.run(now_ms, deadline=delivery_deadline(context))
    else:
        result = check.run(now_ms, deadline=delivery_deadline(context), names=plan.names)
    _emit_metrics(result)
    summary = _summarise(result)
    summary["trigger"] = plan.why
    logger.info("Check complete", **summary)
    if result.failures:
        raise CheckFailed(f"alerting failed for {len(result.failures)} proxies: {', '.join(sorted(result.failures))}")
    if not_recorded is not None:
        raise ContributorNotRecorded(f"{', '.join(trigger.proxies)}: {not_recorded}") from not_recorded
    return summary


def _emit_metrics(result: CheckResult) -> None:
    metrics.add_metric(name="ChecksRun", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ProxiesChecked", unit=MetricUnit.Count, value=len(result.outcomes))
    metrics.add_metric(name="AlertsSent", unit=MetricUnit.Count, value=result.alerts_sent)
    metrics.add_metric(name="AlertDeliveryFailures", unit=MetricUnit.Count, value=result.delivery_failures)
    for severity, count in result.findings_by_severity().items():
        # Each severity is its own dimension value, so each needs its own EMF document.
        with single_metric(
            name="FindingsBySeverity", unit=MetricUnit.Count, value=count, namespace=NAMESPACE
        ) as metric:
            metric.add_dimension(name="Severity", value=severity.value)


def _summarise(result: CheckResult) -> dict[str, Any]:
    return {
        "proxies": len(result.outcomes),
        "findingsBySeverity": {s.value: n for s, n in result.findings_by_severity().items()},
        # Healthy proxies are left out: with hundreds of them the line would bury the ones that matter.
        "unhealthyProxies": {proxy: severity.value for proxy, severity in result.unhealthy.items()},
        "alertsSent": result.alerts_sent,
        "alertDeliveryFailures": result.delivery_failures,
        "failedProxies": sorted(result.failures),
    }
