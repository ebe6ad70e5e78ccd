"""Fold parsed log records into a ranking of pinning reasons (pure; used by analyze and backfill).

An :class:`Analysis` is incremental and bounded: it keeps counts, first/last timestamps and a
capped number of distinct example digests per reason, never the records themselves, so it can
summarise a multi-gigabyte export in constant memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pinwatch.catalog import entry
from pinwatch.digest import guess_engine_from
from pinwatch.hints import top_hint
from pinwatch.records import EngineFamily, Kind, LogRecord, PoolConfig

# Bounds that keep memory flat whatever the input: distinct examples remembered per reason,
# characters kept of each example, unparsed lines sampled.
MAX_DISTINCT_EXAMPLES = 64
EXAMPLE_CHARS = 1000
SAMPLE_CHARS = 200


@dataclass(frozen=True, slots=True)
class ReasonSummary:
    """One reason's numbers. `share` is the fraction (0..1) of all pins (or would-pins) it accounts for."""

    reason: str
    title: str
    count: int
    share: float
    engines: tuple[str, ...]
    first_seen_ms: int | None
    last_seen_ms: int | None
    example_digest: str | None
    example_reason_text: str | None
    top_hint: str | None
    proxies: tuple[str, ...] = ()
    top_digests: tuple[tuple[str, int], ...] = ()  # most frequent digests with their counts
    distinct_digests: int = 0  # capped at MAX_DISTINCT_EXAMPLES

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "title": self.title,
            "count": self.count,
            "share": round(self.share, 4),
            "engines": list(self.engines),
            "first_seen_ms": self.first_seen_ms,
            "last_seen_ms": self.last_seen_ms,
            "example_digest": self.example_digest,
            "example_reason_text": self.example_reason_text,
            "top_hint": self.top_hint,
            "proxies": list(self.proxies),
            "top_digests": [{"digest": d, "count": c} for d, c in self.top_digests],
            "distinct_digests": self.distinct_digests,
        }


@dataclass(frozen=True, slots=True)
class UnparsedSample:
    text: str  # truncated to SAMPLE_CHARS
    line: int | None = None
    source: str | None = None


