"""Traffic shapes: 30-minute series shaped like real proxies, and what the check must say about each.

Pure data. ``test_traffic_shapes.py`` publishes each shape to moto server as per-instance datapoints
(every proxy instance publishes its share; the check reads Sum, as it does on AWS) and runs the real
``pinwatch check --dry-run --format json``; ``tests/unit/test_traffic_shapes_doc.py`` checks that the
table in docs/connection-check.md ("Traffic shapes") is :func:`markdown_table` of :data:`SHAPES`.

Values are proxy totals per minute (``m`` = 0 for the oldest of the 30 minutes); the publisher
splits each count evenly across the instances (borrow latency, an average, is published as is by
each). ``None`` = not published that minute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pinwatch import diagnose as dx
from pinwatch.findings import Severity
from pinwatch.metrics import (
    BORROW_LATENCY,
    BORROWED,
    CLIENT_CONNECTIONS,
    DATABASE_CONNECTIONS,
    IN_TRANSACTION,
    MAX_ALLOWED,
    PINNED,
    SETUP_FAILED,
)

Total = Callable[[int], float | None]
WINDOW = 30
NEWEST = WINDOW - 1


@dataclass(frozen=True, slots=True)
class TrafficShape:
    name: str
    looks_like: str  # one line for the docs table
    series: Mapping[str, Total]
    raises: Mapping[str, Severity]  # rule -> the exact severity it must have
    quiet: tuple[str, ...]  # rules that must stay below warning (ok or info)
    worst: Severity  # the worst severity of any finding on the proxy
    instances: int = 2
    pool: Mapping[str, int] = field(default_factory=dict)  # ConnectionPoolConfig overrides
    debug_logging: bool = True
    newest_minute_instances: int | None = None  # fewer than ``instances``: the newest minute is partial
    decided: tuple[str, ...] = ()  # rules that must reach a verdict (not insufficient data)
    mentions: Mapping[str, str] = field(default_factory=dict)  # rule -> text its summary must contain
    figures: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # rule -> figures it must report


def _flat(value: float) -> Total:
    return lambda m: value


SHAPES: tuple[TrafficShape, ...] = (
    TrafficShape(
        name="idle pool after a burst",
        looks_like="10 min at 200 clients / 80 in use, then 30 clients on 45 open connections, 2 in use",
        instances=3,
        pool={"MaxConnectionsPercent": 100, "MaxIdleConnectionsPercent": 50},
        series={
            CLIENT_CONNECTIONS: lambda m: 200.0 if m < 10 else 30.0,
            DATABASE_CONNECTIONS: lambda m: 90.0 if m < 10 else 45.0,
            BORROWED: lambda m: 80.0 if m < 10 else 2.0,
            IN_TRANSACTION: lambda m: 20.0 if m < 10 else 1.0,
            MAX_ALLOWED: _flat(100.0),
            BORROW_LATENCY: _flat(1_000.0),
            SETUP_FAILED: _flat(0.0),
        },
        raises={},
        quiet=(dx.MULTIPLEXING_LOST, dx.POOL_PRESSURE, dx.EXHAUSTION_FORECAST),
        worst=Severity.OK,
    ),
    TrafficShape(
        name="healthy busy proxy",
        looks_like="400 clients on ~84 open / 50 in use of 200, nothing pinned (no pinned datapoints)",
        series={
            CLIENT_CONNECTIONS: _flat(400.0),
            DATABASE_CONNECTIONS: lambda m: 84.0 + 2 * (m % 3),
            BORROWED: _flat(50.0),
            IN_TRANSACTION: _flat(10.0),
            MAX_ALLOWED: _flat(200.0),
            BORROW_LATENCY: _flat(1_500.0),
            SETUP_FAILED: _flat(0.0),
        },
        raises={},
        quiet=tuple(dx.METRIC_RULES),
        worst=Severity.OK,
    ),
    TrafficShape(
        name="morning ramp",
        looks_like="clients 100→825, in use 10→126 (+4/min) of 300, open 20→194: a ramp, not exhaustion",
        instances=3,
        series={
            CLIENT_CONNECTIONS: lambda m: 100.0 + 25 * m,
            DATABASE_CONNECTIONS: lambda m: 20.0 + 6 * m,
            BORROWED: lambda m: 10.0 + 4 * m,
            PINNED: _flat(1.0),
            IN_TRANSACTION: lambda m: 2.0 + 0.5 * m,
            MAX_ALLOWED: _flat(300.0),
            BORROW_LATENCY: _flat(2_000.0),
            SETUP_FAILED: _flat(0.0),
        },
        raises={},
        quiet=(dx.EXHAUSTION_FORECAST, dx.POOL_PRESSURE, dx.UNDERSIZED_POOL),
        worst=Severity.OK,
        decided=(dx.EXHAUSTION_FORECAST,),
    ),
    TrafficShape(
        name="undersized pool, clients queueing",
        looks_like="MaxConnectionsPercent 20: 59 of 60 in use, 1 pinned, 240 clients, borrows take 3.4 s",
        instances=3,
        pool={"MaxConnectionsPercent": 20, "MaxIdleConnectionsPercent": 10, "ConnectionBorrowTimeout": 120},
        series={
            CLIENT_CONNECTIONS: _flat(240.0),
            DATABASE_CONNECTIONS: _flat(60.0),
            BORROWED: _flat(59.0),
            PINNED: _flat(1.0),
            IN_TRANSACTION: _flat(12.0),
            MAX_ALLOWED: _flat(60.0),
            BORROW_LATENCY: _flat(3_400_000.0),
            SETUP_FAILED: _flat(0.0),
        },
        raises={
            dx.UNDERSIZED_POOL: Severity.CRITICAL,
            dx.POOL_PRESSURE: Severity.CRITICAL,
            dx.BORROW_LATENCY_RULE: Severity.WARNING,
        },
        quiet=tuple(sorted(dx.PINNING_RULES)),
        worst=Severity.CRITICAL,
        mentions={dx.UNDERSIZED_POOL: "raise MaxConnectionsPercent (now 20%)"},
    ),
    TrafficShape(
        name="pinning incident",
        looks_like="pins 10→80 (+2.5/min) of 100, in use = pins + 8; newest minute from 1 of 3 instances only",
        instances=3,
        newest_minute_instances=1,
        series={
            CLIENT_CONNECTIONS: lambda m: 150.0 + 5 * m,
            DATABASE_CONNECTIONS: lambda m: 22.0 + 2.5 * m,
            BORROWED: lambda m: 18.0 + 2.5 * m,
            PINNED: lambda m: 10.0 + 2.5 * m,
            IN_TRANSACTION: _flat(4.0),
            MAX_ALLOWED: _flat(100.0),
            BORROW_LATENCY: lambda m: 800.0 + 2_000.0 * m,
            SETUP_FAILED: _flat(0.0),
        },
        raises={dx.PINNED_SHARE: Severity.CRITICAL, dx.EXHAUSTION_FORECAST: Severity.CRITICAL},
        quiet=(dx.UNDERSIZED_POOL, dx.OPEN_TRANSACTIONS),
        worst=Severity.CRITICAL,
        # The partial newest minute is left out: figures from minute 28 with the whole limit, and the
        # trend's true slope (with it, a third of every gauge: limit 33, slope +2.1).
        figures={
            dx.PINNED_SHARE: {"max_connections_allowed": 100.0, "in_use_connections": 88.0, "pinned_connections": 80.0},
            dx.EXHAUSTION_FORECAST: {"in_use_slope_per_minute": 2.5},
        },
    ),
    TrafficShape(
        name="pins rising with open transactions",
        looks_like="pins 3→32 and in-transaction 5→40 rise together; 42 of 200 in use",
        series={
            CLIENT_CONNECTIONS: _flat(300.0),
            DATABASE_CONNECTIONS: lambda m: 18.0 + 1.0 * m,
            BORROWED: lambda m: 13.0 + 1.0 * m,
            PINNED: lambda m: 3.0 + 1.0 * m,
            IN_TRANSACTION: lambda m: 5.0 + 1.2 * m,
            MAX_ALLOWED: _flat(200.0),
            BORROW_LATENCY: _flat(1_000.0),
            SETUP_FAILED: _flat(0.0),
        },
        raises={dx.OPEN_TRANSACTIONS: Severity.WARNING, dx.PINNED_SHARE: Severity.WARNING},
        quiet=(dx.EXHAUSTION_FORECAST, dx.UNDERSIZED_POOL),
        worst=Severity.WARNING,
    ),
    TrafficShape(
        name="tiny dev proxy, every client pinned",
        looks_like="3 clients, 3 pinned of 3 in use, limit 80, enhanced logging off",
        debug_logging=False,
        series={
            CLIENT_CONNECTIONS: _flat(3.0),
            DATABASE_CONNECTIONS: _flat(5.0),
            BORROWED: _flat(3.0),
            PINNED: _flat(3.0),
            IN_TRANSACTION: _flat(0.0),
            MAX_ALLOWED: _flat(80.0),
            BORROW_LATENCY: _flat(1_000.0),
            SETUP_FAILED: _flat(0.0),
        },
        raises={dx.PINNED_SHARE: Severity.INFO, dx.ENHANCED_LOGGING_OFF: Severity.INFO},
        quiet=(),
        worst=Severity.INFO,
    ),
    TrafficShape(
        name="failing to open database connections",
        looks_like="20 clients, no database connection open, 8 failed setups a minute",
        series={
            CLIENT_CONNECTIONS: _flat(20.0),
            DATABASE_CONNECTIONS: _flat(0.0),
            BORROWED: _flat(0.0),
            MAX_ALLOWED: _flat(100.0),
            SETUP_FAILED: _flat(8.0),
        },
        raises={dx.CONNECTION_SETUP_FAILED: Severity.CRITICAL},
        quiet=(dx.PINNED_SHARE, dx.POOL_PRESSURE, dx.UNDERSIZED_POOL),
        worst=Severity.CRITICAL,
    ),
    TrafficShape(
        name="no pinned datapoints",
        looks_like="every gauge but the pinned one published: 120 clients, 12 in use of 100",
        series={
            CLIENT_CONNECTIONS: _flat(120.0),
            DATABASE_CONNECTIONS: _flat(30.0),
            BORROWED: _flat(12.0),
            IN_TRANSACTION: _flat(3.0),
            MAX_ALLOWED: _flat(100.0),
            BORROW_LATENCY: _flat(1_000.0),
            SETUP_FAILED: _flat(0.0),
        },
        raises={},
        quiet=tuple(dx.METRIC_RULES),
        worst=Severity.OK,
        decided=(dx.PINNED_SHARE, dx.OPEN_TRANSACTIONS, dx.ENHANCED_LOGGING_OFF),
    ),
    TrafficShape(
        name="flapping around the pool warning",
        looks_like="in use alternates 78 / 82 of 100 every minute, nothing pinned",
        series={
            CLIENT_CONNECTIONS: _flat(500.0),
            DATABASE_CONNECTIONS: _flat(85.0),
            BORROWED: lambda m: 82.0 if m % 2 else 78.0,
            IN_TRANSACTION: _flat(10.0),
            MAX_ALLOWED: _flat(100.0),
            BORROW_LATENCY: _flat(1_000.0),
            SETUP_FAILED: _flat(0.0),
        },
        raises={},
        quiet=(dx.EXHAUSTION_FORECAST, dx.PINNED_SHARE, dx.MULTIPLEXING_LOST),
        worst=Severity.WARNING,
        decided=(dx.EXHAUSTION_FORECAST,),
    ),
    TrafficShape(
        name="no connections allowed",
        looks_like="MaxDatabaseConnectionsAllowed 0, 10 clients, nothing open",
        series={
            CLIENT_CONNECTIONS: _flat(10.0),
            DATABASE_CONNECTIONS: _flat(0.0),
            BORROWED: _flat(0.0),
            MAX_ALLOWED: _flat(0.0),
            SETUP_FAILED: _flat(0.0),
        },
        raises={dx.NO_CONNECTIONS_ALLOWED: Severity.CRITICAL},
        quiet=(dx.PINNED_SHARE, dx.MULTIPLEXING_LOST),
        worst=Severity.CRITICAL,
    ),
)


def _rules(rules: Mapping[str, Severity] | tuple[str, ...]) -> str:
    if isinstance(rules, tuple):
        return ", ".join(f"`{r}`" for r in rules) or "–"
    return ", ".join(f"`{r}` {s.value}" for r, s in rules.items()) or "–"


def markdown_table(shapes: tuple[TrafficShape, ...] = SHAPES) -> str:
    """The docs table: one row per shape, what must and must not be raised, and the worst severity."""
    rows = [
        "| shape | what it looks like | must raise | must stay below warning | worst severity |",
        "|---|---|---|---|---|",
    ]
    for s in shapes:
        quiet = "every rule" if set(s.quiet) >= set(dx.METRIC_RULES) else _rules(s.quiet)
        rows.append(f"| {s.name} | {s.looks_like} | {_rules(s.raises)} | {quiet} | {s.worst.value} |")
    return "\n".join(rows) + "\n"
