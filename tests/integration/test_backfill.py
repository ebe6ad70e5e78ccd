"""`pinwatch backfill` against moto's CloudWatch Logs (server mode), writing to DynamoDB Local.

moto applies no filter pattern, so every page also carries the proxy's other lines: the backfill
must keep only pin and would-pin lines itself, which is what these tests count on.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from pinwatch.backfill import LOGS_RETRIES, Backfill, BackfillError, Checkpoint, LogPages, whole_hours
from pinwatch.cli import main
from pinwatch.records import Kind
from pinwatch.store.summary import SummaryStore
from tests.payloads import OTHER_LINES, PIN_BODIES, WOULD_PIN_BODIES, iso_ms, proxy_line

pytestmark = pytest.mark.integration

REGION = "us-east-1"
HOUR = 3_600_000
PAGE = 20
# What the parser must file each body under (tests/payloads.py: the verbatim shapes from real logs).
BODIES = [
    (PIN_BODIES[0], Kind.PINNED, "session_settings"),
    (PIN_BODIES[1], Kind.PINNED, "session_settings"),
    (PIN_BODIES[2], Kind.PINNED, "prepared_statement"),
    (PIN_BODIES[3], Kind.PINNED, "large_statement"),
    (WOULD_PIN_BODIES[0], Kind.WOULD_PIN, "prepared_statement"),
]


@dataclass
class History:
    proxy: str
    since_ms: int  # the first of three whole UTC hours of history
    until_ms: int
    expected: Counter[tuple[Kind, str]]  # pin and would-pin lines inside [since, until)
    events: int  # every event in the log group, inside the window or not

    @property
    def since(self) -> str:
        return iso_ms(self.since_ms)

    @property
    def until(self) -> str:
        return iso_ms(self.until_ms)


def _logs(endpoint: str, **config: Any) -> Any:
    return boto3.client("logs", endpoint_url=endpoint, region_name=REGION, config=Config(**config) if config else None)


@pytest.fixture
def history(moto_endpoint: str) -> History:
    """Three hours of a proxy's log (two streams): pins of every reason, would-pins, connects and closes."""
    proxy = f"backfill-{uuid.uuid4().hex[:8]}"
    group = f"/aws/rds/proxy/{proxy}"
    logs = _logs(moto_endpoint)
    logs.create_log_group(logGroupName=group)
    now = int(time.time() * 1000)
    since = now - now % HOUR - 5 * HOUR
    until = since + 3 * HOUR
    rnd = random.Random(11)
    expected: Counter[tuple[Kind, str]] = Counter()
    streams: dict[str, list[dict[str, Any]]] = {"instance-1": [], "instance-2": []}
    # Lines every 4 minutes over the three hours, plus some just outside them on both sides.
    for ts in range(since - 20 * 60_000, until + 20 * 60_000, 4 * 60_000):
        body, kind, reason = BODIES[(ts // 60_000) % len(BODIES)]
        other = f"{iso_ms(ts + 1)} [INFO] [clientConnection=7] {OTHER_LINES[(ts // 60_000) % len(OTHER_LINES)]}"
        stream = streams["instance-1" if rnd.random() < 0.5 else "instance-2"]
        stream.append({"timestamp": ts, "message": proxy_line(rnd, ts, body)})
        stream.append({"timestamp": ts + 1, "message": other})
        if since <= ts < until:
            expected[(kind, reason)] += 1
    for name, events in streams.items():
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        logs.put_log_events(logGroupName=group, logStreamName=name, logEvents=events)
    return History(proxy, since, until, expected, sum(len(e) for e in streams.values()))


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, dynamodb_endpoint: str) -> None:
    """The CLI's clients: Logs on moto, the table on DynamoDB Local (per-service endpoints, as boto3 reads them)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    monkeypatch.setenv("COLUMNS", "200")


def _table_counts(dynamodb_endpoint: str, table: str, history: History) -> dict[str, Counter[tuple[Kind, str]]]:
    store = SummaryStore(boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name=REGION), table)
    hourly: Counter[tuple[Kind, str]] = Counter()
    for item in store.hourly(history.proxy, history.since_ms - HOUR, history.until_ms + HOUR):
        hourly[(item.kind, item.reason or "")] += item.count
    totals: Counter[tuple[Kind, str]] = Counter(
        {(Kind.PINNED, r.reason): r.count for r in store.reason_totals(history.proxy)}
    )
    return {"hourly": hourly, "totals": totals}


def _backfill_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = main(["backfill", *args, "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result: dict[str, Any] = json.loads(captured.out)
    return result


@pytest.mark.usefixtures("aws_env")
def test_given_history_when_backfilled_read_only_then_only_pins_in_the_window_are_counted_and_nothing_written(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _backfill_json(
        capsys, "--proxy", history.proxy, "--since", history.since, "--until", history.until, "--page-size", str(PAGE)
    )
    pins = {r["reason"]: r["count"] for r in out["pins"]}
    would = {r["reason"]: r["count"] for r in out["would_pins"]}
    assert pins == {reason: n for (kind, reason), n in history.expected.items() if kind is Kind.PINNED}
    assert would == {reason: n for (kind, reason), n in history.expected.items() if kind is Kind.WOULD_PIN}
    assert out["totals"]["other"] == 0  # connects and closes are dropped like the subscription filter drops them
    backfill = out["backfill"]
    assert backfill["matched"] == sum(history.expected.values())
    assert backfill["pages"] > 3  # several pages per hour at this page size
    assert backfill["table"] is None
    assert backfill["applied_chunks"] == 0


@pytest.mark.usefixtures("aws_env")
def test_given_a_written_backfill_when_it_runs_again_then_no_count_changes(
    history: History, summary_table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--proxy", history.proxy, "--since", history.since, "--until", history.until, "--page-size", str(PAGE)]
    first = _backfill_json(capsys, *args, "--write", "--table", summary_table)["backfill"]
    after_first = _table_counts(dynamodb_endpoint, summary_table, history)
    second = _backfill_json(capsys, *args, "--write", "--table", summary_table)["backfill"]
    after_second = _table_counts(dynamodb_endpoint, summary_table, history)

    pins = Counter({key: n for key, n in history.expected.items() if key[0] is Kind.PINNED})
    assert after_first["hourly"] == history.expected
    assert after_first["totals"] == pins
    assert after_second == after_first
    assert first["applied_chunks"] > 0
    assert first["duplicate_chunks"] == 0
    assert (second["applied_chunks"], second["duplicate_chunks"]) == (0, first["applied_chunks"])
    assert (first["since"], first["until"]) == (history.since[:16] + "Z", history.until[:16] + "Z")


def _interrupt_after(client: Any, pages: int) -> None:
    """Fail every FilterLogEvents call after the first `pages` (a crash, a lost network, Ctrl-C)."""
    calls = {"n": 0}

    def fail(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] > pages:
            raise ConnectionError("injected: the run dies here")

    client.meta.events.register("before-call.cloudwatch-logs.FilterLogEvents", fail)


def _count_calls(client: Any) -> dict[str, int]:
    calls = {"n": 0}

    def count(**_: Any) -> None:
        calls["n"] += 1

    client.meta.events.register("before-call.cloudwatch-logs.FilterLogEvents", count)
    return calls


def _store(dynamodb_endpoint: str, table: str) -> SummaryStore:
    return SummaryStore(boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name=REGION), table)


def _window(history: History) -> Any:
    return whole_hours(history.since_ms, history.until_ms, int(time.time() * 1000))


@pytest.mark.parametrize("where", ["reading page k+1", "saving the checkpoint after page k"])
def test_given_an_interrupted_backfill_when_rerun_with_its_checkpoint_then_it_resumes_and_counts_exactly(
    where: str,
    history: History,
    summary_table: str,
    moto_endpoint: str,
    dynamodb_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checkpoint = tmp_path / "backfill.json"
    pages_before = 3  # inside the second hour: the rerun continues from a page token
    first_client = _logs(moto_endpoint)
    if where == "reading page k+1":
        _interrupt_after(first_client, pages_before)
    else:
        # Page k is written to the table but the run dies before recording it: the rerun reads it again.
        real_save, saves = Checkpoint.save, {"n": 0}

        def save(self: Checkpoint, path: Path) -> None:
            saves["n"] += 1
            if saves["n"] > pages_before - 1:
                raise ConnectionError("injected: the run dies here")
            real_save(self, path)

        monkeypatch.setattr(Checkpoint, "save", save)

    def backfill(client: Any) -> Backfill:
        return Backfill(
            LogPages(client, page_size=PAGE),
            history.proxy,
            store=_store(dynamodb_endpoint, summary_table),
            table=summary_table,
            checkpoint=checkpoint,
        )

    with pytest.raises(ConnectionError, match="injected"):
        backfill(first_client).run(_window(history))
    saved = Checkpoint.load(checkpoint)
    assert saved is not None
    if where == "reading page k+1":
        assert saved.next_token  # stopped inside an hour: the rerun continues from the page token
    monkeypatch.undo()  # saving works again

    second_client = _logs(moto_endpoint)
    calls = _count_calls(second_client)
    result = backfill(second_client).run(_window(history))

    done_before = pages_before if where == "reading page k+1" else pages_before - 1
    assert result.resumed_pages == done_before
    assert calls["n"] == result.pages - done_before  # resumed: the pages read before are not read again
    assert not checkpoint.exists()  # finished: a later run starts afresh
    counts = _table_counts(dynamodb_endpoint, summary_table, history)
    assert counts["hourly"] == history.expected
    assert result.analysis.pin_count == sum(n for (kind, _), n in history.expected.items() if kind is Kind.PINNED)
    assert result.duplicate_chunks == (0 if where == "reading page k+1" else 1)


def test_given_a_checkpoint_of_another_proxy_when_a_backfill_starts_then_it_refuses_to_mix_them(
    history: History,
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    checkpoint = tmp_path / "backfill.json"
    Checkpoint("/aws/rds/proxy/someone-else", history.since_ms, history.until_ms, None, history.since_ms, None).save(
        checkpoint
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    code = main(["backfill", "--proxy", history.proxy, "--since", history.since, "--checkpoint", str(checkpoint)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "belongs to another backfill (/aws/rds/proxy/someone-else" in err
    assert len(err.splitlines()) == 1


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def test_given_filter_log_events_throttled_when_backfilling_then_the_calls_are_retried_and_nothing_is_lost(
    history: History, moto_endpoint: str
) -> None:
    client = _logs(moto_endpoint, retries=dict(LOGS_RETRIES))
    throttled = {"left": 2, "sent": 0}

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        throttled["sent"] += 1
        if throttled["left"] == 0:
            return None
        throttled["left"] -= 1
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        headers = {"x-amzn-RequestId": str(uuid.uuid4()), "Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, 400, headers, _Raw(body))

    client.meta.events.register("before-send.cloudwatch-logs.FilterLogEvents", throttle)
    result = Backfill(LogPages(client, page_size=PAGE), history.proxy).run(_window(history))
    assert throttled["left"] == 0
    assert throttled["sent"] == result.pages + 2  # two throttled attempts, retried
    assert result.matched == sum(history.expected.values())


def test_given_a_proxy_without_a_log_group_when_backfilled_then_it_exits_2_with_one_line_naming_the_group(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    code = main(["backfill", "--proxy", "never-created", "--since", "2h"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("pinwatch backfill: error: log group /aws/rds/proxy/never-created not found in region")
    assert len(err.splitlines()) == 1


@pytest.mark.usefixtures("no_aws_credentials")
def test_given_no_credentials_when_backfilled_then_it_exits_2_with_one_line_saying_so(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    code = main(["backfill", "--proxy", "any-proxy", "--since", "2h"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "no AWS credentials found" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--write"], "--write needs --table"),
        (["--table", "t"], "--table is only used with --write"),
        (["--since", "soon"], "neither a duration"),
    ],
)
def test_given_inconsistent_options_when_backfill_starts_then_it_exits_2_before_any_aws_call(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["backfill", "--proxy", "p", "--since", "2h", *args]
    code = main(argv)
    assert code == 2
    assert message in capsys.readouterr().err


def test_given_a_checkpoint_whose_page_token_expired_when_resumed_then_it_says_to_remove_the_checkpoint(
    history: History, moto_endpoint: str, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "backfill.json"
    first_client = _logs(moto_endpoint)
    _interrupt_after(first_client, 1)  # the first hour spans two pages: stopped inside it, with a token
    with pytest.raises(ConnectionError, match="injected"):
        Backfill(LogPages(first_client, page_size=PAGE), history.proxy, checkpoint=checkpoint).run(_window(history))
    saved = Checkpoint.load(checkpoint)
    assert saved is not None
    assert saved.next_token

    client = _logs(moto_endpoint)

    def refuse_tokens(request: Any, **_: Any) -> AWSResponse | None:
        if b"nextToken" not in (request.body or b""):
            return None
        body = json.dumps({"__type": "InvalidParameterException", "message": "The given nextToken is expired"})
        headers = {"x-amzn-RequestId": str(uuid.uuid4()), "Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, 400, headers, _Raw(body.encode()))

    client.meta.events.register("before-send.cloudwatch-logs.FilterLogEvents", refuse_tokens)
    with pytest.raises(BackfillError, match=r"refused \(tokens expire after 24 hours\); remove the checkpoint"):
        Backfill(LogPages(client, page_size=PAGE), history.proxy, checkpoint=checkpoint).run(_window(history))
    assert Checkpoint.load(checkpoint) == saved  # left as it was: nothing read, nothing counted


# ------------------------------------------------------------------ backfill and the live ingest

MINUTE = 60_000
DAY = 24 * HOUR


@dataclass
class Week:
    """A week of one proxy's log, one pin or would-pin line every 30 minutes (at :05 and :35), in moto's Logs.

    The lines begin an hour after the hour that `--since 7d` rounds down to, so the CLI's own clock
    (read a little later than the fixture's) still selects every one of them.
    """

    proxy: str
    group: str
    lines: list[tuple[int, str, Kind, str]]  # (timestamp, message, kind, reason), oldest first
    now_ms: int

    def truth(self, skip: tuple[int, int] | None = None) -> Counter[tuple[Kind, str]]:
        """Lines per (kind, reason), but those in `skip` = [from, until)."""
        return Counter(
            (kind, reason) for ts, _, kind, reason in self.lines if skip is None or not skip[0] <= ts < skip[1]
        )

    def between(self, since_ms: int, until_ms: int) -> list[tuple[int, str, Kind, str]]:
        return [line for line in self.lines if since_ms <= line[0] < until_ms]


@pytest.fixture
def week(moto_endpoint: str) -> Week:
    proxy = f"week-{uuid.uuid4().hex[:8]}"
    group = f"/aws/rds/proxy/{proxy}"
    logs = _logs(moto_endpoint)
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="instance-1")
    now = int(time.time() * 1000)
    start = now - 7 * DAY - (now - 7 * DAY) % HOUR + HOUR
    rnd = random.Random(5)
    lines = []
    for ts in range(start + 5 * MINUTE, now - MINUTE, 30 * MINUTE):
        body, kind, reason = BODIES[len(lines) % len(BODIES)]
        lines.append((ts, proxy_line(rnd, ts, body), kind, reason))
    events = []
    for ts, message, _, _ in lines:
        events.append({"timestamp": ts, "message": message})
        events.append(
            {"timestamp": ts + 1, "message": f"{iso_ms(ts + 1)} [INFO] [clientConnection=7] {OTHER_LINES[0]}"}
        )
    for day in range(0, len(events), 96):  # PutLogEvents: one call may span at most 24 hours
        logs.put_log_events(logGroupName=group, logStreamName="instance-1", logEvents=events[day : day + 96])
    return Week(proxy, group, lines, now)


def _deliver_live(store: SummaryStore, week: Week, since_ms: int, until_ms: int = 2**62) -> int:
    """The live ingest: every line in [since, until), an hour per subscription batch, through `pinwatch.ingest`."""
    from pinwatch.ingest import ingest
    from tests.payloads import subscription_event

    by_hour: dict[int, list[dict[str, Any]]] = {}
    for ts, message, _, _ in week.between(since_ms, until_ms):
        by_hour.setdefault(ts // HOUR, []).append({"id": f"{ts:020d}{0:036d}", "timestamp": ts, "message": message})
    for events in by_hour.values():
        ingest(subscription_event(events, log_group=week.group, log_stream="instance-1"), store, week.now_ms)
    return sum(len(events) for events in by_hour.values())


def _week_counts(dynamodb_endpoint: str, table: str, week: Week) -> tuple[Counter[tuple[Kind, str]], Counter[str]]:
    """(hourly items summed per kind and reason, running pin totals per reason) of the week's proxy."""
    store = _store(dynamodb_endpoint, table)
    hourly: Counter[tuple[Kind, str]] = Counter()
    for item in store.hourly(week.proxy, week.lines[0][0] - 8 * DAY, week.now_ms + HOUR):
        hourly[(item.kind, item.reason or "")] += item.count
    return hourly, Counter({r.reason: r.count for r in store.reason_totals(week.proxy)})


def _pins(counts: Counter[tuple[Kind, str]]) -> Counter[str]:
    return Counter({reason: n for (kind, reason), n in counts.items() if kind is Kind.PINNED})


def _floor_hour(ms: int) -> int:
    return ms - ms % HOUR


def _first_after(week: Week, ms: int) -> int:
    """The first line at or after `ms`: the first one a subscription made then forwards."""
    return week.between(ms, week.now_ms)[0][0]


@pytest.mark.usefixtures("aws_env")
def test_given_the_ingest_live_since_monday_when_backfilling_7d_on_wednesday_then_no_line_is_counted_twice(
    week: Week, summary_table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Deployed on "Monday", 23 minutes into an hour, two days before "Wednesday" (now).
    deploy = _floor_hour(week.now_ms - 2 * DAY) + 23 * MINUTE
    store = _store(dynamodb_endpoint, summary_table)
    delivered = _deliver_live(store, week, deploy)
    live_hour = _floor_hour(deploy)
    unseen = week.between(live_hour, deploy)  # the line at :05 of the deploy hour reached neither writer
    assert len(unseen) == 1

    args = ["--proxy", week.proxy, "--since", "7d", "--write", "--table", summary_table, "--page-size", str(PAGE)]
    out = _backfill_json(capsys, *args)["backfill"]
    hourly, totals = _week_counts(dynamodb_endpoint, summary_table, week)

    expected = week.truth(skip=(live_hour, deploy))
    assert hourly == expected  # every line counted once, and only the unseen one missing
    assert totals == _pins(expected)
    assert out["matched"] == len(week.lines) - delivered - len(unseen)  # the backfill read only the hours before
    assert out["until"] == iso_ms(live_hour)[:16] + "Z"
    assert out["live_start"] == iso_ms(_first_after(week, deploy))[:16] + "Z"  # the ingest's first counted line
    assert out["left_to_live"]["since"] == out["until"]
    assert out["uncounted"] == {"since": out["until"], "until": out["live_start"], "lines": 1}

    # The same backfill again: same pages, every chunk already applied, no count moves.
    again = _backfill_json(capsys, *args)["backfill"]
    assert (again["applied_chunks"], again["duplicate_chunks"]) == (0, out["applied_chunks"])
    assert _week_counts(dynamodb_endpoint, summary_table, week) == (hourly, totals)


@pytest.mark.usefixtures("aws_env")
def test_given_the_guarded_backfill_when_it_runs_then_its_output_names_the_hours_left_to_the_live_ingest(
    week: Week, summary_table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy = _floor_hour(week.now_ms - DAY) + 30 * MINUTE
    _deliver_live(_store(dynamodb_endpoint, summary_table), week, deploy)
    code = main(["backfill", "--proxy", week.proxy, "--since", "7d", "--write", "--table", summary_table])
    captured = capsys.readouterr()
    assert code == 0
    began = iso_ms(_first_after(week, deploy))[:16]
    hour = iso_ms(_floor_hour(deploy))[:16]
    assert f"live counting of this proxy began at {began}Z: {hour}Z → " in captured.err
    assert f"Live counting of this proxy began at {began}Z: {hour}Z → " in captured.out
    assert "is left to the live ingest" in captured.out
    # The line at :05 of the deploy hour came before the deploy at :30: neither writer has it, and it says so.
    assert f"1 pin or would-pin line(s) in {hour}Z → {began}Z" in " ".join(captured.out.split())


@pytest.mark.usefixtures("aws_env")
def test_given_a_window_entirely_after_live_start_when_backfilled_then_it_exits_2_and_writes_nothing(
    week: Week, summary_table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy = _floor_hour(week.now_ms - 3 * DAY) + 10 * MINUTE
    store = _store(dynamodb_endpoint, summary_table)
    _deliver_live(store, week, deploy)
    before = _week_counts(dynamodb_endpoint, summary_table, week)
    code = main(["backfill", "--proxy", week.proxy, "--since", "2d", "--write", "--table", summary_table])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    began = iso_ms(_first_after(week, deploy))[:16].replace("T", " ")
    assert err[-1].startswith(f"pinwatch backfill: error: live counting began at {began} UTC")
    assert "lies entirely after that: nothing to backfill" in err[-1]
    assert "--ignore-live-start" in err[-1]
    assert _week_counts(dynamodb_endpoint, summary_table, week) == before


@pytest.mark.usefixtures("aws_env")
def test_given_a_subscription_that_was_off_when_backfilled_with_the_override_then_exactly_the_missed_hours_count(
    week: Week, summary_table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Live since 5 days ago, but the subscription filter was removed for six hours two days ago.
    deploy = _floor_hour(week.now_ms - 5 * DAY)
    off_from = _floor_hour(week.now_ms - 2 * DAY)
    off_until = off_from + 6 * HOUR
    store = _store(dynamodb_endpoint, summary_table)
    _deliver_live(store, week, deploy, off_from)
    _deliver_live(store, week, off_until)
    window = ["--proxy", week.proxy, "--since", iso_ms(off_from), "--until", iso_ms(off_until)]

    refused = main(["backfill", *window, "--write", "--table", summary_table])
    assert refused == 2  # without the override, those hours belong to the live ingest
    capsys.readouterr()
    out = _backfill_json(capsys, *window, "--write", "--table", summary_table, "--ignore-live-start")["backfill"]
    hourly, totals = _week_counts(dynamodb_endpoint, summary_table, week)

    assert out["matched"] == len(week.between(off_from, off_until)) == 12  # what it says it counted
    assert out["ignore_live_start"] is True
    assert out["left_to_live"] is None
    assert hourly == week.truth(skip=(week.lines[0][0], deploy))  # the gap is filled, nothing counted twice
    assert totals == _pins(hourly)


@pytest.mark.usefixtures("aws_env")
def test_given_a_proxy_the_ingest_never_saw_when_backfilled_then_the_whole_window_is_written(
    week: Week, summary_table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    other = Week("other-proxy", "/aws/rds/proxy/other-proxy", week.lines, week.now_ms)
    _deliver_live(_store(dynamodb_endpoint, summary_table), other, week.lines[0][0])  # another proxy is live
    out = _backfill_json(
        capsys, "--proxy", week.proxy, "--since", "7d", "--write", "--table", summary_table, "--page-size", "100"
    )["backfill"]
    hourly, _ = _week_counts(dynamodb_endpoint, summary_table, week)
    until = int(datetime.fromisoformat(out["until"]).timestamp() * 1000)
    # The last settled hour (the CLI's clock runs a little after the fixture's).
    assert until - _floor_hour(week.now_ms - 5 * MINUTE) in (0, HOUR)
    assert out["live_start"] is None
    assert out["left_to_live"] is None
    assert hourly == week.truth(skip=(until, week.now_ms))  # the whole window, every line once


@pytest.mark.usefixtures("aws_env")
def test_given_a_backfill_before_the_deploy_when_the_ingest_starts_and_backfill_reruns_then_counts_stay_exact(
    week: Week, summary_table: str, dynamodb_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # "Monday 09:40": a backfill of the week so far; it writes whole hours that ended (up to 09:00).
    ran_at = _floor_hour(week.now_ms - 2 * DAY) + 40 * MINUTE
    args = ["--proxy", week.proxy, "--since", "7d", "--write", "--table", summary_table, "--page-size", str(PAGE)]
    first = _backfill_json(capsys, *args, "--until", iso_ms(ran_at))["backfill"]
    first_until = _floor_hour(ran_at)
    assert first["until"] == iso_ms(first_until)[:16] + "Z"
    assert first["live_start"] is None

    # Deployed half an hour later: the subscription forwards what the proxy logs from then on,
    # which is after every hour the backfill wrote. The user does nothing.
    deploy = ran_at + 30 * MINUTE
    store = _store(dynamodb_endpoint, summary_table)
    _deliver_live(store, week, deploy)
    hourly, _ = _week_counts(dynamodb_endpoint, summary_table, week)
    assert hourly == week.truth(skip=(first_until, deploy))  # nothing twice; only the time in between is missing

    # "Wednesday": the same backfill for the week. Written pages are skipped, the hours between the
    # first backfill and the deploy hour are added, the deploy hour stays the ingest's.
    second = _backfill_json(capsys, *args)["backfill"]
    hourly, totals = _week_counts(dynamodb_endpoint, summary_table, week)
    live_hour = _floor_hour(deploy)
    assert second["duplicate_chunks"] == first["applied_chunks"]
    assert second["until"] == iso_ms(live_hour)[:16] + "Z"
    assert second["uncounted"]["lines"] == len(week.between(live_hour, deploy))
    assert hourly == week.truth(skip=(live_hour, deploy))
    assert totals == _pins(hourly)


def test_given_a_live_batch_of_older_lines_applied_late_when_the_live_start_is_read_then_it_is_the_earliest(
    week: Week, summary_table: str, dynamodb_endpoint: str
) -> None:
    # The first batch failed and waited in the dead-letter queue while later ones were applied.
    store = _store(dynamodb_endpoint, summary_table)
    monday = _floor_hour(week.now_ms - 2 * DAY)
    _deliver_live(store, week, monday + HOUR)
    assert store.live_start_ms(week.proxy, monday - DAY, week.now_ms) == monday + HOUR + 5 * MINUTE
    _deliver_live(store, week, monday, monday + HOUR)  # the re-drive
    earliest = monday + 5 * MINUTE
    assert store.live_start_ms(week.proxy, monday - DAY, week.now_ms) == earliest  # from the live-marked hour
    # Recorded on the proxies item: a later backfill whose window starts after that hour still sees it.
    assert store.live_start_ms(week.proxy, monday + 2 * HOUR, week.now_ms) == earliest
