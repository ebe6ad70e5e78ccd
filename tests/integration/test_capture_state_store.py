"""The reason-capture state item on DynamoDB Local: what is stored reads back, and only calls the check's role may make.

The check function's role allows ``dynamodb:Query`` and ``dynamodb:PutItem`` on the table and
nothing else (template.yaml; pinned by tests/template/test_template.py): a ``GetItem`` would be
denied in AWS, and every capture would fail at its first read.
"""

from __future__ import annotations

from typing import Any

import pytest

from pinwatch.capture import CaptureState, StopCause
from pinwatch.store.capture_state import CaptureStateStore

pytestmark = pytest.mark.integration

CHECK_ROLE_DYNAMODB_CALLS = {"Query", "PutItem"}
PROXY = "orders"


def test_given_a_capture_switched_on_and_off_when_stored_then_each_read_returns_the_last_write_within_the_role(
    dynamodb_client: Any, summary_table: str
) -> None:
    store = CaptureStateStore(dynamodb_client, summary_table)
    calls: list[str] = []
    dynamodb_client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))

    assert store.load(PROXY) is None
    on = store.save(None, CaptureState(PROXY, active=True, started_ms=1_000, enabled_ms=1_000))
    assert on is not None
    assert store.load(PROXY) == on
    off = store.save(
        on, CaptureState(PROXY, active=False, started_ms=1_000, stopped_ms=9_000, stop_cause=StopCause.CAP)
    )
    assert store.load(PROXY) == off
    assert store.load("billing") is None  # another proxy's partition holds nothing

    assert set(calls) <= CHECK_ROLE_DYNAMODB_CALLS, calls
