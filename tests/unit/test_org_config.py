"""Organization mode's settings: on with the member StackSet, CallAs and the member role validated."""

from __future__ import annotations

import pytest

from pinwatch import wiring
from pinwatch.check import ConnectionCheck
from pinwatch.config import CheckConfig, ConfigError
from pinwatch.org import OrgCheck


def test_given_no_member_stack_set_when_read_then_the_check_is_single_account() -> None:
    config = CheckConfig.from_env({"SUMMARY_TABLE_NAME": "pinwatch-summary"})
    assert not config.org_mode
    assert (config.org_member_stack_set, config.org_stack_set_call_as) == (None, "SELF")


def test_given_a_member_stack_set_when_read_then_org_mode_with_its_call_as_and_default_role() -> None:
    config = CheckConfig.from_env(
        {
            "SUMMARY_TABLE_NAME": "pinwatch-summary",
            "ORG_MEMBER_STACK_SET": "pinwatch-members",
            "ORG_STACK_SET_CALL_AS": "delegated_admin",
        }
    )
    assert config.org_mode
    assert (config.org_member_stack_set, config.org_stack_set_call_as, config.org_member_role_name) == (
        "pinwatch-members",
        "DELEGATED_ADMIN",
        "pinwatch-member-reader",
    )


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"ORG_MEMBER_STACK_SET": "pinwatch-members", "ORG_STACK_SET_CALL_AS": "ADMIN"}, "ORG_STACK_SET_CALL_AS"),
        ({"ORG_MEMBER_STACK_SET": "1-members"}, "ORG_MEMBER_STACK_SET"),
        ({"ORG_MEMBER_STACK_SET": "pinwatch-members", "ORG_MEMBER_ROLE_NAME": "no spaces"}, "ORG_MEMBER_ROLE_NAME"),
        # A bare proxy name means a different proxy in each member account and Region.
        ({"ORG_MEMBER_STACK_SET": "pinwatch-members", "PROXY_NAMES": "orders"}, "PROXY_NAMES"),
    ],
)
def test_given_an_invalid_org_setting_when_read_then_the_error_names_the_variable(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        CheckConfig.from_env({"SUMMARY_TABLE_NAME": "pinwatch-summary", **environ})
    assert any(problem.startswith(named) for problem in raised.value.problems)


def test_given_the_check_function_when_wired_then_the_org_check_only_with_a_member_stack_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    single = wiring.check_function(CheckConfig.from_env({"SUMMARY_TABLE_NAME": "pinwatch-summary"}))
    assert isinstance(single, ConnectionCheck)
    assert single.scope is None
    org = wiring.check_function(
        CheckConfig.from_env({"SUMMARY_TABLE_NAME": "pinwatch-summary", "ORG_MEMBER_STACK_SET": "pinwatch-members"})
    )
    assert isinstance(org, OrgCheck)
