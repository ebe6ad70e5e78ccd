"""Read every proxy's connection metrics in as few ``GetMetricData`` calls as possible.

One ``MetricStat`` query per (proxy, metric), packed 500 to a call, so a check costs
ceil(proxies x metrics / 500) calls instead of one ``GetMetricStatistics`` per metric and proxy.
No metric math: ratios are computed in Python from the raw series, which also keeps the reader
testable on moto. The CloudWatch client is injected; this module never imports boto3.

A call that still fails after botocore's retries is tried once more (:data:`CALL_ATTEMPTS`); if it
fails again, every proxy whose queries were in it gets a :class:`ProxyMetrics` with ``error`` set
(and no data), so the check reports those proxies as not checked and goes on with the rest.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

# Re-exported: callers that build minute series import it with the metric names.
from pinwatch.findings import call_error
from pinwatch.timebase import MINUTE_MS as MINUTE_MS

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef

logger = logging.getLogger(__name__)

NAMESPACE = "AWS/RDS"
DIMENSION = "ProxyName"
PERIOD_S = 60
MAX_QUERIES_PER_CALL = 500  # GetMetricData's limit
CALL_ATTEMPTS = 2  # per batch, each with botocore's own retries inside

CLIENT_CONNECTIONS = "ClientConnections"
DATABASE_CONNECTIONS = "DatabaseConnections"
PINNED = "DatabaseConnectionsCurrentlySessionPinned"
IN_TRANSACTION = "DatabaseConnectionsCurrentlyInTransaction"
BORROWED = "DatabaseConnectionsCurrentlyBorrowed"
MAX_ALLOWED = "MaxDatabaseConnectionsAllowed"
BORROW_LATENCY = "DatabaseConnectionsBorrowLatency"  # microseconds
SETUP_FAILED = "DatabaseConnectionsSetupFailed"  # a count per period, not a gauge


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    stat: str


# Each proxy runs on several instances that each publish the gauges: Sum adds them up.
# Latency is a per-borrow figure, so it is averaged instead.
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(CLIENT_CONNECTIONS, "Sum"),
    MetricSpec(DATABASE_CONNECTIONS, "Sum"),
    MetricSpec(PINNED, "Sum"),
    MetricSpec(IN_TRANSACTION, "Sum"),
    MetricSpec(BORROWED, "Sum"),
    MetricSpec(MAX_ALLOWED, "Sum"),
    MetricSpec(BORROW_LATENCY, "Average"),
)

# Read only every few minutes: GetMetricData is billed per metric requested (~$0.01 per 1,000), so a
# metric read every minute costs ~$0.43 per proxy-month. Failed database-connection setups are
# counted per minute ("The number of database connection requests that failed", Sum — RDS Proxy
# metrics table, https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy.monitoring.html),
# so one read of the whole window every N minutes sees every failure the per-minute reads would,
# at 1/N of the cost, only later. Between reads the rule reports "not read this run" (no news).
PERIODIC_METRICS: tuple[MetricSpec, ...] = (MetricSpec(SETUP_FAILED, "Sum"),)
SETUP_FAILED_EVERY_MINUTES = 5

# A minute counts as published when any of these has a datapoint for it.
_PRESENCE = (CLIENT_CONNECTIONS, DATABASE_CONNECTIONS, MAX_ALLOWED)


@dataclass(frozen=True, slots=True)
class ProxyMetrics:
    """One proxy's series over the check window, one slot per minute (oldest first).

    ``None`` means CloudWatch had no datapoint for that minute. The pinned series is the
    exception: the proxy publishes nothing while nothing is pinned, so a minute in which the proxy
    published its other gauges but no pinned value reads as 0. A minute with no data at all (not
    yet published, or no proxy instance running) stays ``None`` for every metric.
    """

    proxy: str
    timestamps_ms: tuple[int, ...]
    series: Mapping[str, tuple[float | None, ...]]
    error: str | None = None  # the metrics could not be read; the series are empty
    # The newest published minute, left out because not every proxy instance had published it yet.
    partial_minute_ms: int | None = None

    def values(self, metric: str) -> tuple[float | None, ...]:
        return self.series.get(metric, (None,) * len(self.timestamps_ms))

    def points(self, metric: str) -> list[tuple[int, float]]:
        """(timestamp ms, value) pairs of the minutes that have a value."""
        return [(t, v) for t, v in zip(self.timestamps_ms, self.values(metric), strict=True) if v is not None]

    def latest_index(self) -> int | None:
        """The newest minute with a database-connections value: all "latest" figures come from it."""
        values = self.values(DATABASE_CONNECTIONS)
        return next((i for i in range(len(values) - 1, -1, -1) if values[i] is not None), None)

    def latest(self, metric: str) -> float | None:
        index = self.latest_index()
        return None if index is None else self.values(metric)[index]


def window_end_ms(now_ms: int) -> int:
    """End of the check window: the start of the current minute, so the last minute is complete."""
    return now_ms - now_ms % MINUTE_MS


def query_id(proxy_index: int, metric_index: int) -> str:
    # Ids must start with a lowercase letter and be unique per call; indexes keep them short.
    return f"p{proxy_index}m{metric_index}"


def metrics_for(end_ms: int, periodic_every_minutes: int = SETUP_FAILED_EVERY_MINUTES) -> tuple[MetricSpec, ...]:
    """The metrics a check ending at ``end_ms`` reads: :data:`METRICS`, plus the periodic ones on every Nth minute."""
    due = (end_ms // MINUTE_MS) % periodic_every_minutes == 0
    return METRICS + PERIODIC_METRICS if due else METRICS


def build_queries(
    proxies: Sequence[str], specs: Sequence[MetricSpec] = METRICS
) -> tuple[list[MetricDataQueryTypeDef], dict[str, tuple[str, str]]]:
    """Every (proxy, metric) ``MetricStat`` query, and the map from query id back to (proxy, metric)."""
    queries: list[MetricDataQueryTypeDef] = []
    index: dict[str, tuple[str, str]] = {}
    for p, proxy in enumerate(proxies):
        for m, spec in enumerate(specs):
            qid = query_id(p, m)
            index[qid] = (proxy, spec.name)
            # No Unit: a unit that differs from the published one makes CloudWatch return nothing.
            queries.append(
                {
                    "Id": qid,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE,
                            "MetricName": spec.name,
                            "Dimensions": [{"Name": DIMENSION, "Value": proxy}],
                        },
                        "Period": PERIOD_S,
                        "Stat": spec.stat,
                    },
                    "ReturnData": True,
                }
            )
    return queries, index


def calls_needed(
    proxies: int, max_queries_per_call: int = MAX_QUERIES_PER_CALL, metrics_per_proxy: int = len(METRICS)
) -> int:
    """GetMetricData calls for one check (before any NextToken continuation)."""
    return math.ceil(proxies * metrics_per_proxy / max_queries_per_call)


def _chunks[T](items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class CloudWatchMetricsReader:
    """Reads :data:`METRICS` for many proxies with batched ``GetMetricData`` calls."""

    def __init__(
        self,
        client: CloudWatchClient,
        max_queries_per_call: int = MAX_QUERIES_PER_CALL,
        *,
        periodic_every_minutes: int = SETUP_FAILED_EVERY_MINUTES,
    ) -> None:
        if not 1 <= max_queries_per_call <= MAX_QUERIES_PER_CALL:
            raise ValueError(f"max_queries_per_call must be 1..{MAX_QUERIES_PER_CALL}")
        if periodic_every_minutes < 1:
            raise ValueError("periodic_every_minutes must be at least 1")
        self._client = client
        self._max_queries = max_queries_per_call
        self._periodic_every = periodic_every_minutes

    def read(self, proxies: Sequence[str], end_ms: int, window_minutes: int) -> dict[str, ProxyMetrics]:
        """Series for every proxy over the ``window_minutes`` minutes before ``end_ms`` (a minute boundary)."""
        if not proxies:
            return {}
        end_ms = window_end_ms(end_ms)
        start_ms = end_ms - window_minutes * MINUTE_MS
        proxies = list(dict.fromkeys(proxies))
        empty: list[float | None] = [None] * window_minutes
        specs = metrics_for(end_ms, self._periodic_every)
        raw = {proxy: {spec.name: list(empty) for spec in specs} for proxy in proxies}
        queries, index = build_queries(proxies, specs)
        errors: dict[str, str] = {}
        for chunk in _chunks(queries, self._max_queries):
            try:
                results = self._fetch_retried(list(chunk), start_ms, end_ms)
            except Exception as exc:
                # This batch's proxies only: the other batches are still read and diagnosed.
                error = call_error("GetMetricData", exc)
                logger.warning("GetMetricData failed for %d queries: %s", len(chunk), error)
                errors.update({index[q["Id"]][0]: error for q in chunk})
                continue
            for result in results:
                proxy, metric = index[result["Id"]]
                target = raw[proxy][metric]
                for ts, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                    slot = (_epoch_ms(ts) - start_ms) // MINUTE_MS
                    if 0 <= slot < window_minutes:
                        target[slot] = float(value)
        timestamps = tuple(start_ms + i * MINUTE_MS for i in range(window_minutes))
        return {
            proxy: ProxyMetrics(proxy, timestamps, {}, error=errors[proxy])
            if proxy in errors
            else _assemble(proxy, timestamps, series)
            for proxy, series in raw.items()
        }

    def _fetch_retried(self, queries: list[MetricDataQueryTypeDef], start_ms: int, end_ms: int) -> list[Any]:
        """One batch's results (NextToken pages included), the whole batch tried again on failure."""
        for attempt in range(1, CALL_ATTEMPTS + 1):
            try:
                results = list(self._fetch(queries, start_ms, end_ms))
                for result in results:
                    _ = result["Id"]  # a malformed answer fails here, inside the retry
                return results
            except Exception:
                if attempt == CALL_ATTEMPTS:
                    raise
                logger.info("GetMetricData failed; trying the batch once more", exc_info=True)
        raise AssertionError("unreachable")

    def _fetch(self, queries: list[MetricDataQueryTypeDef], start_ms: int, end_ms: int) -> Iterator[Any]:
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": datetime.fromtimestamp(start_ms / 1000, tz=UTC),
            "EndTime": datetime.fromtimestamp(end_ms / 1000, tz=UTC),
            "ScanBy": "TimestampAscending",
        }
        while True:
            response = self._client.get_metric_data(**kwargs)
            yield from response.get("MetricDataResults", [])
            token = response.get("NextToken")
            if not token:
                return
            kwargs["NextToken"] = token


