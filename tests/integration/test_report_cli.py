"""``pinwatch report`` against a summary table on DynamoDB Local with known counts."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import boto3
import pytest

from pinwatch.cli import main
from pinwatch.local.dynamodb_local import free_port
from pinwatch.records import Kind, LogRecord
from pinwatch.store.summary import SummaryStore
from pinwatch.tally import Tally

pytestmark = pytest.mark.integration

NOW = 1_795_636_800_000  # 2026-11-25T20:00:00Z
HOUR = 3_600_000
WINDOW = ["--since", "2026-11-24T20:00Z", "--until", "2026-11-25T20:00Z"]


def _add(tally: Tally, proxy: str, hours_ago: int, reason: str, n: int, digest: str | None = None) -> None:
    start = NOW - hours_ago * HOUR
    for i in range(n):
        record = LogRecord(
            kind=Kind.PINNED, raw="", timestamp_ms=start + i, reason=reason, reason_text=reason, digest=digest
        )
        tally.add(proxy, record)


@pytest.fixture
def table(dynamodb_client: Any, summary_table: str) -> str:
    """orders-db: 6 session_settings + 2 lock now, 3 session_settings + 4 cursor the day before; billing-db: 5."""
    tally = Tally()
    _add(tally, "orders-db", 2, "session_settings", 4, "set search_path = $1")
    _add(tally, "orders-db", 1, "session_settings", 2, "set search_path = $1")
    _add(tally, "orders-db", 5, "lock", 2)
    _add(tally, "orders-db", 30, "session_settings", 3)
    _add(tally, "orders-db", 40, "cursor", 4)
    _add(tally, "billing-db", 3, "large_statement", 5)
    would = LogRecord(kind=Kind.WOULD_PIN, raw="", timestamp_ms=NOW - HOUR, reason="prepared_statement")
    for _ in range(7):
        tally.add("orders-db", would)
    tally.add("orders-db", LogRecord(kind=Kind.UNPARSED, raw="junk", timestamp_ms=NOW - HOUR))
    SummaryStore(dynamodb_client, summary_table).apply_batch("report-fixture", tally, NOW)
    return summary_table


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_given_known_counts_when_reported_as_json_then_each_proxy_ranks_its_reasons_with_share_and_trend(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(capsys, "--table", table, "--endpoint-url", dynamodb_endpoint, *WINDOW, "--format", "json")

    assert code == 0
    rows = json.loads(out)
    assert [(r["proxy"], r["reason"], r["count"], r["share"], r["previous_count"], r["trend"]) for r in rows] == [
        ("billing-db", "large_statement", 5, 1.0, 0, "new"),
        ("orders-db", "session_settings", 6, 0.75, 3, "+100%"),
        ("orders-db", "lock", 2, 0.25, 0, "new"),
        ("orders-db", "cursor", 0, 0.0, 4, "stopped"),
    ]
    settings = rows[1]
    assert settings["example_digest"] == "set search_path = $1"
    assert settings["first_seen"] == "2026-11-25T18:00:00Z"
    assert "search_path" in settings["hint"]


def test_given_known_counts_when_reported_as_csv_then_the_rows_round_trip(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(
        capsys,
        "--table",
        table,
        "--endpoint-url",
        dynamodb_endpoint,
        *WINDOW,
        "--format",
        "csv",
        "--proxy",
        "orders-db",
    )

    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["reason"], r["count"], r["change_pct"]) for r in rows] == [
        ("session_settings", "6", "100.0"),
        ("lock", "2", ""),
        ("cursor", "0", "-100.0"),
    ]


def test_given_known_counts_when_reported_as_markdown_then_it_is_a_table_with_percent_shares(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(
        capsys, "--table", table, "--endpoint-url", dynamodb_endpoint, *WINDOW, "--format", "markdown", "--limit", "1"
    )

    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("| proxy | reason | count | share | trend |")
    assert lines[2].startswith("| billing-db | large_statement | 5 | 100.0% | new |")
    assert lines[3].startswith("| orders-db | session_settings | 6 | 75.0% | +100% |")
    assert len(lines) == 4


def test_given_known_counts_when_reported_as_a_table_then_it_shows_counts_trend_and_the_other_kinds(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "240")

    code, out, _ = report(
        capsys, "--table", table, "--endpoint-url", dynamodb_endpoint, *WINDOW, "--proxy", "orders-db"
    )

    assert code == 0
    assert "orders-db: pins by reason" in out
    session_line = next(line for line in out.splitlines() if "session_settings" in line)
    assert "│     6 │" in session_line
    assert "+100%" in session_line
    assert "stopped" in out
    assert "7 would-pin warnings" in out
    assert "1 unparsed line" in out


def test_given_known_counts_when_reported_by_hour_then_json_has_one_row_per_hour_and_reason(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(
        capsys,
        "--table",
        table,
        "--endpoint-url",
        dynamodb_endpoint,
        *WINDOW,
        "--by",
        "hour",
        "--format",
        "json",
        "--proxy",
        "orders-db",
    )

    assert code == 0
    assert json.loads(out) == [
        {"proxy": "orders-db", "hour": "2026-11-25T15:00Z", "reason": "lock", "count": 2},
        {"proxy": "orders-db", "hour": "2026-11-25T18:00Z", "reason": "session_settings", "count": 4},
        {"proxy": "orders-db", "hour": "2026-11-25T19:00Z", "reason": "session_settings", "count": 2},
    ]


def test_given_known_counts_when_reported_by_hour_as_a_table_then_each_reason_has_a_sparkline(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "240")

    code, out, _ = report(
        capsys, "--table", table, "--endpoint-url", dynamodb_endpoint, *WINDOW, "--by", "hour", "--proxy", "orders-db"
    )

    assert code == 0
    session_line = next(line for line in out.splitlines() if "session_settings" in line)
    assert "2026-11-25T18:00Z (4)" in session_line
    assert "▁" * 22 + "█▅" in session_line  # 24 hours, pins in the last two (4 then 2)
    assert any(line.lstrip("│ ").startswith("all") and "│     8 │" in line for line in out.splitlines())


def test_given_would_pins_when_reported_with_kind_would_pin_then_only_they_are_ranked(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(
        capsys,
        "--table",
        table,
        "--endpoint-url",
        dynamodb_endpoint,
        *WINDOW,
        "--kind",
        "would_pin",
        "--format",
        "json",
        "--proxy",
        "orders-db",
    )

    assert code == 0
    assert [(r["reason"], r["count"]) for r in json.loads(out)] == [("prepared_statement", 7)]


def test_given_aws_endpoint_url_in_the_environment_when_reported_then_it_is_used(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", dynamodb_endpoint)

    code, out, _ = report(capsys, "--table", table, *WINDOW, "--format", "json", "--proxy", "billing-db")

    assert code == 0
    assert [r["count"] for r in json.loads(out)] == [5]


def test_given_an_empty_table_when_reported_then_it_says_so_and_json_is_an_empty_list(
    summary_table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(capsys, "--table", summary_table, "--endpoint-url", dynamodb_endpoint, "--format", "json")
    assert (code, json.loads(out)) == (0, [])

    code, out, _ = report(capsys, "--table", summary_table, "--endpoint-url", dynamodb_endpoint)
    assert code == 0
    assert "No proxies in the table yet" in out


def test_given_a_missing_table_when_reported_then_one_line_error_and_exit_2(
    dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = report(capsys, "--table", "no-such-table", "--endpoint-url", dynamodb_endpoint)

    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "table 'no-such-table' not found in region us-east-1" in err


def test_given_an_unreachable_endpoint_when_reported_then_one_line_error_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    code, _, err = report(capsys, "--table", "t-table", "--endpoint-url", endpoint)

    assert code == 2
    assert err.count("\n") == 1
    assert f"cannot reach the AWS endpoint {endpoint}" in err


@pytest.mark.usefixtures("no_aws_credentials")
def test_given_no_credentials_when_reported_then_one_line_error_and_exit_2(
    dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = report(capsys, "--table", "t-table", "--endpoint-url", dynamodb_endpoint)

    assert code == 2
    assert "no AWS credentials found" in err


def test_given_no_region_when_reported_then_one_line_error_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))

    code, _, err = report(capsys, "--table", "t-table")

    assert code == 2
    assert "no AWS region configured" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "neither a duration"),
        (["--since", "1h", "--until", "2h"], "window is empty"),
        (["--limit", "0"], "--limit"),
    ],
)
def test_given_bad_options_when_reported_then_one_line_error_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = report(capsys, "--table", "t-table", *args)

    assert code == 2
    assert message in err


def test_given_a_region_option_when_the_client_is_built_then_it_is_used(
    dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name="eu-west-1")
    name = "pinwatch-eu-only"
    from pinwatch.local.template import table_create_args

    client.create_table(**table_create_args(name))
    try:
        code, out, _ = report(
            capsys, "--table", name, "--endpoint-url", dynamodb_endpoint, "--region", "eu-west-1", "--format", "json"
        )
        assert (code, json.loads(out)) == (0, [])
        code, _, err = report(capsys, "--table", name, "--endpoint-url", dynamodb_endpoint, "--region", "us-east-1")
        assert code == 2
        assert "not found in region us-east-1" in err
    finally:
        client.delete_table(TableName=name)


def columns(line: str, bar: str = "│") -> list[str]:
    """The cells of one rendered table line, padding stripped."""
    return [cell.strip() for cell in line.strip().strip(bar).split(bar)]


def header(out: str) -> list[str]:
    return columns(next(line for line in out.splitlines() if "Reason" in line and "┃" in line), "┃")


@pytest.mark.parametrize("width", [100, 120, 140, 160])
def test_given_a_100_to_160_column_terminal_when_reported_as_a_table_then_it_fits_and_fix_gets_the_room(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))

    code, out, _ = report(
        capsys, "--table", table, "--endpoint-url", dynamodb_endpoint, *WINDOW, "--proxy", "orders-db"
    )

    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= width
    names = header(out)
    assert names[:5] == ["Reason", "Count", "Share", "Trend", "Seen (UTC)"]
    assert names[-1] == "Fix"
    bar = next(line for line in lines if line.startswith("┡"))
    fix_width = len(bar.split("╇")[-1]) - 1  # the last column, without the closing corner
    assert fix_width >= 32 + 2  # its minimum width plus the cell padding
    # Numbers and compact times stay on the reason's first line: first seen 18:00, last seen 19:00.
    first, second = (
        columns(line) for line in lines[lines.index(next(x for x in lines if "session_settings" in x)) :][:2]
    )
    assert first[1:5] == ["6", "75%", "+100%", "11-25 18:00"]
    assert second[4] == "11-25 19:00"
    assert "2026-11-25T18" not in "\n".join(lines[3:])  # only the title carries full timestamps


def test_given_a_long_digest_when_reported_as_a_wide_table_then_it_is_cut_with_an_ellipsis_but_json_keeps_it(
    summary_table: str,
    dynamodb_client: Any,
    dynamodb_endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digest = "select " + ", ".join(f"column_{i}" for i in range(40)) + " from orders where id = $1"  # noqa: S608
    tally = Tally()
    _add(tally, "orders-db", 1, "large_statement", 3, digest)
    SummaryStore(dynamodb_client, summary_table).apply_batch("long-digest", tally, NOW)
    monkeypatch.setenv("COLUMNS", "160")
    args = ["--table", summary_table, "--endpoint-url", dynamodb_endpoint, *WINDOW, "--proxy", "orders-db"]

    _, out, _ = report(capsys, *args)
    _, as_json, _ = report(capsys, *args, "--format", "json")

    digest_column = header(out).index("Example digest")
    cells = [columns(line)[digest_column] for line in out.splitlines() if line.startswith("│")]
    shown, whole = "".join("".join(cells).split()), "".join(digest.split())  # compared without the wrapping
    assert shown.endswith("…")
    assert whole.startswith(shown.removesuffix("…"))
    assert len(shown) < len(whole)
    assert json.loads(as_json)[0]["example_digest"] == digest


def test_given_a_narrow_terminal_when_reported_as_a_table_then_the_digest_sits_under_the_reason(
    table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")

    _, out, _ = report(capsys, "--table", table, "--endpoint-url", dynamodb_endpoint, *WINDOW, "--proxy", "orders-db")

    assert "Example digest" not in header(out)
    lines = out.splitlines()
    row = next(i for i, line in enumerate(lines) if "session_settings" in line)
    end = next(i for i, line in enumerate(lines) if i > row and "lock" in line)
    under_reason = " ".join(columns(line)[0] for line in lines[row + 1 : end])
    assert under_reason.strip() == "set search_path = $1"


def test_given_a_window_across_new_year_when_reported_as_a_table_then_times_carry_the_year(
    summary_table: str,
    dynamodb_client: Any,
    dynamodb_endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    new_year = 1_798_761_600_000  # 2027-01-01T00:00:00Z
    tally = Tally()
    for ts in (new_year - HOUR, new_year + HOUR):
        tally.add("orders-db", LogRecord(kind=Kind.PINNED, raw="", timestamp_ms=ts, reason="lock", reason_text="lock"))
    SummaryStore(dynamodb_client, summary_table).apply_batch("new-year", tally, new_year + 2 * HOUR)
    monkeypatch.setenv("COLUMNS", "120")

    _, out, _ = report(
        capsys,
        "--table",
        summary_table,
        "--endpoint-url",
        dynamodb_endpoint,
        "--since",
        "2026-12-31T20:00Z",
        "--until",
        "2027-01-01T04:00Z",
    )

    lines = out.splitlines()
    row = next(i for i, line in enumerate(lines) if "lock" in line)
    assert (columns(lines[row])[4], columns(lines[row + 1])[4]) == ("2026-12-31 23:00", "2027-01-01 01:00")
