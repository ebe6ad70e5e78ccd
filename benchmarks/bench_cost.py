"""Cost per proxy-month, time to detect, RDS calls and wall time at fleet scale: the real handlers over a simulated day.

The check handler (``functions/connection_check/app.py``) runs at the real cadence on a simulated
clock — the schedule every minute, and for the alarm design the contributor events of the
Metrics Insights alarm, evaluated each minute by :mod:`pinwatch.local.alarms` from the series
that were put. RDS, DynamoDB and SNS are moto (in process). The ``AWS/RDS`` metrics are held in
memory and answer ``GetMetricData`` through a botocore ``before-call`` hook on the real client
(moto scans every stored datapoint per query, which would measure moto, not the check). Every
chargeable call is counted on the real boto3 clients with botocore's ``before-call`` /
``after-call`` hooks: metrics requested, request units (from the requests and answers), SNS
publishes, RDS calls per simulated minute; Lambda invocations and GB-seconds (wall time of each
invocation in process, at the function's 256 MB: an upper bound, moto being slower than AWS);
custom metric series and log bytes from what the handler printed. :mod:`benchmarks.cost_model`
prices them.

Fleet: every proxy busy and healthy (400 clients on 80 connections); every tenth proxy has a
45-minute pinning incident at some point of the day; proxy 0's starts at minute 61, one minute
after a sweep, the worst case for a sweep-only design. ``check_detect_minutes`` is from the start
of the incident's first minute to the first alert about it (CloudWatch's own publishing delay,
about 2 minutes by third-party reports, comes on top in both designs).

With the alarm, 1, 10 and 100 proxies run the whole day; 1,000 proxies run :data:`BIG_MINUTES`
(eight sweep periods) and are extrapolated to the month by the same counting, an extrapolation
checked at 100 proxies against that size's full day (``cost_extrapolation_error_pct_100_proxies``).
The design before, every proxy every minute, is the same every minute: it runs until half an hour
after the detection incident starts.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from benchmarks.common import HANDLER_ENV, Figure
from benchmarks.cost_model import (
    MONTH_MINUTES,
    CostLine,
    LogTraffic,
    OrgCost,
    OrgMeasure,
    OrgScenario,
    SeriesCounter,
    Usage,
    kinesis_on_demand_lines,
    monthly_lines,
    org_cost,
    put_payload_units,
    read_units,
    stack_lines,
    total,
    write_units,
)
from pinwatch import metrics as pinwatch_metrics
from pinwatch.org import MAX_SCOPE_WORKERS
from pinwatch.timebase import MINUTE_MS

REGION = "us-east-1"
T0_MS = 1_796_169_600_000  # a midnight UTC: the simulated day's first minute
DAY = 1440
SHORT_MINUTES = 30
BIG_MINUTES = 4 * SHORT_MINUTES
SIZES = (1, 10, 100)
BIG = 1000
INCIDENT_MINUTES = 45
DETECT_PROXY_START = 61
LAMBDA_GB = 0.25  # MemorySize 256 in the template's Globals
CHECK_DELAY_MS = 5_000  # EventBridge runs a schedule a few seconds into its minute
HEALTH_ALARM_METRICS = 6  # the stack's own alarms on its functions and delivery (template.yaml)


# --------------------------------------------------------------------------------------------
# The fleet's AWS/RDS metrics, in memory


def _healthy(metric: str, minute: int) -> float | None:
    return {
        pinwatch_metrics.CLIENT_CONNECTIONS: 400.0,
        pinwatch_metrics.DATABASE_CONNECTIONS: 80.0 + minute % 3,
        pinwatch_metrics.IN_TRANSACTION: 10.0,
        pinwatch_metrics.BORROWED: 50.0,
        pinwatch_metrics.MAX_ALLOWED: 300.0,
        pinwatch_metrics.BORROW_LATENCY: 400.0,
    }.get(metric)  # nothing pinned: the pinned gauge publishes nothing


def _pinning(metric: str, minute: int, since: int) -> float | None:
    k = minute - since
    if metric == pinwatch_metrics.PINNED:
        return 30.0 + 4.0 * k
    if metric in (pinwatch_metrics.DATABASE_CONNECTIONS, pinwatch_metrics.BORROWED):
        return 90.0 + 4.0 * k
    return _healthy(metric, minute)


@dataclass
class Fleet:
    proxies: list[str]
    incidents: dict[str, int]  # proxy -> first minute of its pinning incident

    def value(self, proxy: str, metric: str, minute: int) -> float | None:
        start = self.incidents.get(proxy)
        if start is not None and start <= minute < start + INCIDENT_MINUTES:
            return _pinning(metric, minute, start)
        return _healthy(metric, minute)

    @classmethod
    def of(cls, count: int) -> Fleet:
        """Incidents spread over the day, so a shorter run sees its share of them."""
        names = [f"fleet-{i:04d}" for i in range(count)]
        incidents = {}
        for i in range(0, count, 10):
            incidents[names[i]] = DETECT_PROXY_START if i == 0 else 90 + (i * 37) % (DAY - 150)
        return cls(names, incidents)


@dataclass
class MetricStore:
    """What CloudWatch holds for ``AWS/RDS`` by ProxyName: filled minute by minute as the day goes."""

    fleet: Fleet
    published_until: int = 0  # minutes [0, published_until) are published

    def _minute_ms(self, minute: int) -> int:
        return T0_MS + minute * MINUTE_MS

    def series(self, metric: str, start_ms: int, end_ms: int) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        first = max(0, (start_ms - T0_MS) // MINUTE_MS)
        last = min(self.published_until, -(-(end_ms - T0_MS) // MINUTE_MS))
        for proxy in self.fleet.proxies:
            points = {}
            for minute in range(first, last):
                value = self.fleet.value(proxy, metric, minute)
                if value is not None:
                    points[self._minute_ms(minute)] = value
            if points:
                out[proxy] = points
        return out

    def get_metric_data(self, params: Mapping[str, Any]) -> dict[str, Any]:
        start_ms = int(params["StartTime"].timestamp() * 1000)
        end_ms = int(params["EndTime"].timestamp() * 1000)
        results = []
        for query in params["MetricDataQueries"]:
            metric = query["MetricStat"]["Metric"]
            proxy = next(d["Value"] for d in metric["Dimensions"] if d["Name"] == "ProxyName")
            first = max(0, (start_ms - T0_MS) // MINUTE_MS)
            last = min(self.published_until, -(-(end_ms - T0_MS) // MINUTE_MS))
            stamps, values = [], []
            for minute in range(first, last):
                value = self.fleet.value(proxy, metric["MetricName"], minute)
                if value is not None:
                    stamps.append(datetime.fromtimestamp(self._minute_ms(minute) / 1000, tz=UTC))
                    values.append(value)
            results.append({"Id": query["Id"], "Label": metric["MetricName"], "Timestamps": stamps, "Values": values})
        return {"MetricDataResults": results, "Messages": [], "ResponseMetadata": {"HTTPStatusCode": 200}}


# --------------------------------------------------------------------------------------------
# Counting chargeable calls on the real clients


@dataclass
class Meter:
    """Counts what the clients it is attached to are billed for, from botocore's call hooks."""

    minute: int = 0
    metrics_requested: int = 0
    rru: float = 0.0
    wru: float = 0.0
    sns: list[tuple[int, str]] = field(default_factory=list)  # (minute, message)
    rds_by_minute: Counter[int] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)

    def attach(self, client: Any, metric_store: MetricStore | None = None) -> Any:
        service = client.meta.service_model.service_id.hyphenize()
        events = client.meta.events

        def keep_params(params: Any, context: Any, **_: Any) -> None:
            context["metered_params"] = params  # the typed parameters, before serialisation

        def before(model: Any, context: Any, **_: Any) -> Any:
            params = context.get("metered_params", {})
            self.calls[f"{service}.{model.name}"] += 1
            if service == "rds":
                self.rds_by_minute[self.minute] += 1
            elif service == "dynamodb":
                self.wru += write_units(model.name, params)
            elif model.name == "Publish":
                self.sns.append((self.minute, str(params.get("Message", ""))))
            elif model.name == "GetMetricData":
                self.metrics_requested += sum(1 for q in params["MetricDataQueries"] if q.get("ReturnData", True))
                if metric_store is not None:
                    from botocore.awsrequest import AWSResponse

                    return AWSResponse("", 200, {}, None), metric_store.get_metric_data(params)
            return None

        def after(model: Any, parsed: Any, context: Any, **_: Any) -> None:
            if service == "dynamodb":
                self.rru += read_units(model.name, context.get("metered_params", {}), parsed)

        events.register(f"provide-client-params.{service}", keep_params)
        events.register(f"before-call.{service}", before)
        events.register(f"after-call.{service}", after)
        return client


