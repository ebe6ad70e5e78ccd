"""Find the proxies to check and what the advice depends on: engine, status, logging, pool config.

One proxy's failure is that proxy's alone: an API error other than "not found" while describing a
named proxy or reading its target group (throttling beyond botocore's retries, access denied, a
malformed answer) is kept on its :class:`ProxyInfo` as ``error``, and the check reports that proxy
as not checked while the others go on. What concerns every call alike — no credentials, an
unreachable endpoint (botocore's ``BotoCoreError``s) — and a failed listing of every proxy stop
the run instead: then nothing could be checked.

The RDS client is injected; this module never imports boto3.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pinwatch.findings import call_error
from pinwatch.records import EngineFamily, PoolConfig

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient

AVAILABLE = "available"
# An error answer to one request (throttling after botocore's retries, access denied on one
# proxy's ARN) or an answer missing what it should hold: that proxy's problem, not the run's.
_PER_PROXY_ERRORS = (ClientError, KeyError, TypeError, ValueError, AttributeError)
DEFAULT_TARGET_GROUP = "default"  # the only target group a proxy has
# How long a proxy's target-group settings are reused by a warm function before they are read
# again, and how many are read in one run at most. The RDS API refills at about 12 requests/s per
# account and Region from a bucket of about 300, shared with every other caller (RDS User Guide,
# "Throttling of Amazon RDS API requests"): one read per proxy per minute would take the whole
# refill past ~700 proxies, and a burst of a thousand would drain the bucket. Pool settings change
# rarely and only by an operator; a proxy whose settings were never read is diagnosed without them
# (no pool-specific hints) until a later run reads them, stalest first.
POOL_CACHE_TTL_S = 900.0
POOL_READS_PER_RUN = 150


@dataclass(frozen=True, slots=True)
class ProxyInfo:
    name: str
    engine: EngineFamily | None
    status: str
    debug_logging: bool | None = None
    idle_client_timeout_s: int | None = None
    pool: PoolConfig | None = None
    error: str | None = None  # why this proxy could not be read (it is reported as not checked)

    @property
    def available(self) -> bool:
        return self.status == AVAILABLE


@dataclass(frozen=True, slots=True)
class Discovery:
    """The proxies found, in a stable order, and configured names that do not exist."""

    proxies: tuple[ProxyInfo, ...]
    missing: tuple[str, ...] = ()


def proxy_from_api(item: Any) -> ProxyInfo:
    """A ``DescribeDBProxies`` entry as a :class:`ProxyInfo` (without pool config)."""
    debug = item.get("DebugLogging")
    idle = item.get("IdleClientTimeout")
    return ProxyInfo(
        name=item["DBProxyName"],
        engine=EngineFamily.parse(item.get("EngineFamily")),
        status=str(item.get("Status", "unknown")),
        debug_logging=None if debug is None else bool(debug),
        idle_client_timeout_s=None if idle is None else int(idle),
    )


def pool_from_api(config: Any) -> PoolConfig:
    """A target group's ``ConnectionPoolConfig`` as a :class:`PoolConfig`."""
    max_pct = config.get("MaxConnectionsPercent")
    borrow = config.get("ConnectionBorrowTimeout")
    idle = config.get("MaxIdleConnectionsPercent")
    return PoolConfig(
        session_pinning_filters=tuple(config.get("SessionPinningFilters") or ()),
        init_query=config.get("InitQuery") or None,
        max_connections_percent=None if max_pct is None else int(max_pct),
        connection_borrow_timeout_s=None if borrow is None else int(borrow),
        max_idle_connections_percent=None if idle is None else int(idle),
    )


