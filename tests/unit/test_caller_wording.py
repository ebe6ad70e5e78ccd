"""Whose permissions a finding about a denied call names: the check function's, or a member's read role."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pinwatch import diagnose as dx
from pinwatch import wiring
from pinwatch.check import ConnectionCheck
from pinwatch.config import CheckConfig, Thresholds
from pinwatch.discovery import Discovery, ProxyInfo
from pinwatch.findings import CaptureNote, Finding, Severity
from pinwatch.records import EngineFamily
from pinwatch.scope import Scope
from tests.unit.test_check_orchestration import NOW_MS, WINDOW, FakeMetrics, FakeProxies

MEMBER = Scope("111111111111", "eu-west-1")
ROLE = "pinwatch-member-reader"
LOGGING_OFF = Finding(
    "orders",
    dx.ENHANCED_LOGGING_OFF,
    Severity.INFO,
    "up to 40 pinned connections in the last 30 min but enhanced logging is off: pin reasons are unknown "
    "(the proxy logs them only with enhanced logging on)",
    details=("Enable it while investigating: aws rds modify-db-proxy …",),
)
FAILED = CaptureNote("on-incident", "failed", "could not switch enhanced logging on: x", error="AccessDenied: no")


def test_given_a_single_account_when_a_proxy_is_not_checked_then_the_advice_names_the_function_as_before() -> None:
    assert dx.caller_for(None, ROLE) is dx.CHECK_FUNCTION
    finding = dx.not_checked_finding("orders", "AccessDenied: no")
    assert finding.details == (
        "The other proxies were checked. This one is checked again on the next run; if the "
        "error persists, check the function's IAM permissions and the RDS and CloudWatch API quotas.",
    )


def test_given_a_single_account_when_capture_fails_then_the_advice_names_the_check_function_as_before() -> None:
    (note,) = dx.with_capture((LOGGING_OFF,), FAILED)
    assert note.details[-1] == "Check that the check function may call rds:ModifyDBProxy on the proxy."


def test_given_a_member_proxy_when_it_is_not_checked_then_the_advice_names_the_member_role_and_account() -> None:
    finding = dx.not_checked_finding("orders", "AccessDenied: no", dx.caller_for(MEMBER, ROLE))
    (advice,) = finding.details
    assert f"the IAM permissions of the member role {ROLE} in account {MEMBER.account}" in advice
    assert "function" not in advice


def test_given_a_member_proxy_when_capture_fails_then_the_advice_names_the_member_role_and_its_grant() -> None:
    (note,) = dx.with_capture((LOGGING_OFF,), FAILED, dx.caller_for(MEMBER, "custom-reader"))
    advice = note.details[-1]
    assert advice.startswith(
        f"Check that the member role custom-reader in account {MEMBER.account} may call rds:ModifyDBProxy"
    )
    assert "ReasonCapture" in advice  # the member stack grants the call only with capture on
    assert "check function" not in advice


def test_given_a_scoped_check_when_a_proxy_read_fails_then_its_finding_names_the_member_role() -> None:
    broken = ProxyInfo("orders", EngineFamily.MYSQL, "available", error="AccessDeniedException: not authorized")
    check = ConnectionCheck(
        proxies=FakeProxies(Discovery((broken,), ())),
        metrics=FakeMetrics({}),
        thresholds=Thresholds(),
        window_minutes=WINDOW,
        scope=MEMBER,
        caller=dx.caller_for(MEMBER, ROLE),
    )

    (report,) = check.run(NOW_MS).reports

    (finding,) = report.findings
    assert (finding.proxy, finding.rule) == (MEMBER.key("orders"), dx.NOT_CHECKED)
    assert f"member role {ROLE} in account {MEMBER.account}" in finding.details[0]


def _rds_denying_target_groups() -> tuple[Any, Stubber]:
    """An RDS client that lists one proxy and is denied its target group (a role without that permission)."""
    client = boto3.client("rds", region_name=MEMBER.region, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    listed = {"DBProxyName": "orders", "EngineFamily": "MYSQL", "Status": "available", "DebugLogging": True}
    stub.add_response("describe_db_proxies", {"DBProxies": [listed]}, {})
    stub.add_client_error("describe_db_proxy_target_groups", "AccessDenied", "not authorized")
    return client, stub


@pytest.mark.parametrize(
    ("scope", "whose"),
    [
        (MEMBER, f"the IAM permissions of the member role custom-reader in account {MEMBER.account}"),
        (None, "the function's IAM permissions"),
    ],
)
def test_given_the_wired_check_when_a_read_is_denied_then_the_finding_names_the_configured_caller(
    scope: Scope | None, whose: str
) -> None:
    config = CheckConfig.from_env(
        {"ORG_MEMBER_STACK_SET": "pinwatch-members", "ORG_MEMBER_ROLE_NAME": "custom-reader"}, require_table=False
    )
    rds, stub = _rds_denying_target_groups()
    cloudwatch = boto3.client("cloudwatch", region_name=MEMBER.region, aws_access_key_id="x", aws_secret_access_key="x")
    check = wiring.build_connection_check(config, rds_client=rds, cloudwatch_client=cloudwatch, scope=scope)

    with stub:
        (report,) = check.run(NOW_MS).reports

    (finding,) = report.findings
    assert finding.rule == dx.NOT_CHECKED
    assert f"check {whose} and the RDS and CloudWatch API quotas" in finding.details[0]
