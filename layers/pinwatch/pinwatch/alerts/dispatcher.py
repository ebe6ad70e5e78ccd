"""One proxy's report in, at most one message per channel out, alert state updated.

``AlertDispatcher.process`` runs the whole alerting step for one proxy and one check run:

1. read the proxy's alert states (one Query);
2. let the policy decide per rule (new, escalated, renotify, resolved, pending retries);
3. render one message per channel covering every rule that transitioned (headline from the most
   severe), plus rules still owed to a channel that failed last time;
4. claim the rules involved with a conditional write (a lease) so an overlapping run skips instead
   of notifying twice; deliver to each channel independently and concurrently (a failing or slow
   channel never blocks the other); store the settled states and release the lease — also conditionally.

A run that crashes between the claim and the final write leaves a lease that expires after
``lease_ms``; the next run then decides again and re-sends, so a message is never lost.

Each channel is delivered in its own thread and waited for only until a wall-clock deadline: its
own (``ChannelSpec.deadline_s``) or the run's (``deadline``, from the Lambda's remaining time),
whichever comes first. A socket timeout alone cannot bound a send — a peer that trickles one byte
every few seconds never trips it — so a channel still busy at its deadline is abandoned and
counts as failed for that channel only (it may still arrive; the policy then re-sends it next run,
which is the lesser harm than losing SNS or the state write to the function's timeout).

In organization mode a channel may belong to one member account (``ChannelSpec.account``, from
``ACCOUNT_ROUTES``): it carries only that account's proxies (keys ``<account>:<region>:<name>``), in
addition to the central channels, under a name of its own (``slack:<account>``, ``sns:<account>``)
so the policy tracks its deliveries and retries apart. Being a channel like any other, it has its
own deadline and failure isolation: a routed webhook that is down degrades only itself.

A check run calls ``process`` once per proxy with the same ``now_ms``. A channel that failed
transiently is not tried again within that run: its messages for the remaining proxies fail at
once (and stay pending for the next run), so one run alerting on many proxies cannot spend the
function's timeout waiting, proxy after proxy, on a Slack or SNS that is down.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from pinwatch.alerts.channels import DeliveryOutcome, Sender
from pinwatch.alerts.policy import (
    GONE_STATUS,
    AlertState,
    DeliveryStatus,
    Plan,
    PolicySettings,
    RuleDecision,
    Transition,
    evaluate,
    settle,
)
from pinwatch.alerts.render import Alert
from pinwatch.findings import ProxyReport, Severity
from pinwatch.scope import split_key

logger = logging.getLogger(__name__)

# Wall-clock ceiling for one channel's send, retries included: above the Slack budget (20 s) and
# SNS's botocore retries (3 attempts, 3 s connect + 5 s read timeouts), well inside the function's 50 s.
DEFAULT_CHANNEL_DEADLINE_S = 25.0
DEFAULT_LEASE_MS = 120_000  # longer than one delivery (Slack budget + SNS retries), shorter than a check period x2


class AlertStore(Protocol):
    def load(self, proxy: str) -> dict[str, AlertState]: ...

    def save(self, states: Sequence[AlertState]) -> tuple[AlertState, ...] | None: ...

    def alerting_proxies(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """A channel: its name, how it renders an alert, and (unless preview-only) how it sends one."""

    name: str
    render: Callable[[Alert], dict[str, Any]]
    sender: Sender | None = None
    deadline_s: float = DEFAULT_CHANNEL_DEADLINE_S  # wall-clock limit of one send, whatever the peer does
    account: str | None = None  # a member account's own channel: only its proxies; None: every proxy

    def carries(self, proxy: str) -> bool:
        """Whether alerts about ``proxy`` (a plain name or a qualified key) go to this channel."""
        if self.account is None:
            return True
        scope, _ = split_key(proxy)
        return scope is not None and scope.account == self.account


@dataclass(frozen=True, slots=True)
class Notification:
    """One rule's part in this run's message: what was decided and where it went."""

    proxy: str
    rule: str
    transition: Transition
    severity: Severity  # for a resolution: the severity it had
    previous_severity: Severity | None
    summary: str
    channels: tuple[str, ...]
    retry: bool = False  # re-sent to channels that failed last time, not a new decision


@dataclass(frozen=True, slots=True)
class DispatchResult:
    proxy: str
    notifications: tuple[Notification, ...] = ()
    messages: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # channel -> rendered payload
    outcomes: Mapping[str, DeliveryOutcome] = field(default_factory=dict)  # channel -> how it went
    dry_run: bool = False
    skipped: str | None = None  # why this run left the proxy to another run
    state_saved: bool = False

    @property
    def delivered(self) -> tuple[str, ...]:
        return tuple(name for name, o in self.outcomes.items() if o.status is DeliveryStatus.ACCEPTED)

    @property
    def failures(self) -> tuple[DeliveryOutcome, ...]:
        return tuple(o for o in self.outcomes.values() if o.status in (DeliveryStatus.FAILED, DeliveryStatus.REJECTED))


class AlertDispatcher:
    """Applies the alert policy to reports and delivers the resulting messages."""

    def __init__(
        self,
        store: AlertStore | None,
        channels: Sequence[ChannelSpec],
        settings: PolicySettings | None = None,
        *,
        lease_ms: int = DEFAULT_LEASE_MS,
        run_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [c.name for c in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique: {names}")
        self._store = store
        self._channels = tuple(channels)
        self._settings = settings or PolicySettings()
        self._lease_ms = lease_ms
        self._run_id = run_id
        self._clock = clock
        self._failed_in_run: dict[str, int] = {}  # channel -> now_ms of the run it failed in

    @property
    def channels(self) -> tuple[str, ...]:
        """Channels that deliver (a channel without a sender only renders, for previews)."""
        return tuple(c.name for c in self._channels if c.sender is not None)

    def alerting_proxies(self) -> frozenset[str]:
        """Proxies with open alerts in the store (none without a store)."""
        return self._store.alerting_proxies() if self._store is not None else frozenset()

    def process(
        self, report: ProxyReport, now_ms: int, dry_run: bool = False, deadline: float | None = None
    ) -> DispatchResult:
        """Decide, render and (unless ``dry_run``) deliver and record this run's alerts for one proxy.

        ``deadline`` (a ``time.monotonic()`` value) is when every channel must have finished so
        the state write still fits in the run; a channel busy past it is abandoned as failed.

        A dry run reads the stored state but sends nothing and writes nothing. Without a store
        (``pinwatch check`` with no table) only dry runs are possible, and every finding looks new.
        """
        if self._store is None and not dry_run:
            raise RuntimeError("alert state needs the summary table; only dry runs work without one")
        states = self._store.load(report.proxy) if self._store is not None else {}
        run_id = self._run_id()
        if not dry_run:
            holder = _lease_holder(states, now_ms)
            if holder is not None:
                logger.info(
                    "another check run is delivering alerts for this proxy; skipping", extra={"proxy": report.proxy}
                )
                return DispatchResult(report.proxy, skipped=f"alert state leased by run {holder}")

        # A preview with no configured channel shows every format.
        specs = tuple(c for c in self._channels if c.carries(report.proxy))
        senders = tuple(c.name for c in specs if c.sender is not None)
        delivering = senders or (tuple(c.name for c in specs) if dry_run else ())
        plan = evaluate(
            report.proxy,
            report.findings,
            states,
            now_ms,
            self._settings,
            delivering,
            proxy_available=report.status.lower() == "available",
            proxy_gone=report.status == GONE_STATUS,
        )
        messages, render_failures = self._render(plan, report, now_ms, specs)
        notifications = _notifications(plan)
        if dry_run:
            skipped = {name: DeliveryOutcome(name, DeliveryStatus.SKIPPED, "dry run") for name in messages}
            return DispatchResult(report.proxy, notifications, messages, skipped, dry_run=True)
        assert self._store is not None

        if not any(d.send_to for d in plan.decisions):
            saved = self._store.save(settle(plan, {}))
            return DispatchResult(report.proxy, notifications, state_saved=saved is not None)

        claims = [
            replace(d.before, lease_owner=run_id, lease_until_ms=now_ms + self._lease_ms)
            for d in plan.decisions
            if d.send_to
        ]
        claimed = self._store.save(claims)
        if claimed is None:
            return DispatchResult(report.proxy, notifications, messages, skipped="another check run got there first")

        outcomes = dict(render_failures)
        targets = [(s, messages[s.name]) for s in specs if s.name in messages and s.sender is not None]
        outcomes.update(self._deliver_all(targets, now_ms, deadline))
        final = self._finalise(plan, claimed, outcomes)
        saved = self._store.save(final)
        if saved is None:
            logger.warning(
                "alert state changed while delivering (lease expired?); delivery outcome not recorded",
                extra={"proxy": report.proxy},
            )
        _log(report.proxy, notifications, outcomes)
        return DispatchResult(report.proxy, notifications, messages, outcomes, state_saved=saved is not None)

    @staticmethod
    def _render(
        plan: Plan, report: ProxyReport, now_ms: int, specs: Sequence[ChannelSpec]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, DeliveryOutcome]]:
        messages: dict[str, dict[str, Any]] = {}
        failures: dict[str, DeliveryOutcome] = {}
        for spec in specs:
            decisions = plan.for_channel(spec.name)
            if not decisions:
                continue
            try:
                messages[spec.name] = spec.render(Alert.from_decisions(report, decisions, now_ms))
            except Exception as exc:  # a rendering bug must not silence the other channel
                logger.exception("rendering the %s message failed", spec.name, extra={"proxy": report.proxy})
                failures[spec.name] = DeliveryOutcome(
                    spec.name, DeliveryStatus.REJECTED, f"render error: {type(exc).__name__}", 0, "render_error"
                )
        return messages, failures

    def _deliver_all(
        self, targets: Sequence[tuple[ChannelSpec, Mapping[str, Any]]], now_ms: int, deadline: float | None
    ) -> dict[str, DeliveryOutcome]:
        """Every channel at once, each in its own thread; nobody waits on another channel."""
        started = self._clock()
        outcomes: dict[str, DeliveryOutcome] = {}
        running: dict[str, tuple[_Delivery, float]] = {}
        for spec, payload in targets:
            if self._failed_in_run.get(spec.name) == now_ms:
                detail = "failed earlier in this check run; retried on the next run"
                outcomes[spec.name] = DeliveryOutcome(
                    spec.name, DeliveryStatus.FAILED, detail, 0, "skipped_after_failure"
                )
                continue
            limit = started + spec.deadline_s if deadline is None else min(started + spec.deadline_s, deadline)
            if limit <= started:
                detail = "the run's deadline was reached before sending; retried on the next run"
                outcomes[spec.name] = DeliveryOutcome(spec.name, DeliveryStatus.FAILED, detail, 0, "deadline")
                continue
            running[spec.name] = (_Delivery.start(spec, payload), limit)
        for name, (delivery, limit) in running.items():
            outcome = delivery.wait(max(0.0, limit - self._clock()))
            if outcome is None:
                # Abandoned: the thread is a daemon and ends with its socket; its result is ignored.
                logger.warning("the %s channel did not finish by its deadline; abandoned", name)
                detail = f"no result within {limit - started:.1f} s; abandoned (it may still arrive)"
                outcome = DeliveryOutcome(name, DeliveryStatus.FAILED, detail, 0, "deadline")
            outcomes[name] = outcome
        for name, outcome in outcomes.items():
            if outcome.status is DeliveryStatus.FAILED:
                self._failed_in_run[name] = now_ms
        return outcomes

    @staticmethod
    def _finalise(
        plan: Plan, claimed: Sequence[AlertState], outcomes: Mapping[str, DeliveryOutcome]
    ) -> list[AlertState]:
        """Settled states on top of the claimed versions, with the lease released."""
        claimed_by_rule = {s.rule: s for s in claimed}
        settled = {s.rule: s for s in settle(plan, {name: o.status for name, o in outcomes.items()})}
        final = []
        for rule in sorted(claimed_by_rule.keys() | settled.keys()):
            base = claimed_by_rule.get(rule)
            state = settled.get(rule, base)
            assert state is not None
            version = base.version if base is not None else state.version
            final.append(replace(state, version=version, lease_owner=None, lease_until_ms=None))
        return final


class _Delivery:
    """One channel's send running in a daemon thread (so an abandoned one never holds up exit)."""

    def __init__(self, spec: ChannelSpec, payload: Mapping[str, Any]) -> None:
        self._spec = spec
        self._payload = payload
        self._outcome: DeliveryOutcome | None = None
        self._thread = threading.Thread(target=self._run, name=f"pinwatch-{spec.name}", daemon=True)

    @classmethod
    def start(cls, spec: ChannelSpec, payload: Mapping[str, Any]) -> _Delivery:
        delivery = cls(spec, payload)
        delivery._thread.start()
        return delivery

    def _run(self) -> None:
        self._outcome = _deliver(self._spec, self._payload)

    def wait(self, timeout_s: float) -> DeliveryOutcome | None:
        """The outcome, or ``None`` when the send is still running after ``timeout_s``."""
        self._thread.join(timeout_s)
        return None if self._thread.is_alive() else self._outcome


