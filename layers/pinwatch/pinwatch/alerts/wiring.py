"""Builds the :class:`AlertDispatcher` from the check function's settings and injected clients.

Called once at cold start. A Slack webhook secret that cannot be read, or whose URL is not an
https Slack webhook, fails here with a message naming ``SLACK_WEBHOOK_SECRET_ARN`` — never with
the URL. Each message re-reads the secret through the provider (cached for five minutes), so a
rotated webhook is picked up without a redeploy, and a cached value keeps Slack working while
Secrets Manager is briefly unavailable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from botocore.config import Config

from pinwatch.alerts.dispatcher import AlertDispatcher, ChannelSpec
from pinwatch.alerts.policy import PolicySettings
from pinwatch.alerts.render import RenderSettings, SlackMention, render_slack, render_sns
from pinwatch.alerts.slack import SlackNotifier, SlackWebhookUrl, WebhookUrlError, parse_webhook_secret
from pinwatch.alerts.sns import SnsPublisher
from pinwatch.config import ConfigError
from pinwatch.store.alert_state import AlertStateStore

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sns.client import SNSClient

logger = logging.getLogger(__name__)

SECRET_MAX_AGE_S = 300
# For the SNS (and any other) client the check function creates: botocore's standard retry mode
# (exponential backoff with jitter on throttling and 5xx) and timeouts well inside the function's.
SNS_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=5)
# Wall-clock limit of one SNS publish, botocore's retries included (its timeouts are per socket
# operation, so they alone do not bound a slow answer).
SNS_DEADLINE_S = 20.0
# Beyond the Slack budget: the budget ends a send cleanly; this ends one the peer keeps alive.
SLACK_DEADLINE_GRACE_S = 1.0

SecretProvider = Callable[[str], str]


class AlertConfig(Protocol):
    """The alert-related attributes of ``pinwatch.config.CheckConfig`` (read-only)."""

    @property
    def summary_table_name(self) -> str: ...
    @property
    def alert_topic_arn(self) -> str | None: ...
    @property
    def slack_webhook_secret_arn(self) -> str | None: ...
    @property
    def renotify_minutes(self) -> int: ...
    @property
    def resolve_after_checks(self) -> int: ...
    @property
    def slack_mention_on_critical(self) -> SlackMention: ...
    @property
    def chat_notifications(self) -> bool: ...
    @property
    def dashboard_url(self) -> str | None: ...


class SecretUnavailableError(RuntimeError):
    """The secret could not be read and no earlier value is cached."""


class CachedSecretProvider:
    """``(secret_arn) -> str`` through Powertools Parameters, tolerant of short outages.

    Values are cached by Powertools for ``max_age_s``; when a refresh fails, the last value read
    is returned (with a warning) instead of taking Slack down with Secrets Manager.
    """

    def __init__(self, provider: SecretsProvider | None = None, max_age_s: int = SECRET_MAX_AGE_S) -> None:
        self._provider = provider
        self._max_age_s = max_age_s
        self._last_good: dict[str, str] = {}
        self._lock = threading.Lock()

    def _get(self, secret_arn: str) -> Any:
        if self._provider is not None:
            return self._provider.get(secret_arn, max_age=self._max_age_s)
        from aws_lambda_powertools.utilities.parameters import get_secret

        return get_secret(secret_arn, max_age=self._max_age_s)

    def __call__(self, secret_arn: str) -> str:
        try:
            value = self._get(secret_arn)
        except Exception as exc:
            with self._lock:
                cached = self._last_good.get(secret_arn)
            if cached is None:
                raise SecretUnavailableError(f"cannot read secret {secret_arn}: {type(exc).__name__}") from None
            logger.warning(
                "secret refresh failed; using the value read earlier",
                extra={"secret_arn": secret_arn, "error": type(exc).__name__},
            )
            return cached
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if not isinstance(value, str):
            raise SecretUnavailableError(f"secret {secret_arn} has no SecretString")
        with self._lock:
            self._last_good[secret_arn] = value
        return value


# What the check function passes as ``secret_provider`` in Lambda.
powertools_secret_provider = CachedSecretProvider()


def build_dispatcher(
    config: AlertConfig,
    dynamodb_client: DynamoDBClient | None,
    sns_client: SNSClient | None,
    secret_provider: SecretProvider,
    *,
    region: str | None = None,
    slack_timeout_s: float = 5.0,
    slack_budget_s: float = 20.0,
) -> AlertDispatcher:
    """Channels from the config (Slack and SNS each optional), state in the summary table.

    ``region`` is used for links to the RDS console; it defaults to the DynamoDB client's region.
    Raises :class:`pinwatch.config.ConfigError` for an unusable webhook secret or missing client.
    """
    if region is None and dynamodb_client is not None:
        region = dynamodb_client.meta.region_name
    render_settings = RenderSettings(
        region=region,
        dashboard_url=config.dashboard_url,
        mention_on_critical=config.slack_mention_on_critical,
        chat_notifications=config.chat_notifications,
    )
    allow_loopback = bool(getattr(config, "slack_allow_loopback", False))

    slack_sender: SlackNotifier | None = None
    if config.slack_webhook_secret_arn:
        secret_arn = config.slack_webhook_secret_arn
        _webhook_url(secret_provider, secret_arn, allow_loopback)  # fail at cold start, not at the first alert
        slack_sender = SlackNotifier(
            partial(_webhook_url, secret_provider, secret_arn, allow_loopback),
            timeout_s=slack_timeout_s,
            budget_s=slack_budget_s,
        )
    sns_sender: SnsPublisher | None = None
    if config.alert_topic_arn:
        if sns_client is None:
            raise ConfigError(["ALERT_TOPIC_ARN is set but no SNS client was given; pass one to build_dispatcher"])
        sns_sender = SnsPublisher(sns_client, config.alert_topic_arn)

    store = (
        AlertStateStore(dynamodb_client, config.summary_table_name)
        if dynamodb_client and config.summary_table_name
        else None
    )
    channels = [
        ChannelSpec(
            "slack",
            partial(render_slack, settings=render_settings),
            slack_sender,
            deadline_s=slack_budget_s + SLACK_DEADLINE_GRACE_S,
        ),
        ChannelSpec("sns", partial(render_sns, settings=render_settings), sns_sender, deadline_s=SNS_DEADLINE_S),
    ]
    settings = PolicySettings.from_minutes(config.renotify_minutes, config.resolve_after_checks)
    return AlertDispatcher(store, channels, settings)


def _webhook_url(provider: SecretProvider, secret_arn: str, allow_loopback: bool) -> SlackWebhookUrl:
    try:
        secret = provider(secret_arn)
    except Exception as exc:
        raise ConfigError(
            [
                f"SLACK_WEBHOOK_SECRET_ARN: the secret cannot be read ({_short(exc)}); check that it exists "
                "and the function may call secretsmanager:GetSecretValue on it, or leave it empty for no Slack alerts"
            ]
        ) from None
    try:
        return parse_webhook_secret(secret, allow_loopback=allow_loopback)
    except WebhookUrlError as exc:
        raise ConfigError(
            [
                f"SLACK_WEBHOOK_SECRET_ARN: {exc}; store an incoming webhook URL (https://hooks.slack.com/services/...) "
                'or JSON {"url": "..."} in the secret'
            ]
        ) from None


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"
