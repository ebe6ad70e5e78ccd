"""Read rendered CloudFormation the way a stack would see it, for the template tests.

:func:`render` turns template.yaml into plain CloudFormation offline (Fn::ForEach expanded, SAM
transform applied) by running ``render.py`` under the SAM CLI venv. :class:`Stack` then answers
questions about the result for one set of parameter values: which resources exist (conditions
evaluated) and what a property evaluates to (intrinsics resolved). Resource references cannot be
known before deployment, so they resolve to stand-ins: a resource's name where the template sets
one (log groups, the dashboard), a fixed physical id where a test needs a realistic value, and
``ref:<LogicalId>`` / ``getatt:<LogicalId>.<Attribute>`` otherwise.

Also here: :func:`filter_pattern_matches`, the subset of the CloudWatch Logs filter-pattern
language the template uses (quoted phrases, ``?`` alternatives), because moto does not apply
filter patterns.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from pinwatch.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
RENDER_SCRIPT = Path(__file__).with_name("render.py")

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "pinwatch"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::StackName": STACK,
    "AWS::URLSuffix": "amazonaws.com",
}
# Realistic physical ids for resources whose Ref ends up where the functions validate it.
PHYSICAL_IDS = {
    "SummaryTable": f"{STACK}-SummaryTable-1X2Y3Z4W5V6U",
    "AlertTopic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{STACK}-AlertTopic-AbCdEf123456",
}
# Properties that give a resource's Ref when the template sets them.
_NAME_PROPERTIES = {"AWS::Logs::LogGroup": "LogGroupName", "AWS::CloudWatch::Dashboard": "DashboardName"}


class NoValue:
    """``AWS::NoValue``: removed from the lists and mappings that contain it."""


NO_VALUE = NoValue()


class RenderError(RuntimeError):
    """The SAM tooling rejected the template, or is not installed."""


@functools.cache
def _render_cached(params: tuple[tuple[str, str], ...]) -> str:
    if not SAM_PYTHON.exists():
        raise RenderError(f"{SAM_PYTHON} is missing: run `make setup` (the SAM CLI lives in its own venv)")
    args = [str(SAM_PYTHON), str(RENDER_SCRIPT), str(TEMPLATE)]
    for name, value in params:
        args += ["--param", f"{name}={value}"]
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise RenderError(f"render.py failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def render(parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """template.yaml as plain CloudFormation for these parameter values (a fresh copy each call)."""
    key = tuple(sorted((parameters or {}).items()))
    rendered: dict[str, Any] = json.loads(_render_cached(key))
    return rendered


class Stack:
    """One rendered template plus parameter values: conditions evaluated, intrinsics resolvable."""

    def __init__(
        self, template: dict[str, Any], parameters: dict[str, str] | None = None, *, region: str = REGION
    ) -> None:
        self.template = template
        self.pseudo = {**PSEUDO, "AWS::Region": region}
        given = parameters or {}
        self.parameters: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            raw = str(given.get(name, spec.get("Default", "")))
            self.parameters[name] = raw.split(",") if spec.get("Type") == "CommaDelimitedList" else raw
        # Conditions may name other conditions ({"Condition": name}): evaluated on first use, in any order.
        self.conditions: dict[str, bool] = {}
        for name in template.get("Conditions", {}):
            self._condition(name)

    # ------------------------------------------------------------------ resources
    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """The resources this stack would create (their conditions hold)."""
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if "Condition" not in resource or self.conditions[resource["Condition"]]
        }

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def prop(self, logical_id: str, *path: str) -> Any:
        """A resolved property of a created resource: ``prop("Fn", "Environment", "Variables")``."""
        value: Any = self.resources[logical_id]["Properties"]
        for key in path:
            value = value[key]
        return self.resolve(value)

    def output(self, name: str) -> Any:
        return self.resolve(self.template["Outputs"][name]["Value"])

    # ------------------------------------------------------------------ intrinsics
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            resolved = [self.resolve(v) for v in value]
            return [v for v in resolved if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, arg)
        mapping = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in mapping.items() if v is not NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in PHYSICAL_IDS:
            return PHYSICAL_IDS[name]
        resource = self.template["Resources"].get(name)
        if resource is None:
            raise KeyError(f"Ref to unknown name {name!r}")
        name_property = _NAME_PROPERTIES.get(resource["Type"])
        if name_property and name_property in resource.get("Properties", {}):
            return self.resolve(resource["Properties"][name_property])
        return f"ref:{name}"

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        resolved = {k: self.resolve(v) for k, v in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in resolved:
                return str(resolved[name])
            if "." in name and name.split(".", 1)[0] in self.template["Resources"]:
                return "getatt:" + name
            value = self.ref(name)
            return ",".join(value) if isinstance(value, list) else str(value)

        return re.sub(r"\$\{([^!}][^}]*)\}", substitute, text)

    def _condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self.conditions[name]

    def _if(self, arg: list[Any]) -> Any:
        condition, when_true, when_false = arg
        return self.resolve(when_true if self._condition(condition) else when_false)

    def _join(self, arg: list[Any]) -> str:
        separator, items = arg
        return str(separator).join(str(v) for v in self.resolve(items))

    def _find_in_map(self, arg: list[Any]) -> Any:
        name, top, second = (self.resolve(a) for a in arg)
        return self.template["Mappings"][name][top][second]

    def _get_att(self, arg: Any) -> str:
        logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
        return f"getatt:{logical_id}.{attribute}"

    def _split(self, arg: list[Any]) -> list[str]:
        separator, text = arg
        return str(self.resolve(text)).split(separator)

    def _select(self, arg: list[Any]) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def _equals(self, arg: list[Any]) -> bool:
        left, right = (self.resolve(a) for a in arg)
        return bool(left == right)


_INTRINSICS: dict[str, Any] = {
    "Ref": Stack.ref,
    "Fn::Sub": Stack._sub,
    "Fn::If": Stack._if,
    "Fn::Join": Stack._join,
    "Fn::FindInMap": Stack._find_in_map,
    "Fn::GetAtt": Stack._get_att,
    "Fn::Split": Stack._split,
    "Fn::Select": Stack._select,
    "Fn::Equals": Stack._equals,
    "Fn::Not": lambda stack, arg: not stack.resolve(arg[0]),
    "Fn::And": lambda stack, arg: all(stack.resolve(a) for a in arg),
    "Fn::Or": lambda stack, arg: any(stack.resolve(a) for a in arg),
    "Condition": Stack._condition,
}


def stack(parameters: dict[str, str] | None = None) -> Stack:
    """The rendered template for these parameter values, ready to query."""
    return Stack(render(parameters), parameters)


def load_plain(path: Path) -> dict[str, Any]:
    """A plain CloudFormation template (org/*.yaml) as CloudFormation reads it: no transform to run."""
    template = _normalise(load_template(path))
    assert isinstance(template, dict)
    return template


def plain_stack(path: Path, parameters: dict[str, str], *, region: str = REGION) -> Stack:
    """A plain template deployed with these parameter values in ``region`` (a StackSet instance)."""
    return Stack(load_plain(path), parameters, region=region)


def _normalise(value: Any) -> Any:
    """The YAML loader spells ``!Condition name`` as ``Fn::Condition``; CloudFormation reads ``Condition``."""
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {("Condition" if k == "Fn::Condition" else k): _normalise(v) for k, v in value.items()}
    return value


def iam_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of an IAM role's inline policies (already resolved by :meth:`Stack.prop`)."""
    return [
        statement for policy in role.get("Policies", []) for statement in as_list(policy["PolicyDocument"]["Statement"])
    ]


def as_list(value: Any) -> list[Any]:
    """IAM and CloudFormation accept a single item where they accept a list."""
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------- filter patterns
_TERM = re.compile(r'\s*(\??)"([^"]*)"')


def filter_pattern_terms(pattern: str) -> list[tuple[bool, str]]:
    """Split an unstructured filter pattern into (is_alternative, phrase) terms.

    Supports what pinwatch uses: quoted phrases, optionally prefixed with ``?``. Anything else
    (bare words, exclusions, JSON or space-delimited selectors) is rejected, so a template change
    that needs more is noticed instead of silently mis-evaluated.
    """
    terms: list[tuple[bool, str]] = []
    position = 0
    while position < len(pattern.rstrip()):
        match = _TERM.match(pattern, position)
        if match is None:
            raise ValueError(f"unsupported filter pattern syntax at {pattern[position:]!r}")
        optional, phrase = match.groups()
        terms.append((optional == "?", phrase))
        position = match.end()
    return terms


def filter_pattern_matches(pattern: str, message: str) -> bool:
    """Whether CloudWatch Logs would deliver ``message`` through this pattern (case-sensitive).

    With ``?`` terms, any one of them matching is enough; plain terms must all match.
    """
    terms = filter_pattern_terms(pattern)
    alternatives = [text for optional, text in terms if optional]
    required = [text for optional, text in terms if not optional]
    if alternatives and not any(text in message for text in alternatives):
        return False
    return all(text in message for text in required)
