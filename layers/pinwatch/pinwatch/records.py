"""Value types shared by every pinwatch module.

Pure data: no I/O, no boto3. Everything downstream of the parser (tallying, the summary
table, diagnosis, rendering) speaks in these types.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What one proxy log line is."""

    PINNED = "pinned"  # "The client session was pinned to the database connection …"
    WOULD_PIN = "would_pin"  # INFO "If this prepared statement runs, … will be pinned …"
    OTHER = "other"  # a proxy line that is not about pinning (connects, closes, resets, auth)
    UNPARSED = "unparsed"  # empty, binary, foreign or otherwise unreadable input


class EngineFamily(StrEnum):
    """RDS Proxy engine families, as `DescribeDBProxies` spells them."""

    MYSQL = "MYSQL"
    POSTGRESQL = "POSTGRESQL"
    SQLSERVER = "SQLSERVER"

    @classmethod
    def parse(cls, value: str | None) -> EngineFamily | None:
        """Accept the API spelling and common aliases (mysql, postgres, pg, mssql); None if unknown."""
        if not value:
            return None
        return _ENGINE_ALIASES.get(value.strip().lower())


_ENGINE_ALIASES = {
    "mysql": EngineFamily.MYSQL,
    "mariadb": EngineFamily.MYSQL,
    "aurora-mysql": EngineFamily.MYSQL,
    "postgresql": EngineFamily.POSTGRESQL,
    "postgres": EngineFamily.POSTGRESQL,
    "pg": EngineFamily.POSTGRESQL,
    "aurora-postgresql": EngineFamily.POSTGRESQL,
    "sqlserver": EngineFamily.SQLSERVER,
    "mssql": EngineFamily.SQLSERVER,
}


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One proxy log message, parsed.

    `timestamp_ms` is the CloudWatch event timestamp when there is one (the authority), else the
    timestamp in the text, else None. `reason` is a catalog code for PINNED and WOULD_PIN lines
    (``unknown`` when the text is not recognised) and None otherwise. `reason_text` keeps the
    text after ``Reason:`` verbatim (without the digest), for every kind that has one.
    """

    kind: Kind
    raw: str
    timestamp_ms: int | None = None
    level: str | None = None
    endpoint: str | None = None
    client_connection: str | None = None
    db_connection: str | None = None
    reason_text: str | None = None
    digest: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """The parts of a proxy target group's `ConnectionPoolConfig` that change the advice."""

    session_pinning_filters: tuple[str, ...] = ()
    init_query: str | None = None
    max_connections_percent: int | None = None
    connection_borrow_timeout_s: int | None = None
    max_idle_connections_percent: int | None = None


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """How often one reason pinned one proxy over some window (read back from the summary table)."""

    proxy: str
    reason: str
    count: int
    first_seen_ms: int | None = None
    last_seen_ms: int | None = None
    example_digest: str | None = None
    reason_text: str | None = None


@dataclass(frozen=True, slots=True)
class HourlyCount:
    """Lines of one kind (and reason) from one proxy in one UTC hour (read back from the summary table).

    `reason` is None for unparsed lines, whose `sample` holds one such line (truncated).
    """

    proxy: str
    hour: str  # UTC hour bucket, e.g. ``2026-11-25T20`` (see pinwatch.timebase.hour_bucket)
    kind: Kind
    reason: str | None
    count: int
    first_seen_ms: int | None = None
    last_seen_ms: int | None = None
    example_digest: str | None = None
    reason_text: str | None = None
    sample: str | None = None


@dataclass(frozen=True, slots=True)
class ProxySeen:
    """A proxy whose log lines reached the ingest function, with when they did (as delivered)."""

    proxy: str
    last_seen_ms: int | None
    first_seen_ms: int | None = None
    log_group: str | None = None
