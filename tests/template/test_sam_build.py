"""`sam build` for python3.13 arm64, then each built handler imported the way Lambda would.

The smoke interpreter sees only the built function directory, the built layer
(``PinwatchLayer/python``, Lambda's /opt/python) and what the python3.13 runtime itself ships
(boto3, botocore and their dependencies) -- not the dev venv. A module left out of the layer, a
dependency missing from layers/pinwatch/requirements.txt, or a handler that imports CLI-only
packages fails here instead of at the first invocation in AWS.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pinwatch.local.template import load_template
from tests.template.cfn import ROOT

pytestmark = pytest.mark.template

SAM = ROOT / ".venv-sam" / "bin" / "sam"
FUNCTIONS = {
    "PinIngestFunction": "pin_ingest",
    "ConnectionCheckFunction": "connection_check",
    "PinStreamFunction": "pin_stream",
}
# The plain-CloudFormation templates the organization StackSets deploy (TemplateURL).
STACK_SET_TEMPLATES = {"CollectorStackSet": "org/collector.yaml", "MemberStackSet": "org/member.yaml"}
# What the Lambda python3.13 runtime provides besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
# Never on a Lambda code path: CLI, local emulation and test tooling.
FORBIDDEN_MODULES = ("rich", "yaml", "moto", "pinwatch.cli", "pinwatch.local")
ELF_MACHINE_AARCH64 = 183
# Subpackages of pinwatch that layers/pinwatch/Makefile leaves out: no function imports them.
EXCLUDED_FROM_LAYER = ("cli", "local")

SMOKE = """
import importlib.util, json, sys, types
sys.path[:0] = {paths!r}
spec = importlib.util.spec_from_file_location("app", {app!r})
app = importlib.util.module_from_spec(spec)
sys.modules["app"] = app
spec.loader.exec_module(app)
assert callable(app.lambda_handler)
result = None
event = {event!r}
if event is not None:
    context = types.SimpleNamespace(
        function_name="smoke", function_version="$LATEST", memory_limit_in_mb=256, aws_request_id="smoke-1",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:smoke", log_group_name="/smoke",
        log_stream_name="smoke", get_remaining_time_in_millis=lambda: 30000,
    )
    result = app.lambda_handler(json.loads(event), context)
forbidden = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden_roots!r} or m in {forbidden!r}
                   or any(m.startswith(f + ".") for f in {forbidden!r}))
print(json.dumps({{"forbidden": forbidden, "result": result}}, default=str))
"""


def _python313() -> str:
    found = shutil.which("python3.13")
    if found is None:
        pytest.fail("python3.13 is not on PATH; sam build needs the runtime's Python (no container builds here)")
    return found


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SAM.exists():
        pytest.fail(f"{SAM} is missing: run `make setup`")
    missing = [f"functions/{d}/app.py" for d in FUNCTIONS.values() if not (ROOT / "functions" / d / "app.py").exists()]
    if missing:
        pytest.fail(f"cannot build: {', '.join(missing)} not written yet")
    out = tmp_path_factory.mktemp("sam-build")
    env = {
        **os.environ,
        "PATH": f"{Path(_python313()).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
    }
    proc = subprocess.run(
        [
            str(SAM),
            "build",
            "--language-extensions",
            "--cached",
            "--parallel",
            # Our own build and cache dirs: never clobber a developer's .aws-sam/build.
            "--build-dir",
            str(out),
            "--cache-dir",
            str(ROOT / ".aws-sam" / "cache-tests"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only what the Lambda runtime adds to the standard library."""
    out = tmp_path_factory.mktemp("lambda-runtime")
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None, f"{name} is not installed in the test venv"
        assert spec.origin is not None
        source = Path(spec.origin)
        source = source.parent if source.name == "__init__.py" else source
        (out / source.name).symlink_to(source)
    return out


