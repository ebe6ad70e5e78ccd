"""Reason capture: when pinwatch switches a proxy's enhanced logging on, and when off again. Pure.

RDS Proxy writes a pin line with its reason and statement digest only while enhanced logging
(``DebugLogging``) is on, and "automatically turns this setting off 24 hours after you enable it"
(RDS User Guide, rds-proxy-setup / rds-proxy-creating.html). It also logs statement text and
"increases CloudWatch costs and can impact proxy performance" (API reference, DBProxy
``DebugLogging``). So by default pinwatch leaves it alone (``off``); ``on-incident`` switches it on
while a pinning incident lasts, ``always`` keeps it on (staging).

:func:`decide` takes what pinwatch stored about its own switching (:class:`CaptureState`), what the
proxy reports now and whether an incident is on, and returns one :class:`Decision`. Rules:

* it only ever switches off logging that pinwatch switched on and that is still on;
* it never re-enables during the incident when someone else switched it off meanwhile, nor after
  the cap for the same incident; after an ordinary stop it waits a cooldown (no flapping);
* it holds a capture at least ``min_hold_minutes`` and at most ``cap_minutes``;
* after a failed ``ModifyDBProxy`` it waits ``retry_minutes`` before trying again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from pinwatch.findings import CaptureNote, Finding, Severity
from pinwatch.timebase import HOUR_MS, MINUTE_MS

# Rules whose warning means "pins are hurting now": the incident a capture is for.
INCIDENT_RULES = frozenset({"pinned_share", "multiplexing_lost", "exhaustion_forecast", "open_transactions"})
# AWS switches enhanced logging off 24 h after it was enabled; renew an hour before that.
AUTO_OFF_MS = 24 * HOUR_MS
DEFAULT_RENEW_AFTER_MINUTES = (AUTO_OFF_MS - HOUR_MS) // MINUTE_MS


class CaptureMode(StrEnum):
    OFF = "off"
    ON_INCIDENT = "on-incident"
    ALWAYS = "always"


class Action(StrEnum):
    ENABLE = "enable"  # ModifyDBProxy(DebugLogging=True), pinwatch now owns the capture
    RENEW = "renew"  # DebugLogging=True again on a capture pinwatch owns (always mode, before the 24 h switch-off)
    DISABLE = "disable"  # ModifyDBProxy(DebugLogging=False) on a capture pinwatch owns
    KEEP = "keep"  # a capture runs; nothing to call
    RELEASE = "release"  # someone else switched it off: pinwatch stops owning the capture, calls nothing
    NONE = "none"  # nothing to do


class StopCause(StrEnum):
    RESOLVED = "resolved"  # the incident ended and reasons were captured
    CAP = "cap"  # the capture reached its maximum length
    EXTERNAL = "external"  # switched off outside pinwatch (a person, or AWS's 24-hour switch-off)
    SETTINGS = "settings"  # capture was switched off in pinwatch's settings


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    mode: CaptureMode = CaptureMode.OFF
    cap_minutes: int = 120
    min_hold_minutes: int = 5  # no on-off-on within a few checks; the cooldown guards re-enabling
    cooldown_minutes: int = 30
    retry_minutes: int = 15
    renew_after_minutes: int = DEFAULT_RENEW_AFTER_MINUTES


@dataclass(frozen=True, slots=True)
class CaptureState:
    """What pinwatch recorded about its own switching on one proxy (the ``CAPTURE`` item).

    ``active``: pinwatch switched logging on at ``started_ms`` (last call ``enabled_ms``) and has not
    switched it off. ``stopped_ms`` / ``stop_cause``: the last capture's end. ``quiet_since_stop``:
    a check without an incident ran since then (so a later incident is a new one).
    """

    proxy: str
    active: bool = False
    started_ms: int | None = None
    enabled_ms: int | None = None
    stopped_ms: int | None = None
    stop_cause: StopCause | None = None
    quiet_since_stop: bool = False
    failed_ms: int | None = None
    error: str | None = None
    version: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str  # one sentence for people: why this action
    state: CaptureState  # what to store after the action succeeded (same as the input for NONE/KEEP)

    @property
    def changes_state(self) -> bool:
        return self.action is not Action.NONE and self.action is not Action.KEEP


def is_incident(findings: Iterable[Finding]) -> bool:
    """A pin-related rule is at warning or worse (findings without enough data do not count)."""
    return any(
        f.rule in INCIDENT_RULES and f.severity.rank >= Severity.WARNING.rank and not f.insufficient_data
        for f in findings
    )


def decide(
    settings: CaptureSettings,
    state: CaptureState | None,
    *,
    proxy: str,
    debug_logging: bool | None,
    incident: bool,
    reasons_captured: bool,
    now_ms: int,
    in_scope: bool = True,
) -> Decision:
    """The action for one proxy in one check run. ``in_scope``: the proxy is one capture applies to."""
    current = state or CaptureState(proxy)
    mode = settings.mode if in_scope else CaptureMode.OFF
    if debug_logging is None:
        return Decision(Action.NONE, "the proxy did not report its enhanced-logging setting", current)

    if current.active:
        if not debug_logging:
            if mode is CaptureMode.ALWAYS:
                return _enable(current, now_ms, "always on: enhanced logging was off again (24-hour switch-off)")
            released = replace(
                current,
                active=False,
                stopped_ms=now_ms,
                stop_cause=StopCause.EXTERNAL,
                quiet_since_stop=not incident,
            )
            return Decision(
                Action.RELEASE,
                "enhanced logging was switched off outside pinwatch; pinwatch leaves it off for this incident",
                released,
            )
        if mode is CaptureMode.OFF:
            return _disable(current, now_ms, StopCause.SETTINGS, "reason capture is switched off in the settings")
        if mode is CaptureMode.ALWAYS:
            since = current.enabled_ms if current.enabled_ms is not None else current.started_ms or now_ms
            if now_ms - since >= settings.renew_after_minutes * MINUTE_MS:
                renewed = replace(current, enabled_ms=now_ms, failed_ms=None, error=None)
                return Decision(Action.RENEW, "always on: renewing before AWS's 24-hour switch-off", renewed)
            return Decision(Action.KEEP, "always on", current)
        started = current.started_ms if current.started_ms is not None else now_ms
        held = now_ms - started
        if held >= settings.cap_minutes * MINUTE_MS:
            return _disable(current, now_ms, StopCause.CAP, f"capture reached its {settings.cap_minutes}-minute cap")
        if not incident and reasons_captured and held >= settings.min_hold_minutes * MINUTE_MS:
            return _disable(current, now_ms, StopCause.RESOLVED, "the incident is over and its reasons were captured")
        return Decision(Action.KEEP, "capturing while the incident lasts", current)

    # Not capturing: record that a quiet check happened since the last stop (a later incident is new).
    if not incident and current.stopped_ms is not None and not current.quiet_since_stop:
        quiet = replace(current, quiet_since_stop=True)
        return Decision(Action.RELEASE, "no incident since the last capture", quiet)
    if mode is CaptureMode.OFF or debug_logging:
        reason = "reason capture is off" if mode is CaptureMode.OFF else "enhanced logging is already on"
        return Decision(Action.NONE, reason, current)
    if mode is CaptureMode.ON_INCIDENT and not incident:
        return Decision(Action.NONE, "no incident", current)
    if current.failed_ms is not None and now_ms - current.failed_ms < settings.retry_minutes * MINUTE_MS:
        return Decision(Action.NONE, f"the last attempt failed ({current.error}); retrying later", current)
    if mode is CaptureMode.ALWAYS:
        return _enable(current, now_ms, "always on")
    if current.stopped_ms is not None and not current.quiet_since_stop:
        # Same incident as the capture that ended: someone switched logging off, or the cap was hit.
        if current.stop_cause is StopCause.EXTERNAL:
            return Decision(
                Action.NONE, "enhanced logging was switched off outside pinwatch during this incident", current
            )
        if current.stop_cause is StopCause.CAP:
            return Decision(Action.NONE, "this incident's capture already reached its cap", current)
    if (
        current.stop_cause in (StopCause.RESOLVED, StopCause.SETTINGS)
        and current.stopped_ms is not None
        and now_ms - current.stopped_ms < settings.cooldown_minutes * MINUTE_MS
    ):
        # An incident that "resolves" and returns within minutes is the same one flapping.
        return Decision(
            Action.NONE, f"cooldown: the last capture ended under {settings.cooldown_minutes} min ago", current
        )
    return _enable(current, now_ms, "pinning incident with enhanced logging off")


def failed(state: CaptureState, now_ms: int, error: str) -> CaptureState:
    """The state to store after a ``ModifyDBProxy`` call failed: unchanged, with the error and its time."""
    return replace(state, failed_ms=now_ms, error=error)


def _enable(current: CaptureState, now_ms: int, reason: str) -> Decision:
    started = current.started_ms if current.active and current.started_ms is not None else now_ms
    state = replace(
        current,
        active=True,
        started_ms=started,
        enabled_ms=now_ms,
        stopped_ms=None,
        stop_cause=None,
        quiet_since_stop=False,
        failed_ms=None,
        error=None,
    )
    return Decision(Action.ENABLE, reason, state)


def _disable(current: CaptureState, now_ms: int, cause: StopCause, reason: str) -> Decision:
    state = replace(
        current, active=False, stopped_ms=now_ms, stop_cause=cause, quiet_since_stop=False, failed_ms=None, error=None
    )
    return Decision(Action.DISABLE, reason, state)


def coverage_minutes(started_ms: int | None, now_ms: int, window_minutes: int) -> int | None:
    """Minutes of the window the reasons cover, when logging came on inside it (None: the whole window)."""
    if started_ms is None:
        return None
    covered = (now_ms - started_ms) // MINUTE_MS
    return max(0, covered) if covered < window_minutes else None


def note(
    settings: CaptureSettings,
    decision: Decision,
    *,
    window_minutes: int,
    now_ms: int,
    error: str | None = None,
    dry_run: bool = False,
) -> CaptureNote:
    """What the alert says about capture after this run's action (``error``: the call failed)."""
    state = decision.state
    action = decision.action
    if error is not None:
        verb = "switch enhanced logging on" if action in (Action.ENABLE, Action.RENEW) else "switch it off"
        return CaptureNote(settings.mode.value, "failed", f"could not {verb}: {error}", error=error)
    if dry_run and action in (Action.ENABLE, Action.DISABLE, Action.RENEW):
        return CaptureNote(settings.mode.value, "planned", f"would {action.value} enhanced logging: {decision.reason}")
    if state.active:
        since = state.started_ms if state.started_ms is not None else now_ms
        status = "started" if action is Action.ENABLE and since == now_ms else "capturing"
        return CaptureNote(
            settings.mode.value,
            status,
            decision.reason,
            since_ms=since,
            covered_minutes=coverage_minutes(since, now_ms, window_minutes),
            window_minutes=window_minutes,
        )
    if action is Action.DISABLE:
        return CaptureNote(settings.mode.value, "stopped", decision.reason, since_ms=state.stopped_ms)
    if action is Action.RELEASE and state.stop_cause is StopCause.EXTERNAL and state.stopped_ms == now_ms:
        return CaptureNote(settings.mode.value, "released", decision.reason, since_ms=state.stopped_ms)
    return CaptureNote(settings.mode.value, "idle", decision.reason)


