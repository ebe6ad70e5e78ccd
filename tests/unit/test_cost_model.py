"""The cost model: request units from requests and answers, a month from a counted period, prices with their sources."""

from __future__ import annotations

import json

import pytest
from benchmarks.bench_cost import (
    ALARM_SWEEP,
    BIG,
    COST_BEGIN,
    COST_END,
    POLL,
    SIZES,
    CostRun,
    DayResult,
    cost_block,
)
from benchmarks.common import replace_figures_block
from benchmarks.cost_model import (
    MONTH_MINUTES,
    PRICES,
    SeriesCounter,
    Usage,
    monthly_lines,
    read_units,
    total,
    write_units,
)

SMALL = {"pk": {"S": "PROXY#orders"}, "sk": {"S": "HOUR#2026-12-06T10#PIN#set"}, "count": {"N": "12"}}


def test_given_a_transaction_of_two_small_items_when_counted_then_each_write_costs_two_units() -> None:
    params = {"TransactItems": [{"Put": {"Item": SMALL}}, {"Update": {"Key": SMALL, "UpdateExpression": "ADD c :n"}}]}
    assert write_units("TransactWriteItems", params) == 4


def test_given_an_item_over_one_kilobyte_when_put_then_it_takes_two_units() -> None:
    big = {**SMALL, "blob": {"S": "x" * 1500}}
    assert write_units("PutItem", {"Item": big}) == 2


def test_given_a_query_when_counted_then_eventual_reads_cost_half_and_filtered_items_count_too() -> None:
    answer = {"Items": [SMALL], "ScannedCount": 1}
    assert read_units("Query", {}, answer) == 0.5
    assert read_units("Query", {"ConsistentRead": True}, answer) == 1
    many = {"Items": [SMALL], "ScannedCount": 100}  # 99 items read and filtered out
    assert read_units("Query", {"ConsistentRead": True}, many) > 1


def test_given_a_day_of_usage_when_priced_then_it_is_scaled_to_thirty_days() -> None:
    usage = Usage(minutes=1440, metrics_requested=10_000, check_invocations=1440)
    lines = {line.item: line for line in monthly_lines(usage)}
    assert lines["GetMetricData metrics requested"].quantity == 300_000
    assert lines["GetMetricData metrics requested"].usd == pytest.approx(3.0)
    assert lines["Lambda requests"].quantity == MONTH_MINUTES
    assert total(monthly_lines(Usage(minutes=60))) == 0


def test_given_a_series_published_in_two_hours_when_counted_then_it_is_one_series_and_two_series_hours() -> None:
    doc = {
        "_aws": {
            "CloudWatchMetrics": [
                {"Namespace": "Pinwatch", "Dimensions": [["service"]], "Metrics": [{"Name": "ChecksRun"}]}
            ]
        },
        "service": "pinwatch",
        "ChecksRun": [1.0],
    }
    counter = SeriesCounter()
    for minute in (0, 30, 61):
        counter.add_output("log line\n" + json.dumps(doc), 1_796_169_600_000 + minute * 60_000)
    assert (counter.series_hours, len(counter.series())) == (2, 1)


def test_given_every_price_when_listed_then_it_names_a_source_a_date_and_a_confidence() -> None:
    for name, price in PRICES.items():
        assert price.source, name
        assert price.read_on, name
        assert price.confidence.split(",")[0] in {"official", "AWS doc text (copy) + secondary", "secondary", "assumed"}


def test_given_a_measurement_when_written_then_the_cost_block_replaces_only_the_marked_part() -> None:
    usage = Usage(minutes=1440, metrics_requested=1000)
    days = {(d.name, n): DayResult(usage, 1.0, 0.1, max(1, n)) for d in (POLL, ALARM_SWEEP) for n in (0, *SIZES, BIG)}
    run = CostRun(days=days, per_proxy=dict.fromkeys(days, 0.123), ingest={100: 0.5}, ingest_series=10)
    block = cost_block(run, "2026-12-06")
    page = f"# Cost\n\nprose\n\n{COST_BEGIN}\nold\n{COST_END}\n\nmore prose\n"
    written = replace_figures_block(page, block, COST_BEGIN, COST_END)
    assert written.startswith("# Cost\n\nprose\n\n")
    assert written.endswith("\n\nmore prose\n")
    assert "| 100 | $0.123 | $0.123 |" in written
    assert "old" not in written
