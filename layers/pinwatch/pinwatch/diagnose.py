"""Diagnosis rules: a proxy's metric series in, one :class:`Finding` per rule out.

Pure: no I/O, no clock. Each rule has a minimum-traffic guard (a low client:connection ratio is
normal on a quiet proxy) and returns ``insufficient_data`` when it cannot reach a verdict, which
the alert policy treats as "no news" (never escalates to critical, never resolves).

Figures are taken from one minute, the newest one with a database-connections value, so every
ratio compares numbers published together. The trend and forecast maths are in :mod:`pinwatch.forecast`.

Which gauge a rule reads (RDS Proxy metrics table,
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy.monitoring.html):

- **in use**: ``DatabaseConnectionsCurrentlyBorrowed``, "the current number of database connections
  in the borrow state" — the connections clients hold. Load, multiplexing, pool pressure, the
  exhaustion forecast and the undersized-pool diagnosis are judged on it.
- **open**: ``DatabaseConnections``, "the current number of database connections". It includes the
  idle connections the pool keeps open for reuse (up to ``MaxIdleConnectionsPercent``; "RDS Proxy
  considers a database connection in its pool to be idle when there's been no activity on the
  connection for five minutes", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-connections.html).
  Idle connections are handed out again on the next borrow, so they are never load: the open
  count only explains, in messages, why open is above in use.
- **the limit**: ``MaxDatabaseConnectionsAllowed``, read as published and never recomputed from
  ``max_connections`` x ``MaxConnectionsPercent``: it leaves out the connections the proxy reserves
  for monitoring and failover and "can be lower than the value derived from the
  MaxConnectionsPercent setting" (same connections page).

Assumption: a pinned connection is held by its client session until the session ends ("The proxy
can't reuse this connection until the session ends", the pinning log line), so it is in use whether
or not the borrowed gauge counts it at that instant. In use is therefore max(borrowed, pinned) per
minute: the larger one is the better lower bound when one gauge lags the other. A proxy whose
borrowed gauge is absent for the whole window falls back to the open count (an over-estimate:
it can only over-warn, never hide a full pool).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from pinwatch.config import Thresholds
from pinwatch.discovery import DEFAULT_TARGET_GROUP, ProxyInfo
from pinwatch.findings import CaptureNote, Finding, Severity, error_text
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
    SETUP_FAILED,
    ProxyMetrics,
)
from pinwatch.scope import SCOPE_WIDE as SCOPE_WIDE
from pinwatch.scope import Scope

PINNED_SHARE = "pinned_share"
MULTIPLEXING_LOST = "multiplexing_lost"
POOL_PRESSURE = "pool_pressure"
UNDERSIZED_POOL = "undersized_pool"
EXHAUSTION_FORECAST = "exhaustion_forecast"
OPEN_TRANSACTIONS = "open_transactions"
BORROW_LATENCY_RULE = "borrow_latency"
CONNECTION_SETUP_FAILED = "connection_setup_failed"
NO_CONNECTIONS_ALLOWED = "no_connections_allowed"
ENHANCED_LOGGING_OFF = "enhanced_logging_off"
PROXY_UNAVAILABLE = "proxy_unavailable"
PROXY_NOT_FOUND = "proxy_not_found"
# The check could not read this proxy (its describe, target-group or metric read failed): a
# warning, so somebody looks, while the proxy's other alerts are neither raised nor resolved.
NOT_CHECKED = "not_checked"
# Organization mode: a member account and Region the check cannot read at all (its role cannot be
# assumed, or denies the reads). Kept under the scope's own key, ``<account>:<region>:*``: one alert
# for the member, not one per proxy (the check cannot even list them).
MEMBER_UNREACHABLE = "member_unreachable"

METRIC_RULES = (
    PINNED_SHARE,
    MULTIPLEXING_LOST,
    POOL_PRESSURE,
    UNDERSIZED_POOL,
    EXHAUSTION_FORECAST,
    OPEN_TRANSACTIONS,
    BORROW_LATENCY_RULE,
    CONNECTION_SETUP_FAILED,
    NO_CONNECTIONS_ALLOWED,
    ENHANCED_LOGGING_OFF,
)

# Rules about pinning: they never fire for a pool that is merely too small (pins low).
PINNING_RULES = frozenset({PINNED_SHARE, MULTIPLEXING_LOST, OPEN_TRANSACTIONS})

# Statuses that need someone to act; the rest (creating, modifying, enabling, …) pass on their own.
_BROKEN_STATUSES = frozenset({"incompatible-network", "insufficient-resource-limits", "suspended", "suspending"})

# AWS: "set the parameter at least 30% above your maximum recent monitored usage" (connections page).
_HEADROOM = 1.3
# Failed setups in any of the newest minutes count as "failing now".
_RECENT_MINUTES = 3

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
    PINNED_SHARE: ("pinned_connections", "in_use_connections", "max_connections_allowed"),
    MULTIPLEXING_LOST: ("client_connections", "in_use_connections", "pinned_connections"),
    POOL_PRESSURE: ("in_use_connections", "database_connections", "max_connections_allowed"),
    UNDERSIZED_POOL: ("in_use_connections", "pinned_connections", "max_connections_allowed", "borrow_latency_ms"),
    EXHAUSTION_FORECAST: ("in_use_connections", "pinned_connections", "max_connections_allowed"),
    OPEN_TRANSACTIONS: ("pinned_connections", "in_transaction_connections"),
    BORROW_LATENCY_RULE: ("borrow_latency_ms",),
    CONNECTION_SETUP_FAILED: ("database_connections",),
    NO_CONNECTIONS_ALLOWED: ("max_connections_allowed",),
    ENHANCED_LOGGING_OFF: ("pinned_connections",),
}


@dataclass(frozen=True, slots=True)
class Diagnosis:
    findings: tuple[Finding, ...]
    # Latest value per CloudWatch metric name (latency in µs); borrowed reads as the rules read it.
    figures: Mapping[str, float | None]
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
    if figures[BORROWED] is None and metrics.latest_index() is not None and borrowed_seen(metrics):
        # As in_use_points reads it: a published minute without a borrowed datapoint had none
        # borrowed, so the alert's numbers show the connections in use the rules judged.
        figures[BORROWED] = 0.0
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


NOT_CHECKED_ERROR_MAX = 300  # an API error's text is quoted, not dumped


@dataclass(frozen=True, slots=True)
class Caller:
    """Whose IAM permissions the check's AWS calls for a proxy use: what advice on a denied call names.

    A single account's check calls with its own function role; in organization mode it calls through
    the member role it assumes in the proxy's account (docs/organization.md), so that role is the
    one to fix. Built by :func:`caller_for`; the sentences that use it are written once, below.
    """

    # Completes "check ... and the RDS and CloudWatch API quotas" (a proxy that was not checked).
    permissions: str
    # Completes "Check that ... may call rds:ModifyDBProxy on the proxy" (reason capture failed).
    modifier: str
    # Said after that sentence: where the permission comes from, when pinwatch's own template grants it.
    modify_grant: str = ""


CHECK_FUNCTION = Caller(permissions="the function's IAM permissions", modifier="the check function")


def caller_for(scope: Scope | None, member_role: str) -> Caller:
    """The caller of a proxy's AWS calls: the check function, or ``member_role`` in the scope's account."""
    if scope is None:
        return CHECK_FUNCTION
    role = f"the member role {member_role} in account {scope.account}"
    return Caller(
        permissions=f"the IAM permissions of {role}",
        modifier=role,
        # org/member.yaml adds rds:ModifyDBProxy to the role only with capture on (condition CaptureEnabled).
        modify_grant=" (the member stack grants it when its ReasonCapture parameter is on-incident or always)",
    )


def not_checked_finding(proxy: str, error: str, caller: Caller = CHECK_FUNCTION) -> Finding:
    error = error_text(error, NOT_CHECKED_ERROR_MAX)
    return Finding(
        proxy,
        NOT_CHECKED,
        Severity.WARNING,
        f"{proxy} was not checked: {error}",
        details=(
            "The other proxies were checked. This one is checked again on the next run; if the "
            f"error persists, check {caller.permissions} and the RDS and CloudWatch API quotas.",
        ),
    )


def member_unreachable_finding(
    key: str, account: str, region: str, role: str, code: str, error: str, *, retry: str | None = None
) -> Finding:
    """A member account and Region whose proxies could not be checked (organization mode).

    ``key`` is the scope's key (``<account>:<region>:*``); ``code`` the AWS error code (AccessDenied,
    …); ``retry`` when the member is tried again, if not on the next run.
    """
    error = error_text(error, NOT_CHECKED_ERROR_MAX)
    when = f"it is tried again {retry}" if retry else "it is tried again on the next run"
    return Finding(
        key,
        MEMBER_UNREACHABLE,
        Severity.WARNING,
        f"account {account} in {region} was not checked through role {role} ({code}); {when}",
        details=(
            error,
            f"Its proxies are neither alerted on nor resolved meanwhile. Check that the member stack is "
            f"deployed in {account} (it creates the role {role} once, in the home Region) and that the "
            "role trusts the check function's role.",
        ),
    )


def borrowed_seen(metrics: ProxyMetrics) -> bool:
    """Whether the window has a borrowed datapoint at all (without one, open connections stand in for in use)."""
    return any(v is not None for v in metrics.values(BORROWED))


def in_use_points(metrics: ProxyMetrics) -> list[tuple[int, float]]:
    """(timestamp ms, connections in use) per minute: max(borrowed, pinned), or open without a borrowed gauge.

    Without any borrowed datapoint in the window, the open count stands in (an over-estimate).
    """
    if not borrowed_seen(metrics):
        return metrics.points(DATABASE_CONNECTIONS)
    borrowed = metrics.values(BORROWED)
    # Like the pinned gauge, the borrowed one has been seen to publish nothing while it is 0
    # (https://www.repost.aws/zh-Hant/questions/QUWj6NLZUOQ8qFBs_2_9JKxA): in a minute the proxy
    # published its open count, no borrowed datapoint reads as none borrowed.
    pinned, open_ = metrics.values(PINNED), metrics.values(DATABASE_CONNECTIONS)
    return [
        (t, max(b if b is not None else 0.0, p or 0.0))
        for t, b, p, o in zip(metrics.timestamps_ms, borrowed, pinned, open_, strict=True)
        if b is not None or o is not None
    ]


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
        self.in_use_series = in_use_points(metrics)
        index = metrics.latest_index()
        newest = None if index is None else metrics.timestamps_ms[index]
        self.latest["in_use_connections"] = next((v for t, v in self.in_use_series if t == newest), None)
        self.limit = self.latest["max_connections_allowed"]
        pool = proxy.pool
        self.max_connections_pct = None if pool is None else pool.max_connections_percent
        self.max_idle_pct = None if pool is None else pool.max_idle_connections_percent
        configured = None if pool is None else pool.connection_borrow_timeout_s
        self.borrow_timeout_known = configured is not None
        timeout = thresholds.default_borrow_timeout_s if configured is None else float(configured)
        # 0 has meant "no timeout" in the API's history: clients then wait without an error.
        self.borrow_timeout_s: float | None = timeout if timeout > 0 else None
        self.outlook: Outlook | None = None
        if self.limit and len(self.in_use_series) >= thresholds.forecast_min_points:
            self.outlook = forecast_exhaustion(self.in_use_series, metrics.points(PINNED), self.limit, thresholds)
        self.forecast = self.outlook.forecast if self.outlook else None

    # ---- derived figures shared by rules

    @property
    def in_use(self) -> float | None:
        return self.latest["in_use_connections"]

    @property
    def pool_used_pct(self) -> float | None:
        in_use, limit = self.in_use, self.limit
        return None if in_use is None or not limit else in_use / limit * 100

    @property
    def pinned_pct_of_in_use(self) -> float | None:
        pinned, in_use = self.latest["pinned_connections"], self.in_use
        if in_use is None or in_use <= 0:
            return None
        return (pinned or 0.0) / in_use * 100

    def latency_thresholds_ms(self) -> tuple[float, float | None]:
        """(warning, critical) borrow latency in ms: a fraction of ConnectionBorrowTimeout, never below the floors."""
        if self.borrow_timeout_s is None:
            return self.t.borrow_latency_warning_ms, None
        timeout_ms = self.borrow_timeout_s * 1000
        warning = max(self.t.borrow_latency_warning_ms, timeout_ms * self.t.borrow_timeout_warning_pct / 100)
        critical = max(self.t.borrow_latency_critical_floor_ms, timeout_ms * self.t.borrow_timeout_critical_pct / 100)
        return warning, max(critical, warning)

    def pinning_severity(self, pinned_pct: float) -> tuple[Severity, str]:
        """Severity of pinning by what it costs: critical only when pins sit on a pool that is running out."""
        pinned, limit, used = self.latest["pinned_connections"] or 0.0, self.limit, self.pool_used_pct
        if pinned_pct >= self.t.pinned_critical_pct and used is not None and used >= self.t.pool_warning_pct:
            return Severity.CRITICAL, (
                f"pinned sessions hold a pool that is {used:.0f}% used: capacity is being lost "
                f"(critical at {self.t.pinned_critical_pct:g}% pinned with the pool {self.t.pool_warning_pct:g}% used)"
            )
        held = None if not limit else pinned / limit * 100
        if held is not None and held < self.t.pinned_capacity_warning_pct:
            return Severity.INFO, (
                f"pinned connections cannot be shared, but they hold only {held:.0f}% of the {_n(limit or 0)} allowed: "
                f"no capacity at risk yet (warning from {self.t.pinned_capacity_warning_pct:g}% of the limit)"
            )
        return Severity.WARNING, "pinned connections cannot be shared"

    # ---- findings

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

    def no_limit(self) -> str | None:
        """Why the limit cannot be used, or None when it can."""
        if self.limit is None:
            return f"no data: no {MAX_ALLOWED} datapoint"
        if self.limit <= 0:
            return f"{MAX_ALLOWED} is 0: see {NO_CONNECTIONS_ALLOWED}"
        return None

    def pool_unknown(self, rule: str) -> Finding | None:
        """The no-data finding of a rule that needs connections in use and a usable limit; None when both are there."""
        if self.in_use is None:
            return self.insufficient(rule, self.no_data)
        why_not = self.no_limit()
        return None if why_not is None else self.insufficient(rule, why_not)


def _n(value: float) -> str:
    """A connection count as people write it: 12, not 12.0."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _pct(value: int | None) -> str:
    return "unknown" if value is None else f"{value}%"


