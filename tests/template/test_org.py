"""Organization mode: what the central stack, the member StackSet and the collector StackSet create.

The central template is checked rendered (SAM transform applied) with OrganizationId set and
empty; the two StackSet templates are plain CloudFormation and are read as CloudFormation reads
them, once per Region a stack instance lands in.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pinwatch.parse import PIN_PHRASE, WOULD_PIN_PHRASE
from tests.template.cfn import (
    ACCOUNT,
    REGION,
    RENDER_SCRIPT,
    ROOT,
    SAM_PYTHON,
    Stack,
    as_list,
    iam_statements,
    load_plain,
    plain_stack,
    stack,
)
from tests.template.test_template import NAMED

pytestmark = pytest.mark.template

MEMBER = ROOT / "org" / "member.yaml"
COLLECTOR = ROOT / "org" / "collector.yaml"
ORG_ID = "o-a1b2c3d4e5"
OU = "ou-ab12-cd34ef56"
ORG = {"OrganizationId": ORG_ID, "OrganizationalUnitIds": OU, "MemberRegions": "eu-west-1,ap-southeast-2"}
ROUTES = json.dumps({"111111111111": {"alert_topic_arn": f"arn:aws:sns:{REGION}:{ACCOUNT}:pinwatch-team-a"}})
# The last commit before organization mode: single-account stacks must create exactly what it did.
SINGLE_ACCOUNT_BASELINE = "f5ecd8d"

MEMBER_ACCOUNT = "111111111111"
MONITORING_ACCOUNT = "999999999999"
HOME = "us-east-1"
OTHER_REGION = "eu-west-1"
CENTRAL_BUS = f"arn:aws:events:{HOME}:{MONITORING_ACCOUNT}:event-bus/pinwatch-org"
CHECK_ROLE = f"arn:aws:iam::{MONITORING_ACCOUNT}:role/pinwatch-ConnectionCheckFunctionRole-AbC"
MEMBER_PARAMS = {
    "MonitoringAccountId": MONITORING_ACCOUNT,
    "HomeRegion": HOME,
    "DestinationName": "pinwatch-pins",
    "CentralEventBusArn": CENTRAL_BUS,
    "CheckRoleArn": CHECK_ROLE,
}
PROXY_LOG_GROUPS = ("/aws/rds/proxy/orders-db", "/aws/rds/proxy/billing-db", "/aws/rds/proxy/audit-db")


@pytest.fixture(scope="module")
def org() -> Stack:
    return stack(ORG)


@pytest.fixture(scope="module")
def org_with_routes() -> Stack:
    return stack({**ORG, "AccountRoutes": ROUTES, "ReasonCapture": "on-incident"})


def _member(region: str = HOME, **overrides: str) -> Stack:
    # Pseudo parameters of a member account's stack instance, not the monitoring account's.
    s = plain_stack(MEMBER, {**MEMBER_PARAMS, **overrides}, region=region)
    s.pseudo["AWS::AccountId"] = MEMBER_ACCOUNT
    return s


def _stack_set_parameters(s: Stack, logical_id: str) -> dict[str, Any]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in s.prop(logical_id, "Parameters")}


def _central_pattern() -> str:
    return str(load_plain(ROOT / "template.yaml")["Mappings"]["Pins"]["Filter"]["Pattern"])


# ---------------------------------------------------------------------------- single account unchanged
def _render_baseline(parameters: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{SINGLE_ACCOUNT_BASELINE}:template.yaml"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"baseline commit {SINGLE_ACCOUNT_BASELINE} not in this clone: {proc.stderr.strip()}")
    baseline = tmp_path / "template.yaml"
    baseline.write_text(proc.stdout, encoding="utf-8")
    args = [str(SAM_PYTHON), str(RENDER_SCRIPT), str(baseline)]
    for name, value in parameters.items():
        args += ["--param", f"{name}={value}"]
    rendered = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    result: dict[str, Any] = json.loads(rendered.stdout)
    return result


@pytest.mark.parametrize("params", [{}, NAMED], ids=["every-proxy", "named"])
def test_given_no_organization_id_when_rendered_then_every_resource_and_property_is_as_before_organization_mode(
    params: dict[str, str], tmp_path: Path
) -> None:
    now = stack(params)
    before = Stack(_render_baseline(params, tmp_path), params)

    assert sorted(now.resources) == sorted(before.resources)
    for logical_id in now.resources:
        assert now.resources[logical_id]["Type"] == before.resources[logical_id]["Type"]
        assert now.prop(logical_id) == before.prop(logical_id), logical_id


def test_given_no_organization_id_when_rendered_then_no_organization_resource_or_variable_exists() -> None:
    s = stack()
    check_env = s.prop("ConnectionCheckFunction", "Environment", "Variables")

    for resource_type in (
        "AWS::CloudFormation::StackSet",
        "AWS::Kinesis::Stream",
        "AWS::Events::EventBus",
        "AWS::Events::EventBusPolicy",
        "AWS::Lambda::EventSourceMapping",
    ):
        assert s.of_type(resource_type) == {}, resource_type
    assert "PinStreamFunction" not in s.resources
    assert not {"ORG_MEMBER_STACK_SET", "ORG_STACK_SET_CALL_AS", "ORG_MEMBER_ROLE_NAME", "ACCOUNT_ROUTES"} & set(
        check_env
    )


# ---------------------------------------------------------------------------- StackSets
def test_given_org_mode_then_the_stack_set_templates_are_plain_cloudformation_without_transforms() -> None:
    for path in (MEMBER, COLLECTOR):
        template = load_plain(path)
        assert "Transform" not in template, path
        assert not any(key.startswith("Fn::ForEach") for key in template["Resources"]), path
        assert not any(r["Type"].startswith("AWS::Serverless::") for r in template["Resources"].values()), path


def test_given_org_mode_when_rendered_then_both_stack_sets_are_service_managed_and_the_member_one_follows_the_collector(
    org: Stack,
) -> None:
    sets = org.of_type("AWS::CloudFormation::StackSet")
    (member,) = [k for k in sets if org.prop(k, "TemplateURL") == "org/member.yaml"]
    (collector,) = [k for k in sets if org.prop(k, "TemplateURL") == "org/collector.yaml"]

    for logical_id in (member, collector):
        assert org.prop(logical_id, "PermissionModel") == "SERVICE_MANAGED"
        assert org.prop(logical_id, "CallAs") == "DELEGATED_ADMIN"
        assert (ROOT / org.prop(logical_id, "TemplateURL")).is_file()
    assert org.prop(member, "AutoDeployment") == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert collector in as_list(org.resources[member]["DependsOn"])
    assert org.prop(member, "Capabilities") == ["CAPABILITY_NAMED_IAM"]
    # The check finds its targets through the member StackSet, by name.
    assert org.prop(member, "StackSetName") == org.prop(
        "ConnectionCheckFunction", "Environment", "Variables", "ORG_MEMBER_STACK_SET"
    )


def test_given_member_regions_when_rendered_then_every_account_of_the_ous_gets_this_region_and_the_member_regions(
    org: Stack,
) -> None:
    member = "MemberStackSet"
    (group,) = org.prop(member, "StackInstancesGroup")

    assert group["Regions"] == [REGION, "eu-west-1", "ap-southeast-2"]
    assert group["DeploymentTargets"] == {"OrganizationalUnitIds": [OU]}
    # The read role is created by the stack in the central stack's Region.
    assert _stack_set_parameters(org, member)["HomeRegion"] == REGION


def test_given_no_member_regions_when_rendered_then_only_the_home_region_is_deployed() -> None:
    s = stack({**ORG, "MemberRegions": ""})

    for logical_id in s.of_type("AWS::CloudFormation::StackSet"):
        (group,) = s.prop(logical_id, "StackInstancesGroup")
        assert group["Regions"] == [REGION]


def test_given_org_mode_when_rendered_then_the_collector_goes_to_this_account_only_in_every_member_region(
    org: Stack,
) -> None:
    (group,) = org.prop("CollectorStackSet", "StackInstancesGroup")
    member_regions = org.prop("MemberStackSet", "StackInstancesGroup")[0]["Regions"]

    assert group["DeploymentTargets"] == {
        "OrganizationalUnitIds": [OU],
        "Accounts": [ACCOUNT],
        "AccountFilterType": "INTERSECTION",
    }
    assert group["Regions"] == member_regions


def test_given_org_mode_when_rendered_then_stack_set_parameters_are_exactly_what_the_templates_declare(
    org_with_routes: Stack,
) -> None:
    s = org_with_routes
    member = _stack_set_parameters(s, "MemberStackSet")
    collector = _stack_set_parameters(s, "CollectorStackSet")
    member_declared = load_plain(MEMBER)["Parameters"]
    collector_declared = load_plain(COLLECTOR)["Parameters"]

    assert set(member) <= set(member_declared)
    assert {name for name, spec in member_declared.items() if "Default" not in spec} <= set(member)
    assert set(collector) == set(collector_declared)
    # Both StackSets agree on the destination: members build its ARN from the name.
    assert member["DestinationName"] == collector["DestinationName"]
    assert member["MonitoringAccountId"] == ACCOUNT
    assert member["CentralEventBusArn"] == "getatt:OrgEventBus.Arn"
    assert member["CheckRoleArn"] == f"getatt:{_check_role_id(s)}.Arn"
    assert member["ReasonCapture"] == "on-incident"
    assert collector["StreamArn"] == "getatt:OrgPinStream.Arn"
    assert collector["DeliveryRoleArn"] == "getatt:OrgLogsDeliveryRole.Arn"
    assert collector["OrganizationId"] == ORG_ID
    # This account is a member too: its policy must leave pinwatch's own function logs out.
    assert set(member["ExcludedLogGroupNames"].split(",")) == {
        f"/aws/lambda/pinwatch-{name}" for name in ("pin-ingest", "connection-check", "pin-stream")
    }


def _check_role_id(s: Stack) -> str:
    return str(s.resources["ConnectionCheckFunction"]["Properties"]["Role"]["Fn::GetAtt"][0])


# ---------------------------------------------------------------------------- central: stream and its function
def test_given_org_mode_when_rendered_then_pin_lines_go_through_a_kms_encrypted_stream_only_logs_of_the_org_may_fill(
    org: Stack,
) -> None:
    (stream,) = org.of_type("AWS::Kinesis::Stream")
    role = org.prop("OrgLogsDeliveryRole")

    assert org.prop(stream, "StreamEncryption") == {"EncryptionType": "KMS", "KeyId": "getatt:PinwatchKey.Arn"}
    assert org.prop(stream, "ShardCount") == "1"
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "logs.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceOrgID": ORG_ID}}
    grants = {(a, st["Resource"]) for st in iam_statements(role) for a in as_list(st["Action"])}
    assert grants == {("kinesis:PutRecord", f"getatt:{stream}.Arn"), ("kms:GenerateDataKey", "getatt:PinwatchKey.Arn")}


def test_given_org_mode_when_rendered_then_the_stream_function_runs_like_the_ingest_with_the_contracts_mapping(
    org: Stack,
) -> None:
    ingest = org.resources["PinIngestFunction"]["Properties"]
    function = org.resources["PinStreamFunction"]["Properties"]
    (mapping_id,) = org.of_type("AWS::Lambda::EventSourceMapping")
    queue = "getatt:IngestDeadLetterQueue.Arn"

    for key in ("Runtime", "Architectures", "Layers", "Handler"):
        assert function[key] == ingest[key], key
    assert set(org.prop("PinStreamFunction", "Environment", "Variables")) == {
        "SUMMARY_TABLE_NAME",
        "SUMMARY_TTL_DAYS",
        "PARKING_QUEUE_URL",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
    }
    assert org.prop("PinStreamFunction", "Environment", "Variables", "PARKING_QUEUE_URL") == "ref:IngestDeadLetterQueue"
    mapping = org.prop(mapping_id)
    assert mapping["FunctionName"] == "ref:PinStreamFunction"
    assert mapping["EventSourceArn"] == "getatt:OrgPinStream.Arn"
    assert {k: mapping[k] for k in _MAPPING_CONTRACT} == _MAPPING_CONTRACT
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": queue}}


_MAPPING_CONTRACT = {
    "StartingPosition": "TRIM_HORIZON",
    "BatchSize": 100,
    "MaximumBatchingWindowInSeconds": 5,
    "BisectBatchOnFunctionError": True,
    "MaximumRetryAttempts": 5,
    "FunctionResponseTypes": ["ReportBatchItemFailures"],
    "ParallelizationFactor": 1,
}


def test_given_org_mode_when_rendered_then_the_stream_function_writes_counts_parks_records_and_reads_its_stream(
    org: Stack,
) -> None:
    role = org.prop(org.resources["PinStreamFunction"]["Properties"]["Role"]["Fn::GetAtt"][0])
    statements = iam_statements(role)
    grants = {(a, r) for st in statements for a in as_list(st["Action"]) for r in as_list(st["Resource"])}

    table = "getatt:SummaryTable.Arn"
    assert {("dynamodb:PutItem", table), ("dynamodb:UpdateItem", table)} <= grants
    assert not any(a in {"dynamodb:DeleteItem", "dynamodb:Scan", "dynamodb:GetItem"} for a, _ in grants)
    assert ("sqs:SendMessage", "getatt:IngestDeadLetterQueue.Arn") in grants
    assert {("kms:Decrypt", "getatt:PinwatchKey.Arn"), ("kms:GenerateDataKey*", "getatt:PinwatchKey.Arn")} <= grants
    # Shard reads come with the Kinesis event source (SAM's execution policy for it).
    assert any("AWSLambdaKinesisExecutionRole" in str(arn) for arn in role["ManagedPolicyArns"])


# ---------------------------------------------------------------------------- central: trigger and check
def test_given_org_mode_when_rendered_then_only_the_organization_may_put_events_on_the_bus_whose_rule_runs_the_check(
    org: Stack,
) -> None:
    (bus,) = org.of_type("AWS::Events::EventBus")
    (policy,) = org.of_type("AWS::Events::EventBusPolicy")
    (rule,) = [r for r in org.of_type("AWS::Events::Rule") if org.prop(r).get("EventBusName") == f"ref:{bus}"]
    member_alarm = _member().prop("PinnedContributorsAlarm", "AlarmName")

    statement = org.prop(policy, "Statement")
    assert statement["Principal"] == "*"
    assert statement["Action"] == "events:PutEvents"
    assert statement["Resource"] == f"getatt:{bus}.Arn"
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}}
    pattern = org.prop(rule, "EventPattern")
    assert pattern["detail-type"] == ["CloudWatch Alarm Contributor State Change"]
    assert pattern["detail"]["alarmName"] == [member_alarm]
    # OK too: the check keeps each contributor's state from the events (pinwatch.store.hot_state).
    assert sorted(pattern["detail"]["state"]["value"]) == ["ALARM", "OK"]
    assert [t["Arn"] for t in org.prop(rule, "Targets")] == ["getatt:ConnectionCheckFunction.Arn"]
    # This account's member stack owns the alarm of that name here (names are unique per Region).
    assert not any(org.prop(a).get("AlarmName") == member_alarm for a in org.of_type("AWS::CloudWatch::Alarm"))
    (permission,) = [
        p for p in org.of_type("AWS::Lambda::Permission") if org.prop(p, "SourceArn") == f"getatt:{rule}.Arn"
    ]
    assert org.prop(permission, "Principal") == "events.amazonaws.com"


def test_given_org_mode_when_rendered_then_the_default_bus_rule_is_off_so_the_own_member_alarm_runs_the_check_once(
    org: Stack,
) -> None:
    # The stack named pinwatch: its default-bus rule would match this account's own member alarm,
    # whose events already reach the check through the organization's bus.
    member_alarm = _member().prop("PinnedContributorsAlarm", "AlarmName")
    on_default_bus = [r for r in org.of_type("AWS::Events::Rule") if "EventBusName" not in org.prop(r)]
    contributor_rules = [r for r in on_default_bus if "EventPattern" in org.prop(r)]
    assert [org.prop(r, "EventPattern")["detail"]["alarmName"] for r in contributor_rules] == [[member_alarm]]
    assert [org.prop(r).get("State") for r in contributor_rules] == ["DISABLED"]
    # Single account: the same rule, enabled (no State: EventBridge's default), matching the stack's alarm.
    single = stack()
    (rule,) = [r for r in single.of_type("AWS::Events::Rule") if "EventPattern" in single.prop(r)]
    assert "State" not in single.prop(rule)
    assert single.prop(rule, "EventPattern")["detail"]["alarmName"] == [
        single.prop("PinnedContributorsAlarm", "AlarmName")
    ]


def test_given_org_mode_when_rendered_then_the_check_knows_its_stack_set_and_may_assume_only_org_member_read_roles(
    org: Stack,
) -> None:
    env = org.prop("ConnectionCheckFunction", "Environment", "Variables")
    statements = iam_statements(org.prop(_check_role_id(org)))

    assert env["ORG_MEMBER_STACK_SET"] == "pinwatch-member"
    assert env["ORG_STACK_SET_CALL_AS"] == "DELEGATED_ADMIN"
    assert env["ORG_MEMBER_ROLE_NAME"] == "pinwatch-member-reader"
    assert env["ACCOUNT_ROUTES"] == ""
    (assume,) = [st for st in statements if "sts:AssumeRole" in as_list(st["Action"])]
    assert assume["Resource"] == "arn:aws:iam::*:role/pinwatch-member-reader"
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORG_ID}}
    (listing,) = [st for st in statements if "cloudformation:ListStackInstances" in as_list(st["Action"])]
    assert listing["Resource"] == f"arn:aws:cloudformation:{REGION}:*:stackset/pinwatch-member:*"
    # No routes configured: no access to other secrets or topics than the stack's own.
    assert not any(str(st["Resource"]).endswith(("secret:pinwatch/*", ":pinwatch-*")) for st in statements)
    # The member contributor states (pk WATCHED) are conditional puts, an OK too: no delete or update.
    table = "getatt:SummaryTable.Arn"
    dynamodb = {
        (a, r) for st in statements for a in as_list(st["Action"]) for r in as_list(st["Resource"]) if "dynamodb:" in a
    }
    assert dynamodb == {("dynamodb:Query", table), ("dynamodb:PutItem", table)}


def test_given_account_routes_when_rendered_then_the_check_may_use_only_pinwatch_named_secrets_and_topics(
    org_with_routes: Stack,
) -> None:
    s = org_with_routes
    env = s.prop("ConnectionCheckFunction", "Environment", "Variables")
    statements = iam_statements(s.prop(_check_role_id(s)))

    assert json.loads(env["ACCOUNT_ROUTES"]) == json.loads(ROUTES)
    secrets = [st["Resource"] for st in statements if "secretsmanager:GetSecretValue" in as_list(st["Action"])]
    topics = [st["Resource"] for st in statements if "sns:Publish" in as_list(st["Action"])]
    assert f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:pinwatch/*" in secrets
    assert f"arn:aws:sns:{REGION}:{ACCOUNT}:pinwatch-*" in topics


@pytest.mark.parametrize("params", [ORG, {**ORG, **NAMED}], ids=["every-proxy", "named"])
def test_given_org_mode_when_rendered_then_this_accounts_own_subscription_policy_is_left_to_its_member_stack(
    params: dict[str, str],
) -> None:
    s = stack(params)

    # An account has one account-level subscription filter policy per Region: the member stack's.
    assert s.of_type("AWS::Logs::AccountPolicy") == {}
    assert s.output("SubscriptionMode") == "organization"


# ---------------------------------------------------------------------------- collector
def test_given_the_collector_then_its_destination_feeds_the_stream_and_admits_only_the_organization() -> None:
    params = {
        "DestinationName": "pinwatch-pins",
        "OrganizationId": ORG_ID,
        "StreamArn": f"arn:aws:kinesis:{HOME}:{ACCOUNT}:stream/pinwatch-pins",
        "DeliveryRoleArn": f"arn:aws:iam::{ACCOUNT}:role/pinwatch-OrgLogsDeliveryRole-X",
    }
    s = plain_stack(COLLECTOR, params, region=OTHER_REGION)
    (destination,) = s.of_type("AWS::Logs::Destination")

    assert s.prop(destination, "DestinationName") == "pinwatch-pins"
    assert s.prop(destination, "TargetArn") == params["StreamArn"]
    assert s.prop(destination, "RoleArn") == params["DeliveryRoleArn"]
    (statement,) = json.loads(s.prop(destination, "DestinationPolicy"))["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == "*"
    assert sorted(statement["Action"]) == ["logs:PutAccountPolicy", "logs:PutSubscriptionFilter"]
    assert statement["Resource"] == f"arn:aws:logs:{OTHER_REGION}:{ACCOUNT}:destination:pinwatch-pins"
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": [ORG_ID]}}


# ---------------------------------------------------------------------------- member
def test_given_a_member_when_deployed_per_region_then_the_read_role_exists_once_and_each_region_has_its_own_roles() -> (
    None
):
    home, other = _member(HOME), _member(OTHER_REGION)

    def role_names(s: Stack) -> set[str]:
        return {s.prop(r, "RoleName") for r in s.of_type("AWS::IAM::Role")}

    # IAM is global: the fixed-name read role only in the home Region, the others named per Region
    # so that no Region's stack waits for another's (StackSets keep no Region order for new accounts).
    assert role_names(home) == {"pinwatch-member-reader", f"pinwatch-logs-{HOME}", f"pinwatch-events-{HOME}"}
    assert role_names(other) == {f"pinwatch-logs-{OTHER_REGION}", f"pinwatch-events-{OTHER_REGION}"}
    for s in (home, other):
        (policy,) = s.of_type("AWS::Logs::AccountPolicy")
        assert json.loads(s.prop(policy, "PolicyDocument"))["RoleArn"] == "getatt:LogSubscriptionRole.Arn"
        assert s.prop("ForwardContributorsRule", "Targets")[0]["RoleArn"] == "getatt:EventForwarderRole.Arn"


@pytest.mark.parametrize(("capture", "may_modify"), [("off", False), ("on-incident", True), ("always", True)])
def test_given_reason_capture_when_a_member_is_deployed_then_the_read_role_may_modify_proxies_only_with_capture(
    capture: str, may_modify: bool
) -> None:
    s = _member(ReasonCapture=capture)
    role = s.prop("MemberReadRole")
    grants = {(a, r) for st in iam_statements(role) for a in as_list(st["Action"]) for r in as_list(st["Resource"])}

    assert role["RoleName"] == "pinwatch-member-reader"
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": CHECK_ROLE}
    assert {a for a, _ in grants} == {
        "rds:DescribeDBProxies",
        "rds:DescribeDBProxyTargetGroups",
        "cloudwatch:GetMetricData",
    } | ({"rds:ModifyDBProxy"} if may_modify else set())
    if may_modify:
        assert {r for a, r in grants if a == "rds:ModifyDBProxy"} == {f"arn:aws:rds:*:{MEMBER_ACCOUNT}:db-proxy:*"}
    # Everything but GetMetricData (no resource types) is scoped to this account.
    assert all((r == "*" and a == "cloudwatch:GetMetricData") or f":{MEMBER_ACCOUNT}:" in r for a, r in grants)


OPERATORS = (
    f"arn:aws:iam::{MONITORING_ACCOUNT}:role/pinwatch-operators",
    f"arn:aws:iam::{MONITORING_ACCOUNT}:role/teams/sre-on-call",
)


def _read_grants(s: Stack) -> set[tuple[str, str]]:
    role = s.prop("MemberReadRole")
    return {(a, r) for st in iam_statements(role) for a in as_list(st["Action"]) for r in as_list(st["Resource"])}


def test_given_no_operator_roles_when_a_member_is_deployed_then_only_the_check_role_may_assume_the_read_role() -> None:
    trust = _member().prop("MemberReadRole", "AssumeRolePolicyDocument")

    assert trust["Statement"] == [{"Effect": "Allow", "Principal": {"AWS": CHECK_ROLE}, "Action": "sts:AssumeRole"}]


@pytest.mark.parametrize("capture", ["off", "on-incident"])
def test_given_operator_roles_when_a_member_is_deployed_then_they_may_assume_the_same_read_role_from_the_monitoring_account(
    capture: str,
) -> None:
    without = _member(ReasonCapture=capture)
    s = _member(ReasonCapture=capture, OperatorRoleArns=",".join(OPERATORS))
    check, operators = s.prop("MemberReadRole", "AssumeRolePolicyDocument")["Statement"]

    assert check == {"Effect": "Allow", "Principal": {"AWS": CHECK_ROLE}, "Action": "sts:AssumeRole"}
    assert sorted(operators["Principal"]["AWS"]) == sorted(OPERATORS)
    assert operators["Action"] == "sts:AssumeRole"
    assert operators["Condition"] == {"StringEquals": {"aws:PrincipalAccount": MONITORING_ACCOUNT}}
    # Least privilege: the operators' sessions get exactly the check's grants, nothing more.
    assert _read_grants(s) == _read_grants(without)
    assert ("rds:ModifyDBProxy" in {a for a, _ in _read_grants(s)}) is (capture != "off")
    # The role exists once per account: other Regions' stacks do not create it for operators either.
    assert "MemberReadRole" not in _member(OTHER_REGION, OperatorRoleArns=",".join(OPERATORS)).resources


def test_given_operator_roles_when_rendered_then_the_member_stack_set_passes_them_and_none_by_default(
    org: Stack,
) -> None:
    with_operators = stack({**ORG, "OperatorRoleArns": ",".join(OPERATORS)})

    assert _stack_set_parameters(with_operators, "MemberStackSet")["OperatorRoleArns"] == ",".join(OPERATORS)
    assert _stack_set_parameters(org, "MemberStackSet")["OperatorRoleArns"] == ""


@pytest.mark.parametrize(
    ("item", "allowed"),
    [
        ("", True),
        (OPERATORS[0], True),
        (OPERATORS[1], True),
        ("arn:aws-us-gov:iam::123456789012:role/pinwatch-operators", True),
        ("arn:aws:iam::123456789012:user/alice", False),
        ("arn:aws:iam::12345678901:role/ops", False),
        ("arn:aws:iam::123456789012:role/", False),
        ("arn:aws:sts::123456789012:assumed-role/ops/alice", False),
        ("123456789012", False),
        ("*", False),
    ],
)
def test_given_the_operator_roles_parameter_then_each_item_must_be_an_iam_role_arn_in_both_templates(
    item: str, allowed: bool
) -> None:
    central = load_plain(ROOT / "template.yaml")["Parameters"]["OperatorRoleArns"]
    member = load_plain(MEMBER)["Parameters"]["OperatorRoleArns"]

    for spec in (central, member):
        assert (spec["Type"], spec["Default"]) == ("CommaDelimitedList", "")
        # CloudFormation applies a CommaDelimitedList's pattern to each element (as Python's re here).
        assert (re.fullmatch(spec["AllowedPattern"], item) is not None) is allowed


@pytest.mark.parametrize("region", [HOME, OTHER_REGION])
def test_given_account_policy_mode_when_a_member_is_deployed_then_one_policy_named_for_the_region_sends_pin_lines(
    region: str,
) -> None:
    s = _member(region, ExcludedLogGroupNames="/aws/lambda/pinwatch-pin-ingest,/aws/lambda/pinwatch-connection-check")
    (policy,) = s.of_type("AWS::Logs::AccountPolicy")
    document = json.loads(s.prop(policy, "PolicyDocument"))

    assert s.prop(policy, "PolicyName") == f"pinwatch-{region}"
    assert s.prop(policy, "PolicyType") == "SUBSCRIPTION_FILTER_POLICY"
    assert s.prop(policy, "Scope") == "ALL"
    # The destination in the member's own Region of the monitoring account.
    assert document["DestinationArn"] == f"arn:aws:logs:{region}:{MONITORING_ACCOUNT}:destination:pinwatch-pins"
    assert document["FilterPattern"] == _central_pattern() == f'?"{PIN_PHRASE}" ?"{WOULD_PIN_PHRASE}"'
    assert s.prop(policy, "SelectionCriteria") == (
        'LogGroupName NOT IN ["/aws/lambda/pinwatch-pin-ingest", "/aws/lambda/pinwatch-connection-check"]'
    )
    assert s.of_type("AWS::Logs::SubscriptionFilter") == {}


def test_given_log_groups_mode_when_a_member_is_deployed_then_each_named_log_group_gets_one_filter() -> None:
    s = _member(OTHER_REGION, SubscriptionMode="log-groups", ProxyLogGroupNames=",".join(PROXY_LOG_GROUPS))
    filters = s.of_type("AWS::Logs::SubscriptionFilter")

    assert sorted(s.prop(f, "LogGroupName") for f in filters) == sorted(PROXY_LOG_GROUPS)
    for filter_id in filters:
        assert s.prop(filter_id, "FilterName") == f"pinwatch-{OTHER_REGION}"
        assert s.prop(filter_id, "FilterPattern") == _central_pattern()
        assert s.prop(filter_id, "DestinationArn") == (
            f"arn:aws:logs:{OTHER_REGION}:{MONITORING_ACCOUNT}:destination:pinwatch-pins"
        )
        assert s.prop(filter_id, "RoleArn") == "getatt:LogSubscriptionRole.Arn"
    assert s.of_type("AWS::Logs::AccountPolicy") == {}


def test_given_log_groups_mode_when_ten_names_are_given_then_all_ten_slots_are_used() -> None:
    names = [f"/aws/rds/proxy/p{i}" for i in range(10)]
    s = _member(SubscriptionMode="log-groups", ProxyLogGroupNames=",".join(names))

    assert sorted(s.prop(f, "LogGroupName") for f in s.of_type("AWS::Logs::SubscriptionFilter")) == sorted(names)
    # The declared limit is the number of slots: an 11th name is refused at deploy time.
    pattern = load_plain(MEMBER)["Parameters"]["ProxyLogGroupNames"]["AllowedPattern"]
    assert re.fullmatch(pattern, ",".join(names))
    assert not re.fullmatch(pattern, ",".join([*names, "/aws/rds/proxy/p10"]))


def test_given_no_subscription_when_a_member_is_deployed_then_no_pin_lines_and_no_subscription_role() -> None:
    s = _member(SubscriptionMode="none")

    assert s.of_type("AWS::Logs::AccountPolicy") == {}
    assert s.of_type("AWS::Logs::SubscriptionFilter") == {}
    assert {s.prop(r, "RoleName") for r in s.of_type("AWS::IAM::Role")} == {
        "pinwatch-member-reader",
        f"pinwatch-events-{HOME}",
    }


def test_given_a_member_when_deployed_then_the_central_alarm_query_feeds_a_rule_to_the_central_bus_only() -> None:
    s = _member(OTHER_REGION)
    central = stack().prop("PinnedContributorsAlarm")
    alarm = s.prop("PinnedContributorsAlarm")
    rule = s.prop("ForwardContributorsRule")
    forwarder = s.prop("EventForwarderRole")

    assert alarm["AlarmName"] == "pinwatch-pinned-connections"
    for key in ("Metrics", "EvaluationPeriods", "DatapointsToAlarm", "ComparisonOperator", "TreatMissingData"):
        assert alarm[key] == central[key], key
    assert alarm["Threshold"] == "0"
    assert "AlarmActions" not in alarm
    assert rule["EventPattern"]["detail"]["alarmName"] == [alarm["AlarmName"]]
    assert rule["EventPattern"]["detail-type"] == ["CloudWatch Alarm Contributor State Change"]
    # Both transitions: the central check watches a proxy from its ALARM until its OK (no polling).
    assert sorted(rule["EventPattern"]["detail"]["state"]["value"]) == ["ALARM", "OK"]
    assert [t["Arn"] for t in rule["Targets"]] == [CENTRAL_BUS]
    (trust,) = forwarder["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": MEMBER_ACCOUNT}}
    grants = {
        (a, r) for st in iam_statements(forwarder) for a in as_list(st["Action"]) for r in as_list(st["Resource"])
    }
    assert grants == {("events:PutEvents", CENTRAL_BUS)}


def test_given_the_member_subscription_role_then_only_cloudwatch_logs_for_this_account_may_assume_it() -> None:
    role = _member(OTHER_REGION).prop("LogSubscriptionRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    grants = {(a, r) for st in iam_statements(role) for a in as_list(st["Action"]) for r in as_list(st["Resource"])}

    assert trust["Principal"] == {"Service": "logs.amazonaws.com"}
    assert trust["Condition"] == {"StringLike": {"aws:SourceArn": f"arn:aws:logs:{OTHER_REGION}:{MEMBER_ACCOUNT}:*"}}
    assert grants == {("logs:PutLogEvents", f"arn:aws:logs:{OTHER_REGION}:{MEMBER_ACCOUNT}:log-group:*")}


# ---------------------------------------------------------------------------- samconfig
def _samconfig_org_parameters() -> dict[str, str]:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    overrides = config["org"]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in overrides)


def test_given_the_org_samconfig_environment_then_its_values_pass_the_templates_constraints_and_turn_org_mode_on() -> (
    None
):
    values = _samconfig_org_parameters()
    declared = load_plain(ROOT / "template.yaml")["Parameters"]

    assert set(values) <= set(declared)
    for name, value in values.items():
        spec = declared[name]
        items = value.split(",") if spec["Type"] == "CommaDelimitedList" else [value]
        for item in items:
            if "AllowedPattern" in spec:
                assert re.fullmatch(spec["AllowedPattern"], item), (name, item)
            if "AllowedValues" in spec:
                assert item in [str(v) for v in spec["AllowedValues"]], (name, item)
    json.loads(values["AccountRoutes"])
    s = stack(values)
    assert set(s.of_type("AWS::CloudFormation::StackSet")) == {"CollectorStackSet", "MemberStackSet"}
    assert s.prop("MemberStackSet", "StackInstancesGroup")[0]["Regions"] == ["us-east-1", "eu-west-1", "us-west-2"]


def test_given_org_mode_when_rendered_then_the_stream_function_failing_or_falling_behind_is_alarmed_to_the_topic(
    org: Stack,
) -> None:
    on_stream_function = {
        org.prop(a, "MetricName"): org.prop(a)
        for a in org.of_type("AWS::CloudWatch::Alarm")
        if org.prop(a).get("Dimensions") == [{"Name": "FunctionName", "Value": "ref:PinStreamFunction"}]
    }

    assert set(on_stream_function) == {"Errors", "IteratorAge"}
    for alarm in on_stream_function.values():
        assert alarm["AlarmActions"] == [org.ref("AlertTopic")]
        assert alarm["TreatMissingData"] == "notBreaching"
    # Alarmed well before records age out of the stream (24 hours).
    age = on_stream_function["IteratorAge"]
    assert age["Statistic"] == "Maximum"
    assert int(age["Threshold"]) < 24 * 3600 * 1000


# ---------------------------------------------------------------------------- accounts outside the StackSet
EXTRA_TARGETS = f"{MONITORING_ACCOUNT}:{HOME},{MONITORING_ACCOUNT}:{OTHER_REGION}"


def test_given_no_organization_id_when_extra_targets_are_given_then_the_check_gets_no_extra_targets() -> None:
    env = stack({"ExtraMemberTargets": EXTRA_TARGETS}).prop("ConnectionCheckFunction", "Environment", "Variables")
    assert "ORG_EXTRA_TARGETS" not in env


def test_given_org_mode_when_extra_targets_are_given_then_the_check_gets_them_and_the_same_org_scoped_assume_role(
    org: Stack,
) -> None:
    with_extras = stack({**ORG, "ExtraMemberTargets": EXTRA_TARGETS})
    env = with_extras.prop("ConnectionCheckFunction", "Environment", "Variables")

    assert env["ORG_EXTRA_TARGETS"] == EXTRA_TARGETS
    assert org.prop("ConnectionCheckFunction", "Environment", "Variables")["ORG_EXTRA_TARGETS"] == ""
    # The management account is in the organization: the one org-scoped statement covers its role too.
    statements = iam_statements(with_extras.prop(_check_role_id(with_extras)))
    (assume,) = [st for st in statements if "sts:AssumeRole" in as_list(st["Action"])]
    assert assume["Resource"] == "arn:aws:iam::*:role/pinwatch-member-reader"
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORG_ID}}


@pytest.mark.parametrize(
    ("item", "allowed"),
    [
        ("", True),
        ("123456789012:us-east-1", True),
        ("123456789012:ap-southeast-2", True),
        ("123456789012:us-gov-west-1", True),
        ("123456789012", False),
        ("12345678901:us-east-1", False),
        ("123456789012:US-EAST-1", False),
        ("us-east-1:123456789012", False),
        ("123456789012:us-east-1:orders-db", False),
        ("123456789012/us-east-1", False),
        (" 123456789012:us-east-1", False),
    ],
)
def test_given_the_extra_targets_parameter_then_each_item_must_be_account_colon_region(
    item: str, allowed: bool
) -> None:
    spec = load_plain(ROOT / "template.yaml")["Parameters"]["ExtraMemberTargets"]

    assert (spec["Type"], spec["Default"]) == ("CommaDelimitedList", "")
    # CloudFormation applies a CommaDelimitedList's pattern to each element (as Python's re here).
    assert (re.fullmatch(spec["AllowedPattern"], item) is not None) is allowed
