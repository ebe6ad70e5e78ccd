"""Alerting: the policy (dedup, cooldown, escalation, resolve), rendering, and delivery.

``AlertDispatcher.process(report, now_ms, dry_run=False) -> DispatchResult`` is the entry point
(built by :func:`pinwatch.wiring.build_dispatcher`). Slack and SNS delivery live in
:mod:`pinwatch.alerts.slack` and :mod:`pinwatch.alerts.sns`; importing this package does not
import either.
"""

from pinwatch.alerts.channels import DeliveryOutcome
from pinwatch.alerts.dispatcher import AlertDispatcher, ChannelSpec, DispatchResult, Notification
from pinwatch.alerts.policy import AlertState, AlertStatus, DeliveryStatus, PolicySettings, Transition

__all__ = [
    "AlertDispatcher",
    "AlertState",
    "AlertStatus",
    "ChannelSpec",
    "DeliveryOutcome",
    "DeliveryStatus",
    "DispatchResult",
    "Notification",
    "PolicySettings",
    "Transition",
]
