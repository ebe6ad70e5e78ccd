"""What the dispatcher needs from a delivery channel, and what a channel reports back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pinwatch.alerts.policy import DeliveryStatus


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How one channel handled one message. ``detail`` is safe to log (no URL, no secret)."""

    channel: str
    status: DeliveryStatus
    detail: str = ""
    attempts: int = 0
    error: str | None = None  # a short code: invalid_payload, rate_limited, timeout, http_503, …

    @property
    def accepted(self) -> bool:
        return self.status is DeliveryStatus.ACCEPTED

    @property
    def permanent(self) -> bool:
        return self.status is DeliveryStatus.REJECTED


class Sender(Protocol):
    """Delivers one rendered payload; reports the outcome instead of raising."""

    def send(self, payload: Mapping[str, Any]) -> DeliveryOutcome: ...
