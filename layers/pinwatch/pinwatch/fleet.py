"""Which proxies one check run reads: every proxy on the sweep, the hot ones in between, an alarm's contributors at once.

Reading seven metrics of every proxy every minute costs about $3 per proxy-month in
``GetMetricData`` alone (docs/fleet-scale.md). So the check reads the whole fleet only on a slower
*sweep* (every ``SWEEP_MINUTES``, default 15: discovery, trends, the exhaustion forecast, every
rule), and in the minutes between only the *hot* proxies: those with an open alert (they need their
re-notifications and their resolve hysteresis) and those a Metrics Insights alarm holds in ALARM.
The alarm — one per stack, ``SELECT SUM(DatabaseConnectionsCurrentlySessionPinned) FROM
SCHEMA("AWS/RDS", ProxyName) GROUP BY ProxyName``, billed per metric it analyzes — makes each proxy
a *contributor* with its own state, and EventBridge delivers a "CloudWatch Alarm Contributor State
Change" event naming the proxy in ``detail.alarmContributor.attributes`` (CloudWatch User Guide,
"Alarm events and EventBridge", multi time series example; "Create a CloudWatch alarm based on a
Metrics Insights query"). That event invokes the check for that proxy straight away, so a pinning
incident is diagnosed the minute the alarm sees it, not at the next sweep.

In organization mode (docs/organization.md) every member account has its own alarm of that query,
named ``pinwatch-pinned-connections``; an EventBridge rule in the member forwards its contributor
events to the monitoring account's event bus. The event's top-level ``account`` and ``region`` are
the member's ("EventBridge events", event structure: "account ... The 12-digit number identifying an
AWS account", "region ... Identifies the AWS Region where the event originated"), so the contributor
is named by its key, ``<account>:<region>:<ProxyName>`` (:mod:`pinwatch.scope`); so are the hot
proxies (alert state is kept by key), and the plan hands keys to the check. The members' alarms are
not polled between sweeps: the member rule forwards OK events too, the check remembers each
contributor's latest state from them (:func:`remember`, :mod:`pinwatch.store.hot_state`), and the
ones last seen in ALARM are hot, as the single-account alarm's contributors are.

Pure: parsing and planning only; the hot sets come from injected callables.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pinwatch.scope import Scope
from pinwatch.timebase import MINUTE_MS

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

logger = logging.getLogger(__name__)

CONTRIBUTOR_STATE_CHANGE = "CloudWatch Alarm Contributor State Change"
SCHEDULED_EVENT = "Scheduled Event"
PROXY_DIMENSION = "ProxyName"
ALARM_STATE = "ALARM"
OK_STATE = "OK"
DEFAULT_SWEEP_MINUTES = 15


class TriggerKind(StrEnum):
    SCHEDULE = "schedule"  # EventBridge's schedule: a sweep, or the hot proxies
    CONTRIBUTOR = "contributor"  # an alarm contributor changed state
    MANUAL = "manual"  # anything else (a console test, ``aws lambda invoke``): every proxy


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: TriggerKind
    proxies: tuple[str, ...] = ()  # the contributor's proxy (a contributor event only); its key in organization mode
    state: str | None = None  # the contributor's new state: ALARM or OK
    alarm: str | None = None
    time_ms: int | None = None  # the event's ``time`` (when the state changed), which orders repeated events


def parse_trigger(event: Mapping[str, Any] | None, *, qualified: bool = False) -> Trigger:
    """What invoked the check, from the invocation event.

    ``qualified`` (organization mode): the contributor is named by its key in the account and
    Region the event came from; an event without a valid account and Region names no proxy.
    """
    if not isinstance(event, Mapping):
        return Trigger(TriggerKind.MANUAL)
    detail_type = event.get("detail-type")
    if detail_type == SCHEDULED_EVENT:
        return Trigger(TriggerKind.SCHEDULE)
    if detail_type != CONTRIBUTOR_STATE_CHANGE:
        return Trigger(TriggerKind.MANUAL)
    detail = _mapping(event.get("detail"))
    attributes = _mapping(_mapping(detail.get("alarmContributor")).get("attributes"))
    state = _mapping(detail.get("state"))
    proxy = attributes.get(PROXY_DIMENSION)
    alarm = detail.get("alarmName")
    proxies: tuple[str, ...] = (proxy,) if isinstance(proxy, str) and proxy else ()
    if qualified and proxies:
        scope = event_scope(event)
        if scope is None:
            logger.warning("contributor event without a valid account and region; its proxy is read on the sweep")
        proxies = (scope.key(proxies[0]),) if scope is not None else ()
    return Trigger(
        TriggerKind.CONTRIBUTOR,
        proxies=proxies,
        state=str(state.get("value")) if state.get("value") is not None else None,
        alarm=str(alarm) if alarm is not None else None,
        time_ms=event_time_ms(event),
    )


def event_time_ms(event: Mapping[str, Any]) -> int | None:
    """An EventBridge event's ``time`` ("EventBridge events", event structure: ISO 8601, e.g. ``2026-12-06T13:40:00Z``)."""
    value = event.get("time")
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None  # EventBridge always sends UTC with its "Z"; a time without a zone orders nothing
    return int(when.timestamp() * 1000)


