"""Generated RDS Proxy log traffic whose correct counts are known line by line.

Every generated line comes from a labelled :class:`Body`: what the line is (a pin, a would-pin
warning, another proxy line, or junk the parser must count as unparsed) and the catalog code it
must be counted under. :class:`Traffic` adds up those labels as it generates — it never parses a
line — so the table a run must end with is known independently of the pipeline under test.
Line shapes are the verbatim ones of :mod:`tests.payloads`.
"""

from __future__ import annotations

import base64
import itertools
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pinwatch.records import Kind
from pinwatch.store import keys
from pinwatch.timebase import HOUR_MS
from tests.payloads import (
    OTHER_LINES,
    PIN_TEMPLATE,
    SETTINGS_REASON,
    WOULD_PIN_TEMPLATE,
    proxy_line,
    subscription_event,
)

T0 = 1_795_600_800_000  # 2026-11-25T10:00:00Z


@dataclass(frozen=True, slots=True)
class Body:
    kind: Kind
    level: str = "WARN"
    template: str = PIN_TEMPLATE
    reason: str = ""
    code: str | None = None  # the reason code the line must be counted under (pins and would-pins)
    raw: str | None = None  # junk: the whole message, no proxy prefix


def _pin(reason: str, code: str) -> Body:
    return Body(Kind.PINNED, "WARN", PIN_TEMPLATE, reason, code)


PINS: tuple[Body, ...] = (
    _pin(f'{SETTINGS_REASON} Digest: "set search_path = $1; set names $2;".', "session_settings"),
    _pin(f'{SETTINGS_REASON} Digest: "set client_encoding to $1".', "session_settings"),
    _pin(f'{SETTINGS_REASON} Digest: "SET @row_number = ?, @prev = ?".', "user_variable"),
    _pin(f'{SETTINGS_REASON} Digest: "select pg_advisory_lock($1)".', "lock"),
    _pin(f'{SETTINGS_REASON} Digest: "CREATE TEMP TABLE scratch (id int)".', "temporary_table"),
    _pin("A parse message was detected.", "prepared_statement"),
    _pin("The connection ran a SQL query which exceeded the 16384 byte limit.", "large_statement"),
    # A wording no rule knows (the log format may change): kept under `unknown`, never dropped.
    _pin("A brand-new condition was detected.", "unknown"),
)
WOULD_PINS: tuple[Body, ...] = (
    Body(
        Kind.WOULD_PIN,
        "INFO",
        WOULD_PIN_TEMPLATE,
        'A parse message was detected. Digest: "select * from orders where customer_id = $1".',
        "prepared_statement",
    ),
    Body(Kind.WOULD_PIN, "INFO", WOULD_PIN_TEMPLATE, 'The statement is not shareable. Digest: "select 1".', "unknown"),
)
OTHERS: tuple[Body, ...] = tuple(Body(Kind.OTHER, "INFO", line) for line in OTHER_LINES)
JUNK: tuple[Body, ...] = tuple(
    Body(Kind.UNPARSED, raw=raw)
    for raw in ("", '{"level":"info","msg":"from another service"}', "\x00\x01\x02 binary junk", "plain words")
)


@dataclass(frozen=True, slots=True)
class Mix:
    """How often each kind of line occurs in generated deliveries."""

    pins: float = 0.7
    would_pins: float = 0.1
    others: float = 0.1
    junk: float = 0.1

    def pick(self, rnd: random.Random) -> Body:
        groups: Sequence[tuple[float, tuple[Body, ...]]] = (
            (self.pins, PINS),
            (self.would_pins, WOULD_PINS),
            (self.others, OTHERS),
            (self.junk, JUNK),
        )
        weights = [w for w, _ in groups]
        group = rnd.choices([bodies for _, bodies in groups], weights)[0]
        return group[rnd.randrange(len(group))]


class Traffic:
    """Generates subscription deliveries of proxy log lines and keeps the counts they must produce.

    `expected_hourly` and `expected_totals` are keyed like the table, ``(pk, sk) -> count``.
    Redelivering an event returned by :meth:`delivery` must not change them: that is the point.
    """

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.expected_hourly: Counter[tuple[str, str]] = Counter()
        self.expected_totals: Counter[tuple[str, str]] = Counter()
        self.proxies: set[str] = set()
        self.lines = 0
        self._ids = itertools.count(1)

    def delivery(
        self,
        proxy: str,
        lines: int,
        start_ms: int,
        spread_ms: int,
        *,
        mix: Mix = Mix(),
        bodies: Sequence[Body] | None = None,
        stream: str = "proxy-1",
    ) -> dict[str, Any]:
        """One invocation event: `lines` lines of `proxy` at times in [start, start + spread), in time order.

        Lines are drawn from `mix`, or cycle through `bodies` when given.
        """
        rnd = self.rnd
        times = sorted(start_ms + rnd.randrange(max(1, spread_ms)) for _ in range(lines))
        events = []
        for i, ts in enumerate(times):
            body = bodies[i % len(bodies)] if bodies else mix.pick(rnd)
            message = (
                body.raw if body.raw is not None else proxy_line(rnd, ts, (body.level, body.template, body.reason))
            )
            events.append({"id": f"{ts:020d}{next(self._ids):036d}", "timestamp": ts, "message": message})
            self._count(proxy, ts, body)
        self.proxies.add(proxy)
        return subscription_event(events, log_group=f"/aws/rds/proxy/{proxy}", log_stream=stream)

    def _count(self, proxy: str, ts: int, body: Body) -> None:
        self.lines += 1
        pk, hour = keys.proxy_pk(proxy), keys.hour_bucket(ts)
        if body.kind is Kind.PINNED:
            assert body.code is not None
            self.expected_hourly[(pk, keys.pin_hour_sk(hour, body.code))] += 1
            self.expected_totals[(pk, keys.pin_total_sk(body.code))] += 1
        elif body.kind is Kind.WOULD_PIN:
            assert body.code is not None
            self.expected_hourly[(pk, keys.would_pin_hour_sk(hour, body.code))] += 1
            self.expected_totals[(pk, keys.would_pin_total_sk(body.code))] += 1
        elif body.kind is Kind.UNPARSED:
            self.expected_hourly[(pk, keys.unparsed_hour_sk(hour))] += 1

    def wide_delivery(self, proxy: str, start_ms: int, hours: int, stream: str = "proxy-1") -> dict[str, Any]:
        """A delivery touching every pin, would-pin and junk body in each of `hours` hours: more keys than
        fit one transaction, so it is written in several chunks."""
        bodies = [*PINS, *WOULD_PINS, *JUNK[:1]]
        return self.delivery(proxy, len(bodies) * hours, start_ms, hours * HOUR_MS, bodies=bodies, stream=stream)

    def corrupt(self) -> dict[str, Any]:
        """An invocation event whose gzip is cut short: it must fail and stay in the dead-letter queue."""
        good = self.delivery_bytes()
        return {"awslogs": {"data": base64.b64encode(good[: len(good) // 2]).decode("ascii")}}

    def delivery_bytes(self) -> bytes:
        """The gzip bytes of a small delivery that is not counted (for corrupting)."""
        event = subscription_event([{"id": "x", "timestamp": T0, "message": "not counted"}])
        return base64.b64decode(event["awslogs"]["data"])