def _pinned_share(ctx: _Context) -> Finding:
    pinned, in_use = ctx.latest["pinned_connections"], ctx.in_use
    if pinned is None or in_use is None:
        return ctx.insufficient(PINNED_SHARE, ctx.no_data)
    if in_use <= 0:
        return ctx.finding(PINNED_SHARE, Severity.OK, "no database connections in use", {"pinned_pct": None})
    pct = pinned / in_use * 100
    figures = {"pinned_pct": round(pct, 1)}
    text = f"{_n(pinned)} of {_n(in_use)} database connections in use are pinned ({pct:.0f}%)"
    if pinned < ctx.t.pinned_min_connections or pct < ctx.t.pinned_warning_pct:
        return ctx.finding(PINNED_SHARE, Severity.OK, text, figures)
    severity, why = ctx.pinning_severity(pct)
    if severity is Severity.WARNING:
        why += f" (warning at {ctx.t.pinned_warning_pct:g}%)"
    return ctx.finding(PINNED_SHARE, severity, f"{text}: {why}", figures)


def _multiplexing_lost(ctx: _Context) -> Finding:
    clients, in_use = ctx.latest["client_connections"], ctx.in_use
    if clients is None or in_use is None:
        return ctx.insufficient(MULTIPLEXING_LOST, ctx.no_data)
    if in_use <= 0:
        return ctx.finding(MULTIPLEXING_LOST, Severity.OK, f"{_n(clients)} clients, no database connections in use")
    ratio = clients / in_use
    figures = {"clients_per_connection_in_use": round(ratio, 2)}
    counts = f"{_n(clients)} clients on {_n(in_use)} connections in use"
    text = f"{ratio:.1f} clients per database connection in use ({counts})"
    if clients < ctx.t.multiplexing_min_clients:
        return ctx.finding(
            MULTIPLEXING_LOST,
            Severity.OK,
            f"{text}; too few clients to judge multiplexing (needs {ctx.t.multiplexing_min_clients})",
            figures,
        )
    if ratio > ctx.t.multiplexing_max_ratio:
        return ctx.finding(MULTIPLEXING_LOST, Severity.OK, text, figures)
    pinned, pinned_pct = ctx.latest["pinned_connections"] or 0.0, ctx.pinned_pct_of_in_use or 0.0
    if pinned < ctx.t.pinned_min_connections or pinned_pct < ctx.t.pinned_warning_pct:
        # Every client busy at the same moment is load, not lost multiplexing: nothing is pinned.
        return ctx.finding(
            MULTIPLEXING_LOST, Severity.OK, f"{text}: clients are all busy at once, none pinned: not lost", figures
        )
    severity, why = ctx.pinning_severity(pinned_pct)
    # The pinned share carries the page; this rule says how much sharing is gone.
    severity = min(severity, Severity.WARNING, key=lambda s: s.rank)
    return ctx.finding(
        MULTIPLEXING_LOST,
        severity,
        f"only {ratio:.1f} clients per database connection in use ({counts}, {_n(pinned)} pinned): multiplexing is "
        f"lost to pinning (at {ctx.t.multiplexing_max_ratio:g} or below); {why}",
        figures,
    )


