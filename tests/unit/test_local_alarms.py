"""The emulated Metrics Insights alarm: contributors from the put series, their states, CloudWatch's events."""

from __future__ import annotations

from collections.abc import Mapping

from pinwatch.fleet import TriggerKind, parse_trigger
from pinwatch.local.alarms import MetricsInsightsAlarm, contributor_id
from pinwatch.metrics import PINNED
from pinwatch.timebase import MINUTE_MS

T0 = 1_796_169_600_000


class Series:
    """proxy -> {minute index: pinned}; only minutes with data are series points, as CloudWatch has them."""

    def __init__(self, points: Mapping[str, Mapping[int, float]]) -> None:
        self.points = points
        self.asked: list[str] = []

    def __call__(self, metric: str, start_ms: int, end_ms: int) -> dict[str, dict[int, float]]:
        self.asked.append(metric)
        out = {}
        for proxy, minutes in self.points.items():
            inside = {T0 + m * MINUTE_MS: v for m, v in minutes.items() if start_ms <= T0 + m * MINUTE_MS < end_ms}
            if inside:
                out[proxy] = inside
        return out


def at(minute: int) -> int:
    return T0 + minute * MINUTE_MS + 5_000


def test_given_pins_in_the_last_minute_when_evaluated_then_that_proxy_goes_to_alarm_with_an_event_the_check_reads() -> (
    None
):
    alarm = MetricsInsightsAlarm("pinned", Series({"orders": {3: 12.0}, "billing": {3: 0.0}}))
    (event,) = alarm.evaluate(at(4))  # minute 3 is the last complete one at 4:05
    trigger = parse_trigger(event)
    assert (trigger.kind, trigger.proxies, trigger.state, trigger.alarm) == (
        TriggerKind.CONTRIBUTOR,
        ("orders",),
        "ALARM",
        "pinned",
    )
    assert event["detail"]["alarmContributor"]["id"] == contributor_id("orders")
    assert alarm.in_alarm() == frozenset({"orders"})


def test_given_a_contributor_in_alarm_when_it_stays_then_no_new_event_and_when_its_data_stops_then_it_goes_ok() -> None:
    alarm = MetricsInsightsAlarm("pinned", Series({"orders": {3: 12.0, 4: 9.0}}))
    assert len(alarm.evaluate(at(4))) == 1
    assert alarm.evaluate(at(5)) == []  # still pinning
    (ok,) = alarm.evaluate(at(6))  # no datapoint: the pinned gauge publishes nothing at zero
    assert parse_trigger(ok).state == "OK"
    assert alarm.in_alarm() == frozenset()


def test_given_evaluations_when_counted_then_metrics_analyzed_sum_the_series_the_query_returned() -> None:
    series = Series({"orders": {3: 12.0, 4: 1.0}, "billing": {4: 2.0}})
    alarm = MetricsInsightsAlarm("pinned", series)
    alarm.evaluate(at(4))
    alarm.evaluate(at(5))
    assert (alarm.evaluations, alarm.metrics_analyzed) == (2, 3)
    assert set(series.asked) == {PINNED}
