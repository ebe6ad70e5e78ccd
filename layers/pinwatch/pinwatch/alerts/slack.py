"""Slack delivery through an incoming webhook (``slack_sdk.webhook.WebhookClient``).

Retries use slack_sdk's own retry handlers, bounded by a time budget per message: a 429 is retried
after its ``Retry-After``, a 5xx and a dropped connection after a short backoff — but never past
the budget, so a slow or rate-limited Slack cannot eat the check function's timeout (or hold up
SNS). What is still failing when the budget runs out is a transient failure: the policy keeps the
channel pending and the next run sends again. Errors a retry cannot fix (``invalid_payload``,
``channel_not_found``, ``channel_is_archived``, ``no_service``, ``invalid_token``, other 4xx) are
permanent: logged once per message, counted, not retried.

The webhook URL is a credential. It lives in :class:`SlackWebhookUrl`, whose repr and str hide it,
and it never reaches a log line or an exception message from here (slack_sdk's own logger, which
would print it, gets a redacting filter and is kept quiet).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import urlsplit

from slack_sdk.http_retry import RetryHandler, RetryIntervalCalculator
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

from pinwatch.alerts.channels import DeliveryOutcome
from pinwatch.alerts.policy import DeliveryStatus

logger = logging.getLogger(__name__)

CHANNEL = "slack"
SLACK_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# Bodies Slack answers when a message can never succeed as sent (docs: "Handling errors").
PERMANENT_ERRORS = frozenset(
    {
        "invalid_payload",
        "invalid_blocks",
        "invalid_blocks_format",
        "no_text",
        "too_many_attachments",
        "channel_not_found",
        "channel_is_archived",
        "no_service",
        "no_service_id",
        "no_team",
        "team_disabled",
        "invalid_token",
        "action_prohibited",
        "posting_to_general_channel_denied",
        "user_not_found",
    }
)


class WebhookUrlError(ValueError):
    """The configured webhook URL is not acceptable. The message never contains the URL."""


class SlackWebhookUrl:
    """A validated webhook URL that does not show itself in logs, reprs or tracebacks."""

    __slots__ = ("_host", "_url")

    def __init__(self, url: str, *, allow_loopback: bool = False) -> None:
        self._host = _validate(url, allow_loopback=allow_loopback)
        self._url = url.strip()

    def reveal(self) -> str:
        """The URL itself: only for the HTTP request."""
        return self._url

    @property
    def host(self) -> str:
        return self._host

    def redact(self, text: str) -> str:
        """``text`` with the URL (and its secret path) replaced."""
        path = urlsplit(self._url).path
        text = text.replace(self._url, "<slack-webhook>")
        return text.replace(path, "/<redacted>") if len(path) > 1 else text

    def __repr__(self) -> str:
        return f"SlackWebhookUrl(host={self._host!r}, path=<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SlackWebhookUrl) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)


def _validate(url: str, *, allow_loopback: bool) -> str:
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise WebhookUrlError("the Slack webhook URL is malformed") from None
    if parts.username or parts.password:
        raise WebhookUrlError("the Slack webhook URL must not contain credentials before the host")
    if host in LOOPBACK_HOSTS:
        if not allow_loopback:
            raise WebhookUrlError(
                "the Slack webhook URL points at this machine; that is only allowed for local testing "
                "(SLACK_ALLOW_LOOPBACK=true)"
            )
        if parts.scheme not in ("http", "https"):
            raise WebhookUrlError(f"the Slack webhook URL must use http or https, not {parts.scheme or 'nothing'!r}")
    else:
        if parts.scheme != "https":
            raise WebhookUrlError(f"the Slack webhook URL must use https, not {parts.scheme or 'nothing'!r}")
        if host not in SLACK_HOSTS:
            raise WebhookUrlError(
                f"the Slack webhook URL's host {host or '(none)'!r} is not a Slack webhook host "
                f"({', '.join(sorted(SLACK_HOSTS))})"
            )
    if len(parts.path) <= 1:
        raise WebhookUrlError("the Slack webhook URL has no path; copy the whole URL from the Slack app's settings")
    return host


def parse_webhook_secret(secret: str, *, allow_loopback: bool = False) -> SlackWebhookUrl:
    """The secret's value is the URL itself or JSON ``{"url": "…"}``."""
    text = secret.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise WebhookUrlError('the Slack webhook secret is neither a URL nor JSON {"url": "..."}') from None
        url = data.get("url") if isinstance(data, dict) else None
        if not isinstance(url, str) or not url.strip():
            raise WebhookUrlError(
                'the Slack webhook secret is JSON without a "url" string; store {"url": "https://hooks.slack.com/..."}'
            )
        text = url
    if not text:
        raise WebhookUrlError("the Slack webhook secret is empty")
    return SlackWebhookUrl(text, allow_loopback=allow_loopback)