@dataclass
class _Tally:
    count: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    digests: Counter[str] = field(default_factory=Counter)
    texts: Counter[str] = field(default_factory=Counter)
    engines: Counter[EngineFamily] = field(default_factory=Counter)
    proxies: Counter[str] = field(default_factory=Counter)

    def add(self, record: LogRecord, proxy: str | None) -> None:
        self.count += 1
        ts = record.timestamp_ms
        if ts is not None:
            self.first_ms = ts if self.first_ms is None else min(self.first_ms, ts)
            self.last_ms = ts if self.last_ms is None else max(self.last_ms, ts)
        if record.digest:
            _bounded_add(self.digests, record.digest[:EXAMPLE_CHARS])
        if record.reason_text:
            _bounded_add(self.texts, record.reason_text[:EXAMPLE_CHARS])
        engine = guess_engine_from(record.reason_text, record.digest)
        if engine is not None:
            self.engines[engine] += 1
        if proxy:
            _bounded_add(self.proxies, proxy)

    def merge(self, other: _Tally) -> None:
        self.count += other.count
        for ts in (other.first_ms, other.last_ms):
            if ts is not None:
                self.first_ms = ts if self.first_ms is None else min(self.first_ms, ts)
                self.last_ms = ts if self.last_ms is None else max(self.last_ms, ts)
        for mine, theirs in (
            (self.digests, other.digests),
            (self.texts, other.texts),
            (self.proxies, other.proxies),
        ):
            for key, n in theirs.items():
                _bounded_add(mine, key, n)
        self.engines.update(other.engines)

    def state(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first_ms": self.first_ms,
            "last_ms": self.last_ms,
            "digests": list(self.digests.items()),
            "texts": list(self.texts.items()),
            "engines": [(e.value, n) for e, n in self.engines.items()],
            "proxies": list(self.proxies.items()),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Tally:
        return cls(
            count=int(state["count"]),
            first_ms=state.get("first_ms"),
            last_ms=state.get("last_ms"),
            digests=Counter(dict(state.get("digests", []))),
            texts=Counter(dict(state.get("texts", []))),
            engines=Counter({EngineFamily(e): n for e, n in state.get("engines", [])}),
            proxies=Counter(dict(state.get("proxies", []))),
        )


def _bounded_add(counter: Counter[str], key: str, n: int = 1) -> None:
    if key in counter or len(counter) < MAX_DISTINCT_EXAMPLES:
        counter[key] += n


class Analysis:
    """Incremental summary of parsed proxy log records.

    `engine` (when the caller knows the proxy's engine family), `pool` and `drivers` only shape
    the hints. Without `engine`, each reason's engine is guessed from its digests' spelling,
    falling back to the one engine seen across all records, if there is exactly one.
    """

    def __init__(
        self,
        engine: EngineFamily | None = None,
        pool: PoolConfig | None = None,
        drivers: Sequence[str] = (),
        sample_limit: int = 5,
    ) -> None:
        self.engine = engine
        self.pool = pool
        self.drivers = tuple(drivers)
        self.sample_limit = sample_limit
        self.totals: Counter[Kind] = Counter(dict.fromkeys(Kind, 0))
        self.first_seen_ms: int | None = None
        self.last_seen_ms: int | None = None
        self.unparsed_samples: list[UnparsedSample] = []
        self._pins: dict[str, _Tally] = {}
        self._would: dict[str, _Tally] = {}

    def add(
        self, record: LogRecord, proxy: str | None = None, *, line: int | None = None, source: str | None = None
    ) -> None:
        """Count one record; `line`/`source` only label unparsed samples."""
        kind = record.kind
        self.totals[kind] += 1
        ts = record.timestamp_ms
        if ts is not None:
            self.first_seen_ms = ts if self.first_seen_ms is None else min(self.first_seen_ms, ts)
            self.last_seen_ms = ts if self.last_seen_ms is None else max(self.last_seen_ms, ts)
        if kind is Kind.PINNED or kind is Kind.WOULD_PIN:
            tallies = self._pins if kind is Kind.PINNED else self._would
            reason = record.reason or "unknown"
            tally = tallies.get(reason)
            if tally is None:
                tally = tallies[reason] = _Tally()
            tally.add(record, proxy)
        elif kind is Kind.UNPARSED and len(self.unparsed_samples) < self.sample_limit:
            self.unparsed_samples.append(UnparsedSample(record.raw[:SAMPLE_CHARS], line, source))

    def merge(self, other: Analysis) -> None:
        """Fold another analysis in (e.g. one per log stream or per page of a backfill)."""
        self.totals.update(other.totals)
        for ts in (other.first_seen_ms, other.last_seen_ms):
            if ts is not None:
                self.first_seen_ms = ts if self.first_seen_ms is None else min(self.first_seen_ms, ts)
                self.last_seen_ms = ts if self.last_seen_ms is None else max(self.last_seen_ms, ts)
        room = self.sample_limit - len(self.unparsed_samples)
        self.unparsed_samples.extend(other.unparsed_samples[: max(0, room)])
        for mine, theirs in ((self._pins, other._pins), (self._would, other._would)):
            for reason, tally in theirs.items():
                mine.setdefault(reason, _Tally()).merge(tally)

    @property
    def lines(self) -> int:
        return sum(self.totals.values())

    @property
    def pin_count(self) -> int:
        return self.totals[Kind.PINNED]

    @property
    def would_pin_count(self) -> int:
        return self.totals[Kind.WOULD_PIN]

    @property
    def unparsed_count(self) -> int:
        return self.totals[Kind.UNPARSED]

    def pins(self, top: int | None = None) -> list[ReasonSummary]:
        """Per-reason summaries of pins, most frequent first (ties by reason code)."""
        return self._summaries(self._pins, self.pin_count, top)

    def would_pins(self, top: int | None = None) -> list[ReasonSummary]:
        """Per-reason summaries of would-pin warnings, apart from pins."""
        return self._summaries(self._would, self.would_pin_count, top)

    def engines_seen(self) -> set[EngineFamily]:
        found: set[EngineFamily] = set()
        for tallies in (self._pins, self._would):
            for tally in tallies.values():
                found.update(tally.engines)
        return found

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "lines": self.lines,
            "totals": {kind.value: self.totals[kind] for kind in Kind},
            "first_seen_ms": self.first_seen_ms,
            "last_seen_ms": self.last_seen_ms,
            "engine": self.engine.value if self.engine else None,
            "pins": [s.to_dict() for s in self.pins(top)],
            "would_pins": [s.to_dict() for s in self.would_pins(top)],
            "unparsed": {
                "count": self.unparsed_count,
                "samples": [{"line": s.line, "source": s.source, "text": s.text} for s in self.unparsed_samples],
            },
        }

    def to_state(self) -> dict[str, Any]:
        """Everything counted so far as plain JSON data (bounded like the analysis itself), for :meth:`from_state`.

        Lets a long-running reader (``pinwatch backfill --checkpoint``) stop and resume without re-reading.
        The hint settings (`engine`, `pool`, `drivers`) are not part of it.
        """
        return {
            "totals": {kind.value: n for kind, n in self.totals.items()},
            "first_seen_ms": self.first_seen_ms,
            "last_seen_ms": self.last_seen_ms,
            "unparsed_samples": [[s.text, s.line, s.source] for s in self.unparsed_samples],
            "pins": {reason: tally.state() for reason, tally in self._pins.items()},
            "would_pins": {reason: tally.state() for reason, tally in self._would.items()},
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        engine: EngineFamily | None = None,
        pool: PoolConfig | None = None,
        drivers: Sequence[str] = (),
        sample_limit: int = 5,
    ) -> Analysis:
        """An analysis that continues from :meth:`to_state`'s output."""
        analysis = cls(engine, pool, drivers, sample_limit)
        analysis.totals.update({Kind(kind): int(n) for kind, n in state.get("totals", {}).items()})
        analysis.first_seen_ms = state.get("first_seen_ms")
        analysis.last_seen_ms = state.get("last_seen_ms")
        analysis.unparsed_samples = [
            UnparsedSample(text, line, source) for text, line, source in state.get("unparsed_samples", [])
        ][:sample_limit]
        analysis._pins = {reason: _Tally.from_state(t) for reason, t in state.get("pins", {}).items()}
        analysis._would = {reason: _Tally.from_state(t) for reason, t in state.get("would_pins", {}).items()}
        return analysis

    def _summaries(self, tallies: dict[str, _Tally], total: int, top: int | None) -> list[ReasonSummary]:
        ranked = sorted(tallies.items(), key=lambda item: (-item[1].count, item[0]))
        if top is not None:
            ranked = ranked[:top]
        seen = self.engines_seen()
        fallback = next(iter(seen)) if len(seen) == 1 else None
        return [self._summary(reason, tally, total, fallback) for reason, tally in ranked]

    def _summary(self, reason: str, tally: _Tally, total: int, fallback: EngineFamily | None) -> ReasonSummary:
        item = entry(reason)
        if self.engine is not None:
            engines: list[EngineFamily] = [self.engine]
        elif tally.engines:
            engines = [e for e, _ in tally.engines.most_common()]
        elif fallback is not None:
            engines = [fallback]
        else:
            engines = []
        hint_engine = engines[0] if len(engines) == 1 else None
        example_digest = tally.digests.most_common(1)[0][0] if tally.digests else None
        return ReasonSummary(
            reason=reason,
            title=item.title,
            count=tally.count,
            share=tally.count / total if total else 0.0,
            engines=tuple(e.value for e in engines),
            first_seen_ms=tally.first_ms,
            last_seen_ms=tally.last_ms,
            example_digest=example_digest,
            example_reason_text=tally.texts.most_common(1)[0][0] if tally.texts else None,
            top_hint=top_hint(reason, hint_engine, example_digest, self.pool, self.drivers),
            proxies=tuple(p for p, _ in tally.proxies.most_common()),
            top_digests=tuple(tally.digests.most_common(3)),
            distinct_digests=len(tally.digests),
        )
