"""Render template.yaml the way CloudFormation will see it, offline, for the template tests and CI gates.

Runs under the SAM CLI venv (``.venv-sam/bin/python``), which has samtranslator and the SAM CLI's
AWS::LanguageExtensions expander; the app venv does not (aws-sam-cli pins boto3 exactly).

    render.py [--param NAME=VALUE ...] TEMPLATE   -> plain CloudFormation JSON on stdout

Fn::ForEach is expanded for the given parameter values, local CodeUri/ContentUri paths become
s3:// URIs (as `sam package` makes them), then the SAM transform runs. `make template-check` scans
the result with checkov, so the IAM roles and the looped resources are checked too.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from boto3.session import Session
from samcli.lib.cfn_language_extensions.api import create_default_intrinsic_resolver
from samcli.lib.cfn_language_extensions.models import PseudoParameterValues, TemplateProcessingContext
from samcli.lib.cfn_language_extensions.pipeline import ProcessingPipeline
from samcli.lib.cfn_language_extensions.processors import ForEachProcessor, TemplateParsingProcessor
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

PSEUDO_PARAMETERS = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::StackName": "pinwatch",
    "AWS::URLSuffix": "amazonaws.com",
}
_ARTIFACT_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


def _with_defaults(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """Parameter values as CloudFormation passes them: defaults filled in, lists split."""
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        raw = parameters.get(name, spec.get("Default"))
        if raw is None:
            continue
        values[name] = str(raw).split(",") if spec.get("Type") == "CommaDelimitedList" else raw
    return values


def _to_s3_uris(template: dict[str, Any]) -> None:
    for logical_id, resource in template.get("Resources", {}).items():
        prop = _ARTIFACT_PROPERTIES.get(resource.get("Type", ""))
        if prop and isinstance(resource.get("Properties", {}).get(prop), str):
            resource["Properties"][prop] = f"s3://pinwatch-artifacts/{logical_id}.zip"


def expand_for_each(template: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Expand Fn::ForEach as CloudFormation's AWS::LanguageExtensions would, and nothing else.

    The SAM CLI's default pipeline also resolves every other intrinsic it can, and turns a Fn::Sub
    over resource attributes into literal text; what the template states must reach the tests intact.
    """
    context = TemplateProcessingContext(
        fragment=copy.deepcopy(template),
        parameter_values=parameters,
        pseudo_parameters=PseudoParameterValues(
            region=PSEUDO_PARAMETERS["AWS::Region"],
            account_id=PSEUDO_PARAMETERS["AWS::AccountId"],
            stack_name=PSEUDO_PARAMETERS["AWS::StackName"],
            partition=PSEUDO_PARAMETERS["AWS::Partition"],
        ),
    )
    resolver = create_default_intrinsic_resolver(context)
    pipeline = ProcessingPipeline([TemplateParsingProcessor(), ForEachProcessor(intrinsic_resolver=resolver)])
    expanded: dict[str, Any] = pipeline.process_template(context)
    return expanded


def render(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {**PSEUDO_PARAMETERS, **parameters}
    expanded = expand_for_each(template, _with_defaults(template, parameters))
    _to_s3_uris(expanded)
    # The session only supplies the region for ARNs; nothing is called.
    session = Session(region_name=values["AWS::Region"])
    translator = Translator(managed_policy_map={}, sam_parser=Parser(), boto_session=session)
    translated: dict[str, Any] = translator.translate(
        sam_template=expanded, parameter_values=values, get_managed_policy_map=lambda: {}
    )
    return translated


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    parameters = dict(p.split("=", 1) for p in args.param)
    template = yaml_parse(args.template.read_text(encoding="utf-8"))
    try:
        result = render(template, parameters)
    except InvalidDocumentException as exc:
        print("; ".join(str(cause) for cause in exc.causes) or str(exc), file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
