"""``pinwatch check`` across an organization: members on moto server, read through their member role.

The emulated organization (:mod:`pinwatch.local.org`) deploys the member StackSet, so each member
account has the read role; two members hold a proxy of the same name, one pinning its pool away and
one healthy, and a third lost its role. The command lists the StackSet and assumes the role as the
central function does (:func:`pinwatch.wiring.org_check`).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from pinwatch import diagnose as dx
from pinwatch.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, main
from pinwatch.local.org import MEMBER_ACCOUNTS, EmulatedOrganization, member_template, setup_organization
from pinwatch.metrics import window_end_ms
from pinwatch.scope import Scope
from tests.integration.aws_proxies import draining_shapes, healthy_busy_shapes

pytestmark = pytest.mark.integration

HOME = "us-east-1"  # the monitoring account's Region: where the member StackSet is listed
REGION = "ca-central-1"  # a Region of its own keeps these members' proxies to this module
PAGING, QUIET = Scope(MEMBER_ACCOUNTS[0], REGION), Scope(MEMBER_ACCOUNTS[1], REGION)
DENIED = Scope("333333333333", REGION)
OUTSIDE = Scope("444444444444", REGION)  # enrolled by a plain member stack, as a management account is
PROXY = "orders-db"


@pytest.fixture(scope="module")
def org(moto_endpoint: str) -> EmulatedOrganization:
    organization = setup_organization(
        moto_endpoint,
        (PAGING, QUIET, DENIED),
        stack_set=f"pinwatch-members-{uuid.uuid4().hex[:6]}",
        role_name=f"pinwatch-cli-reader-{uuid.uuid4().hex[:6]}",  # IAM roles are per account, not per Region
        home_region=HOME,
    )
    end_ms = window_end_ms(int(time.time() * 1000))
    for scope, shapes in ((PAGING, draining_shapes()), (QUIET, healthy_busy_shapes())):
        organization.create_proxy(scope, PROXY, "POSTGRESQL", debug_logging=True)
        organization.put_series(scope, PROXY, end_ms, shapes)
    organization.remove_role(DENIED.account)
    return organization


@pytest.fixture(scope="module")
def outside(org: EmulatedOrganization) -> Scope:
    """An account outside the StackSet with org/member.yaml as a plain stack (its read role) and a pinning proxy."""
    org.member_client(OUTSIDE.account, "cloudformation", REGION).create_stack(
        StackName="pinwatch-member",
        TemplateBody=member_template(org.role_name),
        Parameters=[{"ParameterKey": "HomeRegion", "ParameterValue": REGION}],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    org.create_proxy(OUTSIDE, PROXY)
    org.put_series(OUTSIDE, PROXY, window_end_ms(int(time.time() * 1000)), draining_shapes())
    return OUTSIDE


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps table cells to the terminal width


def check(org: EmulatedOrganization, *extra: str, endpoint: bool = True) -> list[str]:
    """The command's arguments; ``endpoint=False`` leaves the endpoints to the environment."""
    return [
        "check",
        *(["--endpoint-url", org.endpoint] if endpoint else []),
        "--region",
        HOME,
        "--member-stack-set",
        org.stack_set,
        "--member-role",
        org.role_name,
        *extra,
    ]