def _metered(meter: Meter, client: Any, metric_store: MetricStore | None = None) -> Any:
    return meter.attach(client, metric_store)


# --------------------------------------------------------------------------------------------
# The simulated stack


@contextlib.contextmanager
def _emulated_aws(proxy_limit: int) -> Iterator[None]:
    from moto import mock_aws

    saved = {k: os.environ.get(k) for k in ("MOTO_RDS_PROXY_LIMIT",)}
    os.environ["MOTO_RDS_PROXY_LIMIT"] = str(proxy_limit)
    try:
        with mock_aws():
            yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _create_proxies(
    names: list[str], client: Callable[..., Any] | None = None, region: str = REGION, account: str = "123456789012"
) -> None:
    """``names`` as proxies in ``region``, made with ``client(service, region_name=...)`` (default: boto3's)."""
    import boto3

    make = client or boto3.client
    ec2 = make("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=f"{region}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    secret = make("secretsmanager", region_name=region).create_secret(Name="fleet-db", SecretString="{}")["ARN"]
    rds = make("rds", region_name=region)
    for name in names:
        rds.create_db_proxy(
            DBProxyName=name,
            EngineFamily="POSTGRESQL",
            Auth=[{"AuthScheme": "SECRETS", "SecretArn": secret}],
            RoleArn=f"arn:aws:iam::{account}:role/fleet",
            VpcSubnetIds=subnets,
        )


@dataclass(frozen=True)
class Design:
    name: str
    sweep_minutes: int
    alarm: bool


POLL = Design("poll", sweep_minutes=1, alarm=False)
ALARM_SWEEP = Design("alarm", sweep_minutes=15, alarm=True)
SWEEP_ONLY = Design("sweep", sweep_minutes=15, alarm=False)


@dataclass
class DayResult:
    usage: Usage
    detect_minutes: float | None
    max_wall_s: float
    proxies: int


def _captured(app: ModuleType) -> Any:
    @contextlib.contextmanager
    def capture() -> Iterator[io.StringIO]:
        buffer = io.StringIO()
        handler = app.logger.registered_handler
        previous = handler.stream
        stdlib_logger = logging.getLogger(app.logger.name)
        propagate = stdlib_logger.propagate
        handler.stream = buffer
        stdlib_logger.propagate = False
        try:
            with contextlib.redirect_stdout(buffer):
                yield buffer
        finally:
            handler.stream = previous
            stdlib_logger.propagate = propagate

    return capture


class _Runner:
    """Invokes the check handler at simulated times and counts what each invocation costs."""

    def __init__(
        self, app: ModuleType, check: Any, meter: Meter, sim_now_s: list[float], contributors: Callable[[], Any]
    ) -> None:
        from pinwatch.local.lambda_harness import schedule_event

        self.app = app
        self.check = check
        self.meter = meter
        self.sim_now_s = sim_now_s
        self.contributors = contributors
        self.capture = _captured(app)
        self.series = SeriesCounter()
        self.schedule = schedule_event()
        self.log_bytes = 0
        self.alarm_events = 0
        self.invocations = 0
        self.gb_seconds = 0.0
        self.max_wall = 0.0

    def invoke(self, event: dict[str, Any], now_ms: int) -> None:
        from pinwatch.local.lambda_harness import check_context

        self.sim_now_s[0] = now_ms / 1000
        with self.capture() as out:
            start = time.perf_counter()
            with contextlib.suppress(self.app.CheckFailed):
                self.app.handle(event, check_context(), check=self.check, now_ms=now_ms, contributors=self.contributors)
            wall = time.perf_counter() - start
        text = out.getvalue()
        self.series.add_output(text, now_ms)
        self.log_bytes += len(text.encode())
        self.invocations += 1
        self.gb_seconds += max(0.001, round(wall, 3)) * LAMBDA_GB
        self.max_wall = max(self.max_wall, wall)

    def usage(self, minutes: int, *, insights_alarm_metrics: int, api_requests: int) -> Usage:
        meter = self.meter
        return Usage(
            minutes=minutes,
            metrics_requested=meter.metrics_requested,
            insights_alarm_metrics=insights_alarm_metrics,
            metric_series_hours=self.series.series_hours,
            api_requests=api_requests,
            alarm_events=self.alarm_events,
            check_invocations=self.invocations,
            check_gb_seconds=self.gb_seconds,
            rru=meter.rru,
            wru=meter.wru,
            sns_publishes=len(meter.sns),
            log_bytes=self.log_bytes,
            rds_calls=sum(meter.rds_by_minute.values()),
            rds_calls_peak_minute=max(meter.rds_by_minute.values(), default=0),
        )


def simulate(design: Design, count: int, minutes: int) -> DayResult:
    """The check over ``minutes`` simulated minutes of a ``count``-proxy fleet."""
    import boto3

    from pinwatch import wiring
    from pinwatch.alerts.secrets import CachedSecretProvider
    from pinwatch.config import CheckConfig
    from pinwatch.local.alarms import MetricsInsightsAlarm
    from pinwatch.local.lambda_harness import CONNECTION_CHECK_APP, load_handler
    from pinwatch.local.template import table_create_args

    fleet = Fleet.of(count)
    store = MetricStore(fleet)
    meter = Meter()
    sim_now_s = [T0_MS / 1000]
    with _emulated_aws(max(count * 2, 200)):
        _create_proxies(fleet.proxies)
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(**table_create_args("pinwatch-fleet"))
        topic = boto3.client("sns", region_name=REGION).create_topic(Name="pinwatch-fleet")["TopicArn"]
        env = {
            **HANDLER_ENV,
            "SUMMARY_TABLE_NAME": "pinwatch-fleet",
            "ALERT_TOPIC_ARN": topic,
            "SWEEP_MINUTES": str(design.sweep_minutes),
            "CONTRIBUTOR_ALARMS": "pinwatch-pinned" if design.alarm else "",
        }
        app = load_handler(CONNECTION_CHECK_APP, env)
        config = CheckConfig.from_env(env)
        cw = _metered(meter, boto3.client("cloudwatch", region_name=REGION), store)
        rds = _metered(meter, boto3.client("rds", region_name=REGION))
        mddb = _metered(meter, boto3.client("dynamodb", region_name=REGION))
        sns = _metered(meter, boto3.client("sns", region_name=REGION))
        dispatcher = wiring.build_dispatcher(config, mddb, sns, CachedSecretProvider())
        check = wiring.build_connection_check(
            config,
            rds_client=rds,
            cloudwatch_client=cw,
            dynamodb_client=mddb,
            dispatcher=dispatcher,
            clock=lambda: sim_now_s[0],
        )
        alarm = MetricsInsightsAlarm("pinwatch-pinned", store.series) if design.alarm else None
        contributor_calls = [0]

        def contributors() -> frozenset[str]:
            contributor_calls[0] += 1  # DescribeAlarmContributors, as the deployed function calls it
            return alarm.in_alarm() if alarm is not None else frozenset()

        runner = _Runner(app, check, meter, sim_now_s, contributors if design.alarm else frozenset)
        for minute in range(minutes):
            meter.minute = minute
            store.published_until = minute  # the minute before this one is complete
            now_ms = T0_MS + minute * MINUTE_MS + CHECK_DELAY_MS
            if alarm is not None:
                for event in alarm.evaluate(now_ms):
                    runner.alarm_events += 1
                    runner.invoke(event, now_ms)
            runner.invoke(runner.schedule, now_ms)

        detect: float | None = None
        if fleet.proxies:
            detect_proxy = fleet.proxies[0]
            start = fleet.incidents[detect_proxy]
            alerted = [m for m, message in meter.sns if detect_proxy in message and m >= start]
            detect = ((alerted[0] - start) * MINUTE_MS + CHECK_DELAY_MS) / MINUTE_MS if alerted else None
        usage = runner.usage(
            minutes,
            # Billed on the metrics the query analyzes. Counted as one per proxy every minute, not
            # only the series with data (what the emulator sees): the conservative reading.
            insights_alarm_metrics=max(alarm.metrics_analyzed, count * minutes) if alarm is not None else 0,
            api_requests=contributor_calls[0] if design.alarm else 0,
        )
        return DayResult(usage, detect, runner.max_wall, count)


def per_proxy_month(result: DayResult, stack: DayResult) -> float:
    """Monthly cost of what grows with the fleet: this fleet's counted charges less the empty stack's, per proxy."""
    return (total(monthly_lines(result.usage)) - total(monthly_lines(stack.usage))) / result.proxies


# --------------------------------------------------------------------------------------------
# Ingest: cost per million pin lines against the CloudWatch Logs ingestion of the same lines

INGEST_BATCH_LINES = (10, 100, 1000)
INGEST_HEADLINE_LINES = 100
LOG_EVENT_OVERHEAD_BYTES = 26  # CloudWatch Logs meters each event's message plus 26 bytes
PIN_COUNTS_LINE = '"message":"Pin counts"'  # the ingest's lines the Contributor Insights rule matches


def ingest_ratio(lines_per_batch: int, batches: int = 40, proxies: int = 8) -> tuple[float, Usage, int]:
    """(ingest cost / log ingestion cost, counted usage, distinct metric series) for batches of ``lines_per_batch``."""
    import boto3
    from tests.payloads import log_events, subscription_event

    from benchmarks.cost_model import PRICES
    from pinwatch.local.lambda_harness import PIN_INGEST_APP, LambdaContext, load_handler
    from pinwatch.local.template import table_create_args
    from pinwatch.store.summary import SummaryStore

    meter = Meter()
    with _emulated_aws(200):
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(**table_create_args("pinwatch-ingest"))
        env = {**HANDLER_ENV, "SUMMARY_TABLE_NAME": "pinwatch-ingest"}
        app = load_handler(PIN_INGEST_APP, env)
        store = SummaryStore(_metered(meter, boto3.client("dynamodb", region_name=REGION)), "pinwatch-ingest")
        capture = _captured(app)
        series = SeriesCounter()
        usage = Usage(minutes=batches)
        line_bytes = 0
        for b in range(batches):
            proxy = f"fleet-{b % proxies:04d}"
            start_ms = T0_MS + b * MINUTE_MS
            events = log_events(lines_per_batch, start_ms, MINUTE_MS, seed=b)
            line_bytes += sum(len(e["message"].encode()) + LOG_EVENT_OVERHEAD_BYTES for e in events)
            event = subscription_event(events, log_group=f"/aws/rds/proxy/{proxy}", log_stream=f"s-{b}")
            with capture() as out:
                start = time.perf_counter()
                app.handle(event, LambdaContext(), store=store, now_ms=start_ms + MINUTE_MS)
                wall = time.perf_counter() - start
            text = out.getvalue()
            series.add_output(text, start_ms)
            usage.log_bytes += len(text.encode())
            usage.contributor_insights_events += text.count(PIN_COUNTS_LINE)
            usage.ingest_invocations += 1
            usage.ingest_gb_seconds += max(0.001, round(wall, 3)) * LAMBDA_GB
        usage.wru = meter.wru
        usage.rru = meter.rru
        usage.metric_series_hours = series.series_hours
        cost = (
            usage.ingest_invocations * PRICES["lambda_request"].usd
            + usage.ingest_gb_seconds * PRICES["lambda_gb_second"].usd
            + usage.wru * PRICES["dynamodb_wru"].usd
            + usage.rru * PRICES["dynamodb_rru"].usd
            + usage.log_bytes / 1e9 * PRICES["logs_ingested_gb"].usd
            + usage.contributor_insights_events * PRICES["contributor_insights_event"].usd
        )
        logs_cost = line_bytes / 1e9 * PRICES["logs_ingested_gb"].usd
        return cost / logs_cost, usage, len(series.series())


# --------------------------------------------------------------------------------------------
# Organization mode: the central stack, each member account-Region, each proxy (docs/organization.md)

# Organizations to price, from the organization's check counted over a simulated day (simulate_org):
# what the central part, each member account-Region and each proxy add to the month.
ORG_SCENARIOS = (
    OrgScenario("40_accounts", accounts=40, regions=2, proxies_per_scope=3),
    OrgScenario("40_accounts_1_proxy", accounts=40, regions=1, proxies_per_scope=1),
    OrgScenario("200_accounts", accounts=200, regions=3, proxies_per_scope=5),
)
ORG_HEADLINE = ORG_SCENARIOS[0]
ORG_STREAM_SHARDS = 1  # OrgStreamShards' default (template.yaml)
ORG_REFERENCE_PROXIES = 100  # the single-account fleet a stack per account-Region is compared with
# The simulated organization: two member accounts in two Regions (the home Region first), with
# ORG_SIM_PROXIES_PER_SCOPE proxies in each member account-Region.
ORG_SIM_ACCOUNTS = ("111111111111", "222222222222")
ORG_SIM_REGIONS = (REGION, "eu-west-1")
ORG_SIM_PROXIES_PER_SCOPE = 25
ORG_STACK_SET = "pinwatch-members"
# The central stack's own alarms in organization mode: the single-account ones, plus the stream
# function's errors and iterator age (template.yaml, Condition OrgMode).
ORG_HEALTH_ALARM_METRICS = HEALTH_ALARM_METRICS + 2


@dataclass
class OrgDay:
    """The organization's check over a simulated period: its usage and the monitoring account's own calls."""

    usage: Usage
    accounts: int
    scopes: int
    proxies: int
    calls: Counter[str]  # "<service>.<Operation>" -> calls, on every metered client

    @property
    def listings(self) -> int:
        return self.calls["cloudformation.ListStackInstances"]

    @property
    def assumed_roles(self) -> int:
        return self.calls["sts.AssumeRole"]

    @property
    def alarm_reads(self) -> int:
        return self.calls["cloudwatch.DescribeAlarmContributors"]


def _account_clients(account: str) -> Callable[..., Any]:
    """Clients in a member account as its administrator (moto maps an assumed role's credentials to its account)."""
    import boto3

    from pinwatch.local.sts_shim import ORGANIZATION_ACCESS_ROLE

    given = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{ORGANIZATION_ACCESS_ROLE}", RoleSessionName="pinwatch-bench"
    )["Credentials"]

    def make(service: str, **settings: Any) -> Any:
        return boto3.client(
            service,
            aws_access_key_id=given["AccessKeyId"],
            aws_secret_access_key=given["SecretAccessKey"],
            aws_session_token=given["SessionToken"],
            **settings,
        )

    return make


