"""Backfill: count the pins in a proxy's CloudWatch Logs history, and optionally add them to the table.

The proxy's log group ``/aws/rds/proxy/<name>`` is read with ``FilterLogEvents`` one hour slice at
a time, page by page (``nextToken``), with the same filter pattern the stack subscribes with. The
pattern only saves transfer: every event is parsed again here and only pin and would-pin lines are
kept, because an emulator may ignore the pattern and the service's matching is not ours to trust.
The lines feed an :class:`~pinwatch.analysis.Analysis` (what ``pinwatch analyze`` prints) and,
when a store is given, the ingest's exactly-once path: one :meth:`SummaryStore.apply_batch` per
page, under a batch id derived from the page's event ids.

Exactness. Re-running a backfill over the same hours replays the same pages (same query, same
past events, same page size), so every page gets the same batch id and is skipped as already
applied. That is why a writing backfill works on *whole, settled UTC hours*: a window that started
mid-hour, or ended at "now" while events still arrive, would page differently on the next run.

Backfill and live ingest never count the same hour. Lines the ingest function already counted
arrived in other batches and would count again under the backfill's batch ids, so the two writers
own disjoint sets of whole UTC hours:

* Ingest first, then backfill: the table knows when live counting of the proxy began
  (:meth:`SummaryStore.live_start_ms`). :func:`guard` stops a writing backfill at the start of
  the UTC hour that holds the ingest's first counted line; that hour and every later one belong to
  the ingest. The part of that hour before the first live line was delivered to neither writer and
  is reported, not written: a line missing is visible and bounded, a line counted twice is not.
* Backfill first, then deploy: a backfill only writes hours that ended at least :data:`SETTLE_MS`
  before it ran, and a subscription filter only forwards events ingested after it was created, so
  every line the ingest later receives falls in a later hour than the backfill wrote.

Resuming. After every page, a checkpoint file (when given) records the window, the hour slice in
progress, that page's ``nextToken`` and everything counted so far, written atomically. A run that
finds it continues after the last completed page. FilterLogEvents tokens expire after 24 hours;
an expired one fails the run with a message (a fresh run re-reads, and skips the pages written).

Organization mode. A member account's proxy is counted under its key ``<account>:<region>:<name>``
(:mod:`pinwatch.scope`), as the stream ingest counts it: a backfill given the member's scope writes
that key, reads the live start from that key's proxies item, and makes batch ids over the account
and Region too, so two members' proxies of the same name (same log group name, possibly the same
stream names) never share markers. The log group is read with the member's own credentials.

The CloudWatch Logs client is injected; throttling is retried by botocore (see :data:`LOGS_RETRIES`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pinwatch.analysis import Analysis
from pinwatch.ingest import PROXY_LOG_GROUP_PREFIX
from pinwatch.parse import PIN_PHRASE, WOULD_PIN_PHRASE, parse_message
from pinwatch.records import EngineFamily, Kind
from pinwatch.scope import Scope, proxy_key
from pinwatch.tally import Tally
from pinwatch.timebase import HOUR_MS

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

    from pinwatch.store.summary import ApplyResult

# The stack's subscription filter pattern (template.yaml, Mappings.Pins.Filter): either phrase, quoted.
FILTER_PATTERN = f'?"{PIN_PHRASE}" ?"{WOULD_PIN_PHRASE}"'
MAX_PAGE_SIZE = 10_000  # FilterLogEvents' limit
SETTLE_MS = 5 * 60_000  # events may reach CloudWatch Logs a little after their timestamp
CHECKPOINT_VERSION = 1
# FilterLogEvents has a low per-account rate; a long scan should slow down and retry rather than fail.
LOGS_RETRIES: Mapping[str, Any] = {"mode": "adaptive", "max_attempts": 10}

_KEPT = (Kind.PINNED, Kind.WOULD_PIN)


class BackfillError(Exception):
    """A backfill cannot run as asked; the message says why and what to do."""


class LogGroupNotFound(BackfillError):
    def __init__(self, log_group: str) -> None:
        self.log_group = log_group
        super().__init__(f"log group {log_group} not found")


class PageTokenRejected(BackfillError):
    """CloudWatch Logs refused a ``nextToken`` (they expire after 24 hours)."""


class LiveHoursOnly(BackfillError):
    """The whole window lies in hours the live ingest owns: a writing backfill has nothing to add."""


class BackfillStore(Protocol):
    """Where a writing backfill's pages go (:class:`pinwatch.store.summary.SummaryStore`, or a fake)."""

    def apply_batch(self, batch_id: str, tally: Tally, now_ms: int, *, backfill_until_ms: int) -> ApplyResult: ...


