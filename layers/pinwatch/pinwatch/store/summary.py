"""The summary table adapter: exactly-once batch writes and the report/check reads.

The DynamoDB client is injected (the handler builds it with botocore's ``standard`` retry mode);
nothing here creates clients or reads the environment. Key design: :mod:`pinwatch.store.keys`.

Exactly once
------------
CloudWatch Logs delivers subscription batches at least once, and a failed invocation is retried
by Lambda (up to 6 h) and by CloudWatch Logs (up to 24 h). :meth:`SummaryStore.apply_batch` turns
one tally into one update per distinct key (hourly count, running total, proxy last seen), sorts
the updates by key and cuts them into chunks of 99. Each chunk is one ``TransactWriteItems`` call
that also puts a marker item ``BATCH#<batch id>`` / ``CHUNK#<i>/<n>`` under the condition
``attribute_not_exists(pk)``. A chunk whose marker exists was applied before: DynamoDB cancels the
whole transaction, nothing in it is counted twice, and the chunk is reported as a duplicate. So the
same delivery applied any number of times, or a crash after k chunks followed by a retry, ends with
exact counts. Markers expire 15 days after they are written: beyond CloudWatch Logs' 24 h and
Lambda's 6 h of retries, and beyond the 14 days a failed batch can wait in the on-failure queue
for a replay.

The batch id (:func:`pinwatch.ingest.batch_id`) is a hash of the log group, the log stream and
the ordered event ids — in organization mode also of the sending account and Region, so equal
group and stream names in two members never share markers — so it identifies a delivery, not the
events in it. What this does not cover:

* The same events re-batched into a *different* delivery would be counted again. CloudWatch Logs
  retries a delivery with the same payload, so this needs an undocumented re-batching; the error
  is bounded by the events the two deliveries share.
* A retry that tallies the same payload into a different set of keys (a parser upgrade deployed
  between the attempt and the retry) chunks differently and may count the overlap again.
* A marker that expired (a replay more than 15 days after the first attempt) is applied again.

The proxies item
----------------
Every proxy has one item in the ``PROXIES`` partition: the list ``pinwatch report`` starts from,
and the live start a backfill stops at. Written on every batch, it would put every invocation for
every proxy on that one partition, and DynamoDB limits a partition to 1,000 write units and 3,000
read units per second (DynamoDB developer guide, "Understanding DynamoDB warm throughput in
different scenarios" and "Best practices for designing and using partition keys effectively"); a
transactional write costs two write units per item ("Capacity management for transactions"), so
that ceiling is 500 batches per second for all proxies together.

So the live ingest writes it only when a reader would see a difference: the first time this store
instance (one Lambda execution environment) applies a batch of the proxy, when its log group
changes, and when last-seen advances by at least :data:`LAST_SEEN_STEP_MS`. An instance skips the
update only after it committed one itself, so the item exists and its ``if_not_exists`` attributes
(``first_seen_ms``, ``live_since_ms``) hold exactly what writing it again would leave;
``last_seen_ms`` trails the newest line by less than the step, and ``updated_ms`` is the time of
the last write. Writes to the partition fall from one per batch to at most one per proxy,
execution environment and step. A busy proxy is then bounded by its own partition only (its
current hour's items, which counting writes on every batch anyway), not by all proxies together.

The first live batch of a proxy in an environment always carries the update, and ``PROXIES`` sorts
before every ``PROXY#`` key, so the update is in the batch's first transaction: ``live_since_ms``
commits with the batch's first counts, never after them. Leaving the update out never changes the
chunking (the plan always holds it; only the transaction omits it), so a retry meets the same
chunks and markers. A backfill writes it with every page: it is rare, and it records its window end.

first/last seen use ``if_not_exists`` / ``SET``: DynamoDB update expressions have no min/max, so
they are as-delivered. Counts are exact; a late, out-of-order delivery can move ``last_seen_ms``
back in time (on hourly items by less than the hour). Reports over a window take min/max over the
hourly items, which bounds that error to one hour.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from pinwatch.records import HourlyCount, Kind, ProxySeen, ReasonCount
from pinwatch.store import keys
from pinwatch.store.transactions import DEFAULT_RETRY, TransientRetry, transact_write
from pinwatch.tally import DIGESTS_PER_KEY, ProxyActivity, ReasonAggregate, Tally, UnparsedAggregate
from pinwatch.timebase import HOUR_MS

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

MAX_TRANSACT_ITEMS: Final = 100  # DynamoDB's limit on actions in one TransactWriteItems call
UPDATES_PER_CHUNK: Final = MAX_TRANSACT_ITEMS - 1  # one slot is the chunk's marker
# CloudWatch Logs retries for up to 24 h and Lambda for up to 6 h; a batch that still failed waits in
# the on-failure queue for up to 14 days, and replaying it from there must stay exact too.
MARKER_TTL_S: Final = 15 * 86_400
DEFAULT_TTL_DAYS: Final = 90
# How far last-seen on the proxies item may trail the newest counted line (see the module docstring):
# a minute keeps "last seen" right at the resolution anyone reads it, and bounds the live ingest to
# about one proxies-item write per proxy, execution environment and minute.
LAST_SEEN_STEP_MS: Final = 60_000

# Attribute names on items (documented in docs/summary-table.md).
A_PROXY, A_HOUR, A_KIND, A_REASON, A_COUNT = "proxy", "hour", "kind", "reason", "count"
A_FIRST, A_LAST, A_DIGEST, A_DIGESTS = "first_seen_ms", "last_seen_ms", "example_digest", "latest_digests"
A_TEXT, A_SAMPLE, A_UPDATED, A_LOG_GROUP = "reason_text", "sample", "updated_ms", "log_group"
# Who wrote what, so a backfill and the live ingest never count the same hour (see docs/backfill.md):
# the ingest marks the hourly items it writes and records on the proxies item when live counting began;
# a backfill records the end of the window it wrote.
A_LIVE, A_LIVE_SINCE, A_BACKFILLED_UNTIL = "live", "live_since_ms", "backfilled_until_ms"

_PART_KIND = {"PIN": Kind.PINNED, "WOULD": Kind.WOULD_PIN, "UNPARSED": Kind.UNPARSED}


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What one :meth:`SummaryStore.apply_batch` call did.

    `applied_counts` and `applied_unparsed` hold only what this call newly counted (nothing for a
    chunk that was a duplicate), so metrics emitted from them are as exact as the table.
    """

    batch_id: str
    chunks: int
    applied_chunks: int
    duplicate_chunks: int
    transactions: int  # TransactWriteItems calls made, including transient-conflict retries
    writes: int  # item writes committed by this call: updates + markers of applied chunks
    applied_counts: Mapping[tuple[str, Kind, str], int] = field(default_factory=dict)
    applied_unparsed: Mapping[str, int] = field(default_factory=dict)
    proxies_item_writes: int = 0  # of `writes`, those to the PROXIES partition (see the module docstring)

    @property
    def redelivered(self) -> bool:
        """At least one chunk had been applied by an earlier delivery of the same batch."""
        return self.duplicate_chunks > 0


