"""What to change so a pinning reason stops: catalog hints made specific to one proxy.

Order is most specific first: advice derived from the statement digest (which variable was SET,
which lock was taken), then the engine family's hints, then driver/ORM hints, then general ones.
With the engine unknown, the engine-neutral (general) advice comes right after the digest's, ahead
of the per-engine and per-driver hints, so the lead hint is never one engine's advice guessed for
another's proxy.
The target group's pool configuration is taken into account: a lever that is already pulled
(``EXCLUDE_VARIABLE_SETS``, an ``InitQuery``) is reported as such instead of being suggested again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pinwatch import digest as dg
from pinwatch.catalog import (
    DRIVERS,
    EXCLUDE_VARIABLE_SETS,
    EXTENDED_QUERY_BLOG,
    INIT_QUERY,
    PG_ADVISORY_LOCK_DOC,
    PG_ALTER_ROLE_DOC,
    PINNING_DOC,
    POOL_CONFIG_DOC,
    PRISMA_PGBOUNCER_RDS_PROXY,
    Advice,
    ReasonEntry,
    driver_name,
    entry,
)
from pinwatch.records import EngineFamily, PoolConfig

GENERAL = "general"

_MYSQL = EngineFamily.MYSQL
_POSTGRESQL = EngineFamily.POSTGRESQL


@dataclass(frozen=True)
class Hint:
    """One piece of advice. `scope` is ``general``, an engine family value (``MYSQL``) or a driver name."""

    text: str
    scope: str
    doc_url: str | None


@dataclass(frozen=True)
class DigestHint:
    """One row of :data:`DIGEST_HINTS`: when a piece of statement-specific advice applies, and what it says.

    A row applies when every condition holds: one of `kinds` is among the digest's statement kinds
    (empty: any), the resolved engine is in `engines` (``None`` in it stands for "engine unknown";
    empty: any engine), one of `drivers` (keys of :data:`~pinwatch.catalog.DRIVERS`) is among the
    client's drivers (the given ones, else every driver that works with the engine; empty: any), each fact in `requires` is non-empty and each in `excludes` is empty (see
    :class:`_Facts`), the lower-cased digest contains one of `contains` (empty: no check) and none of
    `lacks`. A row with a `variable` applies when the statement SETs that variable; such rows are
    emitted together, at the first one's place, in the order the statement SETs them.

    `text` may use ``{placeholder}`` fields of :class:`_Facts` (so a literal brace is written ``{{``).
    `scope` None means the first of the client's drivers the row names, else the resolved engine's
    scope; `source` is the page the advice rests on (AWS's pinning page unless the row names another).
    """

    text: str
    scope: EngineFamily | None = None
    kinds: frozenset[str] = frozenset()
    engines: frozenset[EngineFamily | None] = frozenset()
    drivers: frozenset[str] = frozenset()
    requires: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    lacks: tuple[str, ...] = ()
    variable: str | None = None
    source: str = PINNING_DOC


_NO_ENGINE: frozenset[EngineFamily | None] = frozenset({None, EngineFamily.SQLSERVER})
_ON_MYSQL: frozenset[EngineFamily | None] = frozenset({_MYSQL})
_ON_POSTGRESQL: frozenset[EngineFamily | None] = frozenset({_POSTGRESQL})
_LOCK = frozenset({dg.LOCK})

# Advice that names the statement (which variable, which lock, which reset query), most specific first.
DIGEST_HINTS: tuple[DigestHint, ...] = (
    # SETs on MySQL: a user variable always pins; tracked variables do not, untracked ones do.
    DigestHint(
        "{user} {user_is_are} a MySQL user variable: user variables always pin. Pass the value as a query "
        "parameter or compute it inside one statement.",
        _MYSQL,
        engines=_ON_MYSQL,
        requires=("user",),
    ),
    DigestHint(
        "`SET TRANSACTION ...` without SESSION applies to the next transaction only and pins: use "
        "`SET SESSION TRANSACTION ...` (tracked) or `START TRANSACTION READ ONLY`.",
        _MYSQL,
        engines=_ON_MYSQL,
        requires=("untracked", "next_transaction"),
    ),
    DigestHint(
        "{tracked} {tracked_is_are} tracked by the proxy (no pin on {tracked_its_their} own); the culprit is "
        "{untracked}: the proxy does not track {untracked_it_them}, so the SET pins. Set {untracked_it_them} in the "
        "DB parameter group or the initialization query (InitQuery), or stop setting it per session.",
        _MYSQL,
        engines=_ON_MYSQL,
        requires=("untracked", "tracked"),
    ),
    DigestHint(
        "the culprit is {untracked}: the proxy does not track {untracked_it_them}, so the SET pins. Set "
        "{untracked_it_them} in the DB parameter group or the initialization query (InitQuery), or stop setting it "
        "per session.",
        _MYSQL,
        engines=_ON_MYSQL,
        requires=("untracked",),
        excludes=("tracked",),
    ),
    DigestHint(
        "{tracked} {tracked_is_are} tracked by the proxy and should not pin on {tracked_its_their} own (`SET LOCAL` "
        "does not pin on MySQL); look for another statement in the same session (a user variable, a prepared "
        "statement).",
        _MYSQL,
        engines=_ON_MYSQL,
        requires=("tracked", "local"),
        excludes=("untracked", "user"),
    ),
    DigestHint(
        "{tracked} {tracked_is_are} tracked by the proxy and should not pin on {tracked_its_their} own; look for "
        "another statement in the same session (a user variable, a prepared statement).",
        _MYSQL,
        engines=_ON_MYSQL,
        requires=("tracked",),
        excludes=("untracked", "user", "local"),
    ),
    # SETs on PostgreSQL: every SET pins; some variables have a better home than InitQuery.
    DigestHint(
        "`SET search_path` pins on PostgreSQL: make it the role's default (`ALTER ROLE <app_user> SET search_path "
        "= ...`) or put it in the proxy's initialization query (InitQuery) where your proxy supports it, and stop "
        "the client sending it.",
        _POSTGRESQL,
        engines=_ON_POSTGRESQL,
        variable="search_path",
        source=PG_ALTER_ROLE_DOC,
    ),
    DigestHint(
        "`SET client_encoding` pins on PostgreSQL: RDS databases default to UTF8, so stop the client sending it "
        "(Ruby pg / ActiveRecord send it for `encoding:` in database.yml) or set it per role "
        "(`ALTER ROLE <app_user> SET client_encoding = 'UTF8'`).",
        _POSTGRESQL,
        engines=_ON_POSTGRESQL,
        variable="client_encoding",
        source=PG_ALTER_ROLE_DOC,
    ),
    DigestHint(
        "`SET NAMES` pins on PostgreSQL (it is an alias of client_encoding): drop the client's charset option "
        "(e.g. Doctrine's `charset`) when the database is already UTF8, or set it per role.",
        _POSTGRESQL,
        engines=_ON_POSTGRESQL,
        variable="names",
    ),
    DigestHint(
        "`SET TIME ZONE` pins on PostgreSQL: make the zone the role's default (`ALTER ROLE <app_user> SET timezone "
        "TO 'UTC'`) so the client does not need to set it (Django does when the server's zone differs).",
        _POSTGRESQL,
        engines=_ON_POSTGRESQL,
        variable="timezone",
        source=PG_ALTER_ROLE_DOC,
    ),
    DigestHint(
        "`SET statement_timeout` pins on PostgreSQL: set it per role (`ALTER ROLE <app_user> SET "
        "statement_timeout = ...`) or in the parameter group instead.",
        _POSTGRESQL,
        engines=_ON_POSTGRESQL,
        variable="statement_timeout",
        source=PG_ALTER_ROLE_DOC,
    ),
    DigestHint(
        "`SET {other_pg_variables}` pins on PostgreSQL (every SET does): make it the role's default "
        "(`ALTER ROLE <app_user> SET ...`) or move it to the proxy's initialization query (InitQuery) where your "
        "proxy supports it.",
        _POSTGRESQL,
        engines=_ON_POSTGRESQL,
        requires=("other_pg_variables",),
        source=PG_ALTER_ROLE_DOC,
    ),
    # SETs when the engine is unknown (or has no specific advice).
    DigestHint(
        "This session SETs {variables}: make them defaults (parameter group, role or login) or move identical SETs "
        "into InitQuery.",
        engines=_NO_ENGINE,
        requires=("variables",),
        source=POOL_CONFIG_DOC,
    ),
    # Session-level locks: the first row whose words the digest contains.
    DigestHint(
        "`pg_advisory_lock` holds the lock for the whole session: use `pg_advisory_xact_lock` (released at commit, "
        "does not pin) inside a transaction.",
        _POSTGRESQL,
        kinds=_LOCK,
        contains=("advisory_lock",),
        source=PG_ADVISORY_LOCK_DOC,
    ),
    DigestHint(
        "`GET_LOCK()` is a session-level named lock: use row locks (`SELECT ... FOR UPDATE`) in a transaction, or "
        "take named locks on a direct database connection.",
        _MYSQL,
        kinds=_LOCK,
        contains=("get_lock",),
        lacks=("advisory_lock",),
    ),
    DigestHint(
        "`LOCK TABLES` / `FLUSH TABLES WITH READ LOCK` lock for the session: use transactions with "
        "`SELECT ... FOR UPDATE` instead.",
        _MYSQL,
        kinds=_LOCK,
        lacks=("advisory_lock", "get_lock"),
    ),
    DigestHint(
        "`DISCARD`/`RESET ALL` discards session state and pins; it is usually a client pool's reset query when a "
        "connection is returned: turn that off (e.g. Npgsql `No Reset On Close=true`, asyncpg's `reset=`); the "
        "proxy already isolates sessions.",
        kinds=frozenset({dg.RESET}),
    ),
    DigestHint(
        "`RESET <parameter>` pins on PostgreSQL like a SET does (resetting a parameter to its default): stop "
        "changing the parameter per session — make the value the role's default (`ALTER ROLE <app_user> SET ...`) "
        "— and the RESET is no longer needed.",
        _POSTGRESQL,
        kinds=frozenset({dg.RESET_PARAMETER}),
        engines=frozenset({_POSTGRESQL, None}),  # MySQL's RESET (MASTER, QUERY CACHE, ...) is another statement
        source=PG_ALTER_ROLE_DOC,
    ),
    DigestHint(
        "`LISTEN` needs its own connection: point the listener at the database endpoint, not the proxy.",
        _POSTGRESQL,
        kinds=frozenset({dg.LISTEN}),
    ),
    DigestHint(
        "`nextval()`/`setval()` pin: let an identity/serial column default assign ids and use "
        "`INSERT ... RETURNING id`.",
        _POSTGRESQL,
        kinds=frozenset({dg.SEQUENCE}),
    ),
    DigestHint(
        "`LOAD` affects one connection: add the library to `shared_preload_libraries` or "
        "`session_preload_libraries` in the parameter group.",
        _POSTGRESQL,
        kinds=frozenset({dg.LOAD}),
    ),
    DigestHint(
        "`DECLARE ... CURSOR` pins: page with keyset queries or fetch client-side instead.",
        kinds=frozenset({dg.CURSOR}),
    ),
    DigestHint(
        "`CREATE TEMP...` pins: use a CTE (`WITH ...`) or a regular staging table.",
        kinds=frozenset({dg.CREATE_TEMP}),
    ),
    DigestHint(
        "The statement carries a `/*! ... */` executable comment: strip it (often copied from mysqldump output).",
        _MYSQL,
        kinds=frozenset({dg.EXECUTABLE_COMMENT}),
    ),
    DigestHint(
        "SQL-level `PREPARE`/`EXECUTE` pins: send the statement directly with parameters instead.",
        kinds=frozenset({dg.PREPARE, dg.EXECUTE}),
    ),
    # Drivers' protocol-level statements no longer pin on PostgreSQL; their SQL-level cleanup does.
    DigestHint(
        "SQL-level `DEALLOCATE` pins; it usually comes from a driver or ORM freeing its prepared statements "
        "(Prisma with `pgbouncer=true`, psycopg on rollback, ActiveRecord's statement pool, pdo_pgsql): see the "
        "driver hints rather than turning prepared statements off.",
        kinds=frozenset({dg.DEALLOCATE}),
        source=PRISMA_PGBOUNCER_RDS_PROXY,
    ),
    DigestHint(
        "A parse message no longer pins on current proxies (extended-query multiplexing since November 2023); "
        "only the SQL-level statements in this digest do.",
        _POSTGRESQL,
        kinds=frozenset({dg.PREPARE, dg.EXECUTE, dg.DEALLOCATE}),
        engines=_ON_POSTGRESQL,
        source=EXTENDED_QUERY_BLOG,
    ),
)

_VARIABLES_WITH_ROWS = frozenset(row.variable for row in DIGEST_HINTS if row.variable)


@dataclass(frozen=True)
class _Facts:
    """What the rows' conditions and placeholders refer to, derived once from a digest's analysis.

    The fields are what ``requires``/``excludes`` name; :meth:`placeholders` gives the ``{placeholder}`` texts.
    """

    variables: tuple[str, ...]  # every SET variable, in statement order
    user: tuple[str, ...]  # MySQL user variables (``@x``)
    tracked: tuple[str, ...]  # MySQL variables the proxy tracks
    untracked: tuple[str, ...]  # variables whose SET pins
    next_transaction: tuple[str, ...]  # `SET TRANSACTION` without SESSION
    local: tuple[str, ...]  # `SET LOCAL` variables
    other_pg_variables: tuple[str, ...]  # SET variables without a row of their own

    @classmethod
    def of(cls, info: dg.DigestInfo) -> _Facts:
        distinct = tuple(dict.fromkeys(info.set_names))
        return cls(
            variables=info.set_names,
            user=info.user_variables,
            tracked=info.tracked,
            untracked=info.untracked,
            next_transaction=tuple(v.name for v in info.variables if v.scope == dg.NEXT_TRANSACTION),
            local=tuple(v.name for v in info.variables if v.scope == dg.LOCAL),
            other_pg_variables=tuple(n for n in distinct if n not in _VARIABLES_WITH_ROWS),
        )

    def placeholders(self) -> dict[str, str]:
        return {
            "variables": _names(self.variables),
            "user": _names(self.user),
            "user_is_are": _is_are(self.user),
            "tracked": _names(self.tracked),
            "tracked_is_are": _is_are(self.tracked),
            "tracked_its_their": _its_their(self.tracked),
            "untracked": _names(self.untracked),
            "untracked_it_them": "it" if len(self.untracked) == 1 else "them",
            # Shown inside one `SET ...` code span, so not quoted one by one.
            "other_pg_variables": ", ".join(self.other_pg_variables),
        }

    def holds(self, row: DigestHint) -> bool:
        return all(getattr(self, name) for name in row.requires) and not any(
            getattr(self, name) for name in row.excludes
        )


def _applies(
    row: DigestHint, info: dg.DigestInfo, facts: _Facts, engine: EngineFamily | None, drivers: Sequence[str]
) -> bool:
    lowered = info.digest.lower()
    return (
        (not row.kinds or not row.kinds.isdisjoint(info.kinds))
        and (not row.engines or engine in row.engines)
        and (not row.drivers or not row.drivers.isdisjoint(drivers))
        and facts.holds(row)
        and (not row.contains or any(word in lowered for word in row.contains))
        and not any(word in lowered for word in row.lacks)
        and (row.variable is None or row.variable in facts.variables)
    )


def _digest_hints(info: dg.DigestInfo, engine: EngineFamily | None, drivers: Sequence[str]) -> list[Hint]:
    """The :data:`DIGEST_HINTS` rows that apply to this statement, in table order."""
    facts = _Facts.of(info)
    rows = [row for row in DIGEST_HINTS if _applies(row, info, facts, engine, drivers)]
    by_variable = {row.variable: row for row in rows if row.variable}
    first_variable_row = next((row for row in rows if row.variable), None)
    ordered: list[DigestHint] = []
    for row in rows:
        if row.variable is None:
            ordered.append(row)
        elif row is first_variable_row:
            # Per-variable advice follows the statement's order, not the table's.
            ordered.extend(by_variable[name] for name in dict.fromkeys(facts.variables) if name in by_variable)
    words = facts.placeholders()
    return [Hint(row.text.format_map(words), _row_scope(row, engine, drivers), row.source) for row in ordered]


def _row_scope(row: DigestHint, engine: EngineFamily | None, drivers: Sequence[str]) -> str:
    if row.scope is None and row.drivers:
        return next(name for name in drivers if name in row.drivers)
    return _scope(row.scope or engine)


def hints_for(
    reason: str,
    engine: EngineFamily | None,
    digest: str | None = None,
    pool: PoolConfig | None = None,
    drivers: Sequence[str] = (),
) -> list[Hint]:
    """Hints for a reason code, most specific first, without duplicates.

    With no `engine`, the digest's spelling (``$1`` vs ``?``) decides; failing that a reason that
    exists on one engine only implies it; otherwise engine hints of every engine the reason
    applies to are included (each labelled with its scope). With no `drivers`, hints for every
    driver that works with the engine are included.
    """
    item = entry(reason)
    info = dg.analyze_digest(digest, engine) if digest else None
    resolved = engine or (info.engine if info else None) or _single_engine(item)
    engines = (resolved,) if resolved else tuple(sorted(item.engines))
    client_drivers = _driver_names(drivers, resolved)

    digest_hints = _digest_hints(info, resolved, client_drivers) if info is not None else []
    engine_hints = [
        _hint(advice, family.value)
        for family in engines
        if family in item.engines or family in item.engine_hints
        for advice in item.engine_hints.get(family, ())
    ]
    driver_hints = [
        _hint(advice, name)
        for name in client_drivers
        if item.driver_applies(name, resolved)
        for advice in item.driver_hints.get(name, ())
    ]
    general = [_hint(advice, GENERAL) for advice in item.hints]
    if resolved is None:
        # Engine unknown: lead with what holds on every engine rather than one engine's advice.
        hints = digest_hints + general + engine_hints + driver_hints
    else:
        hints = digest_hints + engine_hints + driver_hints + general
    hints = _apply_pool(hints, item, resolved, info, pool)
    return _dedupe(hints)


def top_hint(
    reason: str,
    engine: EngineFamily | None,
    digest: str | None = None,
    pool: PoolConfig | None = None,
    drivers: Sequence[str] = (),
) -> str | None:
    """The single most specific hint's text (for tables and alert summaries)."""
    hints = hints_for(reason, engine, digest, pool, drivers)
    return hints[0].text if hints else None


def _hint(advice: Advice, scope: str) -> Hint:
    return Hint(advice.text, scope, advice.source)


def _single_engine(item: ReasonEntry) -> EngineFamily | None:
    return next(iter(item.engines)) if len(item.engines) == 1 else None


def _driver_names(drivers: Sequence[str], engine: EngineFamily | None) -> list[str]:
    if drivers:
        names = (driver_name(d) for d in drivers)
        return list(dict.fromkeys(n for n in names if n is not None))
    return [name for name, d in DRIVERS.items() if engine is None or engine in d.engines]


def _scope(engine: EngineFamily | None) -> str:
    return engine.value if engine else GENERAL


def _apply_pool(
    hints: list[Hint],
    item: ReasonEntry,
    engine: EngineFamily | None,
    info: dg.DigestInfo | None,
    pool: PoolConfig | None,
) -> list[Hint]:
    """Replace advice to pull a lever the target group has already pulled with what that means."""
    if pool is None:
        return hints
    filters = {f.strip().upper() for f in pool.session_pinning_filters}
    lead: list[Hint] = []
    if EXCLUDE_VARIABLE_SETS in filters:
        hints = [h for h in hints if EXCLUDE_VARIABLE_SETS not in h.text]
        if item.code in {"session_settings", "user_variable"} and engine in (None, _MYSQL):
            lead.append(
                Hint(
                    "EXCLUDE_VARIABLE_SETS is already enabled on this proxy's target group, yet sessions still pin: "
                    "the statement is more than a plain variable SET (a user variable, `SET TRANSACTION`, a "
                    "multi-statement); fix it in the client.",
                    _MYSQL.value,
                    POOL_CONFIG_DOC,
                )
            )
    if pool.init_query:
        mentions = [h for h in hints if INIT_QUERY in h.text]
        if mentions:
            hints = [h for h in hints if INIT_QUERY not in h.text]
            lead.append(_init_query_hint(pool.init_query, info, engine))
    return lead + hints


# PostgreSQL variables with advice better than "move it to InitQuery".
def _init_query_hint(init_query: str, info: dg.DigestInfo | None, engine: EngineFamily | None) -> Hint:
    shown = init_query if len(init_query) <= 80 else init_query[:77] + "..."
    already = set(dg.analyze_digest(init_query, engine).set_names)
    overlap = [n for n in (info.set_names if info else ()) if n in already]
    if overlap:
        text = (
            f"The proxy's InitQuery (`{shown}`) already sets {_names(overlap)}: the client sending the same SET "
            "again is what pins; remove it from the client."
        )
    else:
        text = (
            f"The proxy already has an InitQuery (`{shown}`): add these settings to it, then remove the SET from "
            "the client (a client-side SET still pins)."
        )
    return Hint(text, _scope(engine), POOL_CONFIG_DOC)


def _dedupe(hints: Iterable[Hint]) -> list[Hint]:
    seen: set[str] = set()
    unique: list[Hint] = []
    for hint in hints:
        if hint.text not in seen:
            seen.add(hint.text)
            unique.append(hint)
    return unique


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _is_are(names: Sequence[str]) -> str:
    return "is" if len(names) == 1 else "are"


def _its_their(names: Sequence[str]) -> str:
    return "its" if len(names) == 1 else "their"
