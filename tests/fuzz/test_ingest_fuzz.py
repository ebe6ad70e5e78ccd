"""Fuzzing the ingest entry point: whatever the invocation event holds, only ``InvalidPayload`` escapes.

And whatever a line says, it is counted as a pin only if it holds the pin phrase: the fold never
invents a pin, never loses a line, and never writes anything for a payload it rejects.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pinwatch.ingest import CONTROL_MESSAGE, DATA_MESSAGE, InvalidPayload, ingest
from pinwatch.parse import PIN_PHRASE, WOULD_PIN_PHRASE
from pinwatch.records import Kind
from tests.payloads import log_events, payload, wrap
from tests.support.fakes import RecordingStore
from tests.support.ground_truth import T0

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_TIMESTAMP_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant a UTC hour bucket can name

VALID_DOCUMENT = payload(log_events(6, T0, 60_000))
VALID_GZIP = base64.b64decode(wrap(VALID_DOCUMENT)["awslogs"]["data"])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


def event_of(data: bytes) -> dict[str, Any]:
    return {"awslogs": {"data": base64.b64encode(data).decode("ascii")}}


def outcome(event: Any) -> tuple[str, RecordingStore]:
    """Ingest `event` into a recording store: ("ok" | "invalid", store). Any other exception fails the test."""
    store = RecordingStore()
    rejection: InvalidPayload | None = None
    try:
        ingest(event, store, now_ms=T0)
    except InvalidPayload as exc:
        rejection = exc
    if rejection is None:
        return "ok", store
    assert str(rejection)  # says what was wrong
    assert store.calls == []  # rejected before anything was written
    return "invalid", store


def assert_counted_faithfully(events: list[dict[str, Any]], store: RecordingStore) -> None:
    """Pins are exactly the lines with the pin phrase; would-pins those with only the would-pin phrase."""
    pins = sum(PIN_PHRASE in e["message"] for e in events)
    would = sum(PIN_PHRASE not in e["message"] and WOULD_PIN_PHRASE in e["message"] for e in events)
    if not events:
        assert store.calls == []
        return
    [(_, tally, _)] = store.calls
    assert tally.count(Kind.PINNED) == pins
    assert tally.count(Kind.WOULD_PIN) == would
    assert tally.lines == len(events)
    assert sum(tally.count(k) for k in Kind) == len(events)


# ---- the envelope: base64, gzip, JSON


@EXAMPLES
@given(st.binary(max_size=2048))
@example(b"")
@example(b"\x1f\x8b")
def test_given_random_bytes_as_the_payload_when_ingested_then_it_is_rejected_as_invalid(raw: bytes) -> None:
    assert outcome(event_of(raw))[0] == "invalid"


@EXAMPLES
@given(st.text(max_size=400))
@example("H4sI")
@example("====")
def test_given_random_text_as_awslogs_data_when_ingested_then_only_invalid_payload_escapes(data: str) -> None:
    assert outcome({"awslogs": {"data": data}})[0] == "invalid"


@EXAMPLES
@given(json_values)
def test_given_any_json_value_as_the_event_when_ingested_then_only_invalid_payload_escapes(event: Any) -> None:
    result, _ = outcome(event)
    assert result == "invalid"


@EXAMPLES
@given(st.integers(min_value=0, max_value=len(VALID_GZIP) - 1))
def test_given_a_valid_payload_cut_short_anywhere_when_ingested_then_it_is_rejected(cut: int) -> None:
    assert outcome(event_of(VALID_GZIP[:cut]))[0] == "invalid"


@EXAMPLES
@given(st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)), min_size=1, max_size=4))
def test_given_a_valid_payload_with_corrupted_bytes_when_ingested_then_it_is_rejected_or_counted_faithfully(
    flips: list[tuple[int, int]],
) -> None:
    data = bytearray(VALID_GZIP)
    for position, mask in flips:
        data[position % len(data)] ^= mask

    result, store = outcome(event_of(bytes(data)))

    # gzip's CRC catches damage to the content; damage to header fields (mtime, OS) is harmless.
    if result == "ok":
        assert_counted_faithfully(VALID_DOCUMENT["logEvents"], store)


@EXAMPLES
@given(st.binary(max_size=1024))
def test_given_gzip_of_random_bytes_when_ingested_then_it_is_rejected(raw: bytes) -> None:
    assert outcome(event_of(gzip.compress(raw)))[0] == "invalid"


def test_given_json_nested_deeper_than_the_parser_allows_when_ingested_then_it_is_rejected() -> None:
    assert outcome(event_of(gzip.compress(b"[" * 200_000 + b"]" * 200_000)))[0] == "invalid"


# ---- the document: wrong JSON types in every field

TOP_LEVEL = ("messageType", "owner", "logGroup", "logStream", "subscriptionFilters", "logEvents")
PER_EVENT = ("id", "timestamp", "message")


def acceptable(field: str, value: Any) -> bool:
    """Whether the documented contract accepts `value` in `field` (the oracle for the next test)."""
    if field == "messageType":
        return value in (DATA_MESSAGE, CONTROL_MESSAGE)
    if field == "logGroup":
        return isinstance(value, str) and bool(value)
    if field in ("logStream", "id", "message"):
        return isinstance(value, str)
    if field == "logEvents":
        return value == []
    if field == "timestamp":
        return type(value) is int and 0 <= value <= MAX_TIMESTAMP_MS
    return True  # owner, subscriptionFilters and unknown keys are not read


@EXAMPLES
@given(st.sampled_from(TOP_LEVEL + PER_EVENT), json_values, st.booleans())
@example("timestamp", 10**20, False)
@example("timestamp", -(10**15), False)
@example("timestamp", True, False)
@example("id", "\udc80", False)
@example("message", "\ud800 lone surrogate", False)
def test_given_a_wrong_value_in_any_field_when_ingested_then_it_is_rejected_unless_the_contract_allows_it(
    field: str, value: Any, drop: bool
) -> None:
    document = json.loads(json.dumps(VALID_DOCUMENT))
    target = document["logEvents"][2] if field in PER_EVENT else document
    if drop:
        del target[field]
    else:
        target[field] = value

    result, store = outcome(wrap(document))

    allowed = field in ("owner", "subscriptionFilters") if drop else acceptable(field, value)
    assert result == ("ok" if allowed else "invalid"), f"{field}={value!r} dropped={drop}"
    if result == "ok" and document.get("messageType") == DATA_MESSAGE:
        assert_counted_faithfully(document["logEvents"], store)


# ---- the lines: unicode, huge, and lines built from the parser's own markers

pieces = st.sampled_from(
    [
        PIN_PHRASE,
        WOULD_PIN_PHRASE,
        "Reason: ",
        'Digest: "',
        '".',
        "[WARN] ",
        "[INFO] ",
        "[dbConnection=",
        "]",
        "2026-11-25T10:00:00.000Z ",
        "\n",
        "\x00",
        "\u2028",
        "\U0001f4a5",
    ]
)
messages = st.one_of(
    st.text(max_size=300),
    st.lists(pieces | st.text(max_size=20), max_size=12).map("".join),
    st.builds(
        lambda head, n: head + "x" * n,
        st.sampled_from([PIN_PHRASE + " Reason: ", "", "Reason: "]),
        st.integers(0, 300_000),
    ),
)


@EXAMPLES
@given(st.lists(st.tuples(messages, st.integers(min_value=0, max_value=72 * 3_600_000)), max_size=25))
def test_given_any_lines_in_a_good_payload_when_ingested_then_no_pin_is_invented_and_no_line_is_lost(
    lines: list[tuple[str, int]],
) -> None:
    events = [{"id": str(i), "timestamp": T0 + offset, "message": m} for i, (m, offset) in enumerate(lines)]

    result, store = outcome(wrap(payload(events)))

    assert result == "ok"
    assert_counted_faithfully(events, store)
    if store.calls:
        [(_, tally, _)] = store.calls
        assert all(len(a.digests[-1]) <= 512 for a in tally.reasons if a.digests)  # a huge digest is cut
        assert all(len(u.sample) <= 512 for u in tally.unparsed)


def test_given_the_largest_cloudwatch_event_when_ingested_then_it_is_one_pin_with_its_digest_cut() -> None:
    digest = "select " + "x, " * 87_000  # a 256 KB event, CloudWatch Logs' limit
    message = f'2026-11-25T10:00:00Z [WARN] {PIN_PHRASE} [dbConnection=1]. Reason: A parse message. Digest: "{digest}".'
    _, store = outcome(wrap(payload([{"id": "1", "timestamp": T0, "message": message}])))

    [(_, tally, _)] = store.calls
    [aggregate] = tally.reasons
    assert (aggregate.kind, aggregate.count) == (Kind.PINNED, 1)
    assert aggregate.digest is not None
    assert len(aggregate.digest) == 512


def test_given_zlib_data_without_a_gzip_header_when_ingested_then_it_is_accepted_like_cloudwatchs_gzip() -> None:
    # zlib's auto-detection (MAX_WBITS | 32) reads both; a zlib stream is still a readable payload.
    raw = zlib.compress(json.dumps(VALID_DOCUMENT).encode())

    result, store = outcome(event_of(raw))

    assert result == "ok"
    assert_counted_faithfully(VALID_DOCUMENT["logEvents"], store)