@dataclass(frozen=True, slots=True)
class PlannedUpdate:
    """One update of the batch: its key, the transaction action, and what it counts (for metrics)."""

    pk: str
    sk: str
    action: TransactWriteItemTypeDef
    counts: tuple[str, Kind, str, int] | None = None  # (proxy, kind, reason, n) for hourly reason items
    unparsed: tuple[str, int] | None = None  # (proxy, n) for hourly unparsed items
    seen: ProxyActivity | None = None  # the live ingest's proxies item update, which may be left out


@dataclass(frozen=True, slots=True)
class _SeenWritten:
    """What this store last committed to a proxy's proxies item."""

    last_ms: int
    log_group: str | None


class SummaryStore:
    """Reads and writes the summary table through an injected boto3 DynamoDB client."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        ttl_days: int = DEFAULT_TTL_DAYS,
        retry: TransientRetry = DEFAULT_RETRY,
        last_seen_step_ms: int | None = LAST_SEEN_STEP_MS,
    ) -> None:
        """`last_seen_step_ms` None writes the proxies item on every live batch (see the module docstring)."""
        self._client = client
        self._table = table_name
        self._ttl_s = keys.ttl_seconds(ttl_days)
        self._retry = retry
        self._last_seen_step_ms = last_seen_step_ms
        # Per proxy, what this instance committed to its proxies item; lives as long as the execution environment.
        self._seen_written: dict[str, _SeenWritten] = {}

    @property
    def table_name(self) -> str:
        return self._table

    # ------------------------------------------------------------------ writes

    def plan(self, tally: Tally, now_ms: int, *, backfill_until_ms: int | None = None) -> list[PlannedUpdate]:
        """One update per distinct key of `tally`, sorted by (pk, sk): the chunking is deterministic.

        `backfill_until_ms` None: the live ingest writes (hourly items marked live, live start recorded);
        otherwise a backfill whose window ends there writes (no live marks; the window end recorded).
        """
        live = backfill_until_ms is None
        updates: list[PlannedUpdate] = []
        totals: dict[tuple[str, Kind, str], list[ReasonAggregate]] = defaultdict(list)
        for agg in tally.reasons:
            updates.append(self._hourly_update(agg, live))
            totals[(agg.proxy, agg.kind, agg.reason)].append(agg)
        updates.extend(self._total_update(aggs, now_ms) for aggs in totals.values())
        updates.extend(self._unparsed_update(agg, live) for agg in tally.unparsed)
        updates.extend(self._proxy_update(activity, now_ms, backfill_until_ms) for activity in tally.proxies)
        updates.sort(key=lambda u: (u.pk, u.sk))
        return updates

    def apply_batch(
        self, batch_id: str, tally: Tally, now_ms: int, *, backfill_until_ms: int | None = None
    ) -> ApplyResult:
        """Apply `tally` exactly once for `batch_id` (see the module docstring).

        The ingest calls this without `backfill_until_ms`; a writing backfill passes the end of its
        window (see :meth:`plan` and :meth:`live_start_ms`).

        Raises the client's error for anything but an already-applied chunk, after retrying
        transient cancellations (conflicting concurrent writers, throttling) a few times.
        """
        updates = self.plan(tally, now_ms, backfill_until_ms=backfill_until_ms)
        chunks = [updates[i : i + UPDATES_PER_CHUNK] for i in range(0, len(updates), UPDATES_PER_CHUNK)]
        # A random token on this call's markers tells "applied by an earlier delivery" apart from
        # "applied by us, but the response was lost and botocore retried the call".
        token = uuid.uuid4().hex
        applied = duplicates = transactions = writes = proxies_writes = 0
        counts: dict[tuple[str, Kind, str], int] = defaultdict(int)
        unparsed: dict[str, int] = defaultdict(int)
        for index, planned in enumerate(chunks):
            # Leaving an update out of the transaction keeps `chunks` (and so every marker) as planned.
            chunk = [u for u in planned if not self._seen_unchanged(u)]
            marker = self._marker(batch_id, index, len(chunks), len(chunk), token, now_ms)
            committed, calls = self._transact([marker, *(u.action for u in chunk)], token)
            transactions += calls
            if not committed:
                duplicates += 1
                continue
            applied += 1
            writes += len(chunk) + 1
            for update in chunk:
                if update.pk == keys.PROXIES_PK:
                    proxies_writes += 1
                if update.seen is not None:
                    self._seen_written[update.seen.proxy] = _SeenWritten(update.seen.last_ms, update.seen.log_group)
                if update.counts is not None:
                    proxy, kind, reason, n = update.counts
                    counts[(proxy, kind, reason)] += n
                elif update.unparsed is not None:
                    unparsed[update.unparsed[0]] += update.unparsed[1]
        return ApplyResult(
            batch_id,
            len(chunks),
            applied,
            duplicates,
            transactions,
            writes,
            dict(counts),
            dict(unparsed),
            proxies_item_writes=proxies_writes,
        )

    def _seen_unchanged(self, update: PlannedUpdate) -> bool:
        """Would writing this live proxies item update show a reader nothing new? (module docstring)"""
        activity = update.seen
        if activity is None or self._last_seen_step_ms is None:
            return False
        written = self._seen_written.get(activity.proxy)
        if written is None:
            return False  # not written by this environment yet: first_seen_ms / live_since_ms may be unset
        if activity.log_group and activity.log_group != written.log_group:
            return False
        return activity.last_ms < written.last_ms + self._last_seen_step_ms

    def _transact(self, items: list[TransactWriteItemTypeDef], token: str) -> tuple[bool, int]:
        """Run one chunk; (committed by this call?, calls made). The marker is items[0]."""
        result = transact_write(self._client, items, self._retry)
        cancelled = result.cancelled
        if cancelled is None:
            return True, result.calls
        if cancelled.condition_failed_at(0):
            # The marker exists: applied before, unless it carries this call's token (botocore resent
            # a request whose response was lost, and DynamoDB had applied the first one).
            old_token = cancelled.old_item(0).get("token", {}).get("S")
            return old_token == token, result.calls
        raise cancelled.error

    def _marker(
        self, batch_id: str, index: int, chunks: int, updates: int, token: str, now_ms: int
    ) -> TransactWriteItemTypeDef:
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    keys.PK: _s(keys.batch_pk(batch_id)),
                    keys.SK: _s(keys.batch_chunk_sk(index, chunks)),
                    "updates": _n(updates),
                    "token": _s(token),
                    "applied_ms": _n(now_ms),
                    keys.TTL_ATTRIBUTE: _n(now_ms // 1000 + MARKER_TTL_S),
                },
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": keys.PK},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _update(
        self, pk: str, sk: str, add: dict[str, int], if_absent: dict[str, Any], put: dict[str, Any]
    ) -> TransactWriteItemTypeDef:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets: list[str] = []
        adds: list[str] = []
        for i, (name, value) in enumerate(add.items()):
            names[f"#a{i}"] = name
            values[f":a{i}"] = _n(value)
            adds.append(f"#a{i} :a{i}")
        for i, (name, value) in enumerate(if_absent.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = value
            sets.append(f"#f{i} = if_not_exists(#f{i}, :f{i})")
        for i, (name, value) in enumerate(put.items()):
            names[f"#s{i}"] = name
            values[f":s{i}"] = value
            sets.append(f"#s{i} = :s{i}")
        expression = " ".join(
            part
            for part in (f"ADD {', '.join(adds)}" if adds else "", f"SET {', '.join(sets)}" if sets else "")
            if part
        )
        return {
            "Update": {
                "TableName": self._table,
                "Key": {keys.PK: _s(pk), keys.SK: _s(sk)},
                "UpdateExpression": expression,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def _hour_expiry(self, hour: str) -> int:
        return (keys.hour_start_ms(hour) + HOUR_MS) // 1000 + self._ttl_s

    def _hourly_update(self, agg: ReasonAggregate, live: bool) -> PlannedUpdate:
        pk = keys.proxy_pk(agg.proxy)
        sk = (keys.pin_hour_sk if agg.kind is Kind.PINNED else keys.would_pin_hour_sk)(agg.hour, agg.reason)
        put: dict[str, Any] = {
            A_PROXY: _s(agg.proxy),
            A_HOUR: _s(agg.hour),
            A_KIND: _s(agg.kind.value),
            A_REASON: _s(agg.reason),
            A_LAST: _n(agg.last_ms),
            keys.TTL_ATTRIBUTE: _n(self._hour_expiry(agg.hour)),
        }
        if agg.digest is not None:
            put[A_DIGEST] = _s(agg.digest)
        if agg.reason_text is not None:
            put[A_TEXT] = _s(agg.reason_text)
        if live:
            put[A_LIVE] = _TRUE
        action = self._update(pk, sk, {A_COUNT: agg.count}, {A_FIRST: _n(agg.first_ms)}, put)
        return PlannedUpdate(pk, sk, action, counts=(agg.proxy, agg.kind, agg.reason, agg.count))

    def _total_update(self, aggs: list[ReasonAggregate], now_ms: int) -> PlannedUpdate:
        first = aggs[0]
        pk = keys.proxy_pk(first.proxy)
        sk = (keys.pin_total_sk if first.kind is Kind.PINNED else keys.would_pin_total_sk)(first.reason)
        latest = max(aggs, key=lambda a: a.last_ms)
        put: dict[str, Any] = {
            A_PROXY: _s(first.proxy),
            A_KIND: _s(first.kind.value),
            A_REASON: _s(first.reason),
            A_LAST: _n(latest.last_ms),
            A_UPDATED: _n(now_ms),
        }
        digests: list[str] = []
        for agg in sorted(aggs, key=lambda a: a.last_ms):  # latest hour's digests last
            for digest in agg.digests:
                if digest in digests:
                    digests.remove(digest)
                digests.append(digest)
        if digests:
            put[A_DIGEST] = _s(digests[-1])
            put[A_DIGESTS] = {"L": [_s(d) for d in digests[-DIGESTS_PER_KEY:]]}
        if latest.reason_text is not None:
            put[A_TEXT] = _s(latest.reason_text)
        count = sum(a.count for a in aggs)
        first_ms = min(a.first_ms for a in aggs)
        return PlannedUpdate(pk, sk, self._update(pk, sk, {A_COUNT: count}, {A_FIRST: _n(first_ms)}, put))

    def _unparsed_update(self, agg: UnparsedAggregate, live: bool) -> PlannedUpdate:
        pk, sk = keys.proxy_pk(agg.proxy), keys.unparsed_hour_sk(agg.hour)
        put: dict[str, Any] = {
            A_PROXY: _s(agg.proxy),
            A_HOUR: _s(agg.hour),
            A_KIND: _s(Kind.UNPARSED.value),
            A_LAST: _n(agg.last_ms),
            A_SAMPLE: _s(agg.sample),
            keys.TTL_ATTRIBUTE: _n(self._hour_expiry(agg.hour)),
        }
        if live:
            put[A_LIVE] = _TRUE
        action = self._update(pk, sk, {A_COUNT: agg.count}, {A_FIRST: _n(agg.first_ms)}, put)
        return PlannedUpdate(pk, sk, action, unparsed=(agg.proxy, agg.count))

    def _proxy_update(self, activity: ProxyActivity, now_ms: int, backfill_until_ms: int | None) -> PlannedUpdate:
        pk, sk = keys.PROXIES_PK, keys.proxies_sk(activity.proxy)
        put: dict[str, Any] = {A_PROXY: _s(activity.proxy), A_UPDATED: _n(now_ms)}
        if_absent: dict[str, Any] = {A_FIRST: _n(activity.first_ms)}
        if backfill_until_ms is None:
            put[A_LAST] = _n(activity.last_ms)
            # Set by the first live batch applied; the hourly items' live marks cover an earlier batch
            # applied later (a retry, a dead-letter re-drive), see live_start_ms.
            if_absent[A_LIVE_SINCE] = _n(activity.first_ms)
        else:
            # History must not move a live proxy's last-seen time back; it only fills it in for a new one.
            if_absent[A_LAST] = _n(activity.last_ms)
            put[A_BACKFILLED_UNTIL] = _n(backfill_until_ms)
        if activity.log_group:
            put[A_LOG_GROUP] = _s(activity.log_group)
        seen = activity if backfill_until_ms is None else None
        return PlannedUpdate(pk, sk, self._update(pk, sk, {}, if_absent, put), seen=seen)

    # ------------------------------------------------------------------- reads

    def _query(self, pk: str, sk_from: str, sk_to: str) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="#pk = :pk AND #sk BETWEEN :from AND :to",
            ExpressionAttributeNames={"#pk": keys.PK, "#sk": keys.SK},
            ExpressionAttributeValues={":pk": _s(pk), ":from": _s(sk_from), ":to": _s(sk_to)},
        )
        for page in pages:
            yield from page.get("Items", [])

    def live_start_ms(self, proxy: str, since_ms: int, until_ms: int) -> int | None:
        """When the live ingest began counting `proxy`'s lines, as far as [since, until) is concerned.

        The earlier of the proxies item's ``live_since_ms`` (the earliest line of the first live
        batch applied) and the first line of the earliest live-marked hourly item inside the window
        (a live batch with older lines applied after that first one: a retry or a re-drive). ``None``
        when the ingest has counted nothing for the proxy. On a proxies item written before live
        starts were recorded, ``first_seen_ms`` is the ingest's first line too, unless a backfill
        wrote the item. An earlier start found this way is written back to ``live_since_ms`` (the
        minimum is idempotent), so later backfills see it whatever their window.
        One GetItem, one Query on the proxy's partition, and at most one conditional UpdateItem.
        """
        response = self._client.get_item(
            TableName=self._table,
            Key={keys.PK: _s(keys.PROXIES_PK), keys.SK: _s(keys.proxies_sk(proxy))},
            ConsistentRead=True,
        )
        item = response.get("Item") or {}
        recorded = _int(item, A_LIVE_SINCE)
        live = recorded
        if A_BACKFILLED_UNTIL not in item:
            live = _min(live, _int(item, A_FIRST))
        end = until_ms if live is None else min(until_ms, live)
        if end > since_ms:
            live = _min(live, self._first_live_hour_ms(proxy, since_ms, end))
        if live is not None and (recorded is None or live < recorded):
            self._record_live_start(proxy, live)
        return live

    def _first_live_hour_ms(self, proxy: str, since_ms: int, until_ms: int) -> int | None:
        """The first line of the earliest live-marked hourly item in the UTC hours overlapping [since, until)."""
        first: int | None = None
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="#pk = :pk AND #sk BETWEEN :from AND :to",
            FilterExpression="attribute_exists(#live)",
            ProjectionExpression="#first",
            ExpressionAttributeNames={"#pk": keys.PK, "#sk": keys.SK, "#live": A_LIVE, "#first": A_FIRST},
            ExpressionAttributeValues={
                ":pk": _s(keys.proxy_pk(proxy)),
                ":from": _s(f"{keys.HOUR_PREFIX}{keys.hour_bucket(since_ms)}"),
                ":to": _s(f"{keys.HOUR_PREFIX}{keys.hour_bucket(until_ms - 1)}{keys.RANGE_END}"),
            },
            ConsistentRead=True,
        )
        for page in pages:
            for found in page.get("Items", []):
                first = _min(first, _int(found, A_FIRST))
        return first

    def _record_live_start(self, proxy: str, live_ms: int) -> None:
        """Lower ``live_since_ms`` to `live_ms` (never raise it: concurrent callers converge on the minimum)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={keys.PK: _s(keys.PROXIES_PK), keys.SK: _s(keys.proxies_sk(proxy))},
                UpdateExpression="SET #live = :live",
                ConditionExpression="attribute_not_exists(#live) OR #live > :live",
                ExpressionAttributeNames={"#live": A_LIVE_SINCE},
                ExpressionAttributeValues={":live": _n(live_ms)},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return  # an earlier start is recorded already (by another caller meanwhile)

    def hourly(self, proxy: str, since_ms: int, until_ms: int) -> list[HourlyCount]:
        """Every hourly item (pins, would-pins, unparsed) of `proxy` whose UTC hour overlaps [since, until).

        One paginated Query on the proxy's partition with a sort-key range; hour resolution.
        """
        if until_ms <= since_ms:
            return []
        first_hour = keys.hour_bucket(since_ms)
        last_hour = keys.hour_bucket(until_ms - 1)
        sk_from = f"{keys.HOUR_PREFIX}{first_hour}"
        sk_to = f"{keys.HOUR_PREFIX}{last_hour}{keys.RANGE_END}"
        return [_hourly_from_item(proxy, item) for item in self._query(keys.proxy_pk(proxy), sk_from, sk_to)]

    def top_reasons(self, proxy: str, since_ms: int, until_ms: int, limit: int = 5) -> list[ReasonCount]:
        """The reasons that pinned `proxy` most in the UTC hours overlapping [since, until), most first."""
        return _rank([h for h in self.hourly(proxy, since_ms, until_ms) if h.kind is Kind.PINNED], limit)

    def would_pin_counts(self, proxy: str, since_ms: int, until_ms: int, limit: int | None = None) -> list[ReasonCount]:
        """Would-pin warnings per reason in the UTC hours overlapping [since, until), most first."""
        return _rank([h for h in self.hourly(proxy, since_ms, until_ms) if h.kind is Kind.WOULD_PIN], limit)

    def unparsed_counts(self, proxy: str, since_ms: int, until_ms: int) -> list[HourlyCount]:
        """Unparsed lines per UTC hour overlapping [since, until), oldest hour first, each with a sample."""
        return [h for h in self.hourly(proxy, since_ms, until_ms) if h.kind is Kind.UNPARSED]

    def reason_totals(self, proxy: str) -> list[ReasonCount]:
        """All-time pin count per reason for `proxy` (running totals; never expire), most first."""
        prefix = keys.pin_total_sk("")
        items = self._query(keys.proxy_pk(proxy), prefix, prefix + keys.RANGE_END)
        totals = [_reason_from_item(proxy, item) for item in items]
        return sorted(totals, key=lambda r: (-r.count, r.reason))

    def proxies(self) -> list[ProxySeen]:
        """Every proxy whose lines reached ingest, by name."""
        items = self._query(keys.PROXIES_PK, keys.proxies_sk(""), keys.proxies_sk("") + keys.RANGE_END)
        seen = [
            ProxySeen(
                proxy=_str(item, A_PROXY) or item[keys.SK]["S"].removeprefix("PROXY#"),
                last_seen_ms=_int(item, A_LAST),
                first_seen_ms=_int(item, A_FIRST),
                log_group=_str(item, A_LOG_GROUP),
            )
            for item in items
        ]
        return sorted(seen, key=lambda p: p.proxy)


