"""`pinwatch reasons [CODE]`: the catalog as a table or JSON, one entry in full, and its errors."""

from __future__ import annotations

import json

import pytest

from pinwatch.catalog import CATALOG, DRIVERS, EXCLUDE_VARIABLE_SETS
from pinwatch.cli import main


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def test_given_no_code_when_listing_then_every_catalog_code_and_title_is_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["reasons"]) == 0
    out = capsys.readouterr().out

    for item in CATALOG.values():
        assert item.code in out
        assert item.title in out


def test_given_json_when_listing_then_each_entry_has_why_hints_by_scope_and_doc(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["reasons", "--format", "json"]) == 0
    entries = json.loads(capsys.readouterr().out)

    assert [e["code"] for e in entries] == list(CATALOG)
    for e in entries:
        item = CATALOG[e["code"]]
        assert e["why"] == item.why
        assert e["pins"] is item.pins
        assert e["hints"]["general"] == [{"text": a.text, "sources": list(a.sources)} for a in item.hints]
        assert set(e["hints"]["drivers"]) <= set(DRIVERS)
        assert e["doc_url"].startswith("https://")
        listed = [h for hints in (e["hints"]["general"], *e["hints"]["engines"].values()) for h in hints]
        listed += [h for hints in e["hints"]["drivers"].values() for h in hints]
        assert len(listed) == len(item.all_hints())
        assert all(h["sources"] and all(u.startswith("https://") for u in h["sources"]) for h in listed)


def test_given_a_code_when_shown_then_why_engines_every_hint_scope_and_the_doc_link_are_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    item = CATALOG["prepared_statement"]

    assert main(["reasons", "prepared_statement"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # undo wrapping

    assert item.why in out
    assert "mysql, postgresql, sqlserver" in out
    for heading in ("General", "MySQL", "PostgreSQL", "SQL Server", DRIVERS["pgjdbc"].title):
        assert heading in out
    assert "prepareThreshold=0" in out
    assert item.doc_url in out


def test_given_a_code_when_shown_then_every_source_of_every_hint_is_printed_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    narrow = 60  # narrower than the URLs: they must still come out unbroken
    item = CATALOG["prepared_statement"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", str(narrow))
        assert main(["reasons", "prepared_statement"]) == 0
    lines = capsys.readouterr().out.splitlines()
    printed = {line.split("source: ", 1)[1].strip() for line in lines if "source: " in line}

    assert printed == {url for advice in item.all_hints() for url in advice.sources}


def test_given_a_note_when_listed_and_shown_then_it_is_marked_as_not_pinning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["reasons"]) == 0
    listing = capsys.readouterr().out
    assert main(["reasons", "stored_routine"]) == 0
    shown = capsys.readouterr().out

    row = next(line for line in listing.splitlines() if "stored_routine" in line)
    assert "no (note)" in row
    assert "Does not pin" in shown


def test_given_an_engine_when_showing_a_code_then_other_engines_hints_are_left_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["reasons", "session_settings", "--engine", "postgresql", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)

    assert set(shown["hints"]["engines"]) == {"POSTGRESQL"}
    assert "mysql-connector-j" not in shown["hints"]["drivers"]
    assert EXCLUDE_VARIABLE_SETS not in json.dumps(shown)


def test_given_an_engine_when_listing_then_only_reasons_for_that_engine_are_listed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["reasons", "--engine", "sqlserver", "--format", "json"]) == 0
    codes = {e["code"] for e in json.loads(capsys.readouterr().out)}

    assert codes == {code for code, item in CATALOG.items() if any(e.value == "SQLSERVER" for e in item.engines)}
    assert "listen" not in codes


def test_given_an_unknown_code_when_shown_then_exit_2_with_a_one_line_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["reasons", "no_such_reason"]) == 2
    captured = capsys.readouterr()

    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "no_such_reason" in captured.err


def test_given_a_code_in_other_case_when_shown_then_it_is_found(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reasons", "LISTEN", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["code"] == "listen"
