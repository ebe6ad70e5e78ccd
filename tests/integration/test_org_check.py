"""Organization mode: the central check reads every member account and Region through the member role.

Real components end to end: the member StackSet's stack instances on moto (each deploys the read
role into its account), ``sts:AssumeRole`` into each member, proxies and ``AWS/RDS`` series created
with each member's own credentials, and the check wired by :func:`pinwatch.wiring.org_check`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from pinwatch import wiring
from pinwatch.config import CheckConfig
from pinwatch.diagnose import MEMBER_UNREACHABLE, PINNED_SHARE
from pinwatch.findings import Severity
from pinwatch.fleet import CONTRIBUTOR_STATE_CHANGE, sweep_due
from pinwatch.local.lambda_harness import CONNECTION_CHECK_APP, check_context, load_handler, schedule_event
from pinwatch.local.org import MEMBER_ALARM, EmulatedOrganization, member_template, setup_organization
from pinwatch.members import MemberSessions
from pinwatch.metrics import window_end_ms
from pinwatch.org import TARGET_CACHE_TTL_S, OrgCheck
from pinwatch.scope import Scope
from pinwatch.store.capture_state import CaptureStateStore
from pinwatch.store.hot_state import ContributorWatchStore
from tests.integration.aws_proxies import draining_shapes, healthy_busy_shapes

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[2] / "events"

HOME = "us-east-1"
REGION = "ap-southeast-2"  # a Region of their own keeps these members' listings to these tests
PAGING = Scope("444444444444", REGION)
QUIET = Scope("555555555555", REGION)
DENIED = Scope("666666666666", REGION)
# The same two accounts in a second Region, where reason capture switches logging.
CAPTURE_REGION = "ap-northeast-1"
CAPTURING, UNTOUCHED = Scope(PAGING.account, CAPTURE_REGION), Scope(QUIET.account, CAPTURE_REGION)


class Meter:
    """Every request the member clients send, by (account, Region, operation): the calls a run costs."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str, str]] = Counter()
        self.params: list[tuple[str, str, str, dict[str, Any]]] = []  # account, Region, operation, parameters

    def factory(self, endpoint: str) -> Any:
        def make(service: str, **settings: str) -> Any:
            factory: Any = boto3.client
            client = factory(service, endpoint_url=endpoint, **settings)
            account = factory("sts", endpoint_url=endpoint, **settings).get_caller_identity()["Account"]
            region = settings["region_name"]

            def count(model: Any, params: dict[str, Any], **_: Any) -> None:
                self.calls[(account, region, model.name)] += 1
                self.params.append((account, region, model.name, params))

            client.meta.events.register("before-parameter-build", count)
            return client

        return make

    def total(self, operation: str, account: str | None = None, region: str = REGION) -> int:
        return sum(
            n for (a, r, op), n in self.calls.items() if op == operation and account in (None, a) and r == region
        )


OPERATIONS = ("DescribeDBProxies", "DescribeDBProxyTargetGroups", "GetMetricData")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def end_ms() -> int:
    """Where the members' series end: the start of the minute the module began in."""
    return window_end_ms(int(time.time() * 1000))


@pytest.fixture(scope="module")
def org(moto_endpoint: str, end_ms: int) -> EmulatedOrganization:
    """Three members; two hold a proxy of the same name (one pinning its pool away, one healthy); one lost its role."""
    organization = setup_organization(
        moto_endpoint,
        (PAGING, QUIET, DENIED, CAPTURING, UNTOUCHED),
        stack_set=f"pinwatch-members-{uuid.uuid4().hex[:6]}",
        member_home_region=REGION,
    )
    for scope, shapes in ((PAGING, draining_shapes()), (QUIET, healthy_busy_shapes())):
        organization.create_proxy(scope, "orders-db", debug_logging=True)
        organization.put_series(scope, "orders-db", end_ms, shapes)
    for scope in (CAPTURING, UNTOUCHED):
        organization.create_proxy(scope, "orders-db", debug_logging=False)
    organization.put_series(CAPTURING, "orders-db", end_ms, draining_shapes())
    organization.put_series(UNTOUCHED, "orders-db", end_ms, healthy_busy_shapes())
    organization.remove_role(DENIED.account)
    return organization


