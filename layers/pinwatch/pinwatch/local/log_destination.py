"""What CloudWatch Logs does for a cross-account destination backed by Kinesis, against moto's Kinesis.

A member account's proxy log lines pass its subscription filter (or account policy) named
``pinwatch-<region>`` with the stack's pin pattern; CloudWatch Logs builds the subscription
payload (``owner`` = the member account, ``subscriptionFilters`` = that name, the matching lines as
``logEvents``), gzips it and puts it into the destination's Kinesis stream, one payload per record
("Cross-account cross-Region subscriptions" and "Subscription filters with Amazon Kinesis Data
Streams", CloudWatch Logs User Guide). :class:`LogDestination` does that with ``PutRecord``, and
what the service does besides: the ``CONTROL_MESSAGE`` it sends when a subscription is created,
and an exact re-send of an earlier record (delivery is at least once).

The pattern is the template's (``Mappings.Pins.Filter.Pattern``), read from ``template.yaml``.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from pinwatch.ingest import DATA_MESSAGE
from pinwatch.local import lambda_harness
from pinwatch.local.template import load_template
from pinwatch.stream_ingest import filter_name

_TERM = re.compile(r'\s*(\??)"([^"]*)"')


@cache
def pin_filter_pattern() -> str:
    """The subscription filter pattern the stack and the member template use."""
    pattern: str = load_template()["Mappings"]["Pins"]["Filter"]["Pattern"]
    return pattern


def pattern_matches(pattern: str, message: str) -> bool:
    """Whether CloudWatch Logs delivers ``message`` through an unstructured pattern of quoted terms.

    ``?"a" ?"b"``: any alternative matches; ``"a" "b"``: all must (case-sensitive, literal). Other
    syntax is rejected, so a template change that needs more is noticed here.
    """
    alternatives: list[str] = []
    required: list[str] = []
    position = 0
    while position < len(pattern.rstrip()):
        match = _TERM.match(pattern, position)
        if match is None:
            raise ValueError(f"unsupported filter pattern syntax at {pattern[position:]!r}")
        (alternatives if match.group(1) else required).append(match.group(2))
        position = match.end()
    if alternatives and not any(term in message for term in alternatives):
        return False
    return all(term in message for term in required)


def destination_document(
    account: str, region: str, log_group: str, log_stream: str, log_events: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The subscription payload a member's ``pinwatch-<region>`` subscription sends to the destination."""
    return {
        "messageType": DATA_MESSAGE,
        "owner": account,
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": [filter_name(region)],
        "logEvents": [dict(e) for e in log_events],
    }


def control_document(destination_arn: str, now_ms: int) -> dict[str, Any]:
    """The reachability check CloudWatch Logs sends when a subscription to the destination is created."""
    return lambda_harness.control_document(f"{destination_arn}.", now_ms)


def encode(document: Mapping[str, Any]) -> bytes:
    """The record data: gzip(JSON). MTIME 0, so one payload always encodes to the same bytes."""
    return gzip.compress(json.dumps(document, separators=(",", ":")).encode(), mtime=0)


@dataclass(frozen=True, slots=True)
class Sent:
    """One record put into the stream."""

    document: dict[str, Any]
    data: bytes
    partition_key: str
    sequence_number: str
    shard_id: str


class LogDestination:
    """A CloudWatch Logs destination in the monitoring account that writes into a moto Kinesis stream."""

    def __init__(self, kinesis_client: Any, stream_name: str, *, pattern: str | None = None) -> None:
        self._kinesis = kinesis_client
        self._stream = stream_name
        self._pattern = pattern if pattern is not None else pin_filter_pattern()
        self._ids = itertools.count(1)
        self.sent: list[Sent] = []

    def deliver(
        self, account: str, region: str, log_group: str, log_stream: str, log_events: Sequence[Mapping[str, Any]]
    ) -> Sent | None:
        """Send the lines of one member log stream that pass the pin pattern (None: none passed, nothing sent).

        ``log_events`` carry ``timestamp`` and ``message``, and ``id`` as CloudWatch Logs stored them;
        an event without one gets a new id of CloudWatch's form (56 digits, unique per destination).
        """
        matching = [
            e if "id" in e else {"id": f"{e['timestamp']:020d}{next(self._ids):036d}", **e}
            for e in log_events
            if pattern_matches(self._pattern, str(e["message"]))
        ]
        if not matching:
            return None
        document = destination_document(account, region, log_group, log_stream, matching)
        # CloudWatch Logs chooses the partition key; one per member log stream keeps a stream's records in order.
        return self._put(document, f"{account}/{region}/{log_group}/{log_stream}")

    def control(self, destination_arn: str, now_ms: int) -> Sent:
        """Send the control message of a new subscription."""
        return self._put(control_document(destination_arn, now_ms), "control")

    def resend(self, sent: Sent) -> Sent:
        """Put an earlier record's exact bytes again (at-least-once delivery)."""
        return self._put(sent.document, sent.partition_key, sent.data)

    def send_raw(self, data: bytes, partition_key: str = "raw") -> Sent:
        """Put bytes that are no subscription payload (what a misconfigured producer could write)."""
        return self._put({}, partition_key, data)

    def _put(self, document: dict[str, Any], partition_key: str, data: bytes | None = None) -> Sent:
        payload = encode(document) if data is None else data
        response = self._kinesis.put_record(StreamName=self._stream, Data=payload, PartitionKey=partition_key)
        sent = Sent(document, payload, partition_key, response["SequenceNumber"], response["ShardId"])
        self.sent.append(sent)
        return sent
