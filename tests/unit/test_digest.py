"""analyze_digest: statement kinds, SET variables, and MySQL tracked vs untracked variables."""

from __future__ import annotations

import pytest

from pinwatch import digest as dg
from pinwatch.digest import analyze_digest, guess_engine, split_statements
from pinwatch.records import EngineFamily

MYSQL = EngineFamily.MYSQL
PG = EngineFamily.POSTGRESQL


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("SET a=1, b=2", ("a", "b")),
        ("SET NAMES utf8mb4", ("names",)),
        ("SET NAMES ? COLLATE ?", ("names",)),
        ("SET CHARACTER SET ?", ("character set",)),
        ("SET SESSION wait_timeout = ?", ("wait_timeout",)),
        ("SET @@session.sql_mode = ?", ("sql_mode",)),
        ("SET @@sql_mode = ?", ("sql_mode",)),
        ("set search_path = $1; set names $2;", ("search_path", "names")),
        ("set client_encoding to $1", ("client_encoding",)),
        ("SET TIME ZONE 'UTC'", ("timezone",)),
        ("SET timezone = $1", ("timezone",)),
        ("SET SCHEMA 'app'", ("search_path",)),
        ("select set_config('search_path', $1, false)", ("search_path",)),
        ("SELECT set_config('app.tenant', $1, false), set_config('work_mem', $2, false)", ("app.tenant", "work_mem")),
        ("SET `sql_mode` = ?", ("sql_mode",)),
        ("SET @x := ?", ("@x",)),
        ("SET sql_mode = 'a,b', @y = ?", ("sql_mode", "@y")),  # comma inside quotes is not a separator
        ("SET NOCOUNT ON", ("nocount",)),
        ("/* app=orders */ SET statement_timeout = $1", ("statement_timeout",)),
    ],
)
def test_given_a_set_digest_when_analyzed_then_the_variables_it_touches_are_listed(
    sql: str, names: tuple[str, ...]
) -> None:
    info = analyze_digest(sql, None)

    assert info.set_names == names
    assert info.kind in {dg.SET, dg.SET_CONFIG}


def test_given_a_multi_statement_digest_when_analyzed_then_each_statement_has_a_kind() -> None:
    info = analyze_digest("set search_path = $1; set names $2;", PG)

    assert info.kinds == (dg.SET, dg.SET)
    assert info.engine is PG
    assert not info.engine_guessed


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("PREPARE s FROM ?", dg.PREPARE),
        ("EXECUTE s USING @a", dg.EXECUTE),
        ("DEALLOCATE PREPARE s", dg.DEALLOCATE),
        ("CREATE TEMPORARY TABLE t (id int)", dg.CREATE_TEMP),
        ("create temp sequence s", dg.CREATE_TEMP),
        ("LOCK TABLES t WRITE", dg.LOCK),
        ("SELECT GET_LOCK(?, ?)", dg.LOCK),
        ("select pg_advisory_lock($1)", dg.LOCK),
        ("LISTEN jobs", dg.LISTEN),
        ("RESET ALL", dg.RESET),
        ("DISCARD ALL", dg.RESET),
        ("DISCARD TEMP", dg.RESET),
        ("discard plans", dg.RESET),
        ("RESET statement_timeout", dg.RESET_PARAMETER),
        ("reset search_path", dg.RESET_PARAMETER),
        ("UNLISTEN *", dg.QUERY),  # undoes a LISTEN (asyncpg's pool reset sends it): not a pinning statement
        ("DECLARE c CURSOR FOR select 1", dg.CURSOR),
        ("LOAD 'auto_explain'", dg.LOAD),
        ("select nextval($1)", dg.SEQUENCE),
        ("/*!40101 SET NAMES utf8 */", dg.EXECUTABLE_COMMENT),
        ("USE app", dg.USE),
        ("select * from orders where id = $1", dg.QUERY),
        ("LOAD DATA LOCAL INFILE ? INTO TABLE t", dg.QUERY),
    ],
)
def test_given_a_pinning_statement_when_analyzed_then_its_kind_is_reported(sql: str, kind: str) -> None:
    assert analyze_digest(sql, None).kind == kind


def test_given_a_mysql_set_of_tracked_and_untracked_variables_when_analyzed_then_the_untracked_one_is_the_culprit() -> (
    None
):
    info = analyze_digest("SET sql_mode = ?, names ?, @@session.optimizer_search_depth = ?", MYSQL)

    assert info.tracked == ("sql_mode", "names")
    assert info.untracked == ("optimizer_search_depth",)


