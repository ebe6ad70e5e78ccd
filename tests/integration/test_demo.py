"""`pinwatch demo`: the incident replayed through the real handlers on moto server and DynamoDB Local.

One replay (16 simulated minutes) is shared by the assertions on what it delivered and stored; the
CLI runs once in process (the moto fallback for the table) and once as a real process with
``--keep``, whose printed commands are then used against the emulation it left running.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pinwatch.cli import main
from pinwatch.local.demo import (
    AWS_VARIABLES_TO_CLEAR,
    DemoResult,
    Replay,
    create_stack,
    emulation,
    local_functions,
    patched_environ,
    verify,
)
from pinwatch.local.incident import MIN_MINUTES, Incident
from pinwatch.local.slack_receiver import slack_receiver
from pinwatch.records import Kind
from pinwatch.store.summary import SummaryStore
from pinwatch.timebase import MINUTE_MS

pytestmark = pytest.mark.integration

MINUTES = MIN_MINUTES


@dataclasses.dataclass
class Replayed:
    result: DemoResult
    totals: dict[str, int]  # running pin totals per reason, read back by the test
    hourly: Counter[tuple[Kind, str | None]]


@pytest.fixture(scope="module")
def replayed() -> Iterator[Replayed]:
    proxy = f"demo-{uuid.uuid4().hex[:8]}"
    with (
        emulation() as endpoints,
        slack_receiver() as (url, receiver),
        patched_environ(endpoints.aws_environment(), AWS_VARIABLES_TO_CLEAR),
    ):
        assert endpoints.dynamodb_engine == "DynamoDB Local"
        stack = create_stack(endpoints, proxy, url)
        now_ms = int(time.time() * 1000)
        incident = Incident(proxy, now_ms - (MINUTES + 1) * MINUTE_MS, MINUTES)
        with local_functions(stack) as functions:
            result = Replay(stack, functions, incident, receiver).run()
        client = boto3.client("dynamodb", endpoint_url=endpoints.dynamodb, region_name=endpoints.region)
        store = SummaryStore(client, stack.table)
        totals = {r.reason: r.count for r in store.reason_totals(proxy)}
        hourly: Counter[tuple[Kind, str | None]] = Counter()
        for item in store.hourly(proxy, incident.start_ms, incident.end_ms):
            hourly[(item.kind, item.reason)] += item.count
        yield Replayed(result, totals, hourly)


def _slack_text(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False)


def test_given_the_incident_when_replayed_then_a_critical_alert_with_the_exhaustion_eta_reaches_slack_and_sns(
    replayed: Replayed,
) -> None:
    result = replayed.result
    fix = result.incident.fix
    critical_slack = [
        m for m in result.slack if "CRITICAL" in m.payload["blocks"][0]["text"]["text"] and m.minute < fix
    ]
    assert any(re.search(r"exhausted in ~\d+ min", _slack_text(m.payload)) for m in critical_slack)
    assert any("<!here>" in m.payload["text"] for m in critical_slack)  # a new critical pages the channel
    critical_sns = [m for m in result.sns if m.attributes["severity"] == "critical" and m.minute < fix]
    assert any(re.search(r"Pool exhausted in\s+~\d+ min", m.message) for m in critical_sns)
    assert all(m.subject.startswith("CRITICAL - ") for m in critical_sns)


def test_given_the_incident_when_replayed_then_every_alert_resolves_after_the_fix_on_both_channels(
    replayed: Replayed,
) -> None:
    result = replayed.result
    fix = result.incident.fix
    opened = {a.rule for a in result.alerts if a.transition == "new"}
    resolved = {a.rule for a in result.alerts if a.transition == "resolved"}
    assert opened
    assert opened == resolved
    assert min(a.minute for a in result.alerts if a.transition == "resolved") >= fix
    assert any("RESOLVED" in m.payload["blocks"][0]["text"]["text"] for m in result.slack if m.minute >= fix)
    assert {m.attributes["transition"] for m in result.sns if m.minute >= fix} == {"resolved"}
    assert all(status == "accepted" for a in result.alerts for status in a.channels.values())


def test_given_the_incident_when_replayed_then_the_table_counts_equal_the_replayed_lines_exactly(
    replayed: Replayed,
) -> None:
    # What the proxy wrote: pin lines only once reason capture had switched enhanced logging on.
    lines = replayed.result.replayed_lines
    pins = Counter(line.reason for line in lines if line.kind is Kind.PINNED)
    assert replayed.totals == dict(pins)
    # Pins, would-pins and unparsed lines per hour; connects and closes are counted, not stored.
    expected = Counter((line.kind, line.reason) for line in lines if line.kind is not Kind.OTHER)
    assert replayed.hourly == expected


def test_given_a_payload_delivered_twice_when_replayed_then_the_second_delivery_writes_nothing(
    replayed: Replayed,
) -> None:
    result = replayed.result
    ((first, again),) = result.redeliveries
    assert first.summary["batchId"] == again.summary["batchId"]
    assert first.summary["pinned"] > 0
    assert (first.summary["appliedChunks"], again.summary["appliedChunks"]) == (1, 0)
    assert again.summary["duplicateChunks"] == 1
    pins = sum(1 for line in result.replayed_lines if line.kind is Kind.PINNED)
    assert result.emf_pin_events == pins  # the metrics are as exact as the table


def test_given_the_simulated_clock_when_the_check_runs_then_each_message_is_stamped_with_its_simulated_minute(
    replayed: Replayed,
) -> None:
    result = replayed.result
    assert len(result.ticks) == MINUTES
    for message in result.slack:
        footer = message.payload["blocks"][-1]["elements"][0]["text"]
        checked = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(message.at_ms / 1000))
        assert f"checked {checked}" in footer
        assert message.at_ms == result.incident[message.minute].end_ms + 5_000


def test_given_the_replay_when_verified_then_every_stage_passes_and_a_missing_channel_fails_its_stage(
    replayed: Replayed,
) -> None:
    result = replayed.result
    assert result.ok, [s for s in result.stages if not s.ok]
    without_slack = dataclasses.replace(result, ticks=[dataclasses.replace(t, slack=()) for t in result.ticks])
    failed = [s.name for s in verify(without_slack) if not s.ok]
    assert failed == [
        "critical alert with an exhaustion ETA on Slack",
        "first alert: reasons unknown, reason capture started",
        "a later alert names the culprit statement and its fix",
        "every alert resolved after the fix, on both channels",
    ]


def test_given_logging_off_at_the_start_when_replayed_then_capture_switches_it_on_for_the_incident_and_off_after(
    replayed: Replayed,
) -> None:
    result = replayed.result
    started = [t.minute.index for t in result.ticks if t.capture is not None and t.capture.status == "started"]
    stopped = [t.minute.index for t in result.ticks if t.capture is not None and t.capture.status == "stopped"]
    assert len(started) == 1
    assert len(stopped) == 1
    assert result.incident.onset <= started[0] < stopped[0]
    assert stopped[0] >= result.incident.fix
    # The proxy wrote no pin line while logging was off, and every one while it was on.
    for tick in result.ticks:
        written = [line for line in result.incident[tick.minute.index].lines if line.kind is Kind.PINNED]
        assert tick.withheld == (0 if tick.debug_logging else len(written) + _would_pins(result, tick.minute.index))
        assert tick.debug_logging is (started[0] < tick.minute.index <= stopped[0])
    assert result.debug_logging_after is False


def _would_pins(result: DemoResult, minute: int) -> int:
    return sum(1 for line in result.incident[minute].lines if line.kind is Kind.WOULD_PIN)


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")


@pytest.mark.usefixtures("wide")
def test_given_no_dynamodb_local_when_the_demo_command_runs_then_it_says_moto_serves_the_table_and_passes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "functions.jsonl"
    proxy = f"demo-{uuid.uuid4().hex[:8]}"
    code = main(
        ["demo", "--minutes", str(MIN_MINUTES), "--proxy", proxy, "--no-dynamodb-local", "--function-log", str(log)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Summary table on moto's DynamoDB" in out
    assert re.search(r"Slack: \d+ message\(s\), as the local webhook receiver got them", out)
    assert re.search(r"SNS: \d+ message\(s\), as the SQS subscriber got them", out)
    assert f"{proxy}: pins by reason" in out  # the final `pinwatch report`
    assert "demo passed" in out
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    emf = [doc for doc in lines if "_aws" in doc]
    assert any("PinEvents" in doc and "ProxyName" not in doc for doc in emf)  # fleet-level series
    assert any(doc.get("message") == "Pin counts" and doc.get("proxy") == proxy for doc in lines)
    # The pinned-connections alarm's contributor event ran the check, between sweeps.
    triggers = {doc.get("trigger") for doc in lines if doc.get("message") == "Check complete"}
    assert f"alarm {proxy}-pinned-connections contributor in ALARM" in triggers
    assert "hot proxies only" in triggers


def test_given_keep_when_the_demo_finishes_then_its_printed_commands_work_until_interrupted(tmp_path: Path) -> None:
    proxy = f"demo-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    command = [str(Path(sys.executable).parent / "pinwatch"), "demo", "--keep", "--minutes", str(MIN_MINUTES)]
    proc = subprocess.Popen(
        [*command, "--proxy", proxy], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "press Ctrl-C" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(180), "".join(lines)
        time.sleep(0.5)  # the endpoint lines follow the rule
        text = "".join(lines)
        report = re.search(r"^pinwatch report --table (\S+) --endpoint-url (\S+)", text, re.MULTILINE)
        assert report, text
        table, endpoint = report.groups()
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        totals = SummaryStore(client, table).reason_totals(proxy)
        assert {r.reason for r in totals} == {"session_settings", "prepared_statement", "large_statement"}
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
        reader.join(5)
    assert code == 0, "".join(lines)
    assert "Stopping the emulation." in "".join(lines)
