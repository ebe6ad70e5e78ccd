"""The connection check: discover proxies, read their metrics once, diagnose, explain, alert.

Orchestration only, every dependency injected: the scheduled function and ``pinwatch check``
wire real adapters (:mod:`pinwatch.wiring`), tests wire fakes or local services.

One run costs: one ``DescribeDBProxies`` listing (or one call per configured name), one
``DescribeDBProxyTargetGroups`` per available proxy whose target group the discovery has not read
within its cache time, ceil(proxies x metrics / 500) ``GetMetricData`` calls, and two
summary-table queries per proxy that has pins or problems (healthy, unpinned proxies have nothing
to explain, so their reasons are not read). With reason capture on (:mod:`pinwatch.capture`), one
consistent ``Query`` of the capture item per available proxy, and a conditional write plus a
``ModifyDBProxy`` when capture switches a proxy's enhanced logging.

In organization mode (:mod:`pinwatch.org`) one check per member account and Region runs with that
member's clients and ``scope``: the same calls, in that member, and every proxy handed on under its
key (:mod:`pinwatch.scope`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from pinwatch.alerts.policy import GONE_STATUS
from pinwatch.config import Thresholds
from pinwatch.diagnose import (
    CHECK_FUNCTION,
    SCOPE_WIDE,
    Caller,
    diagnose,
    not_checked_finding,
    not_found_finding,
    with_capture,
)
from pinwatch.discovery import Discovery, ProxyInfo
from pinwatch.findings import CaptureNote, Finding, ProxyReport, Severity
from pinwatch.metrics import PINNED, ProxyMetrics
from pinwatch.records import EngineFamily, PoolConfig, ReasonCount
from pinwatch.scope import Scope, proxy_key, split_key
from pinwatch.timebase import HOUR_MS

if TYPE_CHECKING:
    from pinwatch.alerts.dispatcher import DispatchResult

logger = logging.getLogger(__name__)

NOT_FOUND_STATUS = "not-found"
# A proxy whose describe, target-group or metric read failed: not "available", so the alert policy
# neither raises nor resolves its other rules on a run that could not see them.
NOT_CHECKED_STATUS = "not-checked"


class ProxySource(Protocol):
    def discover(self, names: Sequence[str] = ()) -> Discovery: ...


class MetricSource(Protocol):
    def read(self, proxies: Sequence[str], end_ms: int, window_minutes: int) -> Mapping[str, ProxyMetrics]: ...


class ReasonSource(Protocol):
    """What the check reads from the summary table (``pinwatch.store.summary.SummaryStore``)."""

    def top_reasons(self, proxy: str, since_ms: int, until_ms: int, limit: int = 5) -> list[ReasonCount]: ...

    def reason_totals(self, proxy: str) -> list[ReasonCount]: ...


class Capture(Protocol):
    """Reason capture (``pinwatch.capture_runner.ReasonCapture``): switch enhanced logging for an incident."""

    def apply(
        self,
        proxy: str,
        debug_logging: bool | None,
        findings: Sequence[Finding],
        reasons: Sequence[ReasonCount],
        now_ms: int,
        *,
        dry_run: bool = False,
    ) -> CaptureNote: ...


class Dispatcher(Protocol):
    """Alert policy and delivery: ``pinwatch.alerts.AlertDispatcher``."""

    def process(
        self, report: ProxyReport, now_ms: int, dry_run: bool = False, deadline: float | None = None
    ) -> DispatchResult: ...

    def alerting_proxies(self) -> frozenset[str]: ...


# (reason code, engine, example digest, pool config) -> hint texts, best first.
HintLookup = Callable[[str, EngineFamily | None, str | None, PoolConfig | None], Sequence[str]]


@dataclass(frozen=True, slots=True)
class ProxyOutcome:
    report: ProxyReport
    dispatch: DispatchResult | None = None  # None without a dispatcher, or when it failed
    error: str | None = None  # why this proxy's alerting failed (the rest of the run went on)


@dataclass(frozen=True, slots=True)
class CheckResult:
    outcomes: tuple[ProxyOutcome, ...]
    checked_at_ms: int

    @property
    def reports(self) -> tuple[ProxyReport, ...]:
        return tuple(o.report for o in self.outcomes)

    @property
    def failures(self) -> dict[str, str]:
        return {o.report.proxy: o.error for o in self.outcomes if o.error is not None}

    @property
    def alerts_sent(self) -> int:
        """Messages a channel accepted."""
        return sum(len(o.dispatch.delivered) for o in self.outcomes if o.dispatch is not None)

    @property
    def delivery_failures(self) -> int:
        """Messages a channel failed or rejected, plus proxies whose alerting raised (their messages are unknown)."""
        return sum(len(o.dispatch.failures) if o.dispatch is not None else o.error is not None for o in self.outcomes)

    @property
    def unhealthy(self) -> dict[str, Severity]:
        """Proxy -> worst severity, for the proxies that are not ok."""
        return {r.proxy: r.severity for r in self.reports if r.severity.rank > Severity.OK.rank}

    def findings_by_severity(self) -> dict[Severity, int]:
        """Findings per severity, every severity present; findings without enough data are not counted."""
        counts = Counter(f.severity for r in self.reports for f in r.findings if not f.insufficient_data)
        return {severity: counts.get(severity, 0) for severity in Severity}


class Check(Protocol):
    """What the check function runs: :class:`ConnectionCheck`, or one wrapped (the demo records each result)."""

    def run(
        self,
        now_ms: int,
        *,
        dry_run: bool = False,
        deadline: float | None = None,
        names: Sequence[str] | None = None,
    ) -> CheckResult: ...

    def alerting_proxies(self) -> frozenset[str]: ...


class ConnectionCheck:
    def __init__(
        self,
        *,
        proxies: ProxySource,
        metrics: MetricSource,
        thresholds: Thresholds,
        window_minutes: int,
        proxy_names: Sequence[str] = (),
        reasons: ReasonSource | None = None,
        hints: HintLookup | None = None,
        dispatcher: Dispatcher | None = None,
        reason_limit: int = 5,
        capture: Capture | None = None,
        scope: Scope | None = None,
        caller: Caller = CHECK_FUNCTION,
    ) -> None:
        """``scope``: the member account and Region these clients read (organization mode).

        AWS is always asked by the proxy's bare name; everything the check hands on or looks up
        — reports, findings, reasons, capture and alert state — uses the proxy's key
        (``scope.key(name)``, :mod:`pinwatch.scope`). Without a scope the key is the name.
        ``caller``: whose IAM permissions the clients use, as findings about a denied call name it.
        """
        self._proxies = proxies
        self._metrics = metrics
        self._thresholds = thresholds
        self._window_minutes = window_minutes
        self._proxy_names = tuple(proxy_names)
        self._reasons = reasons
        self._hints = hints
        self._dispatcher = dispatcher
        self._reason_limit = reason_limit
        self._capture = capture
        self._scope = scope
        self._caller = caller

    @property
    def scope(self) -> Scope | None:
        return self._scope

    def _key(self, name: str) -> str:
        return proxy_key(self._scope, name)

    def run(
        self,
        now_ms: int,
        *,
        dry_run: bool = False,
        deadline: float | None = None,
        names: Sequence[str] | None = None,
    ) -> CheckResult:
        """One check of every proxy; ``dry_run`` asks the dispatcher to render without sending or saving.

        ``deadline`` (``time.monotonic()``) is when alert delivery must be over so the run can
        finish; a failure reading one proxy makes that proxy "not checked" and the rest go on.

        ``names`` limits the run to those proxies (:mod:`pinwatch.fleet`: the hot ones between two
        sweeps, or an alarm's contributor). Such a run sees too little to close other proxies'
        alerts; one of its names that no longer exists is gone (its open alerts resolve), unless
        it is a configured name, which stays "not found". A scoped check takes keys of its own
        scope; other keys are not its proxies and are left out.
        """
        if names is not None:
            return self._run_some(now_ms, self._bare_names(names), dry_run, deadline)
        found = self._proxies.discover(self._proxy_names)
        reports = self._diagnosed(found, now_ms, dry_run)
        reports += [
            ProxyReport(
                proxy=self._key(name),
                engine=None,
                status=NOT_FOUND_STATUS,
                findings=self._keyed(name, (not_found_finding(name),)),
                checked_at_ms=now_ms,
            )
            for name in found.missing
        ]
        reports += [
            ProxyReport(proxy=key, engine=None, status=GONE_STATUS, findings=(), checked_at_ms=now_ms)
            for key in self._gone(found)
        ]
        return CheckResult(tuple(self._dispatch(r, now_ms, dry_run, deadline) for r in reports), now_ms)

    def _run_some(self, now_ms: int, names: Sequence[str], dry_run: bool, deadline: float | None) -> CheckResult:
        if not names:
            return CheckResult((), now_ms)  # nothing hot: no AWS call at all
        found = self._proxies.discover(names)
        reports = self._diagnosed(found, now_ms, dry_run)
        configured = set(self._proxy_names)
        for name in found.missing:
            key = self._key(name)
            if name in configured:
                finding = self._keyed(name, (not_found_finding(name),))
                reports.append(ProxyReport(key, None, NOT_FOUND_STATUS, finding, checked_at_ms=now_ms))
            else:
                reports.append(
                    ProxyReport(proxy=key, engine=None, status=GONE_STATUS, findings=(), checked_at_ms=now_ms)
                )
        return CheckResult(tuple(self._dispatch(r, now_ms, dry_run, deadline) for r in reports), now_ms)

    def _bare_names(self, names: Sequence[str]) -> list[str]:
        """The proxy names ``names`` point at in this check's account and Region."""
        if self._scope is None:
            return list(names)
        bare = []
        for key in names:
            scope, name = split_key(key)
            if scope == self._scope and name != SCOPE_WIDE:
                bare.append(name)
            elif scope != self._scope:
                logger.warning("%s is not a proxy of %s; left out", key, self._scope)
        return bare

    def _keyed(self, name: str, findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
        """``findings`` about proxy ``name`` under its key (unchanged without a scope)."""
        if self._scope is None:
            return findings
        key = self._key(name)
        return tuple(replace(f, proxy=key) for f in findings)

    def _diagnosed(self, found: Discovery, now_ms: int, dry_run: bool) -> list[ProxyReport]:
        """A report per discovered proxy, from one batched metrics read of the available ones."""
        available = [p.name for p in found.proxies if p.available and p.error is None]
        series = self._read_metrics(available, now_ms)
        return [self._checked(proxy, series.get(proxy.name), now_ms, dry_run) for proxy in found.proxies]

    def alerting_proxies(self) -> frozenset[str]:
        """Proxies with open alerts (none without a dispatcher); raises what the alert-state query raises."""
        if self._dispatcher is None:
            return frozenset()
        return self._dispatcher.alerting_proxies()

    def _gone(self, found: Discovery) -> list[str]:
        """Proxies with open alerts that a run over every proxy in the region did not see: deleted.

        A run limited to some names (PROXY_NAMES, ``pinwatch check --proxy``) sees too little to
        tell: it leaves the others' alerts alone (a deleted configured name is ``proxy_not_found``,
        and states nobody rewrites expire with the table's TTL).
        """
        if self._dispatcher is None or self._proxy_names:
            return []
        try:
            alerting = self._dispatcher.alerting_proxies()
        except Exception:  # closing stale alerts can wait for the next run; checking cannot
            logger.warning("could not list proxies with open alerts; stale ones are closed next run", exc_info=True)
            return []
        seen = {self._key(p.name) for p in found.proxies} | {self._key(n) for n in found.missing}
        if self._scope is not None:
            # Only this account and Region's proxies: the other scopes' keys are theirs to close,
            # and the scope-wide key (member_unreachable) is not a proxy.
            alerting = frozenset(
                k for k in alerting if split_key(k)[0] == self._scope and split_key(k)[1] != SCOPE_WIDE
            )
        return sorted(alerting - seen)

    def _read_metrics(self, proxies: Sequence[str], now_ms: int) -> Mapping[str, ProxyMetrics]:
        """One batched read for every proxy: the call count depends on proxies x metrics / 500 only."""
        if not proxies:
            return {}
        try:
            return self._metrics.read(proxies, now_ms, self._window_minutes)
        except Exception as exc:  # the reader retries per batch; this is whatever escaped it
            logger.exception("reading metrics failed for every proxy")
            error = f"reading metrics failed ({type(exc).__name__}): {exc}"
            return {name: ProxyMetrics(name, (), {}, error=error) for name in proxies}

    def _checked(self, proxy: ProxyInfo, metrics: ProxyMetrics | None, now_ms: int, dry_run: bool) -> ProxyReport:
        error = proxy.error or (metrics.error if metrics is not None else None)
        if error is None:
            try:
                return self._report(proxy, metrics, now_ms, dry_run)
            except Exception as exc:  # a bug or odd data in one proxy must not cost the others their check
                logger.exception("diagnosing %s failed", proxy.name)
                error = f"diagnosis failed ({type(exc).__name__}): {exc}"
        logger.warning("proxy not checked: %s", error, extra={"proxy": self._key(proxy.name)})
        return ProxyReport(
            proxy=self._key(proxy.name),
            engine=proxy.engine,
            status=NOT_CHECKED_STATUS,
            findings=self._keyed(proxy.name, (not_checked_finding(proxy.name, error, self._caller),)),
            checked_at_ms=now_ms,
        )

    def _report(
        self, proxy: ProxyInfo, metrics: ProxyMetrics | None, now_ms: int, dry_run: bool = False
    ) -> ProxyReport:
        result = diagnose(proxy, metrics, self._thresholds)
        key = self._key(proxy.name)
        last_hour: tuple[ReasonCount, ...] = ()
        all_time: tuple[ReasonCount, ...] = ()
        hints: dict[str, tuple[str, ...]] = {}
        worst = max((f.severity.rank for f in result.findings), default=0)
        pinned_seen = metrics is not None and any(v for v in metrics.values(PINNED))
        if proxy.available and (pinned_seen or worst > Severity.OK.rank):
            last_hour, all_time = self._top_reasons(key, now_ms)
            hints = self._hints_for(proxy, last_hour + all_time)
        findings, capture = self._keyed(proxy.name, result.findings), None
        if self._capture is not None and proxy.available:
            # After diagnosis, before alerting: the alert says what capture did in this run.
            capture = self._capture.apply(key, proxy.debug_logging, findings, last_hour, now_ms, dry_run=dry_run)
            findings = with_capture(findings, capture, self._caller)
        return ProxyReport(
            proxy=key,
            engine=proxy.engine,
            status=proxy.status,
            findings=findings,
            figures=result.figures,
            debug_logging=proxy.debug_logging,
            pool=proxy.pool,
            exhaustion_eta_minutes=result.exhaustion_eta_minutes,
            top_reasons_last_hour=last_hour,
            top_reasons_all_time=all_time,
            hints=hints,
            checked_at_ms=now_ms,
            capture=capture,
        )

    def _top_reasons(self, proxy: str, now_ms: int) -> tuple[tuple[ReasonCount, ...], tuple[ReasonCount, ...]]:
        if self._reasons is None:
            return (), ()
        try:
            last_hour = self._reasons.top_reasons(proxy, now_ms - HOUR_MS, now_ms, self._reason_limit)
            totals = self._reasons.reason_totals(proxy)
        except Exception:
            # Reasons make an alert more useful, they are not why it is sent: alert without them.
            logger.warning("could not read pin reasons for %s; alerting without them", proxy, exc_info=True)
            return (), ()
        all_time = sorted(totals, key=lambda r: (-r.count, r.reason))[: self._reason_limit]
        return tuple(last_hour), tuple(all_time)

    def _hints_for(self, proxy: ProxyInfo, reasons: Sequence[ReasonCount]) -> dict[str, tuple[str, ...]]:
        if self._hints is None:
            return {}
        digests: dict[str, str | None] = {}
        for r in reasons:  # last hour first: its digest is the freshest example
            if digests.get(r.reason) is None:
                digests[r.reason] = r.example_digest
        hints = {
            reason: tuple(self._hints(reason, proxy.engine, digest, proxy.pool)) for reason, digest in digests.items()
        }
        return {reason: texts for reason, texts in hints.items() if texts}

    def _dispatch(self, report: ProxyReport, now_ms: int, dry_run: bool, deadline: float | None) -> ProxyOutcome:
        if self._dispatcher is None:
            return ProxyOutcome(report)
        try:
            return ProxyOutcome(report, self._dispatcher.process(report, now_ms, dry_run=dry_run, deadline=deadline))
        except Exception as exc:
            # One proxy's alerting failure must not cost the other proxies their alerts.
            logger.exception("alerting failed for %s", report.proxy)
            return ProxyOutcome(report, error=f"{type(exc).__name__}: {exc}")


def catalog_hints(reason: str, engine: EngineFamily | None, digest: str | None, pool: PoolConfig | None) -> list[str]:
    """Hints from the reason catalog, for this engine family and pool configuration."""
    # Imported on first use: the catalog is only needed for a proxy with pins or problems.
    from pinwatch.hints import hints_for

    return [hint.text for hint in hints_for(reason, engine, digest=digest, pool=pool)]
