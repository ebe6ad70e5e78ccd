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
