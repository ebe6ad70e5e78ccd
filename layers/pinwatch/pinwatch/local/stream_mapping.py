"""What a Lambda event source mapping on a Kinesis stream does, against moto's Kinesis.

:class:`StreamMapping` reads every shard of a stream (``GetShardIterator`` / ``GetRecords``),
builds the event Lambda invokes a function with (:func:`kinesis_event`, the shape of "Using
Lambda with Kinesis Data Streams", Lambda Developer Guide), invokes the handler in process, and
then behaves as the mapping the template configures (docs/organization.md):

* ``ReportBatchItemFailures``: the function answers ``{"batchItemFailures": [{"itemIdentifier":
  <sequence number>}]}``; the records from the lowest failed sequence number on are retried,
  those before it are checkpointed ("Configuring partial batch response with Kinesis Data Streams
  and Lambda");
* ``BisectBatchOnFunctionError``: a function error splits the batch in two and retries each half;
* ``MaximumRetryAttempts``: a batch still failing after that many retries is given up and its
  shard, sequence range and error are recorded as the on-failure destination would keep them
  (:class:`OnFailureRecord`), and the mapping moves on;
* at-least-once: a retry re-sends records the function may already have applied.

Records come in sequence order per shard; one shard is read at a time (``ParallelizationFactor`` 1).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pinwatch.local.lambda_harness import FUNCTIONS_DIR, REGION, LambdaContext

PIN_STREAM_APP = FUNCTIONS_DIR / "pin_stream" / "app.py"
STREAM_FUNCTION_NAME = "pinwatch-pin-stream"
EVENT_SOURCE = "aws:kinesis"
EVENT_NAME = "aws:kinesis:record"
INVOKE_IDENTITY = "arn:aws:iam::123456789012:role/pinwatch-pin-stream-role"

# Kinesis event -> the function's response; raises for a function error.
Invoke = Callable[[dict[str, Any]], Any]


def stream_context() -> LambdaContext:
    """A context of the stream ingest function."""
    return LambdaContext(STREAM_FUNCTION_NAME)


def kinesis_record(
    data: bytes | str,
    *,
    sequence_number: str,
    shard_id: str = "shardId-000000000000",
    partition_key: str = "pinwatch",
    stream_arn: str = "arn:aws:kinesis:us-east-1:123456789012:stream/pinwatch-org-logs",
    region: str = REGION,
    arrival_s: float = 1_795_600_800.0,
) -> dict[str, Any]:
    """One entry of a Kinesis event's ``Records``, as Lambda builds it (``data`` base64-encoded)."""
    encoded = data if isinstance(data, str) else base64.b64encode(data).decode("ascii")
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence_number,
            "data": encoded,
            "approximateArrivalTimestamp": arrival_s,
        },
        "eventSource": EVENT_SOURCE,
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence_number}",
        "eventName": EVENT_NAME,
        "invokeIdentityArn": INVOKE_IDENTITY,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def kinesis_event(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The invocation event of a batch of records."""
    return {"Records": [dict(r) for r in records]}


@dataclass(frozen=True, slots=True)
class OnFailureRecord:
    """What the mapping's on-failure destination keeps for a batch it gave up on (no record data)."""

    shard_id: str
    start_sequence_number: str
    end_sequence_number: str
    batch_size: int
    condition: str  # "RetryAttemptsExhausted"
    error: str


@dataclass(slots=True)
class MappingStats:
    invocations: int = 0
    records_sent: int = 0  # records in all invocations, re-sent ones included
    function_errors: int = 0
    partial_failures: int = 0
    bisections: int = 0
    on_failure: list[OnFailureRecord] = field(default_factory=list)


class StreamMapping:
    """A Kinesis event source mapping on one stream of the moto server, invoking ``invoke``."""

    def __init__(
        self,
        kinesis_client: Any,
        stream_name: str,
        invoke: Invoke,
        *,
        batch_size: int = 100,
        maximum_retry_attempts: int = 5,
        bisect_on_function_error: bool = True,
    ) -> None:
        self._kinesis = kinesis_client
        self._stream = stream_name
        self._invoke = invoke
        self._batch_size = batch_size
        self._max_retries = maximum_retry_attempts
        self._bisect = bisect_on_function_error
        description = kinesis_client.describe_stream(StreamName=stream_name)["StreamDescription"]
        self._arn: str = description["StreamARN"]
        self._region: str = kinesis_client.meta.region_name
        # Per shard: the sequence number after which the next read starts (None: TRIM_HORIZON).
        self._checkpoints: dict[str, str | None] = {}
        self.stats = MappingStats()

    @property
    def stream_arn(self) -> str:
        return self._arn

    def poll(self) -> int:
        """Deliver every record the stream holds beyond the checkpoints; returns the records checkpointed."""
        done = 0
        shards = self._kinesis.list_shards(StreamName=self._stream)["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            while True:
                records = self._read(shard_id)
                if not records:
                    break
                done += self._deliver(shard_id, records)
        return done

    def _read(self, shard_id: str) -> list[dict[str, Any]]:
        after = self._checkpoints.get(shard_id)
        if after is None:
            iterator = self._kinesis.get_shard_iterator(
                StreamName=self._stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        else:
            iterator = self._kinesis.get_shard_iterator(
                StreamName=self._stream,
                ShardId=shard_id,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                StartingSequenceNumber=after,
            )["ShardIterator"]
        response = self._kinesis.get_records(ShardIterator=iterator, Limit=self._batch_size)
        return [self._record(shard_id, r) for r in response["Records"]]

    def _record(self, shard_id: str, record: Mapping[str, Any]) -> dict[str, Any]:
        arrival = record.get("ApproximateArrivalTimestamp")
        return kinesis_record(
            record["Data"],
            sequence_number=record["SequenceNumber"],
            shard_id=shard_id,
            partition_key=record["PartitionKey"],
            stream_arn=self._arn,
            region=self._region,
            arrival_s=arrival.timestamp() if isinstance(arrival, datetime) else float(arrival or 0),
        )

    def _deliver(self, shard_id: str, batch: list[dict[str, Any]]) -> int:
        """Deliver one batch with retries; checkpoint past it. Returns how many records it held."""
        self._attempt(shard_id, batch, retries_left=self._max_retries)
        self._checkpoints[shard_id] = batch[-1]["kinesis"]["sequenceNumber"]
        return len(batch)

    def _attempt(self, shard_id: str, records: list[dict[str, Any]], *, retries_left: int) -> None:
        """Invoke until the records are processed, split, or given up on."""
        while records:
            self.stats.invocations += 1
            self.stats.records_sent += len(records)
            error: Exception | None = None
            try:
                response = self._invoke(kinesis_event(records))
            except Exception as exc:
                error = exc
            # Handled outside the except clause: a retry's exception must not chain to this one.
            if error is not None:
                self.stats.function_errors += 1
                if retries_left <= 0:
                    self._give_up(shard_id, records, error)
                    return
                retries_left -= 1
                if self._bisect and len(records) > 1:
                    # Each half is retried on its own, with the retries this batch has left.
                    self.stats.bisections += 1
                    half = len(records) // 2
                    self._attempt(shard_id, records[:half], retries_left=retries_left)
                    self._attempt(shard_id, records[half:], retries_left=retries_left)
                    return
                continue
            failures = _failed_sequence_numbers(response)
            if not failures:
                return
            self.stats.partial_failures += 1
            # The lowest failed sequence number is the checkpoint; an identifier that is malformed or
            # not in the batch fails the whole batch.
            first = min(failures, key=lambda f: int(f) if f.isdigit() else -1)
            position = next((i for i, r in enumerate(records) if r["kinesis"]["sequenceNumber"] == first), 0)
            if retries_left <= 0:
                self._give_up(shard_id, records[position:], RuntimeError(f"batch item failure at {first}"))
                return
            retries_left -= 1
            records = records[position:]

    def _give_up(self, shard_id: str, records: list[dict[str, Any]], error: BaseException) -> None:
        self.stats.on_failure.append(
            OnFailureRecord(
                shard_id,
                records[0]["kinesis"]["sequenceNumber"],
                records[-1]["kinesis"]["sequenceNumber"],
                len(records),
                "RetryAttemptsExhausted",
                f"{type(error).__name__}: {error}",
            )
        )


def _failed_sequence_numbers(response: Any) -> list[str]:
    """The failed records' sequence numbers; ``[""]`` for a malformed entry, which fails the whole batch.

    "Lambda treats a batch as a complete failure if you return ... an empty string itemIdentifier,
    a null itemIdentifier, an itemIdentifier with a bad key name" (partial batch response page).
    """
    if not isinstance(response, Mapping):
        return []
    failures = response.get("batchItemFailures") or []
    out = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        out.append(identifier if isinstance(identifier, str) else "")
    return out
