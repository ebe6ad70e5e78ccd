"""hints_for: most specific first, engine-correct, driver-aware and aware of the pool configuration."""

from __future__ import annotations

import dataclasses
import string

import pytest

from pinwatch import hints as hints_module
from pinwatch.catalog import CATALOG, EXCLUDE_VARIABLE_SETS, INIT_QUERY, PINNING_DOC
from pinwatch.digest import analyze_digest
from pinwatch.hints import DIGEST_HINTS, GENERAL, DigestHint, Hint, hints_for, top_hint
from pinwatch.records import EngineFamily, PoolConfig

MYSQL = EngineFamily.MYSQL
PG = EngineFamily.POSTGRESQL


def texts(hints: list[Hint]) -> str:
    return "\n".join(h.text for h in hints)


def test_given_a_search_path_digest_when_hinted_then_the_first_hint_names_search_path_and_initquery() -> None:
    hints = hints_for("session_settings", PG, "set search_path = $1; set names $2;")

    assert "SET search_path" in hints[0].text
    assert INIT_QUERY in hints[0].text
    assert "ALTER ROLE" in hints[0].text
    assert hints[0].scope == PG.value
    assert any("SET NAMES" in h.text for h in hints[1:3])


def test_given_hints_when_listed_then_digest_engine_driver_general_is_the_order() -> None:
    hints = hints_for("session_settings", PG, "set client_encoding to $1", drivers=["rails"])
    scopes = [h.scope for h in hints]
    general = CATALOG["session_settings"].hints

    assert "client_encoding" in hints[0].text  # digest-specific first
    assert scopes.index("rails") < scopes.index(GENERAL)
    assert max(i for i, s in enumerate(scopes) if s == PG.value) < scopes.index("rails")
    assert [h.text for h in hints if h.scope == GENERAL] == [a.text for a in general]


@pytest.mark.parametrize("code", list(CATALOG))
@pytest.mark.parametrize("digest", [None, "set search_path = $1", "SET sql_mode = ?, foo = ?"])
def test_given_postgresql_when_hinted_then_exclude_variable_sets_is_never_suggested(
    code: str, digest: str | None
) -> None:
    assert EXCLUDE_VARIABLE_SETS not in texts(hints_for(code, PG, digest))


def test_given_mysql_session_settings_when_hinted_then_exclude_variable_sets_is_offered() -> None:
    assert EXCLUDE_VARIABLE_SETS in texts(hints_for("session_settings", MYSQL))


def test_given_a_mysql_set_with_one_untracked_variable_when_hinted_then_the_culprit_is_named_not_the_tracked_ones() -> (
    None
):
    first = hints_for("session_settings", MYSQL, "SET sql_mode = ?, names ?, @@session.optimizer_search_depth = ?")[0]

    assert "culprit is `optimizer_search_depth`" in first.text
    assert "`sql_mode`, `names` are tracked" in first.text
    assert first.scope == MYSQL.value


def test_given_a_mysql_set_of_tracked_variables_only_when_hinted_then_it_says_they_do_not_pin() -> None:
    first = hints_for("session_settings", MYSQL, "SET NAMES ?, time_zone = ?")[0]

    assert "tracked by the proxy and should not pin" in first.text
    assert "culprit" not in first.text


def test_given_a_mysql_user_variable_when_hinted_then_the_variable_is_named() -> None:
    first = hints_for("user_variable", None, "SET @row_number := ?")[0]

    assert "`@row_number`" in first.text
    assert "user variable" in first.text


def test_given_set_transaction_for_the_next_transaction_when_hinted_then_session_scope_is_suggested() -> None:
    assert "SET SESSION TRANSACTION" in hints_for("session_settings", MYSQL, "SET TRANSACTION READ ONLY")[0].text


@pytest.mark.parametrize(
    ("code", "digest", "needle"),
    [
        ("lock", "select pg_advisory_lock($1)", "pg_advisory_xact_lock"),
        ("lock", "SELECT GET_LOCK(?, ?)", "GET_LOCK()"),
        ("lock", "LOCK TABLES t WRITE", "LOCK TABLES"),
        ("session_reset", "DISCARD ALL", "No Reset On Close=true"),
        ("listen", "LISTEN jobs", "database endpoint"),
        ("sequence_function", "select nextval($1)", "RETURNING"),
        ("library_load", "LOAD 'auto_explain'", "shared_preload_libraries"),
        ("temporary_table", "CREATE TEMP TABLE t (id int)", "CTE"),
        ("cursor", "DECLARE c CURSOR FOR select 1", "keyset"),
    ],
)
def test_given_a_telling_digest_when_hinted_then_the_first_hint_is_about_that_statement(
    code: str, digest: str, needle: str
) -> None:
    assert needle in hints_for(code, None, digest)[0].text


