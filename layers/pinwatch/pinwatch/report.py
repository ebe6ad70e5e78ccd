"""Report maths for ``pinwatch report``: windows, ranking with share and trend, hourly series, renderers.

Pure: works on :class:`~pinwatch.records.HourlyCount` rows read from the summary table. Counts
have hour resolution: a window covers every UTC hour bucket it overlaps, and the hour that
contains ``since`` belongs to the current window, not the previous one.

Across an organization the table's proxies are keys ``<account>:<region>:<name>``
(:mod:`pinwatch.scope`): they are grouped by account and Region, ranked per account as well as
per proxy, and the machine formats carry ``account``, ``region`` and ``name`` next to ``proxy``
(the key). Plain names (a single-account table) give exactly the records they always did.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from itertools import chain

from pinwatch.records import HourlyCount, Kind
from pinwatch.scope import ACCOUNT_ID, REGION, Scope, split_key
from pinwatch.timebase import DAY_MS, HOUR_MS, MINUTE_MS, hour_bucket, hour_start_ms

SPARK_CHARS = "▁▂▃▄▅▆▇█"
SPARK_MAX_WIDTH = 48  # longer series are summed into wider buckets so a line fits a terminal

HintFn = Callable[[str, str | None], str | None]
"""(reason code, example digest) -> the most specific fix, or None."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_MS = {"s": 1000, "m": MINUTE_MS, "min": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}


class ReportError(ValueError):
    """A report option cannot be understood (the CLI prints it as a usage error)."""


