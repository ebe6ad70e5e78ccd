"""Fold the parsed lines of one batch into one aggregate per distinct summary-table key.

Pure: no I/O. The summary table is written once per *key* per batch, never once per line, so a
batch of 30 000 pin lines about three reasons in one hour becomes three hourly aggregates (plus
their running totals and the proxy's last-seen time).

Keys are (proxy, UTC hour bucket, kind, reason) for pins and would-pins and (proxy, hour) for
unparsed lines. Each aggregate keeps its count, the first and last event time, and bounded samples:
statement digests are cut to :data:`DIGEST_MAX_CHARS`, reason texts to :data:`REASON_TEXT_MAX_CHARS`
and unparsed lines to :data:`SAMPLE_MAX_CHARS`, so one noisy line can never bloat an item.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter

from pinwatch.records import Kind, LogRecord
from pinwatch.timebase import HOUR_MS, hour_bucket

DIGEST_MAX_CHARS = 512
"""Longest statement digest kept (statements over 16 KB pin by themselves; their text is not the point)."""
REASON_TEXT_MAX_CHARS = 512
"""Longest verbatim reason text kept."""
SAMPLE_MAX_CHARS = 512
"""Longest unparsed line kept as a sample."""
DIGESTS_PER_KEY = 3
"""Distinct digests remembered per key and batch (the running total keeps the latest batch's)."""
# Candidates kept while folding, bounded for batches where every line has a new statement: when
# this many are held, all but the DIGESTS_PER_KEY best ranked are dropped at once (one sort per
# that many new digests instead of a scan per line). A dropped digest has DIGESTS_PER_KEY others
# ranked above it whose times only grow, so it can never be among the final ones: the result is
# that of remembering every digest (a tested property).
_DIGESTS_TRACKED = 32

ReasonGroup = tuple[str, int, int, int, str | None, str | None]
"""(reason, count, first_ms, last_ms, reason_text, digest): lines of one reason in one UTC hour."""

# Rank of a (digest, latest ms) item.
_TIME_THEN_DIGEST = itemgetter(1, 0)


def _cut_digest(digest: str) -> str:
    return digest[: DIGEST_MAX_CHARS - 1] + "…"


def _cut_reason(text: str) -> str:
    return text[: REASON_TEXT_MAX_CHARS - 1] + "…"


def truncate(text: str | None, limit: int) -> str | None:
    """Cut `text` to at most `limit` characters, marking the cut with an ellipsis."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


@dataclass(slots=True)
class ReasonAggregate:
    """Pins (or would-pins) of one reason on one proxy in one UTC hour, within one batch."""

    proxy: str
    hour: str
    kind: Kind
    reason: str
    count: int
    first_ms: int
    last_ms: int
    reason_text: str | None = None  # the latest verbatim reason text (truncated)
    # Samples are chosen by (time, text) rank, never by arrival order, so the result does not depend
    # on how a batch is walked: ingest's memoised fold and line-by-line adding agree exactly.
    _text_rank: tuple[int, str] | None = None
    _digest_ms: dict[str, int] = field(default_factory=dict)  # truncated digest -> latest time seen
    # A time at most that of the DIGESTS_PER_KEY-th latest digest held: a digest seen before it can
    # never be among the kept ones, so it is passed over without being hashed or stored.
    _digest_floor_ms: int = -1

    @property
    def digests(self) -> list[str]:
        """The DIGESTS_PER_KEY most recently seen distinct digests (truncated), latest last."""
        ranked = sorted(self._digest_ms.items(), key=_TIME_THEN_DIGEST)
        return [digest for digest, _ in ranked[-DIGESTS_PER_KEY:]]

    @property
    def digest(self) -> str | None:
        """The latest digest of the batch (truncated), if the lines carried one."""
        digests = self.digests
        return digests[-1] if digests else None


@dataclass(slots=True)
class UnparsedAggregate:
    """Unreadable lines from one proxy's log group in one UTC hour, within one batch."""

    proxy: str
    hour: str
    count: int
    first_ms: int
    last_ms: int
    sample: str  # the first such line (truncated)


@dataclass(slots=True)
class ProxyActivity:
    """Every line of one proxy in the batch, whatever its kind: feeds the proxies-seen item."""

    proxy: str
    lines: int
    first_ms: int
    last_ms: int
    log_group: str | None = None


class Tally:
    """Accumulates records; read the aggregates back sorted by key (deterministic order)."""

    __slots__ = ("_hours", "_proxies", "_reasons", "_unparsed", "other_lines")

    def __init__(self) -> None:
        self._reasons: dict[tuple[str, str, Kind, str], ReasonAggregate] = {}
        self._unparsed: dict[tuple[str, str], UnparsedAggregate] = {}
        self._proxies: dict[str, ProxyActivity] = {}
        self._hours: dict[int, str] = {}  # hour index -> bucket; formatting a datetime per line is the slow part
        self.other_lines = 0

    def add(self, proxy: str, record: LogRecord, fallback_ms: int | None = None, log_group: str | None = None) -> None:
        """Count one record. Its own timestamp wins; `fallback_ms` (the CloudWatch event time) fills a gap."""
        ts = record.timestamp_ms if record.timestamp_ms is not None else fallback_ms
        if ts is None:
            raise ValueError("a record without a timestamp needs fallback_ms (the CloudWatch event timestamp)")
        self.seen(proxy, ts, ts, 1, log_group)
        kind = record.kind
        if kind is Kind.OTHER:
            self.other_lines += 1
        elif kind is Kind.UNPARSED:
            self.add_unparsed(proxy, ts, record.raw)
        else:
            self.add_reason(proxy, kind, record.reason or "unknown", ts, record.reason_text, record.digest)

    def seen(self, proxy: str, first_ms: int, last_ms: int, lines: int = 1, log_group: str | None = None) -> None:
        """Record that `lines` lines of `proxy` (any kind) arrived with times in [first_ms, last_ms]."""
        activity = self._proxies.get(proxy)
        if activity is None:
            self._proxies[proxy] = ProxyActivity(proxy, lines, first_ms, last_ms, log_group)
            return
        activity.lines += lines
        if first_ms < activity.first_ms:
            activity.first_ms = first_ms
        if last_ms > activity.last_ms:
            activity.last_ms = last_ms
        if log_group and not activity.log_group:
            activity.log_group = log_group

    def _hour(self, ts: int) -> str:
        hour_index = ts // HOUR_MS
        hour = self._hours.get(hour_index)
        if hour is None:
            hour = self._hours[hour_index] = hour_bucket(hour_index * HOUR_MS)
        return hour

    def add_reason(
        self, proxy: str, kind: Kind, reason: str, ts: int, reason_text: str | None, digest: str | None
    ) -> None:
        """Count one pin or would-pin line.

        Does not record proxy activity; callers that bypass :meth:`add` call :meth:`seen` once per batch.
        """
        self.add_reasons(proxy, kind, reason, 1, ts, ts, reason_text, digest)

    def add_reasons(
        self,
        proxy: str,
        kind: Kind,
        reason: str,
        count: int,
        first_ms: int,
        last_ms: int,
        reason_text: str | None,
        digest: str | None,
    ) -> None:
        """Count `count` lines of one reason within one UTC hour (`first_ms` and `last_ms` in the same hour).

        The reason text kept is the one with the latest time (ties: the greatest text); digests are
        ranked by the latest time each was seen. Both are independent of call order.
        """
        self.add_groups(proxy, kind, ((reason, count, first_ms, last_ms, reason_text, digest),))

    def add_groups(self, proxy: str, kind: Kind, groups: Iterable[ReasonGroup]) -> None:
        """:meth:`add_reasons` for many ``(reason, count, first_ms, last_ms, reason_text, digest)`` groups.

        The ingest fold's path: one call per batch and kind rather than one per distinct statement.
        """
        hours = self._hours
        reasons = self._reasons
        for reason, count, first_ms, last_ms, reason_text, digest in groups:
            hour = hours.get(first_ms // HOUR_MS) or self._hour(first_ms)
            key = (proxy, hour, kind, reason)
            agg = reasons.get(key)
            if agg is None:
                agg = reasons[key] = ReasonAggregate(proxy, hour, kind, reason, 0, first_ms, last_ms)
            agg.count += count
            if first_ms < agg.first_ms:
                agg.first_ms = first_ms
            if last_ms > agg.last_ms:
                agg.last_ms = last_ms
            if reason_text is not None:
                rank = agg._text_rank
                # The (time, text) rank, compared without building a tuple when the time alone decides.
                if rank is None or last_ms > rank[0] or (last_ms == rank[0] and reason_text > rank[1]):
                    agg._text_rank = (last_ms, reason_text)
                    agg.reason_text = (
                        reason_text if len(reason_text) <= REASON_TEXT_MAX_CHARS else _cut_reason(reason_text)
                    )
            if digest is not None and last_ms >= agg._digest_floor_ms:
                if len(digest) > DIGEST_MAX_CHARS:
                    digest = _cut_digest(digest)
                seen = agg._digest_ms
                if seen.get(digest, -1) < last_ms:
                    seen[digest] = last_ms
                    held = len(seen)
                    if held == DIGESTS_PER_KEY:
                        agg._digest_floor_ms = min(seen.values())
                    elif held >= _DIGESTS_TRACKED:
                        # Keep the best ranked: the latest few survive, whatever order lines come in.
                        kept = sorted(seen.items(), key=_TIME_THEN_DIGEST)[-DIGESTS_PER_KEY:]
                        agg._digest_ms = dict(kept)
                        agg._digest_floor_ms = kept[0][1]

    def add_unparsed(self, proxy: str, ts: int, raw: str) -> None:
        """Count one unreadable line; the first of each (proxy, hour) is kept as the sample."""
        hour = self._hour(ts)
        agg = self._unparsed.get((proxy, hour))
        if agg is None:
            sample = truncate(raw, SAMPLE_MAX_CHARS) or ""
            self._unparsed[(proxy, hour)] = UnparsedAggregate(proxy, hour, 1, ts, ts, sample)
            return
        agg.count += 1
        if ts < agg.first_ms:
            agg.first_ms = ts
        if ts > agg.last_ms:
            agg.last_ms = ts

    @property
    def reasons(self) -> list[ReasonAggregate]:
        """Pin and would-pin aggregates sorted by (proxy, hour, kind, reason)."""
        return [self._reasons[key] for key in sorted(self._reasons)]

    @property
    def unparsed(self) -> list[UnparsedAggregate]:
        return [self._unparsed[key] for key in sorted(self._unparsed)]

    @property
    def proxies(self) -> list[ProxyActivity]:
        return [self._proxies[key] for key in sorted(self._proxies)]

    @property
    def lines(self) -> int:
        return sum(p.lines for p in self._proxies.values())

    def count(self, kind: Kind) -> int:
        """Lines of one kind in the batch."""
        if kind is Kind.OTHER:
            return self.other_lines
        if kind is Kind.UNPARSED:
            return sum(a.count for a in self._unparsed.values())
        return sum(a.count for a in self._reasons.values() if a.kind is kind)

    def is_empty(self) -> bool:
        return not self._proxies
