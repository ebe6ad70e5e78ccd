"""classify: strict keyword rules over the reason text, refined by the digest."""

from __future__ import annotations

import pytest

from pinwatch.catalog import CATALOG
from pinwatch.classify import DIGEST_RULES, REASON_RULES, classify

SETTINGS = (
    "SQL changed session settings that the proxy doesn't track. Consider moving session configuration to the "
    "proxy's initialization query."
)


@pytest.mark.parametrize(
    ("reason_text", "code"),
    [
        ("A parse message was detected.", "prepared_statement"),
        # Seen in 2026 on a PostgreSQL proxy with pgjdbc (text after the prefix truncated in the public source).
        ("Running a prepared statement...", "prepared_statement"),
        ("The connection ran a SQL query which exceeded the 16384 byte limit.", "large_statement"),
        (SETTINGS, "session_settings"),
        ("The session uses Multiple Active Result Sets (MARS).", "multiple_active_result_sets"),
        ("The session started a distributed transaction (DTC).", "distributed_transaction"),
        ("The session has an open transaction the proxy can't move.", "transaction"),
        ("The session created a temporary table.", "temporary_table"),
        ("The session declared a cursor.", "cursor"),
        ("The session ran LISTEN.", "listen"),
        ("The session set a user variable.", "user_variable"),
        ("The session acquired a lock.", "lock"),
        ("The statement contains an executable comment.", "executable_comment"),
        ("The session called a sequence function.", "sequence_function"),
    ],
)
def test_given_a_reason_wording_when_classified_then_its_catalog_code_is_returned(reason_text: str, code: str) -> None:
    assert classify(reason_text, None) == code


@pytest.mark.parametrize(
    ("digest", "code"),
    [
        ("SET @x := ?", "user_variable"),
        ("SET @row_number = ?, @prev = ?", "user_variable"),
        ("select id into @last_id from t", "user_variable"),
        ("reset all", "session_reset"),
        ("DISCARD ALL", "session_reset"),
        # AWS: "Discarding the session state" — every form of DISCARD, not only ALL.
        ("DISCARD TEMP", "session_reset"),
        ("discard temporary", "session_reset"),
        ("DISCARD PLANS", "session_reset"),
        ("DISCARD SEQUENCES", "session_reset"),
        # AWS lists resetting one parameter with setting it: a RESET of one name is a session setting.
        ("RESET statement_timeout", "session_settings"),
        ("reset search_path", "session_settings"),
        ("LISTEN order_events", "listen"),
        ("select nextval($1)", "sequence_function"),
        ("SELECT setval('s', $1)", "sequence_function"),
        ("select pg_advisory_lock($1)", "lock"),
        ("select pg_try_advisory_lock($1, $2)", "lock"),
        ("LOCK TABLES `inventory` WRITE", "lock"),
        ("SELECT GET_LOCK(?, ?)", "lock"),
        ("FLUSH TABLES WITH READ LOCK", "lock"),
        ("LOAD $1", "library_load"),
        ("DECLARE c1 CURSOR WITH HOLD FOR select * from t", "cursor"),
        ("CREATE TEMP TABLE scratch (id int)", "temporary_table"),
        ("create temporary table t as select ?", "temporary_table"),
        ("/*!40101 SET NAMES utf8mb4 */", "executable_comment"),
        ("/*M!100101 SET sql_mode = ? */", "executable_comment"),
        ("PREPARE s1 FROM ?", "prepared_statement"),
        ("set search_path = $1; set names $2;", "session_settings"),
        ("set client_encoding to $1", "session_settings"),
        ("SET sql_mode = ?, names ?", "session_settings"),
        ("SET @@session.sql_mode = ?", "session_settings"),  # a system variable, not a user variable
        ("select pg_advisory_xact_lock($1)", "session_settings"),  # transaction-scoped: not a session lock
    ],
)
def test_given_the_session_settings_reason_when_the_digest_is_specific_then_it_refines_the_code(
    digest: str, code: str
) -> None:
    assert classify(SETTINGS, digest) == code


@pytest.mark.parametrize(
    "reason_text",
    ["", "Something entirely new happened.", "The session did a thing", "Reason unknown: 42"],
)
def test_given_unrecognised_reason_text_when_classified_then_it_is_unknown_even_with_a_telling_digest(
    reason_text: str,
) -> None:
    # Strict: the digest refines a recognised reason, it never invents one.
    assert classify(reason_text, "LISTEN x") == "unknown"


def test_given_a_large_statement_reason_when_the_digest_has_a_set_then_the_reason_text_wins() -> None:
    assert classify("The connection ran a SQL query which exceeded the 16384 byte limit.", "SET @x := ?") == (
        "large_statement"
    )


def test_given_a_hostile_256_kb_reason_when_classified_then_the_result_is_computed_on_a_bounded_key() -> None:
    huge = "The session acquired a lock. " + "x" * 256 * 1024

    assert classify(huge, None) == "lock"
    assert classify(huge, "y" * 256 * 1024) == "lock"


def test_given_the_rule_tables_when_read_then_every_code_they_produce_is_in_the_catalog() -> None:
    produced = {code for code, *_ in REASON_RULES} | {code for code, *_ in DIGEST_RULES}

    pinning = {code for code, item in CATALOG.items() if item.pins}

    assert produced <= pinning, "the classifier never files a pin under a note that does not pin"
    assert produced | {"unknown"} == pinning
