"""Time units and UTC hour buckets, in epoch milliseconds (what CloudWatch Logs events carry).

Pure: no clock. Pin counts are kept per UTC hour; a bucket is written ``2026-11-25T20`` so buckets
sort lexically in the same order as time (the summary table's sort keys rely on it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS
DAY_MS: Final = 24 * HOUR_MS

_HOUR_FORMAT = "%Y-%m-%dT%H"


def hour_bucket(timestamp_ms: int) -> str:
    """UTC hour of an epoch-millisecond timestamp: ``2026-11-25T20``."""
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).strftime(_HOUR_FORMAT)


def hour_start_ms(bucket: str) -> int:
    """Inverse of :func:`hour_bucket`: the bucket's first millisecond."""
    return int(datetime.strptime(bucket, _HOUR_FORMAT).replace(tzinfo=UTC).timestamp() * 1000)
