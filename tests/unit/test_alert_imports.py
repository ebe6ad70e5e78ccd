"""What the functions pay for their wiring at cold start: no CLI, no local emulation, and the ingest no alerting."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("rich", "yaml", "moto", "pinwatch.cli", "pinwatch.local")


def imported_after(statement: str) -> set[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(json.loads(out.stdout))


CHECK_WIRING = (
    "import boto3; from pinwatch import wiring; from pinwatch.config import CheckConfig; "
    "config = CheckConfig(summary_table_name='pinwatch-summary'); "
    "wiring.build_connection_check(config, rds_client=boto3.client('rds', region_name='us-east-1'), "
    "cloudwatch_client=boto3.client('cloudwatch', region_name='us-east-1'), "
    "dispatcher=wiring.build_dispatcher(config, None, None, str))"
)


def test_given_the_check_wired_when_built_then_no_cli_or_local_module_is_loaded() -> None:
    modules = imported_after(CHECK_WIRING)
    leaked = sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert leaked == []
    assert {"slack_sdk.webhook", "pinwatch.check"} <= modules  # the sanity check that the wiring really ran


def test_given_the_wiring_module_when_the_ingest_imports_it_then_neither_the_check_nor_alerting_is_loaded() -> None:
    modules = imported_after("import pinwatch.wiring")
    assert "pinwatch.store.summary" in modules
    assert not {
        m for m in modules if m.startswith(("pinwatch.alerts", "pinwatch.check", "pinwatch.diagnose", "slack_sdk"))
    }


def test_given_the_alerts_package_when_imported_then_neither_delivery_channel_nor_boto3_is_loaded() -> None:
    modules = imported_after("import pinwatch.alerts")
    assert not {"slack_sdk", "boto3", "botocore"} & {m.split(".")[0] for m in modules}
