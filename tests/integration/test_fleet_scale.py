"""The check handler at fleet scale, on moto in process over simulated time: the alarm brings a pinning proxy in at once.

Driven through ``benchmarks.bench_cost.simulate``: the real handler, the Metrics Insights alarm
emulated from the put series, every chargeable call counted on the real clients.
"""

from __future__ import annotations

import pytest
from benchmarks.bench_cost import ALARM_SWEEP, DETECT_PROXY_START, POLL, SWEEP_ONLY, simulate

from pinwatch import metrics

pytestmark = pytest.mark.integration

MINUTES = DETECT_PROXY_START + 30


def test_given_an_incident_one_minute_after_a_sweep_when_the_alarm_runs_the_check_then_it_alerts_within_two_minutes() -> (
    None
):
    with_alarm = simulate(ALARM_SWEEP, 10, MINUTES)
    without = simulate(SWEEP_ONLY, 10, MINUTES)
    assert with_alarm.detect_minutes is not None
    assert with_alarm.detect_minutes <= 2
    # Without the contributor event the incident waits for the next sweep.
    assert without.detect_minutes is not None
    assert without.detect_minutes >= ALARM_SWEEP.sweep_minutes - 2


def test_given_sweeps_every_15_minutes_when_the_fleet_is_mostly_healthy_then_far_fewer_metrics_are_requested() -> None:
    alarm = simulate(ALARM_SWEEP, 10, MINUTES)
    poll = simulate(POLL, 10, MINUTES)
    # Every proxy every minute: the gauges each minute, the setup-failure metric every Nth minute.
    extra = poll.usage.metrics_requested - 10 * len(metrics.METRICS) * MINUTES
    every = metrics.SETUP_FAILED_EVERY_MINUTES
    assert extra in {10 * len(metrics.PERIODIC_METRICS) * n for n in (MINUTES // every, MINUTES // every + 1)}
    assert alarm.usage.metrics_requested < poll.usage.metrics_requested / 4
    assert alarm.detect_minutes == poll.detect_minutes  # and detects as soon as reading every minute does
