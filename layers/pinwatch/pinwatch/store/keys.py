"""Key design of the single summary table.

Every item has a string partition key ``pk`` and sort key ``sk``; expiring items carry
``expires_at`` (epoch seconds, the table's TTL attribute). One query on ``PROXY#<name>`` with a
sort-key range returns everything for one proxy in a time window, so reports and the scheduled
check never scan.

| item                       | pk               | sk                                        | expires                   |
|----------------------------|------------------|-------------------------------------------|---------------------------|
| pins per proxy×reason×hour | PROXY#<proxy>    | HOUR#<yyyy-mm-ddThh>#PIN#<reason>         | hour end + SummaryTtlDays |
| would-pins per …×hour      | PROXY#<proxy>    | HOUR#<yyyy-mm-ddThh>#WOULD#<reason>       | hour end + SummaryTtlDays |
| unparsed lines per hour    | PROXY#<proxy>    | HOUR#<yyyy-mm-ddThh>#UNPARSED             | hour end + SummaryTtlDays |
| running total per reason   | PROXY#<proxy>    | TOTAL#PIN#<reason> / TOTAL#WOULD#<reason> | no                        |
| alert state per rule       | PROXY#<proxy>    | ALERT#<rule>                              | write + 30 d              |
| open-alert index per rule  | ALERTING         | PROXY#<proxy>#ALERT#<rule>                | write + 30 d              |
| alarm contributor (org)    | WATCHED          | PROXY#<proxy>                             | write + 24 h              |
| reason capture state       | PROXY#<proxy>    | CAPTURE                                   | no                        |
| proxies seen               | PROXIES          | PROXY#<proxy>                             | no                        |
| exactly-once batch marker  | BATCH#<batch id> | CHUNK#<index>/<chunks>                    | write + 15 d              |

Hour buckets are UTC and sort lexically, so ``HOUR#2026-11-25T00`` .. ``HOUR#2026-11-25T23~``
selects a day (``~`` sorts after ``#``).

Who writes what (attributes in :mod:`pinwatch.store.summary` and :mod:`pinwatch.store.alert_state`):

* Hourly items written by the live ingest carry ``live = true``; a backfill's do not.
* The proxies item holds ``first_seen_ms``, ``last_seen_ms``, ``log_group``, ``live_since_ms``
  (the first line of the first live batch applied; a backfill lowers it if it finds an earlier
  live hour) and ``backfilled_until_ms`` (the end of the
  last writing backfill's window). The live ingest does not write it on every batch: only the
  first batch of a proxy in an execution environment, a changed log group, or last-seen a minute
  or more past what that environment last wrote (``PROXIES`` is one partition for all proxies).
* Alert states are rewritten by every check run that changes them and at least every reminder
  interval while active, each write stamping ``expires_at``; the ``ALERTING`` item of the same
  rule (``proxy``, ``active``) is put in the same transaction, so one Query on ``ALERTING`` lists
  the proxies with open alerts. Neither is ever deleted: states nobody touches any more expire.
  ``ALERTING`` is one partition too, but only the scheduled check writes it, a few items per run.
* In organization mode the check puts a ``WATCHED`` item per member alarm contributor event
  (:mod:`pinwatch.store.hot_state`: ``proxy``, ``watched`` true on ALARM and false on OK,
  ``event_ms`` the event's time): a conditional put that an older event cannot overwrite. One
  Query on ``WATCHED`` lists the proxies to read between sweeps; items are never deleted, only expire.
"""

from __future__ import annotations

# The hour bucket text is part of the sort keys; its format lives with the other time units.
from pinwatch.timebase import hour_bucket as hour_bucket
from pinwatch.timebase import hour_start_ms as hour_start_ms

PK = "pk"
SK = "sk"
TTL_ATTRIBUTE = "expires_at"

PROXIES_PK = "PROXIES"
HOUR_PREFIX = "HOUR#"
TOTAL_PREFIX = "TOTAL#"
ALERT_PREFIX = "ALERT#"
CAPTURE_SK = "CAPTURE"  # pinwatch.store.capture_state: who switched enhanced logging on, and when
RANGE_END = "~"  # sorts after every character used in keys, closing a prefix range


def ttl_seconds(ttl_days: int) -> int:
    """How long after a write an item's ``expires_at`` lies, from a store's ``ttl_days`` (at least 1)."""
    if ttl_days < 1:
        raise ValueError(f"ttl_days must be at least 1, got {ttl_days}")
    return ttl_days * 86_400


def proxy_pk(proxy: str) -> str:
    return f"PROXY#{proxy}"


def pin_hour_sk(bucket: str, reason: str) -> str:
    return f"{HOUR_PREFIX}{bucket}#PIN#{reason}"


def would_pin_hour_sk(bucket: str, reason: str) -> str:
    return f"{HOUR_PREFIX}{bucket}#WOULD#{reason}"


def unparsed_hour_sk(bucket: str) -> str:
    return f"{HOUR_PREFIX}{bucket}#UNPARSED"


def pin_total_sk(reason: str) -> str:
    return f"{TOTAL_PREFIX}PIN#{reason}"


def would_pin_total_sk(reason: str) -> str:
    return f"{TOTAL_PREFIX}WOULD#{reason}"


def alert_sk(rule: str) -> str:
    return f"{ALERT_PREFIX}{rule}"


def proxies_sk(proxy: str) -> str:
    return f"PROXY#{proxy}"


def watched_sk(proxy: str) -> str:
    return f"PROXY#{proxy}"


def batch_pk(batch_id: str) -> str:
    return f"BATCH#{batch_id}"


def batch_chunk_sk(index: int, chunks: int) -> str:
    return f"CHUNK#{index:04d}/{chunks:04d}"
