"""In-memory stand-ins for the adapters, for tests of pure logic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pinwatch.alerts.channels import DeliveryOutcome
from pinwatch.alerts.policy import DeliveryStatus
from pinwatch.store.summary import ApplyResult
from pinwatch.tally import Tally


@dataclass
class RecordingStore:
    """Stands in for the summary table: remembers what it was asked to apply."""

    calls: list[tuple[str, Tally, int]] = field(default_factory=list)

    def apply_batch(self, batch_id: str, tally: Tally, now_ms: int) -> ApplyResult:
        self.calls.append((batch_id, tally, now_ms))
        return ApplyResult(batch_id, 1, 1, 0, 1, 1)


@dataclass
class Recorder:
    """An alert channel that accepts everything and keeps what it got."""

    sent: list[Mapping[str, Any]] = field(default_factory=list)

    def send(self, payload: Mapping[str, Any]) -> DeliveryOutcome:
        self.sent.append(payload)
        return DeliveryOutcome("sns", DeliveryStatus.ACCEPTED, "ok", 1)
