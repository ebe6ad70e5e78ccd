"""moto in server mode: the stack's non-DynamoDB AWS APIs over real HTTP on loopback.

moto lacks ``ModifyDBProxy``; :mod:`pinwatch.local.rds_shim` adds it before the server starts.
:mod:`pinwatch.local.sts_shim` makes ``AssumeRole`` deny a role the target account does not have.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pinwatch.local.dynamodb_local import free_port


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
