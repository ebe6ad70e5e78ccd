"""Organization mode's adapters: usable stack instances, the 15-minute target cache, credentials reused until near expiry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pinwatch.members import BareNameSwitch, MemberSessions, StackSetTargets, usable
from pinwatch.org import MemberAccessError
from pinwatch.scope import Scope

A = Scope("111111111111", "eu-west-1")


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ({"Status": "CURRENT", "StackId": "s", "StackInstanceStatus": {"DetailedStatus": "SUCCEEDED"}}, True),
        # An update that failed or was stopped: the stack, and its role, are still there.
        ({"Status": "OUTDATED", "StackId": "s", "StackInstanceStatus": {"DetailedStatus": "FAILED"}}, True),
        # Nothing created yet (a new account's instance waiting to deploy).
        ({"Status": "OUTDATED", "StackInstanceStatus": {"DetailedStatus": "PENDING"}}, False),
        ({"Status": "INOPERABLE", "StackId": "s", "StackInstanceStatus": {"DetailedStatus": "INOPERABLE"}}, False),
        (
            {
                "Status": "OUTDATED",
                "StackId": "s",
                "StackInstanceStatus": {"DetailedStatus": "SKIPPED_SUSPENDED_ACCOUNT"},
            },
            False,
        ),
    ],
)
def test_given_a_stack_instance_when_judged_then_only_one_whose_stack_exists_is_checked(
    summary: dict[str, Any], expected: bool
) -> None:
    assert usable(summary) is expected


@dataclass
class Paginator:
    pages: list[dict[str, Any]]
    asked: list[dict[str, Any]]

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        self.asked.append(kwargs)
        return self.pages


@dataclass
class FakeCloudFormation:
    pages: list[dict[str, Any]]
    asked: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    def get_paginator(self, operation: str) -> Paginator:
        assert operation == "list_stack_instances"
        if self.fail:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "ListStackInstances")
        return Paginator(self.pages, self.asked)


def instance(account: str, region: str, status: str = "CURRENT") -> dict[str, Any]:
    return {"Account": account, "Region": region, "Status": status, "StackId": f"{account}-{region}"}


def test_given_instances_on_two_pages_when_listed_then_usable_scopes_are_kept_for_the_cache_time() -> None:
    now = [0.0]
    cloudformation = FakeCloudFormation(
        [
            {"Summaries": [instance("111111111111", "eu-west-1"), instance("222222222222", "eu-west-1", "INOPERABLE")]},
            {"Summaries": [instance("111111111111", "us-east-1")]},
        ]
    )
    targets = StackSetTargets(cloudformation, "pinwatch-members", call_as="DELEGATED_ADMIN", clock=lambda: now[0])
    expected = (Scope("111111111111", "eu-west-1"), Scope("111111111111", "us-east-1"))
    assert targets.scopes() == expected
    now[0] = 899.0
    assert targets.scopes() == expected
    assert cloudformation.asked == [{"StackSetName": "pinwatch-members", "CallAs": "DELEGATED_ADMIN"}]
    now[0] = 900.0
    cloudformation.fail = True
    assert targets.scopes() == expected  # a failed listing keeps the last one
    assert targets.listings == 2


def test_given_no_listing_yet_when_listing_fails_then_the_error_stops_the_run() -> None:
    targets = StackSetTargets(FakeCloudFormation([], fail=True), "pinwatch-members")
    with pytest.raises(ClientError):
        targets.scopes()


@dataclass
class FakeSts:
    expires_in_s: float
    now: list[float]
    denied: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def assume_role(self, RoleArn: str, RoleSessionName: str) -> dict[str, Any]:
        self.calls.append(RoleArn)
        if RoleArn.split(":")[4] in self.denied:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole")
        n = len(self.calls)
        expiration = datetime.fromtimestamp(self.now[0] + self.expires_in_s, tz=UTC)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIA{n}",
                "SecretAccessKey": "s",
                "SessionToken": "t",
                "Expiration": expiration,
            }
        }


def test_given_member_clients_when_used_then_credentials_are_reused_until_near_expiry_then_renewed() -> None:
    now = [1_000_000.0]
    sts = FakeSts(expires_in_s=3600, now=now)
    made: list[tuple[str, dict[str, str]]] = []

    def make(service: str, **settings: str) -> object:
        made.append((service, settings))
        return object()

    sessions = MemberSessions(sts, "pinwatch-member-reader", make, partition="aws-us-gov", clock=lambda: now[0])
    rds = sessions.client(A, "rds")
    assert sessions.client(A, "rds") is rds
    sessions.client(Scope(A.account, "us-east-1"), "cloudwatch")  # another Region: same account credentials
    assert sts.calls == ["arn:aws-us-gov:iam::111111111111:role/pinwatch-member-reader"]
    assert made[0] == (
        "rds",
        {
            "region_name": "eu-west-1",
            "aws_access_key_id": "ASIA1",
            "aws_secret_access_key": "s",
            "aws_session_token": "t",
        },
    )
    now[0] += 3600 - 299  # inside the five minutes before expiry
    assert sessions.client(A, "rds") is not rds
    assert len(sts.calls) == 2
    assert made[-1][1]["aws_access_key_id"] == "ASIA2"


def test_given_a_role_that_cannot_be_assumed_when_a_client_is_used_then_a_member_access_error_names_it() -> None:
    sts = FakeSts(expires_in_s=3600, now=[0.0], denied={A.account})
    sessions = MemberSessions(sts, "pinwatch-member-reader", lambda service, **_: object(), clock=lambda: 0.0)
    with pytest.raises(MemberAccessError) as raised:
        sessions.lazy(A, "rds").describe_db_proxies  # noqa: B018 (the first attribute use assumes the role)
    assert (raised.value.code, raised.value.account) == ("AccessDenied", A.account)
    assert raised.value.role_arn == "arn:aws:iam::111111111111:role/pinwatch-member-reader"


def test_given_a_key_when_capture_switches_logging_then_rds_gets_the_bare_name() -> None:
    switched: list[tuple[str, bool]] = []

    class Switch:
        def set_debug_logging(self, proxy: str, enabled: bool) -> None:
            switched.append((proxy, enabled))

    BareNameSwitch(Switch()).set_debug_logging(A.key("orders-db"), True)
    assert switched == [("orders-db", True)]
