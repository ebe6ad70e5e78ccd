"""Organization mode: an account enrolled outside the member StackSet is checked when listed in ``ORG_EXTRA_TARGETS``.

The management account is the case in point: service-managed StackSets never deploy to it, so it
is enrolled by deploying the member template there as a plain stack. Here the monitoring account
(moto's default account) plays it, as when the check runs in the management account (CallAs
SELF): its read role comes from a plain stack, its proxy is named like a StackSet member's.
Real components: moto's StackSet and stacks, ``sts:AssumeRole``, the check wired by
:func:`pinwatch.wiring.org_check` and, for the single-account case, :func:`pinwatch.wiring.connection_check`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import boto3
import pytest

from pinwatch import wiring
from pinwatch.config import CheckConfig
from pinwatch.diagnose import PINNED_SHARE
from pinwatch.findings import Severity
from pinwatch.local.alarms import ACCOUNT_ID as MONITORING_ACCOUNT
from pinwatch.local.org import EmulatedOrganization, member_template, setup_organization
from pinwatch.members import MemberSessions
from pinwatch.metrics import window_end_ms
from pinwatch.scope import Scope
from tests.integration.aws_proxies import draining_shapes, healthy_busy_shapes

pytestmark = pytest.mark.integration

HOME = "us-east-1"
REGION = "sa-east-1"  # a Region of their own keeps these proxies to these tests
STACKED = Scope("121212121212", REGION)  # a stack instance of the member StackSet
MANAGEMENT = Scope(MONITORING_ACCOUNT, REGION)  # enrolled by a plain member stack
PROXY = "orders-db"


@pytest.fixture(scope="module")
def org(moto_endpoint: str) -> EmulatedOrganization:
    """One StackSet member and the management account, each with a pinning ``orders-db``."""
    end_ms = window_end_ms(int(time.time() * 1000))
    organization = setup_organization(
        moto_endpoint, (STACKED,), stack_set=f"pinwatch-members-{uuid.uuid4().hex[:6]}", member_home_region=REGION
    )
    # What an administrator does in the management account: org/member.yaml as a plain stack.
    organization.member_client(MANAGEMENT.account, "cloudformation", REGION).create_stack(
        StackName="pinwatch-member",
        TemplateBody=member_template(organization.role_name),
        Parameters=[{"ParameterKey": "HomeRegion", "ParameterValue": REGION}],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    for scope, shapes in ((STACKED, healthy_busy_shapes()), (MANAGEMENT, draining_shapes())):
        organization.create_proxy(scope, PROXY)
        organization.put_series(scope, PROXY, end_ms, shapes)
    return organization


def _clients(org: EmulatedOrganization, region: str = HOME) -> wiring.ClientFactory:
    def client(service: str) -> Any:
        factory: Any = boto3.client
        return factory(service, endpoint_url=org.endpoint, region_name=region)

    return client


def _org_reports(org: EmulatedOrganization, **environ: str) -> dict[str, Any]:
    config = CheckConfig.from_env(org.check_environment(SETUP_FAILED_EVERY_MINUTES="1", **environ), require_table=False)
    clients = _clients(org)

    def make(service: str, **settings: str) -> Any:
        factory: Any = boto3.client
        return factory(service, endpoint_url=org.endpoint, **settings)

    sessions = MemberSessions(clients("sts"), config.org_member_role_name, make)
    check = wiring.org_check(config, clients, sessions=sessions)
    return {r.proxy: r for r in check.run(int(time.time() * 1000)).reports}


def test_given_the_management_account_listed_as_extra_when_the_org_check_runs_then_it_is_checked_like_a_member(
    org: EmulatedOrganization,
) -> None:
    reports = _org_reports(org, ORG_EXTRA_TARGETS=f"{MANAGEMENT.account}:{REGION}")

    assert set(reports) == {STACKED.key(PROXY), MANAGEMENT.key(PROXY)}
    management = reports[MANAGEMENT.key(PROXY)]
    assert management.status != "unreachable"
    assert management.severity is not Severity.OK
    assert PINNED_SHARE in {f.rule for f in management.findings if f.severity is not Severity.OK}
    assert reports[STACKED.key(PROXY)].severity is Severity.OK


def test_given_no_extra_targets_when_the_org_check_runs_then_only_the_stack_sets_members_are_checked(
    org: EmulatedOrganization,
) -> None:
    reports = _org_reports(org)

    assert set(reports) == {STACKED.key(PROXY)}


def test_given_an_extra_target_already_in_the_stack_set_when_the_org_check_runs_then_it_is_checked_once(
    org: EmulatedOrganization,
) -> None:
    reports = _org_reports(org, ORG_EXTRA_TARGETS=f"{STACKED.account}:{REGION},{STACKED.account}:{REGION}")

    assert list(reports) == [STACKED.key(PROXY)]


def test_given_a_single_account_check_in_the_same_account_then_its_proxy_keeps_its_plain_name(
    org: EmulatedOrganization,
) -> None:
    config = CheckConfig.from_env({"SETUP_FAILED_EVERY_MINUTES": "1"}, require_table=False)
    check = wiring.connection_check(config, _clients(org, REGION))

    reports = {r.proxy: r for r in check.run(int(time.time() * 1000)).reports}

    assert set(reports) == {PROXY}
    assert reports[PROXY].severity is not Severity.OK