def _deliver(spec: ChannelSpec, payload: Mapping[str, Any]) -> DeliveryOutcome:
    assert spec.sender is not None
    try:
        outcome = spec.sender.send(payload)
    except Exception as exc:  # senders report instead of raising; this is the safety net
        logger.exception("the %s channel raised instead of reporting", spec.name)
        return DeliveryOutcome(spec.name, DeliveryStatus.FAILED, f"unexpected {type(exc).__name__}", 0, "exception")
    # A sender names its kind ("slack"); the outcome names the channel (a routed one: "slack:<account>").
    return outcome if outcome.channel == spec.name else replace(outcome, channel=spec.name)


def _lease_holder(states: Mapping[str, AlertState], now_ms: int) -> str | None:
    for state in states.values():
        if state.lease_owner and state.lease_until_ms is not None and state.lease_until_ms > now_ms:
            return state.lease_owner
    return None


def _notifications(plan: Plan) -> tuple[Notification, ...]:
    out = []
    for decision in plan.decisions:
        transition = decision.shown_transition
        if transition is None or not decision.notifying:
            continue
        out.append(_notification(plan.proxy, decision, transition))
    return tuple(out)


def _notification(proxy: str, d: RuleDecision, transition: Transition) -> Notification:
    resolved = transition is Transition.RESOLVED
    severity = (d.after.last_notified_severity or Severity.WARNING) if resolved else d.after.severity
    return Notification(
        proxy=proxy,
        rule=d.rule,
        transition=transition,
        severity=severity,
        previous_severity=d.before.last_notified_severity if transition is Transition.ESCALATED else None,
        summary=d.finding.summary if d.finding is not None and not resolved else d.after.summary,
        channels=tuple(sorted(d.send_to)),
        retry=d.transition is None,
    )


def _log(proxy: str, notifications: Sequence[Notification], outcomes: Mapping[str, DeliveryOutcome]) -> None:
    logger.info(
        "alert notification",
        extra={
            "proxy": proxy,
            "rules": {n.rule: n.transition.value for n in notifications},
            "outcomes": {name: o.status.value for name, o in outcomes.items()},
        },
    )
