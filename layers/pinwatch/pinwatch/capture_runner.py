"""Reason capture in a check run: read the capture item, decide (:mod:`pinwatch.capture`), act, record.

Every dependency is injected: the state store (:class:`~pinwatch.store.capture_state.CaptureStateStore`)
and the switch (:class:`~pinwatch.proxy_logging.RdsDebugLogging`), wired in :mod:`pinwatch.wiring`.
Nothing here raises: a failed read, write or ``ModifyDBProxy`` becomes the note the alert shows, so
capture can never cost a proxy its alert.

Order of effects, so a crash or a lost race never leaves pinwatch owning logging it did not switch
on, nor switching off logging it does not own:

* switching on: claim first (conditional write of the active item), then ``ModifyDBProxy``; a call
  that failed writes the previous state back, with the error;
* switching off: ``ModifyDBProxy`` first, then the stopped item; a call that failed keeps the
  capture active (the next run tries again).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from pinwatch.capture import (
    Action,
    CaptureSettings,
    CaptureState,
    Decision,
    decide,
    failed,
    is_incident,
    note,
)
from pinwatch.findings import CaptureNote, Finding, error_text
from pinwatch.records import ReasonCount

logger = logging.getLogger(__name__)


class CaptureStore(Protocol):
    def load(self, proxy: str) -> CaptureState | None: ...

    def save(self, previous: CaptureState | None, state: CaptureState) -> CaptureState | None: ...


class CapturedReasons(Protocol):
    """Pin reasons since a time (``pinwatch.store.summary.SummaryStore``)."""

    def top_reasons(self, proxy: str, since_ms: int, until_ms: int, limit: int = 5) -> list[ReasonCount]: ...


class LoggingSwitch(Protocol):
    """``ModifyDBProxy(DebugLogging=…)``; raises with a short, showable message when it fails."""

    def set_debug_logging(self, proxy: str, enabled: bool) -> None: ...


class ReasonCapture:
    def __init__(
        self,
        settings: CaptureSettings,
        store: CaptureStore,
        switch: LoggingSwitch,
        *,
        window_minutes: int,
        proxy_names: Sequence[str] = (),
        reasons: CapturedReasons | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._switch = switch
        self._window = window_minutes
        # `always` keeps logging on for the proxies the check watches: the named ones, or every one.
        self._scope = frozenset(proxy_names)
        self._reasons = reasons

    def apply(
        self,
        proxy: str,
        debug_logging: bool | None,
        findings: Sequence[Finding],
        reasons: Sequence[ReasonCount],
        now_ms: int,
        *,
        dry_run: bool = False,
    ) -> CaptureNote:
        try:
            state = self._store.load(proxy)
        except Exception as exc:
            logger.warning("could not read the capture state of %s", proxy, exc_info=True)
            return CaptureNote(
                self.settings.mode.value, "failed", "could not read the capture state", error=_short(exc)
            )
        started = state.started_ms if state is not None and state.active else None
        captured = started is not None and _seen_since(reasons, started)
        if started is not None and not captured and self._reasons is not None:
            # The check reads reasons only for proxies with pins; a quiet proxy's capture still needs the answer.
            try:
                captured = _seen_since(self._reasons.top_reasons(proxy, started, now_ms), started)
            except Exception:
                logger.warning("could not read captured reasons of %s", proxy, exc_info=True)
        decision = decide(
            self.settings,
            state,
            proxy=proxy,
            debug_logging=debug_logging,
            incident=is_incident(findings),
            reasons_captured=captured,
            now_ms=now_ms,
            in_scope=not self._scope or proxy in self._scope,
        )
        if decision.action is not Action.NONE and decision.action is not Action.KEEP:
            logger.info("reason capture: %s", decision.action.value, extra={"proxy": proxy, "reason": decision.reason})
        if dry_run or not decision.changes_state:
            return self._note(decision, now_ms, dry_run=dry_run)
        try:
            return self._act(state, decision, proxy, now_ms)
        except Exception as exc:  # the store failed: the alert still goes out, saying so
            logger.warning("reason capture failed for %s", proxy, exc_info=True)
            return self._note(decision, now_ms, error=_short(exc))

    def _act(self, state: CaptureState | None, decision: Decision, proxy: str, now_ms: int) -> CaptureNote:
        if decision.action is Action.RELEASE:
            self._store.save(state, decision.state)
            return self._note(decision, now_ms)
        if decision.action is Action.DISABLE:
            try:
                self._switch.set_debug_logging(proxy, False)
            except Exception as exc:
                error = _short(exc)
                self._store.save(state, failed(state or decision.state, now_ms, error))
                return self._note(decision, now_ms, error=error)
            if self._store.save(state, decision.state) is None:
                logger.info("capture state of %s changed by another check run", proxy)
            return self._note(decision, now_ms)
        # ENABLE / RENEW: claim, then call.
        claimed = self._store.save(state, decision.state)
        if claimed is None:
            return CaptureNote(self.settings.mode.value, "idle", "another check run is handling reason capture")
        try:
            self._switch.set_debug_logging(proxy, True)
        except Exception as exc:
            error = _short(exc)
            base = state if state is not None else CaptureState(proxy)
            if decision.action is Action.RENEW:
                base = claimed  # still active: the earlier switch-on stands
            self._store.save(claimed, failed(base, now_ms, error))
            return self._note(decision, now_ms, error=error)
        return self._note(decision, now_ms)

    def _note(self, decision: Decision, now_ms: int, *, error: str | None = None, dry_run: bool = False) -> CaptureNote:
        return note(self.settings, decision, window_minutes=self._window, now_ms=now_ms, error=error, dry_run=dry_run)


def _seen_since(reasons: Sequence[ReasonCount], since_ms: int) -> bool:
    return any((r.last_seen_ms or 0) >= since_ms for r in reasons)


def _short(exc: Exception) -> str:
    return error_text(exc, 240)
