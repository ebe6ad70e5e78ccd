"""The demo's stack: emulated AWS services, the stack's resources on them, and the two functions.

* :func:`emulation`: moto in server mode (RDS, CloudWatch, CloudWatch Logs, SNS, SQS, Secrets
  Manager) and DynamoDB Local for the table, or moto's DynamoDB when Java or the jar is missing;
* :func:`create_stack`: the summary table from the template's definition, the alert topic with a
  capturing SQS queue, the Slack webhook secret, and a PostgreSQL proxy with a target;
* :func:`local_functions`: both handlers imported as a cold start does, with the template's
  environment for this stack, called with the check's results recorded.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import re
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3

from pinwatch.local.alarms import MetricsInsightsAlarm, cloudwatch_series
from pinwatch.local.dynamodb_local import DynamoDBLocalUnavailable, dynamodb_local
from pinwatch.local.lambda_harness import (
    ACCOUNT_ID,
    CONNECTION_CHECK_APP,
    PIN_INGEST_APP,
    REGION,
    HandlerNotFound,
    LambdaContext,
    check_context,
    load_handler,
    patched_environ,
)
from pinwatch.local.moto_server import moto_server
from pinwatch.local.stream_mapping import stream_context
from pinwatch.local.template import load_template, table_create_args, table_ttl_attribute

if TYPE_CHECKING:
    from pathlib import Path

    from pinwatch.check import Check, CheckResult


# Demo settings on top of the template's defaults: a reminder interval short enough to show one
# within the replay, the local Slack receiver allowed (never in a deployed stack), and reason
# capture switching the proxy's enhanced logging on for the incident (docs/reason-capture.md).
DEMO_OVERRIDES: Mapping[str, str] = {
    "RENOTIFY_MINUTES": "10",
    "SLACK_ALLOW_LOOPBACK": "true",
    "REASON_CAPTURE": "on-incident",
}

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
    """The emulated resources the two functions use (the proxy starts with enhanced logging off)."""

    endpoints: Endpoints
    proxy: str
    table: str
    topic_arn: str
    queue_url: str
    secret_arn: str
    log_group: str
    db_instance: str

    def debug_logging(self) -> bool:
        """The proxy's enhanced-logging setting now, as ``DescribeDBProxies`` reports it."""
        rds = client(self.endpoints, "rds")
        proxies = rds.describe_db_proxies(DBProxyName=self.proxy).get("DBProxies", [])
        return bool(proxies and proxies[0].get("DebugLogging"))

    def function_environment(
        self,
        logical_id: str,
        template: Mapping[str, Any] | None = None,
        *,
        parameters: Mapping[str, str] | None = None,
        resources: Mapping[str, str] | None = None,
        conditions: Mapping[str, bool] | None = None,
    ) -> dict[str, str]:
        """A function's environment as the template defines it, resolved against this stack, plus the demo's overrides.

        ``parameters`` and ``resources`` add to (or override) this stack's values; ``conditions``
        are the template conditions known to hold or not (``Fn::If`` on any other resolves to
        nothing, as the single-account demo has always had it). A ``Fn::Sub`` resolves when every
        name it uses is known (``AWS::StackName`` can be given as a parameter).
        """
        tpl = template if template is not None else load_template()
        known = {"SummaryTable": self.table, "AlertTopic": self.topic_arn} | dict(resources or {})
        values = {name: str(spec.get("Default", "")) for name, spec in (tpl.get("Parameters") or {}).items()} | {
            "ProxyNames": self.proxy,
            "SlackWebhookSecretArn": self.secret_arn,
            "AlertEmail": "",
        }
        values |= dict(parameters or {})
        context = _Context(values, known, dict(conditions or {}))
        variables: dict[str, Any] = {}
        variables.update(tpl.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
        props = tpl["Resources"][logical_id]["Properties"]
        variables.update(props.get("Environment", {}).get("Variables", {}))
        env = {}
        for name, value in variables.items():
            resolved = _resolve(value, context)
            if resolved is not None:
                env[name] = resolved
        return env | dict(DEMO_OVERRIDES)


@dataclass(frozen=True, slots=True)
class _Context:
    parameters: Mapping[str, str]
    resources: Mapping[str, str]
    conditions: Mapping[str, bool]


_SUB_NAME = re.compile(r"\$\{([^}!]+)\}")


def _resolve(value: Any, context: _Context) -> str | None:
    """A template value as a string: literals, ``Ref``, ``Fn::Join``, ``Fn::If`` on a known condition and
    ``Fn::Sub`` of known names; None for what has no local meaning (links, ``AWS::NoValue``)."""
    if isinstance(value, str | int | float | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, Mapping) and "Ref" in value:
        name = value["Ref"]
        return context.resources.get(name, context.parameters.get(name))
    if isinstance(value, Mapping) and "Fn::Join" in value:
        separator, items = value["Fn::Join"]
        # `!Join [",", !Ref ListParameter]`: the list is one Ref, which resolves to the joined text.
        parts = [_resolve(item, context) for item in ([items] if isinstance(items, Mapping) else items)]
        return str(separator).join(p for p in parts if p is not None)
    if isinstance(value, Mapping) and "Fn::If" in value:
        condition, when_true, when_false = value["Fn::If"]
        if condition not in context.conditions:
            return None
        return _resolve(when_true if context.conditions[condition] else when_false, context)
    if isinstance(value, Mapping) and isinstance(value.get("Fn::Sub"), str):
        text: str = value["Fn::Sub"]
        names = _SUB_NAME.findall(text)
        found = {n: context.resources.get(n, context.parameters.get(n)) for n in names}
        if any(v is None for v in found.values()):
            return None  # links to the console and dashboard: nothing to link to locally
        return _SUB_NAME.sub(lambda m: str(found[m.group(1)]), text)
    return None


def create_stack(
    endpoints: Endpoints, proxy: str, slack_url: str, *, suffix: str | None = None, with_proxy: bool = True
) -> DemoStack:
    """Create the table, topic + capturing queue, Slack secret and a simulated RDS proxy with a target.

    ``with_proxy`` False: no proxy in this account (the organization demo's proxies are the members').
    """
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

    log_group = f"/aws/rds/proxy/{proxy}"
    if not with_proxy:
        return DemoStack(endpoints, proxy, table, topic_arn, queue_url, secret_arn, log_group, "")
    db_instance = _create_proxy(endpoints, proxy, suffix)

    logs = client(endpoints, "logs")
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
        # Enhanced logging off, as on most production proxies: pin lines (reasons, digests) appear
        # only once reason capture switches it on.
        DebugLogging=False,
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


# --------------------------------------------------------------------------------------------
# The two Lambda functions, in process


class _RecordingCheck:
    """Runs the check function's own check and keeps each run's result (a failed run raises in the handler)."""

    def __init__(self, inner: Check) -> None:
        self.inner = inner
        self.last: CheckResult | None = None

    def run(
        self,
        now_ms: int,
        *,
        dry_run: bool = False,
        deadline: float | None = None,
        names: Sequence[str] | None = None,
    ) -> CheckResult:
        self.last = None
        result = self.inner.run(now_ms, dry_run=dry_run, deadline=deadline, names=names)
        self.last = result
        return result

    def alerting_proxies(self) -> frozenset[str]:
        return self.inner.alerting_proxies()


class LocalFunctions:
    """The ingest and check handlers, imported as a cold start does, with their stdout captured.

    Each call passes the handler its inputs: the ingest its store and the time, the check a
    recorder around its own check and the simulated minute. Before each scheduled run, the stack's
    pinned-connections alarm is evaluated as CloudWatch would (:mod:`pinwatch.local.alarms`) and
    each contributor event it sends invokes the check first, as the stack's EventBridge rule does.
    """

    def __init__(
        self,
        ingest: ModuleType,
        check: ModuleType,
        output: io.StringIO,
        alarm: MetricsInsightsAlarm | None = None,
        *,
        alarms: Sequence[MetricsInsightsAlarm] = (),
        contributors: Callable[[], frozenset[str]] | None = None,
    ) -> None:
        """``alarms``: more alarms whose contributor events invoke the check (the organization's members');
        ``contributors``: the hot source the check is given (default: ``alarm``'s contributors in ALARM)."""
        self._ingest = ingest
        self._check = check
        self._alarms = [*([alarm] if alarm is not None else []), *alarms]
        self._contributors = contributors or (alarm.in_alarm if alarm is not None else frozenset)
        self._recorder = _RecordingCheck(check.CHECK)
        self.output = output

    def ingest(self, event: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
        with self._captured():
            result: dict[str, Any] = self._ingest.handle(
                dict(event), LambdaContext(memory_limit_in_mb=256), store=self._ingest.STORE, now_ms=now_ms
            )
        return result

    def stream(self, event: Mapping[str, Any], store: Any, now_ms: int) -> dict[str, Any]:
        """One Kinesis batch through the stream ingest function (organization mode: ``ingest`` is that module)."""
        with self._captured():
            result: dict[str, Any] = self._ingest.handle(
                dict(event), stream_context(), store=store, parking=self._ingest.PARKING, now_ms=now_ms
            )
        return result

    @contextlib.contextmanager
    def _captured(self) -> Iterator[None]:
        """The handler's stdout and warnings (e.g. Powertools' "no metrics") go to :attr:`output`, as in Lambda."""
        # Powertools' log handler keeps the stream it was created with, and both functions (and any
        # earlier handler import in this process) share the service's logger: point it here too.
        handlers = [
            h
            for h in {
                id(app.logger.registered_handler): app.logger.registered_handler for app in (self._ingest, self._check)
            }.values()
            if isinstance(h, logging.StreamHandler)
        ]
        streams = [h.stream for h in handlers]
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(self.output):
            warnings.simplefilter("always")
            for handler in handlers:
                handler.stream = self.output
            try:
                yield
            finally:
                for handler, stream in zip(handlers, streams, strict=True):
                    handler.stream = stream
                for warning in caught:
                    self.output.write(json.dumps({"level": "WARNING", "message": str(warning.message)}) + "\n")

    def check(
        self, now_ms: int, event: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | None, CheckResult | None, str | None]:
        """(summary, the run's result, error): a run whose alerting failed raises in Lambda; here it is reported."""
        earlier: list[CheckResult] = []
        contributors = self._contributors
        try:
            with self._captured():
                for alarm_event in (e for alarm in self._alarms for e in alarm.evaluate(now_ms)):
                    self._check.handle(
                        alarm_event, check_context(), check=self._recorder, now_ms=now_ms, contributors=contributors
                    )
                    if self._recorder.last is not None:
                        earlier.append(self._recorder.last)
                summary: dict[str, Any] = self._check.handle(
                    dict(event), check_context(), check=self._recorder, now_ms=now_ms, contributors=contributors
                )
        except Exception as exc:
            return None, self._merged(earlier), f"{type(exc).__name__}: {exc}"
        return summary, self._merged(earlier), None

    def _merged(self, earlier: list[CheckResult]) -> CheckResult | None:
        """This minute's runs as one result: the contributor-triggered ones, then the scheduled one."""
        runs = [*earlier, *([self._recorder.last] if self._recorder.last is not None else [])]
        if not runs:
            return None
        from pinwatch.check import CheckResult

        return CheckResult(tuple(o for run in runs for o in run.outcomes), runs[-1].checked_at_ms)


@contextlib.contextmanager
def handlers_with_check(
    app: Path, env: dict[str, str], endpoints: Endpoints
) -> Iterator[tuple[ModuleType, ModuleType, io.StringIO]]:
    """The handler at ``app`` and the check's, imported (in that order) with ``env`` and the emulation's
    AWS settings, which stay set while the block runs; what they print goes to the yielded buffer."""
    output = io.StringIO()
    with patched_environ(env | endpoints.aws_environment(), AWS_VARIABLES_TO_CLEAR):
        try:
            with contextlib.redirect_stdout(output):
                handler = load_handler(app)
                check = load_handler(CONNECTION_CHECK_APP)
        except HandlerNotFound as exc:
            raise DemoError(str(exc)) from None
        yield handler, check, output


@contextlib.contextmanager
def local_functions(stack: DemoStack) -> Iterator[LocalFunctions]:
    """Both handlers with the template's environment for this stack, for the duration of the block."""
    env = stack.function_environment("ConnectionCheckFunction") | stack.function_environment("PinIngestFunction")
    with handlers_with_check(PIN_INGEST_APP, env, stack.endpoints) as (ingest, check, output):
        alarm = MetricsInsightsAlarm(
            f"{stack.proxy}-pinned-connections", cloudwatch_series(client(stack.endpoints, "cloudwatch"))
        )
        yield LocalFunctions(ingest, check, output, alarm)
