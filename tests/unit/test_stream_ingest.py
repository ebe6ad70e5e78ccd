"""Organization mode: a Kinesis record of the central stream read as a member's scoped delivery."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from pinwatch.ingest import InvalidPayload, batch_id, decode, fold, ingest_delivery
from pinwatch.local.lambda_harness import encode_subscription
from pinwatch.local.log_destination import control_document, destination_document, encode
from pinwatch.local.stream_mapping import kinesis_record
from pinwatch.records import Kind
from pinwatch.scope import Scope
from pinwatch.stream_ingest import filter_region, scoped_delivery
from tests.payloads import log_events
from tests.support.fakes import RecordingStore

T0 = 1_795_600_800_000
GROUP, STREAM = "/aws/rds/proxy/orders-db", "proxy-orders-db-1"
A, B = "111111111111", "222222222222"


def record(document: dict[str, Any], *, region: str = "us-east-1", seq: str = "1") -> KinesisStreamRecord:
    return KinesisStreamRecord(kinesis_record(encode(document), sequence_number=seq, region=region))


def member_document(account: str, region: str, events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return destination_document(account, region, GROUP, STREAM, events or log_events(20, T0, 60_000))


def test_given_a_member_record_when_read_then_the_scope_is_the_owner_and_the_region_of_the_filter_name() -> None:
    delivery = scoped_delivery(record(member_document(A, "eu-west-1"), region="us-east-1"))

    assert delivery.scope == Scope(A, "eu-west-1")
    assert (delivery.log_group, delivery.log_stream, len(delivery.events)) == (GROUP, STREAM, 20)
    assert delivery.key == f"{A}:eu-west-1:orders-db"


def test_given_no_pinwatch_filter_name_when_read_then_the_region_is_the_records_stream_region() -> None:
    document = {**member_document(A, "eu-west-1"), "subscriptionFilters": ["team-archive", "pinwatch-pins"]}

    delivery = scoped_delivery(record(document, region="ap-southeast-2"))

    assert delivery.scope == Scope(A, "ap-southeast-2")


def test_given_several_filter_names_when_the_region_is_read_then_the_first_pinwatch_region_wins() -> None:
    assert filter_region(("archive", "pinwatch-us-gov-west-1", "pinwatch-eu-west-1")) == "us-gov-west-1"
    assert filter_region(("pinwatch-", "pinwatch-Eu-West-1", "xpinwatch-eu-west-1")) is None


def test_given_a_scoped_delivery_when_folded_then_every_key_is_qualified_and_the_counts_are_the_unscoped_ones() -> None:
    document = member_document(A, "eu-west-1")
    scoped = scoped_delivery(record(document))
    plain = decode(encode_subscription(document))

    _, scoped_tally = fold(scoped)
    _, plain_tally = fold(plain)

    key = f"{A}:eu-west-1:orders-db"
    assert {a.proxy for a in scoped_tally.reasons} == {key}
    assert [p.proxy for p in scoped_tally.proxies] == [key]
    assert [(a.hour, a.kind, a.reason, a.count) for a in scoped_tally.reasons] == [
        (a.hour, a.kind, a.reason, a.count) for a in plain_tally.reasons
    ]
    assert scoped_tally.count(Kind.PINNED) == plain_tally.count(Kind.PINNED) > 0


def test_given_two_accounts_with_the_same_group_stream_and_events_when_folded_then_their_batch_ids_differ() -> None:
    events = log_events(10, T0, 60_000)
    ids = {
        fold(scoped_delivery(record(member_document(account, region, events))))[0]
        for account, region in ((A, "us-east-1"), (B, "us-east-1"), (A, "eu-west-1"))
    }
    unscoped = fold(decode(encode_subscription(member_document(A, "us-east-1", events))))[0]

    assert len(ids) == 3
    assert unscoped not in ids


def test_given_a_scoped_delivery_when_its_id_is_computed_then_it_is_the_one_fold_uses() -> None:
    delivery = scoped_delivery(record(member_document(B, "eu-central-1")))

    assert batch_id(delivery) == fold(delivery)[0]


def test_given_a_control_message_when_read_and_ingested_then_nothing_is_written() -> None:
    store = RecordingStore()
    delivery = scoped_delivery(record(control_document("arn:aws:logs:us-east-1:999999999999:destination:pinwatch", T0)))

    result = ingest_delivery(delivery, store, now_ms=T0)

    assert delivery.is_control
    assert delivery.scope is None
    assert (result.batch_id, result.applied, store.calls) == (None, None, [])


@pytest.mark.parametrize("owner", ["CloudwatchLogs", "12345", "1111111111111", "", None, 111111111111])
def test_given_an_owner_that_is_no_account_id_when_read_then_it_is_an_invalid_payload(owner: Any) -> None:
    document = {**member_document(A, "eu-west-1"), "owner": owner}

    with pytest.raises(InvalidPayload, match="owner"):
        scoped_delivery(record(document))


def test_given_no_region_anywhere_when_read_then_it_is_an_invalid_payload() -> None:
    document = {**member_document(A, "eu-west-1"), "subscriptionFilters": []}

    with pytest.raises(InvalidPayload, match="Region"):
        scoped_delivery(record(document, region=""))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"not gzip at all", "gzip"),
        (gzip.compress(b"{not json", mtime=0), "JSON"),
        (gzip.compress(b"[1, 2]", mtime=0), "not an object"),
    ],
)
def test_given_undecodable_data_when_read_then_it_is_an_invalid_payload_saying_why(data: bytes, problem: str) -> None:
    raw = KinesisStreamRecord(kinesis_record(data, sequence_number="7"))

    with pytest.raises(InvalidPayload, match=problem):
        scoped_delivery(raw)
