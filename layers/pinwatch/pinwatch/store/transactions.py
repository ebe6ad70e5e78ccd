"""One ``TransactWriteItems`` call, retried while DynamoDB cancels it for transient reasons only.

botocore's retry modes retry throttling *errors*, but not ``TransactionCanceledException``, and
DynamoDB answers a transaction that was throttled (``ThrottlingError``,
``ProvisionedThroughputExceeded``) or that collided with another transaction on one of its items
(``TransactionConflict``) with exactly that: a cancellation, with one reason per action and nothing
applied. :func:`transact_write` sends the same actions again a bounded number of times, after a
full-jitter backoff (concurrent writers that collided must not retry in lockstep), and fails loudly
when the cause outlasts the retries.

Any other cancellation — a failed condition above all — is handed back to the caller as a
:class:`Cancellation`, because only the caller knows what its conditions mean: for the summary
table, a chunk that was applied before; for the alert state, a check run that lost the race.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

TRANSIENT_REASONS: Final = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
CONDITION_FAILED: Final = "ConditionalCheckFailed"
_CANCELLED = "TransactionCanceledException"
# "Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]"
_REASONS_IN_MESSAGE = re.compile(r"\[([A-Za-z]+(?:,\s*[A-Za-z]+)*)\]\s*$")


@dataclass(frozen=True, slots=True)
class Cancellation:
    """Why DynamoDB cancelled a transaction: one reason per action, in the order they were sent."""

    error: ClientError  # the original error, for the caller to re-raise
    reasons: tuple[Mapping[str, Any], ...]  # {"Code": ..., "Message": ..., "Item": <ALL_OLD item>}

    @property
    def codes(self) -> frozenset[str]:
        """Every reason code except ``None`` (the code of an action that was fine)."""
        return frozenset(code for r in self.reasons if (code := r.get("Code")) not in (None, "None"))

    @property
    def transient(self) -> bool:
        """Every action that failed, failed for a reason that goes away on its own."""
        return bool(self.codes) and self.codes <= TRANSIENT_REASONS

    @property
    def condition_failed(self) -> bool:
        """At least one action's condition expression was false."""
        return CONDITION_FAILED in self.codes

    def condition_failed_at(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index].get("Code") == CONDITION_FAILED

    def old_item(self, index: int) -> Mapping[str, Any]:
        """The item as stored when action `index`'s condition failed (needs ``ReturnValuesOnConditionCheckFailure``)."""
        if index >= len(self.reasons):
            return {}
        item: Mapping[str, Any] = self.reasons[index].get("Item") or {}
        return item


def cancellation(error: ClientError) -> Cancellation | None:
    """The reasons of a ``TransactionCanceledException``; None for any other error."""
    details = error.response.get("Error", {})
    if details.get("Code") != _CANCELLED:
        return None
    reasons: tuple[Mapping[str, Any], ...] = tuple(error.response.get("CancellationReasons") or ())
    if not reasons:
        # Some SDKs only put the reasons into the message: "... [ConditionalCheckFailed, None]".
        match = _REASONS_IN_MESSAGE.search(details.get("Message", ""))
        if match:
            reasons = tuple({"Code": code.strip()} for code in match.group(1).split(","))
    return Cancellation(error, reasons)


@dataclass(frozen=True, slots=True)
class TransientRetry:
    """How a transaction cancelled for transient reasons is retried."""

    attempts: int = 4  # calls in all, the first one included
    base_delay_s: float = 0.05  # before retry n (1, 2, …): uniform(0, base_delay_s * 2**n) seconds
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.base_delay_s < 0:
            raise ValueError(f"base_delay_s must not be negative, got {self.base_delay_s}")

    def backoff(self, retry: int) -> None:
        """Wait before retry number `retry` (1-based): full jitter, doubling the cap each time."""
        self.sleep(random.uniform(0, self.base_delay_s * 2**retry))


DEFAULT_RETRY: Final = TransientRetry()


@dataclass(frozen=True, slots=True)
class TransactResult:
    """What :func:`transact_write` did: how many calls, and the cancellation if it did not commit."""

    calls: int
    cancelled: Cancellation | None = None

    @property
    def committed(self) -> bool:
        return self.cancelled is None


def transact_write(
    client: DynamoDBClient, items: Sequence[TransactWriteItemTypeDef], retry: TransientRetry = DEFAULT_RETRY
) -> TransactResult:
    """Run ``TransactWriteItems`` with `items`, retrying transient cancellations (see the module docstring).

    Returns once the transaction commits, or when DynamoDB cancels it for a reason that is not
    transient (``cancelled`` says why; nothing was written). Raises the client's error for anything
    else, including a transient cancellation still there after ``retry.attempts`` calls.
    """
    for attempt in range(1, retry.attempts + 1):
        try:
            client.transact_write_items(TransactItems=list(items))
        except ClientError as error:
            cancelled = cancellation(error)
            if cancelled is None:
                raise
            if not cancelled.transient:
                return TransactResult(attempt, cancelled)
            if attempt == retry.attempts:
                raise
            retry.backoff(attempt)
            continue
        return TransactResult(attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover
