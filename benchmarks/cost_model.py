"""What pinwatch costs to run: list prices in one place, and usage counted from the real functions priced with them.

Every price names its source, the date it was read, and how sure it is: the official pricing
tables are rendered client-side, so several figures come from AWS documentation copies or
secondary sources (docs/cost.md repeats this per line). us-east-1, no free tier, 30-day months.

:class:`Usage` is what :mod:`benchmarks.bench_cost` counts with botocore's ``before-call`` /
``after-call`` hooks on the clients the real handlers use, over a simulated period;
:func:`monthly_lines` scales it to a month and prices it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

MONTH_MINUTES = 30 * 24 * 60
HOURS_PER_MONTH = 730  # CloudWatch prorates custom metrics by the hour over a 730-hour month


@dataclass(frozen=True, slots=True)
class Price:
    usd: float
    unit: str
    source: str
    read_on: str
    confidence: str  # "official", "AWS doc text", "secondary", "assumed"


RESEARCH = "2026-12-02"
ORG_RESEARCH = "2026-12-06"

PRICES: dict[str, Price] = {
    "getmetricdata_metric": Price(
        0.01 / 1000,
        "metric requested by GetMetricData",
        "CloudWatch User Guide, 'Retrieve metric data (GetMetricData)', Pricing; CloudWatch pricing page "
        "free tier: GetMetricData is always charged",
        RESEARCH,
        "AWS doc text (copy) + secondary",
    ),
    "alarm_metric_month": Price(
        0.10,
        "standard-resolution alarm metric-month",
        "infracost output and c3x.dev price table (us-east-1)",
        RESEARCH,
        "secondary",
    ),
    "insights_alarm_metric_month": Price(
        0.10,
        "metric analyzed by a Metrics Insights alarm, per month",
        "unit from CloudWatch docs (billed per metric the query analyzes, usage type MetricInsightAlarmUsage); "
        "figure not found, taken equal to a standard alarm metric",
        RESEARCH,
        "assumed",
    ),
    "custom_metric_month": Price(
        0.30,
        "custom metric series-month (first 10,000), prorated by the hour",
        "CloudWatch pricing (jp page transcribed in nishinoshake/aws-rough#37)",
        RESEARCH,
        "secondary",
    ),
    "api_request": Price(
        0.01 / 1000,
        "CloudWatch API request (DescribeAlarmContributors, ...) beyond the free million",
        "CloudWatch pricing (aws-rough#37)",
        RESEARCH,
        "secondary",
    ),
    "logs_ingested_gb": Price(
        0.50, "GB ingested into CloudWatch Logs (Standard)", "c3x.dev (June 2026); infracost", RESEARCH, "secondary"
    ),
    "lambda_gb_second": Price(
        0.0000133334,
        "GB-second, arm64",
        "cloudchipr.com Lambda pricing; artillery's price table (arm64 1333340e-10)",
        RESEARCH,
        "secondary",
    ),
    "lambda_request": Price(0.20 / 1_000_000, "Lambda request", "cloudchipr.com Lambda pricing", RESEARCH, "secondary"),
    "dynamodb_wru": Price(
        0.625 / 1_000_000,
        "on-demand write request unit (a transactional write takes two per KB)",
        "airbyte.com DynamoDB pricing; other secondary sources say $1.25",
        RESEARCH,
        "secondary, conflicting",
    ),
    "dynamodb_rru": Price(
        0.125 / 1_000_000,
        "on-demand read request unit (strongly consistent 4 KB; eventually consistent: half)",
        "airbyte.com DynamoDB pricing; other secondary sources say $0.25",
        RESEARCH,
        "secondary, conflicting",
    ),
    "sns_publish": Price(0.50 / 1_000_000, "SNS publish", "SNS pricing (secondary)", RESEARCH, "secondary"),
    "contributor_insights_rule_month": Price(
        0.50,
        "Contributor Insights rule-month",
        "CloudWatch pricing page lists the feature (free tier: 1 rule, 1 million matched events); figure not found",
        RESEARCH,
        "assumed",
    ),
    "contributor_insights_event": Price(
        0.02 / 1_000_000,
        "log event matched by a Contributor Insights rule",
        "CloudWatch pricing page lists the feature; figure not found",
        RESEARCH,
        "assumed",
    ),
    "dashboard_month": Price(
        3.00,
        "dashboard-month (free for the account's first 3)",
        "CloudWatch pricing (secondary)",
        RESEARCH,
        "secondary",
    ),
    "kms_key_month": Price(
        1.00, "customer managed KMS key-month", "AWS KMS pricing (secondary)", RESEARCH, "secondary"
    ),
    "eventbridge_aws_event": Price(
        0.0,
        "AWS service event delivered to a rule (alarm contributor events)",
        "CloudWatch pricing page, free tier: 'Events: All events except custom events are included'",
        RESEARCH,
        "official",
    ),
    # Organization mode (docs/organization.md). Read on 2026-12-06.
    "kinesis_shard_hour": Price(
        0.015,
        "provisioned Kinesis shard-hour",
        "Kinesis Data Streams pricing (aws.amazon.com/kinesis/data-streams/pricing: billed per shard-hour); "
        "figure from trek10.com on-demand vs provisioned comparison (us-east-1) and c3x.dev",
        ORG_RESEARCH,
        "secondary",
    ),
    "kinesis_put_payload_unit": Price(
        0.014 / 1_000_000,
        "Kinesis PUT payload unit (each started 25 KB of a record)",
        "Kinesis pricing page: 'A PUT Payload Unit is counted in 25KB payload chunks'; "
        "$0.014 per million from trek10.com (us-east-1)",
        ORG_RESEARCH,
        "AWS doc text (copy) + secondary",
    ),
    "kinesis_on_demand_stream_hour": Price(
        0.04,
        "on-demand Kinesis stream-hour",
        "trek10.com on-demand vs provisioned comparison (us-east-1)",
        ORG_RESEARCH,
        "secondary",
    ),
    "kinesis_on_demand_gb_in": Price(
        0.08,
        "GB written to an on-demand stream (each record rounded up to 1 KB)",
        "Kinesis pricing page (records rounded up to the nearest KB); figure from trek10.com (us-east-1)",
        ORG_RESEARCH,
        "AWS doc text (copy) + secondary",
    ),
    "kinesis_on_demand_gb_out": Price(
        0.04,
        "GB read from an on-demand stream (shared-throughput consumer)",
        "trek10.com on-demand vs provisioned comparison (us-east-1)",
        ORG_RESEARCH,
        "secondary",
    ),
    "eventbridge_cross_account_event": Price(
        1.00 / 1_000_000,
        "event delivered to an event bus in another account (each 64 KB chunk)",
        "EventBridge pricing page (cross-account delivery is billed; 64 KB chunks; inter-Region data transfer "
        "extra); $1.00 per million from cloudburn.io EventBridge pricing guide (March 2026)",
        ORG_RESEARCH,
        "secondary",
    ),
    "inter_region_gb": Price(
        0.02,
        "GB sent from a member Region to the home Region (typical pair)",
        "inter-Region data transfer, billed by the source Region (awsnegotiations.com, redresscompliance.com)",
        ORG_RESEARCH,
        "secondary",
    ),
    "sts_request": Price(
        0.0,
        "STS AssumeRole request",
        "IAM User Guide, 'What is IAM?': IAM and AWS STS 'are features of your AWS account offered at no "
        "additional charge'",
        ORG_RESEARCH,
        "official",
    ),
    "cloudformation_request": Price(
        0.0,
        "CloudFormation API request (ListStackInstances)",
        "AWS CloudFormation pricing lists charges for handler operations of third-party resource types only; "
        "no charge for API reads found",
        ORG_RESEARCH,
        "assumed",
    ),
}


@dataclass
class Usage:
    """Chargeable quantities counted over ``minutes`` of simulated time."""

    minutes: int = 0
    metrics_requested: int = 0  # GetMetricData queries returning data
    insights_alarm_metrics: int = 0  # metrics analyzed, summed over per-minute evaluations
    standard_alarm_metrics: int = 0  # alarm metrics that exist all along (not per evaluation)
    metric_series_hours: int = 0  # distinct (custom series, hour) pairs published
    api_requests: int = 0  # other CloudWatch API requests
    check_invocations: int = 0
    check_gb_seconds: float = 0.0
    ingest_invocations: int = 0
    ingest_gb_seconds: float = 0.0
    rru: float = 0.0
    wru: float = 0.0
    sns_publishes: int = 0
    log_bytes: int = 0  # the functions' own log output (log lines and EMF documents)
    contributor_insights_events: int = 0
    alarm_events: int = 0  # contributor state-change events the alarm sent (free in the same account)
    rds_calls: int = 0
    rds_calls_peak_minute: int = 0

    def share(self, base: Usage, count: float) -> Usage:
        """What ``count`` units (scopes, proxies) add over ``base``, per unit: ``(self - base) / count``.

        Both must cover the same simulated minutes. Quantities measured from wall time (Lambda
        GB-seconds) can come out a little negative from noise: they are floored at zero.
        """
        if base.minutes != self.minutes:
            raise ValueError(f"usages over {self.minutes} and {base.minutes} minutes do not compare")
        out = Usage(minutes=self.minutes)
        for f in fields(self):
            if f.name not in ("minutes", "rds_calls_peak_minute"):
                setattr(out, f.name, max(0.0, (getattr(self, f.name) - getattr(base, f.name)) / count))
        return out

    def add(self, other: Usage) -> None:
        for f in fields(self):
            if f.name == "rds_calls_peak_minute":
                self.rds_calls_peak_minute = max(self.rds_calls_peak_minute, other.rds_calls_peak_minute)
            elif f.name != "minutes":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True, slots=True)
class CostLine:
    item: str
    quantity: float
    price: str  # a key of PRICES
    usd: float

    @property
    def unit(self) -> str:
        return PRICES[self.price].unit


def monthly_lines(usage: Usage) -> list[CostLine]:
    """``usage`` scaled from its simulated minutes to a 30-day month, priced line by line."""
    scale = MONTH_MINUTES / max(1, usage.minutes)
    # A series published in H of the simulated hours is billed H/730 of a month; scaled like the rest.
    series_months = usage.metric_series_hours * scale / HOURS_PER_MONTH
    insights_months = usage.insights_alarm_metrics / max(1, usage.minutes)  # average metrics analyzed per minute
    quantities: list[tuple[str, float, str]] = [
        ("GetMetricData metrics requested", usage.metrics_requested * scale, "getmetricdata_metric"),
        ("Metrics Insights alarm: metrics analyzed (month average)", insights_months, "insights_alarm_metric_month"),
        ("standard alarm metrics", usage.standard_alarm_metrics, "alarm_metric_month"),
        ("custom metric series-months (EMF)", series_months, "custom_metric_month"),
        ("CloudWatch API requests", usage.api_requests * scale, "api_request"),
        ("Lambda requests", (usage.check_invocations + usage.ingest_invocations) * scale, "lambda_request"),
        ("Lambda GB-seconds", (usage.check_gb_seconds + usage.ingest_gb_seconds) * scale, "lambda_gb_second"),
        ("DynamoDB read units", usage.rru * scale, "dynamodb_rru"),
        ("DynamoDB write units", usage.wru * scale, "dynamodb_wru"),
        ("SNS publishes", usage.sns_publishes * scale, "sns_publish"),
        ("function logs ingested (GB)", usage.log_bytes * scale / 1e9, "logs_ingested_gb"),
        (
            "Contributor Insights matched events",
            usage.contributor_insights_events * scale,
            "contributor_insights_event",
        ),
    ]
    return [CostLine(item, q, key, q * PRICES[key].usd) for item, q, key in quantities]


def total(lines: Iterable[CostLine]) -> float:
    return sum(line.usd for line in lines)


# Stack-level items that do not grow with proxies (one each per stack).
STACK_ITEMS: tuple[tuple[str, float, str], ...] = (
    ("dashboard", 1, "dashboard_month"),
    ("KMS key", 1, "kms_key_month"),
    ("Contributor Insights rule (pins by proxy and reason)", 1, "contributor_insights_rule_month"),
)


def stack_lines(standing_alarm_metrics: int) -> list[CostLine]:
    lines = [CostLine(item, q, key, q * PRICES[key].usd) for item, q, key in STACK_ITEMS]
    lines.append(
        CostLine(
            "pinwatch's own health alarms",
            standing_alarm_metrics,
            "alarm_metric_month",
            standing_alarm_metrics * PRICES["alarm_metric_month"].usd,
        )
    )
    return lines


# ------------------------------------------------------------------------------------------
# Organization mode (docs/organization.md): one central stack in the monitoring account, the member
# template in every member account and Region. What a month costs is split four ways: the central
# resources (fixed), what each member account and each member account-Region ("scope") adds, and
# what each proxy adds. The check's part is counted on the organization's real check (its StackSet
# listing, its AssumeRole calls, each member's own check): in organization mode it polls no alarm
# (pinwatch.wiring.alarm_contributors), the members' alarm events are forwarded to the central bus.

PUT_PAYLOAD_UNIT_BYTES = 25 * 1024  # "A PUT Payload Unit is counted in 25KB payload chunks" (Kinesis pricing)


def line(item: str, quantity: float, price: str) -> CostLine:
    return CostLine(item, quantity, price, quantity * PRICES[price].usd)


@dataclass(frozen=True, slots=True)
class OrgScenario:
    """An organization to price: ``accounts`` x ``regions`` member scopes, ``proxies_per_scope`` proxies in each."""

    name: str
    accounts: int
    regions: int  # member Regions per account, the home Region among them
    proxies_per_scope: int

    @property
    def scopes(self) -> int:
        return self.accounts * self.regions

    @property
    def proxies(self) -> int:
        return self.scopes * self.proxies_per_scope

    @property
    def remote_share(self) -> float:
        """Share of the proxies outside the home Region, whose log batches cross Regions to the stream."""
        return (self.regions - 1) / self.regions


@dataclass(frozen=True, slots=True)
class LogTraffic:
    """Pin-line batches per proxy-month, each as CloudWatch Logs puts it into the stream: gzip(JSON payload)."""

    batches_per_proxy_month: float
    record_bytes: int


def put_payload_units(record_bytes: int) -> int:
    return max(1, math.ceil(record_bytes / PUT_PAYLOAD_UNIT_BYTES))


@dataclass(frozen=True, slots=True)
class OrgMeasure:
    """What the organization's check was counted doing, split by what each part adds (bench_cost.simulate_org).

    ``central``: the check over one member with no proxy, less that member's share; ``per_scope``:
    what each further member account-Region adds; ``per_proxy``: what each proxy adds (the reads
    through the member role, its alerts, the members' alarms). The monitoring account's own
    calls are counted per month: ``listings_per_month`` (``ListStackInstances``) and
    ``assume_roles_per_account_month`` (``AssumeRole``, one per account per credential lifetime).
    """

    central: Usage
    per_scope: Usage
    per_proxy: Usage
    listings_per_month: float
    assume_roles_per_account_month: float


def _kept(usage: Usage) -> list[CostLine]:
    return [x for x in monthly_lines(usage) if x.quantity > 0]


def org_central_lines(measure: OrgMeasure, standing_alarm_metrics: int, shards: int) -> list[CostLine]:
    """The monitoring account's month whatever the organization's size: the stack's items, its schedule, the stream."""
    return [
        *stack_lines(standing_alarm_metrics),
        *_kept(measure.central),
        line(
            "ListStackInstances (member targets, every 15 minutes)",
            measure.listings_per_month,
            "cloudformation_request",
        ),
        line(
            "Kinesis stream shard-hours (OrgStreamShards, provisioned)", shards * HOURS_PER_MONTH, "kinesis_shard_hour"
        ),
    ]


def org_scope_lines(measure: OrgMeasure) -> list[CostLine]:
    """What one member account-Region adds to the month, before any proxy (its sweeps, the Lambda time)."""
    return _kept(measure.per_scope)


def org_account_lines(measure: OrgMeasure) -> list[CostLine]:
    """What one member account adds: the check's credentials for its read role (free)."""
    return [line("STS AssumeRole into the member read role", measure.assume_roles_per_account_month, "sts_request")]


def org_proxy_lines(traffic: LogTraffic, alarm_events_per_proxy_month: float, remote_share: float) -> list[CostLine]:
    """What the organization's delivery adds per proxy-month: the stream, the forwarded events, inter-Region bytes."""
    gb = traffic.batches_per_proxy_month * traffic.record_bytes / 1e9
    return [
        line(
            "pin-line batches into the stream (PUT payload units)",
            traffic.batches_per_proxy_month * put_payload_units(traffic.record_bytes),
            "kinesis_put_payload_unit",
        ),
        line(
            "alarm contributor events forwarded to the central bus",
            alarm_events_per_proxy_month,
            "eventbridge_cross_account_event",
        ),
        line("pin-line batches sent across Regions (GB)", gb * remote_share, "inter_region_gb"),
    ]


def kinesis_on_demand_lines(records_per_month: float, record_bytes: int) -> list[CostLine]:
    """The same stream in on-demand mode, for comparison: an hourly stream charge and per-GB in and out."""
    gb_in = records_per_month * math.ceil(record_bytes / 1024) * 1024 / 1e9
    return [
        line("on-demand stream-hours", HOURS_PER_MONTH, "kinesis_on_demand_stream_hour"),
        line("on-demand GB written (records rounded up to 1 KB)", gb_in, "kinesis_on_demand_gb_in"),
        line(
            "on-demand GB read by the event source mapping",
            records_per_month * record_bytes / 1e9,
            "kinesis_on_demand_gb_out",
        ),
    ]


@dataclass(frozen=True)
class OrgCost:
    """One scenario's month in organization mode, and the same organization with a single-account stack per scope."""

    scenario: OrgScenario
    central: list[CostLine]
    scope: list[CostLine]
    account: list[CostLine]
    proxy_check: list[CostLine]  # the organization's check, per proxy (reads through the member role, alerts)
    proxy_org: list[CostLine]  # delivery to the central stream and bus, per proxy
    stack_usd: float  # a single-account stack with no proxy
    stack_proxy_usd: float  # a single-account stack's charges per proxy-month

    @property
    def fixed_usd(self) -> float:
        return total(self.central)

    @property
    def per_scope_usd(self) -> float:
        return total(self.scope)

    @property
    def per_account_usd(self) -> float:
        return total(self.account)

    @property
    def proxy_check_usd(self) -> float:
        return total(self.proxy_check)

    @property
    def per_proxy_usd(self) -> float:
        return self.proxy_check_usd + total(self.proxy_org)

    @property
    def per_proxy_month(self) -> float:
        """Charges that grow with the organization (its accounts, scopes and proxies), per proxy: the goal's measure."""
        s = self.scenario
        grows = s.accounts * self.per_account_usd + s.scopes * self.per_scope_usd + s.proxies * self.per_proxy_usd
        return grows / s.proxies

    @property
    def month_usd(self) -> float:
        return self.fixed_usd + self.per_proxy_month * self.scenario.proxies

    @property
    def stacks_month_usd(self) -> float:
        """A single-account stack in every scope instead (a stack watches its own account and Region)."""
        s = self.scenario
        return s.scopes * self.stack_usd + s.proxies * self.stack_proxy_usd


def org_cost(
    scenario: OrgScenario,
    *,
    measure: OrgMeasure,
    standing_alarm_metrics: int,
    shards: int,
    traffic: LogTraffic,
    alarm_events_per_proxy_month: float,
    stack_usd: float,
    stack_proxy_usd: float,
) -> OrgCost:
    return OrgCost(
        scenario,
        central=org_central_lines(measure, standing_alarm_metrics, shards),
        scope=org_scope_lines(measure),
        account=org_account_lines(measure),
        proxy_check=_kept(measure.per_proxy),
        proxy_org=org_proxy_lines(traffic, alarm_events_per_proxy_month, scenario.remote_share),
        stack_usd=stack_usd,
        stack_proxy_usd=stack_proxy_usd,
    )


# ------------------------------------------------------------------------------------------
# DynamoDB request units from the requests and answers (on-demand rules, "Read/write capacity
# mode" in the DynamoDB Developer Guide: reads in 4 KB, writes in 1 KB, transactions count twice).


def attribute_size(value: Mapping[str, Any]) -> int:
    ((kind, v),) = value.items()
    if kind == "S":
        return len(str(v).encode())
    if kind == "N":
        return len(str(v)) // 2 + 1
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + item_size(v)
    if kind == "L":
        return 3 + sum(1 + attribute_size(x) for x in v)
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(x)) for x in v)
    return 8


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def read_units(operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]) -> float:
    consistent = 1.0 if params.get("ConsistentRead") else 0.5
    if operation == "Query" or operation == "Scan":
        items = parsed.get("Items", [])
        size = sum(item_size(i) for i in items)
        scanned = int(parsed.get("ScannedCount", len(items)))
        if scanned > len(items):  # filtered-out items are read (and billed) too
            size += (scanned - len(items)) * (size // len(items) if items else 100)
        return max(1, math.ceil(size / 4096)) * consistent
    if operation == "GetItem":
        return max(1, math.ceil(item_size(parsed.get("Item", {})) / 4096)) * consistent
    if operation == "TransactGetItems":
        return 2.0 * sum(max(1, math.ceil(item_size(r.get("Item", {})) / 4096)) for r in parsed.get("Responses", []))
    return 0.0


def write_units(operation: str, params: Mapping[str, Any]) -> float:
    def one(request: Mapping[str, Any]) -> int:
        body = request.get("Item") or {**request.get("Key", {}), **request.get("ExpressionAttributeValues", {})}
        return max(1, math.ceil(item_size(body) / 1024))

    if operation == "TransactWriteItems":
        return 2.0 * sum(one(next(iter(entry.values()))) for entry in params.get("TransactItems", []))
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return float(one(params))
    if operation == "BatchWriteItem":
        return float(
            sum(
                one(r.get("PutRequest") or r.get("DeleteRequest") or {})
                for rs in params["RequestItems"].values()
                for r in rs
            )
        )
    return 0.0


@dataclass
class SeriesCounter:
    """Distinct custom metric series per hour, from the EMF documents a handler printed."""

    seen: set[tuple[int, str, str, tuple[tuple[str, str], ...]]] = field(default_factory=set)

    def add_output(self, text: str, now_ms: int) -> None:
        import json

        hour = now_ms // 3_600_000
        for line in text.splitlines():
            if not line.startswith("{") or '"_aws"' not in line:
                continue
            doc = json.loads(line)
            for directive in doc["_aws"]["CloudWatchMetrics"]:
                for dims in directive["Dimensions"]:
                    key = tuple(sorted((d, str(doc.get(d))) for d in dims))
                    for metric in directive["Metrics"]:
                        self.seen.add((hour, directive["Namespace"], metric["Name"], key))

    @property
    def series_hours(self) -> int:
        return len(self.seen)

    def series(self) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
        return {(ns, name, dims) for _, ns, name, dims in self.seen}