def _idle_note(ctx: _Context) -> str:
    """Why open is above in use: the idle connections the pool keeps, and how many it may keep."""
    open_, in_use, limit = ctx.latest["database_connections"], ctx.in_use, ctx.limit
    if open_ is None or in_use is None or not limit or open_ <= in_use:
        return ""
    # It matters when the open count alone would read as a busy pool: mostly idle, or past the warning.
    looks_full = open_ / limit * 100 >= ctx.t.pool_warning_pct > in_use / limit * 100
    if open_ - in_use < in_use and not looks_full:
        return ""
    note = f"; {_n(open_)} open, {_n(open_ - in_use)} of them idle in the pool (not load)"
    if ctx.max_idle_pct is not None and ctx.max_connections_pct and ctx.limit:
        # Both settings are percentages of max_connections: the idle allowance relative to the limit.
        allowance = ctx.limit * ctx.max_idle_pct / ctx.max_connections_pct
        note += f", which may keep up to ~{allowance:.0f} idle (MaxIdleConnectionsPercent {ctx.max_idle_pct}%)"
    return note


def _pool_pressure(ctx: _Context) -> Finding:
    unknown = ctx.pool_unknown(POOL_PRESSURE)
    if unknown is not None:
        return unknown
    in_use = ctx.in_use or 0.0
    pct = ctx.pool_used_pct or 0.0
    figures = {"pool_used_pct": round(pct, 1)}
    text = f"{_n(in_use)} of {_n(ctx.limit or 0)} allowed database connections in use ({pct:.0f}%){_idle_note(ctx)}"
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


