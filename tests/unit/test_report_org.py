"""Report maths across an organization: keys grouped by account and Region, ranked per account, filtered."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pinwatch.records import HourlyCount, Kind
from pinwatch.report import (
    HOUR_COLUMNS,
    REASON_COLUMNS,
    ReportError,
    Window,
    account_reasons,
    by_place,
    check_filters,
    expand_names,
    hour_record,
    hour_rows,
    rank_reasons,
    reason_record,
    select,
    with_place,
)
from pinwatch.scope import Scope
from pinwatch.timebase import hour_bucket

NOW = 1_795_636_800_000  # 2026-11-25T20:00:00Z
HOUR = 3_600_000
WINDOW = Window(NOW - 24 * HOUR, NOW)
A_EU = Scope("111111111111", "eu-west-1").key("orders-db")
A_US = Scope("111111111111", "us-east-1").key("billing-db")
B_EU = Scope("222222222222", "eu-west-1").key("orders-db")  # the same name in another account


def hc(proxy: str, hours_ago: int, reason: str, count: int, kind: Kind = Kind.PINNED) -> HourlyCount:
    return HourlyCount(proxy=proxy, hour=hour_bucket(NOW - hours_ago * HOUR), kind=kind, reason=reason, count=count)


COUNTS = {
    A_EU: [hc(A_EU, 2, "session_settings", 6), hc(A_EU, 3, "lock", 2), hc(A_EU, 30, "session_settings", 3)],
    A_US: [hc(A_US, 1, "session_settings", 3), hc(A_US, 1, "prepared_statement", 9, Kind.WOULD_PIN)],
    B_EU: [hc(B_EU, 4, "cursor", 4)],
}


def test_given_an_accounts_proxies_when_ranked_per_account_then_their_counts_add_up_across_regions() -> None:
    rows = account_reasons("111111111111", COUNTS, WINDOW)

    assert [(r.reason.reason, r.reason.count, r.reason.share, r.reason.previous_count) for r in rows] == [
        ("session_settings", 9, 9 / 11, 3),
        ("lock", 2, 2 / 11, 0),
    ]
    assert rows[0].proxies == ((A_EU, 6), (A_US, 3))
    assert rows[1].proxies == ((A_EU, 2),)
    # The other account's proxy of the same name does not leak in.
    assert all(r.reason.reason != "cursor" for r in rows)


def test_given_a_limit_when_ranked_per_account_then_only_the_top_reasons_are_kept() -> None:
    (row,) = account_reasons("111111111111", COUNTS, WINDOW, limit=1)
    assert row.reason.reason == "session_settings"


def test_given_keys_of_several_accounts_when_grouped_then_accounts_then_regions_come_in_order_plain_names_first() -> (
    None
):
    grouped = by_place([B_EU, A_US, "legacy-db", A_EU])
    assert list(grouped) == [
        None,
        Scope("111111111111", "eu-west-1"),
        Scope("111111111111", "us-east-1"),
        Scope("222222222222", "eu-west-1"),
    ]
    assert grouped[None] == ["legacy-db"]


@pytest.mark.parametrize(
    ("accounts", "regions", "expected"),
    [
        ((), (), [A_EU, A_US, B_EU, "legacy-db"]),
        (("111111111111",), (), [A_EU, A_US]),
        ((), ("eu-west-1",), [A_EU, B_EU]),
        (("222222222222",), ("eu-west-1",), [B_EU]),
        (("222222222222",), ("us-east-1",), []),
        (("111111111111", "222222222222"), ("eu-west-1", "us-east-1"), [A_EU, A_US, B_EU]),
    ],
)
def test_given_account_and_region_filters_when_selecting_then_both_must_match_and_plain_names_never_do(
    accounts: tuple[str, ...], regions: tuple[str, ...], expected: list[str]
) -> None:
    assert select([A_EU, A_US, B_EU, "legacy-db"], accounts, regions) == expected


def test_given_a_bare_name_on_an_org_table_when_expanded_then_it_means_that_proxy_in_every_account() -> None:
    known = [A_EU, A_US, B_EU]
    assert expand_names(["orders-db"], known) == [A_EU, B_EU]
    assert expand_names([B_EU, "orders-db"], known) == [B_EU, A_EU]  # a key as given, no repeats
    # A single-account table's plain names (or a name nobody has) are kept as given.
    assert expand_names(["billing", "orders-db"], ["billing", "orders-db"]) == ["billing", "orders-db"]


@pytest.mark.parametrize(
    ("accounts", "regions", "message"),
    [
        (["11111111111"], [], "--account '11111111111' is not a 12-digit AWS account ID"),
        ([], ["eu-west"], "--proxy-region 'eu-west' is not an AWS Region code"),
    ],
)
def test_given_a_filter_that_can_never_match_when_checked_then_it_is_refused(
    accounts: list[str], regions: list[str], message: str
) -> None:
    with pytest.raises(ReportError, match=message):
        check_filters(accounts, regions)


def test_given_an_org_proxy_when_recorded_then_account_region_and_name_follow_the_key() -> None:
    (row,) = rank_reasons(B_EU, COUNTS[B_EU], WINDOW)
    record = reason_record(row)
    assert list(record)[:5] == ["proxy", "account", "region", "name", "reason"]
    assert (record["proxy"], record["account"], record["region"], record["name"]) == (
        B_EU,
        "222222222222",
        "eu-west-1",
        "orders-db",
    )
    (hour,) = hour_rows(B_EU, COUNTS[B_EU], WINDOW)
    assert {k: hour_record(hour)[k] for k in ("proxy", "account", "region", "name")} == {
        "proxy": B_EU,
        "account": "222222222222",
        "region": "eu-west-1",
        "name": "orders-db",
    }


def test_given_plain_names_when_recorded_then_the_records_and_columns_are_as_before() -> None:
    plain = [replace(h, proxy="orders-db") for h in COUNTS[A_EU]]
    records = [reason_record(r) for r in rank_reasons("orders-db", plain, WINDOW)]
    assert all(list(r) == list(REASON_COLUMNS) for r in records)
    assert with_place(REASON_COLUMNS, records) == REASON_COLUMNS
    hours = [hour_record(r) for r in hour_rows("orders-db", plain, WINDOW)]
    assert all(list(r) == list(HOUR_COLUMNS) for r in hours)


def test_given_any_org_record_when_columns_are_chosen_then_account_region_and_name_follow_proxy() -> None:
    records = [reason_record(r) for r in rank_reasons(A_EU, COUNTS[A_EU], WINDOW)]
    columns = with_place(REASON_COLUMNS, records)
    assert columns[:5] == ("proxy", "account", "region", "name", "reason")
    assert set(columns) == set(REASON_COLUMNS) | {"account", "region", "name"}
