"""Accounts enrolled outside the member StackSet (``ORG_EXTRA_TARGETS``): parsed, then checked with its instances."""

from __future__ import annotations

import pytest

from pinwatch.config import CheckConfig, ConfigError
from pinwatch.members import StackSetTargets
from pinwatch.scope import Scope
from tests.unit.test_members import FakeCloudFormation, instance

ORG = {"SUMMARY_TABLE_NAME": "pinwatch-summary", "ORG_MEMBER_STACK_SET": "pinwatch-members"}
MANAGEMENT = "999999999999"


def test_given_no_extra_targets_when_read_then_none() -> None:
    assert CheckConfig.from_env(ORG).org_extra_targets == ()
    assert CheckConfig.from_env({**ORG, "ORG_EXTRA_TARGETS": " "}).org_extra_targets == ()


def test_given_extra_targets_when_read_then_scopes_sorted_without_duplicates_or_blanks() -> None:
    config = CheckConfig.from_env(
        {
            **ORG,
            # CloudFormation joins an empty CommaDelimitedList element as an empty item.
            "ORG_EXTRA_TARGETS": f"{MANAGEMENT}:us-east-1, 123456789012:eu-west-1,,{MANAGEMENT}:us-east-1",
        }
    )
    assert config.org_extra_targets == (Scope("123456789012", "eu-west-1"), Scope(MANAGEMENT, "us-east-1"))


@pytest.mark.parametrize(
    "value",
    [
        "999999999999",  # no Region
        "999999999999:",  # empty Region
        "99999999999:us-east-1",  # 11 digits
        "999999999999:US-EAST-1",  # not a Region code
        "us-east-1:999999999999",  # the wrong way round
        "999999999999:us-east-1:orders-db",  # a proxy key, not a target
        "999999999999/us-east-1",  # Scope's display form, not the variable's
    ],
)
def test_given_a_malformed_extra_target_when_read_then_the_error_names_the_variable_the_item_and_the_form(
    value: str,
) -> None:
    with pytest.raises(ConfigError) as raised:
        CheckConfig.from_env({**ORG, "ORG_EXTRA_TARGETS": f"123456789012:eu-west-1,{value}"})
    (problem,) = raised.value.problems
    assert problem.startswith("ORG_EXTRA_TARGETS")
    assert repr(value) in problem
    assert "ACCOUNT:REGION" in problem
    assert "'123456789012:eu-west-1'" not in problem  # only the bad item is named


def test_given_extra_targets_without_a_member_stack_set_when_read_then_refused_as_org_only() -> None:
    with pytest.raises(ConfigError) as raised:
        CheckConfig.from_env({"SUMMARY_TABLE_NAME": "t-1", "ORG_EXTRA_TARGETS": f"{MANAGEMENT}:us-east-1"})
    (problem,) = raised.value.problems
    assert problem.startswith("ORG_EXTRA_TARGETS")
    assert "ORG_MEMBER_STACK_SET" in problem


def test_given_extra_targets_when_listed_then_the_stack_sets_scopes_and_the_extras_sorted_once_each() -> None:
    cloudformation = FakeCloudFormation(
        [{"Summaries": [instance("111111111111", "eu-west-1"), instance("222222222222", "eu-west-1")]}]
    )
    extra = (Scope(MANAGEMENT, "eu-west-1"), Scope("111111111111", "eu-west-1"), Scope("000000000001", "us-east-1"))
    targets = StackSetTargets(cloudformation, "pinwatch-members", extra=extra)

    assert targets.scopes() == (
        Scope("000000000001", "us-east-1"),
        Scope("111111111111", "eu-west-1"),  # listed by the StackSet and as an extra: checked once
        Scope("222222222222", "eu-west-1"),
        Scope(MANAGEMENT, "eu-west-1"),
    )


def test_given_extra_targets_when_the_stack_set_is_empty_then_the_extras_alone_are_checked() -> None:
    targets = StackSetTargets(
        FakeCloudFormation([{"Summaries": []}]), "pinwatch-members", extra=[Scope(MANAGEMENT, "us-east-1")]
    )
    assert targets.scopes() == (Scope(MANAGEMENT, "us-east-1"),)


def test_given_a_stack_instance_that_is_not_usable_when_also_an_extra_then_it_is_still_checked() -> None:
    # An extra is the operator's statement that a plain member stack exists there; the StackSet's
    # view of its own (failed) instance in that account does not overrule it.
    cloudformation = FakeCloudFormation([{"Summaries": [instance(MANAGEMENT, "us-east-1", "INOPERABLE")]}])
    targets = StackSetTargets(cloudformation, "pinwatch-members", extra=[Scope(MANAGEMENT, "us-east-1")])
    assert targets.scopes() == (Scope(MANAGEMENT, "us-east-1"),)
