"""Dependency direction: the domain core never imports the DynamoDB store (the store depends on the core)."""

from __future__ import annotations

import ast
from pathlib import Path

import pinwatch

PACKAGE = Path(pinwatch.__file__).parent

# Adapters, use cases and the one wiring module that builds them; everything else in the package is core.
STORE_USERS = (
    "store/",
    "alerts/",
    "cli/",
    "local/",
    "check.py",
    "wiring.py",
    "ingest.py",
    "backfill.py",
    "discovery.py",
    "metrics.py",
)


def imported_modules(source: Path) -> set[str]:
    """Every module a file imports, including imports inside functions and TYPE_CHECKING blocks."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_given_the_core_modules_when_their_imports_are_read_then_none_reaches_the_store() -> None:
    core = [p for p in PACKAGE.rglob("*.py") if not p.relative_to(PACKAGE).as_posix().startswith(STORE_USERS)]
    offenders = {
        p.relative_to(PACKAGE).as_posix(): sorted(m for m in imported_modules(p) if m.startswith("pinwatch.store"))
        for p in core
    }

    assert {path: mods for path, mods in offenders.items() if mods} == {}
    assert {"tally.py", "report.py", "records.py", "timebase.py"} <= set(offenders)  # the scan saw the core


def test_given_a_lazy_store_import_when_read_then_it_is_found(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from pinwatch import store\n    from pinwatch.store.keys import PK\n")

    assert {"pinwatch.store", "pinwatch.store.keys"} <= imported_modules(module)
