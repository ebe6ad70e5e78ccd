"""Organization mode: one check over every member account and Region, from the monitoring account.

The member StackSet's stack instances name the (account, Region) pairs to watch
(:class:`MemberTargets`, read by :class:`pinwatch.members.StackSetTargets`). Each pair is checked by
its own :class:`~pinwatch.check.ConnectionCheck` with that pair's clients (the member's read role,
assumed in :mod:`pinwatch.members`) and ``scope=``, so its reports, reasons, capture and alert state
use qualified keys (``<account>:<region>:<name>``, :mod:`pinwatch.scope`) while AWS is asked by the
bare name. The scoped checks are kept between runs: each keeps its own 15-minute target-group cache
and per-run read cap (:mod:`pinwatch.discovery`), so the RDS API calls stay bounded per account and
Region, where RDS meters them ("Throttling of Amazon RDS API requests", RDS User Guide: the bucket
is per account and Region).

A member whose role cannot be assumed, or whose reads are denied, gets one report under its own
key ``<account>:<region>:*`` (rule ``member_unreachable``); the alert policy sends it once, and it
resolves once the member is read again. Such a member is not tried again before ``retry_after_s``
(the target cache's time): one failing account must not become an STS or RDS call storm every
minute. Any other failure of a member (throttled past botocore's retries, an endpoint down) is
reported the same way and tried again on the next run.

A member the StackSet no longer lists (its account left the OUs or the organization, its Region
was removed) is never read again, so nothing would close its open alerts. A run over every member
whose listing succeeded closes them as gone, once, saying the account or Region is no longer
enrolled; a listing kept after a failure proves nothing about who left, so it closes none.

One sweep over N members in A accounts costs, beyond each member's own check calls
(:mod:`pinwatch.check`): one ``ListStackInstances`` listing per 15 minutes, one ``AssumeRole`` per
account per credential lifetime (an hour, renewed five minutes early), and one query of the open
alerts shared by every member.

Pure orchestration: the targets, the per-scope checks and the dispatcher are injected; no boto3.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from pinwatch.alerts.policy import GONE_STATUS
from pinwatch.check import Check, CheckResult, Dispatcher, ProxyOutcome
from pinwatch.diagnose import MEMBER_UNREACHABLE, SCOPE_WIDE, member_unreachable_finding
from pinwatch.findings import Finding, ProxyReport, Severity, error_text
from pinwatch.scope import Scope, split_key

if TYPE_CHECKING:
    from pinwatch.alerts.dispatcher import DispatchResult

logger = logging.getLogger(__name__)

# ProxyReport.status of a member that could not be read: not "available", so the policy neither
# raises nor resolves anything but member_unreachable on it.
UNREACHABLE_STATUS = "unreachable"
# Not a proxy status: the member was read again, which resolves its member_unreachable alert.
REACHABLE_STATUS = "available"
# Rule of the finding that says why a departed member's alerts close (the gone report's only finding).
NOT_ENROLLED = "member_not_enrolled"
TARGET_CACHE_TTL_S = 900.0
# Members checked at once. Each scoped check runs its own few threads for target groups
# (pinwatch.discovery), so this bounds the function's threads and its concurrent API calls.
MAX_SCOPE_WORKERS = 8
# Error codes meaning "this role cannot be used here" (STS AssumeRole: AccessDenied,
# RegionDisabledException, ExpiredToken; the member's APIs: AccessDenied[Exception],
# UnauthorizedOperation, InvalidClientTokenId, UnrecognizedClientException): not worth a retry
# every minute, unlike throttling or a 5xx.
ACCESS_ERROR_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "RegionDisabledException",
    }
)


class TargetListing(NamedTuple):
    """The (account, Region) pairs to check, and whether they come from a listing that succeeded."""

    scopes: tuple[Scope, ...]
    current: bool  # False: an older list kept after a failed listing (who left cannot be told)


class MemberTargets(Protocol):
    """The (account, Region) pairs to check: the member StackSet's usable stack instances."""

    def listing(self) -> TargetListing: ...


