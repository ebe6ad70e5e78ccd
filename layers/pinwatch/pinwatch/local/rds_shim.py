"""``ModifyDBProxy`` for the local emulation: moto implements RDS proxies but not that action.

:func:`install` adds the action to moto's RDS responder, so a boto3 ``modify_db_proxy`` call sent
to the moto server goes through the same HTTP, serialisation and error parsing as against AWS —
the real code path of reason capture, in tests and in ``pinwatch demo``. It changes what the API
reference lets ``ModifyDBProxy`` change on moto's proxy model (``DebugLogging``, ``RequireTLS``,
``IdleClientTimeout``) and answers like RDS: ``DBProxyNotFoundFault`` for an unknown name,
``InvalidDBProxyStateFault`` for a proxy that is not available.

:func:`fail_modify_db_proxy` makes the next calls for one proxy fail with an error code of your
choosing (``AccessDenied``, ``Throttling``, …), as IAM or RDS would answer: the way tests and the
demo show what a failed switch does to an alert. The server runs in this process (moto's
``ThreadedMotoServer``), so the switch is a module-level table guarded by a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pinwatch.local.moto_server import patch_moto

_lock = threading.Lock()
_faults: dict[str, tuple[str, str]] = {}  # proxy name -> (error code, message)


def install() -> None:
    """Add ``ModifyDBProxy`` to moto's RDS responder (idempotent)."""
    # IAM's AccessDenied is not in the RDS model: patch_moto silences moto's warning for it.
    patch_moto("rds:ModifyDBProxy", _patch, client_error="RDSClientError")


def _patch() -> None:
    from moto.rds.responses import RDSResponse

    RDSResponse.modify_db_proxy = _modify_db_proxy  # type: ignore[attr-defined]


@contextmanager
def fail_modify_db_proxy(proxy: str, code: str = "AccessDenied", message: str | None = None) -> Iterator[None]:
    """While the block runs, ``ModifyDBProxy`` on ``proxy`` fails with ``code`` (then works again)."""
    text = message or f"User is not authorized to perform: rds:ModifyDBProxy on resource: {proxy}"
    with _lock:
        _faults[proxy] = (code, text)
    try:
        yield
    finally:
        with _lock:
            _faults.pop(proxy, None)


def _modify_db_proxy(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.rds.exceptions import DBProxyNotFoundFault, RDSClientError

    params = self.params
    name = params.get("DBProxyName")
    with _lock:
        fault = _faults.get(name)
    if fault is not None:
        raise RDSClientError(*fault)
    proxies = self.backend.db_proxies
    if name not in proxies:
        raise DBProxyNotFoundFault(name)
    proxy = proxies[name]
    if proxy.status != "available":
        raise RDSClientError("InvalidDBProxyStateFault", f"The proxy {name} is in the {proxy.status} state.")
    if "DebugLogging" in params:
        proxy.debug_logging = _bool(params["DebugLogging"])
    if "RequireTLS" in params:
        proxy.require_tls = _bool(params["RequireTLS"])
    if "IdleClientTimeout" in params:
        proxy.idle_client_timeout = int(params["IdleClientTimeout"])
    return ActionResult({"DBProxy": proxy})


def _bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"