def central_clients(
    org: EmulatedOrganization, dynamodb_endpoint: str | None = None, sent: Counter[str] | None = None
) -> wiring.ClientFactory:
    """The monitoring account's clients; ``sent`` counts their requests by operation."""

    def client(service: str) -> Any:
        endpoint = dynamodb_endpoint if service == "dynamodb" and dynamodb_endpoint else org.endpoint
        factory: Any = boto3.client
        made = factory(service, endpoint_url=endpoint, region_name=HOME)
        if sent is not None:
            made.meta.events.register("before-call", lambda model, **_: sent.update([model.name]))
        return made

    return client


def org_check(
    org: EmulatedOrganization,
    meter: Meter,
    clock: Clock,
    *,
    environ: dict[str, str] | None = None,
    dynamodb_endpoint: str | None = None,
    central: Counter[str] | None = None,
) -> tuple[OrgCheck, MemberSessions, Counter[str]]:
    """The check as the function wires it, on metered member clients; also counts AssumeRole per role ARN."""
    env = org.check_environment(SETUP_FAILED_EVERY_MINUTES="1", **(environ or {}))
    config = CheckConfig.from_env(env, require_table="SUMMARY_TABLE_NAME" in env)
    clients = central_clients(org, dynamodb_endpoint, central)
    sts = clients("sts")
    assumed: Counter[str] = Counter()
    sts.meta.events.register(
        "before-parameter-build.sts.AssumeRole", lambda params, **_: assumed.update([params["RoleArn"]])
    )
    sessions = MemberSessions(sts, config.org_member_role_name, meter.factory(org.endpoint))
    dispatcher = wiring.alert_dispatcher(config, clients, region=HOME) if config.summary_table_name else None
    check = wiring.org_check(config, clients, dispatcher=dispatcher, sessions=sessions, clock=clock)
    return check, sessions, assumed


def test_given_the_same_proxy_name_in_two_members_when_the_org_check_runs_then_each_is_diagnosed_under_its_own_key(
    org: EmulatedOrganization,
) -> None:
    meter = Meter()
    check, _, _ = org_check(org, meter, Clock())
    result = check.run(int(time.time() * 1000))
    reports = {r.proxy: r for r in result.reports}
    paging, quiet = reports[PAGING.key("orders-db")], reports[QUIET.key("orders-db")]
    assert paging.severity is not Severity.OK
    assert {f.rule for f in paging.findings if f.severity is not Severity.OK} >= {PINNED_SHARE}
    assert quiet.severity is Severity.OK
    assert paging.figures != quiet.figures
    # Every finding is filed under its proxy's key; AWS was asked by the bare name, in the member.
    assert {f.proxy for r in (paging, quiet) for f in r.findings} == {paging.proxy, quiet.proxy}
    asked = {
        (account, d["Value"])
        for account, region, op, params in meter.params
        if op == "GetMetricData" and region == REGION
        for q in params["MetricDataQueries"]
        for d in q["MetricStat"]["Metric"]["Dimensions"]
    }
    assert asked == {(PAGING.account, "orders-db"), (QUIET.account, "orders-db")}


