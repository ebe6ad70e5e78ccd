"""Park an unreadable Kinesis record in an SQS queue (the stack's dead-letter queue), with its error.

The message body is the record's data exactly as Kinesis delivered it (base64), so the payload
can be decoded, fixed or put back into the stream; message attributes say why it was parked and
where it came from (stream, shard, sequence number). ``SendMessage`` errors propagate: the stream
function then reports the record as a batch item failure and Lambda retries it, and after its
retries the event source mapping's on-failure destination keeps the shard and sequence range.
A body larger than SQS accepts takes that path too.

The SQS client is injected (built by :mod:`pinwatch.wiring`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

# SQS counts attribute names and values against the message size; the error text is for people
# and needs no more than this.
ERROR_MAX_CHARS = 1024


class SqsParking:
    """:class:`pinwatch.stream_ingest.Parking` on an SQS queue."""

    def __init__(self, sqs_client: SQSClient, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    @property
    def queue_url(self) -> str:
        return self._queue_url

    def park(self, record: KinesisStreamRecord, error: str) -> None:
        kinesis = record.get("kinesis") or {}
        data = kinesis.get("data")
        event_id = str(record.get("eventID") or "")
        attributes = {
            "error": error[: ERROR_MAX_CHARS - 1] + "…" if len(error) > ERROR_MAX_CHARS else error,
            "sequenceNumber": str(kinesis.get("sequenceNumber") or ""),
            "partitionKey": str(kinesis.get("partitionKey") or ""),
            # Lambda's eventID is "<shard id>:<sequence number>".
            "shardId": event_id.partition(":")[0],
            "eventSourceARN": str(record.get("eventSourceARN") or ""),
            "awsRegion": str(record.get("awsRegion") or ""),
        }
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            # SQS rejects an empty body; a record without data is parked as its (empty) text.
            MessageBody=data if isinstance(data, str) and data else "(no data)",
            MessageAttributes=_attributes(attributes),
        )


def _attributes(values: dict[str, str]) -> dict[str, MessageAttributeValueTypeDef]:
    # SQS rejects empty attribute values: leave out what the record did not carry.
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items() if value}
