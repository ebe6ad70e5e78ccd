"""Organization mode: one Kinesis record of the central stream -> a scoped subscription delivery.

Member accounts subscribe their proxy log groups to a CloudWatch Logs destination in the
monitoring account, which puts each subscription payload into one Kinesis data stream as one
record: the same base64(gzip(JSON)) document a subscribed function gets, without the ``awslogs``
wrapper ("Cross-account cross-Region subscriptions", CloudWatch Logs User Guide). The stream
ingest function reads it with :func:`scoped_delivery` and counts it like any delivery
(:func:`pinwatch.ingest.ingest_delivery`), under ``<account>:<region>:<proxy>`` keys.

* Account: the payload's ``owner``, the ID of the account that sent the lines; anything but 12
  digits is not a member's payload (:class:`~pinwatch.ingest.InvalidPayload`).
* Region: the payload has none. The member template names its subscription filters (and account
  policy) ``pinwatch-<region>``, and CloudWatch Logs lists the names that matched in
  ``subscriptionFilters``; without such a name, the record's ``awsRegion`` (the stream's Region).
* ``CONTROL_MESSAGE``: CloudWatch Logs' reachability check of the destination; written nowhere.

A record that cannot be read is parked (:class:`Parking`, e.g. :class:`pinwatch.parking.SqsParking`)
with its data and error, so it is kept for inspection without holding up its shard.

Pure: no boto3.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Protocol

from pinwatch.ingest import Delivery, InvalidPayload, decode
from pinwatch.scope import ACCOUNT_ID, REGION, Scope

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

# The member template's subscription filter / account policy name: "pinwatch-<region>".
FILTER_PREFIX = "pinwatch-"
_FILTER_REGION = re.compile(re.escape(FILTER_PREFIX) + "(" + REGION.pattern + ")")


class Parking(Protocol):
    """Where a record that cannot be read is kept, with the reason (raises when it cannot keep it)."""

    def park(self, record: KinesisStreamRecord, error: str) -> None: ...


def filter_name(region: str) -> str:
    """The name the member template gives its subscription filters in ``region``."""
    return f"{FILTER_PREFIX}{region}"


def filter_region(subscription_filters: tuple[str, ...]) -> str | None:
    """The Region named by the first ``pinwatch-<region>`` entry, if any."""
    for name in subscription_filters:
        match = _FILTER_REGION.fullmatch(name)
        if match:
            return match.group(1)
    return None


def scoped_delivery(record: KinesisStreamRecord) -> Delivery:
    """Decode one Kinesis record's subscription payload and give it the member's scope.

    Raises :class:`~pinwatch.ingest.InvalidPayload` saying what is wrong. A control message comes
    back without a scope (its ``owner`` is CloudWatch Logs, not an account): it is never counted.
    """
    payload = record.get("kinesis")
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, str):
        raise InvalidPayload("kinesis.data is missing or not a base64 string")
    delivery = decode({"awslogs": {"data": data}})
    if delivery.is_control:
        return delivery
    owner = delivery.owner
    if owner is None or not ACCOUNT_ID.fullmatch(owner):
        raise InvalidPayload(f"owner {owner!r} is not a 12-digit AWS account ID: not a member account's payload")
    region = filter_region(delivery.subscription_filters) or str(record.get("awsRegion") or "")
    try:
        scope = Scope(owner, region)
    except ValueError as exc:
        raise InvalidPayload(f"no Region for the payload: {exc}") from None
    return dataclasses.replace(delivery, scope=scope)
