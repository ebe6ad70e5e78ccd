"""What to change so a pinning reason stops: catalog hints made specific to one proxy.

Order is most specific first: advice derived from the statement digest (which variable was SET,
which lock was taken), then the engine family's hints, then driver/ORM hints, then general ones.
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
    INIT_QUERY,
    POOL_CONFIG_DOC,
    ReasonEntry,
    driver_name,
    entry,
)
from pinwatch.records import EngineFamily, PoolConfig

GENERAL = "general"

_MYSQL = EngineFamily.MYSQL
_POSTGRESQL = EngineFamily.POSTGRESQL

# PostgreSQL variables with advice better than "move it to InitQuery".
_PG_VARIABLE_HINTS = {
    "search_path": (
        "`SET search_path` pins on PostgreSQL: set it in the proxy's initialization query (InitQuery) or the DB "
        "parameter group / role (`ALTER ROLE <app_user> SET search_path = ...`), and stop the client sending it."
    ),
    "client_encoding": (
        "`SET client_encoding` pins on PostgreSQL: RDS databases default to UTF8, so stop the client sending it "
        "(Ruby pg / ActiveRecord send it for `encoding:` in database.yml) or set it per role "
        "(`ALTER ROLE <app_user> SET client_encoding = 'UTF8'`)."
    ),
    "names": (
        "`SET NAMES` pins on PostgreSQL (it is an alias of client_encoding): drop the client's charset option "
        "(e.g. Doctrine's `charset`) when the database is already UTF8, or set it per role."
    ),
    "timezone": (
        "`SET TIME ZONE` pins on PostgreSQL: make the zone the role's default (`ALTER ROLE <app_user> SET timezone "
        "TO 'UTC'`) so the client does not need to set it (Django does when the server's zone differs)."
    ),
    "statement_timeout": (
        "`SET statement_timeout` pins on PostgreSQL: set it per role (`ALTER ROLE <app_user> SET "
        "statement_timeout = ...`) or in the parameter group instead."
    ),
}


@dataclass(frozen=True)
class Hint:
    """One piece of advice. `scope` is ``general``, an engine family value (``MYSQL``) or a driver name."""

    text: str
    scope: str
    doc_url: str | None


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

    hints: list[Hint] = []
    if info is not None:
        hints.extend(_digest_hints(item, info, resolved, pool))
    for family in engines:
        if family in item.engines or family in item.engine_hints:
            hints.extend(Hint(text, family.value, item.doc_url) for text in item.engine_hints.get(family, ()))
    for name in _driver_names(drivers, resolved):
        if item.driver_applies(name, resolved):
            doc = DRIVERS[name].doc_url
            hints.extend(Hint(text, name, doc) for text in item.driver_hints.get(name, ()))
    hints.extend(Hint(text, GENERAL, item.doc_url) for text in item.hints)
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


def _single_engine(item: ReasonEntry) -> EngineFamily | None:
    return next(iter(item.engines)) if len(item.engines) == 1 else None


def _driver_names(drivers: Sequence[str], engine: EngineFamily | None) -> list[str]:
    if drivers:
        names = (driver_name(d) for d in drivers)
        return list(dict.fromkeys(n for n in names if n is not None))
    return [name for name, d in DRIVERS.items() if engine is None or engine in d.engines]


def _scope(engine: EngineFamily | None) -> str:
    return engine.value if engine else GENERAL


def _digest_hints(
    item: ReasonEntry, info: dg.DigestInfo, engine: EngineFamily | None, pool: PoolConfig | None
) -> list[Hint]:
    """Advice that names the statement: which variable, which lock, which reset query."""
    hints: list[Hint] = []
    doc = item.doc_url
    scope = _scope(engine)
    if info.variables:
        if engine is _MYSQL:
            hints.extend(_mysql_set_hints(info, doc, pool))
        elif engine is _POSTGRESQL:
            hints.extend(_postgres_set_hints(info, doc))
        else:
            names = ", ".join(f"`{n}`" for n in info.set_names)
            hints.append(
                Hint(
                    f"This session SETs {names}: move identical SETs into InitQuery or make them defaults.", scope, doc
                )
            )
    kinds = set(info.kinds)
    lowered = info.digest.lower()
    if dg.LOCK in kinds:
        if "advisory_lock" in lowered:
            hints.append(
                Hint(
                    "`pg_advisory_lock` holds the lock for the whole session: use `pg_advisory_xact_lock` (released "
                    "at commit, does not pin) inside a transaction.",
                    _POSTGRESQL.value,
                    doc,
                )
            )
        elif "get_lock" in lowered:
            hints.append(
                Hint(
                    "`GET_LOCK()` is a session-level named lock: use row locks (`SELECT ... FOR UPDATE`) in a "
                    "transaction, or take named locks on a direct database connection.",
                    _MYSQL.value,
                    doc,
                )
            )
        else:
            hints.append(
                Hint(
                    "`LOCK TABLES` / `FLUSH TABLES WITH READ LOCK` lock for the session: use transactions with "
                    "`SELECT ... FOR UPDATE` instead.",
                    _MYSQL.value,
                    doc,
                )
            )
    if dg.RESET in kinds:
        hints.append(
            Hint(
                "The client pool runs `DISCARD ALL`/`RESET ALL` when it returns a connection: turn that reset query "
                "off (e.g. Npgsql `No Reset On Close=true`); the proxy already isolates sessions.",
                scope,
                doc,
            )
        )
    if dg.LISTEN in kinds:
        hints.append(
            Hint(
                "`LISTEN` needs its own connection: point the listener at the database endpoint, not the proxy.",
                _POSTGRESQL.value,
                doc,
            )
        )
    if dg.SEQUENCE in kinds:
        hints.append(
            Hint(
                "`nextval()`/`setval()` pin: let an identity/serial column default assign ids and use "
                "`INSERT ... RETURNING id`.",
                _POSTGRESQL.value,
                doc,
            )
        )
    if dg.LOAD in kinds:
        hints.append(
            Hint(
                "`LOAD` affects one connection: add the library to `shared_preload_libraries` or "
                "`session_preload_libraries` in the parameter group.",
                _POSTGRESQL.value,
                doc,
            )
        )
    if dg.CURSOR in kinds:
        hints.append(
            Hint("`DECLARE ... CURSOR` pins: page with keyset queries or fetch client-side instead.", scope, doc)
        )
    if dg.CREATE_TEMP in kinds:
        hints.append(Hint("`CREATE TEMP...` pins: use a CTE (`WITH ...`) or a regular staging table.", scope, doc))
    if dg.EXECUTABLE_COMMENT in kinds:
        hints.append(
            Hint(
                "The statement carries a `/*! ... */` executable comment: strip it (often copied from mysqldump output).",
                _MYSQL.value,
                doc,
            )
        )
    if kinds & {dg.PREPARE, dg.EXECUTE, dg.DEALLOCATE}:
        hints.append(
            Hint("SQL-level `PREPARE`/`EXECUTE` pins: send the statement directly with parameters instead.", scope, doc)
        )
    return hints


def _mysql_set_hints(info: dg.DigestInfo, doc: str, pool: PoolConfig | None) -> list[Hint]:
    scope = _MYSQL.value
    hints: list[Hint] = []
    user = info.user_variables
    untracked = info.untracked
    tracked = info.tracked
    if user:
        hints.append(
            Hint(
                f"{_names(user)} {_is_are(user)} a MySQL user variable: user variables always pin. Pass the value as a "
                "query parameter or compute it inside one statement.",
                scope,
                doc,
            )
        )
    if untracked:
        tracked_part = (
            f"{_names(tracked)} {_is_are(tracked)} tracked by the proxy (no pin on {_its_their(tracked)} own); "
            if tracked
            else ""
        )
        next_tx = [v.name for v in info.variables if v.scope == dg.NEXT_TRANSACTION]
        if next_tx:
            hints.append(
                Hint(
                    "`SET TRANSACTION ...` without SESSION applies to the next transaction only and pins: use "
                    "`SET SESSION TRANSACTION ...` (tracked) or `START TRANSACTION READ ONLY`.",
                    scope,
                    doc,
                )
            )
        hints.append(
            Hint(
                f"{tracked_part}the culprit is {_names(untracked)}: the proxy does not track "
                f"{'it' if len(untracked) == 1 else 'them'}, so the SET pins. Set "
                f"{'it' if len(untracked) == 1 else 'them'} in the DB parameter group or the initialization query "
                "(InitQuery), or stop setting it per session.",
                scope,
                doc,
            )
        )
    elif tracked and not user:
        local = [v.name for v in info.variables if v.scope == dg.LOCAL]
        detail = " (`SET LOCAL` does not pin on MySQL)" if local else ""
        hints.append(
            Hint(
                f"{_names(tracked)} {_is_are(tracked)} tracked by the proxy and should not pin on {_its_their(tracked)} "
                f"own{detail}; look for another statement in the same session (a user variable, a prepared statement).",
                scope,
                doc,
            )
        )
    return hints


def _postgres_set_hints(info: dg.DigestInfo, doc: str) -> list[Hint]:
    scope = _POSTGRESQL.value
    hints: list[Hint] = []
    generic: list[str] = []
    for name in dict.fromkeys(info.set_names):
        specific = _PG_VARIABLE_HINTS.get(name)
        if specific:
            hints.append(Hint(specific, scope, doc))
        else:
            generic.append(name)
    if generic:
        hints.append(
            Hint(
                f"`SET {', '.join(generic)}` pins on PostgreSQL (every SET does): move it to the proxy's initialization "
                "query (InitQuery) or make it the role's default (`ALTER ROLE <app_user> SET ...`).",
                scope,
                doc,
            )
        )
    return hints


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
