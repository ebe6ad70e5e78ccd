"""Proxy keys across accounts and Regions (pinwatch.scope)."""

from __future__ import annotations

import pytest

from pinwatch.scope import Scope, proxy_key, split_key


def test_a_scoped_key_names_account_region_and_proxy_and_splits_back() -> None:
    scope = Scope("111111111111", "eu-west-1")
    key = scope.key("orders-db")
    assert key == "111111111111:eu-west-1:orders-db"
    assert split_key(key) == (scope, "orders-db")
    assert key.startswith(scope.prefix)


def test_equal_proxy_names_in_two_accounts_get_different_keys() -> None:
    a, b = Scope("111111111111", "us-east-1"), Scope("222222222222", "us-east-1")
    assert a.key("orders-db") != b.key("orders-db")
    assert Scope("111111111111", "eu-west-1").key("orders-db") != a.key("orders-db")


def test_a_plain_name_is_a_single_account_key() -> None:
    assert split_key("orders-db") == (None, "orders-db")
    assert proxy_key(None, "orders-db") == "orders-db"
    assert split_key("1234:us-east-1:x") == (None, "1234:us-east-1:x")  # not an account ID


@pytest.mark.parametrize(("account", "region"), [("12345678901", "us-east-1"), ("111111111111", "USEAST1")])
def test_a_scope_refuses_what_is_not_an_account_or_region(account: str, region: str) -> None:
    with pytest.raises(ValueError):
        Scope(account, region)


def test_scopes_sort_by_account_then_region() -> None:
    scopes = [
        Scope("222222222222", "us-east-1"),
        Scope("111111111111", "us-west-2"),
        Scope("111111111111", "eu-west-1"),
    ]
    assert [str(s) for s in sorted(scopes)] == [
        "111111111111/eu-west-1",
        "111111111111/us-west-2",
        "222222222222/us-east-1",
    ]