def log_group_for(proxy: str) -> str:
    return f"{PROXY_LOG_GROUP_PREFIX}{proxy}"


# ------------------------------------------------------------------------------------ reading


@dataclass(frozen=True, slots=True)
class LogPage:
    events: list[Mapping[str, Any]]
    next_token: str | None


class LogPages:
    """``FilterLogEvents`` one page at a time (the adapter; the client is injected)."""

    def __init__(
        self, client: CloudWatchLogsClient, *, page_size: int = MAX_PAGE_SIZE, filter_pattern: str = FILTER_PATTERN
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        self._client = client
        self._page_size = page_size
        self._pattern = filter_pattern

    def page(self, log_group: str, start_ms: int, end_ms: int, token: str | None) -> LogPage:
        """Events with timestamps in [start_ms, end_ms) (FilterLogEvents' endTime is inclusive)."""
        kwargs: dict[str, Any] = {
            "logGroupName": log_group,
            "startTime": start_ms,
            "endTime": end_ms - 1,
            "filterPattern": self._pattern,
            "limit": self._page_size,
        }
        if token:
            kwargs["nextToken"] = token
        try:
            response = self._client.filter_log_events(**kwargs)
        except self._client.exceptions.ResourceNotFoundException:
            raise LogGroupNotFound(log_group) from None
        except self._client.exceptions.InvalidParameterException as exc:
            if not token:
                raise
            raise PageTokenRejected(f"CloudWatch Logs refused the page token: {exc}") from None
        events: list[Mapping[str, Any]] = list(response.get("events", []))
        return LogPage(events, response.get("nextToken") or None)


# ------------------------------------------------------------------------------------ windows


@dataclass(frozen=True, slots=True)
class Span:
    """[since_ms, until_ms): the backfill's window, or one hour slice of it."""

    since_ms: int
    until_ms: int

    def __post_init__(self) -> None:
        if self.until_ms <= self.since_ms:
            raise BackfillError("the window is empty: --until must be after --since")

    def slices(self) -> list[Span]:
        """The window cut at UTC hour boundaries, oldest first."""
        out = []
        start = self.since_ms
        while start < self.until_ms:
            end = min(self.until_ms, (start // HOUR_MS + 1) * HOUR_MS)
            out.append(Span(start, end))
            start = end
        return out


def whole_hours(since_ms: int, until_ms: int, now_ms: int) -> Span:
    """The window a writing backfill covers: from the hour `since` falls in to the last settled hour before `until`."""
    since = since_ms - since_ms % HOUR_MS
    last = min(until_ms, now_ms - SETTLE_MS)
    until = last - last % HOUR_MS
    if until <= since:
        raise BackfillError(
            "no complete UTC hour in the window: a writing backfill covers whole hours that have ended "
            "(so a rerun reads the same pages and counts nothing twice); widen --since/--until"
        )
    return Span(since, until)


@dataclass(frozen=True, slots=True)
class Guarded:
    """A writing backfill's window after the live-start guard.

    `window` is what the backfill writes. When the live ingest began counting inside the requested
    window, `live` holds the hours left to it ([start of the hour of its first line, requested end))
    and `unseen` the part of that first hour before its first line, which neither writer counts.
    """

    window: Span
    live_start_ms: int | None = None
    live: Span | None = None
    unseen: Span | None = None


def guard(window: Span, live_start_ms: int | None) -> Guarded:
    """Stop `window` where live counting began, so that no UTC hour is counted by both writers.

    The hour holding the ingest's first counted line belongs to the ingest: the ingest keeps every
    line of it that it receives (lines delivered late or out of order included), and the backfill
    writes only the hours before it. Raises :class:`LiveHoursOnly` for a window entirely in live hours.
    """
    if live_start_ms is None:
        return Guarded(window)
    boundary = live_start_ms - live_start_ms % HOUR_MS
    if boundary >= window.until_ms:
        return Guarded(window, live_start_ms)
    unseen = Span(boundary, live_start_ms) if window.since_ms <= boundary < live_start_ms else None
    if boundary <= window.since_ms:
        raise LiveHoursOnly(
            f"live counting began at {_minute(live_start_ms)} UTC (the ingest's first counted line), so the hours "
            f"from {_minute(boundary)} on belong to the ingest function, and the window "
            f"{_minute(window.since_ms)} → {_minute(window.until_ms)} lies entirely after that: nothing to backfill "
            "(writing it would count those lines twice; --ignore-live-start overrides this for hours the ingest "
            "never received)"
        )
    return Guarded(Span(window.since_ms, boundary), live_start_ms, Span(boundary, window.until_ms), unseen)


def _minute(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms // 1000))


# ------------------------------------------------------------------------------------ checkpoint


@dataclass
class Checkpoint:
    """Where an interrupted backfill stands: the next page to read and what was counted before it."""

    log_group: str
    since_ms: int
    until_ms: int
    table: str | None
    slice_start_ms: int  # the hour slice to continue (== until_ms when done)
    next_token: str | None  # continue that slice here; None = from its start
    pages: int = 0
    events: int = 0
    matched: int = 0
    applied_chunks: int = 0
    duplicate_chunks: int = 0
    writes: int = 0
    analysis: dict[str, Any] = field(default_factory=dict)
    version: int = CHECKPOINT_VERSION
    member: str | None = None  # the member's ``<account>:<region>`` in organization mode (absent: single account)

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise BackfillError(f"cannot read the checkpoint {path}: {exc}; remove it to start over") from None
        if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
            raise BackfillError(f"{path} is not a pinwatch backfill checkpoint (version {CHECKPOINT_VERSION})")
        try:
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except TypeError as exc:
            raise BackfillError(f"the checkpoint {path} is incomplete ({exc}); remove it to start over") from None

    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves the previous checkpoint or this one, never half of one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(asdict(self), fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


# ------------------------------------------------------------------------------------ the backfill


@dataclass(frozen=True, slots=True)
class Progress:
    """After each page: how far the backfill has come."""

    window: Span
    position_ms: int  # events before this time have been read
    pages: int
    events: int
    matched: int


@dataclass(frozen=True, slots=True)
class BackfillResult:
    log_group: str
    window: Span
    analysis: Analysis
    pages: int
    events: int  # events read (what FilterLogEvents returned)
    matched: int  # pin and would-pin lines among them
    applied_chunks: int = 0
    duplicate_chunks: int = 0  # already applied by an earlier run
    writes: int = 0
    resumed_pages: int = 0  # pages read by an earlier, interrupted run (0 = not resumed)

    @property
    def written(self) -> bool:
        return self.applied_chunks + self.duplicate_chunks > 0


def page_batch_id(log_group: str, events: Sequence[Mapping[str, Any]], scope: Scope | None = None) -> str:
    """Deterministic id of a page: its log group and the (stream, event id) of every event, in order-free form.

    A member's page (``scope``) also hashes its account and Region: every member has a log group
    of the same name for a proxy of the same name, and their stream names can be equal too.
    """
    keys = sorted(f"{e.get('logStreamName', '')}/{e.get('eventId', '')}" for e in events)
    head = "backfill\n" if scope is None else f"backfill\n{scope.account}\n{scope.region}\n"
    digest = hashlib.sha256(f"{head}{log_group}\n".encode())
    for key in keys:
        digest.update(key.encode())
        digest.update(b"\n")
    return digest.hexdigest()


class Backfill:
    """Reads one proxy's log history into an analysis and, with a store, into the summary table."""

    def __init__(
        self,
        pages: LogPages,
        proxy: str,
        *,
        store: BackfillStore | None = None,
        table: str | None = None,
        engine: EngineFamily | None = None,
        drivers: Sequence[str] = (),
        checkpoint: Path | None = None,
        clock: Callable[[], float] = time.time,
        on_page: Callable[[Progress], None] | None = None,
        scope: Scope | None = None,
    ) -> None:
        self._pages = pages
        self.proxy = proxy
        self.scope = scope
        self.key = proxy_key(scope, proxy)  # what the lines are counted under in the table
        self.log_group = log_group_for(proxy)
        self._store = store
        self._table = table
        self._engine = engine
        self._drivers = tuple(drivers)
        self._checkpoint_path = checkpoint
        self._clock = clock
        self._on_page = on_page

    def resume_point(self) -> Checkpoint | None:
        """The checkpoint this backfill would continue from, if any (and if it is for this backfill)."""
        if self._checkpoint_path is None:
            return None
        state = Checkpoint.load(self._checkpoint_path)
        if state is None:
            return None
        if state.log_group != self.log_group or state.table != self._table or state.member != self._member:
            what = f"{state.log_group}" + (f" of {state.member}" if state.member else "")
            what += f" into table {state.table}" if state.table else " (no table)"
            raise BackfillError(
                f"the checkpoint {self._checkpoint_path} belongs to another backfill ({what}); "
                "use another --checkpoint file, or remove it to start over"
            )
        return state

    @property
    def _member(self) -> str | None:
        return None if self.scope is None else f"{self.scope.account}:{self.scope.region}"

    def run(self, window: Span) -> BackfillResult:
        """Backfill `window`, or the window of the checkpoint being resumed (which wins)."""
        state = self.resume_point()
        resumed = state.pages if state is not None else 0
        if state is None:
            state = Checkpoint(
                self.log_group,
                window.since_ms,
                window.until_ms,
                self._table,
                window.since_ms,
                None,
                member=self._member,
            )
        window = Span(state.since_ms, state.until_ms)
        analysis = Analysis.from_state(state.analysis, engine=self._engine, drivers=self._drivers)
        for hour in window.slices():
            if hour.until_ms <= state.slice_start_ms:
                continue  # read by the run being resumed
            token = state.next_token if hour.since_ms == state.slice_start_ms else None
            for page in self._read(hour, token, resumed_token=token if resumed else None):
                self._page(page, analysis, state)
                state.slice_start_ms = hour.since_ms if page.next_token else hour.until_ms
                state.next_token = page.next_token
                state.analysis = analysis.to_state()
                if self._checkpoint_path is not None:
                    state.save(self._checkpoint_path)
                if self._on_page is not None:
                    position = hour.until_ms if not page.next_token else _last_time(page.events, hour.since_ms)
                    self._on_page(Progress(window, position, state.pages, state.events, state.matched))
        if self._checkpoint_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._checkpoint_path.unlink()  # done: a later run starts afresh (and skips what was written)
        return BackfillResult(
            self.log_group,
            window,
            analysis,
            state.pages,
            state.events,
            state.matched,
            state.applied_chunks,
            state.duplicate_chunks,
            state.writes,
            resumed,
        )

    def _read(self, hour: Span, token: str | None, resumed_token: str | None = None) -> Iterator[LogPage]:
        while True:
            try:
                page = self._pages.page(self.log_group, hour.since_ms, hour.until_ms, token)
            except PageTokenRejected:
                if token is None or token != resumed_token:
                    raise
                raise BackfillError(
                    f"the page token saved in {self._checkpoint_path} was refused (tokens expire after 24 hours); "
                    "remove the checkpoint and rerun: the pages already written are skipped, not counted twice"
                ) from None
            yield page
            if not page.next_token:
                return
            token = page.next_token

    def _page(self, page: LogPage, analysis: Analysis, state: Checkpoint) -> None:
        tally = Tally()
        matched = 0
        for event in page.events:
            message, ts = event.get("message"), event.get("timestamp")
            if not isinstance(message, str) or not isinstance(ts, int):
                continue
            # Only lines the subscription filter selects: the phrases are the filter pattern.
            if PIN_PHRASE not in message and WOULD_PIN_PHRASE not in message:
                continue
            record = parse_message(message, ts)
            if record.kind not in _KEPT:
                continue
            matched += 1
            analysis.add(record, self.proxy)
            tally.add(self.key, record, log_group=self.log_group)
        if self._store is not None and not tally.is_empty():
            applied = self._store.apply_batch(
                page_batch_id(self.log_group, page.events, self.scope),
                tally,
                int(self._clock() * 1000),
                backfill_until_ms=state.until_ms,
            )
            state.applied_chunks += applied.applied_chunks
            state.duplicate_chunks += applied.duplicate_chunks
            state.writes += applied.writes
        state.pages += 1
        state.events += len(page.events)
        state.matched += matched


def _last_time(events: Sequence[Mapping[str, Any]], default: int) -> int:
    times = [e["timestamp"] for e in events if isinstance(e.get("timestamp"), int)]
    return max(times, default=default)
