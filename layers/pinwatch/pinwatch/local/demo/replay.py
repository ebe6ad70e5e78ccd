"""The demo's replay: an incident driven through the two functions, minute by minute, on a simulated clock.

Each simulated minute the proxy's metrics go to CloudWatch with their simulated timestamps, its log
lines go to the log group and, as real subscription payloads, through the ingest handler; then the
check handler runs at that simulated minute. One payload is delivered twice. Nothing sleeps: the
simulated clock only moves the timestamps. What every channel received is collected per minute.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pinwatch.findings import CaptureNote, Severity
from pinwatch.local.demo.stack import DemoStack, LocalFunctions, client
from pinwatch.local.demo.verdicts import Stage, verify
from pinwatch.local.incident import Incident, IncidentMinute, LogLine
from pinwatch.local.lambda_harness import (
    SCHEDULE_EVENT_FILE,
    control_event,
    encode_subscription,
    schedule_event,
    subscription_document,
)
from pinwatch.metrics import NAMESPACE
from pinwatch.records import Kind
from pinwatch.store import keys
from pinwatch.store.summary import A_COUNT, A_REASON, SummaryStore
from pinwatch.timebase import MINUTE_MS

if TYPE_CHECKING:
    from pinwatch.check import CheckResult
    from pinwatch.local.slack_receiver import SlackReceiver

CHECK_DELAY_MS = 5_000  # the scheduled check runs a few seconds into the next minute, as EventBridge does

# --------------------------------------------------------------------------------------------
# What the replay observed


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
    proxy: str = ""  # the proxy's key: its name, or <account>:<region>:<name> in organization mode


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
    """One simulated minute, as it went.

    ``debug_logging``: the proxy's enhanced logging during the minute (pin lines were written only
    then); ``capture``: what reason capture did in the minute's check; ``withheld``: pin lines the
    proxy did not write because logging was off.
    """

    minute: IncidentMinute
    checked_at_ms: int
    ingest: tuple[IngestCall, ...]
    alerts: tuple[AlertEvent, ...]
    slack: tuple[SlackMessage, ...]
    sns: tuple[SnsMessage, ...]
    errors: tuple[str, ...]
    unhealthy: str | None  # the proxy's worst severity in this check, if not ok
    debug_logging: bool = True
    capture: CaptureNote | None = None
    withheld: int = 0


class _TickMessages(Protocol):
    """What a simulated minute of either demo notified."""

    @property
    def alerts(self) -> tuple[AlertEvent, ...]: ...
    @property
    def slack(self) -> tuple[SlackMessage, ...]: ...
    @property
    def sns(self) -> tuple[SnsMessage, ...]: ...


class ReplayOutcome:
    """What the single-account and the organization demo's results both read off their minutes and stages."""

    ticks: Sequence[_TickMessages]
    stages: list[Stage]

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


@dataclass
class DemoResult(ReplayOutcome):
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
    debug_logging_after: bool | None = None  # the proxy's enhanced logging once the replay ended

    @property
    def replayed_lines(self) -> list[LogLine]:
        """The lines the proxy wrote: pin lines only while enhanced logging was on."""
        return [line for t in self.ticks for line in _written(t.minute, t.debug_logging)]

    @property
    def ingest_calls(self) -> list[IngestCall]:
        return [c for t in self.ticks for c in t.ingest]

    @property
    def redeliveries(self) -> list[tuple[IngestCall, IngestCall]]:
        """(first delivery, redelivery) pairs of the payload delivered twice."""
        calls = self.ingest_calls
        return [(calls[i - 1], call) for i, call in enumerate(calls) if call.redelivery and i > 0]


