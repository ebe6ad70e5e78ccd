"""``pinwatch demo``: the deployed pipeline, end to end, on local emulated AWS and a simulated clock.

What runs is what Lambda runs: the two handlers in ``functions/`` are imported as a cold start
does, with their environment taken from ``template.yaml`` and pointed at local endpoints —

* moto in server mode for RDS (a real ``create_db_proxy`` with a target), CloudWatch metrics,
  CloudWatch Logs, SNS (a topic with an SQS queue subscribed, capturing what a subscriber gets),
  SQS and Secrets Manager (holding the URL of a local Slack receiver, read through the check's own
  secret provider);
* DynamoDB Local for the summary table (created from the template's definition), or moto's
  DynamoDB when Java or the jar is missing.

An :class:`~pinwatch.local.incident.Incident` is replayed minute by minute: the proxy's metrics go
to CloudWatch with their simulated timestamps, its log lines go to the log group and, as real
subscription payloads (base64(gzip(JSON))), through the ingest handler; then the check handler
runs at that simulated minute. One payload is delivered twice. Nothing sleeps: the simulated
clock only moves the timestamps.

The Lambda handlers print JSON logs and EMF metrics to stdout, as in Lambda; the replay captures
them (see :attr:`DemoResult.function_output`) so they do not interleave with the demo's own output.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import importlib.util
import io
import json
import logging
import os
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3

from pinwatch.findings import Severity
from pinwatch.local.dynamodb_local import DynamoDBLocalUnavailable, dynamodb_local
from pinwatch.local.incident import Incident, IncidentMinute, LogLine
from pinwatch.local.moto_server import moto_server
from pinwatch.local.template import PROJECT_ROOT, load_template, table_create_args, table_ttl_attribute
from pinwatch.metrics import MINUTE_MS, NAMESPACE
from pinwatch.records import Kind
from pinwatch.store import keys
from pinwatch.store.summary import A_COUNT, A_REASON, SummaryStore

if TYPE_CHECKING:
    from pinwatch.check import CheckResult
    from pinwatch.local.slack_receiver import SlackReceiver

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's account
INGEST_APP = PROJECT_ROOT / "functions" / "pin_ingest" / "app.py"
CHECK_APP = PROJECT_ROOT / "functions" / "connection_check" / "app.py"
SCHEDULE_EVENT = PROJECT_ROOT / "events" / "schedule.json"
CHECK_DELAY_MS = 5_000  # the scheduled check runs a few seconds into the next minute, as EventBridge does
SUBSCRIPTION_FILTER = "pinwatch-pins"

# Demo settings on top of the template's defaults: a reminder interval short enough to show one
# within the replay, and the local Slack receiver allowed (never in a deployed stack).
DEMO_OVERRIDES: Mapping[str, str] = {"RENOTIFY_MINUTES": "10", "SLACK_ALLOW_LOOPBACK": "true"}

_FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


class DemoError(RuntimeError):
    """The demo cannot run here (something it needs is missing); the message says what."""


# --------------------------------------------------------------------------------------------
# Emulation


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the emulated services listen."""

    moto: str
    dynamodb: str
    dynamodb_engine: str  # what serves the table: "DynamoDB Local" or "moto"
    region: str = REGION
    dynamodb_note: str | None = None  # why moto serves the table, when it does

    def aws_environment(self) -> dict[str, str]:
        """Environment for AWS SDKs and the AWS CLI aimed at the emulation, never at a real account."""
        return {
            **_FAKE_CREDENTIALS,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.moto,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb,
            # A profile, an SSO session or a credential process from ~/.aws must not apply here.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }


@contextlib.contextmanager
def emulation(region: str = REGION, *, use_dynamodb_local: bool = True) -> Iterator[Endpoints]:
    """moto server and (when Java and the jar are there) DynamoDB Local on free loopback ports."""
    if importlib.util.find_spec("moto") is None:
        raise DemoError("the demo needs moto in server mode: pip install 'pinwatch[dev]' (or run `make demo`)")
    # Werkzeug (under moto) logs every request to stderr; the demo's output is its own.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with contextlib.ExitStack() as stack:
        moto = stack.enter_context(moto_server())
        note = "DynamoDB Local not requested" if not use_dynamodb_local else None
        dynamodb: str | None = None
        if use_dynamodb_local:
            try:
                dynamodb = stack.enter_context(dynamodb_local())
            except DynamoDBLocalUnavailable as exc:
                note = str(exc)
        if dynamodb is None:
            yield Endpoints(moto, moto, "moto", region, note)
        else:
            yield Endpoints(moto, dynamodb, "DynamoDB Local", region)


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str], remove: Sequence[str] = ()) -> Iterator[None]:
    """Set (and remove) environment variables for the block; restore them afterwards."""
    saved = {name: os.environ.get(name) for name in (*values, *remove)}
    try:
        for name in remove:
            os.environ.pop(name, None)
        os.environ.update(values)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# Variables that would point the SDK elsewhere than the emulation.
