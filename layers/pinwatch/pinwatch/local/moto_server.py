"""moto in server mode: the stack's non-DynamoDB AWS APIs over real HTTP on loopback.

moto lacks ``ModifyDBProxy``; :mod:`pinwatch.local.rds_shim` adds it before the server starts.
:mod:`pinwatch.local.sts_shim` makes ``AssumeRole`` deny a role the target account does not have.
Both apply their patch through :func:`patch_moto`.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pinwatch.local.dynamodb_local import free_port

_patch_lock = threading.Lock()
_patched: set[str] = set()


def patch_moto(name: str, patch: Callable[[], None], *, client_error: str) -> None:
    """Apply ``patch`` to moto once per process, however many servers start (thread-safe).

    A patched action may answer an error code its service model has no shape for (IAM's
    ``AccessDenied`` from RDS or STS); moto then warns each time it serialises a ``client_error``
    (the exception class's name), so that warning is silenced along with the patch.
    """
    with _patch_lock:
        if name in _patched:
            return
        patch()
        warnings.filterwarnings("ignore", message=rf"Exception\({client_error}\) with code", category=UserWarning)
        _patched.add(name)


@contextmanager
def moto_server(port: int | None = None) -> Iterator[str]:
    """Run a threaded moto server for the duration of the block; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer  # imported lazily: moto is a dev/demo dependency

    from pinwatch.local import rds_shim, sts_shim

    rds_shim.install()
    sts_shim.install()
    port = port or free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