def _simulated_expiry(sts: Any, sim_now_s: list[float]) -> Any:
    """``AssumeRole`` answers credentials for an hour of simulated time (moto's run an hour of real time).

    One hour is AssumeRole's default ``DurationSeconds`` (STS API Reference, AssumeRole).
    """

    def expire(parsed: Any, **_: Any) -> None:
        if "Credentials" in parsed:
            parsed["Credentials"]["Expiration"] = datetime.fromtimestamp(sim_now_s[0] + 3600, tz=UTC)

    sts.meta.events.register("after-call.sts.AssumeRole", expire)
    return sts


def simulate_org(accounts: tuple[str, ...], regions: tuple[str, ...], proxies_per_scope: int, minutes: int) -> OrgDay:
    """The organization's check (``ORG_MEMBER_STACK_SET`` set) over ``minutes`` simulated minutes.

    The real wiring (:func:`pinwatch.wiring.org_check`): the member StackSet's stack instances
    listed with ``ListStackInstances``, each member read through its read role (``AssumeRole``),
    one scoped check per member account-Region. Triggers as deployed: the schedule every minute,
    and each member's Metrics Insights alarm's contributor events, forwarded to the central bus.
    The credentials' clock runs with the simulated one, so they are renewed as often as in a day.
    """
    import boto3

    from pinwatch import wiring
    from pinwatch.alerts.secrets import CachedSecretProvider
    from pinwatch.config import CheckConfig
    from pinwatch.local.alarms import MetricsInsightsAlarm
    from pinwatch.local.lambda_harness import CONNECTION_CHECK_APP, load_handler
    from pinwatch.local.org import MEMBER_ALARM, member_template
    from pinwatch.local.template import table_create_args
    from pinwatch.members import MemberSessions
    from pinwatch.scope import Scope

    scopes = [Scope(account, region) for account in accounts for region in regions]
    fleet = Fleet.of(proxies_per_scope)
    store = MetricStore(fleet)
    meter = Meter()
    sim_now_s = [T0_MS / 1000]
    with _emulated_aws(max(proxies_per_scope * 2, 200)):
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack_set(
            StackSetName=ORG_STACK_SET,
            TemplateBody=member_template(),
            Capabilities=["CAPABILITY_NAMED_IAM"],
            Parameters=[{"ParameterKey": "HomeRegion", "ParameterValue": regions[0]}],
        )
        for region in regions:
            cloudformation.create_stack_instances(StackSetName=ORG_STACK_SET, Accounts=list(accounts), Regions=[region])
        for account in accounts:
            make = _account_clients(account)
            for region in regions:
                if fleet.proxies:
                    _create_proxies(fleet.proxies, make, region, account)
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(**table_create_args("pinwatch-org"))
        topic = boto3.client("sns", region_name=REGION).create_topic(Name="pinwatch-org")["TopicArn"]
        env = {
            **HANDLER_ENV,
            "SUMMARY_TABLE_NAME": "pinwatch-org",
            "ALERT_TOPIC_ARN": topic,
            "SWEEP_MINUTES": str(ALARM_SWEEP.sweep_minutes),
            "CONTRIBUTOR_ALARMS": "pinwatch-pinned-connections",  # as the template sets it; unread in org mode
            "ORG_MEMBER_STACK_SET": ORG_STACK_SET,
            "ORG_STACK_SET_CALL_AS": "SELF",
        }
        app = load_handler(CONNECTION_CHECK_APP, env)
        config = CheckConfig.from_env(env)

        def central(service: str) -> Any:
            return _metered(meter, boto3.client(service, region_name=REGION))

        def member(service: str, **settings: Any) -> Any:
            return _metered(meter, boto3.client(service, **settings), store if service == "cloudwatch" else None)

        sessions = MemberSessions(
            _simulated_expiry(central("sts"), sim_now_s),
            config.org_member_role_name,
            member,
            clock=lambda: sim_now_s[0],
        )
        dispatcher = wiring.build_dispatcher(config, central("dynamodb"), central("sns"), CachedSecretProvider())
        check = wiring.org_check(config, central, dispatcher=dispatcher, sessions=sessions, clock=lambda: sim_now_s[0])
        alarms = [
            MetricsInsightsAlarm(MEMBER_ALARM, store.series, region=scope.region, account=scope.account)
            for scope in scopes
        ]
        runner = _Runner(app, check, meter, sim_now_s, wiring.alarm_contributors(config, central))
        for minute in range(minutes):
            meter.minute = minute
            store.published_until = minute
            now_ms = T0_MS + minute * MINUTE_MS + CHECK_DELAY_MS
            for alarm in alarms:
                for event in alarm.evaluate(now_ms):
                    runner.alarm_events += 1
                    runner.invoke(event, now_ms)
            runner.invoke(runner.schedule, now_ms)
        usage = runner.usage(
            minutes,
            insights_alarm_metrics=sum(max(a.metrics_analyzed, proxies_per_scope * minutes) for a in alarms),
            api_requests=sum(
                n
                for call, n in meter.calls.items()
                if call.startswith("cloudwatch.") and not call.endswith(".GetMetricData")
            ),
        )
        return OrgDay(usage, len(accounts), len(scopes), len(scopes) * proxies_per_scope, Counter(meter.calls))