def test_given_a_member_without_its_role_when_checked_then_one_unreachable_report_and_no_retry_within_the_cache_time(
    org: EmulatedOrganization,
) -> None:
    meter, clock = Meter(), Clock()
    check, _, assumed = org_check(org, meter, clock)
    denied_role = f"arn:aws:iam::{DENIED.account}:role/pinwatch-member-reader"

    first = check.run(int(time.time() * 1000))
    unreachable = [r for r in first.reports if r.status == "unreachable"]
    assert [r.proxy for r in unreachable] == [DENIED.key("*")]
    (finding,) = unreachable[0].findings
    assert (finding.rule, finding.severity, finding.proxy) == (MEMBER_UNREACHABLE, Severity.WARNING, DENIED.key("*"))
    for part in (DENIED.account, DENIED.region, "pinwatch-member-reader", "AccessDenied"):
        assert part in finding.summary
    assert assumed[denied_role] == 1

    clock.now += TARGET_CACHE_TTL_S - 1
    second = check.run(int(time.time() * 1000))
    assert [r.proxy for r in second.reports if r.status == "unreachable"] == [DENIED.key("*")]
    assert assumed[denied_role] == 1  # not tried again before the cache time is over
    # The reachable members were read again, and their target groups came from the 15-minute cache.
    assert meter.total("DescribeDBProxyTargetGroups") == 2
    assert meter.total("DescribeDBProxies") == 4

    clock.now += 2
    check.run(int(time.time() * 1000))
    assert assumed[denied_role] == 2


def test_given_a_names_limited_run_when_keys_of_two_members_are_given_then_each_member_reads_only_its_own(
    org: EmulatedOrganization,
) -> None:
    meter = Meter()
    check, _, _ = org_check(org, meter, Clock())
    keys = [PAGING.key("orders-db"), QUIET.key("gone-db"), "orders-db", "999999999999:ap-southeast-2:orders-db"]
    result = check.run(int(time.time() * 1000), names=keys)
    by_key = {r.proxy: r.status for r in result.reports}
    # A plain name or an account outside the StackSet is nobody's proxy here: left out.
    assert by_key == {PAGING.key("orders-db"): "available", QUIET.key("gone-db"): "gone"}
    described = sorted((account, p["DBProxyName"]) for account, _, op, p in meter.params if op == "DescribeDBProxies")
    assert described == [(PAGING.account, "orders-db"), (QUIET.account, "gone-db")]
    assert meter.total("DescribeDBProxies", DENIED.account) == 0


@pytest.fixture
def alerting_env(org: EmulatedOrganization, summary_table: str) -> dict[str, Any]:
    """The central table and an alert topic, its messages collected in a queue."""
    sns, sqs = org.central_client("sns"), org.central_client("sqs")
    topic = sns.create_topic(Name=f"pinwatch-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    return {
        "environ": {"SUMMARY_TABLE_NAME": summary_table, "ALERT_TOPIC_ARN": topic, "RESOLVE_AFTER_CHECKS": "1"},
        "sqs": sqs,
        "queue_url": queue_url,
    }


def received(sqs: Any, queue_url: str) -> list[str]:
    """The bodies of the alert messages the topic delivered so far."""
    messages: list[str] = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return messages
        messages += [m["Body"] for m in batch]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def test_given_an_unreachable_member_when_runs_repeat_then_it_is_alerted_once_and_resolved_when_its_role_works(
    org: EmulatedOrganization, dynamodb_endpoint: str, alerting_env: dict[str, Any]
) -> None:
    meter, clock = Meter(), Clock()
    check, _, _ = org_check(org, meter, clock, environ=alerting_env["environ"], dynamodb_endpoint=dynamodb_endpoint)
    now_ms = int(time.time() * 1000)
    key = DENIED.key("*")

    check.run(now_ms)
    check.run(now_ms + 60_000)
    assert key in check.alerting_proxies()
    about_member = [m for m in received(alerting_env["sqs"], alerting_env["queue_url"]) if DENIED.account in m]
    assert len(about_member) == 1
    assert "member_unreachable" in about_member[0] or "not checked" in about_member[0]

    iam = org.member_client(DENIED.account, "iam")
    template = json.loads(member_template(org.role_name))["Resources"]["MemberReadRole"]["Properties"]
    iam.create_role(RoleName=org.role_name, AssumeRolePolicyDocument=json.dumps(template["AssumeRolePolicyDocument"]))
    try:
        clock.now += TARGET_CACHE_TTL_S + 1
        # Its own key is hot (an open alert): a run limited to it reads the whole member again.
        result = check.run(now_ms + 120_000, names=[key])
        assert {r.proxy: r.status for r in result.reports} == {key: "available"}
        assert key not in check.alerting_proxies()
        resolved = [m for m in received(alerting_env["sqs"], alerting_env["queue_url"]) if DENIED.account in m]
        assert len(resolved) == 1
    finally:
        org.remove_role(DENIED.account)


