"""`pinwatch demo --org`: organization mode end to end on moto server and DynamoDB Local.

One replay (the demo's 30 simulated minutes) of the paged member's incident and the healthy member's day is
shared by the assertions on what the channels received and the table holds; the expected counts
are read from the scenarios' own line labels and the table is read back here, never taken from the
demo's verdicts. The CLI runs once as a process of its own (the moto fallback for the table).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pinwatch.cli.demo import DEFAULT_MINUTES
from pinwatch.findings import Severity
from pinwatch.local.demo import AWS_VARIABLES_TO_CLEAR, emulation, patched_environ
from pinwatch.local.demo.org import (
    HEALTHY,
    ORG_REGION,
    PAGED,
    OrgDemoResult,
    OrgReplay,
    create_org_stack,
    incident_start,
    org_functions,
)
from pinwatch.local.demo.org_verdicts import verify_org
from pinwatch.local.incident import MIN_MINUTES
from pinwatch.records import Kind
from pinwatch.store.summary import SummaryStore

pytestmark = pytest.mark.integration

# The demo's default length: the paged proxy's pinning crosses a rule two minutes after its ALARM event.
MINUTES = DEFAULT_MINUTES
PROXY = "orders-db"


@dataclasses.dataclass
class Replayed:
    result: OrgDemoResult
    replay: OrgReplay
    totals: dict[str, dict[str, int]]  # proxy key -> running pin totals per reason, read back here


@pytest.fixture(scope="module")
def replayed() -> Iterator[Replayed]:
    from pinwatch.local.slack_receiver import slack_receiver

    with (
        emulation() as endpoints,
        slack_receiver() as (url, receiver),
        patched_environ(endpoints.aws_environment(), AWS_VARIABLES_TO_CLEAR),
    ):
        stack = create_org_stack(endpoints, PROXY, url)
        with org_functions(stack) as functions:
            replay = OrgReplay(stack, functions, MINUTES, incident_start(MINUTES), receiver)
            result = replay.run()
        client = boto3.client("dynamodb", endpoint_url=endpoints.dynamodb, region_name=endpoints.region)
        store = SummaryStore(client, stack.central.table)
        totals = {
            key: {r.reason: r.count for r in store.reason_totals(key)}
            for key in (HEALTHY.key(PROXY), PAGED.key(PROXY), PROXY)
        }
        yield Replayed(result, replay, totals)


def _slack_text(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False)


def _critical_slack(result: OrgDemoResult) -> list[Any]:
    return [m for m in result.slack if "CRITICAL" in m.payload["blocks"][0]["text"]["text"]]


def test_given_the_paged_member_when_replayed_then_the_critical_alert_names_its_account_and_region_on_both_channels(
    replayed: Replayed,
) -> None:
    result = replayed.result
    critical_slack = _critical_slack(result)
    assert critical_slack
    for message in critical_slack:
        assert f"({PAGED.account}, {ORG_REGION})" in message.payload["blocks"][0]["text"]["text"]
    critical_sns = [m for m in result.sns if m.attributes["severity"] == "critical"]
    assert critical_sns
    for message in critical_sns:
        assert (message.attributes["account"], message.attributes["region"]) == (PAGED.account, ORG_REGION)
        assert PAGED.account in message.subject
        assert ORG_REGION in message.subject


def test_given_the_healthy_member_when_replayed_then_it_is_checked_but_never_alerted(replayed: Replayed) -> None:
    result = replayed.result
    assert not [a for a in result.alerts if a.proxy == HEALTHY.key(PROXY)]
    assert {a.proxy for a in result.alerts} == {PAGED.key(PROXY)}
    assert not [m for m in result.slack if HEALTHY.account in _slack_text(m.payload)]
    assert not [m for m in result.sns if m.attributes.get("account") == HEALTHY.account]
    # Its alarm's contributor event brought the check to it, as the paged member's did at the release.
    events = [(t.index, e["account"], e["region"]) for t in result.ticks for e in t.contributor_events]
    assert (0, HEALTHY.account, ORG_REGION) in events
    assert (replayed.replay.incident.onset, PAGED.account, ORG_REGION) in events


def test_given_the_replay_when_the_paged_alarm_fires_then_the_key_stays_hot_and_alerts_within_two_minutes(
    replayed: Replayed,
) -> None:
    result = replayed.result
    key = PAGED.key(PROXY)
    (alarmed,) = [
        t.index
        for t in result.ticks
        for e in t.contributor_events
        if e["account"] == PAGED.account and e["detail"]["state"]["value"] == "ALARM"
    ]
    assert alarmed == replayed.replay.incident.onset
    assert result.ticks[alarmed].triggers[0] == "alarm pinwatch-pinned-connections contributor in ALARM"
    first_alert = min(a.minute for a in result.alerts if a.proxy == key)
    assert 0 <= first_alert - alarmed <= 2
    # The minutes between were scheduled runs of the hot proxies that read the key (not sweeps).
    between = result.ticks[alarmed + 1 : first_alert + 1]
    assert between, "the alert came with the event itself: this replay does not show the minutes between"
    for tick in between:
        assert key in tick.checked, tick.index
        assert tick.triggers[-1] in {"hot proxies only", "sweep (every 15 min)"}, tick.triggers
    assert any(t.triggers[-1] == "hot proxies only" for t in between)


def test_given_two_members_with_the_same_proxy_name_when_replayed_then_each_accounts_counts_are_exact_and_apart(
    replayed: Replayed,
) -> None:
    result = replayed.result
    for member, scenario in replayed.replay.scenarios:
        logged = {t.index for t in result.ticks for m in t.members if m.scope == member.scope and m.debug_logging}
        pins = Counter(
            line.reason
            for minute in scenario
            if minute.index in logged
            for line in minute.lines
            if line.kind is Kind.PINNED
        )
        assert pins
        assert replayed.totals[member.key] == dict(pins)
    assert replayed.totals[PROXY] == {}  # nothing under the bare name
    assert set(replayed.totals[HEALTHY.key(PROXY)]) < set(replayed.totals[PAGED.key(PROXY)])


def test_given_a_resent_record_and_a_throttled_write_when_replayed_then_neither_adds_anything(
    replayed: Replayed,
) -> None:
    result = replayed.result
    (resent,) = [r for r in result.records if r.resent]
    assert resent.scope == PAGED
    assert resent.batch_id is not None
    applied = [(r.applied_chunks, r.duplicate_chunks) for r, _ in result.applies(resent.batch_id) if r is not None]
    assert applied == [(1, 0), (0, 1)]
    (failed,) = [bid for bid, r, error in result.applied if r is None]
    outcomes = result.applies(failed)
    assert outcomes[0][1] is not None
    assert "ProvisionedThroughputExceededException" in outcomes[0][1]
    assert sum(r.applied_chunks for r, _ in outcomes if r is not None) == 1
    stats = result.mapping
    assert stats.partial_failures == 1
    assert stats.records_sent > len(result.records)  # the records from the failed one on came again
    assert (stats.function_errors, stats.on_failure, result.parked) == (0, [], 0)


def test_given_the_replay_when_verified_then_every_stage_passes_and_a_critical_for_the_healthy_member_fails(
    replayed: Replayed,
) -> None:
    result = replayed.result
    assert result.ok, [s for s in result.stages if not s.ok]
    alert = result.alerts[-1]  # not the first: that one times the alarm verdict
    misrouted = dataclasses.replace(alert, proxy=HEALTHY.key(PROXY), severity=Severity.CRITICAL)
    ticks = [dataclasses.replace(t, alerts=(misrouted,)) if t.index == alert.minute else t for t in result.ticks]
    failed = [s.name for s in verify_org(dataclasses.replace(result, ticks=ticks)) if not s.ok]
    assert failed == [f"the healthy account {HEALTHY.account} gets no critical alert"]
    without_slack = dataclasses.replace(result, ticks=[dataclasses.replace(t, slack=()) for t in result.ticks])
    failed = [s.name for s in verify_org(without_slack) if not s.ok]
    assert failed == [f"critical alert on Slack names account {PAGED.account} and {ORG_REGION}"]


def test_given_the_org_flag_when_the_demo_command_runs_then_it_prints_the_accounts_and_passes() -> None:
    # A process of its own, as `make demo-org` runs it: moto keeps its accounts per process, and this
    # module's replay already set up these two members in this one.
    command = [str(Path(sys.executable).parent / "pinwatch"), "demo", "--org", "--minutes", str(MIN_MINUTES)]
    env = {**os.environ, "COLUMNS": "160", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [*command, "--no-dynamodb-local"], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert re.search(rf"{PAGED.account}/{ORG_REGION} alarm contributor {PROXY} → ALARM", out)
    assert f"CRITICAL · {PROXY} ({PAGED.account}, {ORG_REGION})" in out
    # The report groups by account: each member under its own heading.
    assert re.search(rf"^Account {HEALTHY.account}", out, re.MULTILINE)
    assert re.search(rf"^Account {PAGED.account}", out, re.MULTILINE)
    assert "organization demo passed" in out


def test_given_the_replay_when_the_first_alert_is_held_back_then_the_timing_verdict_fails(
    replayed: Replayed,
) -> None:
    result = replayed.result
    assert result.ok, [s for s in result.stages if not s.ok]
    first = min(a.minute for a in result.alerts)
    # The same alerts, as if they had waited for a sweep 15 minutes on.
    late = [
        dataclasses.replace(
            t,
            alerts=tuple(dataclasses.replace(a, minute=t.index) for a in result.ticks[t.index - 15].alerts)
            if t.index >= 15
            else (),
        )
        for t in result.ticks
    ]
    failed = [s.name for s in verify_org(dataclasses.replace(result, ticks=late)) if not s.ok]
    assert "the paged account's first alert comes within 2 minutes of its alarm event" in failed
    assert min(a.minute for t in late for a in t.alerts) == first + 15
