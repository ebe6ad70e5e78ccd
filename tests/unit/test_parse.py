"""parse_message: every verbatim example and variant from the RDS Proxy reference, plus bad input."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields
from datetime import UTC, datetime

import pytest

from pinwatch.parse import PIN_PHRASE, WOULD_PIN_PHRASE, parse_message
from pinwatch.records import Kind, LogRecord

PIN_TAIL = "for the remainder of the session. The proxy can't reuse this connection until the session ends. Reason: "
SETTINGS_REASON = (
    "SQL changed session settings that the proxy doesn't track. Consider moving session configuration to the "
    "proxy's initialization query."
)

# Verbatim from the reference (§1).
PARSE_MESSAGE_LINE = (
    "2020-08-04T11:47:24.251Z [WARN] [clientConnection=3888679423] The client session was pinned to the database "
    "connection [dbConnection=529039385] for the remainder of the session. The proxy can't reuse this connection "
    "until the session ends. Reason: A parse message was detected."
)
LARGE_STATEMENT_LINE = (
    "2023-09-06T08:28:13.685Z [WARN] [proxyEndpoint=default] [clientConnection=51706963] The client session was "
    "pinned to the database connection [dbConnection=973587044] for the remainder of the session. The proxy can't "
    "reuse this connection until the session ends. Reason: The connection ran a SQL query which exceeded the 16384 "
    "byte limit."
)


def pin_line(reason: str, prefix: str = "2023-09-06T08:28:13.685Z [WARN] [proxyEndpoint=default] ") -> str:
    return (
        f"{prefix}[clientConnection=51706963] The client session was pinned to the database connection "
        f"[dbConnection=973587044] {PIN_TAIL}{reason}"
    )


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_given_the_parse_message_example_when_parsed_then_every_field_is_extracted() -> None:
    record = parse_message(PARSE_MESSAGE_LINE)

    assert record.kind is Kind.PINNED
    assert record.level == "WARN"
    assert record.endpoint is None  # older logs lack the endpoint tag
    assert record.client_connection == "3888679423"
    assert record.db_connection == "529039385"
    assert record.reason_text == "A parse message was detected."
    assert record.digest is None
    assert record.reason == "prepared_statement"
    assert record.timestamp_ms == ms("2020-08-04T11:47:24.251")
    assert record.raw == PARSE_MESSAGE_LINE


def test_given_the_16384_byte_example_when_parsed_then_it_is_a_large_statement_pin_on_the_default_endpoint() -> None:
    record = parse_message(LARGE_STATEMENT_LINE)

    assert record.kind is Kind.PINNED
    assert record.endpoint == "default"
    assert record.client_connection == "51706963"
    assert record.db_connection == "973587044"
    assert record.reason == "large_statement"
    assert record.reason_text == "The connection ran a SQL query which exceeded the 16384 byte limit."


@pytest.mark.parametrize(
    ("digest", "reason"),
    [
        ("set search_path = $1; set names $2;", "session_settings"),  # Prisma
        ("set client_encoding to $1", "session_settings"),  # Ruby pg
        ("set names $1", "session_settings"),  # Doctrine
    ],
)
def test_given_a_session_settings_example_when_parsed_then_the_digest_is_split_from_the_reason(
    digest: str, reason: str
) -> None:
    record = parse_message(pin_line(f'{SETTINGS_REASON} Digest: "{digest}".'))

    assert record.kind is Kind.PINNED
    assert record.reason_text == SETTINGS_REASON
    assert record.digest == digest
    assert record.reason == reason


def test_given_a_would_pin_info_line_when_parsed_then_it_is_a_would_pin_not_a_pin() -> None:
    line = (
        "2023-09-06T08:28:13.685Z [INFO] [proxyEndpoint=default] If this prepared statement runs, the client session "
        "will be pinned to the database connection [dbConnection=973587044]. Reason: A parse message was detected. "
        'Digest: "select * from orders where id = $1".'
    )

    record = parse_message(line)

    assert record.kind is Kind.WOULD_PIN
    assert record.level == "INFO"
    assert record.db_connection == "973587044"
    assert record.client_connection is None
    assert record.reason == "prepared_statement"
    assert record.reason_text == "A parse message was detected."
    assert record.digest == "select * from orders where id = $1"


@pytest.mark.parametrize(
    ("message", "reason_text"),
    [
        ("A new client connected from 10.0.10.240:56779.", None),
        (
            "A TCP connection was established from the proxy at 10.0.11.38:15569 to the database at 10.0.10.246:5432.",
            None,
        ),
        (
            "The client connection closed. Reason: The TCP channel was closed by either the client or the proxy.",
            "The TCP channel was closed by either the client or the proxy.",
        ),
        (
            "The database connection closed. Reason: The client connection that borrowed this database connection "
            "from the connection pool was closed in the middle of a request.",
            "The client connection that borrowed this database connection from the connection pool was closed in "
            "the middle of a request.",
        ),
        ("The database connection was released to the connection pool upon session reset.", None),
    ],
)
@pytest.mark.parametrize("prefix", ["2023-09-06T08:28:13.685Z [INFO] [proxyEndpoint=default] ", ""])
def test_given_a_non_pin_proxy_line_when_parsed_then_it_is_other_with_its_reason_kept(
    message: str, reason_text: str | None, prefix: str
) -> None:
    record = parse_message(prefix + message)

    assert record.kind is Kind.OTHER
    assert record.reason is None
    assert record.reason_text == reason_text


def test_given_a_line_tagged_only_with_db_connection_when_parsed_then_only_that_id_is_set() -> None:
    record = parse_message(
        "2023-09-06T08:28:13.685Z [INFO] [dbConnection=2753100011] The database connection was released to the "
        "connection pool upon session reset."
    )

    assert record.kind is Kind.OTHER
    assert record.db_connection == "2753100011"
    assert record.client_connection is None
    assert record.endpoint is None
    assert record.level == "INFO"


def test_given_non_numeric_ids_when_parsed_then_they_are_kept_as_text() -> None:
    line = (
        "2023-09-06T08:28:13.685Z [WARN] [proxyEndpoint=orders-ro] [clientConnection=c-7f3a/REDACTED] The client "
        f"session was pinned to the database connection [dbConnection=***] {PIN_TAIL}A parse message was detected."
    )

    record = parse_message(line)

    assert record.client_connection == "c-7f3a/REDACTED"
    assert record.db_connection == "***"
    assert record.endpoint == "orders-ro"


def test_given_reordered_tags_when_parsed_then_each_tag_is_found_by_name() -> None:
    line = (
        "2023-09-06T08:28:13.685Z [clientConnection=11] [WARN] [proxyEndpoint=writer] The client session was pinned "
        f"to the database connection [dbConnection=22] {PIN_TAIL}A parse message was detected."
    )

    record = parse_message(line)

    assert (record.level, record.endpoint, record.client_connection, record.db_connection) == (
        "WARN",
        "writer",
        "11",
        "22",
    )


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2023-09-06T08:28:13.685Z", "2023-09-06T08:28:13.685"),
        ("2023-09-06T08:28:13Z", "2023-09-06T08:28:13"),  # no millis
        ("2023-09-06T08:28:13.685", "2023-09-06T08:28:13.685"),  # no Z: UTC
        ("2023-09-06T08:28:13", "2023-09-06T08:28:13"),
        ("2023-09-06T10:28:13.685+02:00", "2023-09-06T08:28:13.685"),
        ("2023-09-06 08:28:13.685Z", "2023-09-06T08:28:13.685"),
    ],
)
def test_given_timestamp_variants_when_no_event_timestamp_then_the_text_is_read_as_utc(
    stamp: str, expected: str
) -> None:
    record = parse_message(pin_line("A parse message was detected.", prefix=f"{stamp} [WARN] "))

    assert record.timestamp_ms == ms(expected)


def test_given_an_event_timestamp_when_parsed_then_it_wins_over_the_text() -> None:
    record = parse_message(LARGE_STATEMENT_LINE, timestamp_ms=1_700_000_000_123)

    assert record.timestamp_ms == 1_700_000_000_123


@pytest.mark.parametrize("prefix", ["", "[WARN] ", "not-a-date [WARN] "])
def test_given_no_readable_timestamp_when_parsed_then_the_timestamp_is_none(prefix: str) -> None:
    record = parse_message(pin_line("A parse message was detected.", prefix=prefix))

    assert record.kind is Kind.PINNED
    assert record.timestamp_ms is None


def test_given_a_line_without_any_prefix_when_parsed_then_it_is_still_a_pin() -> None:
    line = f"The client session was pinned to the database connection [dbConnection=1] {PIN_TAIL}A parse message was detected."

    record = parse_message(line)

    assert record.kind is Kind.PINNED
    assert record.level is None
    assert record.db_connection == "1"


def test_given_aws_logs_tail_output_when_parsed_then_the_pin_and_its_time_are_read() -> None:
    line = "2023-09-06T08:28:13.685000+00:00 7f9b0c1e2d3a " + LARGE_STATEMENT_LINE

    record = parse_message(line)

    assert record.kind is Kind.PINNED
    assert record.reason == "large_statement"
    assert record.timestamp_ms == ms("2023-09-06T08:28:13.685")


def test_given_arbitrary_text_after_reason_when_parsed_then_it_is_kept_verbatim_under_unknown() -> None:
    text = "Something new: the proxy saw 3 <odd> things | ; ` $1 ? \u00e9\u4e2d."

    record = parse_message(pin_line(text))

    assert record.reason == "unknown"
    assert record.reason_text == text.strip()


def test_given_the_2026_running_a_prepared_statement_wording_when_parsed_then_it_is_a_prepared_statement_pin_kept_verbatim() -> (
    None
):
    # Seen in 2026 on an Aurora PostgreSQL proxy with pgjdbc; the public source truncates the rest of the text.
    text = "Running a prepared statement..."

    record = parse_message(pin_line(text))

    assert record.kind is Kind.PINNED
    assert record.reason == "prepared_statement"
    assert record.reason_text == text


def test_given_a_pin_line_without_reason_when_parsed_then_it_is_an_unknown_pin() -> None:
    line = "2023-09-06T08:28:13.685Z [WARN] The client session was pinned to the database connection [dbConnection=5]."

    record = parse_message(line)

    assert record.kind is Kind.PINNED
    assert record.reason == "unknown"
    assert record.reason_text is None


@pytest.mark.parametrize(
    ("tail", "digest"),
    [
        ('Digest: "select \'a\' || "b" from t where x = ?".', "select 'a' || \"b\" from t where x = ?"),
        ('Digest: "SET `sql_mode` = ?; SET @x := ?".', "SET `sql_mode` = ?; SET @x := ?"),
        ('Digest: "set search_path = $1"', "set search_path = $1"),  # no final period
        ('Digest: "set search_path = $1".  ', "set search_path = $1"),  # trailing spaces
        ('Digest: "Digest: "nested".', "nested"),  # the last marker is the digest
        ('Digest: "cut off by the 256 KB event limit', "cut off by the 256 KB event limit"),
    ],
)
def test_given_awkward_digests_when_parsed_then_the_last_digest_marker_and_final_quote_are_used(
    tail: str, digest: str
) -> None:
    record = parse_message(pin_line(f"{SETTINGS_REASON} {tail}"))

    assert record.digest == digest


def test_given_the_pin_phrase_in_other_case_when_parsed_then_it_is_not_a_pin() -> None:
    # The subscription filter is case-sensitive; the parser agrees with it.
    record = parse_message(pin_line("A parse message was detected.").replace(PIN_PHRASE, PIN_PHRASE.upper()))

    assert record.kind is not Kind.PINNED


@pytest.mark.parametrize(
    "message",
    [
        "",
        "   ",
        "\x00\x01\x02\xff\ufffd\ufffd binary junk",
        '{"level":"INFO","message":"GET /health 200","service":"api"}',
        "hello world",
        "Reason: dangling",
        "x" * 256 * 1024,
    ],
)
def test_given_bad_input_when_parsed_then_it_is_unparsed_and_never_a_pin(message: str) -> None:
    record = parse_message(message, timestamp_ms=5)

    assert record.kind is Kind.UNPARSED
    assert record.reason is None
    assert record.timestamp_ms == 5


def test_given_a_256_kb_pin_line_when_parsed_then_the_whole_digest_is_kept() -> None:
    digest = "select * from t where id in (" + ", ".join(["?"] * 60_000) + ")"  # noqa: S608 - test data

    record = parse_message(pin_line(f'{SETTINGS_REASON} Digest: "{digest}".'))

    assert record.kind is Kind.PINNED
    assert record.digest == digest


def test_given_the_filter_phrases_when_matched_against_verbatim_lines_then_each_matches_its_own_kind() -> None:
    would_pin = "If this prepared statement runs, the client session will be pinned to the database connection [x=1]."
    assert PIN_PHRASE in PARSE_MESSAGE_LINE
    assert PIN_PHRASE in LARGE_STATEMENT_LINE
    assert WOULD_PIN_PHRASE not in PARSE_MESSAGE_LINE
    assert WOULD_PIN_PHRASE in would_pin
    assert PIN_PHRASE not in would_pin
    assert '"' not in PIN_PHRASE
    assert '"' not in WOULD_PIN_PHRASE


def test_given_a_parsed_record_when_compared_with_the_dataclass_constructor_then_it_is_equal_and_frozen() -> None:
    # parse builds records without the dataclass __init__ (hot path); they must be indistinguishable.
    record = parse_message(LARGE_STATEMENT_LINE, timestamp_ms=7)
    rebuilt = LogRecord(**{f.name: getattr(record, f.name) for f in fields(LogRecord)})

    assert record == rebuilt
    assert hash(record) == hash(rebuilt)
    with pytest.raises(FrozenInstanceError):
        record.reason = "lock"  # type: ignore[misc]
