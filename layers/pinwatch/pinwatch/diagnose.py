"""Diagnosis rules: a proxy's metric series in, one :class:`Finding` per rule out.

Pure: no I/O, no clock. Each rule has a minimum-traffic guard (a low client:connection ratio is
normal on a quiet proxy) and returns ``insufficient_data`` when it cannot reach a verdict, which
the alert policy treats as "no news" (never escalates to critical, never resolves).

Figures are taken from one minute, the newest one with a database-connections value, so every
ratio compares numbers published together. The trend and forecast maths are in :mod:`pinwatch.forecast`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from pinwatch.config import Thresholds
from pinwatch.discovery import ProxyInfo
from pinwatch.findings import CaptureNote, Finding, Severity
from pinwatch.forecast import Outlook, correlation, fit_trend, forecast_exhaustion
from pinwatch.metrics import (
    BORROW_LATENCY,
    BORROWED,
    CLIENT_CONNECTIONS,
    DATABASE_CONNECTIONS,
    IN_TRANSACTION,
    MAX_ALLOWED,
    METRICS,
    PINNED,
    ProxyMetrics,
)

PINNED_SHARE = "pinned_share"
MULTIPLEXING_LOST = "multiplexing_lost"
POOL_PRESSURE = "pool_pressure"
EXHAUSTION_FORECAST = "exhaustion_forecast"
OPEN_TRANSACTIONS = "open_transactions"
BORROW_LATENCY_RULE = "borrow_latency"
ENHANCED_LOGGING_OFF = "enhanced_logging_off"
PROXY_UNAVAILABLE = "proxy_unavailable"
PROXY_NOT_FOUND = "proxy_not_found"

METRIC_RULES = (
    PINNED_SHARE,
    MULTIPLEXING_LOST,
    POOL_PRESSURE,
    EXHAUSTION_FORECAST,
    OPEN_TRANSACTIONS,
    BORROW_LATENCY_RULE,
    ENHANCED_LOGGING_OFF,
)

# Statuses that need someone to act; the rest (creating, modifying, enabling, …) pass on their own.
_BROKEN_STATUSES = frozenset({"incompatible-network", "insufficient-resource-limits", "suspended", "suspending"})

# Finding.figures names for the latest values; each rule reports the ones it looked at (_INPUTS)
# next to what it derived from them. ProxyReport.figures is keyed by CloudWatch metric name.
LATEST_FIGURES: Mapping[str, str] = {
    "client_connections": CLIENT_CONNECTIONS,
    "database_connections": DATABASE_CONNECTIONS,
    "pinned_connections": PINNED,
    "in_transaction_connections": IN_TRANSACTION,
    "borrowed_connections": BORROWED,
    "max_connections_allowed": MAX_ALLOWED,
}


_INPUTS: Mapping[str, tuple[str, ...]] = {
    PINNED_SHARE: ("pinned_connections", "database_connections"),
    MULTIPLEXING_LOST: ("client_connections", "database_connections", "pinned_connections"),
    POOL_PRESSURE: ("database_connections", "max_connections_allowed"),
    EXHAUSTION_FORECAST: ("database_connections", "pinned_connections", "max_connections_allowed"),
    OPEN_TRANSACTIONS: ("pinned_connections", "in_transaction_connections"),
    BORROW_LATENCY_RULE: ("borrow_latency_ms",),
    ENHANCED_LOGGING_OFF: ("pinned_connections",),
}


@dataclass(frozen=True, slots=True)
class Diagnosis:
    findings: tuple[Finding, ...]
    figures: Mapping[str, float | None]  # latest value per CloudWatch metric name (latency in µs)
    exhaustion_eta_minutes: float | None = None


def diagnose(proxy: ProxyInfo, metrics: ProxyMetrics | None, thresholds: Thresholds) -> Diagnosis:
    """Every rule's verdict on one proxy; an unavailable proxy is reported, not diagnosed."""
    if not proxy.available:
        return Diagnosis(findings=unavailable_findings(proxy.name, proxy.status), figures={})
    if metrics is None:
        metrics = ProxyMetrics(proxy.name, (), {})
    ctx = _Context(proxy, metrics, thresholds)
    # No explicit ok for proxy_unavailable/proxy_not_found: a diagnosed proxy's absent rule is healthy.
    findings = [rule(ctx) for rule in _RULES]
    figures = {spec.name: metrics.latest(spec.name) for spec in METRICS}
    return Diagnosis(tuple(findings), figures, ctx.forecast.eta_minutes if ctx.forecast else None)


