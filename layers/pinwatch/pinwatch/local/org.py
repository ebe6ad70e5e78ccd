"""An AWS Organization on one moto server: member accounts, their read role, proxies and metric series.

What the central check sees in organization mode, set up as AWS would have it:

- the member StackSet (``pinwatch-members``) with a stack instance per member account and Region
  (``CreateStackSet`` + ``CreateStackInstances``); moto deploys each instance's stack into the
  member account, so its template's IAM role — the member read role — exists in that account,
  as the member template creates it;
- each member's proxies and ``AWS/RDS`` series, created with that account's credentials (moto maps
  an assumed role's credentials to the role's account): the same proxy name in two accounts is
  two proxies;
- a member whose role is missing (:meth:`EmulatedOrganization.remove_role`): ``AssumeRole`` then
  answers ``AccessDenied`` (:mod:`pinwatch.local.sts_shim`).

The monitoring account is moto's default account (the credentials the tests and the demo run with).
Used by the tests and ``pinwatch demo --org``; never by the functions. In short::

    org = setup_organization(endpoint)                     # 111111111111 and 222222222222 in eu-west-1
    scope = org.scopes[0]
    org.create_proxy(scope, "orders-db")                   # -> "111111111111:eu-west-1:orders-db"
    org.put_series(scope, "orders-db", end_ms, shapes)     # shapes: metric -> minute -> value per instance
    env = org.check_environment(AWS_ENDPOINT_URL=endpoint, SUMMARY_TABLE_NAME=...)
    # the check function loaded with env checks every member through its role (pinwatch.wiring.org_check)
    events = org.member_alarm(scope).evaluate(now_ms)     # the member alarm's forwarded contributor events
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3

from pinwatch.local import metric_series
from pinwatch.local.alarms import ACCOUNT_ID as MONITORING_ACCOUNT
from pinwatch.local.alarms import MetricsInsightsAlarm, cloudwatch_series
from pinwatch.local.sts_shim import ORGANIZATION_ACCESS_ROLE
from pinwatch.members import DEFAULT_MEMBER_ROLE
from pinwatch.scope import Scope

STACK_SET = "pinwatch-members"
MEMBER_ACCOUNTS = ("111111111111", "222222222222")
DEFAULT_MEMBERS = (Scope(MEMBER_ACCOUNTS[0], "eu-west-1"), Scope(MEMBER_ACCOUNTS[1], "eu-west-1"))
MEMBER_ALARM = "pinwatch-pinned-connections"  # each member's Metrics Insights alarm
CHECK_ROLE = "pinwatch-check"  # the central check function's role, trusted by every member role


def member_template(role_name: str = DEFAULT_MEMBER_ROLE, monitoring_account: str = MONITORING_ACCOUNT) -> str:
    """The part of the member template the central check depends on: the read role it assumes.

    Read-only RDS Proxy and CloudWatch access (what the check calls in a member), trusted by the
    monitoring account's check role. IAM roles are global: the stack instance in the ``HomeRegion``
    parameter's Region creates it, the account's other instances find it.
    """
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{monitoring_account}:role/{CHECK_ROLE}"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    reads = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "rds:DescribeDBProxies",
                    "rds:DescribeDBProxyTargetGroups",
                    "cloudwatch:GetMetricData",
                ],
                "Resource": "*",
            }
        ],
    }
    return json.dumps(
        {
            "Parameters": {"HomeRegion": {"Type": "String"}},
            "Conditions": {"IsHomeRegion": {"Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "HomeRegion"}]}},
            "Resources": {
                "MemberReadRole": {
                    "Type": "AWS::IAM::Role",
                    "Condition": "IsHomeRegion",
                    "Properties": {
                        "RoleName": role_name,
                        "AssumeRolePolicyDocument": trust,
                        "Policies": [{"PolicyName": "pinwatch-read", "PolicyDocument": reads}],
                    },
                }
            },
        }
    )


@dataclass
class EmulatedOrganization:
    """Members on a moto server at ``endpoint``; clients into them and helpers to populate them."""

    endpoint: str
    scopes: tuple[Scope, ...]
    stack_set: str = STACK_SET
    role_name: str = DEFAULT_MEMBER_ROLE
    home_region: str = "us-east-1"  # the monitoring account's Region (its StackSet, its check)
    member_home_region: str = ""  # where each member's role is created; default: the first member Region
    _credentials: dict[str, dict[str, str]] = field(default_factory=dict)
    _networks: dict[Scope, tuple[list[str], str]] = field(default_factory=dict)

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(sorted({s.account for s in self.scopes}))

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(sorted({s.region for s in self.scopes}))

    def central_client(self, service: str, region: str | None = None) -> Any:
        """A client of the monitoring account (moto's default credentials)."""
        factory: Any = boto3.client
        return factory(service, endpoint_url=self.endpoint, region_name=region or self.home_region)

    def member_client(self, account: str, service: str, region: str | None = None) -> Any:
        """A client in a member account, as its administrator (``OrganizationAccountAccessRole``)."""
        credentials = self._credentials.get(account)
        if credentials is None:
            given = self.central_client("sts").assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/{ORGANIZATION_ACCESS_ROLE}", RoleSessionName="pinwatch-setup"
            )["Credentials"]
            credentials = {
                "aws_access_key_id": given["AccessKeyId"],
                "aws_secret_access_key": given["SecretAccessKey"],
                "aws_session_token": given["SessionToken"],
            }
            self._credentials[account] = credentials
        factory: Any = boto3.client
        return factory(service, endpoint_url=self.endpoint, region_name=region or self.home_region, **credentials)

    def deploy_members(self) -> None:
        """The member StackSet and its stack instances: each member account gets the read role."""
        cloudformation = self.central_client("cloudformation")
        home = self.member_home_region or self.regions[0]
        homeless = [a for a in self.accounts if Scope(a, home) not in self.scopes]
        if homeless:
            # As with the real member template: an account without an instance in the home Region has no role.
            raise ValueError(f"accounts {', '.join(homeless)} have no member Region {home}, where the role is created")
        cloudformation.create_stack_set(
            StackSetName=self.stack_set,
            TemplateBody=member_template(self.role_name),
            Capabilities=["CAPABILITY_NAMED_IAM"],
            Parameters=[{"ParameterKey": "HomeRegion", "ParameterValue": home}],
        )
        # One instance per (account, Region); each account needs one in the home Region for its role.
        for region in self.regions:
            accounts = [s.account for s in self.scopes if s.region == region]
            cloudformation.create_stack_instances(StackSetName=self.stack_set, Accounts=accounts, Regions=[region])

    def remove_role(self, account: str) -> None:
        """Delete a member's read role (its policies first, as IAM requires): AssumeRole is then denied."""
        iam = self.member_client(account, "iam")
        for policy in iam.list_role_policies(RoleName=self.role_name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=self.role_name, PolicyName=policy)
        iam.delete_role(RoleName=self.role_name)

    def create_proxy(
        self,
        scope: Scope,
        name: str,
        engine: str = "MYSQL",
        *,
        debug_logging: bool = False,
        pool: Mapping[str, Any] | None = None,
    ) -> str:
        """An RDS proxy named ``name`` in the member's account and Region; returns its key."""
        rds = self.member_client(scope.account, "rds", scope.region)
        subnets, secret = self._network(scope)
        rds.create_db_proxy(
            DBProxyName=name,
            EngineFamily=engine,
            Auth=[{"AuthScheme": "SECRETS", "SecretArn": secret, "IAMAuth": "DISABLED"}],
            RoleArn=f"arn:aws:iam::{scope.account}:role/{name}-rds-proxy",
            VpcSubnetIds=subnets,
            DebugLogging=debug_logging,
            IdleClientTimeout=900,
        )
        if pool:
            rds.modify_db_proxy_target_group(
                DBProxyName=name, TargetGroupName="default", ConnectionPoolConfig=dict(pool)
            )
        return scope.key(name)

    def put_series(
        self,
        scope: Scope,
        proxy: str,
        end_ms: int,
        shapes: Mapping[str, metric_series.Shape],
        *,
        instances: int = 2,
        window: int = metric_series.WINDOW,
    ) -> int:
        """Per-instance ``AWS/RDS`` datapoints for each minute of the window before ``end_ms``, in the member.

        Each shape gives the value per proxy instance for a minute; returns the datapoints put.
        """
        cloudwatch = self.member_client(scope.account, "cloudwatch", scope.region)
        return metric_series.put_series(cloudwatch, proxy, end_ms, shapes, instances=instances, window=window)

    def member_alarm(self, scope: Scope, name: str = MEMBER_ALARM) -> MetricsInsightsAlarm:
        """The member's pinned-connections alarm, evaluated on the member's own series.

        Its contributor events carry the member's account and Region, as they reach the central bus.
        """
        series = cloudwatch_series(self.member_client(scope.account, "cloudwatch", scope.region))
        return MetricsInsightsAlarm(name, series, region=scope.region, account=scope.account)

    def check_environment(self, **extra: str) -> dict[str, str]:
        """The check's organization settings for this organization (``CheckConfig.from_env``)."""
        return {
            "ORG_MEMBER_STACK_SET": self.stack_set,
            "ORG_STACK_SET_CALL_AS": "SELF",
            "ORG_MEMBER_ROLE_NAME": self.role_name,
            **extra,
        }

    def _network(self, scope: Scope) -> tuple[list[str], str]:
        made = self._networks.get(scope)
        if made is None:
            ec2 = self.member_client(scope.account, "ec2", scope.region)
            secrets = self.member_client(scope.account, "secretsmanager", scope.region)
            vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
            zones = sorted(z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"])[:2]
            subnets = [
                ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
                for i, zone in enumerate(zones)
            ]
            secret = secrets.create_secret(Name=f"db-{uuid.uuid4().hex[:8]}", SecretString='{"u":"p"}')["ARN"]
            made = (subnets, secret)
            self._networks[scope] = made
        return made


def setup_organization(
    endpoint: str,
    scopes: Sequence[Scope] = DEFAULT_MEMBERS,
    *,
    stack_set: str = STACK_SET,
    role_name: str = DEFAULT_MEMBER_ROLE,
    home_region: str = "us-east-1",
    member_home_region: str = "",
) -> EmulatedOrganization:
    """Member accounts with the member StackSet deployed (their read roles exist); add proxies and series next.

    ``stack_set`` should be unique per moto server (StackSet names are per account and Region).
    """
    org = EmulatedOrganization(
        endpoint,
        tuple(sorted(set(scopes))),
        stack_set=stack_set,
        role_name=role_name,
        home_region=home_region,
        member_home_region=member_home_region,
    )
    org.deploy_members()
    return org
