"""Ingest function: CloudWatch Logs subscription batches of RDS Proxy log lines -> summary table + EMF metrics.

Thin entry. Configuration, the DynamoDB client and the store are built once per cold start by
:mod:`pinwatch.wiring` and reused; :func:`handle` takes the store and the time as parameters
(Lambda's entry passes the cold start's store and the wall clock; the demo and tests their own).
The work happens in :mod:`pinwatch.ingest` (decode, parse, tally) and
:mod:`pinwatch.store.summary` (exactly-once writes). Any error propagates: Lambda retries the
asynchronous invocation twice, then the on-failure destination keeps the batch and the error.

Metrics (namespace ``POWERTOOLS_METRICS_NAMESPACE``, default ``Pinwatch``), counted by
:class:`~pinwatch.ingest.IngestResult` from what this invocation newly wrote, so a redelivered batch
adds nothing. None has a proxy dimension: custom metrics are billed per series (about $0.30 a
month each), so a series per proxy and reason would make every pinning proxy cost $1.50-2.40 a
month in metrics alone (docs/fleet-scale.md). The series are fixed whatever the fleet's size:

* per reason, one EMF document each: ``PinEvents`` / ``WouldPinEvents`` by Reason (the parser's
  reason codes, a bounded set), summed over the batch's proxies;
* per invocation, one EMF document: ``PinEvents``, ``WouldPinEvents``, ``UnparsedLines``,
  ``DuplicateBatches`` (1 when an earlier delivery of the batch had been applied) and
  ``ForeignLogGroup`` (1 when the log group is not ``/aws/rds/proxy/<name>``);
* on the other paths: ``ControlMessages`` (a subscription's reachability check),
  ``InvalidPayloads`` (undecodable, on its way to the on-failure destination) and
  ``FailedBatches`` (an error Lambda will retry).

Per proxy and reason, the function logs one ``Pin counts`` line (``proxy``, ``kind``, ``reason``,
``count``): the stack's Contributor Insights rule ranks proxies and reasons from those lines, at
a fixed price per rule plus matched lines rather than per series ("Contributor Insights rule
syntax in CloudWatch", CloudWatch User Guide).

Powertools adds a ``service`` dimension to both when ``POWERTOOLS_SERVICE_NAME`` is set.
"""

from __future__ import annotations

import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from pinwatch import wiring
from pinwatch.config import IngestConfig
from pinwatch.ingest import BatchStore, IngestResult, InvalidPayload, decode, ingest_delivery
from pinwatch.records import Kind

# Cold start: a missing or invalid setting fails here with a message naming the variable.
CONFIG = IngestConfig.from_env(os.environ)

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "pinwatch")
metrics = Metrics(namespace=CONFIG.metrics_namespace)

_DYNAMODB = wiring.ingest_dynamodb_client()
STORE = wiring.summary_store(CONFIG, _DYNAMODB)

_METRIC_NAME = {Kind.PINNED: "PinEvents", Kind.WOULD_PIN: "WouldPinEvents"}


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary: dict[str, Any] = handle(event, context, store=STORE, now_ms=int(time.time() * 1000))
    return summary


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handle(event: dict[str, Any], context: LambdaContext, *, store: BatchStore, now_ms: int) -> dict[str, Any]:
    """One subscription batch into ``store`` at ``now_ms``; returns the summary it logs."""
    try:
        delivery = decode(event)
    except InvalidPayload as exc:
        metrics.add_metric(name="InvalidPayloads", unit=MetricUnit.Count, value=1)
        logger.error("Invalid subscription payload; failing so it reaches the on-failure destination", problem=str(exc))
        raise
    logger.append_keys(log_group=delivery.log_group, log_stream=delivery.log_stream)
    if delivery.is_control:
        # CloudWatch Logs' reachability check when a subscription is created: nothing to count.
        metrics.add_metric(name="ControlMessages", unit=MetricUnit.Count, value=1)
        logger.info("Control message acknowledged")
        return {"messageType": delivery.message_type, "applied": False}

    try:
        result = ingest_delivery(delivery, store, now_ms=now_ms)
    except InvalidPayload as exc:
        metrics.add_metric(name="InvalidPayloads", unit=MetricUnit.Count, value=1)
        logger.error("Invalid log events; failing so the batch reaches the on-failure destination", problem=str(exc))
        raise
    except Exception:
        metrics.add_metric(name="FailedBatches", unit=MetricUnit.Count, value=1)
        logger.exception("Batch not applied; failing so Lambda retries it (applied chunks are skipped on retry)")
        raise
    _emit_metrics(result)
    return _summarise(result)


PIN_COUNTS_MESSAGE = "Pin counts"  # the Contributor Insights rule in template.yaml filters on it


def _emit_metrics(result: IngestResult) -> None:
    by_reason: dict[tuple[Kind, str], int] = {}
    for (proxy, kind, reason), count in result.pins_by_reason.items():
        by_reason[(kind, reason)] = by_reason.get((kind, reason), 0) + count
        logger.info(PIN_COUNTS_MESSAGE, proxy=proxy, kind=_METRIC_NAME[kind], reason=reason, count=count)
    # One EMF document per reason: dimensions differ, so they cannot share one.
    for (kind, reason), count in sorted(by_reason.items()):
        with single_metric(
            name=_METRIC_NAME[kind], unit=MetricUnit.Count, value=count, namespace=CONFIG.metrics_namespace
        ) as metric:
            metric.add_dimension(name="Reason", value=reason)
    metrics.add_metric(name="PinEvents", unit=MetricUnit.Count, value=result.new_events(Kind.PINNED))
    metrics.add_metric(name="WouldPinEvents", unit=MetricUnit.Count, value=result.new_events(Kind.WOULD_PIN))
    metrics.add_metric(name="UnparsedLines", unit=MetricUnit.Count, value=result.new_unparsed)
    metrics.add_metric(name="DuplicateBatches", unit=MetricUnit.Count, value=int(result.redelivered))
    metrics.add_metric(name="ForeignLogGroup", unit=MetricUnit.Count, value=int(result.delivery.foreign))


def _summarise(result: IngestResult) -> dict[str, Any]:
    delivery, tally, applied = result.delivery, result.tally, result.applied
    summary: dict[str, Any] = {
        "batchId": result.batch_id,
        "proxy": delivery.proxy,
        "foreignLogGroup": delivery.foreign,
        "events": len(delivery.events),
        "pinned": tally.count(Kind.PINNED) if tally else 0,
        "wouldPin": tally.count(Kind.WOULD_PIN) if tally else 0,
        "unparsed": tally.count(Kind.UNPARSED) if tally else 0,
        "other": tally.other_lines if tally else 0,
        "chunks": applied.chunks if applied else 0,
        "appliedChunks": applied.applied_chunks if applied else 0,
        "duplicateChunks": applied.duplicate_chunks if applied else 0,
        "writes": applied.writes if applied else 0,
    }
    # Counts and ids only: line contents (statements, client addresses) never go to the log at info.
    if delivery.foreign:
        logger.warning("Log group is not an RDS Proxy log group; counted under its last path segment", **summary)
    else:
        logger.info("Batch applied" if summary["appliedChunks"] else "Batch had nothing new to apply", **summary)
    if tally is not None and summary["unparsed"]:
        logger.debug("Unparsed line samples", samples=[u.sample for u in tally.unparsed])
    return summary