def _suggested_max_connections_pct(ctx: _Context) -> int | None:
    """MaxConnectionsPercent that gives the window's peak in use AWS's 30 % headroom; None if unknown."""
    if not ctx.max_connections_pct or not ctx.limit or not ctx.in_use_series:
        return None
    peak = max(v for _, v in ctx.in_use_series)
    return math.ceil(ctx.max_connections_pct * max(peak, ctx.limit) * _HEADROOM / ctx.limit)


def _pool_fix(ctx: _Context) -> tuple[str, ...]:
    """What to change for a pool that is too small, with the proxy's current values, best first."""
    current, timeout = ctx.max_connections_pct, ctx.borrow_timeout_s
    suggested = _suggested_max_connections_pct(ctx)
    name = ctx.proxy.name
    raise_pct = (
        f"Raise MaxConnectionsPercent (now {_pct(current)}) on the proxy's target group; AWS recommends at least 30% "
        "headroom above the peak in use"
    )
    if suggested is not None and suggested <= 100:
        raise_pct += (
            f", e.g. to {suggested}%: aws rds modify-db-proxy-target-group --db-proxy-name {name} "
            f"--target-group-name {DEFAULT_TARGET_GROUP} --connection-pool-config MaxConnectionsPercent={suggested}"
        )
    size = (
        "Size the database's max_connections: the pool may use MaxConnectionsPercent of it, and a small instance "
        "class has a small default max_connections (a larger class, or a higher max_connections parameter, "
        "raises the pool's ceiling)"
    )
    timeout_text = "no timeout" if timeout is None else f"{timeout:g} s"
    if not ctx.borrow_timeout_known:
        timeout_text += ", the default"
    review = (
        f"Review ConnectionBorrowTimeout (now {timeout_text}): clients queue up to that long for a connection "
        "before they get a timeout error; a shorter one fails fast instead of piling up requests"
    )
    at_ceiling = current is not None and (current >= 100 or (suggested is not None and suggested > 100))
    return (size, raise_pct, review) if at_ceiling else (raise_pct, size, review)


