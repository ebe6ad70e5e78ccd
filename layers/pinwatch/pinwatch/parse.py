"""Turn one RDS Proxy log message into a :class:`~pinwatch.records.LogRecord`.

The proxy's log format is documented as "subject to change", so the parser is lenient: it looks
for fixed phrases and ``key=value`` tags wherever they are instead of matching a whole-line
grammar. It is also on the ingest hot path (every line of a subscription batch), so it uses
plain substring searches — a non-pin line is rejected by two ``str.find`` calls before anything
else — and memoises the only non-trivial work, splitting and classifying the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import MemberDescriptorType
from typing import Any

from pinwatch.classify import classify
from pinwatch.records import Kind, LogRecord

# The literal phrase a CloudWatch Logs subscription filter matches (filter patterns are
# case-sensitive; a quoted phrase matches literally): `"The client session was pinned to the database connection"`.
PIN_PHRASE = "The client session was pinned to the database connection"
# INFO line: "If this prepared statement runs, the client session will be pinned to the database connection …"
WOULD_PIN_PHRASE = "the client session will be pinned to the database connection"

UNKNOWN_REASON = "unknown"

_REASON_MARK = "Reason:"
_DIGEST_MARK = 'Digest: "'
_REASON_LEN = len(_REASON_MARK)
_DIGEST_LEN = len(_DIGEST_MARK)
_DB_TAG = "[dbConnection="
_LEVELS = frozenset({"INFO", "WARN", "WARNING", "ERROR", "DEBUG", "TRACE", "FATAL", "NOTICE"})
# Non-pin proxy messages (reference §1); used only to tell "other" from "unparsed" when a line has no prefix.
_PROXY_PHRASES = (
    "client connected from",
    "TCP connection was established",
    "connection closed",
    "released to the connection pool",
    "upon session reset",
    "authentication",
    "credentials",
    "Secrets Manager",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIMESTAMP_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the last epoch millisecond a UTC hour bucket (or any datetime) can name."""
_ONE_MS = timedelta(milliseconds=1)
# How far into a line the level and tags are looked for: the prefix is short, a junk line may not be.
_PREFIX_SCAN = 512


def parse_message(message: str, timestamp_ms: int | None = None) -> LogRecord:
    """Parse one proxy log message.

    `timestamp_ms` is the CloudWatch event timestamp; when given it wins over the text. Never
    raises: input that is not a proxy line comes back as ``Kind.UNPARSED``.
    """
    pin_at = message.find(PIN_PHRASE)
    if pin_at >= 0:
        kind = Kind.PINNED
    else:
        pin_at = message.find(WOULD_PIN_PHRASE)
        if pin_at < 0:
            return _parse_non_pin(message, timestamp_ms)
        kind = Kind.WOULD_PIN

    reason_at = message.find(_REASON_MARK, pin_at)
    if reason_at < 0:
        reason_at = len(message)
        reason_text = digest = None
        reason = UNKNOWN_REASON
    else:
        reason_text, digest, reason = pin_reason(message[reason_at:])
    prefix = message[:pin_at]
    level, endpoint, client, db = _fields(prefix)
    if db is None:  # usually right after the phrase: "… to the database connection [dbConnection=<id>] …"
        db_at = message.find(_DB_TAG, pin_at, reason_at)
        if db_at >= 0:
            db_end = message.find("]", db_at, reason_at)
            db = message[db_at + len(_DB_TAG) : db_end if db_end >= 0 else reason_at].strip() or None
    if timestamp_ms is None:
        timestamp_ms = _text_timestamp_ms(prefix)
    return _record(kind, message, timestamp_ms, level, endpoint, client, db, reason_text, digest, reason)


def _parse_non_pin(message: str, timestamp_ms: int | None) -> LogRecord:
    """A line without a pin phrase: a proxy line about something else, or not a proxy line at all."""
    stripped = message.lstrip()
    # Empty lines and JSON documents from other services are never proxy lines.
    if not stripped or stripped[0] == "{":
        return _record(Kind.UNPARSED, message, timestamp_ms, None, None, None, None, None, None, None)
    reason_at = message.find(_REASON_MARK)
    head = message if reason_at < 0 else message[:reason_at]
    scan = head[:_PREFIX_SCAN]
    level, endpoint, client, db = _fields(scan)
    untagged = level is None and endpoint is None and client is None and db is None
    if untagged and not any(phrase in scan for phrase in _PROXY_PHRASES):
        return _record(Kind.UNPARSED, message, timestamp_ms, None, None, None, None, None, None, None)
    reason_text = digest = None
    if reason_at >= 0:
        tail = message[reason_at:]
        reason_text, digest = _split_reason_memo(tail) if len(tail) <= _MEMO_TAIL_CHARS else _split_reason(tail)
    if timestamp_ms is None:
        timestamp_ms = _text_timestamp_ms(scan)
    return _record(Kind.OTHER, message, timestamp_ms, level, endpoint, client, db, reason_text, digest, None)


def _split_reason(tail: str) -> tuple[str | None, str | None]:
    """Split ``Reason: <text> Digest: "<statement>".`` into its text (verbatim) and the digest."""
    start = _REASON_LEN
    # The digest is user SQL and may itself contain quotes; it always ends the line, so the last
    # marker is the real one and the closing `".` (or `"`) is stripped from the very end.
    digest_at = tail.rfind(_DIGEST_MARK, start)
    if digest_at < 0:
        return tail[start:].strip() or None, None
    digest = tail[digest_at + _DIGEST_LEN :].rstrip()
    if digest.endswith('".'):
        digest = digest[:-2]
    elif digest.endswith('"'):
        digest = digest[:-1]
    return tail[start:digest_at].strip() or None, digest


