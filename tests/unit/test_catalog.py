"""The reason catalog is complete, consistent and engine-correct."""

from __future__ import annotations

import pytest

from pinwatch.catalog import CATALOG, DRIVERS, EXCLUDE_VARIABLE_SETS, ReasonEntry, driver_name, entry
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
    "unknown",
}


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
    assert all(h.strip() for h in item.hints)
    assert item.doc_url.startswith("https://")
    assert set(item.engine_hints) <= item.engines, "engine hints only for engines the reason applies to"
    assert set(item.driver_hints) <= set(DRIVERS), "driver hints only for known drivers"
    assert set(item.driver_hint_engines) <= set(item.driver_hints)


@pytest.mark.parametrize("item", list(CATALOG.values()), ids=list(CATALOG))
def test_given_any_entry_when_not_mysql_then_exclude_variable_sets_is_never_offered(item: ReasonEntry) -> None:
    non_mysql = [h for family, hints in item.engine_hints.items() if family is not EngineFamily.MYSQL for h in hints]
    everywhere = list(item.hints) + [h for hints in item.driver_hints.values() for h in hints]

    assert not any(EXCLUDE_VARIABLE_SETS in h for h in non_mysql + everywhere)


def test_given_session_settings_when_read_then_the_mysql_hints_offer_exclude_variable_sets() -> None:
    assert any(EXCLUDE_VARIABLE_SETS in h for h in CATALOG["session_settings"].engine_hints[EngineFamily.MYSQL])


@pytest.mark.parametrize(
    ("code", "driver", "setting"),
    [
        ("prepared_statement", "mysql-connector-j", "useServerPrepStmts=false"),
        ("prepared_statement", "pgjdbc", "prepareThreshold=0"),
        ("prepared_statement", "asyncpg", "statement_cache_size=0"),
        ("prepared_statement", "pdo", "ATTR_EMULATE_PREPARES"),
        ("prepared_statement", "prisma", "pgbouncer=true"),
        ("prepared_statement", "pgx", "simple_protocol"),
        ("prepared_statement", "rails", "prepared_statements: false"),
        ("prepared_statement", "mysql2", "query()"),
        ("prepared_statement", "psycopg", "prepare_threshold=None"),
        ("session_reset", "npgsql", "No Reset On Close=true"),
        ("cursor", "django", "DISABLE_SERVER_SIDE_CURSORS"),
    ],
)
def test_given_a_known_driver_lever_when_looked_up_then_the_catalog_names_the_concrete_setting(
    code: str, driver: str, setting: str
) -> None:
    assert any(setting in h for h in CATALOG[code].driver_hints[driver])


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
