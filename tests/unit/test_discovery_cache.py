"""Target-group settings are kept across warm runs, refreshed stalest first, within a per-run cap."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from pinwatch.discovery import RdsProxyDiscovery


class FakeRds:
    class exceptions:
        class DBProxyNotFoundFault(Exception):
            pass

        class DBProxyTargetGroupNotFoundFault(Exception):
            pass

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.pool_reads: list[str] = []
        self.max_connections = 90
        self.failing: set[str] = set()

    def get_paginator(self, _: str) -> Any:
        names = self.names

        class Paginator:
            def paginate(self) -> list[dict[str, Any]]:
                return [
                    {"DBProxies": [{"DBProxyName": n, "EngineFamily": "MYSQL", "Status": "available"} for n in names]}
                ]

        return Paginator()

    def describe_db_proxy_target_groups(self, DBProxyName: str, TargetGroupName: str) -> dict[str, Any]:
        self.pool_reads.append(DBProxyName)
        if DBProxyName in self.failing:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "DescribeDBProxyTargetGroups")
        return {
            "TargetGroups": [
                {"TargetGroupName": "default", "ConnectionPoolConfig": {"MaxConnectionsPercent": self.max_connections}}
            ]
        }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def discovery(rds: FakeRds, clock: Clock, **kwargs: Any) -> RdsProxyDiscovery:
    return RdsProxyDiscovery(rds, max_workers=1, clock=clock, **kwargs)  # type: ignore[arg-type]


def test_given_a_warm_function_when_runs_follow_within_the_ttl_then_target_groups_are_read_once() -> None:
    rds, clock = FakeRds(["a", "b"]), Clock()
    d = discovery(rds, clock, pool_ttl_s=900)
    first = d.discover()
    clock.now += 899
    second = d.discover()
    assert sorted(rds.pool_reads) == ["a", "b"]
    assert [p.pool for p in second.proxies] == [p.pool for p in first.proxies]
    assert all(p.pool is not None and p.pool.max_connections_percent == 90 for p in second.proxies)


def test_given_the_ttl_passed_when_run_then_settings_are_read_again_and_a_change_shows() -> None:
    rds, clock = FakeRds(["a"]), Clock()
    d = discovery(rds, clock, pool_ttl_s=900)
    d.discover()
    rds.max_connections = 50
    clock.now += 900
    (proxy,) = d.discover().proxies
    assert rds.pool_reads == ["a", "a"]
    assert proxy.pool is not None
    assert proxy.pool.max_connections_percent == 50


def test_given_more_due_proxies_than_the_cap_when_run_then_the_stalest_are_read_and_the_rest_follow() -> None:
    rds, clock = FakeRds([f"p{i}" for i in range(5)]), Clock()
    d = discovery(rds, clock, pool_ttl_s=900, pool_reads_per_run=2)
    first = d.discover()
    assert sorted(rds.pool_reads) == ["p0", "p1"]  # never read: all equally stale, by name
    assert [p.pool is not None for p in first.proxies] == [True, True, False, False, False]
    clock.now += 1
    d.discover()
    d.discover()
    assert sorted(rds.pool_reads) == ["p0", "p1", "p2", "p3", "p4"]


def test_given_a_failed_read_when_run_again_then_it_is_retried_not_cached() -> None:
    rds, clock = FakeRds(["a"]), Clock()
    rds.failing = {"a"}
    d = discovery(rds, clock)
    (failed,) = d.discover().proxies
    rds.failing = set()
    (read,) = d.discover().proxies
    assert failed.error is not None
    assert "Throttling" in failed.error
    assert read.error is None
    assert rds.pool_reads == ["a", "a"]
