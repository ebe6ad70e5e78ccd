"""A pinning incident, minute by minute: the proxy metrics and log lines ``pinwatch demo`` replays.

Pure and deterministic (seeded): no clock, no I/O. The story, on a PostgreSQL proxy whose pool
allows 100 database connections:

* minutes 0-2: a normal day — a parse message now and then, one pinned connection, connects and closes;
* from :attr:`Incident.onset`: a release makes every new session run Prisma's
  ``set search_path = $1; set names $2;``, which pins it. Pinned connections climb toward the
  limit, clients pile up, borrowing a connection slows down;
* at :attr:`Incident.fix`: the fix lands (the SETs move to the proxy's initialization query), pinned
  sessions drain within two minutes and that reason stops; the rest of the traffic goes on.

Every log line carries the kind and reason code the pipeline must file it under, so the demo can
check the summary table against what it replayed. Line bodies are the verbatim shapes of real
proxy logs (see the reference notes), including non-pin noise, a would-pin warning and a line cut short.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pinwatch.metrics import (
    BORROW_LATENCY,
    BORROWED,
    CLIENT_CONNECTIONS,
    DATABASE_CONNECTIONS,
    IN_TRANSACTION,
    MAX_ALLOWED,
    MINUTE_MS,
    PINNED,
)
from pinwatch.records import Kind

MIN_MINUTES = 16  # calm minutes, a ramp that warns before it is critical, and time to resolve after the fix
ONSET_MINUTE = 3
AFTER_FIX_MINUTES = 8  # three healthy checks resolve most rules; the forecast needs its window to clear
POOL_LIMIT = 100.0
PEAK_PINNED = 72.0

SESSION_SETTINGS = "session_settings"
PREPARED_STATEMENT = "prepared_statement"
LARGE_STATEMENT = "large_statement"

_PIN = (
    "The client session was pinned to the database connection [dbConnection={db}] for the remainder of the "
    "session. The proxy can't reuse this connection until the session ends. Reason: {reason}"
)
_WOULD_PIN = (
    "If this prepared statement runs, the client session will be pinned to the database connection "
    "[dbConnection={db}]. Reason: {reason}"
)
_PRISMA_SET = (
    "SQL changed session settings that the proxy doesn't track. Consider moving session configuration to the "
    'proxy\'s initialization query. Digest: "set search_path = $1; set names $2;".'
)
_PARSE = "A parse message was detected."
_LARGE = "The connection ran a SQL query which exceeded the 16384 byte limit."
_WOULD_PIN_REASON = 'A parse message was detected. Digest: "select * from orders where customer_id = $1".'


@dataclass(frozen=True, slots=True)
class LogLine:
    """One proxy log event and what the pipeline must make of it (`reason` is a catalog code, or None)."""

    event_id: str
    timestamp_ms: int
    stream: str
    message: str
    kind: Kind
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class IncidentMinute:
    """One simulated minute: metric totals across the proxy's instances, and its log lines in time order."""

    index: int
    start_ms: int
    metrics: Mapping[str, float]  # CloudWatch metric name -> total; absent = not published this minute
    lines: tuple[LogLine, ...]
    note: str | None = None  # what happens to the application this minute, for the timeline

    @property
    def end_ms(self) -> int:
        return self.start_ms + MINUTE_MS

    def by_stream(self) -> dict[str, list[LogLine]]:
        """The minute's lines per log stream (one subscription payload each), in time order."""
        streams: dict[str, list[LogLine]] = {}
        for line in self.lines:
            streams.setdefault(line.stream, []).append(line)
        return streams


