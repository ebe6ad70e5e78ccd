"""``pinwatch demo --org``: organization mode end to end, on the same emulation and simulated clock.

The central (monitoring) account is the demo's stack (:func:`~pinwatch.local.demo.stack.create_stack`
without a proxy of its own): the summary table, the alert topic with its SQS subscriber, the Slack
secret; plus what organization mode adds (docs/organization.md): the organization's Kinesis stream
and the dead-letter queue the stream function parks undecodable records in. The check and stream
functions run with the environment ``template.yaml`` gives them with ``OrganizationId`` set (the
``OrgMode`` condition true, ``StackSetCallAs`` SELF: the emulation's monitoring account created
the StackSet itself).

Two member accounts (:mod:`pinwatch.local.org`: the member StackSet's stack instances create their
read role) each own an RDS proxy of the same name in us-east-1, created with that member's
credentials. Member 222222222222 has the pinning incident of :class:`~pinwatch.local.incident.Incident`
(enhanced logging off at first, so reason capture switches it on through the member role);
member 111111111111 runs a healthy day with a few pins of other reasons, logging on.

Each simulated minute, per member: its metrics go to the member's CloudWatch; the lines its proxy
writes go to the member's log group and, through the emulated CloudWatch Logs destination
(:mod:`pinwatch.local.log_destination`), into the Kinesis stream; the emulated event source mapping
(:mod:`pinwatch.local.stream_mapping`) delivers them to the real stream function. One record is
re-sent by the destination, and one record's write fails once (DynamoDB throttling it past the
SDK's retries) so the mapping retries it. Then the members' Metrics Insights alarms are evaluated
(:mod:`pinwatch.local.alarms`); each contributor event the member's rule forwards and the central
bus rule matches (both patterns read from the templates: ALARM and OK), carrying the member's
account and Region, invokes the real check (org mode), and the scheduled run follows.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pinwatch.findings import CaptureNote
from pinwatch.ingest import batch_id
from pinwatch.local import PROJECT_ROOT
from pinwatch.local.alarms import MetricsInsightsAlarm, pattern_matches
from pinwatch.local.demo.replay import (
    CHECK_DELAY_MS,
    AlertEvent,
    ReplayOutcome,
    SlackMessage,
    SnsMessage,
    _alerts,
    _by_stream,
    _emf_counts,
    _wall_clock_ms,
    _written,
    drain_subscriber,
    table_counts,
)
from pinwatch.local.demo.stack import (
    DemoError,
    DemoStack,
    Endpoints,
    LocalFunctions,
    client,
    create_stack,
    handlers_with_check,
)
from pinwatch.local.demo.verdicts import Stage
from pinwatch.local.incident import Incident, IncidentMinute, LogLine
from pinwatch.local.lambda_harness import (
    ACCOUNT_ID,
    SCHEDULE_EVENT_FILE,
    schedule_event,
)
from pinwatch.local.log_destination import LogDestination, Sent
from pinwatch.local.org import MEMBER_ACCOUNTS, EmulatedOrganization, setup_organization
from pinwatch.local.stream_mapping import PIN_STREAM_APP, MappingStats, StreamMapping, kinesis_record
from pinwatch.local.template import load_template
from pinwatch.metrics import NAMESPACE, PINNED
from pinwatch.records import Kind
from pinwatch.scope import Scope
from pinwatch.store.summary import ApplyResult, SummaryStore
from pinwatch.stream_ingest import scoped_delivery
from pinwatch.timebase import MINUTE_MS

if TYPE_CHECKING:
    from pinwatch.check import CheckResult
    from pinwatch.local.slack_receiver import SlackReceiver
    from pinwatch.tally import Tally

ORG_REGION = "us-east-1"  # the members' Region and the monitoring account's home Region
HEALTHY = Scope(MEMBER_ACCOUNTS[0], ORG_REGION)  # 111111111111: a normal day
PAGED = Scope(MEMBER_ACCOUNTS[1], ORG_REGION)  # 222222222222: the pinning incident
ORGANIZATION_ID = "o-pinwatchdemo"
HEALTHY_SEED = 1111  # another day's lines (ids, clients) than the incident's
POOL = {"MaxConnectionsPercent": 100, "ConnectionBorrowTimeout": 120}


# --------------------------------------------------------------------------------------------
# The healthy member's day


@dataclass(frozen=True, slots=True)
class Scenario:
    """One member proxy's minutes (metrics and the lines it would write) and its instance count."""

    minutes: tuple[IncidentMinute, ...]
    instances: int

    def __iter__(self) -> Iterator[IncidentMinute]:
        return iter(self.minutes)

    def __getitem__(self, index: int) -> IncidentMinute:
        return self.minutes[index]

    def __len__(self) -> int:
        return len(self.minutes)


