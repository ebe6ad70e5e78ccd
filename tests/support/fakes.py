"""In-memory stand-ins for the adapters, for tests of pure logic."""

from __future__ import annotations

from dataclasses import dataclass, field

from pinwatch.store.summary import ApplyResult
from pinwatch.tally import Tally


@dataclass
class RecordingStore:
    """Stands in for the summary table: remembers what it was asked to apply."""

    calls: list[tuple[str, Tally, int]] = field(default_factory=list)

    def apply_batch(self, batch_id: str, tally: Tally, now_ms: int) -> ApplyResult:
        self.calls.append((batch_id, tally, now_ms))
        return ApplyResult(batch_id, 1, 1, 0, 1, 1)