def pin_traffic(fleet: Fleet, lines_per_batch: int = INGEST_HEADLINE_LINES) -> LogTraffic:
    """The simulated fleet's pinning as subscription deliveries: one batch of ``lines_per_batch`` per pinning minute.

    The record is what the destination puts into the stream: the gzip of the subscription payload
    (CloudWatch Logs UG, "Real-time processing of log data with subscriptions").
    """
    import gzip
    import json

    from tests.payloads import log_events, payload

    pinning_minutes = sum(min(INCIDENT_MINUTES, DAY - start) for start in fleet.incidents.values())
    events = log_events(lines_per_batch, T0_MS, MINUTE_MS, seed=11)
    body = payload(events, log_group="/aws/rds/proxy/fleet-0000", log_stream="proxy-fleet-0000-1")
    body |= {"owner": "111111111111", "subscriptionFilters": ["pinwatch-eu-west-1"]}
    record = gzip.compress(json.dumps(body).encode())
    # The fleet's incidents happen once a simulated day: a month has MONTH_MINUTES / DAY of them.
    return LogTraffic(pinning_minutes * MONTH_MINUTES / DAY / len(fleet.proxies), len(record))


# The organization's check is counted over three simulated days: one member account-Region with no
# proxy (the central part and one scope), every simulated account-Region with no proxy (what each
# further scope adds), and the same with the fleet (what each proxy adds).
ORG_DAYS = {
    "one_scope": (ORG_SIM_ACCOUNTS[:1], ORG_SIM_REGIONS[:1], 0),
    "scopes": (ORG_SIM_ACCOUNTS, ORG_SIM_REGIONS, 0),
    "fleet": (ORG_SIM_ACCOUNTS, ORG_SIM_REGIONS, ORG_SIM_PROXIES_PER_SCOPE),
}


