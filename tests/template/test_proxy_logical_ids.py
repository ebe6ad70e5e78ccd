"""Logical IDs of the per-proxy resources, and the known limit they carry (docs/reliability-faults.md).

``Fn::ForEach`` names each proxy's subscription filter and alarm ``&{ProxyName}``: the name with
every character that is not a letter or digit removed (CloudFormation template reference,
``Fn::ForEach``). Names that differ only in hyphens therefore map to the same logical ID, and the
transform refuses the template, before CloudFormation creates or changes any resource.
"""

from __future__ import annotations

import pytest

from tests.template.cfn import RenderError, stack

pytestmark = pytest.mark.template


def test_given_hyphenated_proxy_names_when_rendered_then_each_gets_its_filter_and_alarm_under_its_name_without_hyphens() -> (
    None
):
    rendered = stack({"ProxyNames": "orders-db,billing-db-2"})

    filters = rendered.of_type("AWS::Logs::SubscriptionFilter")
    alarms = {k for k in rendered.of_type("AWS::CloudWatch::Alarm") if k.startswith("PinnedConnectionsAlarm")}
    assert {k: rendered.prop(k, "LogGroupName") for k in filters} == {
        "PinSubscriptionordersdb": "/aws/rds/proxy/orders-db",
        "PinSubscriptionbillingdb2": "/aws/rds/proxy/billing-db-2",
    }
    assert alarms == {"PinnedConnectionsAlarmordersdb", "PinnedConnectionsAlarmbillingdb2"}


def test_given_proxy_names_that_differ_only_in_hyphens_when_rendered_then_the_transform_refuses_the_template() -> None:
    with pytest.raises(RenderError) as refused:
        stack({"ProxyNames": "orders-db,ordersdb"})

    assert "conflict" in str(refused.value)
    assert "PinSubscriptionordersdb" in str(refused.value)
