"""Report maths: time options, windows, ranking with share and trend, hourly series and renderers."""

from __future__ import annotations

import csv
import io
import json

import pytest

from pinwatch.records import HourlyCount, Kind
from pinwatch.report import (
    REASON_COLUMNS,
    ReasonRow,
    ReportError,
    Window,
    hour_rows,
    iso,
    parse_time,
    rank_reasons,
    reason_record,
    series,
    sparkline,
    to_csv,
    to_json,
    to_markdown,
)
from pinwatch.timebase import hour_bucket

NOW = 1_795_636_800_000  # 2026-11-25T20:00:00Z
HOUR = 3_600_000


def hc(
    offset_hours: int, reason: str | None, count: int, kind: Kind = Kind.PINNED, digest: str | None = None
) -> HourlyCount:
    start = NOW + offset_hours * HOUR
    return HourlyCount(
        proxy="orders-db",
        hour=hour_bucket(start),
        kind=kind,
        reason=reason,
        count=count,
        first_seen_ms=start + 10,
        last_seen_ms=start + 20,
        example_digest=digest,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("24h", NOW - 24 * HOUR),
        ("90m", NOW - 90 * 60_000),
        ("7d", NOW - 7 * 24 * HOUR),
        ("2w", NOW - 14 * 24 * HOUR),
        ("1.5h", NOW - 90 * 60_000),
        ("2026-11-25T10:00Z", NOW - 10 * HOUR),
        ("2026-11-25T10:00:00+00:00", NOW - 10 * HOUR),
        ("2026-11-25T11:00+01:00", NOW - 10 * HOUR),
        ("2026-11-25T10:00", NOW - 10 * HOUR),
        ("2026-11-25", NOW - 20 * HOUR),
    ],
)
def test_given_a_time_option_when_parsed_then_durations_count_back_from_now_and_iso_is_utc_by_default(
    text: str, expected: int
) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "24", "h", "-3h", "2026-13-01"])
def test_given_an_unreadable_time_option_when_parsed_then_the_error_shows_what_is_accepted(text: str) -> None:
    with pytest.raises(ReportError, match="duration"):
        parse_time(text, NOW)


def test_given_a_window_when_asked_then_previous_has_equal_length_and_hours_cover_the_partial_hours() -> None:
    window = Window(NOW - 2 * HOUR - 30 * 60_000, NOW)

    assert window.previous == Window(NOW - 5 * HOUR, NOW - 2 * HOUR - 30 * 60_000)
    assert window.hours == [hour_bucket(NOW - 3 * HOUR), hour_bucket(NOW - 2 * HOUR), hour_bucket(NOW - HOUR)]
    assert window.holds(hour_bucket(NOW - 3 * HOUR))
    assert not window.holds(hour_bucket(NOW))


def test_given_until_not_after_since_when_a_window_is_built_then_it_is_refused() -> None:
    with pytest.raises(ReportError, match="empty"):
        Window(NOW, NOW)


def test_given_counts_in_two_windows_when_ranked_then_share_and_trend_compare_with_the_previous_window() -> None:
    window = Window(NOW - 2 * HOUR, NOW)
    counts = [
        hc(-1, "session_settings", 6, digest="set names $1"),
        hc(-2, "session_settings", 2, digest="set search_path = $1"),
        hc(-1, "lock", 2),
        hc(-3, "session_settings", 4),  # previous window
        hc(-4, "lock", 2),
        hc(-3, "cursor", 5),  # stopped
        hc(-1, "prepared_statement", 9, kind=Kind.WOULD_PIN),
        hc(-1, None, 3, kind=Kind.UNPARSED),
        hc(-9, "lock", 100),  # older than both windows
    ]

    rows = rank_reasons("orders-db", counts, window, hint=lambda reason, digest: f"fix {reason} {digest}")

    assert [(r.reason, r.count, r.previous_count, r.trend) for r in rows] == [
        ("session_settings", 8, 4, "+100%"),
        ("lock", 2, 2, "="),
        ("cursor", 0, 5, "stopped"),
    ]
    assert [round(r.share, 2) for r in rows] == [0.8, 0.2, 0.0]
    assert rows[0].example_digest == "set names $1"
    assert rows[0].hint == "fix session_settings set names $1"
    assert (rows[0].first_seen_ms, rows[0].last_seen_ms) == (NOW - 2 * HOUR + 10, NOW - HOUR + 20)