def simulate_org_days(minutes: int = DAY) -> dict[str, OrgDay]:
    # A short run first, so no measured day carries the imports and first calls in its Lambda time.
    simulate_org(*ORG_DAYS["fleet"], minutes=5)
    return {name: simulate_org(*shape, minutes=minutes) for name, shape in ORG_DAYS.items()}


def org_measure(days: Mapping[str, OrgDay]) -> OrgMeasure:
    """The counted days split into the central part, each further account-Region, each proxy."""
    one, scopes, fleet = days["one_scope"], days["scopes"], days["fleet"]
    per_scope = scopes.usage.share(one.usage, scopes.scopes - one.scopes)
    scale = MONTH_MINUTES / scopes.usage.minutes
    return OrgMeasure(
        central=one.usage.share(per_scope, 1),
        per_scope=per_scope,
        per_proxy=fleet.usage.share(scopes.usage, fleet.proxies),
        listings_per_month=scopes.listings * scale,
        assume_roles_per_account_month=scopes.assumed_roles * scale / scopes.accounts,
    )


def measure_org(run: CostRun) -> None:
    """Price every scenario from the organization's counted days; a single-account stack per scope to compare."""
    fleet = run.org_days["fleet"]
    events_per_proxy_month = fleet.usage.alarm_events * MONTH_MINUTES / fleet.usage.minutes / fleet.proxies
    traffic = pin_traffic(Fleet.of(ORG_REFERENCE_PROXIES))
    run.org_traffic = traffic
    run.org_measure = org_measure(run.org_days)
    stack = run.days[(ALARM_SWEEP.name, 0)].usage
    for scenario in ORG_SCENARIOS:
        run.org[scenario.name] = org_cost(
            scenario,
            measure=run.org_measure,
            standing_alarm_metrics=ORG_HEALTH_ALARM_METRICS,
            shards=ORG_STREAM_SHARDS,
            traffic=traffic,
            alarm_events_per_proxy_month=events_per_proxy_month,
            stack_usd=total(stack_lines(HEALTH_ALARM_METRICS)) + total(monthly_lines(stack)),
            stack_proxy_usd=run.per_proxy[(ALARM_SWEEP.name, ORG_REFERENCE_PROXIES)],
        )
    records = traffic.batches_per_proxy_month * ORG_HEADLINE.proxies
    run.org_kinesis_on_demand = kinesis_on_demand_lines(records, traffic.record_bytes)