# --------------------------------------------------------------------------------------------
# The replay


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
        self._schedule = schedule_event() if SCHEDULE_EVENT_FILE.exists() else {}

    def run(self) -> DemoResult:
        started = time.perf_counter()
        errors: list[str] = []
        try:
            # The subscription's reachability check.
            self.functions.ingest(control_event(self.stack.log_group, _wall_clock_ms()), _wall_clock_ms())
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
        written = Counter((line.kind, line.reason) for t in ticks for line in _written(t.minute, t.debug_logging))
        pins, would = _emf_counts(self.functions.output.getvalue(), self.stack.proxy)
        result = DemoResult(
            stack=self.stack,
            incident=self.incident,
            ticks=ticks,
            expected=written,
            table_hourly=hourly,
            table_totals=totals,
            emf_pin_events=pins,
            emf_would_pin_events=would,
            function_output=self.functions.output.getvalue(),
            seconds=time.perf_counter() - started,
            debug_logging_after=self.stack.debug_logging(),
        )
        result.stages = verify(result)
        return result

    def _minute(self, minute: IncidentMinute, errors: list[str]) -> Tick:
        self._put_metrics(minute)
        # A proxy writes pin lines only with enhanced logging on: what the check's capture switched.
        logging_on = self.stack.debug_logging()
        written = _written(minute, logging_on)
        calls: list[IngestCall] = []
        for stream, lines in _by_stream(written).items():
            self._put_log_events(stream, lines)
            log_events = [
                {"id": line.event_id, "timestamp": line.timestamp_ms, "message": line.message} for line in lines
            ]
            event = encode_subscription(subscription_document(self.stack.log_group, stream, log_events))
            deliveries = 2 if minute.index == self.redeliver_minute and not any(c.redelivery for c in calls) else 1
            for attempt in range(deliveries):
                try:
                    ingested = self.functions.ingest(event, _wall_clock_ms())
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
        capture = next((o.report.capture for o in result.outcomes), None) if result is not None else None
        return Tick(
            minute,
            now_ms,
            tuple(calls),
            alerts,
            slack,
            self._drain_queue(minute.index, now_ms),
            tuple(errors),
            unhealthy,
            debug_logging=logging_on,
            capture=capture,
            withheld=len(minute.lines) - len(written),
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
        return drain_subscriber(self._sqs, self.stack.queue_url, minute, now_ms)

    def _table_counts(self) -> tuple[Counter[tuple[Kind, str | None]], Counter[tuple[Kind, str | None]]]:
        return table_counts(
            self._dynamodb, self.stack.table, self.stack.proxy, self.incident.start_ms, self.incident.end_ms
        )


def drain_subscriber(sqs: Any, queue_url: str, minute: int, now_ms: int) -> tuple[SnsMessage, ...]:
    """What the topic's SQS subscriber received since the last call (the SNS envelope, unwrapped)."""
    received: list[SnsMessage] = []
    while True:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        messages = response.get("Messages", [])
        if not messages:
            return tuple(received)
        for message in messages:
            envelope = json.loads(message["Body"])
            attributes = {k: v.get("Value", "") for k, v in (envelope.get("MessageAttributes") or {}).items()}
            received.append(
                SnsMessage(minute, now_ms, envelope.get("Subject", ""), envelope.get("Message", ""), attributes)
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def table_counts(
    dynamodb: Any, table: str, key: str, start_ms: int, end_ms: int
) -> tuple[Counter[tuple[Kind, str | None]], Counter[tuple[Kind, str | None]]]:
    """Per (kind, reason) under one proxy key: the hourly items summed over the window, and the running totals."""
    store = SummaryStore(dynamodb, table)
    hourly: Counter[tuple[Kind, str | None]] = Counter()
    for item in store.hourly(key, start_ms, end_ms):
        hourly[(item.kind, item.reason if item.kind is not Kind.UNPARSED else None)] += item.count
    totals: Counter[tuple[Kind, str | None]] = Counter()
    # The running totals as `aws dynamodb query` reads them (a proxy has a handful: one page).
    for kind, prefix in ((Kind.PINNED, keys.pin_total_sk("")), (Kind.WOULD_PIN, keys.would_pin_total_sk(""))):
        response = dynamodb.query(
            TableName=table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": keys.proxy_pk(key)}, ":prefix": {"S": prefix}},
        )
        for item in response.get("Items", []):
            totals[(kind, item[A_REASON]["S"])] += int(item[A_COUNT]["N"])
    return hourly, totals


def _written(minute: IncidentMinute, debug_logging: bool) -> list[LogLine]:
    """The minute's lines as the proxy writes them: without enhanced logging, no pin or would-pin lines."""
    if debug_logging:
        return list(minute.lines)
    return [line for line in minute.lines if line.kind not in (Kind.PINNED, Kind.WOULD_PIN)]


def _by_stream(lines: Sequence[LogLine]) -> dict[str, list[LogLine]]:
    streams: dict[str, list[LogLine]] = {}
    for line in lines:
        streams.setdefault(line.stream, []).append(line)
    return streams


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
                proxy=outcome.report.proxy,
            )
            for note in dispatch.notifications
        )
    return tuple(events)


def _emf_counts(output: str, proxy: str) -> tuple[int, int]:
    """PinEvents and WouldPinEvents the ingest emitted (the per-invocation documents, not per reason).

    The metrics carry no proxy dimension (a series per proxy is billed per proxy); the demo stack
    watches `proxy` alone, so every ingest document is about it.
    """
    del proxy
    pins = would = 0
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        doc = json.loads(line)
        if "Reason" in doc or "PinEvents" not in doc:
            continue
        pins += int(sum(_values(doc.get("PinEvents"))))
        would += int(sum(_values(doc.get("WouldPinEvents"))))
    return pins, would


def _values(value: Any) -> list[float]:
    if value is None:
        return []
    return [float(v) for v in value] if isinstance(value, list) else [float(value)]


def _wall_clock_ms() -> int:
    """When the ingest runs: it stamps its writes (and their expiry) with Lambda's clock, not the simulated one."""
    return int(time.time() * 1000)
