"""Secrets Manager values for the alert channels, read through Powertools Parameters.

Each message re-reads the Slack webhook secret through :class:`CachedSecretProvider` (cached for
five minutes), so a rotated webhook is picked up without a redeploy, and a cached value keeps
Slack working while Secrets Manager is briefly unavailable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

logger = logging.getLogger(__name__)

SECRET_MAX_AGE_S = 300

SecretProvider = Callable[[str], str]


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