def paged_scenario(incident: Incident) -> Scenario:
    """The incident, with no session pinned before the release.

    The member alarm's contributor then turns ALARM with the release, and its event brings the
    check to the proxy: between sweeps organization mode reads only the proxies whose last
    contributor event was ALARM and those with open alerts (``wiring.contributor_watch``).
    """
    minutes = tuple(replace(m, metrics={**m.metrics, PINNED: 0.0}) if m.index < incident.onset else m for m in incident)
    return Scenario(minutes, incident.instances)


def healthy_scenario(proxy: str, start_ms: int, minutes: int, *, instances: int = 2) -> Scenario:
    """The incident's calm minutes, all day long: steady metrics, a parse message or a long statement now and then."""
    # From an incident of another seed: its lines before the release are a normal day's.
    base = Incident(proxy, start_ms, minutes, instances=instances, seed=HEALTHY_SEED)
    calm = base.metrics(0)
    return Scenario(
        tuple(IncidentMinute(m.index, m.start_ms, calm, tuple(line for line in m.lines if _calm(line))) for m in base),
        instances,
    )


def _calm(line: LogLine) -> bool:
    """The incident's own lines left out: its session-settings pins, would-pins and the line cut short."""
    return line.reason != "session_settings" and line.kind not in (Kind.WOULD_PIN, Kind.UNPARSED)


MEMBER_TEMPLATE = PROJECT_ROOT / "org" / "member.yaml"


def contributor_rule_patterns() -> tuple[dict[str, Any], dict[str, Any]]:
    """The event patterns of the member's forwarding rule (org/member.yaml) and the central bus rule (template.yaml)."""
    member = load_template(MEMBER_TEMPLATE)
    central = load_template()
    return (
        _resolved(member["Resources"]["ForwardContributorsRule"]["Properties"]["EventPattern"], member),
        _resolved(central["Resources"]["OrgContributorRule"]["Properties"]["EventPattern"], central),
    )


def _resolved(value: Any, template: Mapping[str, Any]) -> Any:
    """``value`` with the template's ``Fn::FindInMap`` resolved (the member pattern names its alarm through one)."""
    if isinstance(value, Mapping):
        if set(value) == {"Fn::FindInMap"}:
            mapping, key, name = value["Fn::FindInMap"]
            return template["Mappings"][mapping][key][name]
        return {k: _resolved(v, template) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, template) for v in value]
    return value


