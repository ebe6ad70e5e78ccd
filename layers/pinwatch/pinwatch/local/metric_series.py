"""An RDS Proxy's ``AWS/RDS`` series as CloudWatch holds them, put into moto's CloudWatch.

Each proxy instance publishes its own datapoint a minute under the ``ProxyName`` dimension, so a
proxy with several instances has several datapoints a minute.
Used by the local organization (:mod:`pinwatch.local.org`) and the connection-check tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pinwatch.timebase import MINUTE_MS

WINDOW = 30  # minutes: the check's default metrics window (Config.metrics_window_minutes)

# minute index (0 = oldest) -> value per proxy instance, None = not published that minute
Shape = Callable[[int], float | None]

# PutMetricData takes at most 1,000 datapoints a request (CloudWatch API Reference, PutMetricData).
_PUT_BATCH = 1000


def put_series(
    cloudwatch: Any,
    proxy: str,
    end_ms: int,
    shapes: Mapping[str, Shape],
    instances: int = 2,
    window: int = WINDOW,
    published: Callable[[int], int] | None = None,
) -> int:
    """Publish per-instance datapoints for each minute of the window before ``end_ms``; returns how many.

    ``shapes``: metric name -> the value per instance for a minute. ``published(minute)`` says how
    many instances had published that minute (default: all ``instances``).
    """
    data: list[dict[str, Any]] = []
    start_ms = end_ms - window * MINUTE_MS
    for metric, shape in shapes.items():
        for minute in range(window):
            value = shape(minute)
            if value is None:
                continue
            when = datetime.fromtimestamp((start_ms + minute * MINUTE_MS + 15_000) / 1000, tz=UTC)
            data.extend(
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": "ProxyName", "Value": proxy}],
                    "Timestamp": when,
                    "Value": value,
                }
                for _ in range(instances if published is None else published(minute))
            )
    for start in range(0, len(data), _PUT_BATCH):
        cloudwatch.put_metric_data(Namespace="AWS/RDS", MetricData=data[start : start + _PUT_BATCH])
    return len(data)