def test_given_a_postgresql_statement_setting_several_variables_when_hinted_then_the_advice_follows_its_order() -> None:
    hints = hints_for("session_settings", PG, "set timezone to $1; set work_mem = $2; set search_path = $3")

    assert "SET TIME ZONE" in hints[0].text
    assert "SET search_path" in hints[1].text
    assert "`SET work_mem` pins on PostgreSQL" in hints[2].text


def test_given_a_set_on_an_unknown_engine_when_hinted_then_the_variables_are_named_in_one_hint() -> None:
    first = hints_for("session_settings", EngineFamily.SQLSERVER, "SET foo = 1, bar = 2")[0]

    assert first.text.startswith("This session SETs `foo`, `bar`")
    assert first.scope == EngineFamily.SQLSERVER.value


def test_given_a_lock_statement_when_hinted_then_only_the_matching_lock_advice_is_given() -> None:
    lock_texts = {row.text for row in DIGEST_HINTS if row.kinds == {"lock"}}

    for digest in ("select pg_advisory_lock($1)", "SELECT GET_LOCK(?, ?)", "LOCK TABLES t WRITE"):
        assert len(lock_texts & {h.text for h in hints_for("lock", None, digest)}) == 1


def test_given_the_digest_hint_table_then_every_row_names_known_facts_and_placeholders() -> None:
    facts = {f.name for f in dataclasses.fields(hints_module._Facts)}
    placeholders = set(hints_module._Facts.of(analyze_digest("select 1", None)).placeholders())

    for row in DIGEST_HINTS:
        fields = {name for _, name, _, _ in string.Formatter().parse(row.text) if name}
        assert fields <= placeholders, row.text
        assert set(row.requires) | set(row.excludes) <= facts, row.text


def test_given_a_row_with_a_source_when_it_applies_then_the_hint_links_that_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = "https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADVISORY-LOCKS"
    table = tuple(
        dataclasses.replace(row, source=source) if "pg_advisory_lock" in row.text else row for row in DIGEST_HINTS
    )
    monkeypatch.setattr(hints_module, "DIGEST_HINTS", table)

    first = hints_for("lock", PG, "select pg_advisory_lock($1)")[0]

    assert "pg_advisory_xact_lock" in first.text
    assert first.doc_url == source
    assert CATALOG["lock"].doc_url == PINNING_DOC


def test_given_a_driver_specific_row_when_hinted_then_it_applies_to_that_driver_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    row = DigestHint("Npgsql: set `No Reset On Close=true`.", kinds=frozenset({"reset"}), drivers=frozenset({"npgsql"}))
    monkeypatch.setattr(hints_module, "DIGEST_HINTS", (row, *DIGEST_HINTS))

    npgsql = hints_for("session_reset", PG, "DISCARD ALL", drivers=["npgsql"])
    other = hints_for("session_reset", PG, "DISCARD ALL", drivers=["psycopg"])
    unknown_client = hints_for("session_reset", PG, "DISCARD ALL")
    mysql = hints_for("session_reset", MYSQL, "DISCARD ALL")

    assert (npgsql[0].text, npgsql[0].scope) == (row.text, "npgsql")
    assert row.text not in texts(other)
    assert row.text in texts(unknown_client)  # no drivers given: every PostgreSQL driver may be the client
    assert row.text not in texts(mysql)  # Npgsql never talks to MySQL


def test_given_no_engine_when_the_digest_uses_dollar_placeholders_then_postgresql_hints_are_chosen() -> None:
    hints = hints_for("session_settings", None, "set statement_timeout = $1")

    assert {h.scope for h in hints} <= {PG.value, GENERAL} | {"prisma", "rails", "django", "sqlalchemy", "pdo"}
    assert EXCLUDE_VARIABLE_SETS not in texts(hints)


