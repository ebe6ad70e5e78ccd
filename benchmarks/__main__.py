"""Run every benchmark module and print its figures as ``name=value`` lines, then a table.

Each module in MODULES exposes ``run() -> list[Figure]``. Figures are ratios or counts measured
against a baseline taken in the same run, so they compare across machines; absolute times are
printed next to them for context.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys

from benchmarks.common import Figure

MODULES = [
    "benchmarks.bench_parse",
    "benchmarks.bench_cold_start",
    "benchmarks.bench_ingest",
    "benchmarks.bench_check",
    "benchmarks.bench_demo",
]


def main(argv: list[str]) -> int:
    selected = [m for m in MODULES if not argv or any(a in m for a in argv)]
    figures: list[Figure] = []
    for module_name in selected:
        module = importlib.import_module(module_name)
        for figure in module.run():
            print(figure.line(), flush=True)
            figures.append(figure)
    _print_table(figures)
    return 0


def _print_table(figures: list[Figure]) -> None:
    from rich.console import Console
    from rich.table import Table

    cores = os.cpu_count() or 0
    title = f"pinwatch bench: {_cpu()}, {cores} cores, {platform.machine()}, Python {platform.python_version()}"
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("meaning")
    for f in figures:
        table.add_row(f.name, f.formatted(), f.meaning)
    Console(stderr=True).print(table)


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