class _Budget:
    """The time left for one message, shared by the retry handlers of one send."""

    def __init__(
        self, total_s: float, attempt_timeout_s: float, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._deadline = clock() + total_s
        self.attempt_timeout_s = attempt_timeout_s
        self.client: WebhookClient | None = None
        self.attempts = 1
        self.waited_s = 0.0

    def remaining(self) -> float:
        return self._deadline - self._clock()

    def can_wait(self, seconds: float) -> bool:
        # Worth waiting only if a real attempt still fits afterwards.
        return seconds + min(1.0, self.attempt_timeout_s) <= self.remaining()

    def wait(self, seconds: float) -> None:
        self._sleep(seconds)
        self.waited_s += seconds
        self.attempts += 1
        if self.client is not None:
            # The next attempt may not run past the deadline either.
            timeout = max(0.1, min(self.attempt_timeout_s, self.remaining()))
            self.client.timeout = cast(int, timeout)  # urllib accepts float seconds; slack_sdk annotates int


def _retry_after_s(response: HttpResponse | None) -> float:
    """Seconds from a ``Retry-After`` header (any capitalisation)."""
    if response is None:
        return 1.0
    for name, values in response.headers.items():
        if name.lower() == "retry-after" and values:
            value = values[0] if isinstance(values, list) else values
            try:
                return max(0.0, float(value))
            except ValueError:
                return 1.0  # an HTTP-date; Slack sends seconds
    return 1.0


class _RateLimitHandler(RateLimitErrorRetryHandler):
    """Honours Retry-After, unless waiting would run past the budget (then the next run retries)."""

    def __init__(self, budget: _Budget, max_retry_count: int) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._budget = budget

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return bool(
            super()._can_retry(state=state, request=request, response=response, error=error)
            and self._budget.can_wait(_retry_after_s(response))
        )

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        self._budget.wait(_retry_after_s(response))
        state.increment_current_attempt()


class _BackoffMixin(RetryHandler):
    """Exponential backoff from slack_sdk's calculator, within the budget."""

    _budget: _Budget

    def _backoff_s(self, state: RetryState) -> float:
        return float(self.interval_calculator.calculate_sleep_duration(state.current_attempt))

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return bool(
            super().can_retry(state=state, request=request, response=response, error=error)
            and self._budget.can_wait(self._backoff_s(state))
        )

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        self._budget.wait(min(self._backoff_s(state), max(self._budget.remaining(), 0.0)))
        state.increment_current_attempt()


class _ServerErrorHandler(_BackoffMixin, ServerErrorRetryHandler):
    def __init__(self, budget: _Budget, max_retry_count: int, interval: RetryIntervalCalculator) -> None:
        ServerErrorRetryHandler.__init__(self, max_retry_count=max_retry_count, interval_calculator=interval)
        self._budget = budget

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        # slack_sdk retries 500 and 503 only; a 502/504 from Slack's edge is just as transient.
        return response is not None and 500 <= response.status_code <= 599


class _ConnectionErrorHandler(_BackoffMixin, ConnectionErrorRetryHandler):
    def __init__(self, budget: _Budget, max_retry_count: int, interval: RetryIntervalCalculator) -> None:
        ConnectionErrorRetryHandler.__init__(self, max_retry_count=max_retry_count, interval_calculator=interval)
        self._budget = budget


class _RedactingFilter(logging.Filter):
    def __init__(self, url: SlackWebhookUrl) -> None:
        super().__init__()
        self._url = url

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._url.redact(record.getMessage())
        record.args = None
        return True


class SlackNotifier:
    """Sends one Block Kit payload per call; returns a :class:`DeliveryOutcome`, never raises.

    ``url`` is a validated URL or a callable returning one (re-read per message, so a rotated
    secret is picked up). ``timeout_s`` is the socket timeout of one HTTP attempt (per read, so
    it does not end a peer that trickles bytes), ``budget_s`` bounds the retries and waits of one
    message. The hard wall-clock limit is the dispatcher's: it runs each channel in its own thread
    and abandons a send still going at ``ChannelSpec.deadline_s``.
    """

    name = CHANNEL

    def __init__(
        self,
        url: SlackWebhookUrl | Callable[[], SlackWebhookUrl],
        *,
        timeout_s: float = 5.0,
        budget_s: float = 20.0,
        max_retries: int = 2,
        retry_interval: RetryIntervalCalculator | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if timeout_s <= 0 or budget_s < timeout_s:
            raise ValueError("timeout_s must be positive and budget_s at least timeout_s")
        self._url = url
        self._timeout_s = timeout_s
        self._budget_s = budget_s
        self._max_retries = max_retries
        # slack_sdk's exponential backoff with jitter: 0.5 s, 1 s, … plus up to 1 s.
        self._interval = retry_interval or BackoffRetryIntervalCalculator(backoff_factor=0.5)
        self._clock = clock
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"SlackNotifier(timeout_s={self._timeout_s}, budget_s={self._budget_s})"

    def _resolve_url(self) -> SlackWebhookUrl:
        return self._url if isinstance(self._url, SlackWebhookUrl) else self._url()

    def send(self, payload: Mapping[str, Any]) -> DeliveryOutcome:
        return self._log(self._send(payload))

    def _send(self, payload: Mapping[str, Any]) -> DeliveryOutcome:
        try:
            url = self._resolve_url()
        except Exception as exc:  # a secret that cannot be read or no longer validates
            return DeliveryOutcome(CHANNEL, DeliveryStatus.FAILED, f"webhook unavailable: {exc}", 0, "no_webhook")
        budget = _Budget(self._budget_s, self._timeout_s, self._clock, self._sleep)
        client = WebhookClient(
            url.reveal(),
            timeout=cast(int, self._timeout_s),  # urllib accepts float seconds
            logger=_sdk_logger(url),
            retry_handlers=[
                _RateLimitHandler(budget, self._max_retries),
                _ServerErrorHandler(budget, self._max_retries, self._interval),
                _ConnectionErrorHandler(budget, self._max_retries, self._interval),
            ],
        )
        if url.host in LOOPBACK_HOSTS:
            client.proxy = None  # slack_sdk applies HTTPS_PROXY but ignores NO_PROXY; a local receiver is local
        budget.client = client
        try:
            response = client.send_dict(dict(payload))
        except TimeoutError:
            return DeliveryOutcome(CHANNEL, DeliveryStatus.FAILED, "timed out", budget.attempts, "timeout")
        except Exception as exc:  # URLError, ConnectionError, …: the text may carry the URL
            detail = url.redact(f"{type(exc).__name__}: {exc}")
            error = "timeout" if "timed out" in detail else "connection_error"
            return DeliveryOutcome(CHANNEL, DeliveryStatus.FAILED, detail, budget.attempts, error)
        return _classify(response.status_code, response.body or "", budget.attempts)

    @staticmethod
    def _log(outcome: DeliveryOutcome) -> DeliveryOutcome:
        extra = {
            "channel": CHANNEL,
            "status": outcome.status.value,
            "error": outcome.error,
            "attempts": outcome.attempts,
        }
        if outcome.status is DeliveryStatus.ACCEPTED:
            logger.info("slack message accepted", extra=extra)
        elif outcome.status is DeliveryStatus.REJECTED:
            logger.error(
                "slack rejected the message permanently (%s); fix the webhook or payload, it is not retried",
                outcome.error,
                extra=extra,
            )
        else:
            logger.warning("slack delivery failed (%s); retried on the next run", outcome.error, extra=extra)
        return outcome


def _classify(status: int, body: str, attempts: int) -> DeliveryOutcome:
    text = body.strip()
    code = text.split()[0][:64] if text else ""
    if status == 200:
        return DeliveryOutcome(CHANNEL, DeliveryStatus.ACCEPTED, text or "ok", attempts)
    if status == 429:
        return DeliveryOutcome(CHANNEL, DeliveryStatus.FAILED, "rate limited", attempts, "rate_limited")
    if status >= 500:
        return DeliveryOutcome(
            CHANNEL, DeliveryStatus.FAILED, f"HTTP {status} {code}".strip(), attempts, f"http_{status}"
        )
    if code in PERMANENT_ERRORS or status in (400, 401, 403, 404, 410):
        return DeliveryOutcome(
            CHANNEL, DeliveryStatus.REJECTED, f"HTTP {status} {code}".strip(), attempts, code or f"http_{status}"
        )
    # Anything else in 4xx (408 and friends) may pass on another try.
    return DeliveryOutcome(CHANNEL, DeliveryStatus.FAILED, f"HTTP {status} {code}".strip(), attempts, f"http_{status}")


def _sdk_logger(url: SlackWebhookUrl) -> logging.Logger:
    """slack_sdk logs request URLs at debug/info and errors verbatim: keep it quiet and redacted."""
    sdk_logger = logging.getLogger("pinwatch.alerts.slack.sdk")
    sdk_logger.setLevel(logging.CRITICAL)  # also disables its "level <= DEBUG" URL-printing branches
    for old in list(sdk_logger.filters):
        sdk_logger.removeFilter(old)
    sdk_logger.addFilter(_RedactingFilter(url))
    return sdk_logger
