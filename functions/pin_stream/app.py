"""Stream ingest function (organization mode): member accounts' pin lines from Kinesis -> summary table + EMF.

Member accounts' proxy log groups are subscribed to a CloudWatch Logs destination that puts each
subscription payload into one Kinesis data stream; an event source mapping invokes this function
with batches of those records (docs/organization.md). Each record is one delivery of one member's
log group, decoded with its account and Region (:mod:`pinwatch.stream_ingest`) and applied exactly
once through the summary table's batch markers (:mod:`pinwatch.store.summary`), under
``<account>:<region>:<proxy>`` keys.

Thin entry, like the subscription ingest function: configuration, clients, the store and the
parking queue are built once per cold start by :mod:`pinwatch.wiring`; :func:`handle` takes them
and the time as parameters. Records are processed with Powertools' ``BatchProcessor`` and the
function answers with a partial batch response (``ReportBatchItemFailures``):

* a record that cannot be read (``InvalidPayload``) is parked, with its data and the error, in the
  ``PARKING_QUEUE_URL`` queue and counts as processed, so one bad record never blocks its shard;
* a record whose parking fails, or whose writes fail (throttling, a DynamoDB outage), is a batch
  item failure: Lambda retries from it (records before it are not re-sent; a re-sent record's
  applied chunks are skipped by their markers), bisects, and after the mapping's retries its
  on-failure destination keeps the shard and sequence range;
* a ``CONTROL_MESSAGE`` (CloudWatch Logs checking the destination) is acknowledged, nothing written;
* when every record of a batch failed, Powertools raises instead of answering: Lambda counts a
  function error and bisects the batch.

Metrics and ``Pin counts`` lines per applied record are the subscription ingest function's
(:mod:`pinwatch.ingest_report`); on the other paths ``ControlMessages``, ``InvalidPayloads`` (one per
parked record) and ``FailedBatches`` (one per record Lambda will retry).
"""

from __future__ import annotations

import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pinwatch import wiring
from pinwatch.config import StreamIngestConfig
from pinwatch.ingest import BatchStore, InvalidPayload, ingest_delivery
from pinwatch.ingest_report import emit_metrics, summarise
from pinwatch.stream_ingest import Parking, scoped_delivery

# Cold start: a missing or invalid setting fails here with a message naming the variable.
CONFIG = StreamIngestConfig.from_env(os.environ)

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "pinwatch")
metrics = Metrics(namespace=CONFIG.ingest.metrics_namespace)

STORE, PARKING = wiring.stream_ingest(CONFIG)

processor = BatchProcessor(event_type=EventType.KinesisDataStreams)

# Log keys of one record, replaced for the next.
_RECORD_KEYS = ("sequence_number", "log_group", "log_stream", "account", "region")


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = handle(event, context, store=STORE, parking=PARKING, now_ms=int(time.time() * 1000))
    return response


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handle(
    event: dict[str, Any], context: LambdaContext, *, store: BatchStore, parking: Parking, now_ms: int
) -> dict[str, Any]:
    """One batch of Kinesis records into ``store`` at ``now_ms``; returns the partial batch response."""

    def record_handler(record: KinesisStreamRecord) -> dict[str, Any] | None:
        return _record(record, store, parking, now_ms)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)


def _record(record: KinesisStreamRecord, store: BatchStore, parking: Parking, now_ms: int) -> dict[str, Any] | None:
    logger.remove_keys(list(_RECORD_KEYS))
    logger.append_keys(sequence_number=record.kinesis.sequence_number)
    try:
        delivery = scoped_delivery(record)
        logger.append_keys(log_group=delivery.log_group, log_stream=delivery.log_stream)
        if delivery.scope is not None:
            logger.append_keys(account=delivery.scope.account, region=delivery.scope.region)
        if delivery.is_control:
            # CloudWatch Logs' reachability check of the destination: nothing to count.
            metrics.add_metric(name="ControlMessages", unit=MetricUnit.Count, value=1)
            logger.info("Control message acknowledged")
            return None
        result = ingest_delivery(delivery, store, now_ms=now_ms)  # invalid log events raise before any write
    except InvalidPayload as exc:
        _park(record, parking, str(exc))
        return None
    except Exception:
        metrics.add_metric(name="FailedBatches", unit=MetricUnit.Count, value=1)
        logger.exception("Record not applied; reporting it so Lambda retries it (applied chunks are skipped on retry)")
        raise
    emit_metrics(result, logger, metrics, CONFIG.ingest.metrics_namespace)
    return summarise(result, logger)


def _park(record: KinesisStreamRecord, parking: Parking, problem: str) -> None:
    try:
        parking.park(record, problem)
    except Exception:
        metrics.add_metric(name="FailedBatches", unit=MetricUnit.Count, value=1)
        logger.exception("Invalid record could not be parked; reporting it so Lambda retries it", problem=problem)
        raise
    metrics.add_metric(name="InvalidPayloads", unit=MetricUnit.Count, value=1)
    logger.error("Invalid record parked in the parking queue", problem=problem)
