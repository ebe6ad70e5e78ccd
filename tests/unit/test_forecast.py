"""Trend and exhaustion-forecast maths: least squares over time, Pearson correlation, the sooner exhaustion."""

from __future__ import annotations

import pytest

from pinwatch import forecast as fc
from pinwatch.config import Thresholds
from pinwatch.timebase import MINUTE_MS

START_MS = 1_764_000_000_000 - 1_764_000_000_000 % MINUTE_MS


def test_given_points_on_a_line_when_fitted_then_slope_and_current_value_are_exact() -> None:
    points = [(START_MS + i * MINUTE_MS, 10 + 3.0 * i) for i in range(10)]
    trend = fc.fit_trend(points)
    assert trend is not None
    assert trend.slope_per_minute == pytest.approx(3.0)
    assert trend.now == pytest.approx(37.0)
    assert trend.r_squared == pytest.approx(1.0)


def test_given_gaps_in_the_series_when_fitted_then_time_not_position_sets_the_slope() -> None:
    points = [(START_MS + m * MINUTE_MS, 2.0 * m) for m in (0, 1, 7, 8, 20)]
    trend = fc.fit_trend(points)
    assert trend is not None
    assert trend.slope_per_minute == pytest.approx(2.0)


def test_given_noise_around_a_line_when_fitted_then_least_squares_recovers_it() -> None:
    noise = [0.8, -0.5, 0.3, -0.9, 0.6, -0.2, 0.4, -0.7, 0.1, 0.0]
    points = [(START_MS + i * MINUTE_MS, 50 + 1.5 * i + noise[i]) for i in range(10)]
    trend = fc.fit_trend(points)
    assert trend is not None
    xs = list(range(10))
    ys = [v for _, v in points]
    mx, my = sum(xs) / 10, sum(ys) / 10
    expected = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    assert trend.slope_per_minute == pytest.approx(expected)
    assert 0.9 < trend.r_squared < 1.0


def test_given_a_flat_series_or_too_few_points_when_fitted_then_there_is_no_trend_to_report() -> None:
    flat = fc.fit_trend([(START_MS + i * MINUTE_MS, 7.0) for i in range(5)])
    assert flat is not None
    assert (flat.slope_per_minute, flat.r_squared) == (0.0, 0.0)
    assert fc.fit_trend([(START_MS, 1.0)]) is None
    assert fc.fit_trend([(START_MS, 1.0), (START_MS, 2.0)]) is None


def test_given_two_series_when_correlated_then_pearson_is_returned_and_constant_series_have_none() -> None:
    assert fc.correlation([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert fc.correlation([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    assert fc.correlation([1, 2, 3], [5, 5, 5]) is None


def line(start: float, slope: float, minutes: int = 10) -> list[tuple[int, float]]:
    return [(START_MS + i * MINUTE_MS, start + slope * i) for i in range(minutes)]


def test_given_pins_rising_faster_than_connections_when_forecast_then_pinned_connections_bind_first() -> None:
    outlook = fc.forecast_exhaustion(line(50, 0.5), line(10, 5.0), 100, Thresholds())

    assert outlook.forecast is not None
    assert outlook.forecast.driver == "pinned connections"
    assert outlook.forecast.eta_minutes == pytest.approx((100 - 55) / 5.0)
    assert outlook.figures["eta_minutes"] == pytest.approx(9.0)
    assert outlook.why_no_forecast() == ""


def test_given_no_series_rising_when_forecast_then_the_outlook_says_why_for_each() -> None:
    outlook = fc.forecast_exhaustion(line(80, -2.0), line(5, 0.0), 100, Thresholds())

    assert outlook.forecast is None
    assert outlook.why_no_forecast() == (
        "connections in use are falling (-2.0/min); pinned connections are flat (0.0/min)"
    )


def test_given_fewer_points_than_the_minimum_when_forecast_then_no_trend_is_fitted() -> None:
    needed = Thresholds().forecast_min_points
    outlook = fc.forecast_exhaustion(line(10, 5.0, needed - 1), [], 100, Thresholds())

    assert outlook.forecast is None
    assert [s.trend for s in outlook.series] == [None, None]
    assert outlook.why_no_forecast() == (
        f"connections in use have too few points for a trend ({needed - 1} of the {needed} minutes needed); "
        "pinned connections have no datapoints"
    )