@pytest.mark.parametrize(
    "name",
    [
        "autocommit",
        "sql_mode",
        "time_zone",
        "transaction_isolation",
        "tx_read_only",
        "wait_timeout",
        "character_set_client",
    ],
)
def test_given_a_mysql_tracked_variable_when_set_per_session_then_it_does_not_pin(name: str) -> None:
    (variable,) = analyze_digest(f"SET {name} = ?", MYSQL).variables

    assert variable.tracked
    assert not variable.pins


def test_given_mysql_set_local_when_analyzed_then_it_does_not_pin() -> None:
    (variable,) = analyze_digest("SET LOCAL optimizer_switch = ?", MYSQL).variables

    assert variable.scope == dg.LOCAL
    assert not variable.pins


def test_given_mysql_set_transaction_for_the_next_transaction_when_analyzed_then_it_pins_but_session_scope_is_tracked() -> (
    None
):
    (next_only,) = analyze_digest("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", MYSQL).variables
    (session,) = analyze_digest("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", MYSQL).variables

    assert (next_only.name, next_only.scope, next_only.pins) == ("transaction_isolation", dg.NEXT_TRANSACTION, True)
    assert (session.name, session.tracked, session.pins) == ("transaction_isolation", True, False)


def test_given_mysql_global_scope_when_analyzed_then_later_items_keep_it_and_are_not_tracked() -> None:
    info = analyze_digest("SET GLOBAL sql_mode = ?, wait_timeout = ?", MYSQL)

    assert [v.scope for v in info.variables] == [dg.GLOBAL, dg.GLOBAL]
    assert info.tracked == ()


def test_given_a_mysql_user_variable_when_analyzed_then_it_is_listed_apart_and_pins() -> None:
    info = analyze_digest("SET @x := ?, sql_mode = ?", MYSQL)

    assert info.user_variables == ("@x",)
    assert info.untracked == ()
    assert info.tracked == ("sql_mode",)


def test_given_postgresql_when_any_variable_is_set_then_nothing_is_tracked_and_everything_pins() -> None:
    info = analyze_digest("SET sql_mode = $1; SET LOCAL work_mem = $2; set names $3", PG)

    assert info.tracked == ()
    assert info.untracked == ("sql_mode", "work_mem", "names")


@pytest.mark.parametrize(
    ("sql", "engine"),
    [
        ("set search_path = $1", PG),
        ("select $1::int", PG),
        ("SET sql_mode = ?", MYSQL),
        ("select `a` from t", MYSQL),
        ("SET NOCOUNT ON", EngineFamily.SQLSERVER),
        ("select 1", None),
    ],
)
def test_given_a_digest_spelling_when_guessing_then_the_engine_follows_the_placeholders(
    sql: str, engine: EngineFamily | None
) -> None:
    assert guess_engine(sql) == engine
    assert analyze_digest(sql, None).engine == engine


def test_given_quotes_comments_and_parentheses_when_splitting_then_only_top_level_semicolons_split() -> None:
    sql = "select ';' as a, \"x;y\", `b;c`, f(1;2) /* ; */; -- ;\nselect 2; ; "

    assert split_statements(sql) == ["select ';' as a, \"x;y\", `b;c`, f(1;2) /* ; */", "-- ;\nselect 2"]


@pytest.mark.parametrize("sql", ["", "SET", "SET ,,", "'unterminated", "/* open", "SET @", ")))((("])
def test_given_malformed_sql_when_analyzed_then_it_never_raises(sql: str) -> None:
    info = analyze_digest(sql, MYSQL)

    assert info.digest == sql


def test_given_a_parse_message_pin_without_digest_when_guessing_the_engine_then_it_is_postgresql() -> None:
    from pinwatch.digest import guess_engine_from

    assert guess_engine_from("A parse message was detected.", None) is EngineFamily.POSTGRESQL


def test_given_a_mysql_digest_when_guessing_the_engine_then_the_digest_wins_over_the_wording() -> None:
    from pinwatch.digest import guess_engine_from

    assert guess_engine_from("SQL changed session settings.", "SET sql_mode = ?") is EngineFamily.MYSQL
    assert guess_engine_from("The connection ran a SQL query which exceeded the 16384 byte limit.", None) is None