def event_scope(event: Mapping[str, Any]) -> Scope | None:
    """The account and Region an EventBridge event came from (its top-level fields), if valid."""
    account, region = event.get("account"), event.get("region")
    if not isinstance(account, str) or not isinstance(region, str):
        return None
    try:
        return Scope(account, region)
    except ValueError:
        return None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def sweep_due(now_ms: int, sweep_minutes: int) -> bool:
    """Whether the scheduled run at ``now_ms`` reads every proxy: on the minutes divisible by ``sweep_minutes``.

    Stateless (the minute of the clock, not a counter kept somewhere), so a cold start, a skipped
    run or several function instances change nothing.
    """
    return (now_ms // MINUTE_MS) % max(1, sweep_minutes) == 0


@dataclass(frozen=True, slots=True)
class RunPlan:
    """``names`` None: every proxy (the check's own configured names, or the whole region)."""

    names: tuple[str, ...] | None
    why: str

    @property
    def reads_every_proxy(self) -> bool:
        return self.names is None


HotSource = Callable[[], Iterable[str]]


class ContributorWatch(Protocol):
    """Where organization mode keeps each member contributor's latest state (:class:`~pinwatch.store.hot_state.ContributorWatchStore`)."""

    def record(self, proxy: str, state: str, event_ms: int) -> bool: ...

    def watched(self) -> frozenset[str]: ...


def remember(trigger: Trigger, watch: ContributorWatch) -> int:
    """Record a contributor event's proxy as watched (ALARM) or not (OK); the number of states stored.

    Anything else records nothing: another trigger, a contributor without a proxy (an event from no
    valid account), a state other than ALARM or OK, or an event without a time to order it by.
    A stale event (older than the one stored) is not counted. The store's errors propagate.
    """
    if trigger.kind is not TriggerKind.CONTRIBUTOR or trigger.state not in (ALARM_STATE, OK_STATE):
        return 0
    if trigger.time_ms is None:
        logger.warning("contributor event without a valid time; its proxy is read on the sweep")
        return 0
    return sum(watch.record(proxy, trigger.state, trigger.time_ms) for proxy in trigger.proxies)


def plan_run(
    trigger: Trigger,
    now_ms: int,
    *,
    sweep_minutes: int,
    hot_sources: Sequence[HotSource] = (),
    configured: Sequence[str] = (),
) -> RunPlan:
    """The proxies this invocation reads.

    A hot source that fails (the alert-state query, ``DescribeAlarmContributors``) is logged and
    skipped: its proxies are read on the next sweep at the latest, while the other source still counts.
    """
    if trigger.kind is TriggerKind.MANUAL:
        return RunPlan(None, "manual invocation: every proxy")
    if trigger.kind is TriggerKind.CONTRIBUTOR:
        if trigger.state != ALARM_STATE:
            # Back to OK: the schedule keeps reading the proxy while its alerts are open.
            return RunPlan((), f"alarm contributor {','.join(trigger.proxies) or '?'} is {trigger.state}")
        return RunPlan(_limited(trigger.proxies, configured), f"alarm {trigger.alarm or '?'} contributor in ALARM")
    if sweep_due(now_ms, sweep_minutes):
        return RunPlan(None, f"sweep (every {sweep_minutes} min)")
    hot: set[str] = set()
    for source in hot_sources:
        try:
            hot.update(source())
        except Exception:
            logger.warning("could not list hot proxies from one source; the next sweep reads them", exc_info=True)
    return RunPlan(_limited(sorted(hot), configured), "hot proxies only")


def _limited(names: Iterable[str], configured: Sequence[str]) -> tuple[str, ...]:
    """``names`` in order, without duplicates, restricted to the configured proxies if there are any."""
    allowed = set(configured)
    return tuple(n for n in dict.fromkeys(names) if not allowed or n in allowed)


class AlarmContributors:
    """Proxies the stack's Metrics Insights alarms hold in ALARM (``DescribeAlarmContributors``, one call per alarm page).

    The call is an ordinary CloudWatch API request (within the free tier's million, then about
    $0.01 per 1,000), made only by scheduled runs that are not sweeps.
    """

    def __init__(self, client: CloudWatchClient, alarm_names: Sequence[str], *, scope: Scope | None = None) -> None:
        """``scope``: the account and Region of the alarms, whose proxies are then named by key."""
        self._client = client
        self._alarm_names = tuple(alarm_names)
        self._scope = scope

    def in_alarm(self) -> frozenset[str]:
        proxies: set[str] = set()
        for alarm in self._alarm_names:
            kwargs: dict[str, Any] = {"AlarmName": alarm}
            while True:
                response = self._client.describe_alarm_contributors(**kwargs)
                for contributor in response.get("AlarmContributors", []):
                    name = contributor.get("ContributorAttributes", {}).get(PROXY_DIMENSION)
                    if name:
                        proxies.add(name if self._scope is None else self._scope.key(name))
                token = response.get("NextToken")
                if not token:
                    break
                kwargs["NextToken"] = token
        return frozenset(proxies)