class RecordedAlarm(MetricsInsightsAlarm):
    """A member's alarm whose events pass the two rules to the check, and are kept (what reached the central bus)."""

    def __init__(self, alarm: MetricsInsightsAlarm, patterns: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(**{f.name: getattr(alarm, f.name) for f in fields(alarm)})
        self.patterns = tuple(patterns)
        self.sent: list[dict[str, Any]] = []

    def evaluate(self, now_ms: int) -> list[dict[str, Any]]:
        events = [e for e in super().evaluate(now_ms) if all(pattern_matches(p, e) for p in self.patterns)]
        self.sent.extend(events)
        return events


# --------------------------------------------------------------------------------------------
# The stack


@dataclass(frozen=True, slots=True)
class Member:
    scope: Scope
    proxy: str
    log_group: str

    @property
    def key(self) -> str:
        return self.scope.key(self.proxy)


@dataclass(frozen=True, slots=True)
class OrgStack:
    """The central stack with organization mode's resources, and the emulated organization."""

    central: DemoStack
    organization: EmulatedOrganization
    members: tuple[Member, ...]
    stack_name: str
    stream_name: str
    dead_letter_queue_url: str

    @property
    def endpoints(self) -> Endpoints:
        return self.central.endpoints

    @property
    def destination_arn(self) -> str:
        return f"arn:aws:logs:{ORG_REGION}:{self.organization_account}:destination:{self.stack_name}-pins"

    @property
    def organization_account(self) -> str:
        """The monitoring account: moto's default, whose credentials the demo runs with."""
        return ACCOUNT_ID

    def member(self, scope: Scope) -> Member:
        return next(m for m in self.members if m.scope == scope)

    def debug_logging(self, member: Member) -> bool:
        """The member proxy's enhanced logging, as ``DescribeDBProxies`` in the member reports it."""
        rds = self.organization.member_client(member.scope.account, "rds", member.scope.region)
        proxies = rds.describe_db_proxies(DBProxyName=member.proxy).get("DBProxies", [])
        return bool(proxies and proxies[0].get("DebugLogging"))

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment from the template in organization mode, for this stack."""
        return self.central.function_environment(
            logical_id,
            parameters={
                "OrganizationId": ORGANIZATION_ID,
                "StackSetCallAs": "SELF",
                "ProxyNames": "",  # every proxy of every member
                "AWS::StackName": self.stack_name,
            },
            resources={"IngestDeadLetterQueue": self.dead_letter_queue_url},
            conditions={"OrgMode": True, "SingleAccount": False},
        )


def create_org_stack(endpoints: Endpoints, proxy: str, slack_url: str, *, suffix: str | None = None) -> OrgStack:
    """The central stack, its organization stream and dead-letter queue, and two members with ``proxy`` each."""
    suffix = suffix or uuid.uuid4().hex[:8]
    central = create_stack(endpoints, proxy, slack_url, suffix=suffix, with_proxy=False)
    stack_name = f"pinwatch-demo-{suffix}"

    kinesis = client(endpoints, "kinesis")
    stream_name = f"{stack_name}-org-pins"
    template = load_template()
    shards = int(template["Parameters"]["OrgStreamShards"]["Default"])
    kinesis.create_stream(StreamName=stream_name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream_name, WaiterConfig={"Delay": 1})
    dead_letters = client(endpoints, "sqs").create_queue(QueueName=f"{stack_name}-dlq")["QueueUrl"]

    # The template names the member StackSet after the stack (ORG_MEMBER_STACK_SET).
    organization = setup_organization(
        endpoints.moto,
        (HEALTHY, PAGED),
        stack_set=f"{stack_name}-member",
        home_region=ORG_REGION,
        member_home_region=ORG_REGION,
    )
    members = []
    for scope in (HEALTHY, PAGED):
        # The paged member runs its proxy as most do, enhanced logging off; the healthy one keeps it on.
        organization.create_proxy(scope, proxy, "POSTGRESQL", debug_logging=scope == HEALTHY, pool=POOL)
        log_group = f"/aws/rds/proxy/{proxy}"
        organization.member_client(scope.account, "logs", scope.region).create_log_group(logGroupName=log_group)
        members.append(Member(scope, proxy, log_group))
    return OrgStack(central, organization, tuple(members), stack_name, stream_name, dead_letters)


# --------------------------------------------------------------------------------------------
# The functions


class RecordingStore:
    """The stream function's store, with each ``apply_batch`` and its outcome kept (how records were applied)."""

    def __init__(self, inner: SummaryStore) -> None:
        self.inner = inner
        self.applied: list[tuple[str, ApplyResult | None, str | None]] = []  # batch id, result, error

    def apply_batch(self, batch_id: str, tally: Tally, now_ms: int) -> ApplyResult:
        try:
            result = self.inner.apply_batch(batch_id, tally, now_ms)
        except Exception as exc:
            self.applied.append((batch_id, None, f"{type(exc).__name__}: {exc}"))
            raise
        self.applied.append((batch_id, result, None))
        return result


class Throttle:
    """Makes the store's next ``TransactWriteItems`` fail once, as DynamoDB throttling past the SDK's retries does."""

    def __init__(self, dynamodb: Any) -> None:
        self.armed = False
        dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", self._before_call)

    def _before_call(self, **_: Any) -> None:
        if not self.armed:
            return
        self.armed = False
        raise ClientError(
            {
                "Error": {
                    "Code": "ProvisionedThroughputExceededException",
                    "Message": "The level of configured provisioned throughput for the table was exceeded (emulated)",
                }
            },
            "TransactWriteItems",
        )


@dataclass
class OrgFunctions:
    """The check and stream functions of the central stack, with the stream function's store recorded."""

    functions: LocalFunctions
    store: RecordingStore
    throttle: Throttle
    alarms: list[RecordedAlarm]

    def alarm_events(self) -> list[dict[str, Any]]:
        return [e for alarm in self.alarms for e in alarm.sent]


@contextlib.contextmanager
def org_functions(stack: OrgStack) -> Iterator[OrgFunctions]:
    """Both organization-mode handlers with the template's environment, for the duration of the block."""
    env = stack.function_environment("ConnectionCheckFunction") | stack.function_environment("PinStreamFunction")
    with handlers_with_check(PIN_STREAM_APP, env, stack.endpoints) as (stream_app, check_app, output):
        if not check_app.CONFIG.org_mode:
            raise DemoError("the template's check environment has no organization settings (ORG_MEMBER_STACK_SET)")
        # The members' alarms send their contributor events to the central bus, whose rule invokes the
        # check. Organization mode reads no alarm state between sweeps (wiring.alarm_contributors): the
        # check keeps the states those events carry (wiring.contributor_watch, in the summary table).
        patterns = contributor_rule_patterns()
        alarms = [RecordedAlarm(stack.organization.member_alarm(m.scope), patterns) for m in stack.members]
        functions = LocalFunctions(stream_app, check_app, output, alarms=alarms, contributors=frozenset)
        # The function's own store, on a client of its own, so the emulated throttle touches nothing else.
        dynamodb = client(stack.endpoints, "dynamodb")
        store = RecordingStore(SummaryStore(dynamodb, stack.central.table, ttl_days=stream_app.CONFIG.ingest.ttl_days))
        yield OrgFunctions(functions, store, Throttle(dynamodb), alarms)


# --------------------------------------------------------------------------------------------
# What the replay observed


@dataclass(frozen=True, slots=True)
class Record:
    """One record the destination put into the stream, with the batch id the stream function files it under."""

    minute: int
    scope: Scope | None  # None: the control message
    stream: str
    lines: int
    sequence_number: str
    batch_id: str | None
    resent: bool = False


@dataclass(frozen=True, slots=True)
class MemberMinute:
    """One member in one minute: what its proxy wrote, and what the check made of it."""

    scope: Scope
    metrics: Mapping[str, float]
    debug_logging: bool
    written: int
    withheld: int
    unhealthy: str | None
    capture: CaptureNote | None


@dataclass(frozen=True, slots=True)
class OrgTick:
    index: int
    start_ms: int
    checked_at_ms: int
    note: str | None
    members: tuple[MemberMinute, ...]
    records: tuple[Record, ...]
    throttled: bool
    alerts: tuple[AlertEvent, ...]
    slack: tuple[SlackMessage, ...]
    sns: tuple[SnsMessage, ...]
    errors: tuple[str, ...]
    triggers: tuple[str, ...]  # what invoked the check this minute, in order
    contributor_events: tuple[Mapping[str, Any], ...] = ()  # the member alarms' events that invoked it
    checked: frozenset[str] = frozenset()  # the proxy keys the check read this minute


@dataclass
class MemberCounts:
    member: Member
    expected: Counter[tuple[Kind, str | None]]  # the lines the destination forwarded (pins, would-pins)
    hourly: Counter[tuple[Kind, str | None]]
    totals: Counter[tuple[Kind, str | None]]


@dataclass
class OrgDemoResult(ReplayOutcome):
    stack: OrgStack
    start_ms: int
    end_ms: int
    fix: int
    ticks: list[OrgTick]
    counts: list[MemberCounts]
    keys_in_table: set[str]
    applied: list[tuple[str, ApplyResult | None, str | None]]
    mapping: MappingStats
    parked: int
    emf_pin_events: int
    function_output: str
    seconds: float
    stages: list[Stage] = field(default_factory=list)

    @property
    def records(self) -> list[Record]:
        return [r for t in self.ticks for r in t.records]

    def applies(self, batch: str) -> list[tuple[ApplyResult | None, str | None]]:
        """Every ``apply_batch`` of one record's batch id, in order."""
        return [(result, error) for bid, result, error in self.applied if bid == batch]


# --------------------------------------------------------------------------------------------
# The replay


class OrgReplay:
    """The paged member's incident and the healthy member's day, through both functions, minute by minute."""

    def __init__(
        self,
        stack: OrgStack,
        functions: OrgFunctions,
        minutes: int,
        start_ms: int,
        receiver: SlackReceiver,
        *,
        on_tick: Callable[[OrgTick], None] | None = None,
    ) -> None:
        self.stack = stack
        self.functions = functions
        self.receiver = receiver
        self.on_tick = on_tick
        paged, healthy = stack.member(PAGED), stack.member(HEALTHY)
        self.incident = Incident(paged.proxy, start_ms, minutes)
        self.scenarios: list[tuple[Member, Scenario]] = [
            (healthy, healthy_scenario(healthy.proxy, start_ms, minutes)),
            (paged, paged_scenario(self.incident)),
        ]
        # The destination re-sends a record two minutes before the fix; a write is throttled from the
        # incident's onset on, in the first minute whose poll carries more than one record.
        self.resend_from = self.incident.fix - 2
        self.throttle_from = self.incident.onset
        endpoints = stack.endpoints
        self._sqs = client(endpoints, "sqs")
        self._dynamodb = client(endpoints, "dynamodb")
        self._kinesis = client(endpoints, "kinesis")
        self.destination = LogDestination(self._kinesis, stack.stream_name)
        settings = load_template()["Resources"]["PinStreamFunction"]["Properties"]["Events"]["OrgPins"]["Properties"]
        self.mapping = StreamMapping(
            self._kinesis,
            stack.stream_name,
            self._invoke_stream,
            batch_size=int(settings["BatchSize"]),
            maximum_retry_attempts=int(settings["MaximumRetryAttempts"]),
            bisect_on_function_error=bool(settings["BisectBatchOnFunctionError"]),
        )
        self._streams: set[tuple[Scope, str]] = set()
        self._schedule = schedule_event() if SCHEDULE_EVENT_FILE.exists() else {}
        self._resent = False
        self._throttled = False

    def _invoke_stream(self, event: dict[str, Any]) -> Any:
        return self.functions.functions.stream(event, self.functions.store, _wall_clock_ms())

    def run(self) -> OrgDemoResult:
        started = time.perf_counter()
        errors: list[str] = []
        # The destination's reachability check, as CloudWatch Logs sends when a member subscribes.
        control = self.destination.control(self.stack.destination_arn, _wall_clock_ms())
        pending = [Record(0, None, "", 0, control.sequence_number, None)]
        ticks = []
        for index in range(len(self.incident)):
            tick = self._minute(index, pending, errors)
            pending, errors = [], []
            ticks.append(tick)
            if self.on_tick is not None:
                self.on_tick(tick)
        counts = [self._counts(member, scenario, ticks) for member, scenario in self.scenarios]
        keys_in_table = {p.proxy for p in SummaryStore(self._dynamodb, self.stack.central.table).proxies()}
        parked = int(
            self._sqs.get_queue_attributes(
                QueueUrl=self.stack.dead_letter_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        output = self.functions.functions.output.getvalue()
        pins, _ = _emf_counts(output, "")
        result = OrgDemoResult(
            stack=self.stack,
            start_ms=self.incident.start_ms,
            end_ms=self.incident.end_ms,
            fix=self.incident.fix,
            ticks=ticks,
            counts=counts,
            keys_in_table=keys_in_table,
            applied=list(self.functions.store.applied),
            mapping=self.mapping.stats,
            parked=parked,
            emf_pin_events=pins,
            function_output=output,
            seconds=time.perf_counter() - started,
        )
        from pinwatch.local.demo.org_verdicts import verify_org

        result.stages = verify_org(result)
        return result

    def _minute(self, index: int, records: list[Record], errors: list[str]) -> OrgTick:
        states: list[tuple[Member, IncidentMinute, bool, list[LogLine]]] = []
        for member, scenario in self.scenarios:
            minute = scenario[index]
            self._put_metrics(member, minute, scenario.instances)
            # A proxy writes pin lines only with enhanced logging on: what the check's capture switched.
            logging_on = self.stack.debug_logging(member)
            written = _written(minute, logging_on)
            states.append((member, minute, logging_on, written))
            for stream, lines in _by_stream(written).items():
                self._put_log_events(member, stream, lines)
                sent = self.destination.deliver(
                    member.scope.account,
                    member.scope.region,
                    member.log_group,
                    stream,
                    [{"id": line.event_id, "timestamp": line.timestamp_ms, "message": line.message} for line in lines],
                )
                if sent is not None:
                    records.append(self._record(index, member.scope, sent))
        paged = [r for r in records if r.scope == PAGED]
        if not self._resent and index >= self.resend_from and paged:
            # At-least-once delivery: CloudWatch Logs puts the same record again.
            again = self.destination.resend(self._sent(paged[0]))
            records.append(self._record(index, PAGED, again, resent=True))
            self._resent = True
        throttled = False
        if not self._throttled and index >= self.throttle_from and sum(r.scope is not None for r in records) > 1:
            self.functions.throttle.armed = True
            self._throttled = throttled = True
        try:
            self.mapping.poll()
        except Exception as exc:
            errors.append(f"event source mapping: {type(exc).__name__}: {exc}")
        self.functions.throttle.armed = False

        now_ms = self.incident[index].end_ms + CHECK_DELAY_MS
        slack_before = len(self.receiver.requests)
        output_before = len(self.functions.functions.output.getvalue())
        events_before = len(self.functions.alarm_events())
        summary, result, error = self.functions.functions.check(now_ms, self._schedule_event(now_ms))
        if error:
            errors.append(f"check: {error}")
        slack = tuple(SlackMessage(index, now_ms, r.json()) for r in self.receiver.requests[slack_before:])
        unhealthy = (summary or {}).get("unhealthyProxies", {})
        members = tuple(
            MemberMinute(
                member.scope,
                minute.metrics,
                logging_on,
                len(written),
                len(minute.lines) - len(written),
                unhealthy.get(member.key),
                _capture(result, member.key),
            )
            for member, minute, logging_on, written in states
        )
        return OrgTick(
            index,
            self.incident[index].start_ms,
            now_ms,
            self.incident[index].note,
            members,
            tuple(records),
            throttled,
            _alerts(index, now_ms, result),
            slack,
            drain_subscriber(self._sqs, self.stack.central.queue_url, index, now_ms),
            tuple(errors),
            _triggers(self.functions.functions.output.getvalue()[output_before:]),
            tuple(self.functions.alarm_events()[events_before:]),
            frozenset(o.report.proxy for o in result.outcomes) if result is not None else frozenset(),
        )

    def _record(self, minute: int, scope: Scope, sent: Sent, *, resent: bool = False) -> Record:
        # The batch id the stream function computes from the record (owner, Region, group, stream, ids).
        delivery = scoped_delivery(_kinesis_stream_record(sent, self.mapping.stream_arn))
        return Record(
            minute,
            scope,
            str(sent.document.get("logStream", "")),
            len(sent.document.get("logEvents", [])),
            sent.sequence_number,
            batch_id(delivery),
            resent,
        )

    def _sent(self, record: Record) -> Sent:
        return next(s for s in self.destination.sent if s.sequence_number == record.sequence_number)

    def _put_metrics(self, member: Member, minute: IncidentMinute, instances: int) -> None:
        """Each proxy instance publishes its share at the middle of the minute, in the member account."""
        when = datetime.fromtimestamp((minute.start_ms + MINUTE_MS // 2) / 1000, tz=UTC)
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": "ProxyName", "Value": member.proxy}],
                "Timestamp": when,
                "Value": value / instances,
            }
            for name, value in minute.metrics.items()
            for _ in range(instances)
        ]
        cloudwatch = self.stack.organization.member_client(member.scope.account, "cloudwatch", member.scope.region)
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)

    def _put_log_events(self, member: Member, stream: str, lines: Sequence[LogLine]) -> None:
        """The member's proxy log group gets the lines, as the proxy writes them."""
        logs = self.stack.organization.member_client(member.scope.account, "logs", member.scope.region)
        if (member.scope, stream) not in self._streams:
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_stream(logGroupName=member.log_group, logStreamName=stream)
            self._streams.add((member.scope, stream))
        logs.put_log_events(
            logGroupName=member.log_group,
            logStreamName=stream,
            logEvents=[{"timestamp": line.timestamp_ms, "message": line.message} for line in lines],
        )

    def _schedule_event(self, now_ms: int) -> dict[str, Any]:
        event = dict(self._schedule)
        event["id"] = str(uuid.uuid4())
        event["time"] = datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return event

    def _counts(self, member: Member, scenario: Scenario, ticks: list[OrgTick]) -> MemberCounts:
        # What the destination forwards: the lines the proxy wrote that pass the pin pattern.
        expected: Counter[tuple[Kind, str | None]] = Counter()
        for tick in ticks:
            state = next(m for m in tick.members if m.scope == member.scope)
            for line in _written(scenario[tick.index], state.debug_logging):
                if line.kind in (Kind.PINNED, Kind.WOULD_PIN):
                    expected[(line.kind, line.reason)] += 1
        hourly, totals = table_counts(
            self._dynamodb, self.stack.central.table, member.key, self.incident.start_ms, self.incident.end_ms
        )
        return MemberCounts(member, expected, hourly, totals)


def _kinesis_stream_record(sent: Sent, stream_arn: str) -> Any:
    from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

    return KinesisStreamRecord(
        kinesis_record(
            sent.data,
            sequence_number=sent.sequence_number,
            shard_id=sent.shard_id,
            partition_key=sent.partition_key,
            stream_arn=stream_arn,
            region=ORG_REGION,
        )
    )


def _capture(result: CheckResult | None, key: str) -> CaptureNote | None:
    if result is None:
        return None
    return next((o.report.capture for o in result.outcomes if o.report.proxy == key and o.report.capture), None)


def _triggers(output: str) -> tuple[str, ...]:
    """The ``trigger`` of each ``Check complete`` line the check function logged (why it ran, what it read)."""
    found = []
    for line in output.splitlines():
        if '"Check complete"' not in line:
            continue
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            found.append(str(doc.get("trigger", "")))
    return tuple(found)


def incident_start(minutes: int, now_ms: int | None = None) -> int:
    """The replay ends a minute before now, so the table's hours and ``pinwatch report`` line up with real time."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    return now - now % MINUTE_MS - (minutes + 1) * MINUTE_MS
