"""What an alert says about reason capture: the reworded enhanced-logging note and the capture lines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pinwatch import diagnose as dx
from pinwatch.alerts.policy import Transition
from pinwatch.alerts.render import (
    Alert,
    AlertItem,
    RenderSettings,
    capture_lines,
    render_chat,
    render_slack,
    render_text,
)
from pinwatch.findings import CaptureNote, Finding, ProxyReport, Severity
from pinwatch.timebase import MINUTE_MS

NOW = int(datetime(2026, 12, 6, 21, 4, tzinfo=UTC).timestamp() * 1000)
LOGGING_OFF = Finding(
    "orders",
    dx.ENHANCED_LOGGING_OFF,
    Severity.INFO,
    "up to 40 pinned connections in the last 30 min but enhanced logging is off: pin reasons are unknown "
    "(the proxy logs them only with enhanced logging on)",
    details=("Enable it while investigating: aws rds modify-db-proxy …", "It switches itself off after 24 hours."),
)
PINNED = Finding("orders", "pinned_share", Severity.WARNING, "40 of 80 database connections pinned (50%)")


def report(capture: CaptureNote | None, *findings: Finding) -> ProxyReport:
    return ProxyReport(
        "orders", None, "available", findings or (PINNED, LOGGING_OFF), checked_at_ms=NOW, capture=capture
    )


def alert(capture: CaptureNote | None) -> Alert:
    item = AlertItem("pinned_share", Transition.NEW, Severity.WARNING, None, PINNED.summary)
    return Alert(report(capture), (item,), NOW)


def test_given_capture_started_when_the_note_is_reworded_then_it_says_pinwatch_switched_logging_on() -> None:
    started = CaptureNote("on-incident", "started", "pinning incident", since_ms=NOW, covered_minutes=0)

    (pinned, note) = dx.with_capture((PINNED, LOGGING_OFF), started)

    assert pinned is PINNED
    assert note.summary.endswith("pin reasons are unknown so far; pinwatch switched it on to capture them")
    assert note.severity is Severity.INFO


def test_given_a_failed_switch_when_the_note_is_reworded_then_it_names_the_error_and_the_permission() -> None:
    failed = CaptureNote("on-incident", "failed", "could not switch enhanced logging on: x", error="AccessDenied: no")

    (_, note) = dx.with_capture((PINNED, LOGGING_OFF), failed)

    assert "pinwatch could not switch it on (AccessDenied: no)" in note.summary
    assert any("rds:ModifyDBProxy" in d for d in note.details)


def test_given_a_running_capture_when_logging_is_on_then_the_note_says_pinwatch_switched_it_on() -> None:
    logging_on = Finding("orders", dx.ENHANCED_LOGGING_OFF, Severity.OK, "enhanced logging is on")

    (note,) = dx.with_capture((logging_on,), CaptureNote("on-incident", "capturing", "r", since_ms=NOW))

    assert note.summary == "enhanced logging is on (switched on by pinwatch's reason capture, on-incident)"
    assert note.severity is Severity.OK


@pytest.mark.parametrize("status", ["idle", "capturing", "stopped"])
def test_given_no_switch_in_this_run_when_reworded_then_the_findings_are_unchanged(status: str) -> None:
    findings = (PINNED, LOGGING_OFF)
    assert dx.with_capture(findings, CaptureNote("on-incident", status, "r")) == findings
    assert dx.with_capture(findings, None) == findings


def test_given_a_capture_six_minutes_into_a_30_minute_window_when_rendered_then_both_channels_say_the_coverage() -> (
    None
):
    capturing = CaptureNote(
        "on-incident", "capturing", "r", since_ms=NOW - 6 * MINUTE_MS, covered_minutes=6, window_minutes=30
    )

    text = render_text(alert(capturing), RenderSettings())
    slack = str(render_slack(alert(capturing), RenderSettings()))

    for body in (text, slack):
        assert "Capturing reasons since 20:58 UTC" in body
        assert "Reasons from the last 6 of 30 minutes" in body


def test_given_a_capture_covering_the_whole_window_when_rendered_then_no_coverage_warning_is_added() -> None:
    capturing = CaptureNote("on-incident", "capturing", "r", since_ms=NOW - 3 * 60 * MINUTE_MS, window_minutes=30)

    lines = capture_lines(report(capturing))

    assert lines == ["Capturing reasons since 18:04 UTC (pinwatch switched enhanced logging on; on-incident)."]


def test_given_an_error_with_slack_markup_when_rendered_to_slack_then_it_is_escaped() -> None:
    failed = CaptureNote(
        "on-incident", "failed", "could not switch enhanced logging on: x", error="AccessDenied: <!channel> & `x"
    )

    slack = render_slack(alert(failed), RenderSettings())

    section = next(b for b in slack["blocks"] if "Reason capture" in b.get("text", {}).get("text", ""))
    assert "<!channel>" not in section["text"]["text"]
    assert "&lt;!channel&gt; &amp;" in section["text"]["text"]


def test_given_an_error_with_slack_markup_when_rendered_to_the_chat_schema_then_it_is_escaped() -> None:
    # Amazon Q renders the description as Slack mrkdwn: an AWS error text must not mention the channel.
    failed = CaptureNote(
        "on-incident", "failed", "could not switch enhanced logging on: x", error="AccessDenied: <!channel> & `x"
    )

    description = render_chat(alert(failed), RenderSettings())["content"]["description"]

    assert "<!channel>" not in description
    assert "Reason capture did not start: AccessDenied: &lt;!channel&gt; &amp; 'x." in description


def test_given_an_error_with_newlines_when_rendered_as_text_then_it_stays_on_its_line() -> None:
    error = "denied\nFORGED LINE"
    failed = CaptureNote("on-incident", "failed", f"could not switch enhanced logging on: {error}", error=error)

    text = render_text(alert(failed), RenderSettings())

    assert "Reason capture did not start: denied FORGED LINE." in text
    assert not any(line.startswith("FORGED") for line in text.split("\n"))


def test_given_no_capture_wired_when_rendered_then_no_capture_section_appears() -> None:
    assert capture_lines(report(None)) == []
    assert "Reason capture" not in render_text(alert(None), RenderSettings())