def unavailable_findings(proxy: str, status: str) -> tuple[Finding, ...]:
    """A proxy that is not ``available``: one finding saying so, every metric rule left undecided."""
    severity = Severity.WARNING if status in _BROKEN_STATUSES else Severity.INFO
    summary = f"proxy status is {status}: not diagnosed until it is available"
    undecided = tuple(
        Finding(proxy, rule, Severity.OK, f"not checked: proxy status is {status}", insufficient_data=True)
        for rule in METRIC_RULES
    )
    return (Finding(proxy, PROXY_UNAVAILABLE, severity, summary), *undecided)


def not_found_finding(proxy: str) -> Finding:
    return Finding(
        proxy,
        PROXY_NOT_FOUND,
        Severity.WARNING,
        f"{proxy} is listed in PROXY_NAMES but no such proxy exists in this account and region",
        details=("Fix the name in PROXY_NAMES, or remove it if the proxy was deleted.",),
    )


class _Context:
    """What every rule reads: the proxy, its series, the latest figures and the forecast."""

    def __init__(self, proxy: ProxyInfo, metrics: ProxyMetrics, thresholds: Thresholds) -> None:
        self.proxy = proxy
        self.metrics = metrics
        self.t = thresholds
        self.window_minutes = len(metrics.timestamps_ms)
        self.latest: dict[str, float | None] = {key: metrics.latest(m) for key, m in LATEST_FIGURES.items()}
        latency_us = metrics.latest(BORROW_LATENCY)
        self.latest["borrow_latency_ms"] = None if latency_us is None else round(latency_us / 1000, 3)
        limit = self.latest["max_connections_allowed"]
        self.outlook: Outlook | None = None
        if limit and len(metrics.points(DATABASE_CONNECTIONS)) >= thresholds.forecast_min_points:
            self.outlook = forecast_exhaustion(
                metrics.points(DATABASE_CONNECTIONS), metrics.points(PINNED), limit, thresholds
            )
        self.forecast = self.outlook.forecast if self.outlook else None

    def finding(
        self,
        rule: str,
        severity: Severity,
        summary: str,
        figures: Mapping[str, float | None] | None = None,
        details: tuple[str, ...] = (),
    ) -> Finding:
        return Finding(self.proxy.name, rule, severity, summary, self._figures(rule, figures), details)

    def insufficient(self, rule: str, summary: str) -> Finding:
        return Finding(self.proxy.name, rule, Severity.OK, summary, self._figures(rule), insufficient_data=True)

    def _figures(self, rule: str, derived: Mapping[str, float | None] | None = None) -> dict[str, float | None]:
        return {key: self.latest[key] for key in _INPUTS[rule]} | dict(derived or {})

    @property
    def no_data(self) -> str:
        return f"no data: no {DATABASE_CONNECTIONS} datapoints in the last {self.window_minutes} min"


