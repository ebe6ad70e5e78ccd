"""The reason-capture policy: state in, one action out (pinwatch.capture.decide), and the alert note."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pinwatch.capture import (
    Action,
    CaptureMode,
    CaptureSettings,
    CaptureState,
    StopCause,
    coverage_minutes,
    decide,
    failed,
    is_incident,
    note,
    window_coverage,
)
from pinwatch.findings import Finding, Severity
from pinwatch.timebase import HOUR_MS, MINUTE_MS

NOW = 1_764_000_000_000 - 1_764_000_000_000 % MINUTE_MS
PROXY = "orders"
ON_INCIDENT = CaptureSettings(
    mode=CaptureMode.ON_INCIDENT, cap_minutes=120, min_hold_minutes=15, cooldown_minutes=30, retry_minutes=15
)
ALWAYS = replace(ON_INCIDENT, mode=CaptureMode.ALWAYS)


def run(
    settings: CaptureSettings,
    state: CaptureState | None,
    *,
    logging: bool | None,
    incident: bool,
    captured: bool = False,
    now: int = NOW,
    in_scope: bool = True,
) -> tuple[Action, CaptureState, str]:
    d = decide(
        settings,
        state,
        proxy=PROXY,
        debug_logging=logging,
        incident=incident,
        reasons_captured=captured,
        now_ms=now,
        in_scope=in_scope,
    )
    return d.action, d.state, d.reason


def active(started: int, **changes: object) -> CaptureState:
    return replace(CaptureState(PROXY, active=True, started_ms=started, enabled_ms=started, version=1), **changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- off
@pytest.mark.parametrize("logging", [True, False])
def test_given_capture_off_when_an_incident_runs_then_pinwatch_never_touches_logging(logging: bool) -> None:
    action, state, _ = run(CaptureSettings(), None, logging=logging, incident=True)

    assert action is Action.NONE
    assert not state.active


def test_given_capture_switched_off_in_the_settings_while_pinwatch_captures_then_it_switches_its_own_capture_off() -> (
    None
):
    action, state, _ = run(CaptureSettings(), active(NOW - 5 * MINUTE_MS), logging=True, incident=True)

    assert action is Action.DISABLE
    assert (state.active, state.stop_cause, state.stopped_ms) == (False, StopCause.SETTINGS, NOW)


# ---------------------------------------------------------------------------- on-incident
def test_given_an_incident_with_logging_off_when_checked_then_capture_starts_now() -> None:
    action, state, _ = run(ON_INCIDENT, None, logging=False, incident=True)

    assert action is Action.ENABLE
    assert (state.active, state.started_ms, state.enabled_ms) == (True, NOW, NOW)


def test_given_no_incident_when_logging_is_off_then_nothing_is_switched_on() -> None:
    assert run(ON_INCIDENT, None, logging=False, incident=False)[0] is Action.NONE


def test_given_logging_someone_else_switched_on_when_an_incident_runs_then_pinwatch_neither_owns_nor_touches_it() -> (
    None
):
    action, state, _ = run(ON_INCIDENT, None, logging=True, incident=True)

    assert action is Action.NONE
    assert not state.active


def test_given_logging_someone_else_switched_on_when_the_incident_ends_then_pinwatch_does_not_switch_it_off() -> None:
    action, _, _ = run(ON_INCIDENT, None, logging=True, incident=False, captured=True, now=NOW + 5 * HOUR_MS)

    assert action is Action.NONE


def test_given_a_running_capture_when_the_incident_lasts_then_it_is_kept() -> None:
    assert run(ON_INCIDENT, active(NOW - 30 * MINUTE_MS), logging=True, incident=True, captured=True)[0] is Action.KEEP


def test_given_the_incident_over_and_reasons_captured_after_the_hold_then_pinwatch_switches_its_capture_off() -> None:
    action, state, _ = run(ON_INCIDENT, active(NOW - 20 * MINUTE_MS), logging=True, incident=False, captured=True)

    assert action is Action.DISABLE
    assert state.stop_cause is StopCause.RESOLVED


def test_given_the_incident_over_within_the_minimum_hold_then_the_capture_is_kept() -> None:
    action, _, _ = run(ON_INCIDENT, active(NOW - 14 * MINUTE_MS), logging=True, incident=False, captured=True)

    assert action is Action.KEEP


def test_given_the_incident_over_without_any_reason_captured_then_capture_runs_on_until_the_cap() -> None:
    assert run(ON_INCIDENT, active(NOW - 60 * MINUTE_MS), logging=True, incident=False)[0] is Action.KEEP
    action, state, _ = run(ON_INCIDENT, active(NOW - 120 * MINUTE_MS), logging=True, incident=False)
    assert (action, state.stop_cause) == (Action.DISABLE, StopCause.CAP)


def test_given_an_incident_still_on_at_the_cap_then_capture_stops_and_is_not_restarted_for_that_incident() -> None:
    action, stopped, _ = run(ON_INCIDENT, active(NOW - 120 * MINUTE_MS), logging=True, incident=True)
    assert (action, stopped.stop_cause) == (Action.DISABLE, StopCause.CAP)

    later = NOW + 60 * MINUTE_MS  # well past the cooldown, same incident
    assert run(ON_INCIDENT, stopped, logging=False, incident=True, now=later)[0] is Action.NONE


def test_given_a_capped_incident_when_a_quiet_check_then_a_new_incident_follows_then_capture_starts_again() -> None:
    _, stopped, _ = run(ON_INCIDENT, active(NOW - 120 * MINUTE_MS), logging=True, incident=True)
    action, quiet, _ = run(ON_INCIDENT, stopped, logging=False, incident=False, now=NOW + MINUTE_MS)
    assert action is Action.RELEASE
    assert quiet.quiet_since_stop

    assert run(ON_INCIDENT, quiet, logging=False, incident=True, now=NOW + 2 * MINUTE_MS)[0] is Action.ENABLE


def test_given_a_user_switches_logging_off_during_pinwatch_capture_then_pinwatch_releases_it_and_leaves_it_off() -> (
    None
):
    action, released, _ = run(ON_INCIDENT, active(NOW - 10 * MINUTE_MS), logging=False, incident=True)
    assert action is Action.RELEASE
    assert (released.active, released.stop_cause) == (False, StopCause.EXTERNAL)

    for minutes in (1, 45, 180):
        assert run(ON_INCIDENT, released, logging=False, incident=True, now=NOW + minutes * MINUTE_MS)[0] is Action.NONE


def test_given_a_user_switched_it_back_on_after_releasing_then_pinwatch_never_switches_that_off() -> None:
    _, released, _ = run(ON_INCIDENT, active(NOW - 10 * MINUTE_MS), logging=False, incident=True)

    for incident in (True, False):
        action, _, _ = run(ON_INCIDENT, released, logging=True, incident=incident, captured=True, now=NOW + HOUR_MS)
        assert action is not Action.DISABLE


def test_given_pinwatch_stopped_a_resolved_capture_when_pins_return_within_the_cooldown_then_it_does_not_flap() -> None:
    _, stopped, _ = run(ON_INCIDENT, active(NOW - 20 * MINUTE_MS), logging=True, incident=False, captured=True)

    assert run(ON_INCIDENT, stopped, logging=False, incident=True, now=NOW + 29 * MINUTE_MS)[0] is Action.NONE
    assert run(ON_INCIDENT, stopped, logging=False, incident=True, now=NOW + 30 * MINUTE_MS)[0] is Action.ENABLE


def test_given_a_failed_switch_when_checked_again_then_it_waits_the_retry_interval() -> None:
    after_failure = failed(CaptureState(PROXY), NOW, "AccessDenied: not authorized")

    assert run(ON_INCIDENT, after_failure, logging=False, incident=True, now=NOW + 14 * MINUTE_MS)[0] is Action.NONE
    assert run(ON_INCIDENT, after_failure, logging=False, incident=True, now=NOW + 15 * MINUTE_MS)[0] is Action.ENABLE


def test_given_an_unknown_logging_setting_then_nothing_is_decided() -> None:
    assert run(ON_INCIDENT, active(NOW - HOUR_MS), logging=None, incident=False, captured=True)[0] is Action.NONE


# ---------------------------------------------------------------------------- always
def test_given_always_when_logging_is_off_then_it_is_switched_on_without_an_incident() -> None:
    action, state, _ = run(ALWAYS, None, logging=False, incident=False)

    assert (action, state.active) == (Action.ENABLE, True)


def test_given_always_when_aws_switched_it_off_after_24_hours_then_pinwatch_switches_it_on_again() -> None:
    action, state, _ = run(ALWAYS, active(NOW - 24 * HOUR_MS), logging=False, incident=False)

    assert action is Action.ENABLE
    assert (state.active, state.enabled_ms, state.started_ms) == (True, NOW, NOW - 24 * HOUR_MS)


@pytest.mark.parametrize(("age_minutes", "expected"), [(22 * 60 + 59, Action.KEEP), (23 * 60, Action.RENEW)])
def test_given_always_when_its_switch_on_nears_24_hours_then_it_is_renewed_before_aws_switches_it_off(
    age_minutes: int, expected: Action
) -> None:
    action, state, _ = run(ALWAYS, active(NOW - age_minutes * MINUTE_MS), logging=True, incident=False)

    assert action is expected
    assert state.enabled_ms == (NOW if expected is Action.RENEW else NOW - age_minutes * MINUTE_MS)


def test_given_always_after_a_failed_switch_when_checked_again_then_it_also_waits_the_retry_interval() -> None:
    after_failure = failed(CaptureState(PROXY), NOW, "Throttling: Rate exceeded")

    assert run(ALWAYS, after_failure, logging=False, incident=False, now=NOW + MINUTE_MS)[0] is Action.NONE
    assert run(ALWAYS, after_failure, logging=False, incident=False, now=NOW + 15 * MINUTE_MS)[0] is Action.ENABLE


def test_given_always_for_named_proxies_when_a_proxy_is_not_named_then_it_is_left_alone() -> None:
    assert run(ALWAYS, None, logging=False, incident=True, in_scope=False)[0] is Action.NONE


# ---------------------------------------------------------------------------- incident and coverage
def _finding(rule: str, severity: Severity, insufficient: bool = False) -> Finding:
    return Finding(PROXY, rule, severity, "s", insufficient_data=insufficient)


@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        ([_finding("pinned_share", Severity.WARNING)], True),
        ([_finding("exhaustion_forecast", Severity.CRITICAL)], True),
        ([_finding("pinned_share", Severity.INFO)], False),
        ([_finding("borrow_latency", Severity.CRITICAL)], False),
        ([_finding("enhanced_logging_off", Severity.INFO)], False),
        ([_finding("multiplexing_lost", Severity.WARNING, insufficient=True)], False),
    ],
)
def test_given_findings_when_asked_for_an_incident_then_only_pin_rules_at_warning_count(
    findings: list[Finding], expected: bool
) -> None:
    assert is_incident(findings) is expected


@pytest.mark.parametrize(("started_minutes_ago", "covered"), [(6, 6), (0, 0), (29, 29), (30, None), (90, None)])
def test_given_a_capture_start_when_coverage_is_computed_then_it_is_the_minutes_of_the_window_since(
    started_minutes_ago: int, covered: int | None
) -> None:
    assert coverage_minutes(NOW - started_minutes_ago * MINUTE_MS, NOW, 30) == covered


def test_given_a_capture_started_six_minutes_ago_when_noted_then_the_alert_knows_its_start_and_coverage() -> None:
    decision = decide(
        ON_INCIDENT,
        active(NOW - 6 * MINUTE_MS),
        proxy=PROXY,
        debug_logging=True,
        incident=True,
        reasons_captured=True,
        now_ms=NOW,
    )
    n = note(ON_INCIDENT, decision, window_minutes=30, now_ms=NOW)

    assert (n.status, n.since_ms, n.covered_minutes, n.window_minutes) == ("capturing", NOW - 6 * MINUTE_MS, 6, 30)


def test_given_a_failed_switch_when_noted_then_the_note_carries_the_error() -> None:
    decision = decide(
        ON_INCIDENT, None, proxy=PROXY, debug_logging=False, incident=True, reasons_captured=False, now_ms=NOW
    )
    n = note(ON_INCIDENT, decision, window_minutes=30, now_ms=NOW, error="AccessDenied: nope")

    assert (n.status, n.error) == ("failed", "AccessDenied: nope")
    assert "AccessDenied" in n.reason


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (None, None),
        (CaptureState(PROXY), None),
        # Started 6 minutes before the end of a 30-minute window, still running.
        (active(NOW - 6 * MINUTE_MS), "reasons from 6 of 30 minutes"),
        # Ran 10 minutes inside the window, then pinwatch switched it off.
        (
            replace(active(NOW - 25 * MINUTE_MS), active=False, stopped_ms=NOW - 15 * MINUTE_MS),
            "reasons from 10 of 30 minutes",
        ),
        (active(NOW - 40 * MINUTE_MS), None),  # on for the whole window
        (replace(active(NOW - 90 * MINUTE_MS), active=False, stopped_ms=NOW - 60 * MINUTE_MS), None),  # before it
    ],
)
def test_given_a_capture_when_a_report_window_is_described_then_partial_coverage_is_said_with_its_minutes(
    state: CaptureState | None, expected: str | None
) -> None:
    text = window_coverage(state, NOW - 30 * MINUTE_MS, NOW)

    if expected is None:
        assert text is None
    else:
        assert text is not None
        assert text.startswith(expected)