class MemberAccessError(Exception):
    """The member's role could not be assumed (raised by :class:`pinwatch.members.MemberSessions`)."""

    def __init__(self, account: str, role_arn: str, code: str, message: str) -> None:
        super().__init__(message)
        self.account = account
        self.role_arn = role_arn
        self.code = code


# (scope, the dispatcher every scope shares) -> that scope's check, with its own clients.
ScopeCheckFactory = Callable[[Scope, Dispatcher | None], Check]


def scope_key(scope: Scope) -> str:
    """The member's own key: where its member_unreachable alert is kept."""
    return scope.key(SCOPE_WIDE)


def error_code(exc: BaseException) -> str:
    """The AWS error code of ``exc`` (botocore's ``ClientError`` carries one), else its type's name."""
    if isinstance(exc, MemberAccessError):
        return exc.code
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, Mapping) else None
    return str(code) if code else type(exc).__name__


@dataclass(frozen=True, slots=True)
class _Failure:
    retry_at: float  # clock(): not tried before
    finding: Finding


@dataclass(slots=True)
class _ScopeRun:
    outcomes: list[ProxyOutcome]
    failure: tuple[Scope, Exception] | None = None  # why the member's check raised
    tried: bool = True  # False: skipped (retry time not reached, or no time left)


def _unanswered(exc: Exception) -> bool:
    """An error that no AWS service sent (botocore's own: no credentials, endpoint unreachable, timeout)."""
    return not isinstance(exc, MemberAccessError) and getattr(exc, "response", None) is None


class _SharedDispatcher:
    """The dispatcher every scope uses, with open alerts read once per run (not once per member)."""

    def __init__(self, inner: Dispatcher) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._alerting: frozenset[str] | None = None

    def reset(self) -> None:
        with self._lock:
            self._alerting = None

    def process(
        self, report: ProxyReport, now_ms: int, dry_run: bool = False, deadline: float | None = None
    ) -> DispatchResult:
        return self._inner.process(report, now_ms, dry_run=dry_run, deadline=deadline)

    def alerting_proxies(self) -> frozenset[str]:
        with self._lock:
            if self._alerting is None:
                self._alerting = self._inner.alerting_proxies()
            return self._alerting


