"""The RDS adapter reason capture switches enhanced logging with: ``ModifyDBProxy(DebugLogging=…)``.

The RDS client is injected (:mod:`pinwatch.wiring` builds it); this module never creates one.
IAM: ``rds:ModifyDBProxy`` on the proxy's ARN, ``arn:${Partition}:rds:${Region}:${Account}:db-proxy:${DbProxyId}``
where the id is the proxy's resource id (``prx-…``), not its name (Service Authorization Reference
for Amazon RDS, https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html).
Its dependent action ``iam:PassRole`` applies only when a ``RoleArn`` is passed, which this never does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient


class SwitchFailed(RuntimeError):
    """``ModifyDBProxy`` failed; the message is short and safe to show in an alert (code: message)."""


class RdsDebugLogging:
    """Switches a proxy's ``DebugLogging`` through an injected boto3 RDS client."""

    def __init__(self, client: RDSClient) -> None:
        self._client = client

    def set_debug_logging(self, proxy: str, enabled: bool) -> None:
        try:
            self._client.modify_db_proxy(DBProxyName=proxy, DebugLogging=enabled)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code") or "Error"
            message = " ".join(str(error.get("Message") or "").split())
            raise SwitchFailed(f"{code}: {message[:200]}" if message else code) from None
        except BotoCoreError as exc:  # endpoint unreachable, read timeout after botocore's retries
            raise SwitchFailed(f"{type(exc).__name__}: {exc}"[:240]) from None
