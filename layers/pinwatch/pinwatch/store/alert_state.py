"""Alert state per proxy+rule in the summary table (``pk=PROXY#<proxy>``, ``sk=ALERT#<rule>``).

One strongly consistent Query reads every rule's state for a proxy. Writes are conditional on the
``version`` that was read (optimistic concurrency): when two check runs overlap, the second one's
write fails as a whole and that run skips the proxy instead of notifying a second time.

A write that DynamoDB cancels for transient reasons only (throttling, a conflict with another
transaction on the same item) is retried by :func:`~pinwatch.store.transactions.transact_write`:
failing the run for it would leave the claim to expire and send the alert again after the lease.
A conflict that clears into a failed condition is a lost race like any other.

Lifecycle. Every write stamps ``expires_at`` (the table's TTL attribute, as on the hourly
summary items), ``ttl_days`` after the write: an active alert is rewritten at least every
reminder interval, so only states nobody touches any more — resolved long ago, or of a proxy that
is gone — expire. Each rule also has an index item (``pk=ALERTING``, ``sk=PROXY#<proxy>#ALERT#<rule>``, ``active``)
put in the same transaction, so a check run finds, with one Query and no Scan, the proxies that
still have open alerts — including proxies that no longer exist, whose alerts it then resolves.
It is put, never deleted (the function may only query and put), and expires with its state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pinwatch.alerts.policy import AlertState, AlertStatus, Transition
from pinwatch.findings import Severity
from pinwatch.store import keys
from pinwatch.store.transactions import (
    CONDITION_FAILED,
    DEFAULT_RETRY,
    TRANSIENT_REASONS,
    TransientRetry,
    transact_write,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

logger = logging.getLogger(__name__)

MAX_ITEMS_PER_SAVE = 50  # two items per state (state + index) within TransactWriteItems' 100
DEFAULT_TTL_DAYS = 30  # far beyond the longest reminder interval: live alerts are rewritten long before
ALERTING_PK = "ALERTING"


class AlertStateStore:
    """Reads and writes :class:`AlertState` items. The DynamoDB client is injected."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        retry: TransientRetry = DEFAULT_RETRY,
        ttl_days: int = DEFAULT_TTL_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table = table_name
        self._retry = retry
        self._ttl_s = keys.ttl_seconds(ttl_days)
        self._clock = clock

    def alerting_proxies(self) -> frozenset[str]:
        """Proxies with at least one active alert (one Query on the index partition)."""
        proxies: set[str] = set()
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="#pk = :pk",
            FilterExpression="#active = :true",
            ExpressionAttributeNames={"#pk": keys.PK, "#proxy": "proxy", "#active": "active"},
            ExpressionAttributeValues={":pk": {"S": ALERTING_PK}, ":true": {"BOOL": True}},
            ProjectionExpression="#proxy",
            ConsistentRead=True,
        )
        for page in pages:
            proxies.update(item["proxy"]["S"] for item in page.get("Items", []) if "proxy" in item)
        return frozenset(proxies)

    def load(self, proxy: str) -> dict[str, AlertState]:
        """Every stored rule state of one proxy, by rule (one Query, paginated if ever needed)."""
        states: dict[str, AlertState] = {}
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames={"#pk": keys.PK, "#sk": keys.SK},
            ExpressionAttributeValues={":pk": {"S": keys.proxy_pk(proxy)}, ":prefix": {"S": keys.ALERT_PREFIX}},
            ConsistentRead=True,  # a run must see the previous run's write, or it notifies twice
        )
        for page in pages:
            for item in page.get("Items", []):
                state = _from_item(item)
                states[state.rule] = state
        return states

    def save(self, states: Sequence[AlertState]) -> tuple[AlertState, ...] | None:
        """Write all states atomically, each only if its stored version is still the one read.

        Returns the states as stored (version + 1), or None when another run changed any of them
        first — the caller lost the race and must not act on its decision. Raises the client's error
        for anything else, including throttling that outlasts the retries (nothing is written then).
        """
        if not states:
            return ()
        if len(states) > MAX_ITEMS_PER_SAVE:
            raise ValueError(f"at most {MAX_ITEMS_PER_SAVE} alert states can be saved at once, got {len(states)}")
        stored = tuple(replace(s, version=s.version + 1) for s in states)
        expires_at = int(self._clock()) + self._ttl_s
        items: list[TransactWriteItemTypeDef] = []
        for old, new in zip(states, stored, strict=True):
            item = _to_item(new)
            item[keys.TTL_ATTRIBUTE] = {"N": str(expires_at)}
            put: dict[str, Any] = {"TableName": self._table, "Item": item}
            if old.version == 0:
                put["ConditionExpression"] = "attribute_not_exists(#pk)"
                put["ExpressionAttributeNames"] = {"#pk": keys.PK}
            else:
                put["ConditionExpression"] = "#version = :version"
                put["ExpressionAttributeNames"] = {"#version": "version"}
                put["ExpressionAttributeValues"] = {":version": {"N": str(old.version)}}
            items.append({"Put": put})  # type: ignore[typeddict-item]
            items.append(self._index_write(new, expires_at))
        cancelled = transact_write(self._client, items, self._retry).cancelled
        if cancelled is None:
            return stored
        # A version moved on (the other reasons, if any, are transient): another run wrote first.
        if cancelled.condition_failed and cancelled.codes - {CONDITION_FAILED} <= TRANSIENT_REASONS:
            logger.info(
                "alert state changed by another check run; skipping",
                extra={"proxy": states[0].proxy, "rules": [s.rule for s in states]},
            )
            return None
        raise cancelled.error

    def _index_write(self, state: AlertState, expires_at: int) -> TransactWriteItemTypeDef:
        key: dict[str, AttributeValueTypeDef] = {
            keys.PK: {"S": ALERTING_PK},
            keys.SK: {"S": f"{keys.proxy_pk(state.proxy)}#{keys.alert_sk(state.rule)}"},
        }
        item = {
            **key,
            "proxy": {"S": state.proxy},
            "active": {"BOOL": state.active},
            keys.TTL_ATTRIBUTE: {"N": str(expires_at)},
        }
        return {"Put": {"TableName": self._table, "Item": item}}


