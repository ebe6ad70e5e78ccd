"""``pinwatch report`` on an organization's summary table (DynamoDB Local): two accounts hold the same proxy name."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from pinwatch.cli import main
from pinwatch.records import Kind, LogRecord
from pinwatch.scope import Scope
from pinwatch.store.summary import SummaryStore
from pinwatch.tally import Tally

pytestmark = pytest.mark.integration

NOW = 1_795_636_800_000  # 2026-11-25T20:00:00Z
HOUR = 3_600_000
WINDOW = ["--since", "2026-11-24T20:00Z", "--until", "2026-11-25T20:00Z"]
A_EU = Scope("111111111111", "eu-west-1").key("orders-db")
A_US = Scope("111111111111", "us-east-1").key("billing-db")
B_EU = Scope("222222222222", "eu-west-1").key("orders-db")


def _add(tally: Tally, proxy: str, hours_ago: int, reason: str, n: int) -> None:
    for i in range(n):
        record = LogRecord(kind=Kind.PINNED, raw="", timestamp_ms=NOW - hours_ago * HOUR + i, reason=reason)
        tally.add(proxy, record)


@pytest.fixture
def table(dynamodb_client: Any, summary_table: str) -> str:
    """Account 1: orders-db (eu-west-1) 6 session_settings + 2 lock, billing-db (us-east-1) 3 session_settings.

    Account 2: its own orders-db (eu-west-1) with 4 cursor.
    """
    tally = Tally()
    _add(tally, A_EU, 2, "session_settings", 6)
    _add(tally, A_EU, 5, "lock", 2)
    _add(tally, A_US, 3, "session_settings", 3)
    _add(tally, B_EU, 4, "cursor", 4)
    SummaryStore(dynamodb_client, summary_table).apply_batch("org-report-fixture", tally, NOW)
    return summary_table


def report(capsys: pytest.CaptureFixture[str], table: str, endpoint: str, *args: str) -> tuple[int, str, str]:
    code = main(["report", "--table", table, "--endpoint-url", endpoint, *WINDOW, *args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> list[tuple[object, ...]]:
    return [(r["account"], r["region"], r["name"], r["reason"], r["count"]) for r in json.loads(out)]


def test_given_two_accounts_with_the_same_proxy_name_when_reported_as_json_then_each_row_says_whose_it_is(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(capsys, table, dynamodb_endpoint, "--format", "json")

    assert code == 0
    assert rows(out) == [
        ("111111111111", "eu-west-1", "orders-db", "session_settings", 6),
        ("111111111111", "eu-west-1", "orders-db", "lock", 2),
        ("111111111111", "us-east-1", "billing-db", "session_settings", 3),
        ("222222222222", "eu-west-1", "orders-db", "cursor", 4),
    ]
    assert json.loads(out)[0]["proxy"] == A_EU


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--account", "222222222222"], [("222222222222", "eu-west-1", "orders-db", "cursor", 4)]),
        (["--proxy-region", "us-east-1"], [("111111111111", "us-east-1", "billing-db", "session_settings", 3)]),
        (
            ["--account", "111111111111", "--proxy-region", "eu-west-1"],
            [
                ("111111111111", "eu-west-1", "orders-db", "session_settings", 6),
                ("111111111111", "eu-west-1", "orders-db", "lock", 2),
            ],
        ),
        (
            ["--proxy", "orders-db"],  # a bare name: that proxy in every account
            [
                ("111111111111", "eu-west-1", "orders-db", "session_settings", 6),
                ("111111111111", "eu-west-1", "orders-db", "lock", 2),
                ("222222222222", "eu-west-1", "orders-db", "cursor", 4),
            ],
        ),
        (["--proxy", B_EU], [("222222222222", "eu-west-1", "orders-db", "cursor", 4)]),
        (
            ["--proxy", "orders-db", "--account", "222222222222"],
            [("222222222222", "eu-west-1", "orders-db", "cursor", 4)],
        ),
    ],
)
def test_given_account_region_and_proxy_filters_when_reported_then_only_the_chosen_proxies_are_ranked(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str], args: list[str], expected: list[Any]
) -> None:
    code, out, _ = report(capsys, table, dynamodb_endpoint, "--format", "json", *args)
    assert code == 0
    assert rows(out) == expected


def test_given_an_org_table_when_reported_by_hour_as_csv_then_account_and_region_are_columns(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(
        capsys, table, dynamodb_endpoint, "--by", "hour", "--format", "csv", "--account", "222222222222"
    )

    assert code == 0
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row == {
        "proxy": B_EU,
        "account": "222222222222",
        "region": "eu-west-1",
        "name": "orders-db",
        "hour": "2026-11-25T16:00Z",
        "reason": "cursor",
        "count": "4",
    }


def test_given_an_org_table_when_reported_as_a_table_then_accounts_lead_with_their_reasons_over_all_their_proxies(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")

    code, out, _ = report(capsys, table, dynamodb_endpoint)

    assert code == 0
    lines = out.splitlines()

    def at(text: str) -> int:
        return next(i for i, line in enumerate(lines) if text in line)

    order = [
        at("Account 111111111111 "),
        at("Account 111111111111: pins by reason over its 2 proxies"),
        at("orders-db (111111111111, eu-west-1): pins by reason"),
        at("billing-db (111111111111, us-east-1): pins by reason"),
        at("Account 222222222222 "),
        at("Account 222222222222: pins by reason over its proxy"),
        at("orders-db (222222222222, eu-west-1): pins by reason"),
    ]
    assert order == sorted(order)
    # Account 1's session_settings: 6 + 3 across its two Regions, and where they came from.
    summary = lines[order[1] : order[2]]
    settings = next(line for line in summary if "session_settings" in line)
    assert "│     9 │" in settings
    assert "orders-db (111111111111, eu-west-1) 6, billing-db (111111111111, us-east-1) 3" in settings


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--account", "1111"], "--account '1111' is not a 12-digit AWS account ID"),
        (["--proxy-region", "Europe"], "--proxy-region 'Europe' is not an AWS Region code"),
    ],
)
def test_given_a_filter_that_can_never_match_when_reported_then_one_line_error_and_exit_2(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = report(capsys, table, dynamodb_endpoint, *args)
    assert code == 2
    assert message in err


def test_given_an_account_filter_on_a_single_account_table_when_reported_then_no_proxy_matches(
    dynamodb_client: Any, summary_table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tally = Tally()
    _add(tally, "orders-db", 2, "lock", 1)
    SummaryStore(dynamodb_client, summary_table).apply_batch("plain-fixture", tally, NOW)

    code, out, _ = report(capsys, summary_table, dynamodb_endpoint, "--format", "json", "--account", "111111111111")
    assert (code, json.loads(out)) == (0, [])
    code, out, _ = report(capsys, summary_table, dynamodb_endpoint, "--format", "json")
    assert [(r["proxy"], "account" in r) for r in json.loads(out)] == [("orders-db", False)]
