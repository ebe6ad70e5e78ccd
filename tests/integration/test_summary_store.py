"""The summary table adapter on DynamoDB Local: exactly-once batches, chunking, failures, reads."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pinwatch.ingest import decode, fold
from pinwatch.parse import parse_message
from pinwatch.records import Kind, LogRecord
from pinwatch.store import keys
from pinwatch.store.summary import MARKER_TTL_S, UPDATES_PER_CHUNK, SummaryStore
from pinwatch.store.transactions import TransientRetry
from pinwatch.tally import Tally
from tests.payloads import log_events, max_size_event, subscription_event
from tests.support.table import Crash, cancelled_transaction, crash_after, hourly_counts, items, own_client

pytestmark = pytest.mark.integration

T0 = 1_795_600_800_000  # 2026-11-25T10:00:00Z
HOUR = 3_600_000
NOW = T0 + 10 * HOUR


@pytest.fixture
def client(dynamodb_endpoint: str) -> Any:
    return own_client(dynamodb_endpoint)


@pytest.fixture
def store(client: Any, summary_table: str) -> SummaryStore:
    return SummaryStore(client, summary_table, retry=TransientRetry(sleep=lambda _: None))


def pin(ts: int, reason: str, digest: str | None = None) -> LogRecord:
    return LogRecord(
        kind=Kind.PINNED, raw="", timestamp_ms=ts, reason=reason, reason_text=f"text {reason}", digest=digest
    )


def expected_counts(events: list[dict[str, Any]], proxy: str) -> Counter[tuple[str, str]]:
    """The oracle: parse every line on its own and count it under its key."""
    out: Counter[tuple[str, str]] = Counter()
    for e in events:
        record = parse_message(e["message"], e["timestamp"])
        hour = keys.hour_bucket(e["timestamp"])
        if record.kind is Kind.PINNED:
            out[(keys.proxy_pk(proxy), keys.pin_hour_sk(hour, record.reason or "unknown"))] += 1
        elif record.kind is Kind.WOULD_PIN:
            out[(keys.proxy_pk(proxy), keys.would_pin_hour_sk(hour, record.reason or "unknown"))] += 1
        elif record.kind is Kind.UNPARSED:
            out[(keys.proxy_pk(proxy), keys.unparsed_hour_sk(hour))] += 1
    return out


@pytest.fixture(scope="module")
def big_delivery() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """~1 MB invocation event spread over 60 hours: hundreds of distinct keys, so several chunks."""
    event, _ = max_size_event(hours=60)
    return event, json.loads(json.dumps(decode(event).events))


def test_given_one_batch_delivered_three_times_when_applied_then_counts_are_exact_and_repeats_are_duplicates(
    client: Any, summary_table: str, store: SummaryStore
) -> None:
    events = log_events(200, T0, 2 * HOUR)
    batch, tally = fold(decode(subscription_event(events)))

    results = [store.apply_batch(batch, tally, NOW) for _ in range(3)]

    assert hourly_counts(client, summary_table) == expected_counts(events, "orders-db")
    assert [(r.applied_chunks, r.duplicate_chunks) for r in results] == [(1, 0), (0, 1), (0, 1)]
    assert sum(results[0].applied_counts.values()) == 200
    assert results[1].applied_counts == {} == results[2].applied_counts
    assert [r.redelivered for r in results] == [False, True, True]


def test_given_a_max_size_batch_when_applied_then_it_is_chunked_and_exact_with_one_write_per_key(
    client: Any, summary_table: str, store: SummaryStore, big_delivery: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    event, events = big_delivery
    batch, tally = fold(decode(event))
    updates = len(store.plan(tally, NOW))

    result = store.apply_batch(batch, tally, NOW)

    assert updates > UPDATES_PER_CHUNK
    assert result.chunks == -(-updates // UPDATES_PER_CHUNK)
    assert result.writes == updates + result.chunks
    assert hourly_counts(client, summary_table) == expected_counts(events, "orders-db")
    markers = [i for i in items(client, summary_table) if i[keys.PK]["S"] == keys.batch_pk(batch)]
    assert sorted(m[keys.SK]["S"] for m in markers) == [
        keys.batch_chunk_sk(i, result.chunks) for i in range(result.chunks)
    ]


@pytest.mark.parametrize("crash_at", [1, 2])
def test_given_a_crash_after_k_transactions_when_the_batch_is_retried_then_counts_end_exact(
    client: Any,
    summary_table: str,
    store: SummaryStore,
    big_delivery: tuple[dict[str, Any], list[dict[str, Any]]],
    crash_at: int,
) -> None:
    event, events = big_delivery
    batch, tally = fold(decode(event))
    crash_after(client, crash_at)

    with pytest.raises(Crash):
        store.apply_batch(batch, tally, NOW)
    retry = store.apply_batch(batch, tally, NOW + 60_000)

    assert hourly_counts(client, summary_table) == expected_counts(events, "orders-db")
    assert retry.duplicate_chunks == crash_at
    assert retry.applied_chunks == retry.chunks - crash_at
    totals = {r.reason: r.count for r in store.reason_totals("orders-db")}
    pins = Counter(
        parse_message(e["message"]).reason for e in events if parse_message(e["message"]).kind is Kind.PINNED
    )
    assert totals == dict(pins)


def test_given_a_lost_response_that_botocore_retries_when_applied_then_the_chunk_counts_as_ours_not_a_duplicate(
    client: Any, summary_table: str, store: SummaryStore
) -> None:
    state = {"forced": False}

    def retry_once_after_success(response: Any, **_: Any) -> int | None:
        # The transaction committed, then "the response was lost": botocore sends the same request again.
        if response is not None and response[0].status_code == 200 and not state["forced"]:
            state["forced"] = True
            return 0
        return None

    client.meta.events.register("needs-retry.dynamodb.TransactWriteItems", retry_once_after_success)
    tally = Tally()
    tally.add("orders-db", pin(T0, "lock"))

    result = store.apply_batch("lost-response", tally, NOW)

    assert state["forced"]
    assert (result.applied_chunks, result.duplicate_chunks) == (1, 0)
    assert result.applied_counts == {("orders-db", Kind.PINNED, "lock"): 1}
    assert (
        hourly_counts(client, summary_table)[
            (keys.proxy_pk("orders-db"), keys.pin_hour_sk(keys.hour_bucket(T0), "lock"))
        ]
        == 1
    )


def test_given_a_transaction_conflict_when_applied_then_the_chunk_is_retried_and_applied_once(
    client: Any, summary_table: str, store: SummaryStore
) -> None:
    calls = {"n": 0}

    def conflict_first(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            return cancelled_transaction(["None", "TransactionConflict"])
        return None

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", conflict_first)
    tally = Tally()
    tally.add("orders-db", pin(T0, "lock"))

    result = store.apply_batch("conflicted", tally, NOW)

    assert (result.transactions, result.applied_chunks) == (2, 1)
    assert sum(hourly_counts(client, summary_table).values()) == 1


def test_given_conflicts_that_do_not_clear_when_applied_then_the_error_is_raised_not_swallowed(
    client: Any, summary_table: str, store: SummaryStore
) -> None:
    client.meta.events.register(
        "before-call.dynamodb.TransactWriteItems", lambda **_: cancelled_transaction(["None", "TransactionConflict"])
    )
    tally = Tally()
    tally.add("orders-db", pin(T0, "lock"))

    with pytest.raises(ClientError) as caught:
        store.apply_batch("always-conflicted", tally, NOW)

    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert items(client, summary_table) == []


def test_given_a_non_transient_failure_when_applied_then_it_is_raised_at_once(client: Any, store: SummaryStore) -> None:
    calls = {"n": 0}

    def validation_error(**_: Any) -> Any:
        calls["n"] += 1
        return cancelled_transaction(["None", "ValidationError"])

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", validation_error)
    tally = Tally()
    tally.add("orders-db", pin(T0, "lock"))

    with pytest.raises(ClientError):
        store.apply_batch("invalid", tally, NOW)
    assert calls["n"] == 1


def test_given_a_missing_table_when_applied_then_the_error_propagates(client: Any) -> None:
    tally = Tally()
    tally.add("orders-db", pin(T0, "lock"))

    with pytest.raises(ClientError) as caught:
        SummaryStore(client, "no-such-table").apply_batch("b", tally, NOW)

    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_given_several_proxies_and_hours_in_one_batch_when_applied_then_each_key_and_total_is_exact(
    client: Any, summary_table: str, store: SummaryStore
) -> None:
    tally = Tally()
    for proxy, ts, reason, digest in [
        ("orders-db", T0 + 1, "session_settings", "set search_path = $1"),
        ("orders-db", T0 + 2, "session_settings", "set names $1"),
        ("orders-db", T0 + HOUR + 5, "session_settings", "set search_path = $1"),
        ("orders-db", T0 + HOUR + 6, "large_statement", None),
        ("billing-db", T0 + 3, "lock", "LOCK TABLES t WRITE"),
        ("billing-db", T0 + 2 * HOUR, "lock", None),
    ]:
        tally.add(proxy, pin(ts, reason, digest), log_group=f"/aws/rds/proxy/{proxy}")
    tally.add("orders-db", LogRecord(kind=Kind.UNPARSED, raw="garbage", timestamp_ms=T0 + 9))

    store.apply_batch("multi", tally, NOW)

    assert [(r.reason, r.count, r.first_seen_ms, r.last_seen_ms) for r in store.reason_totals("orders-db")] == [
        ("session_settings", 3, T0 + 1, T0 + HOUR + 5),
        ("large_statement", 1, T0 + HOUR + 6, T0 + HOUR + 6),
    ]
    assert [(r.reason, r.count) for r in store.reason_totals("billing-db")] == [("lock", 2)]
    hours = store.hourly("orders-db", T0, T0 + 2 * HOUR)
    assert [(h.hour, h.kind, h.reason, h.count) for h in hours] == [
        (keys.hour_bucket(T0), Kind.PINNED, "session_settings", 2),
        (keys.hour_bucket(T0), Kind.UNPARSED, None, 1),
        (keys.hour_bucket(T0 + HOUR), Kind.PINNED, "large_statement", 1),
        (keys.hour_bucket(T0 + HOUR), Kind.PINNED, "session_settings", 1),
    ]
    seen = {p.proxy: p for p in store.proxies()}
    assert sorted(seen) == ["billing-db", "orders-db"]
    assert (seen["orders-db"].first_seen_ms, seen["orders-db"].last_seen_ms) == (T0 + 1, T0 + HOUR + 6)
    assert seen["billing-db"].log_group == "/aws/rds/proxy/billing-db"


def test_given_batches_over_time_when_reading_top_reasons_then_the_window_selects_whole_hours(
    store: SummaryStore,
) -> None:
    tally = Tally()
    for ts, reason in [(T0 - 1, "lock"), (T0 + 10, "lock"), (T0 + 20, "cursor"), (T0 + 30, "cursor")]:
        tally.add("orders-db", pin(ts, reason, f"digest {reason} {ts}"))
    for ts in (T0 + 2 * HOUR, T0 + 2 * HOUR + 1, T0 + 2 * HOUR + 2):
        tally.add("orders-db", pin(ts, "large_statement"))
    store.apply_batch("window", tally, NOW)

    top = store.top_reasons("orders-db", T0 + 30 * 60_000, T0 + HOUR + 1)
    assert [(r.reason, r.count) for r in top] == [("cursor", 2), ("lock", 1)]
    assert top[0].example_digest == f"digest cursor {T0 + 30}"
    assert [(r.reason, r.count) for r in store.top_reasons("orders-db", T0 - HOUR, T0 + 3 * HOUR, limit=2)] == [
        ("large_statement", 3),
        ("cursor", 2),
    ]
    assert store.top_reasons("orders-db", T0 + 5 * HOUR, T0 + 6 * HOUR) == []
    assert store.top_reasons("nobody", T0, T0 + HOUR) == []


def test_given_would_pins_and_unparsed_lines_when_read_then_each_has_its_own_counts(store: SummaryStore) -> None:
    tally = Tally()
    would = LogRecord(kind=Kind.WOULD_PIN, raw="", timestamp_ms=T0, reason="prepared_statement", digest="select $1")
    tally.add("orders-db", would)
    tally.add("orders-db", would)
    tally.add("orders-db", LogRecord(kind=Kind.UNPARSED, raw="\x00junk", timestamp_ms=T0 + 5))
    tally.add("orders-db", pin(T0, "lock"))
    store.apply_batch("kinds", tally, NOW)

    assert [(r.reason, r.count, r.example_digest) for r in store.would_pin_counts("orders-db", T0, T0 + HOUR)] == [
        ("prepared_statement", 2, "select $1")
    ]
    assert [(u.count, u.sample) for u in store.unparsed_counts("orders-db", T0, T0 + HOUR)] == [(1, "\x00junk")]
    assert [r.reason for r in store.top_reasons("orders-db", T0, T0 + HOUR)] == ["lock"]


def test_given_an_applied_batch_when_inspected_then_hourly_items_and_markers_expire_and_totals_do_not(
    client: Any, summary_table: str
) -> None:
    store = SummaryStore(client, summary_table, ttl_days=7)
    tally = Tally()
    tally.add("orders-db", pin(T0 + 5, "lock"))

    store.apply_batch("ttl", tally, NOW)

    by_sk = {i[keys.SK]["S"]: i for i in items(client, summary_table)}
    hour_end_s = (T0 + HOUR) // 1000
    assert int(by_sk[keys.pin_hour_sk(keys.hour_bucket(T0), "lock")]["expires_at"]["N"]) == hour_end_s + 7 * 86_400
    assert int(by_sk[keys.batch_chunk_sk(0, 1)]["expires_at"]["N"]) == NOW // 1000 + MARKER_TTL_S
    assert "expires_at" not in by_sk[keys.pin_total_sk("lock")]
    assert "expires_at" not in by_sk[keys.proxies_sk("orders-db")]


def test_given_totals_across_batches_when_read_then_latest_digests_follow_the_latest_batch(
    client: Any, summary_table: str, store: SummaryStore
) -> None:
    first, second = Tally(), Tally()
    first.add("orders-db", pin(T0, "session_settings", "set a = $1"))
    second.add("orders-db", pin(T0 + HOUR, "session_settings", "set b = $1"))
    second.add("orders-db", pin(T0 + HOUR + 1, "session_settings", "set c = $1"))

    store.apply_batch("one", first, NOW)
    store.apply_batch("two", second, NOW)

    [total] = store.reason_totals("orders-db")
    assert (total.count, total.first_seen_ms, total.last_seen_ms, total.example_digest) == (
        3,
        T0,
        T0 + HOUR + 1,
        "set c = $1",
    )
    item = next(i for i in items(client, summary_table) if i[keys.SK]["S"] == keys.pin_total_sk("session_settings"))
    assert [d["S"] for d in item["latest_digests"]["L"]] == ["set b = $1", "set c = $1"]


def test_given_an_empty_tally_when_applied_then_nothing_is_written(
    client: Any, summary_table: str, store: SummaryStore
) -> None:
    result = store.apply_batch("empty", Tally(), NOW)

    assert (result.chunks, result.writes) == (0, 0)
    assert items(client, summary_table) == []


def test_given_a_ttl_below_one_day_when_the_store_is_built_then_it_is_refused(client: Any) -> None:
    with pytest.raises(ValueError, match="ttl_days"):
        SummaryStore(client, "t", ttl_days=0)
