"""What an ingest function logs and measures for one applied delivery: EMF metrics and its summary line.

Shared by the subscription ingest function (one delivery per invocation) and the stream ingest
function (one delivery per Kinesis record), so both publish the same series and log lines.

Metrics (the functions' namespace, ``POWERTOOLS_METRICS_NAMESPACE``), counted from what the
delivery newly wrote (:class:`~pinwatch.ingest.IngestResult`), so a redelivered batch adds nothing.
None has a proxy dimension: custom metrics are billed per series (about $0.30 a month each), so a
series per proxy and reason would make every pinning proxy cost $1.50-2.40 a month in metrics
alone (docs/fleet-scale.md). The series are fixed whatever the fleet's size:

* per reason, one EMF document each: ``PinEvents`` / ``WouldPinEvents`` by Reason (the parser's
  reason codes, a bounded set), summed over the batch's proxies;
* per delivery: ``PinEvents``, ``WouldPinEvents``, ``UnparsedLines``, ``DuplicateBatches`` (1 when an
  earlier delivery of the batch had been applied) and ``ForeignLogGroup`` (1 when the log group is
  not ``/aws/rds/proxy/<name>``).

Per proxy key and reason, one ``Pin counts`` log line (``proxy``, ``kind``, ``reason``, ``count``):
the stack's Contributor Insights rule ranks proxies and reasons from those lines, at a fixed price
per rule plus matched lines rather than per series ("Contributor Insights rule syntax in
CloudWatch", CloudWatch User Guide). In organization mode ``proxy`` is the qualified key
(``<account>:<region>:<name>``), so the ranking tells members apart.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from pinwatch.ingest import IngestResult
from pinwatch.records import Kind

PIN_COUNTS_MESSAGE = "Pin counts"  # the Contributor Insights rule in template.yaml filters on it
METRIC_NAME = {Kind.PINNED: "PinEvents", Kind.WOULD_PIN: "WouldPinEvents"}


def emit_metrics(result: IngestResult, logger: Logger, metrics: Metrics, namespace: str) -> None:
    """The ``Pin counts`` lines and the metrics of one applied delivery (see the module docstring)."""
    by_reason: dict[tuple[Kind, str], int] = {}
    for (proxy, kind, reason), count in result.pins_by_reason.items():
        by_reason[(kind, reason)] = by_reason.get((kind, reason), 0) + count
        logger.info(PIN_COUNTS_MESSAGE, proxy=proxy, kind=METRIC_NAME[kind], reason=reason, count=count)
    # One EMF document per reason: dimensions differ, so they cannot share one.
    for (kind, reason), count in sorted(by_reason.items()):
        with single_metric(name=METRIC_NAME[kind], unit=MetricUnit.Count, value=count, namespace=namespace) as metric:
            metric.add_dimension(name="Reason", value=reason)
    metrics.add_metric(name="PinEvents", unit=MetricUnit.Count, value=result.new_events(Kind.PINNED))
    metrics.add_metric(name="WouldPinEvents", unit=MetricUnit.Count, value=result.new_events(Kind.WOULD_PIN))
    metrics.add_metric(name="UnparsedLines", unit=MetricUnit.Count, value=result.new_unparsed)
    metrics.add_metric(name="DuplicateBatches", unit=MetricUnit.Count, value=int(result.redelivered))
    metrics.add_metric(name="ForeignLogGroup", unit=MetricUnit.Count, value=int(result.delivery.foreign))


def summarise(result: IngestResult, logger: Logger) -> dict[str, Any]:
    """Log and return the delivery's summary: counts and ids only, never line contents."""
    delivery, tally, applied = result.delivery, result.tally, result.applied
    summary: dict[str, Any] = {
        "batchId": result.batch_id,
        "proxy": delivery.key,
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
