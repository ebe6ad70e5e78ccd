"""Trend and exhaustion-forecast maths over minute series: least squares, r², time to the limit.

Pure: no I/O, no clock. A series is a sequence of (epoch ms, value) points, oldest first, with gaps
allowed (time, not position, sets the slope). A forecast is only given when a series has enough
points and rises clearly; otherwise :meth:`Outlook.why_no_forecast` says which guard stopped it,
with its numbers, for the finding's summary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pinwatch.config import Thresholds
from pinwatch.timebase import MINUTE_MS


@dataclass(frozen=True, slots=True)
class Trend:
    """Least-squares line through a series: ``now`` is the fitted value at the newest point."""

    slope_per_minute: float
    now: float
    r_squared: float
    points: int


@dataclass(frozen=True, slots=True)
class Forecast:
    """When the pool runs out at the current trend, and which series gets there first."""

    eta_minutes: float
    slope_per_minute: float
    driver: str  # "connections in use" or "pinned connections"
    current: float
    limit: float


def fit_trend(points: Sequence[tuple[int, float]]) -> Trend | None:
    """Fit ``value = a + b * minutes`` to (timestamp ms, value) points; None below 2 distinct times."""
    if len(points) < 2:
        return None
    t_last = points[-1][0]
    xs = [(t - t_last) / MINUTE_MS for t, _ in points]
    ys = [v for _, v in points]
    n = len(points)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return None
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    syy = sum((y - mean_y) ** 2 for y in ys)
    slope = sxy / sxx
    # A flat series has no trend to explain: r² = 0 rather than undefined.
    r_squared = (sxy * sxy) / (sxx * syy) if syy > 0 else 0.0
    return Trend(slope_per_minute=slope, now=mean_y - slope * mean_x, r_squared=r_squared, points=n)


def correlation(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson correlation; None when either series is constant or shorter than 2."""
    n = len(xs)
    if n < 2 or n != len(ys):
        return None
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    syy = sum((y - mean_y) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return sxy / math.sqrt(sxx * syy)


@dataclass(frozen=True, slots=True)
class SeriesOutlook:
    """One series' fit for the exhaustion forecast, and why it gives none (``no_forecast``) if it does not."""

    label: str  # "connections in use" or "pinned connections"
    points: int
    trend: Trend | None
    no_forecast: str | None = None  # e.g. "are falling (-2.0/min)"; None: this series gives a forecast


@dataclass(frozen=True, slots=True)
class Outlook:
    """The exhaustion forecast (None when no series is clearly rising), each series' fit, and the figures."""

    forecast: Forecast | None
    series: tuple[SeriesOutlook, ...]
    figures: Mapping[str, float | None]

    def why_no_forecast(self) -> str:
        """Each series and why it gives no forecast, e.g. ``connections in use are falling (-2.0/min)``."""
        return "; ".join(f"{s.label} {s.no_forecast}" for s in self.series if s.no_forecast)


def forecast_exhaustion(
    in_use_points: Sequence[tuple[int, float]],
    pinned_points: Sequence[tuple[int, float]],
    limit: float,
    thresholds: Thresholds,
) -> Outlook:
    """The sooner of two exhaustion forecasts, or none when neither series is clearly rising.

    The limit caps the database connections the proxy can hand out, so the trend of connections in
    use is the direct forecast (idle pooled connections are not load: the proxy gives them out
    again). Pinned connections are a subset that never return to the pool; when pins grow faster
    than the total (pinned sessions taking over connections that were being shared), pinned
    reaching the limit is the earlier, binding exhaustion, and the in-use trend alone would miss it. Each series must have enough points, a slope above the noise floor and a line that
    explains it (r²); a flat or falling series gives no forecast. The outlook says which of these
    each series failed, with its numbers.
    """
    figures: dict[str, float | None] = {}
    series: list[SeriesOutlook] = []
    candidates: list[Forecast] = []
    for label, key, points in (
        ("connections in use", "in_use", in_use_points),
        ("pinned connections", "pinned", pinned_points),
    ):
        trend = fit_trend(points) if len(points) >= thresholds.forecast_min_points else None
        figures[f"{key}_slope_per_minute"] = None if trend is None else round(trend.slope_per_minute, 3)
        why_not = _why_no_forecast(len(points), trend, thresholds)
        series.append(SeriesOutlook(label, len(points), trend, why_not))
        if trend is None or why_not is not None:
            continue
        current = points[-1][1]
        eta = max(0.0, limit - current) / trend.slope_per_minute
        candidates.append(Forecast(eta, trend.slope_per_minute, label, current, limit))
    best = min(candidates, key=lambda f: f.eta_minutes, default=None)
    figures["eta_minutes"] = None if best is None else round(best.eta_minutes, 1)
    return Outlook(best, tuple(series), figures)


def _why_no_forecast(points: int, trend: Trend | None, t: Thresholds) -> str | None:
    """Why a series gives no forecast, as a predicate with its numbers; None when it gives one."""
    if trend is None:
        if not points:
            return "have no datapoints"
        return f"have too few points for a trend ({points} of the {t.forecast_min_points} minutes needed)"
    rate = _rate(trend.slope_per_minute)
    if rate == "0.0":
        return "are flat (0.0/min)"
    if trend.slope_per_minute < 0:
        return f"are falling ({rate}/min)"
    if trend.slope_per_minute < t.forecast_min_slope_per_minute:
        return f"rise too slowly to matter ({rate}/min < {t.forecast_min_slope_per_minute:g}/min)"
    if trend.r_squared < t.forecast_min_r_squared:
        return f"are too noisy for a trend ({rate}/min, r² {trend.r_squared:.2f} < {t.forecast_min_r_squared:g})"
    return None


def _rate(per_minute: float) -> str:
    """A slope as people read it: +3.1, -0.4, +0.05 (two decimals only below 0.1); 0.0 when it rounds to zero."""
    digits = 2 if 0.005 <= abs(per_minute) < 0.095 else 1
    text = f"{per_minute:+.{digits}f}"
    return "0.0" if float(text) == 0 else text
