"""What the scheduled check concludes about a proxy: the contract between diagnosis and alerting.

Pure data. `pinwatch.diagnose` produces these; `pinwatch.alerts` decides what to send and
renders it; the CLI prints them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pinwatch.records import EngineFamily, PoolConfig, ReasonCount


class Severity(StrEnum):
    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.OK: 0, Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


def error_text(error: Exception | str, limit: int) -> str:
    """An error as a finding or note quotes it: one line, at most ``limit`` characters (``…`` marks a cut).

    An exception without a message is named by its type. Escaping for a channel is the renderer's
    (``pinwatch.alerts.render.untrusted``).
    """
    text = " ".join(str(error).split())
    if not text and isinstance(error, Exception):
        text = type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def call_error(operation: str, exc: Exception, limit: int = 300) -> str:
    """One line naming the AWS call and the error code (botocore's ``ClientError`` carries one)."""
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return f"{operation} failed ({code or type(exc).__name__}): {error_text(exc, limit)}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's verdict on one proxy in one check run.

    `rule` is a stable identifier (alert state is kept per proxy+rule). `summary` is one sentence
    with the numbers in it. `figures` holds the numbers the rule looked at (None = no data).
    `insufficient_data` marks a verdict the rule could not reach: it never raises a critical alert
    and never resolves an active one.
    """

    proxy: str
    rule: str
    severity: Severity
    summary: str
    figures: Mapping[str, float | None] = field(default_factory=dict)
    details: tuple[str, ...] = ()
    insufficient_data: bool = False


@dataclass(frozen=True, slots=True)
class CaptureNote:
    """What reason capture (:mod:`pinwatch.capture`) did or does for a proxy, for the alert.

    `status`: started | capturing | stopped | released | failed | planned | idle. `since_ms`: when
    the capture started (stopped, for stopped/released). `covered_minutes`: the minutes of the
    metrics window the reasons cover, when logging came on inside the window.
    """

    mode: str
    status: str
    reason: str
    since_ms: int | None = None
    covered_minutes: int | None = None
    window_minutes: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ProxyReport:
    """Everything one check run knows about one proxy: what alerts are rendered from."""

    proxy: str
    engine: EngineFamily | None
    status: str
    findings: tuple[Finding, ...]
    figures: Mapping[str, float | None] = field(default_factory=dict)  # latest values per metric
    debug_logging: bool | None = None
    pool: PoolConfig | None = None
    exhaustion_eta_minutes: float | None = None
    top_reasons_last_hour: tuple[ReasonCount, ...] = ()
    top_reasons_all_time: tuple[ReasonCount, ...] = ()
    hints: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # reason code -> hints, best first
    checked_at_ms: int = 0
    capture: CaptureNote | None = None  # None: reason capture not wired (or the proxy was not checked)

    @property
    def severity(self) -> Severity:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=Severity.OK)
