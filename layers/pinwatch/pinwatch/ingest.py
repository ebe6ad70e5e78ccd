"""Subscription batch -> per-key counts: decode, parse, tally, hand to a store.

CloudWatch Logs invokes the ingest function with ``{"awslogs": {"data": base64(gzip(JSON))}}``.
This module decodes that with Powertools' ``CloudWatchLogsEvent`` data class, acknowledges
``CONTROL_MESSAGE`` reachability checks without writing anything, parses every message (the
CloudWatch event timestamp is the authority for its time), folds the records into a
:class:`~pinwatch.tally.Tally` and gives it to a store (injected: anything with ``apply_batch``).

In organization mode a delivery carries the :class:`~pinwatch.scope.Scope` (member account and
Region) it came from (:mod:`pinwatch.stream_ingest` sets it): every key it is counted under is then
``scope.key(proxy)`` and its batch id covers account and Region too, so two accounts' proxies of
the same name, log group and stream never share counts or markers. Without a scope, keys and batch
ids are those of a single-account deployment.

An undecodable payload raises :class:`InvalidPayload` naming what was wrong, before anything
is written, so the invocation fails and the payload lands in the function's on-failure
destination. A malformed *line* inside a good payload is counted as unparsed and sampled.

No boto3 here; the store is an adapter the handler wires in.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
import zlib
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.utilities.data_classes import CloudWatchLogsEvent

from pinwatch.parse import (
    MAX_TIMESTAMP_MS,
    PIN_PHRASE,
    PIN_REASON_CACHE_SIZE,
    WOULD_PIN_PHRASE,
    parse_message,
    pin_reason,
    read_pin_reason,
)
from pinwatch.records import Kind, LogRecord
from pinwatch.scope import Scope, proxy_key
from pinwatch.tally import ReasonGroup, Tally
from pinwatch.timebase import HOUR_MS

if TYPE_CHECKING:
    from pinwatch.store.summary import ApplyResult

DATA_MESSAGE = "DATA_MESSAGE"
CONTROL_MESSAGE = "CONTROL_MESSAGE"
PROXY_LOG_GROUP_PREFIX = "/aws/rds/proxy/"
# What RDS accepts as a proxy name (CreateDBProxy, DBProxyName): "An identifier must begin with a
# letter and must contain only ASCII letters, digits, and hyphens; it can't end with a hyphen or
# contain two consecutive hyphens", at most 63 characters like every RDS identifier. A log group
# under the proxy prefix whose rest is not such a name was not written by a proxy.
RDS_PROXY_NAME = re.compile(r"[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)")
REASON_MARK = "Reason:"  # where the reason text starts in a pin line (after the pin phrase)
# Longest reason tail kept as a grouping key; longer ones (huge digests, rare) are read line by line.
_MEMO_KEY_MAX_CHARS = 2048
_ID = itemgetter("id")
_PIN_LEN = len(PIN_PHRASE)
_WOULD_LEN = len(WOULD_PIN_PHRASE)


class InvalidPayload(ValueError):
    """The invocation event is not a CloudWatch Logs subscription payload we can read."""


class BatchStore(Protocol):
    """Where a tallied batch goes (:class:`pinwatch.store.summary.SummaryStore`, or a fake)."""

    def apply_batch(self, batch_id: str, tally: Tally, now_ms: int) -> ApplyResult: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """A decoded subscription payload. `events` are the raw ``logEvents`` entries (checked when folded)."""

    message_type: str
    log_group: str
    log_stream: str
    owner: str | None
    events: list[Any]
    # The payload's ``subscriptionFilters`` (names of the filters or account policy that matched).
    subscription_filters: tuple[str, ...] = ()
    # Organization mode: the member account and Region the lines come from (None: single account).
    scope: Scope | None = None

    @property
    def is_control(self) -> bool:
        return self.message_type == CONTROL_MESSAGE

    @property
    def proxy(self) -> str:
        return proxy_name(self.log_group)[0]

    @property
    def key(self) -> str:
        """What the lines are counted under: the proxy name, qualified by the scope in organization mode."""
        return proxy_key(self.scope, self.proxy)

    @property
    def foreign(self) -> bool:
        """The log group is not an RDS Proxy's (``/aws/rds/proxy/<name>``)."""
        return not proxy_name(self.log_group)[1]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one invocation did; the handler turns it into log keys and metrics."""

    delivery: Delivery
    batch_id: str | None = None  # None for a control message
    tally: Tally | None = None
    applied: ApplyResult | None = None  # None when there was nothing to write

    # What this invocation newly wrote, for its metrics: a redelivered batch counts nothing again.

    @property
    def pins_by_reason(self) -> dict[tuple[str, Kind, str], int]:
        """(proxy, kind, reason) -> lines newly counted, in key order."""
        return dict(sorted(self.applied.applied_counts.items())) if self.applied is not None else {}

    def new_events(self, kind: Kind) -> int:
        """Lines of this kind newly counted (pinned or would-pin), over every proxy and reason."""
        return sum(n for (_, k, _), n in self.pins_by_reason.items() if k is kind)

    @property
    def new_unparsed(self) -> int:
        """Pin-like lines the parser could not read, newly counted."""
        return sum(self.applied.applied_unparsed.values()) if self.applied is not None else 0

    @property
    def redelivered(self) -> bool:
        """An earlier delivery of this batch had already been applied."""
        return self.applied is not None and self.applied.redelivered


def proxy_name(log_group: str) -> tuple[str, bool]:
    """(proxy name, is an RDS Proxy log group). Other groups: their last path segment."""
    name = _proxy_part(log_group)
    if name is not None and RDS_PROXY_NAME.fullmatch(name):
        return name, True
    segments = [s for s in log_group.split("/") if s]
    return (segments[-1] if segments else log_group), False


def _proxy_part(log_group: str) -> str | None:
    """What follows the proxy prefix (a trailing slash tolerated), or None for another group."""
    if not log_group.startswith(PROXY_LOG_GROUP_PREFIX):
        return None
    return log_group[len(PROXY_LOG_GROUP_PREFIX) :].removesuffix("/")


def _check_log_group(log_group: str) -> None:
    """The counts are keyed by the proxy name it yields: it must be one (never empty, never odd)."""
    name = _proxy_part(log_group)
    if name is not None:
        if not RDS_PROXY_NAME.fullmatch(name):
            shown = name if len(name) <= 80 else name[:79] + "…"
            raise InvalidPayload(
                f"logGroup {PROXY_LOG_GROUP_PREFIX}{shown!r} does not end in an RDS proxy name "
                "(1-63 letters, digits and hyphens, starting with a letter, no double or trailing hyphen)"
            )
    elif not any(log_group.split("/")):
        raise InvalidPayload(f"logGroup {log_group!r} has no name segment to count its lines under")


def decode(event: Mapping[str, Any]) -> Delivery:
    """Decode a subscription invocation event; raise :class:`InvalidPayload` saying what is wrong."""
    if not isinstance(event, Mapping):
        raise InvalidPayload(f"event is a {type(event).__name__}, not an object with an 'awslogs' key")
    awslogs = event.get("awslogs")
    if not isinstance(awslogs, Mapping) or not isinstance(awslogs.get("data"), str):
        raise InvalidPayload("event has no 'awslogs.data' string: not a CloudWatch Logs subscription event")
    wrapped = CloudWatchLogsEvent(dict(event))
    try:
        data = wrapped.parse_logs_data().raw_event
    except binascii.Error as exc:
        raise InvalidPayload(f"awslogs.data is not valid base64: {exc}") from None
    except zlib.error as exc:
        raise InvalidPayload(f"awslogs.data is not gzip data: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InvalidPayload(f"awslogs.data does not decompress to UTF-8 text: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise InvalidPayload(f"awslogs.data does not hold JSON: {exc}") from None
    except RecursionError:
        raise InvalidPayload("awslogs.data holds JSON nested too deeply to be a subscription payload") from None
    except ValueError as exc:  # e.g. non-ASCII characters, which base64 decoding rejects outright
        raise InvalidPayload(f"awslogs.data is not valid base64: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidPayload(f"awslogs.data holds a JSON {type(data).__name__}, not an object")
    message_type = data.get("messageType")
    if message_type == CONTROL_MESSAGE:
        return Delivery(CONTROL_MESSAGE, str(data.get("logGroup") or ""), str(data.get("logStream") or ""), None, [])
    if message_type != DATA_MESSAGE:
        raise InvalidPayload(f"messageType is {message_type!r}; expected {DATA_MESSAGE!r} or {CONTROL_MESSAGE!r}")
    log_group, log_stream, events = data.get("logGroup"), data.get("logStream"), data.get("logEvents")
    if not isinstance(log_group, str) or not log_group:
        raise InvalidPayload("logGroup is missing or not a non-empty string")
    _check_log_group(log_group)
    if not isinstance(log_stream, str):
        raise InvalidPayload("logStream is missing or not a string")
    if not isinstance(events, list):
        raise InvalidPayload("logEvents is missing or not a list")
    owner = data.get("owner")
    filters = data.get("subscriptionFilters")
    names = tuple(f for f in filters if isinstance(f, str)) if isinstance(filters, list) else ()
    return Delivery(DATA_MESSAGE, log_group, log_stream, owner if isinstance(owner, str) else None, events, names)


def fold(delivery: Delivery) -> tuple[str, Tally]:
    """Check, parse and tally every event; returns (batch id, tally).

    The batch id is sha256 over the log group, the log stream and the ordered event ids (with a
    scope, over its account and Region first): the same delivery always gets the same id (see
    :mod:`pinwatch.store.summary` for what that covers). Every key is the delivery's :attr:`~Delivery.key`.

    Hot path. A pin line's reason code, reason text and digest depend only on which pin phrase it
    holds and on the text from ``Reason:`` on; the rest (timestamp, tags, connection ids) differs on
    every line and is not needed for counting. So the loop over lines only groups their times by
    (phrase, reason tail); after it, each distinct tail is read once (:func:`~pinwatch.parse.pin_reason`,
    what :func:`~pinwatch.parse.parse_message` reads it with) and tallied with all its lines, per UTC
    hour. Lines without a pin phrase are parsed in full. Equivalence with the parser is a tested
    property, including batches where every line has its own statement.
    """
    proxy = delivery.key  # once per batch: the loop below only passes it on
    tally = Tally()
    events = delivery.events
    alone: list[int] = []  # times of the lines counted on their own (not through a tail group)
    # Per pin phrase: reason tail -> the timestamps of the lines that share it (one read for all of
    # them, after the loop). Only this runs per line; everything else runs per distinct tail.
    pin_times: dict[str, list[int]] = {}
    would_times: dict[str, list[int]] = {}
    try:
        for entry in events:
            ts = entry["timestamp"]
            message = entry["message"]
            # Only the timestamp is checked here (it feeds arithmetic); a message that is not a string
            # fails on find() and an id that is missing or not one fails the join below, all caught and explained.
            if type(ts) is not int or not 0 <= ts <= MAX_TIMESTAMP_MS:
                raise TypeError
            memo = pin_times
            phrase_at = message.find(PIN_PHRASE)
            if phrase_at >= 0:
                phrase_at += _PIN_LEN
            else:
                memo = would_times
                phrase_at = message.find(WOULD_PIN_PHRASE)
                if phrase_at < 0:
                    alone.append(ts)
                    _add_record(tally, proxy, parse_message(message, ts), ts)
                    continue
                phrase_at += _WOULD_LEN
            # The reason starts at the first "Reason:" after the phrase (neither phrase contains one).
            reason_at = message.find(REASON_MARK, phrase_at)
            tail = message[reason_at:] if reason_at >= 0 else ""
            times = memo.get(tail)
            if times is not None:
                times.append(ts)
            elif len(tail) <= _MEMO_KEY_MAX_CHARS:
                memo[tail] = [ts]
            else:  # a huge digest (rare): read on its own rather than kept as a key
                alone.append(ts)
                reason_text, digest, reason = pin_reason(tail)
                kind = Kind.PINNED if memo is pin_times else Kind.WOULD_PIN
                tally.add_reason(proxy, kind, reason, ts, reason_text, digest)
        joined_ids = "\n".join(map(_ID, events))
    except (KeyError, TypeError, AttributeError):
        _raise_for_bad_event(delivery.events)
        raise  # not caused by the payload: a bug, let it surface as it is
    for kind, memo in ((Kind.PINNED, pin_times), (Kind.WOULD_PIN, would_times)):
        if memo:
            tally.add_groups(proxy, kind, _groups(memo))
    if events:  # every line is in `alone` or in an aggregate: their bounds are the batch's
        reasons = tally.reasons
        first_ms = min(alone + [a.first_ms for a in reasons])
        last_ms = max(alone + [a.last_ms for a in reasons])
        tally.seen(proxy, first_ms, last_ms, len(events), delivery.log_group)
    return _batch_id(delivery.log_group, delivery.log_stream, joined_ids, delivery.scope), tally


def _raise_for_bad_event(events: list[Any]) -> None:
    """Raise :class:`InvalidPayload` for the first malformed log event (the slow path of :func:`fold`)."""
    for index, entry in enumerate(events):
        if not isinstance(entry, Mapping) or not {"id", "timestamp", "message"} <= entry.keys():
            raise InvalidPayload(f"logEvents[{index}] lacks one of 'id', 'timestamp', 'message'")
        if type(entry["id"]) is not str or type(entry["timestamp"]) is not int or type(entry["message"]) is not str:
            raise InvalidPayload(
                f"logEvents[{index}] has the wrong types: id must be a string, timestamp an integer (epoch ms) "
                "and message a string"
            )
        if not 0 <= entry["timestamp"] <= MAX_TIMESTAMP_MS:
            raise InvalidPayload(
                f"logEvents[{index}].timestamp {entry['timestamp']} is not epoch milliseconds between 1970 and 9999"
            )


def _groups(memo: dict[str, list[int]]) -> Iterator[ReasonGroup]:
    """(reason, count, first, last, reason text, digest) per reason tail and UTC hour of its lines."""
    # More distinct tails than the cross-batch cache holds would evict each other before any reuse.
    read = pin_reason if len(memo) <= PIN_REASON_CACHE_SIZE else read_pin_reason
    # Latest first (a stream comes in time order): once a key holds its latest digests, older ones
    # are passed over at a glance (see ReasonAggregate).
    for tail, times in reversed(memo.items()):
        reason_text, digest, reason = read(tail)
        if len(times) == 1:  # the usual case when statements vary
            ts = times[0]
            yield reason, 1, ts, ts, reason_text, digest
            continue
        times.sort()  # already in order for a normal stream: linear
        first, last = times[0], times[-1]
        if first // HOUR_MS == last // HOUR_MS:
            yield reason, len(times), first, last, reason_text, digest
        else:
            for count, first, last in _per_hour(times):
                yield reason, count, first, last, reason_text, digest


def _per_hour(times: list[int]) -> list[tuple[int, int, int]]:
    """(count, first, last) per UTC hour of sorted timestamps, found by bisection at hour boundaries."""
    out = []
    start = 0
    while start < len(times):
        boundary = (times[start] // HOUR_MS + 1) * HOUR_MS
        end = bisect_left(times, boundary, start)
        out.append((end - start, times[start], times[end - 1]))
        start = end
    return out


def _add_record(tally: Tally, proxy: str, record: LogRecord, ts: int) -> None:
    kind = record.kind
    if kind is Kind.OTHER:
        tally.other_lines += 1
    elif kind is Kind.UNPARSED:
        tally.add_unparsed(proxy, ts, record.raw)
    else:
        tally.add_reason(proxy, kind, record.reason or "unknown", ts, record.reason_text, record.digest)


def batch_id(delivery: Delivery) -> str:
    """The deterministic id of a delivery, as :func:`fold` computes it (e.g. to find its markers)."""
    ids = "\n".join(str(e.get("id", "")) if isinstance(e, Mapping) else "" for e in delivery.events)
    return _batch_id(delivery.log_group, delivery.log_stream, ids, delivery.scope)


def _batch_id(log_group: str, log_stream: str, joined_ids: str, scope: Scope | None = None) -> str:
    text = f"{log_group}\n{log_stream}\n{joined_ids}"
    if scope is not None:
        # Log group and stream names repeat across accounts (every member's /aws/rds/proxy/orders-db);
        # the owner and Region make the id, and so the markers, the member's own.
        text = f"{scope.account}\n{scope.region}\n{text}"
    # surrogatepass: JSON may escape a lone surrogate into an id; the id must still hash, the same way every time.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def ingest_delivery(delivery: Delivery, store: BatchStore, now_ms: int) -> IngestResult:
    """Fold a decoded delivery and apply it to `store` exactly once. Control messages write nothing."""
    if delivery.is_control:
        return IngestResult(delivery)
    batch, tally = fold(delivery)
    if tally.is_empty():
        return IngestResult(delivery, batch, tally)
    return IngestResult(delivery, batch, tally, store.apply_batch(batch, tally, now_ms))


def ingest(event: Mapping[str, Any], store: BatchStore, now_ms: int) -> IngestResult:
    """Decode, fold and apply one subscription invocation event."""
    return ingest_delivery(decode(event), store, now_ms)
