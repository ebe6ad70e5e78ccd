"""The local Lambda harness: cold starts, the context object, and subscription payloads as Lambda receives them."""

from __future__ import annotations

import base64
import gzip
import os
from pathlib import Path

import pytest

from pinwatch.ingest import decode
from pinwatch.local.lambda_harness import (
    SUBSCRIPTION_FILTER,
    HandlerNotFound,
    LambdaContext,
    check_context,
    control_event,
    decode_subscription,
    encode_subscription,
    load_handler,
    subscription_document,
)

T0 = 1_795_600_800_000
EVENTS = [
    {"id": "1", "timestamp": T0, "message": "first line"},
    {"id": "2", "timestamp": T0 + 1, "message": "second line"},
]


def test_given_a_payload_when_encoded_then_it_is_base64_gzip_json_with_no_build_time_and_decodes_back() -> None:
    document = subscription_document("/aws/rds/proxy/orders-db", "stream-1", EVENTS)

    event = encode_subscription(document)

    compressed = base64.b64decode(event["awslogs"]["data"])
    assert compressed[4:8] == b"\0\0\0\0"  # gzip MTIME 0: the same payload always encodes alike
    assert gzip.decompress(compressed).startswith(b'{"messageType":"DATA_MESSAGE"')
    assert encode_subscription(document) == event
    assert decode_subscription(event) == document


def test_given_a_subscription_event_when_the_ingest_decodes_it_then_it_reads_group_stream_owner_and_events() -> None:
    delivery = decode(encode_subscription(subscription_document("/aws/rds/proxy/orders-db", "stream-1", EVENTS)))

    assert (delivery.log_group, delivery.log_stream, delivery.proxy) == (
        "/aws/rds/proxy/orders-db",
        "stream-1",
        "orders-db",
    )
    assert delivery.owner == "123456789012"
    assert [e["message"] for e in delivery.events] == ["first line", "second line"]
    assert not delivery.is_control
    assert decode_subscription(encode_subscription({"x": 1})) == {"x": 1}  # any document, malformed ones too
    assert subscription_document("g", "s", [])["subscriptionFilters"] == [SUBSCRIPTION_FILTER]


def test_given_a_control_event_when_decoded_then_it_is_the_reachability_check_naming_the_log_group() -> None:
    event = control_event("/aws/rds/proxy/orders-db", T0)

    assert decode(event).is_control
    (line,) = decode_subscription(event)["logEvents"]
    assert line["timestamp"] == T0
    assert line["message"].endswith("for /aws/rds/proxy/orders-db")


def test_given_a_handler_file_when_loaded_twice_then_each_load_is_a_fresh_import_that_saw_the_given_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HARNESS_PROBE", raising=False)
    app = tmp_path / "probe" / "app.py"
    app.parent.mkdir()
    app.write_text("import os\nSEEN = os.environ.get('HARNESS_PROBE')\nINSTANCE = object()\n")

    first = load_handler(app, {"HARNESS_PROBE": "cold-start"})
    second = load_handler(app)

    assert (first.SEEN, second.SEEN) == ("cold-start", None)  # the variable was set for the import only
    assert "HARNESS_PROBE" not in os.environ
    assert first.INSTANCE is not second.INSTANCE
    assert first.__name__ != second.__name__


def test_given_no_handler_file_when_loaded_then_it_says_the_functions_run_from_a_source_checkout(
    tmp_path: Path,
) -> None:
    with pytest.raises(HandlerNotFound, match="source checkout"):
        load_handler(tmp_path / "missing" / "app.py")


def test_given_contexts_then_they_name_each_function_with_its_arn_and_memory() -> None:
    ingest, check = LambdaContext(), check_context()

    assert ingest.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:pinwatch-pin-ingest"
    assert (check.function_name, check.memory_limit_in_mb) == ("pinwatch-connection-check", 256)
    assert ingest.aws_request_id != LambdaContext().aws_request_id  # a request id per invocation