def window_coverage(state: CaptureState | None, since_ms: int, until_ms: int) -> str | None:
    """What a report over [since, until) should say when pinwatch's capture covered only part of it.

    None when there is nothing to say: no capture recorded, or it does not overlap the window, or
    it covers all of it. (Logging someone else switched on is not recorded, so it is not judged.)
    """
    if state is None or state.started_ms is None:
        return None
    end = until_ms if state.active or state.stopped_ms is None else state.stopped_ms
    start = state.started_ms
    first, last = max(start, since_ms), min(end, until_ms)
    if last <= first or (start <= since_ms and end >= until_ms):
        return None
    covered = (last - first) // MINUTE_MS
    total = (until_ms - since_ms) // MINUTE_MS
    return (
        f"reasons from {covered} of {total} minutes: pinwatch's reason capture had enhanced logging on "
        f"{_stamp(first)}–{_stamp(last, same_day_as=first)} UTC only"
    )


def _stamp(ms: int, same_day_as: int | None = None) -> str:
    """``2026-12-06 21:04``, or ``21:04`` on the same UTC day as ``same_day_as``."""
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if same_day_as is not None and datetime.fromtimestamp(same_day_as / 1000, tz=UTC).date() == when.date():
        return when.strftime("%H:%M")
    return when.strftime("%Y-%m-%d %H:%M")
