"""The reason catalog is complete, consistent and engine-correct."""

from __future__ import annotations

import re

import pytest

from pinwatch.catalog import (
    CATALOG,
    DRIVERS,
    EXCLUDE_VARIABLE_SETS,
    EXTENDED_QUERY_BLOG,
    EXTENDED_QUERY_NEWS,
    PINNING_DOC,
    ReasonEntry,
    driver_name,
    entry,
)
from pinwatch.records import EngineFamily

EXPECTED_CODES = {
    "session_settings",
    "prepared_statement",
    "large_statement",
    "temporary_table",
    "lock",
    "user_variable",
    "cursor",
    "listen",
    "sequence_function",
    "library_load",
    "session_reset",
    "executable_comment",
    "multiple_active_result_sets",
    "distributed_transaction",
    "transaction",
    "stored_routine",
    "tracked_state",
    "unknown",
}
NOTES = {"stored_routine", "tracked_state"}  # statements that don't pin, yet matter


def test_given_the_catalog_when_listed_then_it_has_exactly_the_agreed_codes() -> None:
    assert set(CATALOG) == EXPECTED_CODES


@pytest.mark.parametrize("item", list(CATALOG.values()), ids=list(CATALOG))
def test_given_a_catalog_entry_when_inspected_then_it_is_complete(item: ReasonEntry) -> None:
    assert item.code in CATALOG
    assert CATALOG[item.code] is item
    assert item.title.strip()
    assert item.engines
    assert item.engines <= set(EngineFamily)
    assert len(item.why) > 20
    assert len(item.hints) >= 1
    assert all(a.text.strip() for a in item.all_hints())
    assert item.doc_url.startswith("https://")
    assert set(item.engine_hints) <= item.engines, "engine hints only for engines the reason applies to"
    assert set(item.driver_hints) <= set(DRIVERS), "driver hints only for known drivers"
    assert set(item.driver_hint_engines) <= set(item.driver_hints)


@pytest.mark.parametrize("item", list(CATALOG.values()), ids=list(CATALOG))
def test_given_any_entry_when_not_mysql_then_exclude_variable_sets_is_never_offered(item: ReasonEntry) -> None:
    non_mysql = [a for family, hints in item.engine_hints.items() if family is not EngineFamily.MYSQL for a in hints]
    everywhere = list(item.hints) + [a for hints in item.driver_hints.values() for a in hints]

    assert not any(EXCLUDE_VARIABLE_SETS in a.text for a in non_mysql + everywhere)


def test_given_session_settings_when_read_then_the_mysql_hints_offer_exclude_variable_sets() -> None:
    assert any(EXCLUDE_VARIABLE_SETS in a.text for a in CATALOG["session_settings"].engine_hints[EngineFamily.MYSQL])


@pytest.mark.parametrize("item", list(CATALOG.values()), ids=list(CATALOG))
def test_given_any_hint_when_inspected_then_it_carries_its_sources_as_https_urls(item: ReasonEntry) -> None:
    for advice in item.all_hints():
        assert advice.sources, advice.text
        assert advice.source == advice.sources[0]
        assert all(url.startswith("https://") and " " not in url for url in advice.sources), advice.text
        assert len(set(advice.sources)) == len(advice.sources), advice.text


@pytest.mark.parametrize(
    ("code", "driver", "setting"),
    [
        ("prepared_statement", "mysql-connector-j", "useServerPrepStmts=false"),
        ("prepared_statement", "pdo", "ATTR_EMULATE_PREPARES"),
        ("prepared_statement", "rails", "statement_limit"),
        ("prepared_statement", "mysql2", "query()"),
        ("prepared_statement", "psycopg", "prepare_threshold=None"),
        ("session_reset", "npgsql", "No Reset On Close=true"),
        ("session_reset", "asyncpg", "reset="),
        ("session_settings", "prisma", "ALTER ROLE"),
        ("cursor", "django", "DISABLE_SERVER_SIDE_CURSORS"),
    ],
)
def test_given_a_known_driver_lever_when_looked_up_then_the_catalog_names_the_concrete_setting(
    code: str, driver: str, setting: str
) -> None:
    assert any(setting in a.text for a in CATALOG[code].driver_hints[driver])


# Settings that turn a PostgreSQL driver's statement cache off: the fix for proxies before November 2023.
_PG_CACHE_OFF = [
    ("pgjdbc", "prepareThreshold=0", "prepareThreshold"),
    ("asyncpg", "statement_cache_size=0", "statement_cache_size"),
    ("sqlalchemy", "prepared_statement_cache_size", "prepared_statement_cache_size"),
    ("pgx", "simple_protocol", "statement cache"),
]


@pytest.mark.parametrize(("driver", "setting", "kept"), _PG_CACHE_OFF)
def test_given_a_postgresql_driver_cache_setting_when_read_then_it_is_kept_on_and_named_only_as_the_old_workaround(
    driver: str, setting: str, kept: str
) -> None:
    (advice,) = CATALOG["prepared_statement"].driver_hints[driver]
    text = advice.text.replace("`", "")

    assert re.search(rf"\bkeep\b[^.;]*\b{kept}", text), text
    assert setting in text
    assert "older proxies" in text or "before November 2023" in text
    assert EXTENDED_QUERY_BLOG in advice.sources


