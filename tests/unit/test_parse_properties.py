"""Property tests: the parser never crashes, never invents pins, and round-trips what it splits."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pinwatch.catalog import CATALOG
from pinwatch.parse import PIN_PHRASE, WOULD_PIN_PHRASE, parse_message
from pinwatch.records import Kind

PIN_TAIL = "for the remainder of the session. The proxy can't reuse this connection until the session ends. Reason: "

# Reason texts as the proxy writes them: printable, one line, no digest marker of their own.
reason_texts = (
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=200)
    .map(str.strip)
    .filter(lambda t: bool(t) and 'Digest: "' not in t)
)
# Digests: normalised SQL with quotes, semicolons, backticks and placeholders.
digests = st.text(
    st.sampled_from(list("abcdefghijklmnopqrstuvwxyz_ =,;()'\"`$?@.*0123456789")), min_size=1, max_size=200
).filter(lambda d: d == d.rstrip() and not d.endswith(('"', ".")) and 'Digest: "' not in d)
ids = st.text(st.sampled_from(list("0123456789abcdef-*/")), min_size=1, max_size=20)


@settings(max_examples=300)
@given(st.text(max_size=2000), st.one_of(st.none(), st.integers(min_value=0, max_value=2**53)))
@example("", None)
@example("\x00" * 10, 0)
@example(PIN_PHRASE, None)
@example(f"Reason: {PIN_PHRASE}", None)
def test_given_any_string_when_parsed_then_it_never_raises_and_keeps_the_raw_text(
    message: str, timestamp_ms: int | None
) -> None:
    record = parse_message(message, timestamp_ms)

    assert record.raw == message
    if timestamp_ms is not None:
        assert record.timestamp_ms == timestamp_ms
    if record.kind in (Kind.PINNED, Kind.WOULD_PIN):
        assert record.reason in CATALOG
    else:
        assert record.reason is None


@settings(max_examples=300)
@given(st.text(max_size=2000))
def test_given_text_without_the_pin_phrase_when_parsed_then_it_is_never_pinned(message: str) -> None:
    message = message.replace(PIN_PHRASE, "")

    assert parse_message(message).kind is not Kind.PINNED


@settings(max_examples=300)
@given(reason_texts, st.one_of(st.none(), digests), ids, ids)
def test_given_a_generated_pin_line_when_parsed_then_reason_digest_and_ids_round_trip(
    reason: str, digest: str | None, client: str, db: str
) -> None:
    tail = reason if digest is None else f'{reason} Digest: "{digest}".'
    line = (
        f"2024-01-02T03:04:05.678Z [WARN] [proxyEndpoint=default] [clientConnection={client}] {PIN_PHRASE} "
        f"[dbConnection={db}] {PIN_TAIL}{tail}"
    )

    record = parse_message(line)

    assert record.kind is Kind.PINNED
    assert record.reason_text == reason
    assert record.digest == digest
    assert record.client_connection == client
    assert record.db_connection == db
    assert record.reason in CATALOG


@settings(max_examples=100)
@given(reason_texts, digests)
def test_given_a_generated_would_pin_line_when_parsed_then_it_is_a_would_pin_with_its_digest(
    reason: str, digest: str
) -> None:
    line = (
        f"2024-01-02T03:04:05Z [INFO] If this prepared statement runs, {WOULD_PIN_PHRASE} [dbConnection=9]. "
        f'Reason: {reason} Digest: "{digest}".'
    )

    record = parse_message(line)

    assert record.kind is Kind.WOULD_PIN
    assert record.reason_text == reason
    assert record.digest == digest
