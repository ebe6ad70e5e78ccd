"""Read the summary table back without the adapter: the ground truth of what a run wrote."""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

import boto3
from botocore.config import Config

from pinwatch.store import keys


class Crash(RuntimeError):
    """Stands in for the function dying (timeout, out of memory) between two transactions."""


def own_client(dynamodb_endpoint: str) -> Any:
    """A DynamoDB client for one test: event hooks registered by one test never leak into another."""
    return boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_endpoint,
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )


def crash_after(client: Any, calls: int) -> None:
    """Raise :class:`Crash` after the `calls`-th TransactWriteItems has committed (the response arrived)."""
    seen = {"n": 0}

    def hook(**_: Any) -> None:
        seen["n"] += 1
        if seen["n"] == calls:
            raise Crash(f"crash after transaction {calls}")

    client.meta.events.register("after-call.dynamodb.TransactWriteItems", hook)


def fail_write(client: Any, nth: int, message: str = "DynamoDB unavailable") -> None:
    """Raise :class:`Crash` instead of sending the ``nth`` TransactWriteItems (nothing of it is written).

    The others go through: one failed write in a batch, as a brief DynamoDB outage leaves it.
    """
    seen = {"n": 0}

    def hook(**_: Any) -> None:
        seen["n"] += 1
        if seen["n"] == nth:
            raise Crash(message)

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", hook)


def items(client: Any, table: str) -> list[dict[str, Any]]:
    """Every item of the table (a paginated Scan)."""
    paginator = client.get_paginator("scan")
    return [item for page in paginator.paginate(TableName=table) for item in page["Items"]]


def counts(client: Any, table: str, prefix: str) -> Counter[tuple[str, str]]:
    """(pk, sk) -> ``count`` of every item whose sort key starts with `prefix`."""
    return Counter(
        {
            (i[keys.PK]["S"], i[keys.SK]["S"]): int(i["count"]["N"])
            for i in items(client, table)
            if i[keys.SK]["S"].startswith(prefix)
        }
    )


def hourly_counts(client: Any, table: str) -> Counter[tuple[str, str]]:
    """(pk, sk) -> count for every hourly item (pins, would-pins, unparsed lines)."""
    return counts(client, table, keys.HOUR_PREFIX)


def total_counts(client: Any, table: str) -> Counter[tuple[str, str]]:
    """(pk, sk) -> count for every running total."""
    return counts(client, table, keys.TOTAL_PREFIX)


def proxies_seen(client: Any, table: str) -> set[str]:
    """The proxies the table has a ``PROXIES`` item for."""
    return {i["proxy"]["S"] for i in items(client, table) if i[keys.PK]["S"] == keys.PROXIES_PK}


def cancelled_transaction(codes: list[str]) -> tuple[Any, dict[str, Any]]:
    """A ``before-call`` hook's answer: DynamoDB cancelled the transaction with these reasons, one per action.

    Register it with ``client.meta.events.register("before-call.dynamodb.TransactWriteItems", ...)``:
    botocore then raises the ``TransactionCanceledException`` without sending anything.
    """

    class Http:
        status_code = 400
        headers: ClassVar[dict[str, str]] = {}

    body = {
        "Error": {"Code": "TransactionCanceledException", "Message": f"Transaction cancelled [{', '.join(codes)}]"},
        "CancellationReasons": [{"Code": c} for c in codes],
    }
    return Http(), body
