"""Transient cancellations of a DynamoDB transaction: which are retried, how often, and how long apart."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pinwatch.store.transactions import (
    TRANSIENT_REASONS,
    TransientRetry,
    cancellation,
    transact_write,
)

ITEMS: list[Any] = [{"Put": {"TableName": "t", "Item": {}}}, {"Put": {"TableName": "t", "Item": {}}}]


def cancelled(*codes: str, message: str | None = None, with_reasons: bool = True, **first: Any) -> ClientError:
    reasons = [{"Code": code, **(first if i == 0 else {})} for i, code in enumerate(codes)]
    response: dict[str, Any] = {
        "Error": {
            "Code": "TransactionCanceledException",
            "Message": message if message is not None else f"Transaction cancelled [{', '.join(codes)}]",
        }
    }
    if with_reasons:
        response["CancellationReasons"] = reasons
    return ClientError(response, "TransactWriteItems")


class ScriptedClient:
    """Answers each TransactWriteItems call with the next scripted error, or commits (None)."""

    def __init__(self, *answers: ClientError | None) -> None:
        self.answers = deque(answers)
        self.calls: list[list[Any]] = []

    def transact_write_items(self, TransactItems: list[Any]) -> dict[str, Any]:
        self.calls.append(TransactItems)
        answer = self.answers.popleft() if self.answers else None
        if answer is not None:
            raise answer
        return {}


class Sleeps:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.mark.parametrize("code", sorted(TRANSIENT_REASONS))
def test_given_a_transient_cancellation_when_written_then_it_is_sent_again_after_a_jittered_wait_and_commits(
    code: str,
) -> None:
    client, sleeps = ScriptedClient(cancelled("None", code)), Sleeps()

    result = transact_write(client, ITEMS, TransientRetry(attempts=4, base_delay_s=0.05, sleep=sleeps))

    assert (result.committed, result.calls) == (True, 2)
    assert client.calls == [ITEMS, ITEMS]
    [wait] = sleeps.seconds
    assert 0 <= wait <= 0.05 * 2


def test_given_throttling_that_outlasts_the_retries_when_written_then_the_error_is_raised_after_every_attempt() -> None:
    throttled = [cancelled("ThrottlingError", "ThrottlingError") for _ in range(3)]
    client, sleeps = ScriptedClient(*throttled), Sleeps()

    with pytest.raises(ClientError) as raised:
        transact_write(client, ITEMS, TransientRetry(attempts=3, base_delay_s=1.0, sleep=sleeps))

    assert raised.value is throttled[-1]
    assert len(client.calls) == 3
    # Full jitter under a cap that doubles: retry n waits up to base * 2**n; no wait after the last call.
    assert len(sleeps.seconds) == 2
    assert all(0 <= wait <= cap for wait, cap in zip(sleeps.seconds, (2.0, 4.0), strict=True))


def test_given_many_retries_when_waiting_then_the_waits_are_spread_not_in_lockstep() -> None:
    sleeps = Sleeps()
    retry = TransientRetry(attempts=2, base_delay_s=1.0, sleep=sleeps)

    for _ in range(50):
        retry.backoff(1)

    assert all(0 <= s <= 2.0 for s in sleeps.seconds)
    assert len(set(sleeps.seconds)) > 40


def test_given_a_failed_condition_when_written_then_the_cancellation_is_returned_without_a_retry() -> None:
    marker = {"token": {"S": "abc"}}
    client, sleeps = ScriptedClient(cancelled("ConditionalCheckFailed", "None", Item=marker)), Sleeps()

    result = transact_write(client, ITEMS, TransientRetry(sleep=sleeps))

    assert (result.committed, result.calls, sleeps.seconds) == (False, 1, [])
    assert result.cancelled is not None
    assert result.cancelled.condition_failed
    assert result.cancelled.condition_failed_at(0)
    assert not result.cancelled.condition_failed_at(1)
    assert result.cancelled.old_item(0) == marker
    assert result.cancelled.old_item(5) == {}


def test_given_a_failed_condition_next_to_a_conflict_when_written_then_it_is_not_retried() -> None:
    client = ScriptedClient(cancelled("ConditionalCheckFailed", "TransactionConflict"))

    result = transact_write(client, ITEMS, TransientRetry(sleep=Sleeps()))

    assert result.calls == 1
    assert result.cancelled is not None
    assert result.cancelled.codes == {"ConditionalCheckFailed", "TransactionConflict"}
    assert not result.cancelled.transient


def test_given_a_validation_error_among_the_reasons_when_written_then_it_is_returned_at_once() -> None:
    client = ScriptedClient(cancelled("None", "ValidationError"))

    result = transact_write(client, ITEMS, TransientRetry(sleep=Sleeps()))

    assert result.calls == 1
    assert result.cancelled is not None
    assert result.cancelled.codes == {"ValidationError"}


def test_given_an_error_that_is_not_a_cancellation_when_written_then_it_is_raised_at_once() -> None:
    missing = ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no table"}}, "TransactWriteItems")
    client = ScriptedClient(missing)

    with pytest.raises(ClientError) as raised:
        transact_write(client, ITEMS, TransientRetry(sleep=Sleeps()))

    assert raised.value is missing
    assert len(client.calls) == 1
    assert cancellation(missing) is None


def test_given_reasons_only_in_the_message_when_classified_then_they_are_read_from_it() -> None:
    error = cancelled(
        message="Transaction cancelled, please refer cancellation reasons for specific reasons [ThrottlingError, None]",
        with_reasons=False,
    )

    found = cancellation(error)

    assert found is not None
    assert [r["Code"] for r in found.reasons] == ["ThrottlingError", "None"]
    assert found.transient


def test_given_no_reasons_at_all_when_classified_then_it_is_not_transient() -> None:
    found = cancellation(cancelled(message="Transaction cancelled", with_reasons=False))

    assert found is not None
    assert (found.codes, found.transient, found.condition_failed) == (frozenset(), False, False)


@pytest.mark.parametrize(
    ("attempts", "delay", "message"),
    [(0, 0.05, "attempts must be at least 1"), (3, -1.0, "base_delay_s must not be negative")],
)
def test_given_an_impossible_retry_setting_when_built_then_it_is_refused(
    attempts: int, delay: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TransientRetry(attempts=attempts, base_delay_s=delay)