def _n(value: float) -> str:
    """A connection count as people write it: 12, not 12.0."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _pinned_share(ctx: _Context) -> Finding:
    pinned, db = ctx.latest["pinned_connections"], ctx.latest["database_connections"]
    if pinned is None or db is None:
        return ctx.insufficient(PINNED_SHARE, ctx.no_data)
    if db <= 0:
        return ctx.finding(PINNED_SHARE, Severity.OK, "no database connections open", {"pinned_pct": None})
    pct = pinned / db * 100
    figures = {"pinned_pct": round(pct, 1)}
    text = f"{_n(pinned)} of {_n(db)} database connections pinned ({pct:.0f}%)"
    if pinned < ctx.t.pinned_min_connections:
        return ctx.finding(PINNED_SHARE, Severity.OK, text, figures)
    if pct >= ctx.t.pinned_critical_pct:
        return ctx.finding(
            PINNED_SHARE,
            Severity.CRITICAL,
            f"{text}: multiplexing is essentially gone (critical at {ctx.t.pinned_critical_pct:g}%)",
            figures,
        )
    if pct >= ctx.t.pinned_warning_pct:
        return ctx.finding(
            PINNED_SHARE,
            Severity.WARNING,
            f"{text}: pinned connections cannot be shared (warning at {ctx.t.pinned_warning_pct:g}%)",
            figures,
        )
    return ctx.finding(PINNED_SHARE, Severity.OK, text, figures)


def _multiplexing_lost(ctx: _Context) -> Finding:
    clients, db = ctx.latest["client_connections"], ctx.latest["database_connections"]
    if clients is None or db is None:
        return ctx.insufficient(MULTIPLEXING_LOST, ctx.no_data)
    if db <= 0:
        return ctx.finding(MULTIPLEXING_LOST, Severity.OK, f"{_n(clients)} clients, no database connections open")
    ratio = clients / db
    figures = {"clients_per_db_connection": round(ratio, 2)}
    counts = f"{_n(clients)} clients on {_n(db)} connections"
    text = f"{ratio:.1f} clients per database connection ({counts})"
    if clients < ctx.t.multiplexing_min_clients:
        return ctx.finding(
            MULTIPLEXING_LOST,
            Severity.OK,
            f"{text}; too few clients to judge multiplexing (needs {ctx.t.multiplexing_min_clients})",
            figures,
        )
    if ratio <= ctx.t.multiplexing_max_ratio:
        pinned = ctx.latest["pinned_connections"]
        if pinned:
            counts += f", {_n(pinned)} pinned"
        return ctx.finding(
            MULTIPLEXING_LOST,
            Severity.WARNING,
            f"only {ratio:.1f} clients per database connection ({counts}): multiplexing is lost "
            f"(warning at {ctx.t.multiplexing_max_ratio:g} or below)",
            figures,
        )
    return ctx.finding(MULTIPLEXING_LOST, Severity.OK, text, figures)


def _pool_pressure(ctx: _Context) -> Finding:
    db, limit = ctx.latest["database_connections"], ctx.latest["max_connections_allowed"]
    if db is None or limit is None or limit <= 0:
        return ctx.insufficient(POOL_PRESSURE, ctx.no_data if db is None else f"no data: no {MAX_ALLOWED} datapoint")
    pct = db / limit * 100
    figures = {"pool_used_pct": round(pct, 1)}
    text = f"{_n(db)} of {_n(limit)} allowed database connections in use ({pct:.0f}%)"
    if pct >= ctx.t.pool_critical_pct:
        return ctx.finding(
            POOL_PRESSURE,
            Severity.CRITICAL,
            f"{text}: the pool is full (critical at {ctx.t.pool_critical_pct:g}%)",
            figures,
        )
    if pct >= ctx.t.pool_warning_pct:
        return ctx.finding(
            POOL_PRESSURE,
            Severity.WARNING,
            f"{text}: the pool is nearly full (warning at {ctx.t.pool_warning_pct:g}%)",
            figures,
        )
    return ctx.finding(POOL_PRESSURE, Severity.OK, text, figures)


def _exhaustion_forecast(ctx: _Context) -> Finding:
    points = len(ctx.metrics.points(DATABASE_CONNECTIONS))
    if points < ctx.t.forecast_min_points:
        return ctx.insufficient(
            EXHAUSTION_FORECAST,
            f"not enough data for a trend: {points} of the {ctx.t.forecast_min_points} minutes needed",
        )
    if not ctx.latest["max_connections_allowed"]:
        return ctx.insufficient(EXHAUSTION_FORECAST, f"no data: no {MAX_ALLOWED} datapoint")
    assert ctx.outlook is not None  # enough points and a limit: the outlook was worked out
    figures = ctx.outlook.figures
    f = ctx.forecast
    if f is None:
        return ctx.finding(
            EXHAUSTION_FORECAST,
            Severity.OK,
            f"no exhaustion forecast from the last {ctx.window_minutes} min: {ctx.outlook.why_no_forecast()}",
            figures,
        )
    rate = f"{f.slope_per_minute:+.1f} {'pinned ' if f.driver.startswith('pinned') else ''}connections/min"
    where = f"({_n(f.current)} {f.driver} of {_n(f.limit)} allowed)"
    if f.eta_minutes <= 0:
        text = f"pool exhausted now and still rising at {rate} {where}"
    else:
        text = f"pool exhausted in ~{max(1, round(f.eta_minutes))} min at {rate} {where}"
    if f.eta_minutes <= ctx.t.exhaustion_critical_minutes:
        severity = Severity.CRITICAL
    elif f.eta_minutes <= ctx.t.exhaustion_warning_minutes:
        severity = Severity.WARNING
    else:
        severity = Severity.OK
    return ctx.finding(EXHAUSTION_FORECAST, severity, text, figures)


def _open_transactions(ctx: _Context) -> Finding:
    pinned = ctx.latest["pinned_connections"]
    if pinned is None:
        return ctx.insufficient(OPEN_TRANSACTIONS, ctx.no_data)
    if pinned < ctx.t.pinned_min_connections:
        return ctx.finding(OPEN_TRANSACTIONS, Severity.OK, f"{_n(pinned)} pinned: no pins to explain")
    in_tx = dict(ctx.metrics.points(IN_TRANSACTION))
    paired = [(t, p, in_tx[t]) for t, p in ctx.metrics.points(PINNED) if t in in_tx]
    if len(paired) < ctx.t.forecast_min_points:
        return ctx.insufficient(
            OPEN_TRANSACTIONS,
            f"not enough data: {len(paired)} minutes with both pinned and {IN_TRANSACTION} values",
        )
    pinned_trend = fit_trend([(t, p) for t, p, _ in paired])
    tx_trend = fit_trend([(t, x) for t, _, x in paired])
    r = correlation([p for _, p, _ in paired], [x for _, _, x in paired])
    figures = {
        "pinned_slope_per_minute": None if pinned_trend is None else round(pinned_trend.slope_per_minute, 3),
        "in_transaction_slope_per_minute": None if tx_trend is None else round(tx_trend.slope_per_minute, 3),
        "pinned_in_transaction_correlation": None if r is None else round(r, 3),
    }
    floor = ctx.t.forecast_min_slope_per_minute
    if (
        pinned_trend is None
        or tx_trend is None
        or r is None
        or pinned_trend.slope_per_minute < floor
        or tx_trend.slope_per_minute < floor
        or r < ctx.t.open_transactions_min_correlation
    ):
        return ctx.finding(OPEN_TRANSACTIONS, Severity.OK, "pins do not rise with open transactions", figures)
    in_tx_now = paired[-1][2]
    return ctx.finding(
        OPEN_TRANSACTIONS,
        Severity.WARNING,
        f"pinned connections ({pinned_trend.slope_per_minute:+.1f}/min) rise with connections in a transaction "
        f"({_n(in_tx_now)}, {tx_trend.slope_per_minute:+.1f}/min, r={r:.2f}): likely open transactions "
        "(autocommit off, request-wide transactions), not SET",
        figures,
        details=(
            "Look for sessions that stay in a transaction between requests: autocommit turned off in the driver or "
            "ORM, a transaction opened per request or per job, or a missing commit/rollback on an error path.",
            "Keep transactions short and scoped to the statements that need them.",
        ),
    )


def _borrow_latency(ctx: _Context) -> Finding:
    latency = ctx.latest["borrow_latency_ms"]
    if latency is None:
        return ctx.insufficient(BORROW_LATENCY_RULE, f"no data: no {BORROW_LATENCY} datapoint in the latest minute")
    text = f"borrowing a database connection takes {latency:.0f} ms on average"
    if latency > ctx.t.borrow_latency_warning_ms:
        return ctx.finding(
            BORROW_LATENCY_RULE,
            Severity.WARNING,
            f"{text}: clients wait for the pool (warning above {ctx.t.borrow_latency_warning_ms:g} ms)",
        )
    return ctx.finding(BORROW_LATENCY_RULE, Severity.OK, text)


def _enhanced_logging_off(ctx: _Context) -> Finding:
    values = [v for v in ctx.metrics.values(PINNED) if v is not None]
    if not values:
        return ctx.insufficient(ENHANCED_LOGGING_OFF, ctx.no_data)
    peak = max(values)
    if peak <= 0:
        return ctx.finding(
            ENHANCED_LOGGING_OFF, Severity.OK, f"no pinned connections in the last {ctx.window_minutes} min"
        )
    if ctx.proxy.debug_logging is not False:
        state = "on" if ctx.proxy.debug_logging else "unknown"
        return ctx.finding(ENHANCED_LOGGING_OFF, Severity.OK, f"enhanced logging is {state}")
    return ctx.finding(
        ENHANCED_LOGGING_OFF,
        Severity.INFO,
        f"up to {_n(peak)} pinned connections in the last {ctx.window_minutes} min but enhanced logging is off: "
        "pin reasons are unknown (the proxy logs them only with enhanced logging on)",
        {"pinned_peak": peak},
        details=(
            f"Enable it while investigating: aws rds modify-db-proxy --db-proxy-name {ctx.proxy.name} --debug-logging",
            "It switches itself off after 24 hours and logs SQL statement text, so leave it off otherwise; "
            "pinwatch can switch it on for an incident and off again (ReasonCapture=on-incident, "
            "see docs/reason-capture.md).",
        ),
    )


def with_capture(findings: tuple[Finding, ...], capture: CaptureNote | None) -> tuple[Finding, ...]:
    """The ``enhanced_logging_off`` finding reworded for what reason capture did in this run.

    The rule runs before capture acts (diagnosis is pure); the check calls this afterwards so the
    finding says "pinwatch switched it on" or why it could not, instead of asking a person to.
    """
    if capture is None or capture.status not in ("started", "capturing", "failed", "planned", "released"):
        return findings
    out = []
    for f in findings:
        if f.rule == ENHANCED_LOGGING_OFF and capture.status == "capturing" and f.severity is Severity.OK:
            # Logging is on because pinwatch switched it on: say whose it is and until when.
            out.append(replace(f, summary=f"{f.summary} (switched on by pinwatch's reason capture, {capture.mode})"))
            continue
        if f.rule != ENHANCED_LOGGING_OFF or f.severity is not Severity.INFO or capture.status == "capturing":
            out.append(f)
            continue
        head = f.summary.split(": pin reasons", 1)[0]
        if capture.status == "started":
            summary = f"{head}: pin reasons are unknown so far; pinwatch switched it on to capture them"
            details: tuple[str, ...] = (
                "Reasons and statement digests appear from the next checks; pinwatch switches enhanced logging "
                "off again once the incident is over (it logs SQL statement text).",
            )
        elif capture.status == "failed":
            summary = f"{head}: pin reasons are unknown; pinwatch could not switch it on ({capture.error})"
            details = (*f.details[:1], "Check that the check function may call rds:ModifyDBProxy on the proxy.")
        elif capture.status == "released":
            summary = f"{head}: it was switched off outside pinwatch, which leaves it off for this incident"
            details = f.details[:1]
        else:
            summary = f"{head}: pin reasons are unknown; reason capture would switch it on ({capture.reason})"
            details = f.details
        out.append(replace(f, summary=summary, details=details))
    return tuple(out)


_RULES: tuple[Callable[[_Context], Finding], ...] = (
    _pinned_share,
    _multiplexing_lost,
    _pool_pressure,
    _exhaustion_forecast,
    _open_transactions,
    _borrow_latency,
    _enhanced_logging_off,
)
