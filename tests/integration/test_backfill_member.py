"""`pinwatch backfill --member` in an organization: a member's log group (moto) into the central table (DynamoDB Local).

Two member accounts hold a log group of the same name. Each is read with its own credentials (a
profile per account, as an operator would have them); the table is written with the monitoring
account's (``--table-profile``). moto keeps each account's logs apart, and DynamoDB Local keeps
a database per access key, so reading or writing with the wrong account's credentials would show.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from pinwatch.cli import main
from pinwatch.records import Kind, LogRecord
from pinwatch.report import iso
from pinwatch.scope import Scope, split_key
from pinwatch.store.summary import SummaryStore
from pinwatch.tally import Tally
from tests.payloads import PIN_BODIES, iso_ms, proxy_line

pytestmark = pytest.mark.integration

HOUR = 3_600_000
MEMBER_REGION = "eu-west-1"
A = Scope("111111111111", MEMBER_REGION)
B = Scope("222222222222", MEMBER_REGION)
# The verbatim pin lines (tests/payloads.py) and the reasons they are filed under.
A_BODY, A_REASON = PIN_BODIES[0], "session_settings"
B_BODY, B_REASON = PIN_BODIES[2], "prepared_statement"


@dataclass
class Org:
    proxy: str
    since_ms: int  # three whole UTC hours of history in both members
    until_ms: int
    a_lines: list[int]  # timestamps of member A's pin lines
    b_lines: list[int]

    def window(self) -> list[str]:
        return ["--since", iso_ms(self.since_ms), "--until", iso_ms(self.until_ms)]


def _member_credentials(endpoint: str, account: str) -> dict[str, str]:
    given = boto3.client("sts", endpoint_url=endpoint, region_name=MEMBER_REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="backfill-test"
    )["Credentials"]
    return {
        "aws_access_key_id": given["AccessKeyId"],
        "aws_secret_access_key": given["SecretAccessKey"],
        "aws_session_token": given["SessionToken"],
    }


@pytest.fixture
def org(moto_endpoint: str, dynamodb_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Org:
    """Profiles member-a, member-b (their accounts) and central (the table's); the same proxy's log in both members."""
    profiles = {"member-a": _member_credentials(moto_endpoint, A.account)}
    profiles["member-b"] = _member_credentials(moto_endpoint, B.account)
    # The credentials the summary_table fixture created the table with: DynamoDB Local's database for them.
    profiles["central"] = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) for name, keys in profiles.items())
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    monkeypatch.setenv("COLUMNS", "200")

    proxy = f"orders-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    since = now - now % HOUR - 5 * HOUR
    until = since + 3 * HOUR
    rnd = random.Random(7)
    written: dict[str, list[int]] = {}
    for scope, profile, body, every in ((A, "member-a", A_BODY, 10), (B, "member-b", B_BODY, 20)):
        # Each member's own log group, created with its credentials (the endpoint from the environment).
        logs = boto3.Session(profile_name=profile).client("logs", region_name=scope.region)
        group = f"/aws/rds/proxy/{proxy}"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="instance-1")
        times = list(range(since + 60_000, until, every * 60_000))
        logs.put_log_events(
            logGroupName=group,
            logStreamName="instance-1",
            logEvents=[{"timestamp": ts, "message": proxy_line(rnd, ts, body)} for ts in times],
        )
        written[scope.account] = times
    return Org(proxy, since, until, written[A.account], written[B.account])


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _backfill(capsys: pytest.CaptureFixture[str], org: Org, table: str, *args: str) -> dict[str, Any]:
    code, out, err = _run(
        capsys, "backfill", "--proxy", org.proxy, *org.window(), "--write", "--table", table, "--format", "json", *args
    )
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)["backfill"]
    return result


def _report_rows(capsys: pytest.CaptureFixture[str], org: Org, table: str, *args: str) -> list[tuple[Any, ...]]:
    code, out, err = _run(capsys, "report", "--table", table, *org.window(), "--format", "json", *args)
    assert code == 0, err
    return [(r["account"], r["region"], r["name"], r["reason"], r["count"]) for r in json.loads(out)]


def _store(dynamodb_client: Any, table: str) -> SummaryStore:
    return SummaryStore(dynamodb_client, table)


def test_given_a_members_backfill_when_written_then_the_organizations_report_shows_it_under_that_account(
    org: Org, summary_table: str, dynamodb_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _backfill(
        capsys, org, summary_table, "--member", f"{A.account}:{A.region}", "--profile", "member-a",
        "--table-profile", "central",
    )  # fmt: skip
    b = _backfill(
        capsys, org, summary_table, "--member", f"{B.account}:{B.region}", "--profile", "member-b",
        "--table-profile", "central",
    )  # fmt: skip

    assert (a["key"], a["matched"]) == (A.key(org.proxy), len(org.a_lines))
    assert (b["key"], b["matched"]) == (B.key(org.proxy), len(org.b_lines))
    assert a["applied_chunks"] > 0
    assert b["applied_chunks"] > 0  # the same log group name in another account: other batch ids, not duplicates
    assert _report_rows(capsys, org, summary_table, "--account", A.account) == [
        (A.account, A.region, org.proxy, A_REASON, len(org.a_lines))
    ]
    assert _report_rows(capsys, org, summary_table) == [
        (A.account, A.region, org.proxy, A_REASON, len(org.a_lines)),
        (B.account, B.region, org.proxy, B_REASON, len(org.b_lines)),
    ]
    # Nothing under the plain name, which an organization's report, check and alerts never read.
    assert [p.proxy for p in _store(dynamodb_client, summary_table).proxies()] == [A.key(org.proxy), B.key(org.proxy)]


def test_given_live_counting_of_the_member_key_when_backfilled_then_its_hours_are_left_to_the_ingest(
    org: Org, summary_table: str, dynamodb_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(dynamodb_client, summary_table)
    live_ms = org.since_ms + 2 * HOUR + 30 * 60_000
    # The stream ingest counted A's proxy from 2h30 into the window, and B's (same name) from its start.
    for key, first_ms in ((A.key(org.proxy), live_ms), (B.key(org.proxy), org.since_ms)):
        tally = Tally()
        tally.add(key, LogRecord(kind=Kind.PINNED, raw="", timestamp_ms=first_ms, reason=A_REASON))
        store.apply_batch(f"live-{uuid.uuid4().hex}", tally, first_ms)

    a = _backfill(
        capsys, org, summary_table, "--member", f"{A.account}:{A.region}", "--profile", "member-a",
        "--table-profile", "central",
    )  # fmt: skip

    boundary = org.since_ms + 2 * HOUR
    assert a["live_start"] == iso(live_ms, "minutes")  # A's own item, not B's earlier start
    assert (a["since"], a["until"]) == (iso(org.since_ms, "minutes"), iso(boundary, "minutes"))
    assert a["left_to_live"] == {"since": iso(boundary, "minutes"), "until": iso(org.until_ms, "minutes")}
    before_live = [ts for ts in org.a_lines if ts < boundary]
    assert a["matched"] == len(before_live)
    assert a["uncounted"]["lines"] == len([ts for ts in org.a_lines if boundary <= ts < live_ms])
    # Backfilled hours plus the ingest's one line: every line counted once, under A's key.
    assert _report_rows(capsys, org, summary_table, "--account", A.account) == [
        (A.account, A.region, org.proxy, A_REASON, len(before_live) + 1)
    ]


def test_given_another_accounts_credentials_when_a_member_is_backfilled_then_refused_and_nothing_written(
    org: Org, summary_table: str, dynamodb_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(
        capsys, "backfill", "--proxy", org.proxy, *org.window(), "--write", "--table", summary_table,
        "--member", f"{A.account}:{A.region}", "--profile", "member-b", "--table-profile", "central",
    )  # fmt: skip

    assert code == 2
    (line,) = err.strip().splitlines()
    assert B.account in line
    assert A.account in line
    assert "--profile" in line
    assert _store(dynamodb_client, summary_table).proxies() == []


def test_given_an_organizations_table_when_written_without_member_then_refused_and_nothing_written(
    org: Org, summary_table: str, dynamodb_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(dynamodb_client, summary_table)
    tally = Tally()
    tally.add(A.key("billing-db"), LogRecord(kind=Kind.PINNED, raw="", timestamp_ms=org.since_ms, reason=A_REASON))
    store.apply_batch("org-table", tally, org.since_ms)

    code, _, err = _run(
        capsys, "backfill", "--proxy", org.proxy, *org.window(), "--write", "--table", summary_table,
    )  # fmt: skip

    assert code == 2
    (line,) = err.strip().splitlines()
    assert "--member ACCOUNT:REGION" in line
    assert A.key("billing-db") in line
    assert all(split_key(p.proxy)[0] is not None for p in store.proxies())
    assert [p.proxy for p in store.proxies()] == [A.key("billing-db")]