def _epoch_ms(ts: datetime | int | float) -> int:
    if isinstance(ts, datetime):
        return int(ts.timestamp() * 1000)
    return int(ts * 1000)


def _assemble(proxy: str, timestamps: tuple[int, ...], series: dict[str, list[float | None]]) -> ProxyMetrics:
    presence = [any(series[m][i] is not None for m in _PRESENCE) for i in range(len(timestamps))]
    partial = _partial_newest_minute(series[MAX_ALLOWED], presence)
    if partial is not None:
        presence[partial] = False
        for values in series.values():
            values[partial] = None
    pinned = series[PINNED]
    series[PINNED] = [0.0 if v is None and present else v for v, present in zip(pinned, presence, strict=True)]
    return ProxyMetrics(
        proxy,
        timestamps,
        {metric: tuple(values) for metric, values in series.items()},
        partial_minute_ms=None if partial is None else timestamps[partial],
    )


def _partial_newest_minute(limit: Sequence[float | None], presence: Sequence[bool]) -> int | None:
    """The newest published minute's index when not every proxy instance has published it yet, else None.

    Each proxy instance publishes its own datapoints and the gauges are read as Sum ("Use CloudWatch
    statistics to aggregate the values for a proxy across all the associated instances", RDS Proxy
    monitoring docs), so a minute some instances have not published yet reads low on every gauge:
    a false fall at the end of every trend and of every latest figure. The limit
    (``MaxDatabaseConnectionsAllowed``) is the one gauge that holds still from minute to minute, so
    a newest minute whose limit Sum is below the minute before it is taken as partial. A real drop
    of the limit is read one minute later, when the following minute agrees with it. Costs no
    extra metric: a ``SampleCount`` query would be one more metric requested, billed like any other.
    """
    published = [i for i, present in enumerate(presence) if present]
    if len(published) < 2:
        return None
    newest, previous = published[-1], published[-2]
    now, before = limit[newest], limit[previous]
    if now is None or before is None:
        return None
    return newest if now < before else None