def test_given_no_engine_and_no_digest_when_the_reason_has_one_engine_then_its_hints_apply() -> None:
    hints = hints_for("user_variable", None)

    assert any(h.scope == MYSQL.value for h in hints)


def test_given_no_engine_and_no_digest_when_the_reason_spans_engines_then_each_engine_hint_is_labelled() -> None:
    scopes = {h.scope for h in hints_for("session_settings", None)}

    assert {MYSQL.value, PG.value, EngineFamily.SQLSERVER.value} <= scopes


def test_given_a_driver_when_hinted_then_only_that_drivers_hints_are_included() -> None:
    hints = hints_for("prepared_statement", PG, drivers=["pgjdbc"])
    driver_scopes = {h.scope for h in hints} - {GENERAL, PG.value}

    assert driver_scopes == {"pgjdbc"}
    assert any("keep the default `prepareThreshold`" in h.text for h in hints)


def test_given_no_driver_when_the_engine_is_known_then_only_compatible_drivers_are_included() -> None:
    scopes = {h.scope for h in hints_for("prepared_statement", MYSQL)}

    assert "mysql-connector-j" in scopes
    assert "mysql2" in scopes
    assert not scopes & {"pgjdbc", "asyncpg", "npgsql", "pgx", "psycopg"}


def test_given_an_engine_scoped_driver_hint_when_on_another_engine_then_it_is_left_out() -> None:
    assert "Django (PostgreSQL)" not in texts(hints_for("session_settings", MYSQL, drivers=["django"]))
    assert "Django (PostgreSQL)" in texts(hints_for("session_settings", PG, drivers=["django"]))


def test_given_exclude_variable_sets_already_enabled_when_hinted_then_it_is_reported_not_suggested() -> None:
    pool = PoolConfig(session_pinning_filters=("EXCLUDE_VARIABLE_SETS",))

    hints = hints_for("session_settings", MYSQL, "SET @x := ?, sql_mode = ?", pool=pool)

    mentions = [h for h in hints if EXCLUDE_VARIABLE_SETS in h.text]
    assert len(mentions) == 1
    assert "already enabled" in mentions[0].text


def test_given_an_init_query_that_sets_the_same_variable_when_hinted_then_it_says_to_drop_the_client_set() -> None:
    pool = PoolConfig(init_query="SET search_path = app, public")

    hints = hints_for("session_settings", PG, "set search_path = $1", pool=pool)

    assert "already sets `search_path`" in hints[0].text
    assert "remove it from the client" in hints[0].text
    assert not any("set it in the proxy's initialization query" in h.text for h in hints)


def test_given_an_unrelated_init_query_when_hinted_then_it_suggests_adding_to_the_existing_one() -> None:
    pool = PoolConfig(init_query="SET statement_timeout = 5000")

    hints = hints_for("session_settings", PG, "set search_path = $1", pool=pool)

    assert "already has an InitQuery" in hints[0].text
    assert sum(INIT_QUERY in h.text for h in hints) == 1


def test_given_hints_when_listed_then_no_text_repeats() -> None:
    for code in CATALOG:
        for engine in (None, MYSQL, PG, EngineFamily.SQLSERVER):
            found = [h.text for h in hints_for(code, engine)]
            assert len(found) == len(set(found)), (code, engine)


@pytest.mark.parametrize("code", list(CATALOG))
def test_given_any_code_when_asked_for_the_top_hint_then_it_is_the_first_hint(code: str) -> None:
    assert top_hint(code, PG) == hints_for(code, PG)[0].text


def test_given_an_unknown_code_when_hinted_then_the_unknown_entry_advice_is_returned() -> None:
    assert texts(hints_for("made_up", None)) == texts(hints_for("unknown", None))


def test_given_a_postgresql_prepared_statement_pin_when_hinted_then_no_hint_advises_turning_driver_caches_off() -> None:
    hints = hints_for("prepared_statement", PG)
    cache_off = ("prepareThreshold=0", "statement_cache_size=0", "simple_protocol", "pgbouncer=true")

    assert hints[0].text.startswith("PostgreSQL: keep the driver's statement cache on")
    for hint in hints:
        if any(setting in hint.text for setting in cache_off):
            assert "workaround" in hint.text or "don't add" in hint.text, hint.text


