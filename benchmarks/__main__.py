"""Run every benchmark module and print its figures as ``name=value`` lines, then a table.

Each module in MODULES exposes ``run() -> list[Figure]``. Figures are ratios or counts measured
against a baseline taken in the same run, so they compare across machines; absolute times are
printed next to them for context.

``--write-docs docs/performance.md`` also rewrites that page's generated block with this run's
figures, the machine and the date.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import sys
from pathlib import Path

from benchmarks.common import Figure, figures_block, replace_figures_block, this_machine

MODULES = [
    "benchmarks.bench_parse",
    "benchmarks.bench_cold_start",
    "benchmarks.bench_ingest",
    "benchmarks.bench_check",
    "benchmarks.bench_demo",
    "benchmarks.bench_cost",
]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE", help="run only modules whose name contains this")
    parser.add_argument(
        "--write-docs",
        type=Path,
        metavar="PAGE",
        help="rewrite the figures between the bench markers of PAGE (e.g. docs/performance.md); full runs only",
    )
    parser.add_argument(
        "--write-cost-docs",
        type=Path,
        metavar="PAGE",
        help="rewrite the cost table between the cost markers of PAGE (e.g. docs/cost.md); needs the cost module",
    )
    args = parser.parse_args(argv)
    # The block states one run on one machine: a partial run would mix its figures with older ones.
    if args.write_docs and args.modules:
        parser.error("--write-docs needs a run of every module (drop the module names)")
    if args.write_docs:
        # Fail before the slow part when the page cannot take the figures.
        try:
            replace_figures_block(args.write_docs.read_text(encoding="utf-8"), "")
        except (OSError, ValueError) as exc:
            parser.error(f"--write-docs {args.write_docs}: {exc}")

    selected = [m for m in MODULES if not args.modules or any(a in m for a in args.modules)]
    if args.write_cost_docs:
        from benchmarks.bench_cost import COST_BEGIN, COST_END

        if "benchmarks.bench_cost" not in selected:
            parser.error("--write-cost-docs needs the cost module in the run")
        try:
            replace_figures_block(args.write_cost_docs.read_text(encoding="utf-8"), "", COST_BEGIN, COST_END)
        except (OSError, ValueError) as exc:
            parser.error(f"--write-cost-docs {args.write_cost_docs}: {exc}")
    figures: list[Figure] = []
    for module_name in selected:
        module = importlib.import_module(module_name)
        for figure in module.run():
            print(figure.line(), flush=True)
            figures.append(figure)
    _print_table(figures)
    if args.write_cost_docs:
        from benchmarks import bench_cost

        assert bench_cost.LAST is not None
        page = args.write_cost_docs.read_text(encoding="utf-8")
        block = bench_cost.cost_block(bench_cost.LAST, datetime.datetime.now(datetime.UTC).date().isoformat())
        args.write_cost_docs.write_text(
            replace_figures_block(page, block, bench_cost.COST_BEGIN, bench_cost.COST_END), encoding="utf-8"
        )
        print(f"wrote the cost table to {args.write_cost_docs}", file=sys.stderr)
    if args.write_docs:
        page = args.write_docs.read_text(encoding="utf-8")
        block = figures_block(figures, this_machine(), datetime.datetime.now(datetime.UTC).date())
        args.write_docs.write_text(replace_figures_block(page, block), encoding="utf-8")
        print(f"wrote {len(figures)} figures to {args.write_docs}", file=sys.stderr)
    return 0


def _print_table(figures: list[Figure]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"pinwatch bench: {this_machine().describe()}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("meaning")
    for f in figures:
        table.add_row(f.name, f.formatted(), f.meaning)
    Console(stderr=True).print(table)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
