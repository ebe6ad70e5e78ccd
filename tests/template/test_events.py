"""The sample invocation events in events/: up to date with their sources, and realistic.

A subscription only delivers lines its filter pattern matches, so every line of a DATA_MESSAGE
sample must match the template's pattern and be a line the parser counts; otherwise tests and the
demo would exercise payloads CloudWatch Logs never sends.
"""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import CloudWatchLogsEvent

from pinwatch.ingest import decode
from pinwatch.local.template import load_template
from pinwatch.parse import parse_message
from pinwatch.records import Kind
from tests.template.cfn import filter_pattern_matches

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("events_generate", EVENTS / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _load_generator()


def _sources() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted((EVENTS / "src").glob("*.json"))}


def _data_messages() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _sources().items() if s.get("messageType") == "DATA_MESSAGE"}


def _committed(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return loaded


def _filter_pattern() -> str:
    pattern: str = load_template()["Mappings"]["Pins"]["Filter"]["Pattern"]
    return pattern


def test_given_the_sources_when_generated_then_the_committed_events_match_them() -> None:
    assert generate.stale() == []
    assert {p.name for p in EVENTS.glob("*.json")} == set(_sources())


def test_given_a_stale_event_when_checked_then_the_generator_reports_it(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "logs-x.json").write_text(json.dumps({"messageType": "DATA_MESSAGE", "logEvents": []}))
    (tmp_path / "logs-x.json").write_text(
        json.dumps(generate.build_event({"messageType": "DATA_MESSAGE", "logEvents": [{"id": "1"}]}))
    )

    assert generate.stale(tmp_path, tmp_path / "src") == ["logs-x.json"]
    (tmp_path / "logs-x.json").unlink()
    assert generate.stale(tmp_path, tmp_path / "src") == ["logs-x.json"]


@pytest.mark.parametrize("name", [*sorted(_data_messages()), "logs-control.json"])
def test_given_a_logs_source_when_wrapped_then_it_is_deterministic_gzip_that_decodes_to_the_source(name: str) -> None:
    source = _sources()[name]

    first, second = generate.build_event(source), generate.build_event(source)
    assert first == second
    compressed = base64.b64decode(first["awslogs"]["data"])
    assert compressed[4:8] == b"\0\0\0\0"  # gzip MTIME: no build time baked in
    assert json.loads(gzip.decompress(compressed)) == source
    # The decoder the ingest uses reads the committed file the same way.
    parsed = CloudWatchLogsEvent(_committed(name)).parse_logs_data()
    assert parsed.message_type == source["messageType"]
    assert [e.message for e in parsed.log_events] == [e["message"] for e in source["logEvents"]]


@pytest.mark.parametrize("name", sorted(_data_messages()))
def test_given_a_data_message_then_it_is_one_proxy_log_group_with_only_lines_the_filter_delivers_and_the_parser_counts(
    name: str,
) -> None:
    source = _data_messages()[name]
    pattern = _filter_pattern()

    delivery = decode(_committed(name))
    assert source["logGroup"] == f"/aws/rds/proxy/{delivery.proxy}"
    assert not delivery.foreign
    ids = [e["id"] for e in source["logEvents"]]
    assert len(ids) == len(set(ids))
    for event in source["logEvents"]:
        assert filter_pattern_matches(pattern, event["message"]), event["message"]
        record = parse_message(event["message"], event["timestamp"])
        assert record.kind in (Kind.PINNED, Kind.WOULD_PIN), event["message"]
        assert record.timestamp_ms == event["timestamp"]


def test_given_all_data_messages_then_they_cover_several_proxies_pins_and_would_pins() -> None:
    messages = _data_messages().values()
    kinds = {parse_message(e["message"]).kind for m in messages for e in m["logEvents"]}

    assert len({m["logGroup"] for m in messages}) >= 2
    assert kinds == {Kind.PINNED, Kind.WOULD_PIN}


@pytest.mark.parametrize(
    "line",
    [
        "2023-09-06T08:28:13.685Z [INFO] [proxyEndpoint=default] [clientConnection=51706963] A new client connected from 10.0.10.240:56779.",
        "2023-09-06T08:28:13.690Z [INFO] [dbConnection=973587044] A TCP connection was established from the proxy at 10.0.11.38:15569 to the database at 10.0.10.246:5432.",
        "2023-09-06T08:29:01.002Z [INFO] [clientConnection=51706963] The client connection closed. Reason: The TCP channel was closed by either the client or the proxy.",
        "2023-09-06T08:29:01.004Z [INFO] [dbConnection=973587044] The database connection closed. Reason: The client connection that borrowed this database connection from the connection pool was closed in the middle of a request.",
        "2023-09-06T08:29:01.009Z [INFO] [dbConnection=973587044] The database connection was released to the connection pool upon session reset.",
        # Filter patterns are case-sensitive, like the parser.
        "THE CLIENT SESSION WAS PINNED TO THE DATABASE CONNECTION [dbConnection=1]",
    ],
)
def test_given_a_proxy_line_that_is_not_a_pin_when_filtered_then_it_is_not_delivered(line: str) -> None:
    assert not filter_pattern_matches(_filter_pattern(), line)
    assert parse_message(line).kind not in (Kind.PINNED, Kind.WOULD_PIN)


def test_given_the_control_message_when_decoded_then_the_ingest_sees_a_control_message() -> None:
    delivery = decode(_committed("logs-control.json"))

    assert delivery.is_control
    assert delivery.log_group == ""


def test_given_the_scheduled_event_then_it_is_an_eventbridge_scheduled_event_copied_unchanged() -> None:
    event = _committed("schedule.json")

    assert event == _sources()["schedule.json"]
    assert (event["source"], event["detail-type"]) == ("aws.events", "Scheduled Event")
    assert event["resources"][0].startswith("arn:aws:events:")
