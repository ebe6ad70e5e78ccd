"""``pinwatch demo`` end to end: how long ``make demo`` takes, and how much of it is the replay.

Runs the real command in a fresh process, as a user does (imports, moto and DynamoDB Local start,
the stack's resources, 30 simulated minutes through both functions, the rendered output, the
final report). The replay time is what the demo itself reports in its last line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import Figure

ROOT = Path(__file__).resolve().parents[1]
MINUTES = 30
_LAST_LINE = re.compile(r"demo (passed|FAILED) in ([\d.]+) s \((\d+) simulated minutes replayed in ([\d.]+) s\)")


def run() -> list[Figure]:
    command = [str(Path(sys.executable).parent / "pinwatch"), "demo", "--minutes", str(MINUTES)]
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    match = _LAST_LINE.search(done.stdout)
    figures = [
        Figure("demo_wall_s", wall, f"`pinwatch demo` ({MINUTES} simulated minutes), fresh process, end to end", 1),
        Figure("demo_passed", 1.0 if done.returncode == 0 else 0.0, "1 when every stage of the demo passed"),
    ]
    if match:
        replay = float(match.group(4))
        figures.append(Figure("demo_replay_s", replay, "of which the replay through both functions", 1))
        figures.append(
            Figure("demo_simulated_minutes_per_s", MINUTES / replay, "simulated minutes replayed per second", 1)
        )
    return figures