def pin_reason(tail: str) -> tuple[str | None, str | None, str]:
    """(reason text, digest, catalog code) of a pin line's text from ``Reason:`` on (``""``: no reason).

    All of a pin line that counting needs: callers that already found the tail (the ingest fold)
    skip the tags and timestamp that :func:`parse_message` also reads.
    """
    return _pin_reason(tail) if len(tail) <= _MEMO_TAIL_CHARS else read_pin_reason(tail)


def read_pin_reason(tail: str) -> tuple[str | None, str | None, str]:
    """:func:`pin_reason` without its cache: for a caller that reads each distinct tail once and has
    more of them than the cache holds (:data:`PIN_REASON_CACHE_SIZE`), so that every lookup would miss."""
    reason_text, digest = _split_reason(tail)
    if reason_text is None and digest is None:
        return None, None, UNKNOWN_REASON
    return reason_text, digest, classify(reason_text or "", digest)


# The text from "Reason:" on repeats across lines (a handful of reasons and digests per proxy), so
# its split and classification are memoised whole; tags and timestamps differ on every line.
# Longer tails (rare: huge digests) are handled uncached so the caches stay small.
_MEMO_TAIL_CHARS = 2048
PIN_REASON_CACHE_SIZE = 1024
"""Distinct reason tails :func:`pin_reason` remembers (across calls: a warm function's batches)."""
_pin_reason = lru_cache(maxsize=PIN_REASON_CACHE_SIZE)(read_pin_reason)
_split_reason_memo = lru_cache(maxsize=256)(_split_reason)


def _fields(head: str) -> tuple[str | None, str | None, str | None, str | None]:
    """``[LEVEL]`` and the ``[key=value]`` tags, in any order: (level, endpoint, client, db); ids may be non-numeric."""
    level = endpoint = client = db = None
    for part in head.split("[")[1:]:
        end = part.find("]")
        if end < 0:
            continue
        eq = part.find("=", 0, end)
        if eq < 0:
            if level is None and part[:end] in _LEVELS:
                level = part[:end]
            continue
        key = part[:eq]
        value = part[eq + 1 : end].strip() or None
        if key == "clientConnection":
            client = value
        elif key == "dbConnection":
            db = value
        elif key == "proxyEndpoint":
            endpoint = value
    return level, endpoint, client, db


def _fast_record_factory() -> Callable[..., LogRecord]:
    """A LogRecord constructor that skips the frozen dataclass ``__init__``.

    A frozen dataclass sets each field through ``object.__setattr__``, which costs more per line
    than decoding the line did. Writing the slots directly builds an identical, still immutable
    record in a third of the time. Fields added to LogRecord later get their defaults; if it stops
    using slots, the normal constructor is used.
    """
    names = (
        *("kind", "raw", "timestamp_ms", "level", "endpoint"),
        *("client_connection", "db_connection", "reason_text", "digest", "reason"),
    )
    slots: dict[str, Any] = {f.name: LogRecord.__dict__.get(f.name) for f in dataclass_fields(LogRecord)}
    if set(names) - set(slots) or not all(isinstance(d, MemberDescriptorType) for d in slots.values()):
        return lambda *values: LogRecord(**dict(zip(names, values, strict=True)))
    extra = tuple((slots[f.name].__set__, f.default) for f in dataclass_fields(LogRecord) if f.name not in names)
    k, r, t, lv, e, c, d, rt, dg, rs = (slots[n].__set__ for n in names)
    new = object.__new__

    def build(
        kind: Kind,
        raw: str,
        timestamp_ms: int | None,
        level: str | None,
        endpoint: str | None,
        client: str | None,
        db: str | None,
        reason_text: str | None,
        digest: str | None,
        reason: str | None,
    ) -> LogRecord:
        record: LogRecord = new(LogRecord)
        k(record, kind)
        r(record, raw)
        t(record, timestamp_ms)
        lv(record, level)
        e(record, endpoint)
        c(record, client)
        d(record, db)
        rt(record, reason_text)
        dg(record, digest)
        rs(record, reason)
        for setter, default in extra:
            setter(record, default)
        return record

    return build


_record = _fast_record_factory()


def _text_timestamp_ms(prefix: str) -> int | None:
    """Epoch ms of a leading ISO-8601 timestamp; without a zone it is UTC (the proxy logs in UTC)."""
    if len(prefix) < 16 or not prefix[0].isdigit() or prefix[4] != "-":
        return None
    parts = prefix.split(None, 2)
    text = parts[0]
    # "2020-08-04 11:47:24.251Z": date and time separated by a space.
    if len(text) == 10 and len(parts) > 1 and parts[1][:1].isdigit() and ":" in parts[1]:
        text = f"{text}T{parts[1]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ms: int = (moment - _EPOCH) // _ONE_MS
    # A time before 1970 (or past 9999 once in UTC) is not a proxy's: no timestamp rather than a broken one.
    return ms if 0 <= ms <= MAX_TIMESTAMP_MS else None
