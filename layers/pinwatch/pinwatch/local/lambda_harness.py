"""Run the Lambda handlers in process the way the Lambda service does: cold start, context, payloads.

One harness for the demo, the tests, the benchmarks and ``events/generate.py``:

* :func:`load_handler`: a cold start — ``functions/<name>/app.py`` imported afresh under a name of
  its own, reading the environment as it is then and creating its clients;
* :class:`LambdaContext`: the attributes of the context object that Powertools reads;
* :func:`encode_subscription` / :func:`decode_subscription`: the invocation event CloudWatch Logs
  sends a subscribed function, ``{"awslogs": {"data": base64(gzip(JSON))}}``, and back.

Creates no AWS client and imports no emulator, so a benchmark or ``events/generate.py`` pays little for it.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import importlib.util
import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from pinwatch.ingest import CONTROL_MESSAGE, DATA_MESSAGE
from pinwatch.local import PROJECT_ROOT

FUNCTIONS_DIR = PROJECT_ROOT / "functions"
PIN_INGEST_APP = FUNCTIONS_DIR / "pin_ingest" / "app.py"
CONNECTION_CHECK_APP = FUNCTIONS_DIR / "connection_check" / "app.py"
# The EventBridge event the schedule invokes the check function with (the handler only logs it).
SCHEDULE_EVENT_FILE = PROJECT_ROOT / "events" / "schedule.json"

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's account
INGEST_FUNCTION_NAME = "pinwatch-pin-ingest"
CHECK_FUNCTION_NAME = "pinwatch-connection-check"
SUBSCRIPTION_FILTER = "pinwatch-pins"


# --------------------------------------------------------------------------------------------
# Cold start


class HandlerNotFound(FileNotFoundError):
    """The handler's ``app.py`` is not there: the functions run from a pinwatch source checkout."""


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str], remove: Sequence[str] = ()) -> Iterator[None]:
    """Set (and remove) environment variables for the block; restore them afterwards."""
    saved = {name: os.environ.get(name) for name in (*values, *remove)}
    try:
        for name in remove:
            os.environ.pop(name, None)
        os.environ.update(values)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_handler(path: Path, env: Mapping[str, str] | None = None) -> ModuleType:
    """Import a handler module afresh, under a name of its own: what a cold start does.

    ``env``, when given, is set for the import only (the module reads its settings and creates its
    clients then); without it the module reads the environment as it is.
    """
    if not path.exists():
        raise HandlerNotFound(f"{path} not found: the functions run from a pinwatch source checkout")
    spec = importlib.util.spec_from_file_location(f"{path.parent.name}_app_{uuid.uuid4().hex}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    with patched_environ(env or {}):
        spec.loader.exec_module(module)
    return module


def schedule_event() -> dict[str, Any]:
    """The scheduled EventBridge event of ``events/schedule.json``."""
    event: dict[str, Any] = json.loads(SCHEDULE_EVENT_FILE.read_text(encoding="utf-8"))
    return event


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools reads (the ingest function's by default)."""

    function_name: str = INGEST_FUNCTION_NAME
    memory_limit_in_mb: int = 128
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    region: str = REGION

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"


def check_context() -> LambdaContext:
    """A context of the connection-check function, with the memory its template entry gives it."""
    return LambdaContext(CHECK_FUNCTION_NAME, memory_limit_in_mb=256)


# --------------------------------------------------------------------------------------------
# Subscription payloads


def encode_subscription(document: Any) -> dict[str, Any]:
    """The invocation event CloudWatch Logs sends for a subscription payload: base64(gzip(JSON)).

    Any JSON document is encoded (tests encode malformed ones too). gzip's MTIME is 0, so the same
    payload always encodes to the same event.
    """
    raw = json.dumps(document, separators=(",", ":")).encode()
    return {"awslogs": {"data": base64.b64encode(gzip.compress(raw, mtime=0)).decode("ascii")}}


def decode_subscription(event: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`encode_subscription`."""
    document: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    return document


def subscription_document(
    log_group: str,
    log_stream: str,
    log_events: Sequence[Mapping[str, Any]],
    *,
    owner: str = ACCOUNT_ID,
    message_type: str = DATA_MESSAGE,
) -> dict[str, Any]:
    """A subscription payload as CloudWatch Logs builds it (``log_events``: id, timestamp, message).

    Lambda receives it encoded: ``encode_subscription(subscription_document(...))``.
    """
    return {
        "messageType": message_type,
        "owner": owner,
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": [SUBSCRIPTION_FILTER],
        "logEvents": list(log_events),
    }


def control_document(destination: str, now_ms: int) -> dict[str, Any]:
    """The reachability check CloudWatch Logs sends when a subscription to ``destination`` is created.

    ``destination`` is how the message names it: ``Lambda function for <log group>`` for a
    subscribed function, the destination's ARN for a cross-account destination.
    """
    return {
        "messageType": CONTROL_MESSAGE,
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {
                "id": "",
                "timestamp": now_ms,
                "message": f"CWL CONTROL MESSAGE: Checking health of destination {destination}",
            }
        ],
    }


def control_event(log_group: str, now_ms: int) -> dict[str, Any]:
    """The reachability check CloudWatch Logs sends when a function's subscription is created."""
    return encode_subscription(control_document(f"Lambda function for {log_group}", now_ms))