def parse_time(text: str, now_ms: int) -> int:
    """Epoch ms for ``now``, a duration before now (``90m``, ``24h``, ``7d``, ``2w``) or an ISO 8601 time.

    An ISO time without a zone is UTC (proxy logs and the table's hour buckets are UTC).
    """
    value = text.strip()
    if value.lower() == "now":
        return now_ms
    match = _DURATION.match(value)
    if match:
        return now_ms - int(float(match.group(1)) * _UNIT_MS[match.group(2).lower()])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ReportError(
            f"{text!r} is neither a duration (30m, 24h, 7d, 2w) nor an ISO 8601 time (2026-11-25T08:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Window:
    """[since_ms, until_ms) and the window of equal length right before it (for the trend)."""

    since_ms: int
    until_ms: int

    def __post_init__(self) -> None:
        if self.until_ms <= self.since_ms:
            raise ReportError(
                f"the window is empty: --until ({iso(self.until_ms)}) is not after --since ({iso(self.since_ms)})"
            )

    @property
    def previous(self) -> Window:
        length = self.until_ms - self.since_ms
        return Window(self.since_ms - length, self.since_ms)

    @property
    def hours(self) -> list[str]:
        """Hour buckets the window overlaps, oldest first."""
        start = self.since_ms - self.since_ms % HOUR_MS
        return [hour_bucket(ms) for ms in range(start, self.until_ms, HOUR_MS)]

    def holds(self, hour: str) -> bool:
        """The hour bucket overlaps this window."""
        start = hour_start_ms(hour)
        return start < self.until_ms and start + HOUR_MS > self.since_ms


@dataclass(frozen=True, slots=True)
class ReasonRow:
    """One reason of one proxy over the window (``--by reason``)."""

    proxy: str
    reason: str
    count: int
    share: float  # of this proxy's lines of the kind in the window, 0..1
    previous_count: int
    first_seen_ms: int | None = None
    last_seen_ms: int | None = None
    example_digest: str | None = None
    reason_text: str | None = None
    hint: str | None = None

    @property
    def change_pct(self) -> float | None:
        """Change against the previous window in percent; None when the reason is new."""
        if not self.previous_count:
            return None
        return (self.count - self.previous_count) * 100.0 / self.previous_count

    @property
    def trend(self) -> str:
        if not self.previous_count:
            return "new" if self.count else "-"
        if not self.count:
            return "stopped"
        change = self.change_pct or 0.0
        return "=" if abs(change) < 0.5 else f"{change:+.0f}%"


@dataclass(frozen=True, slots=True)
class HourRow:
    """Lines of one reason of one proxy in one UTC hour (``--by hour``)."""

    proxy: str
    hour: str
    reason: str
    count: int


def rank_reasons(
    proxy: str,
    counts: Iterable[HourlyCount],
    window: Window,
    kind: Kind = Kind.PINNED,
    hint: HintFn | None = None,
    limit: int | None = None,
) -> list[ReasonRow]:
    """Reasons by count in `window` (most first), with share and the count in the previous window.

    Reasons that appeared only in the previous window are kept at the end with count 0 ("stopped"):
    that is how a fix shows up.
    """
    current: dict[str, list[HourlyCount]] = defaultdict(list)
    previous: dict[str, int] = defaultdict(int)
    before = window.previous
    for h in counts:
        if h.kind is not kind or h.reason is None:
            continue
        if window.holds(h.hour):
            current[h.reason].append(h)
        elif before.holds(h.hour):
            previous[h.reason] += h.count
    total = sum(h.count for hours in current.values() for h in hours)
    rows = []
    for reason in set(current) | set(previous):
        hours = sorted(current.get(reason, []), key=lambda h: h.hour)
        count = sum(h.count for h in hours)
        digest = next((h.example_digest for h in reversed(hours) if h.example_digest), None)
        rows.append(
            ReasonRow(
                proxy=proxy,
                reason=reason,
                count=count,
                share=count / total if total else 0.0,
                previous_count=previous.get(reason, 0),
                first_seen_ms=min((h.first_seen_ms for h in hours if h.first_seen_ms is not None), default=None),
                last_seen_ms=max((h.last_seen_ms for h in hours if h.last_seen_ms is not None), default=None),
                example_digest=digest,
                reason_text=next((h.reason_text for h in reversed(hours) if h.reason_text), None),
                hint=hint(reason, digest) if hint is not None else None,
            )
        )
    rows.sort(key=lambda r: (-r.count, -r.previous_count, r.reason))
    return rows if limit is None else rows[:limit]


@dataclass(frozen=True, slots=True)
class AccountReasonRow:
    """One reason over all of an account's proxies in the window, and which proxies it came from."""

    account: str
    reason: ReasonRow  # ranked over the account's proxies together (its ``proxy`` is the account)
    proxies: tuple[tuple[str, int], ...]  # (key, count in the window), most first; proxies without any left out


def account_reasons(
    account: str,
    counts_by_key: Mapping[str, Iterable[HourlyCount]],
    window: Window,
    kind: Kind = Kind.PINNED,
    limit: int | None = None,
) -> list[AccountReasonRow]:
    """The account's top reasons: its proxies' counts added up (every Region), ranked like one proxy's."""
    mine = {key: list(counts) for key, counts in counts_by_key.items() if _account(key) == account}
    ranked = rank_reasons(account, chain.from_iterable(mine.values()), window, kind, limit=limit)
    rows = []
    for row in ranked:
        per_proxy = [
            (key, sum(h.count for h in counts if h.kind is kind and h.reason == row.reason and window.holds(h.hour)))
            for key, counts in mine.items()
        ]
        found = tuple(sorted(((k, n) for k, n in per_proxy if n), key=lambda kn: (-kn[1], kn[0])))
        rows.append(AccountReasonRow(account, row, found))
    return rows


def _account(key: str) -> str | None:
    scope, _ = split_key(key)
    return None if scope is None else scope.account


def by_place(keys: Iterable[str]) -> dict[Scope | None, list[str]]:
    """Keys grouped by (account, Region), in account then Region order; plain names (no scope) first.

    Within a group the keys keep their order (the table's listing is sorted; ``--proxy`` is as given).
    """
    groups: dict[Scope | None, list[str]] = defaultdict(list)
    for key in keys:
        groups[split_key(key)[0]].append(key)
    order = sorted(groups, key=lambda scope: ("", "") if scope is None else (scope.account, scope.region))
    return {scope: groups[scope] for scope in order}


def select(keys: Iterable[str], accounts: Collection[str] = (), regions: Collection[str] = ()) -> list[str]:
    """The keys in one of ``accounts`` and one of ``regions`` (an empty filter lets all through).

    With any filter, plain names (proxies of a single-account table) have no account or Region to match.
    """
    if not accounts and not regions:
        return list(keys)
    chosen = []
    for key in keys:
        scope, _ = split_key(key)
        if scope is None:
            continue
        if (not accounts or scope.account in accounts) and (not regions or scope.region in regions):
            chosen.append(key)
    return chosen


def check_filters(accounts: Iterable[str], regions: Iterable[str]) -> None:
    """Refuse filter values that could never match a key (a typo would otherwise just print nothing)."""
    for account in accounts:
        if not ACCOUNT_ID.fullmatch(account):
            raise ReportError(f"--account {account!r} is not a 12-digit AWS account ID")
    for region in regions:
        if not REGION.fullmatch(region):
            raise ReportError(f"--proxy-region {region!r} is not an AWS Region code (e.g. eu-west-1)")


def expand_names(requested: Iterable[str], known: Iterable[str]) -> list[str]:
    """``--proxy`` values as keys: a bare name on an organization's table means that name in every account and Region.

    A key, or a name no scoped key carries, is kept as given (a single-account table's plain name).
    """
    by_name: dict[str, list[str]] = defaultdict(list)
    for key in known:
        scope, name = split_key(key)
        if scope is not None:
            by_name[name].append(key)
    out: list[str] = []
    for value in requested:
        scope, _ = split_key(value)
        out.extend(sorted(by_name[value]) if scope is None and by_name.get(value) else [value])
    return list(dict.fromkeys(out))


def hour_rows(proxy: str, counts: Iterable[HourlyCount], window: Window, kind: Kind = Kind.PINNED) -> list[HourRow]:
    """Non-zero (hour, reason) counts in `window`, oldest hour first, most frequent reason first."""
    rows = [
        HourRow(proxy, h.hour, h.reason, h.count)
        for h in counts
        if h.kind is kind and h.reason is not None and h.count and window.holds(h.hour)
    ]
    return sorted(rows, key=lambda r: (r.hour, -r.count, r.reason))


def series(rows: Iterable[HourRow], window: Window) -> dict[str, list[int]]:
    """Reason -> counts per hour of the window (zero-filled, oldest first), most frequent reason first."""
    hours = window.hours
    index = {h: i for i, h in enumerate(hours)}
    out: dict[str, list[int]] = {}
    for row in rows:
        values = out.setdefault(row.reason, [0] * len(hours))
        if row.hour in index:
            values[index[row.hour]] += row.count
    return dict(sorted(out.items(), key=lambda kv: (-sum(kv[1]), kv[0])))


def sparkline(values: Sequence[int], max_width: int = SPARK_MAX_WIDTH) -> str:
    """A one-line bar chart; ``▁`` is zero, ``█`` the maximum. Long series are summed into wider buckets."""
    if not values:
        return ""
    width = -(-len(values) // max_width)  # hours per character
    buckets = [sum(values[i : i + width]) for i in range(0, len(values), width)]
    peak = max(buckets)
    if peak <= 0:
        return SPARK_CHARS[0] * len(buckets)
    top = len(SPARK_CHARS) - 1
    # Any non-zero bucket gets at least the second level, so a single pin is visible.
    return "".join(SPARK_CHARS[0] if v <= 0 else SPARK_CHARS[max(1, round(v * top / peak))] for v in buckets)


def iso(ms: int | None, timespec: str = "seconds") -> str:
    """UTC ISO 8601 with a ``Z``; empty for None."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def hour_iso(hour: str) -> str:
    return iso(hour_start_ms(hour), "minutes")


# ------------------------------------------------------------------ renderers (machine formats)

REASON_COLUMNS = (
    "proxy",
    "reason",
    "count",
    "share",
    "previous_count",
    "change_pct",
    "trend",
    "first_seen",
    "last_seen",
    "example_digest",
    "hint",
    "reason_text",
)
HOUR_COLUMNS = ("proxy", "hour", "reason", "count")


PLACE_COLUMNS = ("account", "region", "name")


def place_fields(key: str) -> dict[str, object]:
    """``account``, ``region`` and ``name`` of an organization's proxy; nothing for a plain name."""
    scope, name = split_key(key)
    return {} if scope is None else {"account": scope.account, "region": scope.region, "name": name}


def with_place(columns: Sequence[str], records: Iterable[Mapping[str, object]]) -> tuple[str, ...]:
    """``columns`` with account, region and name after ``proxy`` when any record is an organization's."""
    if not any("account" in r for r in records):
        return tuple(columns)
    at = list(columns).index("proxy") + 1
    return (*columns[:at], *PLACE_COLUMNS, *columns[at:])


def reason_record(row: ReasonRow) -> dict[str, object]:
    change = row.change_pct
    return {
        "proxy": row.proxy,
        **place_fields(row.proxy),
        "reason": row.reason,
        "count": row.count,
        "share": round(row.share, 4),
        "previous_count": row.previous_count,
        "change_pct": None if change is None else round(change, 1),
        "trend": row.trend,
        "first_seen": iso(row.first_seen_ms) or None,
        "last_seen": iso(row.last_seen_ms) or None,
        "example_digest": row.example_digest,
        "hint": row.hint,
        "reason_text": row.reason_text,
    }


def hour_record(row: HourRow) -> dict[str, object]:
    return {"proxy": row.proxy, **place_fields(row.proxy), **asdict(row), "hour": hour_iso(row.hour)}


def to_json(records: Sequence[dict[str, object]]) -> str:
    return json.dumps(list(records), indent=2, ensure_ascii=False)


def to_csv(records: Sequence[dict[str, object]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: "" if record.get(k) is None else record.get(k) for k in columns})
    return out.getvalue()


def to_markdown(records: Sequence[dict[str, object]], columns: Sequence[str]) -> str:
    def cell(value: object) -> str:
        text = "" if value is None else str(value)
        # Pipes end a cell and newlines end a row: escape / flatten them.
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines.extend("| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in records)
    return "\n".join(lines) + "\n"