def test_given_reason_capture_when_a_member_proxy_pins_then_modify_db_proxy_goes_to_that_member_only(
    org: EmulatedOrganization, dynamodb_endpoint: str, summary_table: str
) -> None:
    meter = Meter()
    environ = {"SUMMARY_TABLE_NAME": summary_table, "REASON_CAPTURE": "on-incident"}
    check, _, _ = org_check(org, meter, Clock(), environ=environ, dynamodb_endpoint=dynamodb_endpoint)
    keys = [CAPTURING.key("orders-db"), UNTOUCHED.key("orders-db")]
    result = check.run(int(time.time() * 1000), names=keys)

    captures = {r.proxy: r.capture.status if r.capture else None for r in result.reports}
    assert captures == {CAPTURING.key("orders-db"): "started", UNTOUCHED.key("orders-db"): "idle"}
    switched = [(a, r, p) for a, r, op, p in meter.params if op == "ModifyDBProxy"]
    assert switched == [(CAPTURING.account, CAPTURE_REGION, {"DBProxyName": "orders-db", "DebugLogging": True})]
    logging_on = {
        scope: org.member_client(scope.account, "rds", scope.region).describe_db_proxies(DBProxyName="orders-db")[
            "DBProxies"
        ][0]["DebugLogging"]
        for scope in (CAPTURING, UNTOUCHED)
    }
    assert logging_on == {CAPTURING: True, UNTOUCHED: False}
    table = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name=HOME)
    state = CaptureStateStore(table, summary_table).load(CAPTURING.key("orders-db"))
    assert state is not None
    assert state.active


def central_check_app(org: EmulatedOrganization, dynamodb_endpoint: str, summary_table: str) -> ModuleType:
    """The central check function on the emulation, a sweep every 15 minutes, freshly imported (a cold start)."""
    env = org.check_environment(
        AWS_ENDPOINT_URL=org.endpoint,
        AWS_ENDPOINT_URL_DYNAMODB=dynamodb_endpoint,
        AWS_DEFAULT_REGION=HOME,
        SUMMARY_TABLE_NAME=summary_table,
        SWEEP_MINUTES="15",
        SETUP_FAILED_EVERY_MINUTES="1",
    )
    return load_handler(CONNECTION_CHECK_APP, env)


def test_given_a_member_alarm_contributor_in_alarm_when_its_event_reaches_the_check_then_that_members_proxy_is_read(
    org: EmulatedOrganization, end_ms: int, dynamodb_endpoint: str, summary_table: str
) -> None:
    alarm = org.member_alarm(PAGING)
    events = alarm.evaluate(end_ms)
    assert [(e["account"], e["region"], e["detail-type"]) for e in events] == [
        (PAGING.account, PAGING.region, CONTRIBUTOR_STATE_CHANGE)
    ]
    assert events[0]["detail"]["alarmName"] == MEMBER_ALARM
    app = central_check_app(org, dynamodb_endpoint, summary_table)
    summary = app.handle(events[0], check_context(), check=app.CHECK, now_ms=end_ms + 30_000)
    assert summary["proxies"] == 1
    assert list(summary["unhealthyProxies"]) == [PAGING.key("orders-db")]