def test_given_postgresql_prepared_statements_when_read_then_the_engine_hint_says_what_still_pins_today() -> None:
    pg = CATALOG["prepared_statement"].engine_hints[EngineFamily.POSTGRESQL]
    lead = pg[0]

    assert lead.text.startswith("PostgreSQL: keep the driver's statement cache on")
    assert all(word in lead.text for word in ("PREPARE", "EXECUTE", "DEALLOCATE", "DISCARD"))
    assert EXTENDED_QUERY_NEWS in lead.sources
    parse_message = next(a for a in pg if "A parse message was detected." in a.text)
    assert "observation, not an AWS statement" in parse_message.text


def test_given_prisma_when_read_then_no_hint_recommends_pgbouncer_true_and_settings_lead_with_role_defaults() -> None:
    prisma = [a for item in CATALOG.values() for a in item.driver_hints.get("prisma", ())]
    (settings,) = CATALOG["session_settings"].driver_hints["prisma"]
    (prepared,) = CATALOG["prepared_statement"].driver_hints["prisma"]

    assert all("don't add `pgbouncer=true`" in a.text for a in prisma if "pgbouncer=true" in a.text)
    assert "DEALLOCATE ALL" in prepared.text
    assert {"https://github.com/prisma/web/pull/6346", "https://github.com/pgbouncer/pgbouncer/issues/974"} <= set(
        prepared.sources
    )
    assert settings.text.index("ALTER ROLE") < settings.text.index("InitQuery")
    assert "connection_limit" not in settings.text


def test_given_postgresql_set_advice_when_read_then_role_defaults_lead_and_initquery_support_is_marked_unverified() -> (
    None
):
    (pg,) = CATALOG["session_settings"].engine_hints[EngineFamily.POSTGRESQL]

    assert pg.text.index("ALTER ROLE") < pg.text.index("InitQuery")
    assert "ALTER DATABASE" in pg.text
    assert "where your proxy supports it" in pg.text
    assert "unverified" in pg.text


@pytest.mark.parametrize("code", sorted(NOTES))
def test_given_a_note_entry_when_read_then_it_is_marked_as_not_pinning(code: str) -> None:
    item = CATALOG[code]

    assert not item.pins
    assert "not pin" in item.why or "don't pin" in item.why
    assert all(CATALOG[c].pins for c in EXPECTED_CODES - NOTES)


def test_given_stored_routines_when_read_then_the_note_says_their_state_changes_go_undetected() -> None:
    item = CATALOG["stored_routine"]

    assert "undetected" in item.why
    assert item.doc_url == PINNING_DOC
    assert any("stored_routine" in a.text for a in CATALOG["session_settings"].hints)


def test_given_tracked_statements_when_read_then_the_note_lists_aws_tracked_lists_for_mysql_and_sql_server() -> None:
    why = CATALOG["tracked_state"].why
    sql_server_tracked = [
        "ANSI_NULLS",
        "ANSI_PADDING",
        "ANSI_WARNINGS",
        "ARITHABORT",
        "CONCAT_NULL_YIELDS_NULL",
        "CURSOR_CLOSE_ON_COMMIT",
        "DATEFIRST",
        "DATEFORMAT",
        "LANGUAGE",
        "LOCK_TIMEOUT",
        "NUMERIC_ROUNDABORT",
        "QUOTED_IDENTIFIER",
        "TEXTSIZE",
    ]

    assert all(
        f"`{stmt}`" in why for stmt in ("USE", "DROP DATABASE", "DROP SCHEMA", "SET TRANSACTION ISOLATION LEVEL")
    )
    assert all(f"`SET {option}`" in why for option in sql_server_tracked)
    assert CATALOG["tracked_state"].engines == {EngineFamily.MYSQL, EngineFamily.SQLSERVER}


def test_given_the_unknown_entry_when_read_then_it_points_to_the_reasons_page() -> None:
    assert any("docs/reasons.md" in a.text for a in CATALOG["unknown"].hints)
    assert not any("README" in a.text for a in CATALOG["unknown"].hints)


@pytest.mark.parametrize("code", ["nope", "", "SESSION_SETTINGS"])
def test_given_an_unknown_code_when_looked_up_then_the_unknown_entry_is_returned(code: str) -> None:
    assert entry(code) is CATALOG["unknown"]


def test_given_a_known_code_when_looked_up_then_its_entry_is_returned() -> None:
    assert entry("listen").engines == frozenset({EngineFamily.POSTGRESQL})


@pytest.mark.parametrize(
    ("name", "expected"),
    [("pgjdbc", "pgjdbc"), ("ActiveRecord", "rails"), ("psycopg2", "psycopg"), (" Doctrine ", "pdo"), ("cobol", None)],
)
def test_given_a_driver_spelling_when_normalised_then_the_catalog_name_or_none_is_returned(
    name: str, expected: str | None
) -> None:
    assert driver_name(name) == expected


def test_given_engine_scoped_driver_hints_when_asked_per_engine_then_they_apply_only_there() -> None:
    settings = CATALOG["session_settings"]

    assert settings.driver_applies("django", EngineFamily.POSTGRESQL)
    assert not settings.driver_applies("django", EngineFamily.MYSQL)
    assert not settings.driver_applies("mysql-connector-j", EngineFamily.POSTGRESQL)
    assert settings.driver_applies("sqlalchemy", EngineFamily.MYSQL)
    assert settings.driver_applies("django", None)
