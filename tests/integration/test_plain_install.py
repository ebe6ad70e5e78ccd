"""The built package, installed without the ``cli`` extra: ``pinwatch`` runs, or names the extra in one line.

The wheel is built from this checkout and installed into a fresh virtual environment with
``--no-deps``, next to exactly the base dependencies (the versions of this environment, from the
configured index or pip's cache): what ``pip install pinwatch`` gives, without boto3 or rich.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# pyproject's [project] dependencies and what they require in turn.
BASE_DEPENDENCIES = ("aws-lambda-powertools", "slack-sdk", "jmespath", "typing-extensions")
EXTRA_HINT = "pip install 'pinwatch[cli]'"


@pytest.fixture(scope="module")
def plain_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` directory of a fresh venv holding the wheel and the base dependencies only."""
    root = tmp_path_factory.mktemp("plain")
    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = wheels.glob("pinwatch-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    pins = [f"{name}=={version(name)}" for name in BASE_DEPENDENCIES]
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel), *pins],
        check=True,
        capture_output=True,
    )
    return venv / "bin"


def pinwatch(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / "pinwatch"), *args], capture_output=True, text=True, check=False, timeout=60)


def test_given_a_plain_install_when_the_extra_is_missing_then_it_really_is_missing(plain_install: Path) -> None:
    probe = subprocess.run(
        [
            str(plain_install / "python"),
            "-c",
            "import importlib.util as u; print(u.find_spec('rich'), u.find_spec('boto3'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "None None"


@pytest.mark.parametrize("command", [[], ["--version"], *([name, "--help"] for name in ("analyze", "report", "check"))])
def test_given_a_plain_install_when_asked_for_help_then_it_answers(plain_install: Path, command: list[str]) -> None:
    result = pinwatch(plain_install, *(command or ["--help"]))
    assert (result.returncode, result.stderr) == (0, "")
    assert "pinwatch" in result.stdout


def test_given_a_plain_install_when_analyzing_as_json_then_it_works_without_the_extra(
    plain_install: Path, tmp_path: Path
) -> None:
    log = tmp_path / "export.log"
    log.write_text("2026-11-25T10:00:00.000Z [WARN] hello\n")
    result = pinwatch(plain_install, "analyze", str(log), "--format", "json")
    assert (result.returncode, result.stderr) == (0, "")
    assert '"totals"' in result.stdout


@pytest.mark.parametrize(
    "command", [["reasons"], ["analyze", "-"], ["report", "--table", "pins", "--region", "us-east-1"], ["check"]]
)
def test_given_a_plain_install_when_a_command_needs_the_extra_then_one_line_names_it(
    plain_install: Path, command: list[str]
) -> None:
    result = subprocess.run(
        [str(plain_install / "pinwatch"), *command], input="", capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"pinwatch {command[0]}: error: ")
    assert EXTRA_HINT in result.stderr