def test_given_member_contributor_events_when_scheduled_runs_follow_then_a_key_is_read_from_its_alarm_to_its_ok(
    org: EmulatedOrganization, end_ms: int, dynamodb_endpoint: str, summary_table: str
) -> None:
    # The quiet member's proxy: healthy, so no open alert keeps it hot — only its contributor state does.
    app = central_check_app(org, dynamodb_endpoint, summary_table)
    minute = 60_000
    now = end_ms + 30_000
    while any(sweep_due(now + k * minute, 15) for k in (1, 3, 5)):
        now += minute  # the three scheduled runs below fall between sweeps

    def contributor(state: str, at_ms: int) -> dict[str, Any]:
        event: dict[str, Any] = json.loads((EVENTS / "alarm-contributor.json").read_text())
        event["account"], event["region"] = QUIET.account, QUIET.region
        event["time"] = datetime.fromtimestamp(at_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event["detail"]["state"]["value"] = state
        return event

    def run(event: dict[str, Any], at_ms: int) -> dict[str, Any]:
        summary: dict[str, Any] = app.handle(event, check_context(), check=app.CHECK, now_ms=at_ms)
        return summary

    assert run(contributor("ALARM", now), now)["proxies"] == 1  # the event's own read
    hot = run(schedule_event(), now + minute)
    assert (hot["trigger"], hot["proxies"]) == ("hot proxies only", 1)

    assert run(contributor("OK", now + 2 * minute), now + 2 * minute)["proxies"] == 0
    assert run(schedule_event(), now + 3 * minute)["proxies"] == 0
    # The first ALARM delivered again after its OK (an EventBridge retry): read once, not watched again.
    assert run(contributor("ALARM", now), now + 4 * minute)["proxies"] == 1
    assert run(schedule_event(), now + 5 * minute)["proxies"] == 0


class RecordingCheck:
    """The function's check, keeping each run's result."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.results: list[Any] = []

    def alerting_proxies(self) -> frozenset[str]:
        return frozenset(self.inner.alerting_proxies())

    def run(self, now_ms: int, **kwargs: Any) -> Any:
        result = self.inner.run(now_ms, **kwargs)
        self.results.append(result)
        return result


def test_given_an_unstorable_state_when_an_alarm_event_arrives_then_its_proxy_is_read_and_the_run_fails_to_retry(
    org: EmulatedOrganization, end_ms: int, dynamodb_endpoint: str, summary_table: str
) -> None:
    app = central_check_app(org, dynamodb_endpoint, summary_table)
    dynamodb = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name=HOME)

    def throttled(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutItem")

    dynamodb.meta.events.register("before-call.dynamodb.PutItem", throttled)
    (event,) = org.member_alarm(PAGING).evaluate(end_ms)
    check = RecordingCheck(app.CHECK)

    with pytest.raises(app.ContributorNotRecorded, match="ThrottlingException"):
        app.handle(
            event,
            check_context(),
            check=check,
            now_ms=end_ms + 30_000,
            watch=ContributorWatchStore(dynamodb, summary_table),
        )
    # The check it called for ran first: Lambda's retry of the event stores the state (the put is idempotent).
    assert [[o.report.proxy for o in r.outcomes] for r in check.results] == [[PAGING.key("orders-db")]]


FLEET_REGIONS = ("eu-central-1", "eu-north-1")
FLEET = tuple(
    Scope(account, region) for account in ("777777777777", "888888888888", "999999999999") for region in FLEET_REGIONS
)


def test_given_three_accounts_in_two_regions_when_swept_twice_then_calls_are_per_account_and_region_and_cached(
    moto_endpoint: str, end_ms: int
) -> None:
    fleet = setup_organization(moto_endpoint, FLEET, stack_set=f"pinwatch-fleet-{uuid.uuid4().hex[:6]}")
    for scope in FLEET:
        for name in ("orders-db", "billing-db"):
            fleet.create_proxy(scope, name, debug_logging=True)
            fleet.put_series(scope, name, end_ms, healthy_busy_shapes(), window=5)
    meter, clock, central = Meter(), Clock(), Counter[str]()
    check, _, _ = org_check(fleet, meter, clock, central=central)

    def calls() -> dict[str, int]:
        figures = {op: sum(meter.total(op, region=r) for r in FLEET_REGIONS) for op in OPERATIONS}
        return {"AssumeRole": central["AssumeRole"], "ListStackInstances": central["ListStackInstances"], **figures}

    first = check.run(end_ms + 10_000)
    after_first = calls()
    clock.now += 60
    second = check.run(end_ms + 70_000)
    after_second = calls()

    assert len({r.proxy for r in first.reports}) == len(first.reports) == 12
    assert {r.proxy for r in second.reports} == {r.proxy for r in first.reports}
    # One AssumeRole per account (its role serves both Regions), one StackSet listing; per member one
    # listing and one metrics call; target groups once per proxy, then from the member's own cache.
    assert after_first == {
        "AssumeRole": 3,
        "ListStackInstances": 1,
        "DescribeDBProxies": 6,
        "DescribeDBProxyTargetGroups": 12,
        "GetMetricData": 6,
    }
    assert {op: after_second[op] - after_first[op] for op in after_first} == {
        "AssumeRole": 0,
        "ListStackInstances": 0,
        "DescribeDBProxies": 6,
        "DescribeDBProxyTargetGroups": 0,
        "GetMetricData": 6,
    }


def test_given_a_member_whose_stack_instance_is_deleted_when_swept_then_its_open_alert_resolves_once(
    moto_endpoint: str, end_ms: int, dynamodb_endpoint: str, alerting_env: dict[str, Any]
) -> None:
    region = "ca-central-1"  # a Region and StackSet of this test's own
    staying, leaving = Scope("141414141414", region), Scope("151515151515", region)
    members = setup_organization(
        moto_endpoint, (staying, leaving), stack_set=f"pinwatch-members-{uuid.uuid4().hex[:6]}"
    )
    members.create_proxy(leaving, "orders-db", debug_logging=True)
    members.put_series(leaving, "orders-db", end_ms, draining_shapes())
    cloudformation = members.central_client("cloudformation")
    stack_set = {"StackSetName": members.stack_set, "Accounts": [leaving.account], "Regions": [region]}
    listing_fails = False

    def clients(service: str) -> Any:
        made = central_clients(members, dynamodb_endpoint)(service)

        def fail(**_: Any) -> None:
            if listing_fails:
                raise EndpointConnectionError(endpoint_url=members.endpoint)

        made.meta.events.register("before-call.cloudformation.ListStackInstances", fail)
        return made

    config = CheckConfig.from_env(members.check_environment(**alerting_env["environ"]), require_table=True)
    dispatcher = wiring.alert_dispatcher(config, clients, region=HOME)

    def function_instance(clock: Clock) -> OrgCheck:
        """One warm function instance: its own target list and caches, the shared table."""
        sessions = MemberSessions(clients("sts"), config.org_member_role_name, Meter().factory(members.endpoint))
        return wiring.org_check(config, clients, dispatcher=dispatcher, sessions=sessions, clock=clock)

    def about_leaving() -> list[str]:
        return [m for m in received(alerting_env["sqs"], alerting_env["queue_url"]) if leaving.account in m]

    key = leaving.key("orders-db")
    # An older instance listed the members before the account was enrolled...
    cloudformation.delete_stack_instances(**stack_set, RetainStacks=False)
    old_clock = Clock()
    older = function_instance(old_clock)
    older.run(end_ms)
    # ...a newer one lists it, and its proxy alerts.
    cloudformation.create_stack_instances(**stack_set)
    newer_clock = Clock()
    newer = function_instance(newer_clock)
    newer.run(end_ms)
    assert key in newer.alerting_proxies()
    assert len(about_leaving()) == 1

    # The older instance's listing fails: its previous list lacks the member, which has not left.
    old_clock.now += TARGET_CACHE_TTL_S + 1
    listing_fails = True
    assert not [r for r in older.run(end_ms + 60_000).reports if r.status == "gone"]
    assert key in older.alerting_proxies()
    assert about_leaving() == []
    listing_fails = False

    # The account leaves: the next listing no longer has its stack instance.
    cloudformation.delete_stack_instances(**stack_set, RetainStacks=False)
    newer_clock.now += TARGET_CACHE_TTL_S + 1
    assert [r.proxy for r in newer.run(end_ms + 120_000).reports if r.status == "gone"] == [key]
    assert key not in newer.alerting_proxies()
    (resolved,) = about_leaving()
    assert "no longer enrolled" in resolved
    assert "RESOLVED" in resolved

    newer.run(end_ms + 180_000)
    assert about_leaving() == []  # closed once
