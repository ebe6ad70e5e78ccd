"""Ingest function: CloudWatch Logs subscription batches of RDS Proxy log lines -> summary table + EMF metrics.

Thin entry. Configuration, the DynamoDB client and the store are built once per cold start by
:mod:`pinwatch.wiring` and reused; :func:`handle` takes the store and the time as parameters
(Lambda's entry passes the cold start's store and the wall clock; the demo and tests their own).
The work happens in :mod:`pinwatch.ingest` (decode, parse, tally) and
:mod:`pinwatch.store.summary` (exactly-once writes). Any error propagates: Lambda retries the
asynchronous invocation twice, then the on-failure destination keeps the batch and the error.

Metrics (namespace ``POWERTOOLS_METRICS_NAMESPACE``, default ``Pinwatch``) and the ``Pin counts``
log lines are those of :mod:`pinwatch.ingest_report`, shared with the stream ingest function. On
the other paths: ``ControlMessages`` (a subscription's reachability check), ``InvalidPayloads``
(undecodable, on its way to the on-failure destination) and ``FailedBatches`` (an error Lambda
will retry).

Powertools adds a ``service`` dimension to both when ``POWERTOOLS_SERVICE_NAME`` is set.
"""

from __future__ import annotations

import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pinwatch import wiring
from pinwatch.config import IngestConfig
from pinwatch.ingest import BatchStore, InvalidPayload, decode, ingest_delivery
from pinwatch.ingest_report import emit_metrics, summarise

# Cold start: a missing or invalid setting fails here with a message naming the variable.
CONFIG = IngestConfig.from_env(os.environ)

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "pinwatch")
metrics = Metrics(namespace=CONFIG.metrics_namespace)

_DYNAMODB = wiring.ingest_dynamodb_client()
STORE = wiring.summary_store(CONFIG, _DYNAMODB)


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
    emit_metrics(result, logger, metrics, CONFIG.metrics_namespace)
    return summarise(result, logger)