# --------------------------------------------------------------------------------------------


@dataclass
class CostRun:
    """Everything the figures and docs/cost.md's generated table are made of."""

    days: dict[tuple[str, int], DayResult] = field(default_factory=dict)
    per_proxy: dict[tuple[str, int], float] = field(default_factory=dict)
    extrapolation_error_pct: float = 0.0
    ingest: dict[int, float] = field(default_factory=dict)
    ingest_series: int = 0
    stack_fixed_usd: float = 0.0
    org_days: dict[str, OrgDay] = field(default_factory=dict)
    org_measure: OrgMeasure | None = None
    org: dict[str, OrgCost] = field(default_factory=dict)
    org_traffic: LogTraffic | None = None
    org_kinesis_on_demand: list[CostLine] = field(default_factory=list)


def measure(designs: tuple[Design, ...] = (POLL, ALARM_SWEEP), sizes: tuple[int, ...] = SIZES) -> CostRun:
    run = CostRun()
    for design in designs:
        # The poll design reads every proxy every minute, the same each minute: a run through the
        # detection incident counts it.
        minutes = DAY if design is not POLL else DETECT_PROXY_START + SHORT_MINUTES
        stack = simulate(design, 0, minutes)
        run.days[(design.name, 0)] = stack
        for count in sizes:
            day = simulate(design, count, minutes)
            run.days[(design.name, count)] = day
            run.per_proxy[(design.name, count)] = per_proxy_month(day, stack)
    # 1,000 proxies: a short run at the real cadence, extrapolated; the same extrapolation at 100
    # proxies is compared with that size's full day.
    stack = run.days[(ALARM_SWEEP.name, 0)]
    big = simulate(ALARM_SWEEP, BIG, BIG_MINUTES)
    run.days[(ALARM_SWEEP.name, BIG)] = big
    run.per_proxy[(ALARM_SWEEP.name, BIG)] = per_proxy_month(big, stack)
    short100 = simulate(ALARM_SWEEP, 100, BIG_MINUTES)
    full100 = run.per_proxy[(ALARM_SWEEP.name, 100)]
    run.extrapolation_error_pct = 100 * (per_proxy_month(short100, stack) - full100) / full100
    for lines in INGEST_BATCH_LINES:
        ratio, _, series = ingest_ratio(lines)
        run.ingest[lines] = ratio
        run.ingest_series = series
    run.stack_fixed_usd = total(stack_lines(HEALTH_ALARM_METRICS)) + total(monthly_lines(stack.usage))
    if (ALARM_SWEEP.name, ORG_REFERENCE_PROXIES) in run.days:
        run.org_days = simulate_org_days()
        measure_org(run)
    return run


# The last full measurement, for ``python -m benchmarks --write-cost-docs docs/cost.md``.
LAST: CostRun | None = None
COST_BEGIN = "<!-- cost:begin -->"
COST_END = "<!-- cost:end -->"


