"""What the functions pay for their wiring at cold start: no CLI, no local emulation."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("rich", "yaml", "moto", "pinwatch.cli", "pinwatch.local")


def imported_after(statement: str) -> set[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(json.loads(out.stdout))


def test_given_the_functions_wiring_when_imported_then_no_cli_or_local_module_is_loaded() -> None:
    modules = imported_after("import pinwatch.wiring")
    leaked = sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert leaked == []
    assert "slack_sdk.webhook" in modules  # the sanity check that the import really happened


def test_given_the_alerts_package_when_imported_then_neither_delivery_channel_nor_boto3_is_loaded() -> None:
    modules = imported_after("import pinwatch.alerts")
    assert not {"slack_sdk", "boto3", "botocore"} & {m.split(".")[0] for m in modules}
