"""The check function's cold start loads only what a Lambda needs (no CLI, emulator or table-printing code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "functions" / "connection_check" / "app.py"

_PROBE = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", {str(APP)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(sys.modules)))
"""


def test_given_a_cold_start_when_the_check_handler_is_imported_then_no_cli_emulator_or_yaml_module_is_loaded() -> None:
    env = {
        **os.environ,
        "SUMMARY_TABLE_NAME": "pinwatch-summary",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert "pinwatch.check" in modules  # the probe really imported the handler
    forbidden = [
        m
        for m in modules
        if m.split(".")[0] in {"rich", "yaml", "moto"} or m.startswith(("pinwatch.cli", "pinwatch.local"))
    ]
    assert forbidden == []