def _smoke(build_dir: Path, runtime_dir: Path, function: str, event: dict[str, Any] | None) -> dict[str, Any]:
    paths = [str(build_dir / function), str(build_dir / "PinwatchLayer" / "python"), str(runtime_dir)]
    script = SMOKE.format(
        paths=paths,
        app=str(build_dir / function / "app.py"),
        event=None if event is None else json.dumps(event),
        forbidden_roots=("rich", "yaml", "moto"),
        forbidden=FORBIDDEN_MODULES,
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "smoke",
        "AWS_SECRET_ACCESS_KEY": "smoke",
        "SUMMARY_TABLE_NAME": "pinwatch-smoke",
        "PARKING_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/pinwatch-smoke-dlq",
        "POWERTOOLS_SERVICE_NAME": "pinwatch",
        "POWERTOOLS_METRICS_NAMESPACE": "Pinwatch",
    }
    # -I -S: no site-packages, no PYTHONPATH, no user site, no working directory on sys.path.
    # -B: no __pycache__ written into the artifacts (Lambda's /opt and /var/task are read-only too).
    proc = subprocess.run(
        [_python313(), "-I", "-S", "-B", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_given_the_built_artifacts_when_a_handler_is_imported_with_only_the_runtime_then_it_loads_without_cli_modules(
    build_dir: Path, runtime_dir: Path, function: str
) -> None:
    outcome = _smoke(build_dir, runtime_dir, function, event=None)

    assert outcome["forbidden"] == []


def test_given_the_built_ingest_when_invoked_with_a_control_message_then_it_acknowledges_without_aws_calls(
    build_dir: Path, runtime_dir: Path
) -> None:
    event = json.loads((ROOT / "events" / "logs-control.json").read_text(encoding="utf-8"))

    outcome = _smoke(build_dir, runtime_dir, "PinIngestFunction", event=event)

    assert outcome["forbidden"] == []
    assert outcome["result"] is not None


def test_given_the_built_layer_then_it_holds_exactly_the_library_core_without_the_cli_or_local_emulation(
    build_dir: Path,
) -> None:
    layer = build_dir / "PinwatchLayer"
    source = ROOT / "layers" / "pinwatch" / "pinwatch"
    core_files = {
        p.relative_to(source).as_posix()
        for p in source.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.relative_to(source).parts[0] not in EXCLUDED_FROM_LAYER
    }

    built = layer / "python" / "pinwatch"
    built_files = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}

    assert [p.name for p in layer.iterdir()] == ["python"]
    assert not any((built / name).exists() for name in EXCLUDED_FROM_LAYER)
    assert "__init__.py" in core_files
    assert built_files == core_files


def test_given_the_built_layer_then_it_ships_the_library_and_its_dependencies_but_never_boto3(build_dir: Path) -> None:
    layer = build_dir / "PinwatchLayer" / "python"

    assert (layer / "pinwatch" / "__init__.py").exists()
    assert (layer / "aws_lambda_powertools").is_dir()
    assert (layer / "slack_sdk").is_dir()
    for runtime_package in ("boto3", "botocore", "s3transfer"):
        assert not (layer / runtime_package).exists(), f"{runtime_package} is in the layer; the runtime provides it"


def test_given_the_built_layer_when_it_holds_native_code_then_every_extension_is_aarch64(build_dir: Path) -> None:
    extensions = list((build_dir / "PinwatchLayer").rglob("*.so"))
    machines = {}
    for path in extensions:
        header = path.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", path
        machines[path.name] = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")

    assert all(machine == ELF_MACHINE_AARCH64 for machine in machines.values()), machines


def test_given_the_built_template_then_each_stack_set_template_url_still_reaches_its_local_template(
    build_dir: Path,
) -> None:
    # `sam build` rewrites relative paths for the template it writes into the build directory;
    # `sam package`/`sam deploy` then upload a local AWS::CloudFormation::StackSet TemplateURL to S3
    # (as `aws cloudformation package` does). A path that no longer resolves would fail the deploy.
    built = build_dir / "template.yaml"
    resources = _built_resources(built)

    for logical_id, source in STACK_SET_TEMPLATES.items():
        url = resources[logical_id]["Properties"]["TemplateURL"]
        target = (built.parent / url).resolve()
        assert target == (ROOT / source).resolve(), (logical_id, url)
        assert target.read_text(encoding="utf-8") == (ROOT / source).read_text(encoding="utf-8")


def _built_resources(built: Path) -> dict[str, Any]:
    resources: dict[str, Any] = load_template(built)["Resources"]
    return resources