class RdsProxyDiscovery:
    """Lists proxies with ``DescribeDBProxies`` and reads each available one's default target group."""

    def __init__(
        self,
        client: RDSClient,
        max_workers: int = 8,
        *,
        pool_ttl_s: float = POOL_CACHE_TTL_S,
        pool_reads_per_run: int = POOL_READS_PER_RUN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        # Target groups can only be read one proxy at a time: a few threads keep a region with
        # hundreds of proxies within the schedule (boto3 clients are thread-safe).
        self._max_workers = max_workers
        # proxy name -> (when read, its default target group's pool config or None): kept across
        # the warm invocations of one function instance. Failed reads are not kept.
        self._pool_ttl_s = pool_ttl_s
        self._pool_reads_per_run = pool_reads_per_run
        self._clock = clock
        self._pools: dict[str, tuple[float, PoolConfig | None]] = {}
        self._pools_lock = threading.Lock()

    def discover(self, names: Sequence[str] = ()) -> Discovery:
        """Every proxy in the region, or only ``names`` (a name that does not exist goes to ``missing``)."""
        missing: list[str] = []
        if names:
            proxies = []
            for name in dict.fromkeys(names):
                found = self._describe_one(name)
                if found is None:
                    missing.append(name)
                else:
                    proxies.append(found)
        else:
            proxies = self._describe_all()
            seen = {p.name for p in proxies}
            with self._pools_lock:  # a deleted proxy's settings are not kept for ever
                self._pools = {name: entry for name, entry in self._pools.items() if name in seen}
        proxies.sort(key=lambda p: p.name)
        now = self._clock()
        to_read = self._stale(proxies, now)
        with ThreadPoolExecutor(max_workers=self._max_workers) as pool:
            completed = list(pool.map(lambda p: self._with_pool(p, now, p.name in to_read), proxies))
        return Discovery(tuple(completed), tuple(missing))

    def _stale(self, proxies: Sequence[ProxyInfo], now: float) -> set[str]:
        """Available proxies whose settings are due, stalest (never read first) up to the per-run cap."""
        with self._pools_lock:
            ages = {
                p.name: now - self._pools[p.name][0] if p.name in self._pools else float("inf")
                for p in proxies
                if p.available
            }
        due = sorted((name for name, age in ages.items() if age >= self._pool_ttl_s), key=lambda n: (-ages[n], n))
        return set(due[: self._pool_reads_per_run])

    def _describe_all(self) -> list[ProxyInfo]:
        paginator = self._client.get_paginator("describe_db_proxies")
        return [proxy_from_api(item) for page in paginator.paginate() for item in page.get("DBProxies", [])]

    def _describe_one(self, name: str) -> ProxyInfo | None:
        try:
            response = self._client.describe_db_proxies(DBProxyName=name)
            items = response.get("DBProxies", [])
            return proxy_from_api(items[0]) if items else None
        except self._client.exceptions.DBProxyNotFoundFault:
            return None
        except _PER_PROXY_ERRORS as exc:  # this name only: the other names are still described
            return ProxyInfo(name, None, "unknown", error=call_error("DescribeDBProxies", exc))

    def _with_pool(self, proxy: ProxyInfo, now: float, read_now: bool) -> ProxyInfo:
        if not proxy.available:
            return proxy  # not diagnosed, so its pool settings change nothing
        if not read_now:
            with self._pools_lock:
                cached = self._pools.get(proxy.name)
            return proxy if cached is None or cached[1] is None else replace(proxy, pool=cached[1])
        read = self._read_pool(proxy)
        if read.error is None:
            with self._pools_lock:
                self._pools[proxy.name] = (now, read.pool)
        return read

    def _read_pool(self, proxy: ProxyInfo) -> ProxyInfo:
        try:
            response = self._client.describe_db_proxy_target_groups(
                DBProxyName=proxy.name, TargetGroupName=DEFAULT_TARGET_GROUP
            )
            groups = response.get("TargetGroups", [])
            group = next((g for g in groups if g.get("TargetGroupName") == DEFAULT_TARGET_GROUP), None)
            if group is None or "ConnectionPoolConfig" not in group:
                return proxy
            return replace(proxy, pool=pool_from_api(group["ConnectionPoolConfig"]))
        except (
            self._client.exceptions.DBProxyNotFoundFault,  # deleted since it was listed
            self._client.exceptions.DBProxyTargetGroupNotFoundFault,
        ):
            return proxy
        except _PER_PROXY_ERRORS as exc:  # throttled past the retries, access denied, a malformed answer
            return replace(proxy, error=call_error("DescribeDBProxyTargetGroups", exc))
