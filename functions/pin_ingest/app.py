"""Ingest function: CloudWatch Logs subscription batches of RDS Proxy log lines -> summary table + EMF metrics.

Thin wiring. Configuration, the DynamoDB client and the store are built once per cold start and
reused; the work happens in :mod:`pinwatch.ingest` (decode, parse, tally) and
:mod:`pinwatch.store.summary` (exactly-once writes). Any error propagates: Lambda retries the
asynchronous invocation twice, then the on-failure destination keeps the batch and the error.

Metrics (namespace ``POWERTOOLS_METRICS_NAMESPACE``, default ``Pinwatch``), counted from what this
invocation newly wrote, so a redelivered batch adds nothing:

* per (proxy, reason), one EMF document each: ``PinEvents`` / ``WouldPinEvents`` by ProxyName, Reason;
* per invocation, one EMF document by ProxyName: ``PinEvents``, ``WouldPinEvents``, ``UnparsedLines``,
  ``DuplicateBatches`` (1 when an earlier delivery of the batch had been applied) and
  ``ForeignLogGroup`` (1 when the log group is not ``/aws/rds/proxy/<name>``);
* on the other paths, without dimensions: ``ControlMessages`` (a subscription's reachability
  check), ``InvalidPayloads`` (undecodable, on its way to the on-failure destination) and
  ``FailedBatches`` (an error Lambda will retry).

Powertools adds a ``service`` dimension to both when ``POWERTOOLS_SERVICE_NAME`` is set.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from pinwatch.config import IngestConfig
from pinwatch.ingest import IngestResult, InvalidPayload, decode, ingest_delivery
from pinwatch.records import Kind
from pinwatch.store.summary import SummaryStore

# Cold start: a missing or invalid setting fails here with a message naming the variable.
CONFIG = IngestConfig.from_env(os.environ)

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "pinwatch")
metrics = Metrics(namespace=CONFIG.metrics_namespace)

# botocore's standard retry mode backs off on throttling and 5xx; the store adds bounded retries
# for transaction conflicts between concurrent invocations. Timeouts stay well under the function's.
_DYNAMODB = boto3.client(
    "dynamodb",
    config=Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=10),
)
STORE = SummaryStore(_DYNAMODB, CONFIG.summary_table_name, ttl_days=CONFIG.ttl_days)

_METRIC_NAME = {Kind.PINNED: "PinEvents", Kind.WOULD_PIN: "WouldPinEvents"}


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
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
        result = ingest_delivery(delivery, STORE, now_ms=int(time.time() * 1000))
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


def _emit_metrics(result: IngestResult) -> None:
    delivery, applied = result.delivery, result.applied
    proxy = delivery.proxy
    per_kind: dict[Kind, int] = defaultdict(int)
    if applied is not None:
        # One EMF document per (proxy, reason): dimensions differ, so they cannot share one.
        for (reason_proxy, kind, reason), count in sorted(applied.applied_counts.items()):
            per_kind[kind] += count
            with single_metric(
                name=_METRIC_NAME[kind], unit=MetricUnit.Count, value=count, namespace=CONFIG.metrics_namespace
            ) as metric:
                metric.add_dimension(name="ProxyName", value=reason_proxy)
                metric.add_dimension(name="Reason", value=reason)
    metrics.add_dimension(name="ProxyName", value=proxy)
    metrics.add_metric(name="PinEvents", unit=MetricUnit.Count, value=per_kind[Kind.PINNED])
    metrics.add_metric(name="WouldPinEvents", unit=MetricUnit.Count, value=per_kind[Kind.WOULD_PIN])
    unparsed = sum(applied.applied_unparsed.values()) if applied is not None else 0
    metrics.add_metric(name="UnparsedLines", unit=MetricUnit.Count, value=unparsed)
    duplicate = 1 if applied is not None and applied.redelivered else 0
    metrics.add_metric(name="DuplicateBatches", unit=MetricUnit.Count, value=duplicate)
    metrics.add_metric(name="ForeignLogGroup", unit=MetricUnit.Count, value=1 if delivery.foreign else 0)


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
