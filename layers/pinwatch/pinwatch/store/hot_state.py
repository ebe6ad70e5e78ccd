"""Alarm contributors remembered from their events (``pk=WATCHED``, ``sk=PROXY#<proxy>``): the organization's hot proxies.

In organization mode the members' Metrics Insights alarms are not polled (``DescribeAlarmContributors``
in every member every minute would cost an AssumeRole and a call per account and Region; docs/cost.md).
Their contributor events are forwarded to the central bus instead, both ALARM and OK, and the
check records each one here: a proxy whose contributor went to ALARM is *watched*, read by every
scheduled run between sweeps until its contributor is OK again, as the single-account check reads
its own alarm's contributors.

Events can repeat and arrive out of order (EventBridge delivers at least once and retries a failed
target for up to 24 hours; Lambda retries an asynchronous invocation). So each write is a
conditional ``PutItem`` that keeps the event's time (``event_ms``) and succeeds only when no newer
event of that proxy is stored: a repeat rewrites the same item, an older event changes nothing.
An OK event therefore does not delete the item but puts it back with ``watched = false``: a late
ALARM, older than that OK, would otherwise find no item to compare with and watch the proxy again.

Lifecycle. Every write stamps ``expires_at`` ``ttl_hours`` (default 24) after the write — a safety
net for an OK event that never arrives, renewed by every later event. DynamoDB deletes expired
items only eventually, so the read also skips items past their ``expires_at``. A proxy whose
contributor stays in ALARM beyond that is read on the sweeps again (and every minute while it has
an open alert).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from pinwatch.store import keys

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

logger = logging.getLogger(__name__)

WATCHED_PK = "WATCHED"
DEFAULT_TTL_HOURS = 24  # EventBridge's longest retry of an event (its default maximum event age)
ALARM = "ALARM"
OK = "OK"


class ContributorWatchStore:
    """Records contributor transitions and lists the watched proxies. The DynamoDB client is injected."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        ttl_hours: int = DEFAULT_TTL_HOURS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl_hours < 1:
            raise ValueError(f"ttl_hours must be at least 1, got {ttl_hours}")
        self._client = client
        self._table = table_name
        self._ttl_s = ttl_hours * 3_600
        self._clock = clock

    def record(self, proxy: str, state: str, event_ms: int) -> bool:
        """Store the contributor's ``state`` (ALARM or OK) as of ``event_ms``.

        Returns False when a newer event of the proxy is stored already (this one is stale and
        changes nothing). Raises ValueError for another state, the client's error for anything else.
        """
        if state not in (ALARM, OK):
            raise ValueError(f"a contributor is ALARM or OK, got {state!r}")
        expires_at = int(self._clock()) + self._ttl_s
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    keys.PK: {"S": WATCHED_PK},
                    keys.SK: {"S": keys.watched_sk(proxy)},
                    "proxy": {"S": proxy},
                    "watched": {"BOOL": state == ALARM},
                    "event_ms": {"N": str(event_ms)},
                    keys.TTL_ATTRIBUTE: {"N": str(expires_at)},
                },
                # Equal times rewrite (a repeated event); an older event loses.
                ConditionExpression="attribute_not_exists(#pk) OR #event_ms <= :event_ms",
                ExpressionAttributeNames={"#pk": keys.PK, "#event_ms": "event_ms"},
                ExpressionAttributeValues={":event_ms": {"N": str(event_ms)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            logger.info(
                "contributor event older than the one stored; ignored",
                extra={"proxy": proxy, "state": state, "event_ms": event_ms},
            )
            return False
        return True

    def watched(self) -> frozenset[str]:
        """Proxies whose contributor's latest event is ALARM and not expired (one Query on the partition)."""
        proxies: set[str] = set()
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="#pk = :pk",
            FilterExpression="#watched = :true AND #expires > :now",
            ExpressionAttributeNames={
                "#pk": keys.PK,
                "#proxy": "proxy",
                "#watched": "watched",
                "#expires": keys.TTL_ATTRIBUTE,
            },
            ExpressionAttributeValues={
                ":pk": {"S": WATCHED_PK},
                ":true": {"BOOL": True},
                ":now": {"N": str(int(self._clock()))},
            },
            ProjectionExpression="#proxy",
            # The event a minute ago must count; a strongly consistent read is one unit per 4 KB anyway.
            ConsistentRead=True,
        )
        for page in pages:
            proxies.update(item["proxy"]["S"] for item in page.get("Items", []) if "proxy" in item)
        return frozenset(proxies)