def run() -> list[Figure]:
    global LAST
    result = measure()
    LAST = result
    figures = [
        Figure(
            f"cost_usd_per_proxy_month_{count}_proxies",
            result.per_proxy[(ALARM_SWEEP.name, count)],
            f"alarm + {ALARM_SWEEP.sweep_minutes}-min sweep: monthly charges that grow with the fleet, per proxy"
            + (" (extrapolated from a 2-hour run)" if count == BIG else ""),
            digits=3,
        )
        for count in (*SIZES, BIG)
    ]
    figures += [
        Figure(
            f"cost_poll_usd_per_proxy_month_{count}_proxies",
            result.per_proxy[(POLL.name, count)],
            "for comparison: every proxy read every minute (the design before)",
            digits=3,
        )
        for count in SIZES
    ]
    figures.append(
        Figure(
            "cost_extrapolation_error_pct_100_proxies",
            result.extrapolation_error_pct,
            "2-hour run extrapolated vs the full simulated day, 100 proxies",
        )
    )
    figures.append(
        Figure(
            "cost_usd_stack_month",
            result.stack_fixed_usd,
            "the stack with no proxy: dashboard, key, rule, alarms, schedule",
        )
    )
    figures.append(
        Figure(
            "ingest_cost_vs_log_ingestion",
            result.ingest[INGEST_HEADLINE_LINES],
            f"ingest cost / CloudWatch Logs ingestion of the same pin lines, {INGEST_HEADLINE_LINES} lines per batch",
        )
    )
    figures += [
        Figure(f"ingest_cost_vs_log_ingestion_{lines}_lines", result.ingest[lines], f"{lines} lines per batch")
        for lines in INGEST_BATCH_LINES
        if lines != INGEST_HEADLINE_LINES
    ]
    figures.append(
        Figure(
            "ingest_metric_series_8_proxies",
            result.ingest_series,
            "custom metric series the ingest publishes for 8 pinning proxies",
        )
    )
    figures += org_figures(result)
    alarm_day = result.days[(ALARM_SWEEP.name, 100)]
    poll_day = result.days[(POLL.name, 100)]
    figures.append(
        Figure(
            "check_detect_minutes",
            alarm_day.detect_minutes or float("nan"),
            "incident start to first alert, alarm design",
        )
    )
    figures.append(
        Figure("check_detect_minutes_poll", poll_day.detect_minutes or float("nan"), "same, every proxy every minute")
    )
    big = result.days[(ALARM_SWEEP.name, BIG)]
    figures.append(
        Figure(
            "check_rds_calls_per_minute_1000_proxies",
            big.usage.rds_calls_peak_minute,
            "RDS API calls in the busiest simulated minute, 1,000 proxies (refill: ~720 per minute)",
        )
    )
    figures.append(
        Figure(
            "check_wall_s_1000_proxies",
            big.max_wall_s,
            "longest check invocation, 1,000 proxies, moto in process (timeout 50 s)",
        )
    )
    return figures


def org_figures(result: CostRun) -> list[Figure]:
    if not result.org:
        return []
    headline = result.org[ORG_HEADLINE.name]
    figures = [
        Figure(
            "org_cost_usd_fixed_month",
            headline.fixed_usd,
            f"organization mode, central stack: items, schedule, {ORG_STREAM_SHARDS}-shard stream",
            digits=3,
        ),
        Figure(
            "org_cost_usd_per_account_region_month",
            headline.per_scope_usd,
            "each member account-Region: its sweeps (DescribeDBProxies, no charge) and their Lambda time",
            digits=3,
        ),
        Figure(
            "org_check_usd_per_proxy_month",
            headline.proxy_check_usd,
            "the organization's check per proxy: reads through the member role, alerts, the member's alarm",
            digits=3,
        ),
    ]
    days = result.org_days
    if days:
        scopes = days["scopes"]
        per_day = DAY / scopes.usage.minutes
        figures += [
            Figure(
                "org_check_alarm_contributor_reads_per_day",
                days["fleet"].alarm_reads * per_day,
                "DescribeAlarmContributors calls of the organization's check (members' events come by the bus)",
            ),
            Figure(
                "org_check_list_stack_instances_per_day",
                scopes.listings * per_day,
                "ListStackInstances calls a day (the member targets, cached 15 minutes)",
            ),
            Figure(
                "org_check_assume_role_per_account_day",
                scopes.assumed_roles * per_day / scopes.accounts,
                "AssumeRole calls a day per member account (credentials renewed 5 minutes before their hour)",
            ),
        ]
    for name, org in result.org.items():
        s = org.scenario
        figures.append(
            Figure(
                f"org_cost_usd_per_proxy_month_{name}",
                org.per_proxy_month,
                f"{s.accounts} accounts x {s.regions} Regions, {s.proxies:,} proxies: charges that grow with "
                "the organization, per proxy (goal <= $0.50)",
                digits=3,
            )
        )
        figures.append(
            Figure(
                f"org_vs_stacks_cost_ratio_{name}",
                org.month_usd / org.stacks_month_usd,
                f"organization mode's month / a single-account stack in each of the {s.scopes:,} account-Regions",
            )
        )
    return figures


def month_table(result: CostRun, design: str = ALARM_SWEEP.name, count: int = 100) -> list[tuple[str, float, float]]:
    """(item, monthly quantity, USD) of one simulated fleet, for the docs' generated table."""
    return [(line.item, line.quantity, line.usd) for line in monthly_lines(result.days[(design, count)].usage)]