def _to_item(state: AlertState) -> dict[str, AttributeValueTypeDef]:
    item: dict[str, AttributeValueTypeDef] = {
        keys.PK: {"S": keys.proxy_pk(state.proxy)},
        keys.SK: {"S": keys.alert_sk(state.rule)},
        "proxy": {"S": state.proxy},
        "rule": {"S": state.rule},
        "status": {"S": state.status.value},
        "severity": {"S": state.severity.value},
        "healthy_streak": {"N": str(state.healthy_streak)},
        "version": {"N": str(state.version)},
        # Lists, not string sets: a string set cannot be empty.
        "accepted_channels": {"L": [{"S": c} for c in sorted(state.accepted_channels)]},
        "pending_channels": {"L": [{"S": c} for c in sorted(state.pending_channels)]},
    }
    if state.summary:
        item["summary"] = {"S": state.summary}
    for name, number in (
        ("first_active_ms", state.first_active_ms),
        ("last_notified_ms", state.last_notified_ms),
        ("resolved_ms", state.resolved_ms),
        ("lease_until_ms", state.lease_until_ms),
    ):
        if number is not None:
            item[name] = {"N": str(number)}
    for name, text in (
        ("last_notified_severity", state.last_notified_severity),
        ("last_transition", state.last_transition),
        ("lease_owner", state.lease_owner),
    ):
        if text is not None:
            item[name] = {"S": str(text)}
    return item


def _from_item(item: dict[str, Any]) -> AlertState:
    def text(name: str) -> str | None:
        value = item.get(name)
        return value["S"] if value and "S" in value else None

    def number(name: str) -> int | None:
        value = item.get(name)
        return int(value["N"]) if value and "N" in value else None

    def channels(name: str) -> frozenset[str]:
        value = item.get(name) or {}
        return frozenset(v["S"] for v in value.get("L", []) if "S" in v)

    notified_severity = text("last_notified_severity")
    transition = text("last_transition")
    return AlertState(
        proxy=text("proxy") or item[keys.PK]["S"].removeprefix("PROXY#"),
        rule=text("rule") or item[keys.SK]["S"].removeprefix(keys.ALERT_PREFIX),
        status=AlertStatus(text("status") or AlertStatus.OK),
        severity=Severity(text("severity") or Severity.OK),
        first_active_ms=number("first_active_ms"),
        last_notified_ms=number("last_notified_ms"),
        last_notified_severity=Severity(notified_severity) if notified_severity else None,
        last_transition=Transition(transition) if transition else None,
        healthy_streak=number("healthy_streak") or 0,
        accepted_channels=channels("accepted_channels"),
        pending_channels=channels("pending_channels"),
        summary=text("summary") or "",
        resolved_ms=number("resolved_ms"),
        version=number("version") or 0,
        lease_owner=text("lease_owner"),
        lease_until_ms=number("lease_until_ms"),
    )