def by_proxy(findings: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for finding in findings:
        grouped.setdefault(finding["proxy"], []).append(finding)
    return grouped


def test_given_the_same_proxy_name_in_two_members_when_checked_as_json_then_each_is_diagnosed_with_its_place(
    org: EmulatedOrganization, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(check(org, "--format", "json")) == EXIT_OK
    findings = by_proxy(json.loads(capsys.readouterr().out))

    paging, quiet = findings[PAGING.key(PROXY)], findings[QUIET.key(PROXY)]
    forecast = next(f for f in paging if f["rule"] == dx.EXHAUSTION_FORECAST)
    assert forecast["severity"] == "critical"
    assert {f["severity"] for f in quiet} == {"ok"}
    for scope, items in ((PAGING, paging), (QUIET, quiet)):
        assert {(f["account"], f["region"], f["name"]) for f in items} == {(scope.account, scope.region, PROXY)}


def test_given_a_member_without_its_role_when_checked_then_it_is_one_member_unreachable_finding(
    org: EmulatedOrganization, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(check(org, "--format", "json")) == EXIT_OK
    findings = by_proxy(json.loads(capsys.readouterr().out))

    (unreachable,) = findings[DENIED.key(dx.SCOPE_WIDE)]
    assert (unreachable["rule"], unreachable["severity"]) == (dx.MEMBER_UNREACHABLE, "warning")
    assert (unreachable["account"], unreachable["region"], unreachable["name"]) == (
        DENIED.account,
        DENIED.region,
        dx.SCOPE_WIDE,
    )
    assert org.role_name in unreachable["summary"]
    assert "AccessDenied" in unreachable["summary"]
    assert not any(key.startswith(DENIED.prefix) and key != DENIED.key(dx.SCOPE_WIDE) for key in findings)


def test_given_an_organization_when_checked_as_a_table_then_rows_carry_account_and_region(
    org: EmulatedOrganization, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(check(org)) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()

    header = next(line for line in lines if "rule" in line and "severity" in line)
    assert header.index("account") < header.index("region") < header.index("proxy")
    rows = {scope: [line for line in lines if scope.account in line and "│" in line] for scope in (PAGING, QUIET)}
    assert any("exhaustion_forecast" in row and "critical" in row and REGION in row for row in rows[PAGING])
    assert len(rows[QUIET]) == 1
    assert f"{len(dx.METRIC_RULES)} rules" in rows[QUIET][0]
    assert any(DENIED.account in line and "all proxies" in line and dx.MEMBER_UNREACHABLE in line for line in lines)
    # The advice under the table names what it is about with its place, never by the raw key.
    assert f"all proxies ({DENIED.account}, {REGION}) {dx.MEMBER_UNREACHABLE}:" in lines
    assert not any(key in line for line in lines for key in (PAGING.key(PROXY), DENIED.key(dx.SCOPE_WIDE)))


def test_given_a_key_when_checked_then_only_that_members_proxy_is_read(
    org: EmulatedOrganization, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(check(org, "--proxy", QUIET.key(PROXY), "--format", "json", "--fail-on", "warning")) == EXIT_OK
    findings = by_proxy(json.loads(capsys.readouterr().out))
    assert set(findings) == {QUIET.key(PROXY)}


@pytest.mark.parametrize(
    ("proxy", "code"),
    [
        (PAGING.key(PROXY), EXIT_FINDINGS),  # critical pinning
        (DENIED.key(dx.SCOPE_WIDE), EXIT_FINDINGS),  # member_unreachable is a warning
        (QUIET.key(dx.SCOPE_WIDE), EXIT_OK),  # every proxy of a healthy member
    ],
)
def test_given_fail_on_warning_when_members_are_checked_then_the_exit_code_follows_their_worst_finding(
    org: EmulatedOrganization, proxy: str, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(check(org, "--proxy", proxy, "--fail-on", "warning")) == code
    capsys.readouterr()


def test_given_a_key_no_member_has_when_checked_then_it_is_named_and_fails_a_warning_gate(
    org: EmulatedOrganization, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = QUIET.key("no-such-db")
    assert main(check(org, "--proxy", missing, "--format", "json", "--fail-on", "warning")) == EXIT_FINDINGS
    captured = capsys.readouterr()
    assert json.loads(captured.out) == []
    assert f"pinwatch check: {missing}: no such proxy in account {QUIET.account}, Region {REGION}" in captured.err


def test_given_a_bare_name_in_organization_mode_when_checked_then_it_is_refused_with_the_key_form(
    org: EmulatedOrganization, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(check(org, "--proxy", PROXY)) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"pinwatch check: error: --proxy {PROXY}: in organization mode name a proxy by its key")
    assert "ACCOUNT:REGION:NAME" in err
    assert "\n" not in err


def test_given_the_function_variables_when_checked_then_they_select_organization_mode_like_the_flags(
    org: EmulatedOrganization, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in org.check_environment().items():
        monkeypatch.setenv(name, value)
    argv = ["check", "--endpoint-url", org.endpoint, "--region", HOME, "--format", "json"]
    assert main([*argv, "--proxy", PAGING.key(PROXY)]) == EXIT_OK
    findings = by_proxy(json.loads(capsys.readouterr().out))
    assert set(findings) == {PAGING.key(PROXY)}


def test_given_an_account_listed_only_as_an_extra_target_when_checked_then_it_is_diagnosed_with_the_members(
    org: EmulatedOrganization, outside: Scope, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(check(org, "--format", "json")) == EXIT_OK
    assert not any(key.startswith(outside.prefix) for key in by_proxy(json.loads(capsys.readouterr().out)))

    target = f"{outside.account}:{outside.region}"
    # Repeated, and one repeating a StackSet member: each account and Region is still checked once.
    argv = check(org, "--extra-target", target, "--extra-target", f"{QUIET.account}:{QUIET.region}", "--format", "json")
    assert main(argv) == EXIT_OK
    findings = by_proxy(json.loads(capsys.readouterr().out))

    forecast = next(f for f in findings[outside.key(PROXY)] if f["rule"] == dx.EXHAUSTION_FORECAST)
    assert forecast["severity"] == "critical"
    assert (forecast["account"], forecast["region"]) == (outside.account, outside.region)
    assert {PAGING.key(PROXY), QUIET.key(PROXY)} <= set(findings)
    assert len([f for f in findings[QUIET.key(PROXY)] if f["rule"] == dx.EXHAUSTION_FORECAST]) == 1


@pytest.mark.parametrize("value", ["444444444444", "444444444444/ca-central-1", "ca-central-1:444444444444"])
def test_given_an_extra_target_that_is_not_account_colon_region_when_checked_then_the_configs_message_exits_2(
    org: EmulatedOrganization, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(check(org, "--extra-target", value)) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("pinwatch check: error: ")
    assert f"ORG_EXTRA_TARGETS contains {value!r}, not ACCOUNT:REGION" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--proxy", PAGING.key(PROXY)], "is an organization key: add --member-stack-set NAME"),
        (["--call-as", "DELEGATED_ADMIN"], "--call-as and --member-role are for organization mode"),
        (["--extra-target", f"{OUTSIDE.account}:{REGION}"], "ORG_EXTRA_TARGETS adds accounts to an organization's"),
    ],
)
def test_given_organization_arguments_without_a_stack_set_when_checked_then_the_usage_error_says_so(
    org: EmulatedOrganization, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--endpoint-url", org.endpoint, "--region", HOME, *extra]) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_given_a_stack_set_that_does_not_exist_when_checked_then_a_one_line_error_exits_2(
    org: EmulatedOrganization, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["check", "--endpoint-url", org.endpoint, "--region", HOME, "--member-stack-set", "no-such-stack-set"]
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("pinwatch check: error: ListStackInstances failed")
    assert "\n" not in err


def test_given_a_dry_run_with_table_and_topic_when_checked_then_messages_name_the_account_and_nothing_is_sent(
    org: EmulatedOrganization,
    dynamodb_endpoint: str,
    summary_table: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sns, sqs = (org.central_client(service) for service in ("sns", "sqs"))
    topic = sns.create_topic(Name=f"pinwatch-alerts-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    # The environment's endpoints, not --endpoint-url (which would send the table's calls to moto too).
    monkeypatch.setenv("AWS_ENDPOINT_URL", org.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    monkeypatch.setenv("ALERT_TOPIC_ARN", topic)

    argv = check(org, "--table", summary_table, "--dry-run", "--proxy", PAGING.key(PROXY), endpoint=False)
    assert main([*argv, "--format", "json"]) == EXIT_OK
    findings: list[dict[str, Any]] = json.loads(capsys.readouterr().out)

    forecast = next(f for f in findings if f["rule"] == dx.EXHAUSTION_FORECAST)
    assert forecast["notification"] == {"transition": "new", "channels": ["sns"]}
    subject = forecast["messages"]["sns"]["Subject"]
    assert PAGING.account in subject
    assert PAGING.region in subject
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0).get("Messages", []) == []
    # The table's preview names the proxy as the alert does, with its place.
    assert main(argv) == EXIT_OK
    assert f"would send to sns for {PROXY} ({PAGING.account}, {REGION})" in capsys.readouterr().out