AWS_VARIABLES_TO_CLEAR = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


def client(endpoints: Endpoints, service: str) -> Any:
    """A boto3 client for the emulation (Any: services are chosen at run time)."""
    url = endpoints.dynamodb if service == "dynamodb" else endpoints.moto
    factory: Any = boto3.client  # boto3's typed overloads need the service name as a literal
    return factory(
        service,
        endpoint_url=url,
        region_name=endpoints.region,
        aws_access_key_id=_FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=_FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=_FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
    )


# --------------------------------------------------------------------------------------------
# The stack's resources


@dataclass(frozen=True, slots=True)
class DemoStack:
    """The emulated resources the two functions use."""

    endpoints: Endpoints
    proxy: str
    table: str
    topic_arn: str
    queue_url: str
    secret_arn: str
    log_group: str
    db_instance: str

    def function_environment(self, logical_id: str, template: Mapping[str, Any] | None = None) -> dict[str, str]:
        """A function's environment as the template defines it, resolved against this stack, plus the demo's overrides."""
        tpl = template if template is not None else load_template()
        resources = {"SummaryTable": self.table, "AlertTopic": self.topic_arn}
        parameters = {name: str(spec.get("Default", "")) for name, spec in (tpl.get("Parameters") or {}).items()} | {
            "ProxyNames": self.proxy,
            "SlackWebhookSecretArn": self.secret_arn,
            "AlertEmail": "",
        }
        variables: dict[str, Any] = {}
        variables.update(tpl.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
        props = tpl["Resources"][logical_id]["Properties"]
        variables.update(props.get("Environment", {}).get("Variables", {}))
        env = {}
        for name, value in variables.items():
            resolved = _resolve(value, parameters, resources)
            if resolved is not None:
                env[name] = resolved
        return env | dict(DEMO_OVERRIDES)


def _resolve(value: Any, parameters: Mapping[str, str], resources: Mapping[str, str]) -> str | None:
    """A template value as a string: literals, ``Ref`` and ``Fn::Join``; None for what has no local meaning (links)."""
    if isinstance(value, str | int | float | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, Mapping) and "Ref" in value:
        name = value["Ref"]
        return resources.get(name, parameters.get(name))
    if isinstance(value, Mapping) and "Fn::Join" in value:
        separator, items = value["Fn::Join"]
        # `!Join [",", !Ref ListParameter]`: the list is one Ref, which resolves to the joined text.
        parts = [_resolve(item, parameters, resources) for item in ([items] if isinstance(items, Mapping) else items)]
        return str(separator).join(p for p in parts if p is not None)
    return None  # Fn::Sub links to the console and dashboard: nothing to link to locally


def create_stack(endpoints: Endpoints, proxy: str, slack_url: str, *, suffix: str | None = None) -> DemoStack:
    """Create the table, topic + capturing queue, Slack secret and a simulated RDS proxy with a target."""
    suffix = suffix or uuid.uuid4().hex[:8]
    template = load_template()

    table = f"pinwatch-demo-{suffix}"
    dynamodb = client(endpoints, "dynamodb")
    dynamodb.create_table(**table_create_args(table, template=template))
    dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1})
    ttl = table_ttl_attribute(template=template)
    if ttl:
        dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})

    # The stack's topic (its KMS key is not emulated) with a queue subscribed: what an SQS subscriber receives.
    sns, sqs = client(endpoints, "sns"), client(endpoints, "sqs")
    display_name = template["Resources"]["AlertTopic"]["Properties"].get("DisplayName", "pinwatch")
    topic_arn = sns.create_topic(Name=f"pinwatch-demo-alerts-{suffix}", Attributes={"DisplayName": display_name})[
        "TopicArn"
    ]
    queue_url = sqs.create_queue(QueueName=f"pinwatch-demo-subscriber-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    secrets = client(endpoints, "secretsmanager")
    secret_arn = secrets.create_secret(
        Name=f"pinwatch-demo/slack-webhook-{suffix}", SecretString=json.dumps({"url": slack_url})
    )["ARN"]

    db_instance = _create_proxy(endpoints, proxy, suffix)

    logs = client(endpoints, "logs")
    log_group = f"/aws/rds/proxy/{proxy}"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=log_group)
    return DemoStack(endpoints, proxy, table, topic_arn, queue_url, secret_arn, log_group, db_instance)


