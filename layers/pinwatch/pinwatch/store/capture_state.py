"""Reason-capture state per proxy in the summary table (``pk=PROXY#<proxy>``, ``sk=CAPTURE``).

The item is pinwatch's record that *it* switched a proxy's enhanced logging on, and when: the only
grounds on which it ever switches logging off again. Writes are conditional on the ``version``
that was read (optimistic concurrency), so two overlapping check runs cannot both act on the same
state: the second write fails and that run leaves the proxy alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pinwatch.capture import CaptureState, StopCause
from pinwatch.store import keys

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


class CaptureStateStore:
    """Reads and writes :class:`~pinwatch.capture.CaptureState` items. The DynamoDB client is injected."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def load(self, proxy: str) -> CaptureState | None:
        # A Query on the full key, not GetItem: the check function's role may Query and PutItem the
        # table, nothing else (template.yaml), and this reads the same single item.
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="#pk = :pk AND #sk = :sk",
            ExpressionAttributeNames={"#pk": keys.PK, "#sk": keys.SK},
            ExpressionAttributeValues={":pk": {"S": keys.proxy_pk(proxy)}, ":sk": {"S": keys.CAPTURE_SK}},
            ConsistentRead=True,  # the previous run's write decides what this run may switch off
        )
        items = response.get("Items", [])
        return _from_item(proxy, items[0]) if items else None

    def save(self, previous: CaptureState | None, state: CaptureState) -> CaptureState | None:
        """Store ``state`` if the stored version is still ``previous``'s; None when another run wrote first."""
        version = previous.version if previous is not None else 0
        stored = CaptureState(**{**_fields(state), "version": version + 1})
        condition: dict[str, Any]
        if version == 0:
            condition = {
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": keys.PK},
            }
        else:
            condition = {
                "ConditionExpression": "#version = :version",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":version": {"N": str(version)}},
            }
        try:
            self._client.put_item(TableName=self._table, Item=_to_item(stored), **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        return stored


def _fields(state: CaptureState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in CaptureState.__slots__}


def _to_item(state: CaptureState) -> dict[str, AttributeValueTypeDef]:
    item: dict[str, AttributeValueTypeDef] = {
        keys.PK: {"S": keys.proxy_pk(state.proxy)},
        keys.SK: {"S": keys.CAPTURE_SK},
        "proxy": {"S": state.proxy},
        "active": {"BOOL": state.active},
        "quiet_since_stop": {"BOOL": state.quiet_since_stop},
        "version": {"N": str(state.version)},
    }
    for name in ("started_ms", "enabled_ms", "stopped_ms", "failed_ms"):
        value = getattr(state, name)
        if value is not None:
            item[name] = {"N": str(value)}
    if state.stop_cause is not None:
        item["stop_cause"] = {"S": state.stop_cause.value}
    if state.error:
        item["error"] = {"S": state.error[:500]}
    return item


def _from_item(proxy: str, item: dict[str, Any]) -> CaptureState:
    def number(name: str) -> int | None:
        value = item.get(name)
        return int(value["N"]) if value and "N" in value else None

    def flag(name: str) -> bool:
        value = item.get(name)
        return bool(value.get("BOOL")) if value else False

    cause = item.get("stop_cause", {}).get("S")
    return CaptureState(
        proxy=item.get("proxy", {}).get("S", proxy),
        active=flag("active"),
        started_ms=number("started_ms"),
        enabled_ms=number("enabled_ms"),
        stopped_ms=number("stopped_ms"),
        stop_cause=StopCause(cause) if cause else None,
        quiet_since_stop=flag("quiet_since_stop"),
        failed_ms=number("failed_ms"),
        error=item.get("error", {}).get("S"),
        version=number("version") or 0,
    )