class Incident:
    """The scenario for a proxy, starting at `start_ms` (a minute boundary), `minutes` long."""

    def __init__(self, proxy: str, start_ms: int, minutes: int = 30, *, instances: int = 2, seed: int = 2026) -> None:
        if minutes < MIN_MINUTES:
            raise ValueError(f"an incident needs at least {MIN_MINUTES} minutes, got {minutes}")
        if instances < 1:
            raise ValueError("a proxy has at least one instance")
        self.proxy = proxy
        self.start_ms = start_ms - start_ms % MINUTE_MS
        self.minutes = minutes
        self.instances = instances
        self.onset = ONSET_MINUTE
        self.fix = minutes - AFTER_FIX_MINUTES
        self.streams = tuple(f"proxy-{self.start_ms // 1000}-{proxy}-{i + 1}" for i in range(instances))
        self._seed = seed
        self._minutes = [self._build(m) for m in range(minutes)]

    def __iter__(self) -> Iterator[IncidentMinute]:
        return iter(self._minutes)

    def __getitem__(self, index: int) -> IncidentMinute:
        return self._minutes[index]

    def __len__(self) -> int:
        return self.minutes

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.minutes * MINUTE_MS

    @property
    def lines(self) -> list[LogLine]:
        return [line for minute in self._minutes for line in minute.lines]

    def expected_counts(self) -> Counter[tuple[Kind, str | None]]:
        """Lines per (kind, reason code) over the whole incident: what the summary table must hold."""
        return Counter((line.kind, line.reason) for line in self.lines)

    # ------------------------------------------------------------------ metrics

    def _progress(self, minute: int) -> float:
        """0 before the onset, rising to 1 in the minute before the fix."""
        if minute < self.onset:
            return 0.0
        return min(1.0, (minute - self.onset + 1) / (self.fix - self.onset))

    def pinned(self, minute: int) -> float:
        if minute < 0:
            return 1.0
        if minute >= self.fix:
            after = minute - self.fix
            return (20.0, 4.0, 2.0)[after] if after < 3 else 1.0
        return 1.0 + round((PEAK_PINNED - 1.0) * self._progress(minute))

    def metrics(self, minute: int) -> dict[str, float]:
        """Totals for one minute (the proxy's instances each publish their share; CloudWatch's Sum adds them)."""
        pinned = self.pinned(minute)
        if minute >= self.fix:
            after = minute - self.fix
            database = (70.0, 45.0, 34.0)[after] if after < 3 else 30.0
            latency_us = (60_000.0, 5_000.0, 1_500.0)[after] if after < 3 else 900.0
            clients = max(180.0, 300.0 - 10.0 * after)
        else:
            progress = self._progress(minute)
            # Pinned sessions cannot give their connection back, so the pool grows with them.
            database = float(round(26.0 + 0.95 * (pinned - 1.0) + 2.0 * progress))
            clients = float(round(140.0 + 160.0 * progress))
            # Borrowing slows down sharply once the pool is nearly gone.
            latency_us = 800.0 + 2_500_000.0 * max(0.0, progress - 0.7) ** 2
        return {
            CLIENT_CONNECTIONS: clients,
            DATABASE_CONNECTIONS: database,
            PINNED: pinned,
            IN_TRANSACTION: 4.0,
            BORROWED: float(round(0.5 * database + 0.5 * pinned)),
            MAX_ALLOWED: POOL_LIMIT,
            BORROW_LATENCY: round(latency_us, 1),
        }

    # ------------------------------------------------------------------ log lines

    def _build(self, minute: int) -> IncidentMinute:
        rnd = random.Random(self._seed * 1_000 + minute)
        start = self.start_ms + minute * MINUTE_MS
        metrics = self.metrics(minute)
        bodies: list[tuple[str, Kind, str | None]] = []

        def pin(reason_text: str, code: str) -> None:
            bodies.append(
                ("WARN " + _PIN.format(db=rnd.randrange(10**8, 10**10), reason=reason_text), Kind.PINNED, code)
            )

        incident = self.onset <= minute < self.fix
        if incident:
            # New pinned sessions, plus sessions that ended and were replaced by new pinned ones.
            arrivals = max(0, int(self.pinned(minute) - self.pinned(minute - 1))) + round(0.15 * self.pinned(minute))
            for _ in range(max(1, arrivals)):
                pin(_PRISMA_SET, SESSION_SETTINGS)
        if minute % 2 == 0:
            pin(_PARSE, PREPARED_STATEMENT)
        if minute % 5 == 2:
            pin(_LARGE, LARGE_STATEMENT)
        if incident and minute % 3 == 0:
            line = _WOULD_PIN.format(db=rnd.randrange(10**8, 10**10), reason=_WOULD_PIN_REASON)
            bodies.append(("INFO " + line, Kind.WOULD_PIN, PREPARED_STATEMENT))

        previous_clients = self.metrics(minute - 1)[CLIENT_CONNECTIONS] if minute else metrics[CLIENT_CONNECTIONS]
        connects = min(8, max(1, int(metrics[CLIENT_CONNECTIONS] - previous_clients) + 1))
        for _ in range(connects):
            address = f"10.0.{rnd.randrange(10, 14)}.{rnd.randrange(2, 250)}:{rnd.randrange(32768, 61000)}"
            bodies.append((f"INFO A new client connected from {address}.", Kind.OTHER, None))
        bodies.append(
            (
                "INFO The client connection closed. Reason: The TCP channel was closed by either the client or the proxy.",
                Kind.OTHER,
                None,
            )
        )
        bodies.append(
            (
                f"INFO A TCP connection was established from the proxy at 10.0.11.{rnd.randrange(2, 250)}:"
                f"{rnd.randrange(32768, 61000)} to the database at 10.0.10.246:5432.",
                Kind.OTHER,
                None,
            )
        )
        bodies.append(
            ("INFO The database connection was released to the connection pool upon session reset.", Kind.OTHER, None)
        )

        offsets = sorted(rnd.randrange(0, MINUTE_MS) for _ in bodies)
        rnd.shuffle(bodies)
        lines = [
            self._line(rnd, minute, index, start + offset, body, kind, code)
            for index, (offset, (body, kind, code)) in enumerate(zip(offsets, bodies, strict=True))
        ]
        if minute == self.onset + 2:
            # A line cut short in transit: not a proxy line the parser can read, so it is counted and sampled.
            cut = start + MINUTE_MS - 1
            lines.append(LogLine(_event_id(cut, minute, 999), cut, self.streams[0], f"{_iso(cut)} [WA", Kind.UNPARSED))
        return IncidentMinute(minute, start, metrics, tuple(lines), self._note(minute))

    def _line(
        self, rnd: random.Random, minute: int, index: int, ts: int, body: str, kind: Kind, code: str | None
    ) -> LogLine:
        level, text = body.split(" ", 1)
        if kind is Kind.OTHER and text.startswith("The database connection was released"):
            tags = f"[dbConnection={rnd.randrange(10**8, 10**10)}]"
        else:
            endpoint = "[proxyEndpoint=default] " if rnd.random() < 0.8 else ""
            tags = f"{endpoint}[clientConnection={rnd.randrange(10**7, 10**10)}]"
        message = f"{_iso(ts)} [{level}] {tags} {text}"
        stream = self.streams[rnd.randrange(self.instances)]
        return LogLine(_event_id(ts, minute, index), ts, stream, message, kind, code)

    def _note(self, minute: int) -> str | None:
        if minute == self.onset:
            return "release rolls out: every new session runs Prisma's `set search_path …; set names …`, which pins it"
        if minute == self.fix:
            return "fix lands: the SETs move to the proxy's initialization query; pinned sessions drain"
        return None


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event_id(ts_ms: int, minute: int, index: int) -> str:
    """CloudWatch Logs event ids are 56-digit strings; time first, so they sort like the events."""
    return f"{ts_ms:020d}{minute:018d}{index:018d}"
