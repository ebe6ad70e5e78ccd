"""Query building, batching, NextToken continuation and series assembly of the metrics reader; discovery paging.

Paths the moto-based integration tests cannot reach (CloudWatch continuation tokens, paged
proxy listings) are driven here through botocore's Stubber on real clients.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from pinwatch.discovery import RdsProxyDiscovery
from pinwatch.metrics import (
    BORROW_LATENCY,
    CLIENT_CONNECTIONS,
    DATABASE_CONNECTIONS,
    IN_TRANSACTION,
    MAX_ALLOWED,
    MAX_QUERIES_PER_CALL,
    METRICS,
    MINUTE_MS,
    PINNED,
    SETUP_FAILED,
    CloudWatchMetricsReader,
    build_queries,
    calls_needed,
    metrics_for,
    window_end_ms,
)
from pinwatch.records import EngineFamily

END_MS = 1_764_100_020_000  # a minute boundary
WINDOW = 5


def ts(minute: int) -> datetime:
    """The start of window minute ``minute`` (0 = oldest)."""
    return datetime.fromtimestamp((END_MS - (WINDOW - minute) * MINUTE_MS) / 1000, tz=UTC)


def test_given_a_time_inside_a_minute_when_the_window_ends_then_it_ends_at_that_minutes_start() -> None:
    assert window_end_ms(END_MS + 59_999) == END_MS
    assert window_end_ms(END_MS) == END_MS


def test_given_many_proxies_when_queries_are_built_then_ids_are_valid_unique_and_map_back() -> None:
    proxies = [f"proxy-{i}" for i in range(120)]
    queries, index = build_queries(proxies)
    assert len(queries) == 120 * len(METRICS)
    ids = [q["Id"] for q in queries]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z][a-zA-Z0-9_]*", i) for i in ids)
    for query in queries:
        stat = query["MetricStat"]
        proxy, metric = index[query["Id"]]
        assert stat["Metric"] == {
            "Namespace": "AWS/RDS",
            "MetricName": metric,
            "Dimensions": [{"Name": "ProxyName", "Value": proxy}],
        }
        assert stat["Period"] == 60
        assert "Unit" not in stat
        assert stat["Stat"] == ("Average" if metric == BORROW_LATENCY else "Sum")


@pytest.mark.parametrize(("proxies", "calls"), [(1, 1), (71, 1), (72, 2), (100, 2), (500, 7), (1000, 14)])
def test_given_a_proxy_count_when_calls_are_counted_then_they_are_ceil_queries_over_500(
    proxies: int, calls: int
) -> None:
    assert calls_needed(proxies) == calls == -(-proxies * len(METRICS) // MAX_QUERIES_PER_CALL)


def _cloudwatch() -> Any:
    return boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _result(qid: str, points: dict[int, float]) -> dict[str, Any]:
    return {"Id": qid, "Timestamps": [ts(m) for m in points], "Values": list(points.values()), "StatusCode": "Complete"}


def test_given_a_continuation_token_when_reading_then_the_reader_follows_it_and_merges_the_pages() -> None:
    client = _cloudwatch()
    queries, index = build_queries(["orders"])
    ids = {metric: qid for qid, (_, metric) in index.items()}
    start = datetime.fromtimestamp((END_MS - WINDOW * MINUTE_MS) / 1000, tz=UTC)
    end = datetime.fromtimestamp(END_MS / 1000, tz=UTC)
    expected = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end, "ScanBy": "TimestampAscending"}
    with Stubber(client) as stub:
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": [_result(ids[DATABASE_CONNECTIONS], {0: 10, 1: 11})], "NextToken": "page-2"},
            expected,
        )
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": [_result(ids[DATABASE_CONNECTIONS], {2: 12, 3: 13})]},
            {**expected, "NextToken": "page-2"},
        )
        series = CloudWatchMetricsReader(client).read(["orders"], END_MS + 30_000, WINDOW)["orders"]
        stub.assert_no_pending_responses()
    assert series.values(DATABASE_CONNECTIONS) == (10, 11, 12, 13, None)
    assert series.latest(DATABASE_CONNECTIONS) == 13


def test_given_gaps_when_series_are_assembled_then_pinned_is_zero_only_in_minutes_the_proxy_published() -> None:
    client = _cloudwatch()
    _, index = build_queries(["orders"])
    ids = {metric: qid for qid, (_, metric) in index.items()}
    with Stubber(client) as stub:
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    _result(ids[CLIENT_CONNECTIONS], {0: 50, 1: 50, 3: 50}),
                    _result(ids[DATABASE_CONNECTIONS], {0: 20, 1: 20, 3: 20}),
                    _result(ids[PINNED], {1: 4}),
                    _result(ids[IN_TRANSACTION], {1: 2}),
                ]
            },
            {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY, "ScanBy": ANY},
        )
        series = CloudWatchMetricsReader(client).read(["orders"], END_MS, WINDOW)["orders"]
    # Minute 2 and 4: nothing published at all (not yet, or no instance) stays missing.
    assert series.values(PINNED) == (0.0, 4.0, None, 0.0, None)
    assert series.values(IN_TRANSACTION) == (None, 2.0, None, None, None)
    assert series.latest_index() == 3


def _read(results: dict[str, dict[int, float]], end_ms: int = END_MS, **reader: Any) -> Any:
    client = _cloudwatch()
    sent: list[list[str]] = []
    client.meta.events.register(
        "before-parameter-build.cloudwatch.GetMetricData",
        lambda params, **_: sent.append([q["MetricStat"]["Metric"]["MetricName"] for q in params["MetricDataQueries"]]),
    )
    _, index = build_queries(["orders"], metrics_for(end_ms, reader.get("periodic_every_minutes", 5)))
    ids = {metric: qid for qid, (_, metric) in index.items()}
    with Stubber(client) as stub:
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": [_result(ids[m], values) for m, values in results.items()]},
            {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY, "ScanBy": ANY},
        )
        series = CloudWatchMetricsReader(client, **reader).read(["orders"], end_ms, WINDOW)["orders"]
    return series, sent[0]


def test_given_the_newest_minute_lacks_some_instances_when_assembled_then_it_is_left_out_as_partial() -> None:
    # Three instances published minutes 0-2; only one had published minute 3 when the check read it.
    series, _ = _read(
        {
            DATABASE_CONNECTIONS: {0: 60, 1: 60, 2: 60, 3: 20},
            MAX_ALLOWED: {0: 300, 1: 300, 2: 300, 3: 100},
            PINNED: {0: 30, 1: 30, 2: 30, 3: 10},
        }
    )
    assert series.values(DATABASE_CONNECTIONS) == (60, 60, 60, None, None)
    assert series.values(PINNED) == (30, 30, 30, None, None)
    assert series.latest_index() == 2
    assert series.partial_minute_ms == int(ts(3).timestamp() * 1000)


def test_given_a_limit_that_really_dropped_when_the_next_minute_agrees_then_the_newest_minute_is_kept() -> None:
    series, _ = _read({DATABASE_CONNECTIONS: {0: 60, 1: 60, 2: 40, 3: 40}, MAX_ALLOWED: {0: 300, 1: 300, 2: 0, 3: 0}})
    assert series.latest(MAX_ALLOWED) == 0
    assert series.partial_minute_ms is None


@pytest.mark.parametrize(
    ("end_ms", "every", "read"), [(END_MS, 5, False), (END_MS + 3 * MINUTE_MS, 5, True), (END_MS, 1, True)]
)
def test_given_the_setup_failure_metric_when_reading_then_it_is_requested_only_every_nth_minute(
    end_ms: int, every: int, read: bool
) -> None:
    series, sent = _read({SETUP_FAILED: {4: 2}} if read else {}, end_ms, periodic_every_minutes=every)
    assert (SETUP_FAILED in sent, SETUP_FAILED in series.series) == (read, read)
    assert len(sent) == len(METRICS) + read
    if read:
        assert 2 in series.values(SETUP_FAILED)


def test_given_many_queries_when_reading_then_each_call_carries_at_most_the_limit() -> None:
    client = _cloudwatch()
    sizes: list[int] = []
    client.meta.events.register(
        "before-parameter-build.cloudwatch.GetMetricData",
        lambda params, **_: sizes.append(len(params["MetricDataQueries"])),
    )
    proxies = [f"p{i}" for i in range(80)]  # 560 queries
    with Stubber(client) as stub:
        for _ in range(2):
            stub.add_response("get_metric_data", {"MetricDataResults": []})
        result = CloudWatchMetricsReader(client).read(proxies, END_MS, WINDOW)
    assert sizes == [500, 60]
    assert set(result) == set(proxies)
    assert all(m.latest_index() is None for m in result.values())


def test_given_a_paged_proxy_listing_when_discovering_then_every_page_is_read() -> None:
    client = boto3.client("rds", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")

    def proxy(name: str, status: str = "available") -> dict[str, Any]:
        return {"DBProxyName": name, "EngineFamily": "MYSQL", "Status": status, "DebugLogging": False}

    with Stubber(client) as stub:
        stub.add_response(
            "describe_db_proxies", {"DBProxies": [proxy("b"), proxy("c", "modifying")], "Marker": "m2"}, {}
        )
        stub.add_response("describe_db_proxies", {"DBProxies": [proxy("a")]}, {"Marker": "m2"})
        for name in ("a", "b"):  # target groups only for available proxies
            stub.add_response(
                "describe_db_proxy_target_groups",
                {
                    "TargetGroups": [
                        {
                            "TargetGroupName": "default",
                            "ConnectionPoolConfig": {"MaxConnectionsPercent": 90, "InitQuery": "SET time_zone='UTC'"},
                        }
                    ]
                },
                {"DBProxyName": name, "TargetGroupName": "default"},
            )
        found = RdsProxyDiscovery(client, max_workers=1).discover()
        stub.assert_no_pending_responses()
    assert [(p.name, p.status, p.engine) for p in found.proxies] == [
        ("a", "available", EngineFamily.MYSQL),
        ("b", "available", EngineFamily.MYSQL),
        ("c", "modifying", EngineFamily.MYSQL),
    ]
    assert found.proxies[0].pool is not None
    assert (found.proxies[0].pool.max_connections_percent, found.proxies[0].pool.init_query) == (
        90,
        "SET time_zone='UTC'",
    )
    assert found.proxies[2].pool is None