def _undersized_pool(ctx: _Context) -> Finding:
    unknown = ctx.pool_unknown(UNDERSIZED_POOL)
    if unknown is not None:
        return unknown
    in_use, latency = ctx.in_use or 0.0, ctx.latest["borrow_latency_ms"]
    used = ctx.pool_used_pct or 0.0
    pinned_pct = ctx.pinned_pct_of_in_use or 0.0
    warn_ms, crit_ms = ctx.latency_thresholds_ms()
    figures = {
        "pool_used_pct": round(used, 1),
        "pinned_pct": round(pinned_pct, 1),
        "max_connections_percent": None if ctx.max_connections_pct is None else float(ctx.max_connections_pct),
        "borrow_timeout_s": ctx.borrow_timeout_s,
    }
    waiting = latency is not None and latency >= warn_ms
    saturated = used >= ctx.t.pool_warning_pct
    state = f"{_n(in_use)} of {_n(ctx.limit or 0)} allowed connections in use ({used:.0f}%)"
    if latency is not None:
        state += f", borrowing takes {latency:.0f} ms"
    if not (saturated or waiting):
        return ctx.finding(UNDERSIZED_POOL, Severity.OK, f"{state}: the pool is large enough", figures)
    pinned = f"{pinned_pct:.0f}% of the connections in use pinned"
    if pinned_pct >= ctx.t.pinned_critical_pct:
        return ctx.finding(
            UNDERSIZED_POOL,
            Severity.INFO,
            f"{state}, but {pinned}: pinning dominates, fix the pinning first; raising MaxConnectionsPercent "
            f"(now {_pct(ctx.max_connections_pct)}) would only buy time",
            figures,
        )
    full = used >= ctx.t.pool_critical_pct or (crit_ms is not None and latency is not None and latency >= crit_ms)
    severity = Severity.CRITICAL if full else Severity.WARNING
    summary = (
        f"the pool is too small, not pinned: {state}, {pinned}: raise MaxConnectionsPercent "
        f"(now {_pct(ctx.max_connections_pct)}) or the database's max_connections"
    )
    if pinned_pct >= ctx.t.pinned_warning_pct:
        summary += "; pins take a share too, but under-provisioning dominates: size the pool first"
    return ctx.finding(UNDERSIZED_POOL, severity, summary, figures, details=_pool_fix(ctx))