def test_given_would_pins_when_ranked_by_that_kind_then_only_they_count() -> None:
    window = Window(NOW - HOUR, NOW)
    counts = [hc(-1, "prepared_statement", 9, kind=Kind.WOULD_PIN), hc(-1, "lock", 1)]

    rows = rank_reasons("orders-db", counts, window, kind=Kind.WOULD_PIN)

    assert [(r.reason, r.count, r.share, r.trend) for r in rows] == [("prepared_statement", 9, 1.0, "new")]


def test_given_a_limit_when_ranked_then_the_top_reasons_are_kept() -> None:
    window = Window(NOW - HOUR, NOW)
    counts = [hc(-1, r, n) for r, n in [("a", 1), ("b", 3), ("c", 2)]]

    assert [r.reason for r in rank_reasons("p", counts, window, limit=2)] == ["b", "c"]


def test_given_hourly_counts_when_turned_into_a_series_then_hours_are_zero_filled_oldest_first() -> None:
    window = Window(NOW - 4 * HOUR, NOW)
    counts = [hc(-4, "lock", 1), hc(-1, "lock", 3), hc(-2, "cursor", 7), hc(-9, "lock", 50)]

    rows = hour_rows("orders-db", counts, window)

    assert [(r.hour, r.reason, r.count) for r in rows] == [
        (hour_bucket(NOW - 4 * HOUR), "lock", 1),
        (hour_bucket(NOW - 2 * HOUR), "cursor", 7),
        (hour_bucket(NOW - HOUR), "lock", 3),
    ]
    assert series(rows, window) == {"cursor": [0, 0, 7, 0], "lock": [1, 0, 0, 3]}


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], ""), ([0, 0], "▁▁"), ([0, 1, 8], "▁▂█"), ([5, 5], "██"), ([1, 100], "▂█")],
)
def test_given_values_when_drawn_then_zero_is_the_floor_any_pin_shows_and_the_peak_is_full(
    values: list[int], expected: str
) -> None:
    assert sparkline(values) == expected


def test_given_a_long_series_when_drawn_then_hours_are_summed_to_fit_the_width() -> None:
    line = sparkline([1] * 96 + [0] * 72, max_width=48)

    assert len(line) == 42  # 168 hours at 4 hours per character
    assert line == "█" * 24 + "▁" * 18


def _row(**overrides: object) -> ReasonRow:
    fields: dict[str, object] = {
        "proxy": "orders-db",
        "reason": "session_settings",
        "count": 3,
        "share": 0.75,
        "previous_count": 2,
        "first_seen_ms": NOW,
        "last_seen_ms": NOW + 1000,
        "example_digest": 'set names $1 | "x"',
        "hint": "move it\nto InitQuery",
    }
    fields.update(overrides)
    return ReasonRow(**fields)  # type: ignore[arg-type]


def test_given_a_row_when_rendered_as_json_then_it_has_proxy_reason_count_and_the_other_columns() -> None:
    [record] = json.loads(to_json([reason_record(_row())]))

    assert record["proxy"] == "orders-db"
    assert record["reason"] == "session_settings"
    assert record["count"] == 3
    assert record["change_pct"] == 50.0
    assert record["first_seen"] == iso(NOW) == "2026-11-25T20:00:00Z"
    assert set(record) == set(REASON_COLUMNS)


def test_given_rows_when_rendered_as_csv_then_a_csv_reader_gets_them_back() -> None:
    text = to_csv([reason_record(_row()), reason_record(_row(reason="lock", previous_count=0))], REASON_COLUMNS)

    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["reason"], r["count"], r["change_pct"], r["trend"]) for r in rows] == [
        ("session_settings", "3", "50.0", "+50%"),
        ("lock", "3", "", "new"),
    ]
    assert rows[0]["example_digest"] == 'set names $1 | "x"'


def test_given_cells_with_pipes_and_newlines_when_rendered_as_markdown_then_the_table_stays_intact() -> None:
    text = to_markdown([reason_record(_row())], ("reason", "example_digest", "hint"))

    lines = text.splitlines()
    assert lines[0] == "| reason | example_digest | hint |"
    assert lines[2] == '| session_settings | set names $1 \\| "x" | move it to InitQuery |'
    assert len(lines) == 3