def test_given_a_16_kb_pin_with_the_engine_unknown_when_hinted_then_engine_neutral_advice_leads() -> None:
    hints = hints_for("large_statement", None)
    scopes = [h.scope for h in hints]
    first_specific = next(i for i, s in enumerate(scopes) if s != GENERAL)

    assert hints[0].scope == GENERAL
    assert not hints[0].text.startswith("MySQL:")
    assert all(s != GENERAL for s in scopes[first_specific:])  # every general hint before any per-engine one
    assert {MYSQL.value, PG.value} <= set(scopes)


def test_given_a_16_kb_pin_on_a_known_engine_when_hinted_then_that_engines_advice_leads() -> None:
    assert hints_for("large_statement", MYSQL)[0].text.startswith("MySQL:")
    assert hints_for("large_statement", PG)[0].text.startswith("PostgreSQL:")


@pytest.mark.parametrize("digest", ["DISCARD TEMP", "discard plans", "DISCARD SEQUENCES", "DISCARD ALL"])
def test_given_a_discard_digest_when_hinted_then_the_lead_hint_is_about_discarding_session_state(digest: str) -> None:
    first = hints_for("session_reset", PG, digest)[0]

    assert first.text.startswith("`DISCARD`/`RESET ALL` discards session state")


def test_given_a_reset_of_one_parameter_when_hinted_then_it_is_advice_on_the_parameter_not_a_pool_reset() -> None:
    hints = hints_for("session_settings", PG, "RESET statement_timeout")

    assert hints[0].text.startswith("`RESET <parameter>` pins on PostgreSQL like a SET")
    assert "ALTER ROLE" in hints[0].text
    assert not any("discards session state" in h.text for h in hints)


def test_given_a_deallocate_all_digest_from_prisma_when_hinted_then_pgbouncer_true_is_named_as_the_cause() -> None:
    hints = hints_for("prepared_statement", PG, "DEALLOCATE ALL", drivers=["prisma"])

    assert hints[0].text.startswith("SQL-level `DEALLOCATE` pins")
    assert hints[0].doc_url == "https://github.com/prisma/prisma-engines/pull/5016"
    prisma = [h for h in hints if h.scope == "prisma"]
    assert prisma
    assert "don't add `pgbouncer=true`" in prisma[0].text


def test_given_prisma_settings_when_hinted_then_the_role_default_leads_not_a_pool_size_workaround() -> None:
    (prisma,) = [h for h in hints_for("session_settings", PG, drivers=["prisma"]) if h.scope == "prisma"]

    assert "ALTER ROLE" in prisma.text
    assert "connection_limit" not in prisma.text


@pytest.mark.parametrize("code", list(CATALOG))
@pytest.mark.parametrize("engine", [None, MYSQL, PG, EngineFamily.SQLSERVER])
def test_given_any_hint_when_listed_then_it_links_an_https_source(code: str, engine: EngineFamily | None) -> None:
    for digest in (None, "set search_path = $1", "DISCARD ALL", "DEALLOCATE ALL", "select pg_advisory_lock($1)"):
        for hint in hints_for(code, engine, digest):
            assert hint.doc_url is not None
            assert hint.doc_url.startswith("https://"), hint.text


def test_given_catalog_hints_when_listed_then_each_links_its_own_first_source() -> None:
    pgjdbc = CATALOG["prepared_statement"].driver_hints["pgjdbc"][0]

    (hint,) = [h for h in hints_for("prepared_statement", PG, drivers=["pgjdbc"]) if h.scope == "pgjdbc"]

    assert hint.doc_url == pgjdbc.source


def test_given_asyncpgs_reset_query_when_hinted_then_it_is_about_the_pool_reset_not_listen() -> None:
    # The digest asyncpg's default pool reset produces (asyncpg#1153).
    digest = "select pg_advisory_unlock_all(); close all; unlisten *; reset all;"

    hints = hints_for("session_reset", PG, digest, drivers=["asyncpg"])

    assert hints[0].text.startswith("`DISCARD`/`RESET ALL` discards session state")
    assert not any("`LISTEN` needs its own connection" in h.text for h in hints)
    assert any(h.scope == "asyncpg" and "reset=" in h.text for h in hints)


def test_given_a_mysql_reset_statement_when_hinted_then_the_postgresql_reset_advice_is_left_out() -> None:
    assert not any("RESET <parameter>" in h.text for h in hints_for("session_settings", MYSQL, "RESET QUERY CACHE"))