def _exhaustion_forecast(ctx: _Context) -> Finding:
    points = len(ctx.in_use_series)
    if points < ctx.t.forecast_min_points:
        return ctx.insufficient(
            EXHAUSTION_FORECAST,
            f"not enough data for a trend: {points} of the {ctx.t.forecast_min_points} minutes needed",
        )
    why_not = ctx.no_limit()
    if why_not is not None:
        return ctx.insufficient(EXHAUSTION_FORECAST, why_not)
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
    level = f.current / f.limit * 100
    if f.eta_minutes <= ctx.t.exhaustion_critical_minutes:
        severity = Severity.CRITICAL
    elif f.eta_minutes <= ctx.t.exhaustion_warning_minutes:
        if level >= ctx.t.forecast_min_pool_pct:
            severity = Severity.WARNING
        else:
            severity = Severity.OK
            text += f": a ramp far from the limit ({level:.0f}% used; warns from {ctx.t.forecast_min_pool_pct:g}%)"
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
    warn_ms, crit_ms = ctx.latency_thresholds_ms()
    timeout = ctx.borrow_timeout_s
    figures = {"borrow_timeout_s": timeout, "warning_ms": round(warn_ms, 1), "critical_ms": crit_ms}
    against = "no ConnectionBorrowTimeout" if timeout is None else f"ConnectionBorrowTimeout {timeout:g} s"
    if timeout is not None and not ctx.borrow_timeout_known:
        against += " (the default)"
    text = f"borrowing a database connection takes {latency:.0f} ms on average ({against})"
    if crit_ms is not None and latency >= crit_ms:
        return ctx.finding(
            BORROW_LATENCY_RULE,
            Severity.CRITICAL,
            f"{text}: clients wait toward the borrow timeout, after which they get an error "
            f"(critical at {crit_ms:,.0f} ms)",
            figures,
        )
    if latency >= warn_ms:
        return ctx.finding(
            BORROW_LATENCY_RULE,
            Severity.WARNING,
            f"{text}: clients wait for the pool (warning at {warn_ms:,.0f} ms)",
            figures,
        )
    return ctx.finding(BORROW_LATENCY_RULE, Severity.OK, text, figures)


