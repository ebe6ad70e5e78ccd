"""SNS delivery: one ``Publish`` per message to the alert topic (SNS client injected).

Retries are botocore's (create the client with ``Config(retries={"mode": "standard"})``, see
:data:`pinwatch.wiring.SNS_CLIENT_CONFIG`). Whatever still fails is reported as a transient
failure — the policy keeps the channel pending and the next run publishes again — except a request
SNS refuses as invalid, which no retry can fix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pinwatch.alerts.channels import DeliveryOutcome
from pinwatch.alerts.policy import DeliveryStatus

if TYPE_CHECKING:
    from mypy_boto3_sns.client import SNSClient

logger = logging.getLogger(__name__)

CHANNEL = "sns"
_INVALID_REQUEST = frozenset({"InvalidParameter", "InvalidParameterValue", "ValidationError"})


class SnsPublisher:
    """Publishes rendered messages (``render.render_sns`` output) to one topic."""

    name = CHANNEL

    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def __repr__(self) -> str:
        return f"SnsPublisher(topic_arn={self._topic_arn!r})"

    def send(self, payload: Mapping[str, Any]) -> DeliveryOutcome:
        try:
            response = self._client.publish(TopicArn=self._topic_arn, **payload)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            status = DeliveryStatus.REJECTED if code in _INVALID_REQUEST else DeliveryStatus.FAILED
            attempts = _attempts(exc.response)
            outcome = DeliveryOutcome(CHANNEL, status, f"{code}: {exc}", attempts, code)
        except BotoCoreError as exc:  # endpoint unreachable, timeouts after botocore's own retries
            outcome = DeliveryOutcome(
                CHANNEL, DeliveryStatus.FAILED, f"{type(exc).__name__}: {exc}", 1, type(exc).__name__
            )
        else:
            outcome = DeliveryOutcome(
                CHANNEL, DeliveryStatus.ACCEPTED, response.get("MessageId", ""), _attempts(response)
            )
        extra = {"channel": CHANNEL, "status": outcome.status.value, "error": outcome.error, "topic": self._topic_arn}
        if outcome.status is DeliveryStatus.ACCEPTED:
            logger.info("sns message published", extra=extra)
        elif outcome.status is DeliveryStatus.REJECTED:
            logger.error("sns refused the message (%s); it is not retried", outcome.detail, extra=extra)
        else:
            logger.warning("sns publish failed (%s); retried on the next run", outcome.detail, extra=extra)
        return outcome


def _attempts(response: Mapping[str, Any]) -> int:
    """Requests botocore made, its own retries included."""
    metadata = response.get("ResponseMetadata") or {}
    return 1 + int(metadata.get("RetryAttempts", 0))
