"""Read resource definitions out of ``template.yaml``.

The template is the one definition of the summary table: tests and the local demo create their
tables from it, so a key or TTL change in the template is exercised everywhere at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pinwatch.local import PROJECT_ROOT

TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that understands CloudFormation short-form tags (``!Ref``, ``!Sub``, …)."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template, keeping intrinsic functions as their long form."""
    with path.open(encoding="utf-8") as fh:
        loaded: dict[str, Any] = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return loaded


def table_create_args(
    table_name: str, logical_id: str = "SummaryTable", template: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`CreateTable` arguments for a table resource of the template, under another name.

    Only the properties `CreateTable` understands are carried over; TTL, point-in-time recovery
    and SSE are separate API calls (see :func:`table_ttl_attribute`) or irrelevant locally.
    """
    tpl = template if template is not None else load_template()
    resource = tpl["Resources"][logical_id]
    if resource["Type"] != "AWS::DynamoDB::Table":
        raise ValueError(f"{logical_id} is a {resource['Type']}, not an AWS::DynamoDB::Table")
    props = resource["Properties"]
    args: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    for optional in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if optional in props:
            args[optional] = props[optional]
    return args


def table_ttl_attribute(logical_id: str = "SummaryTable", template: dict[str, Any] | None = None) -> str | None:
    """The TTL attribute the template enables on a table, if any."""
    tpl = template if template is not None else load_template()
    spec = tpl["Resources"][logical_id]["Properties"].get("TimeToLiveSpecification") or {}
    return spec.get("AttributeName") if spec.get("Enabled", False) else None