def _connection_setup_failed(ctx: _Context) -> Finding:
    if SETUP_FAILED not in ctx.metrics.series:
        return ctx.insufficient(
            CONNECTION_SETUP_FAILED, f"not read this run: {SETUP_FAILED} is read every few minutes (cost)"
        )
    values = ctx.metrics.values(SETUP_FAILED)
    failed = [v for v in values if v]
    # Like the pinned gauge, a count with nothing to count may publish nothing: no datapoint reads as
    # none failed, but only when the proxy published its gauges (else there is nothing to go on).
    if not failed and ctx.metrics.latest_index() is None:
        return ctx.insufficient(CONNECTION_SETUP_FAILED, ctx.no_data)
    if not failed:
        return ctx.finding(
            CONNECTION_SETUP_FAILED,
            Severity.OK,
            f"no failed database connection setups in the last {ctx.window_minutes} min",
            {"setup_failed_total": 0.0},
        )
    total = sum(failed)
    recent = sum(v or 0.0 for v in values[-_RECENT_MINUTES:])
    figures = {"setup_failed_total": total, "setup_failed_recent": recent}
    open_ = ctx.latest["database_connections"]
    text = f"{_n(total)} database connection setups failed in the last {ctx.window_minutes} min ({len(failed)} min)"
    details = (
        f"Check the target's health: aws rds describe-db-proxy-targets --db-proxy-name {ctx.proxy.name} "
        "(TargetHealth State, Reason and Description).",
        "Usual causes: the database's max_connections taken by other clients, credentials in the proxy's secret out "
        "of date, a security group or network path that blocks the proxy, the database restarting or failing over.",
    )
    if recent and not open_:
        return ctx.finding(
            CONNECTION_SETUP_FAILED,
            Severity.CRITICAL,
            f"{text}, {_n(recent)} in the last {_RECENT_MINUTES} min, and no database connection is open: "
            "the proxy cannot reach the database",
            figures,
            details,
        )
    return ctx.finding(CONNECTION_SETUP_FAILED, Severity.WARNING, text, figures, details)


def _no_connections_allowed(ctx: _Context) -> Finding:
    limit = ctx.limit
    if limit is None:
        return ctx.insufficient(NO_CONNECTIONS_ALLOWED, f"no data: no {MAX_ALLOWED} datapoint")
    if limit > 0:
        return ctx.finding(NO_CONNECTIONS_ALLOWED, Severity.OK, f"{_n(limit)} database connections allowed")
    timeout = "no timeout" if ctx.borrow_timeout_s is None else f"{ctx.borrow_timeout_s:g} s"
    return ctx.finding(
        NO_CONNECTIONS_ALLOWED,
        Severity.CRITICAL,
        f"{MAX_ALLOWED} is 0: the proxy may open no database connection; clients wait out "
        f"ConnectionBorrowTimeout ({timeout}) and get a timeout error",
        details=(
            f"Check the target: aws rds describe-db-proxy-targets --db-proxy-name {ctx.proxy.name}; a target that is "
            "unavailable, stopped or failing over leaves no connections to allow.",
            f"MaxConnectionsPercent (now {_pct(ctx.max_connections_pct)}) of a small max_connections, minus the "
            "connections the proxy reserves for monitoring and failover, can leave nothing for clients.",
        ),
    )


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


def with_capture(
    findings: tuple[Finding, ...], capture: CaptureNote | None, caller: Caller = CHECK_FUNCTION
) -> tuple[Finding, ...]:
    """The ``enhanced_logging_off`` finding reworded for what reason capture did in this run.

    The rule runs before capture acts (diagnosis is pure); the check calls this afterwards so the
    finding says "pinwatch switched it on" or why it could not, instead of asking a person to.
    ``caller`` is who called ``ModifyDBProxy``: a failure names it.
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
            advice = f"Check that {caller.modifier} may call rds:ModifyDBProxy on the proxy{caller.modify_grant}."
            details = (*f.details[:1], advice)
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
    _undersized_pool,
    _exhaustion_forecast,
    _open_transactions,
    _borrow_latency,
    _connection_setup_failed,
    _no_connections_allowed,
    _enhanced_logging_off,
)