class OrgCheck:
    """The :class:`~pinwatch.check.Check` over every member account and Region."""

    def __init__(
        self,
        *,
        targets: MemberTargets,
        factory: ScopeCheckFactory,
        role_name: str,
        dispatcher: Dispatcher | None = None,
        max_workers: int = MAX_SCOPE_WORKERS,
        retry_after_s: float = TARGET_CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._targets = targets
        self._factory = factory
        self._role_name = role_name
        self._alerts = dispatcher
        self._dispatcher = _SharedDispatcher(dispatcher) if dispatcher is not None else None
        self._max_workers = max(1, max_workers)
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._checks: dict[Scope, Check] = {}  # kept between runs: their target-group caches live in them
        self._failures: dict[Scope, _Failure] = {}

    def run(
        self,
        now_ms: int,
        *,
        dry_run: bool = False,
        deadline: float | None = None,
        names: Sequence[str] | None = None,
    ) -> CheckResult:
        """Every member (``names`` None), or the members and proxies ``names`` (keys) point at.

        A key of a member's own (``<account>:<region>:*``, an open member_unreachable alert)
        reads that whole member: that is how it is found reachable again. Keys of accounts or
        Regions the StackSet no longer lists are left out; a run over every member closes their
        open alerts as gone, when its listing is current. A member that has not started by
        ``deadline`` (``time.monotonic()``) is skipped this run; the others' alerts still go out.
        """
        listing = self._targets.listing()
        scopes = tuple(sorted(set(listing.scopes)))
        self._forget_others(scopes)
        if self._dispatcher is not None:
            self._dispatcher.reset()
        plan = self._plan(scopes, names)
        # Only a sweep sees every member, and only a current listing tells who left.
        closing = names is None and listing.current
        if not plan:
            departed = self._departed(scopes, now_ms, dry_run, deadline) if closing else []
            return CheckResult(tuple(departed), now_ms)
        workers = min(self._max_workers, len(plan))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pinwatch-member") as pool:
            futures = [
                pool.submit(self._run_scope, scope, keys, now_ms, dry_run, deadline) for scope, keys in plan.items()
            ]
            runs = [future.result() for future in futures]
        failed = [run.failure for run in runs if run.failure is not None]
        tried = sum(run.tried for run in runs)
        if tried and len(failed) == tried and all(_unanswered(exc) for _, exc in failed):
            # No member answered at all (no credentials of our own, no network): the run failed, as a
            # single-account run does, rather than every member alerting about the central side.
            raise failed[0][1]
        outcomes: list[ProxyOutcome] = []
        for run in runs:
            outcomes += run.outcomes
            if run.failure is not None:
                scope, exc = run.failure
                outcomes.append(self._dispatch(self._failed(scope, exc, now_ms), now_ms, dry_run, deadline))
        if closing:
            outcomes += self._departed(scopes, now_ms, dry_run, deadline)
        return CheckResult(tuple(outcomes), now_ms)

    def alerting_proxies(self) -> frozenset[str]:
        """Keys with open alerts, every member's (none without a dispatcher); read now, not from the last run."""
        if self._alerts is None:
            return frozenset()
        return self._alerts.alerting_proxies()

    def _plan(self, scopes: Sequence[Scope], names: Sequence[str] | None) -> dict[Scope, tuple[str, ...] | None]:
        """Per member: the keys to read, or None for every proxy."""
        if names is None:
            return dict.fromkeys(scopes)
        targeted = set(scopes)
        grouped: dict[Scope, list[str]] = {}
        for key in dict.fromkeys(names):
            scope, _ = split_key(key)
            if scope is None or scope not in targeted:
                logger.warning("%s is not a proxy of a member account and Region; left out", key)
                continue
            grouped.setdefault(scope, []).append(key)
        return {scope: None if scope_key(scope) in keys else tuple(keys) for scope, keys in sorted(grouped.items())}

    def _forget_others(self, scopes: Sequence[Scope]) -> None:
        """Checks and failures of members the StackSet no longer lists are not kept for ever."""
        keep = set(scopes)
        with self._lock:
            self._checks = {s: c for s, c in self._checks.items() if s in keep}
            self._failures = {s: f for s, f in self._failures.items() if s in keep}

    def _run_scope(
        self, scope: Scope, keys: tuple[str, ...] | None, now_ms: int, dry_run: bool, deadline: float | None
    ) -> _ScopeRun:
        with self._lock:
            failure = self._failures.get(scope)
        if failure is not None and self._clock() < failure.retry_at:
            # Not tried again yet: the same report keeps its alert open (the policy sends it once).
            report = self._unreachable_report(failure.finding, now_ms)
            return _ScopeRun([self._dispatch(report, now_ms, dry_run, deadline)], tried=False)
        if deadline is not None and time.monotonic() >= deadline:
            logger.warning("no time left to check %s this run; it is checked on the next", scope)
            return _ScopeRun([], tried=False)
        try:
            result = self._check_for(scope).run(now_ms, dry_run=dry_run, deadline=deadline, names=keys)
        except Exception as exc:
            return _ScopeRun([], failure=(scope, exc))
        with self._lock:
            self._failures.pop(scope, None)
        outcomes = list(result.outcomes)
        if self._was_unreachable(scope):
            outcomes.append(self._dispatch(self._reachable_report(scope, now_ms), now_ms, dry_run, deadline))
        return _ScopeRun(outcomes)

    def _check_for(self, scope: Scope) -> Check:
        with self._lock:
            check = self._checks.get(scope)
        if check is None:
            check = self._factory(scope, self._dispatcher)
            with self._lock:
                check = self._checks.setdefault(scope, check)
        return check

    def _failed(self, scope: Scope, exc: Exception, now_ms: int) -> ProxyReport:
        code = error_code(exc)
        backoff = isinstance(exc, MemberAccessError) or code in ACCESS_ERROR_CODES
        retry = f"in {self._retry_after_s / 60:g} minutes" if backoff else None
        # An access error is expected (a member without the stack): its message says it all.
        logger.warning(
            "member %s not checked (%s)%s", scope, code, f"; tried again {retry}" if retry else "", exc_info=not backoff
        )
        finding = member_unreachable_finding(
            scope_key(scope), scope.account, scope.region, self._role_name, code, error_text(exc, 300), retry=retry
        )
        if backoff:
            with self._lock:
                self._failures[scope] = _Failure(self._clock() + self._retry_after_s, finding)
        return self._unreachable_report(finding, now_ms)

    @staticmethod
    def _unreachable_report(finding: Finding, now_ms: int) -> ProxyReport:
        return ProxyReport(
            proxy=finding.proxy, engine=None, status=UNREACHABLE_STATUS, findings=(finding,), checked_at_ms=now_ms
        )

    def _was_unreachable(self, scope: Scope) -> bool:
        """Whether the member has an open member_unreachable alert (a failed query: assume not, until the sweep)."""
        if self._dispatcher is None:
            return False
        try:
            return scope_key(scope) in self._dispatcher.alerting_proxies()
        except Exception:
            logger.warning("could not list open alerts; %s's unreachable alert is resolved later", scope, exc_info=True)
            return False

    @staticmethod
    def _reachable_report(scope: Scope, now_ms: int) -> ProxyReport:
        key = scope_key(scope)
        finding = Finding(
            key, MEMBER_UNREACHABLE, Severity.OK, f"account {scope.account} in {scope.region} is checked again"
        )
        return ProxyReport(proxy=key, engine=None, status=REACHABLE_STATUS, findings=(finding,), checked_at_ms=now_ms)

    def _departed(
        self, scopes: Sequence[Scope], now_ms: int, dry_run: bool, deadline: float | None
    ) -> list[ProxyOutcome]:
        """Gone reports for the open alerts of members no longer listed: each closes them once."""
        if self._dispatcher is None:
            return []
        try:
            alerting = self._dispatcher.alerting_proxies()
        except Exception:  # closing them can wait for the next sweep
            logger.warning("could not list open alerts; departed members' alerts are closed later", exc_info=True)
            return []
        listed = set(scopes)
        keys = sorted(k for k in alerting if (scope := split_key(k)[0]) is not None and scope not in listed)
        return [self._dispatch(self._departed_report(key, now_ms), now_ms, dry_run, deadline) for key in keys]

    @staticmethod
    def _departed_report(key: str, now_ms: int) -> ProxyReport:
        """A gone report whose one finding says why (the alert policy words the close with it)."""
        scope, name = split_key(key)
        assert scope is not None
        left = (
            f"account {scope.account} in {scope.region} is no longer enrolled"
            " (no member stack instance or extra target there)"
        )
        why = left if name == SCOPE_WIDE else f"{name} is no longer watched: {left}"
        finding = Finding(key, NOT_ENROLLED, Severity.OK, why)
        return ProxyReport(proxy=key, engine=None, status=GONE_STATUS, findings=(finding,), checked_at_ms=now_ms)

    def _dispatch(self, report: ProxyReport, now_ms: int, dry_run: bool, deadline: float | None) -> ProxyOutcome:
        if self._dispatcher is None:
            return ProxyOutcome(report)
        try:
            return ProxyOutcome(report, self._dispatcher.process(report, now_ms, dry_run=dry_run, deadline=deadline))
        except Exception as exc:
            logger.exception("alerting failed for %s", report.proxy)
            return ProxyOutcome(report, error=f"{type(exc).__name__}: {exc}")