def _create_proxy(endpoints: Endpoints, proxy: str, suffix: str) -> str:
    """A PostgreSQL proxy the way a user creates one: subnets, a credentials secret, a role, a target."""
    ec2, rds, secrets = client(endpoints, "ec2"), client(endpoints, "rds"), client(endpoints, "secretsmanager")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{10 + i}.0/24", AvailabilityZone=f"{endpoints.region}{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    credentials = secrets.create_secret(
        Name=f"pinwatch-demo/db-credentials-{suffix}", SecretString=json.dumps({"username": "app", "password": suffix})
    )["ARN"]
    db_instance = f"{proxy}-primary"
    with contextlib.suppress(rds.exceptions.DBInstanceAlreadyExistsFault):
        rds.create_db_instance(
            DBInstanceIdentifier=db_instance,
            Engine="postgres",
            DBInstanceClass="db.r6g.large",
            MasterUsername="app",
            MasterUserPassword=f"demo-{suffix}",
            AllocatedStorage=20,
        )
    if any(p["DBProxyName"] == proxy for p in rds.describe_db_proxies().get("DBProxies", [])):
        raise DemoError(f"a proxy named {proxy!r} already exists in this emulation; choose another with --proxy")
    rds.create_db_proxy(
        DBProxyName=proxy,
        EngineFamily="POSTGRESQL",
        Auth=[{"AuthScheme": "SECRETS", "SecretArn": credentials, "IAMAuth": "DISABLED"}],
        RoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{proxy}-rds-proxy",
        VpcSubnetIds=subnets,
        DebugLogging=True,  # enhanced logging on: pin lines carry statement digests
        IdleClientTimeout=1800,
    )
    rds.register_db_proxy_targets(DBProxyName=proxy, TargetGroupName="default", DBInstanceIdentifiers=[db_instance])
    rds.modify_db_proxy_target_group(
        DBProxyName=proxy,
        TargetGroupName="default",
        ConnectionPoolConfig={"MaxConnectionsPercent": 100, "ConnectionBorrowTimeout": 120},
    )
    return db_instance


# --------------------------------------------------------------------------------------------
# The two Lambda functions, in process


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object the handlers (Powertools) read."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = ""

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"


class _RecordingCheck:
    """Stands in for the check module's ``CHECK``: runs the real one and keeps each run's result."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last: CheckResult | None = None

    def run(self, now_ms: int, *, dry_run: bool = False, deadline: float | None = None) -> CheckResult:
        self.last = None
        result: CheckResult = self.inner.run(now_ms, dry_run=dry_run, deadline=deadline)
        self.last = result
        return result


class LocalFunctions:
    """The ingest and check handlers, imported as a cold start does, with their stdout captured."""

    # Any: the handler modules' globals (CHECK, clock, lambda_handler) are only known at run time.
    def __init__(self, ingest: Any, check: Any, output: io.StringIO) -> None:
        self._ingest = ingest
        self._check = check
        self._recorder = _RecordingCheck(self._check.CHECK)
        self._check.CHECK = self._recorder
        self.output = output
        self._now_ms = 0
        # The check's clock reads the simulated time.
        self._check.clock = lambda: self._now_ms / 1000

    def ingest(self, event: Mapping[str, Any]) -> dict[str, Any]:
        with self._captured():
            result: dict[str, Any] = self._ingest.lambda_handler(dict(event), LambdaContext("pinwatch-pin-ingest"))
        return result

    @contextlib.contextmanager
    def _captured(self) -> Iterator[None]:
        """The handler's stdout and warnings (e.g. Powertools' "no metrics") go to :attr:`output`, as in Lambda."""
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(self.output):
            warnings.simplefilter("always")
            try:
                yield
            finally:
                for warning in caught:
                    self.output.write(json.dumps({"level": "WARNING", "message": str(warning.message)}) + "\n")

    def check(
        self, now_ms: int, event: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | None, CheckResult | None, str | None]:
        """(summary, the run's result, error): a run whose alerting failed raises in Lambda; here it is reported."""
        self._now_ms = now_ms
        try:
            with self._captured():
                summary: dict[str, Any] = self._check.lambda_handler(
                    dict(event), LambdaContext("pinwatch-connection-check")
                )
        except Exception as exc:
            return None, self._recorder.last, f"{type(exc).__name__}: {exc}"
        return summary, self._recorder.last, None


@contextlib.contextmanager
def local_functions(stack: DemoStack) -> Iterator[LocalFunctions]:
    """Both handlers with the template's environment for this stack, for the duration of the block."""
    for path in (INGEST_APP, CHECK_APP):
        if not path.exists():
            raise DemoError(f"{path} not found: the demo runs the functions from a pinwatch source checkout")
    env = stack.function_environment("ConnectionCheckFunction") | stack.function_environment("PinIngestFunction")
    output = io.StringIO()
    with patched_environ(env | stack.endpoints.aws_environment(), AWS_VARIABLES_TO_CLEAR):
        with contextlib.redirect_stdout(output):
            ingest = _import(INGEST_APP, "pin_ingest")
            check = _import(CHECK_APP, "connection_check")
        yield LocalFunctions(ingest, check, output)


def _import(path: Path, name: str) -> ModuleType:
    """Import a handler module afresh, under a name of its own: what a cold start does."""
    spec = importlib.util.spec_from_file_location(f"pinwatch_demo_{name}_{uuid.uuid4().hex}", path)
    if spec is None or spec.loader is None:
        raise DemoError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def subscription_event(
    log_group: str, log_stream: str, lines: Sequence[LogLine], owner: str = ACCOUNT_ID
) -> dict[str, Any]:
    """A CloudWatch Logs subscription invocation event, as Lambda receives it."""
    payload = {
        "messageType": "DATA_MESSAGE",
        "owner": owner,
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": [SUBSCRIPTION_FILTER],
        "logEvents": [{"id": line.event_id, "timestamp": line.timestamp_ms, "message": line.message} for line in lines],
    }
    return _wrap(payload)


def control_event(log_group: str) -> dict[str, Any]:
    """The reachability check CloudWatch Logs sends when a subscription is created."""
    return _wrap(
        {
            "messageType": "CONTROL_MESSAGE",
            "owner": "CloudwatchLogs",
            "logGroup": "",
            "logStream": "",
            "subscriptionFilters": [],
            "logEvents": [
                {
                    "id": "",
                    "timestamp": int(time.time() * 1000),
                    "message": f"CWL CONTROL MESSAGE: Checking health of destination Lambda function for {log_group}",
                }
            ],
        }
    )


def _wrap(payload: Mapping[str, Any]) -> dict[str, Any]:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return {"awslogs": {"data": base64.b64encode(gzip.compress(raw)).decode("ascii")}}


# --------------------------------------------------------------------------------------------
# The replay and what it observed


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One rule's notification in one check run, and how each channel took the message."""

    minute: int
    at_ms: int
    rule: str
    transition: str  # new | escalated | renotify | resolved
    severity: Severity
    previous_severity: Severity | None
    summary: str
    channels: Mapping[str, str]  # channel -> accepted | failed | rejected | skipped
    eta_minutes: float | None = None
    retry: bool = False
    current: str | None = None  # the rule's finding in this check (for a resolution: how things are now)


@dataclass(frozen=True, slots=True)
class SlackMessage:
    minute: int
    at_ms: int
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SnsMessage:
    """What the SQS subscriber received (the SNS envelope, unwrapped)."""

    minute: int
    at_ms: int
    subject: str
    message: str
    attributes: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class IngestCall:
    minute: int
    stream: str
    lines: int
    summary: Mapping[str, Any]
    redelivery: bool = False


@dataclass(frozen=True, slots=True)
class Tick:
    """One simulated minute, as it went."""

    minute: IncidentMinute
    checked_at_ms: int
    ingest: tuple[IngestCall, ...]
    alerts: tuple[AlertEvent, ...]
    slack: tuple[SlackMessage, ...]
    sns: tuple[SnsMessage, ...]
    errors: tuple[str, ...]
    unhealthy: str | None  # the proxy's worst severity in this check, if not ok


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    ok: bool
    detail: str


@dataclass
class DemoResult:
    stack: DemoStack
    incident: Incident
    ticks: list[Tick]
    expected: Counter[tuple[Kind, str | None]]
    table_hourly: Counter[tuple[Kind, str | None]]
    table_totals: Counter[tuple[Kind, str | None]]
    emf_pin_events: int
    emf_would_pin_events: int
    function_output: str
    seconds: float
    stages: list[Stage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.stages) and all(stage.ok for stage in self.stages)

    @property
    def alerts(self) -> list[AlertEvent]:
        return [a for t in self.ticks for a in t.alerts]

    @property
    def slack(self) -> list[SlackMessage]:
        return [m for t in self.ticks for m in t.slack]

    @property
    def sns(self) -> list[SnsMessage]:
        return [m for t in self.ticks for m in t.sns]

    @property
    def ingest_calls(self) -> list[IngestCall]:
        return [c for t in self.ticks for c in t.ingest]

    @property
    def redeliveries(self) -> list[tuple[IngestCall, IngestCall]]:
        """(first delivery, redelivery) pairs of the payload delivered twice."""
        calls = self.ingest_calls
        return [(calls[i - 1], call) for i, call in enumerate(calls) if call.redelivery and i > 0]


class Replay:
    """Replays an incident through the functions, minute by minute, on the simulated clock."""

    def __init__(
        self,
        stack: DemoStack,
        functions: LocalFunctions,
        incident: Incident,
        receiver: SlackReceiver,
        *,
        redeliver_minute: int | None = None,
        on_tick: Callable[[Tick], None] | None = None,
    ) -> None:
        self.stack = stack
        self.functions = functions
        self.incident = incident
        self.receiver = receiver
        self.redeliver_minute = incident.fix - 2 if redeliver_minute is None else redeliver_minute
        self.on_tick = on_tick
        endpoints = stack.endpoints
        self._cloudwatch = client(endpoints, "cloudwatch")
        self._logs = client(endpoints, "logs")
        self._sqs = client(endpoints, "sqs")
        self._dynamodb = client(endpoints, "dynamodb")
        self._streams: set[str] = set()
        self._schedule = json.loads(SCHEDULE_EVENT.read_text(encoding="utf-8")) if SCHEDULE_EVENT.exists() else {}

    def run(self) -> DemoResult:
        started = time.perf_counter()
        errors: list[str] = []
        try:
            self.functions.ingest(control_event(self.stack.log_group))  # the subscription's reachability check
        except Exception as exc:
            errors.append(f"control message: {type(exc).__name__}: {exc}")
        ticks = []
        for minute in self.incident:
            tick = self._minute(minute, errors)
            errors = []
            ticks.append(tick)
            if self.on_tick is not None:
                self.on_tick(tick)
        hourly, totals = self._table_counts()
        pins, would = _emf_counts(self.functions.output.getvalue(), self.stack.proxy)
        result = DemoResult(
            stack=self.stack,
            incident=self.incident,
            ticks=ticks,
            expected=self.incident.expected_counts(),
            table_hourly=hourly,
            table_totals=totals,
            emf_pin_events=pins,
            emf_would_pin_events=would,
            function_output=self.functions.output.getvalue(),
            seconds=time.perf_counter() - started,
        )
        result.stages = verify(result)
        return result

    def _minute(self, minute: IncidentMinute, errors: list[str]) -> Tick:
        self._put_metrics(minute)
        calls: list[IngestCall] = []
        for stream, lines in minute.by_stream().items():
            self._put_log_events(stream, lines)
            event = subscription_event(self.stack.log_group, stream, lines)
            deliveries = 2 if minute.index == self.redeliver_minute and not any(c.redelivery for c in calls) else 1
            for attempt in range(deliveries):
                try:
                    ingested = self.functions.ingest(event)
                except Exception as exc:
                    errors.append(f"ingest {stream}: {type(exc).__name__}: {exc}")
                    continue
                calls.append(IngestCall(minute.index, stream, len(lines), ingested, redelivery=attempt > 0))

        now_ms = minute.end_ms + CHECK_DELAY_MS
        slack_before = len(self.receiver.requests)
        summary, result, error = self.functions.check(now_ms, self._schedule_event(now_ms))
        if error:
            errors.append(f"check: {error}")
        alerts = _alerts(minute.index, now_ms, result)
        slack = tuple(
            SlackMessage(minute.index, now_ms, request.json()) for request in self.receiver.requests[slack_before:]
        )
        unhealthy = None
        if summary is not None:
            unhealthy = summary.get("unhealthyProxies", {}).get(self.stack.proxy)
        return Tick(
            minute,
            now_ms,
            tuple(calls),
            alerts,
            slack,
            self._drain_queue(minute.index, now_ms),
            tuple(errors),
            unhealthy,
        )

    def _schedule_event(self, now_ms: int) -> dict[str, Any]:
        event = dict(self._schedule)
        event["id"] = str(uuid.uuid4())
        event["time"] = datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return event

    def _put_metrics(self, minute: IncidentMinute) -> None:
        """Each proxy instance publishes its share at the middle of the minute (the check sums them)."""
        when = datetime.fromtimestamp((minute.start_ms + MINUTE_MS // 2) / 1000, tz=UTC)
        instances = self.incident.instances
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": "ProxyName", "Value": self.stack.proxy}],
                "Timestamp": when,
                "Value": value / instances,
            }
            for name, value in minute.metrics.items()
            for _ in range(instances)
        ]
        self._cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)

    def _put_log_events(self, stream: str, lines: Sequence[LogLine]) -> None:
        """The proxy's own log group gets the lines too, for ``pinwatch backfill`` after the demo."""
        if stream not in self._streams:
            with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
                self._logs.create_log_stream(logGroupName=self.stack.log_group, logStreamName=stream)
            self._streams.add(stream)
        self._logs.put_log_events(
            logGroupName=self.stack.log_group,
            logStreamName=stream,
            logEvents=[{"timestamp": line.timestamp_ms, "message": line.message} for line in lines],
        )

    def _drain_queue(self, minute: int, now_ms: int) -> tuple[SnsMessage, ...]:
        received: list[SnsMessage] = []
        while True:
            response = self._sqs.receive_message(QueueUrl=self.stack.queue_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return tuple(received)
            for message in messages:
                envelope = json.loads(message["Body"])
                attributes = {k: v.get("Value", "") for k, v in (envelope.get("MessageAttributes") or {}).items()}
                received.append(
                    SnsMessage(minute, now_ms, envelope.get("Subject", ""), envelope.get("Message", ""), attributes)
                )
                self._sqs.delete_message(QueueUrl=self.stack.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _table_counts(self) -> tuple[Counter[tuple[Kind, str | None]], Counter[tuple[Kind, str | None]]]:
        """Per (kind, reason): the hourly items summed over the incident, and the running totals."""
        store = SummaryStore(self._dynamodb, self.stack.table)
        hourly: Counter[tuple[Kind, str | None]] = Counter()
        for item in store.hourly(self.stack.proxy, self.incident.start_ms, self.incident.end_ms):
            hourly[(item.kind, item.reason if item.kind is not Kind.UNPARSED else None)] += item.count
        totals: Counter[tuple[Kind, str | None]] = Counter()
        # The running totals as `aws dynamodb query` reads them (a proxy has a handful: one page).
        for kind, prefix in ((Kind.PINNED, keys.pin_total_sk("")), (Kind.WOULD_PIN, keys.would_pin_total_sk(""))):
            response = self._dynamodb.query(
                TableName=self.stack.table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={":pk": {"S": keys.proxy_pk(self.stack.proxy)}, ":prefix": {"S": prefix}},
            )
            for item in response.get("Items", []):
                totals[(kind, item[A_REASON]["S"])] += int(item[A_COUNT]["N"])
        return hourly, totals


def _alerts(minute: int, at_ms: int, result: CheckResult | None) -> tuple[AlertEvent, ...]:
    if result is None:
        return ()
    events: list[AlertEvent] = []
    for outcome in result.outcomes:
        dispatch = outcome.dispatch
        if dispatch is None:
            continue
        channels = {name: o.status.value for name, o in dispatch.outcomes.items()}
        current = {f.rule: f.summary for f in outcome.report.findings}
        events.extend(
            AlertEvent(
                minute=minute,
                at_ms=at_ms,
                rule=note.rule,
                transition=note.transition.value,
                severity=note.severity,
                previous_severity=note.previous_severity,
                summary=note.summary,
                channels={c: channels.get(c, "skipped") for c in note.channels},
                eta_minutes=outcome.report.exhaustion_eta_minutes,
                retry=note.retry,
                current=current.get(note.rule),
            )
            for note in dispatch.notifications
        )
    return tuple(events)


def _emf_counts(output: str, proxy: str) -> tuple[int, int]:
    """PinEvents and WouldPinEvents the ingest emitted for `proxy` (the per-invocation documents, not per reason)."""
    pins = would = 0
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        doc = json.loads(line)
        if doc.get("ProxyName") != proxy or "Reason" in doc:
            continue
        pins += int(sum(_values(doc.get("PinEvents"))))
        would += int(sum(_values(doc.get("WouldPinEvents"))))
    return pins, would


def _values(value: Any) -> list[float]:
    if value is None:
        return []
    return [float(v) for v in value] if isinstance(value, list) else [float(value)]


# --------------------------------------------------------------------------------------------
# Verification: what must have happened for the demo to count as a success


def verify(result: DemoResult) -> list[Stage]:
    """The stages that make the demo a success, each with what was seen."""
    fix = result.incident.fix
    return [
        _critical_with_eta(
            "Slack", [json.dumps(m.payload, ensure_ascii=False) for m in result.slack if _slack_critical(m)]
        ),
        _critical_with_eta("SNS", [m.message for m in result.sns if m.attributes.get("severity") == "critical"]),
        _resolved_after_fix(result, fix),
        _exact_counts(result),
        _redelivery(result),
        _metrics_exact(result),
        _no_errors(result),
    ]


def _slack_critical(message: SlackMessage) -> bool:
    blocks = message.payload.get("blocks") or [{}]
    header = blocks[0].get("text", {}).get("text", "")
    return "CRITICAL" in header


def _critical_with_eta(channel: str, critical_texts: list[str]) -> Stage:
    name = f"critical alert with an exhaustion ETA on {channel}"
    with_eta = [t for t in critical_texts if "exhausted in ~" in t]
    if with_eta:
        return Stage(name, True, f"{len(critical_texts)} critical message(s), {len(with_eta)} with the ETA")
    detail = "no critical message" if not critical_texts else "critical messages carry no ETA"
    return Stage(name, False, detail)


def _resolved_after_fix(result: DemoResult, fix: int) -> Stage:
    name = "every alert resolved after the fix, on both channels"
    opened = {a.rule for a in result.alerts if a.transition == "new"}
    resolved = {a.rule for a in result.alerts if a.transition == "resolved" and a.minute >= fix}
    slack = [m for m in result.slack if m.minute >= fix and "RESOLVED" in json.dumps(m.payload, ensure_ascii=False)]
    sns = [m for m in result.sns if m.minute >= fix and m.attributes.get("transition") == "resolved"]
    open_rules = sorted(opened - resolved)
    ok = bool(opened) and not open_rules and bool(slack) and bool(sns)
    detail = f"{len(resolved)} of {len(opened)} rules resolved; {len(slack)} Slack / {len(sns)} SNS resolved messages"
    if open_rules:
        detail += f"; still open: {', '.join(open_rules)}"
    return Stage(name, ok, detail)


def _exact_counts(result: DemoResult) -> Stage:
    name = "summary table counts equal the replayed lines"
    stored = {key: n for key, n in result.expected.items() if key[0] is not Kind.OTHER}
    pins_and_would = {key: n for key, n in stored.items() if key[0] is not Kind.UNPARSED}
    mismatches = [
        f"{kind.value}/{reason}: replayed {n}, hourly {result.table_hourly.get((kind, reason), 0)}"
        for (kind, reason), n in sorted(stored.items(), key=str)
        if result.table_hourly.get((kind, reason), 0) != n
    ]
    mismatches += [
        f"{kind.value}/{reason}: replayed {n}, total {result.table_totals.get((kind, reason), 0)}"
        for (kind, reason), n in sorted(pins_and_would.items(), key=str)
        if result.table_totals.get((kind, reason), 0) != n
    ]
    extra = set(result.table_hourly) - set(stored)
    mismatches += [
        f"{kind.value}/{reason}: not replayed, stored {result.table_hourly[(kind, reason)]}" for kind, reason in extra
    ]
    if mismatches:
        return Stage(name, False, "; ".join(mismatches))
    return Stage(name, True, f"{sum(stored.values())} lines in {len(stored)} (kind, reason) keys, each exact")


def _redelivery(result: DemoResult) -> Stage:
    name = "a payload delivered twice is counted once"
    pairs = result.redeliveries
    if not pairs:
        return Stage(name, False, "no payload was delivered twice")
    first, again = pairs[0]
    applied_first = int(first.summary.get("appliedChunks", 0))
    applied_again = int(again.summary.get("appliedChunks", 0))
    duplicates = int(again.summary.get("duplicateChunks", 0))
    ok = applied_first >= 1 and applied_again == 0 and duplicates == applied_first
    return Stage(
        name,
        ok,
        f"first delivery applied {applied_first} chunk(s); the second applied {applied_again}, skipped {duplicates}",
    )


def _metrics_exact(result: DemoResult) -> Stage:
    name = "ingest metrics (EMF PinEvents) equal the replayed pins"
    pins = sum(n for (kind, _), n in result.expected.items() if kind is Kind.PINNED)
    would = sum(n for (kind, _), n in result.expected.items() if kind is Kind.WOULD_PIN)
    ok = result.emf_pin_events == pins and result.emf_would_pin_events == would
    return Stage(
        name,
        ok,
        f"PinEvents {result.emf_pin_events} of {pins}, WouldPinEvents {result.emf_would_pin_events} of {would}",
    )


def _no_errors(result: DemoResult) -> Stage:
    name = "functions ran and channels accepted every message"
    errors = [f"minute {t.minute.index}: {e}" for t in result.ticks for e in t.errors]
    failed = [
        f"minute {a.minute}: {a.rule} to {channel} {status}"
        for a in result.alerts
        for channel, status in a.channels.items()
        if status != "accepted"
    ]
    problems = errors + failed
    if problems:
        return Stage(
            name, False, "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        )
    calls = len(result.ingest_calls)
    return Stage(name, True, f"{calls} ingest and {len(result.ticks)} check invocations, no errors")
