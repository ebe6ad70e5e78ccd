"""The cost model: request units from requests and answers, a month from a counted period, prices with their sources."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from benchmarks.bench_cost import (
    ALARM_SWEEP,
    BIG,
    COST_BEGIN,
    COST_END,
    ORG_REFERENCE_PROXIES,
    ORG_SCENARIOS,
    ORG_SIM_ACCOUNTS,
    ORG_SIM_REGIONS,
    POLL,
    SIZES,
    CostRun,
    DayResult,
    Fleet,
    OrgDay,
    cost_block,
    measure_org,
    org_figures,
    org_measure,
    pin_traffic,
    simulate_org,
)
from benchmarks.common import replace_figures_block
from benchmarks.cost_model import (
    HOURS_PER_MONTH,
    MONTH_MINUTES,
    PRICES,
    LogTraffic,
    OrgCost,
    OrgMeasure,
    OrgScenario,
    SeriesCounter,
    Usage,
    monthly_lines,
    org_cost,
    put_payload_units,
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


# --------------------------------------------------------------------------------------------
# Organization mode

# What the organization's check was counted doing, split (bench_cost.org_measure): per day.
CENTRAL_DAY = Usage(minutes=1440, check_invocations=1440, check_gb_seconds=1.0, rru=1440.0)
SCOPE_DAY = Usage(minutes=1440, check_gb_seconds=0.2)
PROXY_DAY = Usage(minutes=1440, metrics_requested=900, insights_alarm_metrics=1440, rru=20.0, wru=10.0)
MEASURE = OrgMeasure(
    central=CENTRAL_DAY,
    per_scope=SCOPE_DAY,
    per_proxy=PROXY_DAY,
    listings_per_month=96 * 30,
    assume_roles_per_account_month=24 * 30,
)
TRAFFIC = LogTraffic(batches_per_proxy_month=135, record_bytes=6000)
STACK_USD = 12.0
STACK_PROXY_USD = 0.34


def _org(scenario: OrgScenario, shards: int = 1, measure: OrgMeasure = MEASURE) -> OrgCost:
    return org_cost(
        scenario,
        measure=measure,
        standing_alarm_metrics=8,
        shards=shards,
        traffic=TRAFFIC,
        alarm_events_per_proxy_month=6,
        stack_usd=STACK_USD,
        stack_proxy_usd=STACK_PROXY_USD,
    )


def test_given_two_counted_periods_when_shared_then_each_unit_gets_the_difference_and_noise_is_not_negative() -> None:
    more = Usage(minutes=60, metrics_requested=500, rru=30.0, check_gb_seconds=0.9)
    base = Usage(minutes=60, metrics_requested=100, rru=10.0, check_gb_seconds=1.0)
    share = more.share(base, 4)
    assert (share.minutes, share.metrics_requested, share.rru) == (60, 100, 5.0)
    assert share.check_gb_seconds == 0  # wall time measured a little lower: not a negative charge
    with pytest.raises(ValueError, match="do not compare"):
        more.share(Usage(minutes=30), 1)


def test_given_records_when_counted_then_each_started_25_kilobytes_is_one_put_payload_unit() -> None:
    assert [put_payload_units(n) for n in (1, 25 * 1024, 25 * 1024 + 1, 1_000_000)] == [1, 1, 2, 40]


def test_given_an_organization_when_priced_then_the_stream_and_listing_are_central_and_no_scope_polls_an_alarm() -> (
    None
):
    org = _org(OrgScenario("t", accounts=40, regions=2, proxies_per_scope=3))
    assert org.scenario.scopes == 80
    assert org.scenario.proxies == 240
    central = {x.item: x for x in org.central}
    shard_hours = central["Kinesis stream shard-hours (OrgStreamShards, provisioned)"]
    assert shard_hours.quantity == HOURS_PER_MONTH
    assert shard_hours.usd == pytest.approx(HOURS_PER_MONTH * PRICES["kinesis_shard_hour"].usd)
    assert central["ListStackInstances (member targets, every 15 minutes)"].quantity == 96 * 30
    assert central["Lambda requests"].quantity == MONTH_MINUTES  # one invocation a minute serves every scope
    # A scope adds its Lambda time only: no CloudWatch API request (the members' alarm events come by the bus).
    assert [x.item for x in org.scope] == ["Lambda GB-seconds"]
    account = {x.item: x for x in org.account}
    assert account["STS AssumeRole into the member read role"].quantity == 24 * 30
    assert org.per_account_usd == 0
    assert org.proxy_check_usd == pytest.approx(total(monthly_lines(PROXY_DAY)))


def test_given_more_shards_when_priced_then_only_the_fixed_part_grows() -> None:
    scenario = OrgScenario("t", accounts=40, regions=2, proxies_per_scope=3)
    one, four = _org(scenario, shards=1), _org(scenario, shards=4)
    assert four.fixed_usd - one.fixed_usd == pytest.approx(3 * HOURS_PER_MONTH * PRICES["kinesis_shard_hour"].usd)
    assert four.per_proxy_month == one.per_proxy_month


def test_given_fewer_proxies_per_account_region_when_priced_then_each_proxy_carries_more_of_its_scope() -> None:
    dense = _org(OrgScenario("dense", accounts=40, regions=1, proxies_per_scope=10))
    sparse = _org(OrgScenario("sparse", accounts=40, regions=1, proxies_per_scope=1))
    assert sparse.per_proxy_month - dense.per_proxy_month == pytest.approx(sparse.per_scope_usd * (1 - 1 / 10))
    assert sparse.per_proxy_month > sparse.per_proxy_usd > sparse.proxy_check_usd


def test_given_one_region_when_priced_then_no_log_batch_crosses_regions() -> None:
    home_only = _org(OrgScenario("t", accounts=5, regions=1, proxies_per_scope=2))
    two = _org(OrgScenario("t", accounts=5, regions=2, proxies_per_scope=2))
    crossing = "pin-line batches sent across Regions (GB)"
    assert {x.item: x.quantity for x in home_only.proxy_org}[crossing] == 0
    assert {x.item: x.quantity for x in two.proxy_org}[crossing] == pytest.approx(135 * 6000 / 1e9 / 2)


def test_given_an_organization_when_compared_then_a_stack_per_scope_pays_the_fixed_part_in_every_scope() -> None:
    org = _org(OrgScenario("t", accounts=40, regions=2, proxies_per_scope=3))
    assert org.stacks_month_usd == pytest.approx(80 * STACK_USD + 240 * STACK_PROXY_USD)
    assert org.month_usd == pytest.approx(org.fixed_usd + 80 * org.per_scope_usd + 240 * org.per_proxy_usd)
    assert org.month_usd < org.stacks_month_usd


def test_given_the_simulated_fleet_when_its_pinning_is_delivered_then_a_batch_a_pinning_minute_in_one_record() -> None:
    fleet = Fleet.of(100)
    traffic = pin_traffic(fleet, lines_per_batch=100)
    # Every tenth proxy pins 45 minutes a day (the fleet of benchmarks/bench_cost.py).
    assert traffic.batches_per_proxy_month == pytest.approx(10 * 45 * 30 / 100)
    assert 0 < traffic.record_bytes < 25 * 1024  # gzip of 100 pin lines: one PUT payload unit
    assert pin_traffic(fleet, lines_per_batch=1000).record_bytes > traffic.record_bytes


def _org_days() -> dict[str, OrgDay]:
    one = Usage(minutes=1440, check_invocations=1440, check_gb_seconds=1.1, rru=1440.0)
    scopes = Usage(minutes=1440, check_invocations=1440, check_gb_seconds=1.4, rru=1440.0)
    fleet = Usage(
        minutes=1440, check_invocations=1480, check_gb_seconds=3.4, rru=1640.0, metrics_requested=9000, alarm_events=40
    )
    calls = Counter({"cloudformation.ListStackInstances": 96, "sts.AssumeRole": 48})
    return {
        "one_scope": OrgDay(one, accounts=1, scopes=1, proxies=0, calls=Counter({"sts.AssumeRole": 24})),
        "scopes": OrgDay(scopes, accounts=2, scopes=4, proxies=0, calls=calls),
        "fleet": OrgDay(fleet, accounts=2, scopes=4, proxies=100, calls=calls),
    }


def test_given_counted_days_when_split_then_the_parts_add_up_to_each_day() -> None:
    days = _org_days()
    measure = org_measure(days)
    assert measure.per_scope.check_gb_seconds == pytest.approx(0.1)  # (1.4 - 1.1) over 3 more scopes
    assert measure.central.check_gb_seconds == pytest.approx(1.0)
    assert measure.central.check_invocations == 1440
    assert measure.per_proxy.metrics_requested == 90
    assert measure.per_proxy.rru == pytest.approx(2.0)
    assert measure.listings_per_month == 96 * 30
    assert measure.assume_roles_per_account_month == 24 * 30


def _org_run() -> CostRun:
    usage = Usage(minutes=1440, metrics_requested=1000, api_requests=1344, alarm_events=40)
    days = {(ALARM_SWEEP.name, n): DayResult(usage, 1.0, 0.1, max(1, n)) for n in (0, ORG_REFERENCE_PROXIES)}
    run = CostRun(days=days, per_proxy=dict.fromkeys(days, 0.3), org_days=_org_days())
    measure_org(run)
    return run


def test_given_a_measurement_when_organizations_are_priced_then_every_scenario_has_its_figures() -> None:
    run = _org_run()
    assert set(run.org) == {s.name for s in ORG_SCENARIOS}
    names = {f.name: f.value for f in org_figures(run)}
    for scenario in ORG_SCENARIOS:
        assert names[f"org_cost_usd_per_proxy_month_{scenario.name}"] == run.org[scenario.name].per_proxy_month
    assert names["org_cost_usd_fixed_month"] > 0
    assert names["org_check_alarm_contributor_reads_per_day"] == 0
    assert names["org_check_list_stack_instances_per_day"] == 96
    assert names["org_check_assume_role_per_account_day"] == 24
    # The forwarded contributor events are the organization's counted ones, per proxy over a month.
    events = {x.item: x.quantity for x in next(iter(run.org.values())).proxy_org}
    assert events["alarm contributor events forwarded to the central bus"] == pytest.approx(40 * 30 / 100)


def test_given_a_measurement_when_written_then_the_cost_block_has_the_organization_tables() -> None:
    run = _org_run()
    run.days.update({(d.name, n): run.days[(ALARM_SWEEP.name, 0)] for d in (POLL, ALARM_SWEEP) for n in (*SIZES, BIG)})
    run.per_proxy.update(dict.fromkeys(run.days, 0.3))
    block = cost_block(run, "2026-12-06")
    headline = run.org[ORG_SCENARIOS[0].name]
    assert "**Organization mode**" in block
    assert f"| 40 accounts x 2 Regions x 3 proxies | 80 | 240 | ${headline.fixed_usd:,.2f} |" in block
    assert "Kinesis stream shard-hours" in block
    assert "| each account | STS AssumeRole" in block
    assert "on-demand stream-hours" in block


def test_given_the_organizations_check_when_counted_then_it_lists_targets_assumes_roles_and_reads_no_alarm() -> None:
    # The real organization's check over 70 simulated minutes: 2 accounts x 2 Regions, one proxy each,
    # whose pinning starts at minute 61 and reaches the check as each member alarm's forwarded event.
    day = simulate_org(ORG_SIM_ACCOUNTS, ORG_SIM_REGIONS, 1, 70)
    assert day.listings == 5  # minutes 0, 15, 30, 45, 60: the targets are cached 15 minutes
    assert day.assumed_roles == 2 * 2  # each account at its first sweep, again before its credentials' hour ends
    assert day.alarm_reads == 0
    assert day.usage.api_requests == 0
    assert day.usage.alarm_events == 4  # one contributor ALARM per member alarm
    assert day.usage.check_invocations == 70 + 4
    assert day.usage.metrics_requested > 0
