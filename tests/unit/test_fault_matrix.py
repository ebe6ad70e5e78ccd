"""docs/reliability-faults.md names a test for every fault: each of those tests must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MATRIX = ROOT / "docs" / "reliability-faults.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_given_the_fault_matrix_when_read_then_every_test_it_names_exists() -> None:
    references = REFERENCE.findall(MATRIX.read_text(encoding="utf-8"))
    assert len(references) >= 20, "the matrix names a test for each fault"

    missing = [
        f"{file}::{name}"
        for file, name in references
        if not (ROOT / file).is_file() or name not in defined_tests(ROOT / file)
    ]

    assert missing == []
