"""Decoding subscription payloads, folding their lines, and handing the tally to a store."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwatch.ingest import (
    CONTROL_MESSAGE,
    IngestResult,
    InvalidPayload,
    batch_id,
    decode,
    fold,
    ingest,
    proxy_name,
)
from pinwatch.parse import PIN_PHRASE, PIN_REASON_CACHE_SIZE, WOULD_PIN_PHRASE, parse_message
from pinwatch.records import Kind
from pinwatch.store.summary import ApplyResult
from pinwatch.tally import Tally
from pinwatch.timebase import hour_bucket
from tests.payloads import (
    PIN_BODIES,
    PIN_TEMPLATE,
    SETTINGS_REASON,
    WOULD_PIN_BODIES,
    WOULD_PIN_TEMPLATE,
    log_events,
    payload,
    proxy_line,
    subscription_event,
    wrap,
)
from tests.support.fakes import RecordingStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EVENTS = Path(__file__).resolve().parents[2] / "events"
T0 = 1_795_600_800_000  # 2026-11-25T10:00:00Z


def b64(raw: bytes) -> dict[str, Any]:
    return {"awslogs": {"data": base64.b64encode(raw).decode()}}


def test_given_a_proxy_payload_when_decoded_then_group_stream_and_events_are_read() -> None:
    events = log_events(3, T0, 1000)
    delivery = decode(subscription_event(events, log_group="/aws/rds/proxy/orders-db", log_stream="s-1"))

    assert (delivery.message_type, delivery.log_group, delivery.log_stream) == (
        "DATA_MESSAGE",
        "/aws/rds/proxy/orders-db",
        "s-1",
    )
    assert delivery.owner == "123456789012"
    assert delivery.events == events
    assert (delivery.proxy, delivery.foreign) == ("orders-db", False)


@pytest.mark.parametrize(
    ("log_group", "expected"),
    [
        ("/aws/rds/proxy/orders-db", ("orders-db", True)),
        ("/aws/rds/proxy/orders-db/", ("orders-db", True)),
        ("/aws/lambda/my-app", ("my-app", False)),
        ("testLogGroup", ("testLogGroup", False)),
        ("/aws/rds/proxy/", ("proxy", False)),
    ],
)
def test_given_a_log_group_when_named_then_proxy_groups_give_the_proxy_and_others_their_last_segment(
    log_group: str, expected: tuple[str, bool]
) -> None:
    assert proxy_name(log_group) == expected


BAD_PROXY_GROUPS = [
    "/aws/rds/proxy/",
    "/aws/rds/proxy//",
    "/aws/rds/proxy/orders/db",  # a path, not a name
    "/aws/rds/proxy/1orders",  # must start with a letter
    "/aws/rds/proxy/orders--db",  # no double hyphen
    "/aws/rds/proxy/orders-",  # no trailing hyphen
    "/aws/rds/proxy/orders_db",  # letters, digits and hyphens only
    "/aws/rds/proxy/orders db",
    "/aws/rds/proxy/ördersdb",
    "/aws/rds/proxy/" + "a" * 64,  # 63 at most
]


@pytest.mark.parametrize("log_group", [*BAD_PROXY_GROUPS, "/", "///"])
def test_given_a_log_group_without_a_usable_proxy_name_when_decoded_then_it_is_an_invalid_payload(
    log_group: str,
) -> None:
    with pytest.raises(InvalidPayload, match="logGroup"):
        decode(subscription_event(log_events(1, T0, 60_000), log_group=log_group))


@pytest.mark.parametrize("name", ["a", "orders-db", "A1-b2-c3", "a" * 63])
def test_given_any_valid_rds_proxy_name_when_its_log_group_is_decoded_then_the_name_is_the_key(name: str) -> None:
    delivery = decode(subscription_event(log_events(1, T0, 60_000), log_group=f"/aws/rds/proxy/{name}"))
    assert (delivery.proxy, delivery.foreign) == (name, False)


def test_given_a_control_message_when_ingested_then_it_is_acknowledged_and_nothing_is_written() -> None:
    store = RecordingStore()
    control = json.loads((EVENTS / "src" / "logs-control.json").read_text())

    result = ingest(wrap(control), store, now_ms=T0)

    assert result.delivery.message_type == CONTROL_MESSAGE
    assert (result.batch_id, result.applied) == (None, None)
    assert store.calls == []


def _valid_doc() -> dict[str, Any]:
    return payload(log_events(2, T0, 1000))


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (["not", "an", "object"], "not an object"),
        ({"Records": []}, "awslogs.data"),
        ({"awslogs": {"data": 42}}, "awslogs.data"),
        ({"awslogs": {"data": "abc"}}, "base64"),
        ({"awslogs": {"data": "H4sIé"}}, "base64"),
        (b64(b"plain text, not gzip"), "gzip"),
        (b64(gzip.compress(b"\xff\xfe\xfa not utf-8")), "UTF-8"),
        (b64(gzip.compress(b"{not json")), "JSON"),
        (wrap([1, 2, 3]), "JSON list"),
        (wrap({**_valid_doc(), "messageType": "SOMETHING_ELSE"}), "messageType"),
        (wrap({k: v for k, v in _valid_doc().items() if k != "logGroup"}), "logGroup"),
        (wrap({**_valid_doc(), "logStream": 7}), "logStream"),
        (wrap({**_valid_doc(), "logEvents": {"id": "1"}}), "logEvents"),
        (wrap({**_valid_doc(), "logEvents": [*log_events(2, T0, 10), {"id": "3", "timestamp": T0}]}), "logEvents[2]"),
        (wrap({**_valid_doc(), "logEvents": ["just a string"]}), "logEvents[0]"),
        (wrap({**_valid_doc(), "logEvents": [{"id": "1", "timestamp": "12:00", "message": "m"}]}), "wrong types"),
        (wrap({**_valid_doc(), "logEvents": [{"id": 1, "timestamp": T0, "message": "m"}]}), "wrong types"),
        (wrap({**_valid_doc(), "logEvents": [{"id": "1", "timestamp": T0, "message": None}]}), "wrong types"),
    ],
)
def test_given_a_broken_payload_when_ingested_then_invalid_payload_names_the_problem_and_nothing_is_written(
    event: Any, problem: str
) -> None:
    store = RecordingStore()

    with pytest.raises(InvalidPayload, match=problem.replace("[", r"\[").replace("]", r"\]")):
        ingest(event, store, now_ms=T0)

    assert store.calls == []


def test_given_malformed_lines_inside_a_good_batch_when_ingested_then_they_are_counted_as_unparsed_and_sampled() -> (
    None
):
    events = [
        *log_events(3, T0, 1000),
        {"id": "x1", "timestamp": T0 + 5, "message": ""},
        {"id": "x2", "timestamp": T0 + 6, "message": '{"some": "json from another service"}'},
        {"id": "x3", "timestamp": T0 + 7, "message": "\x00\x01 binary junk"},
    ]
    store = RecordingStore()

    result = ingest(subscription_event(events), store, now_ms=T0)

    [(_, tally, _)] = store.calls
    assert tally.count(Kind.UNPARSED) == 3
    assert tally.count(Kind.PINNED) + tally.count(Kind.WOULD_PIN) == 3
    assert [u.sample for u in tally.unparsed] == [""]
    assert result.applied is not None


def test_given_a_line_whose_text_time_disagrees_when_folded_then_the_cloudwatch_timestamp_decides_the_hour() -> None:
    line = f"2020-01-01T00:00:00.000Z [WARN] {PIN_PHRASE} [dbConnection=1] for the session. Reason: A parse message was detected."
    _, tally = fold(decode(subscription_event([{"id": "1", "timestamp": T0 + 7_200_000, "message": line}])))

    assert [a.hour for a in tally.reasons] == [hour_bucket(T0 + 7_200_000)]


def test_given_the_same_delivery_twice_when_identified_then_the_batch_id_is_the_same_and_fold_agrees() -> None:
    event = subscription_event(log_events(20, T0, 60_000))

    first, _ = fold(decode(event))
    second, _ = fold(decode(json.loads(json.dumps(event))))

    assert first == second == batch_id(decode(event))
    assert len(first) == 64


def test_given_a_single_account_delivery_when_identified_then_its_batch_id_is_the_one_deployed_tables_hold() -> None:
    # Markers already in single-account tables are keyed by this id: organization mode must not change it.
    events = log_events(5, T0, 60_000)
    delivery = decode(subscription_event(events, log_group="/aws/rds/proxy/orders-db", log_stream="s-1"))
    ids = "\n".join(e["id"] for e in events)

    expected = hashlib.sha256(f"/aws/rds/proxy/orders-db\ns-1\n{ids}".encode()).hexdigest()

    assert delivery.scope is None
    assert fold(delivery)[0] == batch_id(delivery) == expected


@pytest.mark.parametrize("change", ["stream", "ids", "order"])
def test_given_a_different_delivery_when_identified_then_the_batch_id_differs(change: str) -> None:
    events = log_events(5, T0, 60_000)
    base = fold(decode(subscription_event(events)))[0]
    if change == "stream":
        other = subscription_event(events, log_stream="another-stream")
    elif change == "ids":
        other = subscription_event([{**e, "id": e["id"] + "0"} for e in events])
    else:
        other = subscription_event(list(reversed(events)))

    assert fold(decode(other))[0] != base


def test_given_the_sam_sample_event_when_ingested_then_it_is_a_foreign_group_with_no_pins() -> None:
    event = json.loads((FIXTURES / "sam-cloudwatch-logs-event.json").read_text())
    store = RecordingStore()

    result = ingest(event, store, now_ms=T0)

    assert (result.delivery.proxy, result.delivery.foreign) == ("testLogGroup", True)
    assert result.tally is not None
    assert result.tally.reasons == []
    assert result.tally.lines == 2


# ---- the fold's memoised fast path must be indistinguishable from parsing every line


def _reference(events: list[dict[str, Any]], proxy: str) -> Tally:
    tally = Tally()
    for e in events:
        tally.add(proxy, parse_message(e["message"], e["timestamp"]), e["timestamp"], "g")
    return tally


def _aggregates(tally: Tally) -> list[tuple[Any, ...]]:
    return [
        (a.proxy, a.hour, a.kind, a.reason, a.count, a.first_ms, a.last_ms, a.reason_text, tuple(a.digests))
        for a in tally.reasons
    ]


_pieces = st.sampled_from(
    [
        PIN_PHRASE,
        WOULD_PIN_PHRASE,
        "Reason: ",
        "Reason:",
        "A parse message was detected.",
        "SQL changed session settings that the proxy doesn't track.",
        'Digest: "set names $1".',
        "Digest: \"select 'Reason: x' from t\".",
        "The connection ran a SQL query which exceeded the 16384 byte limit.",
        "[WARN] ",
        "[INFO] ",
        "[dbConnection=42] ",
        "2026-11-25T08:00:01.000Z ",
        "LOCK TABLES t WRITE",
        '"',
        " ",
        "x",
    ]
)
_messages = st.lists(_pieces, max_size=8).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_messages, st.integers(min_value=0, max_value=3 * 3_600_000)), max_size=40))
def test_given_any_lines_when_folded_then_the_tally_equals_parsing_every_line(lines: list[tuple[str, int]]) -> None:
    events = [{"id": str(i), "timestamp": T0 + offset, "message": m} for i, (m, offset) in enumerate(lines)]

    _, tally = fold(decode(subscription_event(events)))

    reference = _reference(events, "orders-db")
    assert _aggregates(tally) == _aggregates(reference)
    assert [(u.hour, u.count, u.sample) for u in tally.unparsed] == [
        (u.hour, u.count, u.sample) for u in reference.unparsed
    ]
    assert tally.other_lines == reference.other_lines
    assert tally.lines == len(events)


def test_given_realistic_lines_when_folded_then_the_tally_equals_parsing_every_line() -> None:
    events = log_events(2000, T0, 3 * 3_600_000, bodies=PIN_BODIES + WOULD_PIN_BODIES)

    _, tally = fold(decode(subscription_event(events)))

    assert _aggregates(tally) == _aggregates(_reference(events, "orders-db"))
    assert sum(a.count for a in tally.reasons) == 2000


def test_given_more_distinct_statements_than_any_cache_holds_when_folded_then_the_tally_equals_parsing_every_line() -> (
    None
):
    # Every line its own statement, out of time order and across two hours: the batch that reads each
    # tail without the cross-batch cache and keeps only the latest digests of thousands per key.
    rnd = random.Random(3)
    bodies = [
        ("WARN", PIN_TEMPLATE, f'{SETTINGS_REASON} Digest: "set search_path to tenant_{n:05d}, public"')
        if n % 3
        else ("INFO", WOULD_PIN_TEMPLATE, f'A parse message was detected. Digest: "select {n} from t where id = $1".')  # noqa: S608 (log text, never run)
        for n in range(PIN_REASON_CACHE_SIZE + 500)
    ]
    bodies += bodies[:200]  # and some of them twice
    events: list[dict[str, Any]] = []
    for i, body in enumerate(bodies):
        ts = T0 + rnd.randrange(2 * 3_600_000)
        events.append({"id": str(i), "timestamp": ts, "message": proxy_line(rnd, ts, body)})

    _, tally = fold(decode(subscription_event(events)))

    assert _aggregates(tally) == _aggregates(_reference(events, "orders-db"))
    assert sum(a.count for a in tally.reasons) == len(events)
    assert [(p.lines, p.first_ms, p.last_ms) for p in tally.proxies] == [
        (len(events), min(e["timestamp"] for e in events), max(e["timestamp"] for e in events))
    ]


def test_given_what_a_store_newly_applied_when_counted_then_the_result_gives_pins_per_proxy_and_reason_and_totals() -> (
    None
):
    delivery = decode(subscription_event(log_events(3, T0, 1000)))
    applied = ApplyResult(
        "b-1",
        chunks=2,
        applied_chunks=1,
        duplicate_chunks=1,
        transactions=1,
        writes=4,
        applied_counts={
            ("orders-db", Kind.WOULD_PIN, "prepared_statement"): 2,
            ("orders-db", Kind.PINNED, "set_variable"): 5,
            ("orders-db", Kind.PINNED, "large_statement"): 1,
        },
        applied_unparsed={"orders-db": 3},
    )
    result = IngestResult(delivery, "b-1", applied=applied)

    assert list(result.pins_by_reason) == [  # in key order: one metric document each, always in the same order
        ("orders-db", Kind.PINNED, "large_statement"),
        ("orders-db", Kind.PINNED, "set_variable"),
        ("orders-db", Kind.WOULD_PIN, "prepared_statement"),
    ]
    assert (result.new_events(Kind.PINNED), result.new_events(Kind.WOULD_PIN)) == (6, 2)
    assert result.new_unparsed == 3
    assert result.redelivered


def test_given_nothing_applied_when_counted_then_the_result_counts_nothing() -> None:
    result = IngestResult(decode(subscription_event(log_events(3, T0, 1000))), "b-2")

    assert result.pins_by_reason == {}
    assert (result.new_events(Kind.PINNED), result.new_unparsed, result.redelivered) == (0, 0, False)
