"""Folding parsed records into one aggregate per summary-table key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinwatch.records import Kind, LogRecord
from pinwatch.tally import (
    DIGEST_MAX_CHARS,
    DIGESTS_PER_KEY,
    REASON_TEXT_MAX_CHARS,
    SAMPLE_MAX_CHARS,
    Tally,
    truncate,
)
from pinwatch.timebase import hour_bucket
from tests.support.builders import tally_records

T0 = 1_795_600_800_000  # 2026-11-25T10:00:00Z, an hour boundary
HOUR = 3_600_000


def pin(ts: int | None, reason: str = "session_settings", digest: str | None = None, text: str = "r") -> LogRecord:
    return LogRecord(kind=Kind.PINNED, raw="line", timestamp_ms=ts, reason=reason, reason_text=text, digest=digest)


def test_given_pins_of_two_reasons_in_one_hour_when_tallied_then_one_aggregate_per_reason() -> None:
    tally = tally_records(
        "orders-db", [pin(T0 + 5, "session_settings"), pin(T0 + 1, "large_statement"), pin(T0 + 9, "session_settings")]
    )

    summary = [(a.reason, a.count, a.first_ms, a.last_ms) for a in tally.reasons]
    assert summary == [("large_statement", 1, T0 + 1, T0 + 1), ("session_settings", 2, T0 + 5, T0 + 9)]
    assert {a.hour for a in tally.reasons} == {hour_bucket(T0)}


def test_given_lines_either_side_of_an_hour_boundary_when_tallied_then_they_land_in_two_buckets() -> None:
    tally = tally_records("p", [pin(T0 - 1), pin(T0), pin(T0 + HOUR - 1)])

    assert [(a.hour, a.count) for a in tally.reasons] == [(hour_bucket(T0 - 1), 1), (hour_bucket(T0), 2)]


def test_given_pins_and_would_pins_of_one_reason_when_tallied_then_kinds_are_kept_apart() -> None:
    would = LogRecord(kind=Kind.WOULD_PIN, raw="x", timestamp_ms=T0, reason="prepared_statement")
    tally = tally_records("p", [pin(T0, "prepared_statement"), would, would])

    assert [(a.kind, a.count) for a in tally.reasons] == [(Kind.PINNED, 1), (Kind.WOULD_PIN, 2)]
    assert tally.count(Kind.PINNED) == 1
    assert tally.count(Kind.WOULD_PIN) == 2


def test_given_a_record_without_a_timestamp_when_added_then_the_cloudwatch_timestamp_is_used() -> None:
    tally = Tally()
    tally.add("p", pin(None), fallback_ms=T0 + 2 * HOUR)

    assert tally.reasons[0].hour == hour_bucket(T0 + 2 * HOUR)
    assert tally.reasons[0].first_ms == T0 + 2 * HOUR


def test_given_no_timestamp_at_all_when_added_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="fallback_ms"):
        Tally().add("p", pin(None))


def test_given_a_pin_without_a_reason_code_when_tallied_then_it_counts_as_unknown() -> None:
    record = LogRecord(kind=Kind.PINNED, raw="x", timestamp_ms=T0, reason=None)

    assert [a.reason for a in tally_records("p", [record]).reasons] == ["unknown"]


def test_given_a_huge_digest_and_reason_text_when_tallied_then_samples_are_truncated_to_the_limits() -> None:
    tally = tally_records("p", [pin(T0, digest="x" * 20_000, text="y" * 20_000)])

    agg = tally.reasons[0]
    assert agg.digest is not None
    assert len(agg.digest) == DIGEST_MAX_CHARS
    assert agg.digest.endswith("…")
    assert agg.reason_text is not None
    assert len(agg.reason_text) == REASON_TEXT_MAX_CHARS


def test_given_many_digests_when_tallied_then_the_latest_distinct_ones_are_kept_latest_last() -> None:
    digests = ["set a = $1", "set b = $1", "set a = $1", "set c = $1", "set d = $1", "set d = $1"]
    tally = tally_records("p", [pin(T0 + i, digest=d) for i, d in enumerate(digests)])

    agg = tally.reasons[0]
    assert len(agg.digests) == DIGESTS_PER_KEY
    assert agg.digests == ["set a = $1", "set c = $1", "set d = $1"]
    assert agg.digest == "set d = $1"


def test_given_unparsed_lines_when_tallied_then_they_are_counted_per_hour_with_the_first_as_sample() -> None:
    junk = [LogRecord(kind=Kind.UNPARSED, raw=f"junk {i} " + "z" * 1000, timestamp_ms=T0 + i) for i in range(3)]
    tally = tally_records("p", junk)

    [agg] = tally.unparsed
    assert (agg.count, agg.first_ms, agg.last_ms) == (3, T0, T0 + 2)
    assert agg.sample.startswith("junk 0 ")
    assert len(agg.sample) == SAMPLE_MAX_CHARS
    assert tally.reasons == []


def test_given_other_proxy_lines_when_tallied_then_only_activity_and_the_other_count_change() -> None:
    other = LogRecord(kind=Kind.OTHER, raw="A new client connected", timestamp_ms=T0 + 7)
    tally = tally_records("p", [other, pin(T0 + 3)], log_group="/aws/rds/proxy/p")

    assert tally.other_lines == 1
    assert [(a.proxy, a.lines, a.first_ms, a.last_ms, a.log_group) for a in tally.proxies] == [
        ("p", 2, T0 + 3, T0 + 7, "/aws/rds/proxy/p")
    ]
    assert tally.count(Kind.PINNED) == 1


def test_given_an_empty_tally_when_asked_then_it_is_empty() -> None:
    assert Tally().is_empty()
    assert not tally_records("p", [pin(T0)]).is_empty()


def test_given_text_under_or_over_a_limit_when_truncated_then_only_long_text_is_cut() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("abcd", 3) == "ab…"
    assert truncate(None, 3) is None


_records = st.lists(
    st.tuples(
        st.sampled_from(["orders-db", "billing-db"]),
        st.sampled_from([Kind.PINNED, Kind.WOULD_PIN, Kind.UNPARSED, Kind.OTHER]),
        st.sampled_from(["session_settings", "large_statement", "lock"]),
        st.integers(min_value=T0 - 5 * HOUR, max_value=T0 + 5 * HOUR),
    ),
    max_size=200,
)


@given(_records)
def test_given_any_records_when_tallied_then_every_line_is_counted_once_under_its_own_key(
    rows: list[tuple[str, Kind, str, int]],
) -> None:
    tally = Tally()
    for proxy, kind, reason, ts in rows:
        tally.add(proxy, LogRecord(kind=kind, raw="r", timestamp_ms=ts, reason=reason))

    expected: dict[tuple[str, str, Kind, str], int] = {}
    for proxy, kind, reason, ts in rows:
        if kind in (Kind.PINNED, Kind.WOULD_PIN):
            key = (proxy, hour_bucket(ts), kind, reason)
            expected[key] = expected.get(key, 0) + 1
    assert {(a.proxy, a.hour, a.kind, a.reason): a.count for a in tally.reasons} == expected
    keys = [(a.proxy, a.hour, a.kind, a.reason) for a in tally.reasons]
    assert keys == sorted(keys)
    assert tally.count(Kind.UNPARSED) == sum(1 for r in rows if r[1] is Kind.UNPARSED)
    assert tally.other_lines == sum(1 for r in rows if r[1] is Kind.OTHER)
    assert tally.lines == len(rows)


# Candidate digests are pruned in batches while folding; the kept ones must be those of remembering all.
_times = st.integers(min_value=T0, max_value=T0 + 60)  # a narrow range: many ties and late repeats
_digest_lines = st.tuples(
    st.lists(_times, min_size=80, max_size=80),  # 80 distinct digests: pruned several times
    st.lists(st.tuples(st.integers(min_value=0, max_value=79), _times), max_size=200),  # and repeats
).flatmap(
    lambda drawn: st.permutations(
        [(f"set v{i} = $1", ts) for i, ts in enumerate(drawn[0])] + [(f"set v{i} = $1", ts) for i, ts in drawn[1]]
    )
)


@given(_digest_lines, st.booleans())
def test_given_any_digests_in_any_order_when_tallied_then_the_kept_ones_are_the_latest_of_all_seen(
    lines: list[tuple[str, int]], grouped: bool
) -> None:
    tally = Tally()
    if grouped:  # the ingest fold's call: many groups at once
        tally.add_groups("p", Kind.PINNED, [("session_settings", 1, ts, ts, "r", d) for d, ts in lines])
    else:
        for digest, ts in lines:
            tally.add_reason("p", Kind.PINNED, "session_settings", ts, "r", digest)

    latest: dict[str, int] = {}
    for digest, ts in lines:
        latest[digest] = max(ts, latest.get(digest, ts))
    ranked = sorted(latest, key=lambda d: (latest[d], d))
    assert [a.digests for a in tally.reasons] == [ranked[-DIGESTS_PER_KEY:]]


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=T0, max_value=T0 + 5)), max_size=30))
def test_given_reason_texts_in_any_order_when_tallied_then_the_latest_then_greatest_is_kept(
    lines: list[tuple[str, int]],
) -> None:
    tally = Tally()
    tally.add_groups("p", Kind.PINNED, [("lock", 1, ts, ts, text, None) for text, ts in lines])

    assert [a.reason_text for a in tally.reasons] == ([max(lines, key=lambda x: (x[1], x[0]))[0]] if lines else [])
