"""Cold start: handler module import + init, as a ratio to a bare ``import boto3``.

Each measurement runs in a fresh interpreter (what a Lambda cold start pays), best of N.
The handlers create their AWS clients at import time, so client creation is included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks.common import HANDLER_ENV, Figure

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7

_TIMER = """
import sys, time
t0 = time.perf_counter()
{body}
print(time.perf_counter() - t0)
"""

_HANDLER_BODY = """
import importlib.util
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
"""


def _best_seconds(body: str, env: dict[str, str]) -> float:
    best = float("inf")
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", _TIMER.format(body=body)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            cwd=ROOT,
        )
        best = min(best, float(out.stdout.strip().splitlines()[-1]))
    return best


def run() -> list[Figure]:
    boto3_s = _best_seconds("import boto3", HANDLER_ENV)
    figures = [Figure("cold_import_boto3_ms", boto3_s * 1000, "baseline: bare `import boto3` in a fresh interpreter")]
    for name, short in (("pin_ingest", "ingest"), ("connection_check", "check")):
        path = ROOT / "functions" / name / "app.py"
        if not path.exists():
            continue
        seconds = _best_seconds(_HANDLER_BODY.format(path=str(path)), HANDLER_ENV)
        figures.append(Figure(f"cold_{short}_init_ms", seconds * 1000, f"{name} handler import + init"))
        figures.append(Figure(f"cold_{short}_vs_boto3", seconds / boto3_s, f"{name} import + init / bare import boto3"))
    ingest = next((f for f in figures if f.name == "cold_ingest_vs_boto3"), None)
    if ingest is not None:
        figures.append(
            Figure("cold_import_vs_boto3", ingest.value, "headline: ingest handler cold init / import boto3")
        )
    return figures