def cost_block(result: CostRun, measured_on: str) -> str:
    """docs/cost.md's generated part: this run's counted usage priced by :mod:`benchmarks.cost_model`."""
    from benchmarks.cost_model import PRICES

    def usd(value: float) -> str:
        return f"${value:,.3f}" if value < 10 else f"${value:,.2f}"

    out = [
        COST_BEGIN,
        "<!-- generated by `python -m benchmarks cost --write-cost-docs docs/cost.md`: edit outside the markers -->",
        f"Measured {measured_on} by `make bench` (benchmarks/bench_cost.py): the real check handler over a simulated",
        "day on moto, chargeable calls counted on the real boto3 clients, priced with benchmarks/cost_model.py.",
        f"1,000 proxies: a {BIG_MINUTES}-minute run at the real cadence, extrapolated to the month by the same "
        f"counting; at 100 proxies that extrapolation is {result.extrapolation_error_pct:+.1f}% off the full simulated day.",
        "",
        "**Per proxy-month** (charges that grow with the fleet: this fleet's month less the empty stack's, per proxy)",
        "",
        f"| proxies | alarm + {ALARM_SWEEP.sweep_minutes}-min sweep (default) | every proxy every minute |",
        "|---:|---:|---:|",
    ]
    for count in (*SIZES, BIG):
        poll = result.per_proxy.get((POLL.name, count))
        out.append(
            f"| {count:,} | {usd(result.per_proxy[(ALARM_SWEEP.name, count)])} | {usd(poll) if poll is not None else '—'} |"
        )
    out += [
        "",
        f"**The month of a 100-proxy fleet, default settings** (stack-level items below it: {usd(result.stack_fixed_usd)} "
        "a month with no proxy at all)",
        "",
        "| item | quantity a month | unit price | USD a month | price source (confidence) |",
        "|---|---:|---:|---:|---|",
    ]
    from benchmarks.cost_model import monthly_lines, stack_lines

    for line in [*monthly_lines(result.days[(ALARM_SWEEP.name, 100)].usage), *stack_lines(HEALTH_ALARM_METRICS)]:
        price = PRICES[line.price]
        out.append(
            f"| {line.item} | {line.quantity:,.1f} | ${price.usd:.10g} per {price.unit} | {usd(line.usd)} | "
            f"{price.source} ({price.confidence}, read {price.read_on}) |"
        )
    out += [
        "",
        "**Ingest, per pin line**: its Lambda, DynamoDB, metrics, own logs and Contributor Insights matches, "
        "against CloudWatch Logs ingesting the same lines",
        "",
        "| pin lines per batch | ingest cost / log ingestion cost |",
        "|---:|---:|",
        *[f"| {lines:,} | {ratio:.2f} |" for lines, ratio in sorted(result.ingest.items())],
        "",
        f"The ingest publishes {result.ingest_series} custom metric series for 8 pinning proxies (fixed: by Reason, "
        "not by proxy).",
        *org_block(result, usd),
        COST_END,
    ]
    return "\n".join(out)


def org_block(result: CostRun, usd: Callable[[float], str]) -> list[str]:
    """The organization-mode part of docs/cost.md's generated block (docs/organization.md links to it)."""
    from benchmarks.cost_model import PRICES

    if not result.org or result.org_traffic is None:
        return []

    def small(value: float) -> str:  # the per-proxy additions are fractions of a cent
        return f"${value:.6f}" if 0 < value < 0.001 else usd(value)

    traffic = result.org_traffic
    headline = result.org[ORG_HEADLINE.name]
    out = [
        "",
        "**Organization mode** (one central stack, the member template in every account-Region; "
        "[Organization mode](organization.md)). The organization's check counted over a simulated day like the "
        f"one above (`ORG_MEMBER_STACK_SET` set; {len(ORG_SIM_ACCOUNTS)} accounts x {len(ORG_SIM_REGIONS)} Regions, "
        f"{ORG_SIM_PROXIES_PER_SCOPE} proxies each): it lists the member StackSet's instances every 15 minutes, "
        "assumes each account's read role once an hour and runs each member's own check; it reads no alarm "
        "contributors, the members' alarm events reach it through the central bus. "
        f"Log delivery at the simulated fleet's pinning: {traffic.batches_per_proxy_month:,.0f} batches of "
        f"{INGEST_HEADLINE_LINES} pin lines per proxy-month, {traffic.record_bytes:,} bytes each as a Kinesis record "
        f"({put_payload_units(traffic.record_bytes)} PUT payload unit).",
        "",
        "| organization | account-Regions | proxies | central, fixed | per account-Region | per proxy-month "
        "(grows with the organization) | month | a single-account stack per account-Region |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for org in result.org.values():
        s = org.scenario
        out.append(
            f"| {s.accounts} accounts x {s.regions} Region{'s' if s.regions > 1 else ''} x "
            f"{s.proxies_per_scope} prox{'ies' if s.proxies_per_scope > 1 else 'y'} | {s.scopes:,} | "
            f"{s.proxies:,} | {usd(org.fixed_usd)} | {usd(org.per_scope_usd)} | {usd(org.per_proxy_month)} | "
            f"{usd(org.month_usd)} | {usd(org.stacks_month_usd)} |"
        )
    if not headline.scope:
        out += [
            "",
            "An account-Region adds only its sweeps' reads (`DescribeDBProxies`; RDS API calls are not priced), made for up to "
            f"{MAX_SCOPE_WORKERS} members at once in the same invocations: within this measurement's noise in "
            "Lambda time, so no line of its own below.",
        ]
    out += [
        "",
        f"**Organization mode, line by line** ({ORG_HEADLINE.accounts} accounts x {ORG_HEADLINE.regions} Regions)",
        "",
        "| part | item | quantity a month | unit price | USD a month | price source (confidence) |",
        "|---|---|---:|---:|---:|---|",
    ]
    parts = (
        ("central", headline.central),
        ("each account", headline.account),
        ("each account-Region", headline.scope),
        ("each proxy, the check", headline.proxy_check),
        ("each proxy, delivery", headline.proxy_org),
        (f"stream in on-demand mode instead ({ORG_HEADLINE.proxies:,} proxies)", result.org_kinesis_on_demand),
    )
    for part, lines in parts:
        for x in lines:
            price = PRICES[x.price]
            out.append(
                f"| {part} | {x.item} | {x.quantity:,.1f} | ${price.usd:.10g} per {price.unit} | {small(x.usd)} | "
                f"{price.source} ({price.confidence}, read {price.read_on}) |"
            )
    return out