def _rank(hours: list[HourlyCount], limit: int | None) -> list[ReasonCount]:
    """Fold hourly items into one count per (proxy, reason); samples from the latest hour that has one."""
    merged: dict[str, ReasonCount] = {}
    for h in sorted(hours, key=lambda h: h.hour):
        reason = h.reason or "unknown"
        prev = merged.get(reason)
        if prev is None:
            merged[reason] = ReasonCount(
                h.proxy, reason, h.count, h.first_seen_ms, h.last_seen_ms, h.example_digest, h.reason_text
            )
            continue
        merged[reason] = ReasonCount(
            proxy=h.proxy,
            reason=reason,
            count=prev.count + h.count,
            first_seen_ms=_min(prev.first_seen_ms, h.first_seen_ms),
            last_seen_ms=_max(prev.last_seen_ms, h.last_seen_ms),
            example_digest=h.example_digest or prev.example_digest,
            reason_text=h.reason_text or prev.reason_text,
        )
    ranked = sorted(merged.values(), key=lambda r: (-r.count, r.reason))
    return ranked if limit is None else ranked[:limit]


def _hourly_from_item(proxy: str, item: dict[str, Any]) -> HourlyCount:
    # sk = HOUR#<hour>#PIN#<reason> | HOUR#<hour>#WOULD#<reason> | HOUR#<hour>#UNPARSED
    _, hour, part, *rest = item[keys.SK]["S"].split("#", 3)
    return HourlyCount(
        proxy=proxy,
        hour=hour,
        kind=_PART_KIND.get(part, Kind.OTHER),
        reason=_str(item, A_REASON) or (rest[0] if rest else None),
        count=_int(item, A_COUNT) or 0,
        first_seen_ms=_int(item, A_FIRST),
        last_seen_ms=_int(item, A_LAST),
        example_digest=_str(item, A_DIGEST),
        reason_text=_str(item, A_TEXT),
        sample=_str(item, A_SAMPLE),
    )


def _reason_from_item(proxy: str, item: dict[str, Any]) -> ReasonCount:
    return ReasonCount(
        proxy=proxy,
        reason=_str(item, A_REASON) or item[keys.SK]["S"].rsplit("#", 1)[-1],
        count=_int(item, A_COUNT) or 0,
        first_seen_ms=_int(item, A_FIRST),
        last_seen_ms=_int(item, A_LAST),
        example_digest=_str(item, A_DIGEST),
        reason_text=_str(item, A_TEXT),
    )


_TRUE: Final = {"BOOL": True}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _str(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value.get("S") if value else None


def _int(item: Mapping[str, Any], name: str) -> int | None:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else None


def _min(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)
