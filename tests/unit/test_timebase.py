"""UTC hour buckets: stable text, inverse of each other, lexical order is time order."""

from __future__ import annotations

from pinwatch.timebase import DAY_MS, HOUR_MS, MINUTE_MS, hour_bucket, hour_start_ms

T0 = 1_795_600_800_000  # 2026-11-25T10:00:00Z


def test_given_a_timestamp_when_bucketed_then_it_is_its_utc_hour() -> None:
    assert hour_bucket(T0) == "2026-11-25T10"
    assert hour_bucket(T0 + HOUR_MS - 1) == "2026-11-25T10"
    assert hour_bucket(T0 + HOUR_MS) == "2026-11-25T11"


def test_given_a_bucket_when_inverted_then_it_is_the_hours_first_millisecond() -> None:
    for offset in (0, 1, 59 * MINUTE_MS, HOUR_MS - 1):
        assert hour_start_ms(hour_bucket(T0 + offset)) == T0


def test_given_buckets_across_a_day_boundary_when_sorted_as_text_then_they_are_in_time_order() -> None:
    times = [T0 + i * 7 * HOUR_MS for i in range(10)]
    buckets = [hour_bucket(t) for t in times]

    assert sorted(buckets) == buckets
    assert hour_bucket(T0 + DAY_MS) == "2026-11-26T10"
