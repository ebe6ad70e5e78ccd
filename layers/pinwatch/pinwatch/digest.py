"""Read a pin line's statement digest: what kind of statement it is and which variables it sets.

The digest is the proxy's normalised statement text (literals replaced by ``$n`` on PostgreSQL and
``?`` on MySQL). This is a small, forgiving reader for the statements that pin — SET in its many
spellings, set_config(), PREPARE, LISTEN, locks, … — not a SQL parser: what it does not
understand it reports as ``query``.

For MySQL it splits the variables a SET touches into those the proxy *tracks* (it reuses the
connection only among sessions with equal values — not the culprit) and the untracked ones,
which are what pinned the session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pinwatch.records import EngineFamily

# Variables RDS Proxy tracks for the MySQL family instead of pinning (AWS "Avoiding pinning", MySQL).
MYSQL_TRACKED_VARIABLES = frozenset(
    {
        "autocommit",
        "auto_increment_increment",
        "character set",
        "character_set_client",
        "character_set_database",
        "character_set_filesystem",
        "character_set_connection",
        "character_set_results",
        "character_set_server",
        "collation_connection",
        "collation_database",
        "collation_server",
        "interactive_timeout",
        "names",
        "net_write_timeout",
        "query_cache_type",
        "session_track_schema",
        "sql_mode",
        "time_zone",
        "transaction_isolation",
        "tx_isolation",
        "transaction_read_only",
        "tx_read_only",
        "wait_timeout",
    }
)

# Statement kinds reported in DigestInfo.kinds.
SET = "set"
SET_CONFIG = "set_config"
PREPARE = "prepare"
EXECUTE = "execute"
DEALLOCATE = "deallocate"
CREATE_TEMP = "create_temp"
LOCK = "lock"
LISTEN = "listen"
RESET = "reset"  # DISCARD (any form) or RESET ALL: discarding session state
RESET_PARAMETER = "reset_parameter"  # RESET <name>: resetting one parameter to its default
CURSOR = "cursor"
LOAD = "load"
SEQUENCE = "sequence"
EXECUTABLE_COMMENT = "executable_comment"
USE = "use"
QUERY = "query"

# Scopes of SetVariable.scope.
SESSION = "session"
GLOBAL = "global"
LOCAL = "local"
USER = "user"
NEXT_TRANSACTION = "next_transaction"


@dataclass(frozen=True, slots=True)
class SetVariable:
    """One variable a SET (or set_config) assigns.

    `name` is lower-case without ``@@``/scope prefixes (``names``, ``search_path``, ``sql_mode``);
    user variables keep their ``@`` (``@x``). `tracked` is only ever True for the MySQL family.
    `pins` is whether setting it pins the session on the digest's engine.
    """

    name: str
    scope: str
    tracked: bool
    pins: bool


@dataclass(frozen=True, slots=True)
class DigestInfo:
    digest: str
    engine: EngineFamily | None  # the engine the analysis assumed (given, or guessed from the text)
    engine_guessed: bool
    kinds: tuple[str, ...]  # one per statement, in order
    variables: tuple[SetVariable, ...]

    @property
    def kind(self) -> str:
        """The most telling statement kind: the first that is not a plain query."""
        return next((k for k in self.kinds if k != QUERY), QUERY)

    @property
    def tracked(self) -> tuple[str, ...]:
        """MySQL variables the proxy tracks (they are not what pinned)."""
        return tuple(v.name for v in self.variables if v.tracked)

    @property
    def untracked(self) -> tuple[str, ...]:
        """Variables whose SET pins the session: the culprits."""
        return tuple(v.name for v in self.variables if v.pins and v.scope != USER)

    @property
    def user_variables(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables if v.scope == USER)

    @property
    def set_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)


def guess_engine(digest: str) -> EngineFamily | None:
    """The engine family a digest's spelling points to (``$1`` placeholders → PostgreSQL, ``?`` → MySQL)."""
    # `pinwatch analyze` asks once per pin line, and an application's statements repeat; long
    # digests (rare) are not kept, so the cache stays small.
    return _guess_engine_memo(digest) if len(digest) <= _GUESS_MEMO_CHARS else _guess_engine(digest)


def _guess_engine(digest: str) -> EngineFamily | None:
    if _PG_HINT.search(digest):
        return EngineFamily.POSTGRESQL
    if _MYSQL_HINT.search(digest):
        return EngineFamily.MYSQL
    if _MSSQL_HINT.search(digest):
        return EngineFamily.SQLSERVER
    return None


_GUESS_MEMO_CHARS = 2048
_guess_engine_memo = lru_cache(maxsize=8192)(_guess_engine)

# Reason wordings that only one engine family produces (the PostgreSQL extended protocol's Parse).
_REASON_ENGINE_WORDS = (("parse message", EngineFamily.POSTGRESQL),)


def guess_engine_from(reason_text: str | None, digest: str | None) -> EngineFamily | None:
    """The engine family a pin line points to: its digest's spelling first, then its reason's wording."""
    if digest:
        engine = guess_engine(digest)
        if engine is not None:
            return engine
    if reason_text:
        lowered = reason_text.lower()
        for words, family in _REASON_ENGINE_WORDS:
            if words in lowered:
                return family
    return None


def analyze_digest(digest: str, engine: EngineFamily | None) -> DigestInfo:
    """Statement kinds and SET variables of a digest; `engine` None means guess it from the text."""
    guessed = engine is None
    effective = engine if engine is not None else guess_engine(digest)
    kinds: list[str] = []
    variables: list[SetVariable] = []
    for statement in split_statements(digest):
        kind, names = _statement(statement)
        kinds.append(kind)
        variables.extend(_variable(name, scope, effective) for name, scope in names)
    return DigestInfo(
        digest=digest,
        engine=effective,
        engine_guessed=guessed and effective is not None,
        kinds=tuple(kinds),
        variables=tuple(variables),
    )


def split_statements(sql: str) -> list[str]:
    """Split on ``;`` outside quotes, comments and parentheses; empty statements are dropped."""
    return [s.strip() for s in _split_top_level(sql, ";") if s.strip()]


_PG_HINT = re.compile(r"\$\d|::|\bsearch_path\b|\bclient_encoding\b|\bset_config\s*\(|\bpg_\w+\s*\(", re.I)
_MYSQL_HINT = re.compile(r"\?|`|@@|/\*m?!|\bget_lock\s*\(|\block\s+tables\b|\bsql_mode\b", re.I)
_MSSQL_HINT = re.compile(r"@p\d|\bnocount\b|\bidentity_insert\b|\bxact_abort\b|\bsp_\w+", re.I)

_SET_PREFIX = re.compile(r"set\s+", re.I)
_TRANSACTION_FORM = re.compile(r"transaction\s+(?:isolation|read)\b")
_EXEC_COMMENT = re.compile(r"/\*m?!", re.I)
_IDENTIFIER = re.compile(r"[`\"]?([\w$.]+)[`\"]?")
_KEYWORD_FORMS = re.compile(
    r"(names|charset|character\s+set|time\s+zone|schema|role|session\s+authorization|authorization)\b(?!\s*(?:=|:=|\bto\b))"
)
_KEYWORD_VARIABLES = {
    "names": "names",
    "charset": "character set",
    "character set": "character set",
    "time zone": "timezone",
    "schema": "search_path",
    "role": "role",
    "session authorization": "session_authorization",
    "authorization": "session_authorization",
}
_SCOPE_WORD = re.compile(
    r"(session|global|local|persist_only|persist)\b(?!\s*(?:\.|=|:=|\bto\b))\s*",
    re.I,
)
_AT_SCOPE = re.compile(r"@@(?:(session|global|local|persist_only|persist)\.)?", re.I)
_SET_CONFIG = re.compile(r"\bset_config\s*\(\s*(?:'([^']*)'|\$\d+|\?)", re.I)

# (kind, pattern) for statements that are not SETs, first match wins; run on the lower-cased statement.
_KIND_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        (EXECUTABLE_COMMENT, r"^/\*m?!"),
        (RESET, r"^(discard\b|reset\s+all\b)"),
        (RESET_PARAMETER, r"^reset\b"),
        # Only LISTEN registers a channel; UNLISTEN (e.g. in a pool's reset query) undoes it and is no reason to pin.
        (LISTEN, r"^listen\b"),
        (LOAD, r"^load\b(?!\s+data\b)"),
        (CURSOR, r"^declare\b.*\bcursor\b"),
        (CREATE_TEMP, r"^create\s+(global\s+|local\s+)?(temp|temporary)\s+(table|sequence|view)\b"),
        (LOCK, r"^lock\s+tables?\b|^flush\s+tables\s+with\s+read\s+lock\b"),
        (LOCK, r"\bpg_(try_)?advisory_lock(_shared)?\s*\(|\bget_lock\s*\("),
        (SEQUENCE, r"\b(nextval|setval)\s*\("),
        (PREPARE, r"^prepare\b"),
        (EXECUTE, r"^execute\b"),
        (DEALLOCATE, r"^deallocate\b"),
        (USE, r"^use\b"),
    )
)


def _statement(statement: str) -> tuple[str, list[tuple[str, str]]]:
    """A statement's kind and, for SETs, its ``(name, scope)`` pairs."""
    statement = _strip_leading_comments(statement)
    lowered = statement.lower()
    set_prefix = _SET_PREFIX.match(statement)
    if set_prefix:
        return SET, _set_names(statement[set_prefix.end() :])
    if "set_config" in lowered:
        names = _set_config_names(statement)
        if names:
            return SET_CONFIG, names
    for kind, rx in _KIND_RULES:
        if rx.search(lowered):
            return kind, []
    return QUERY, []


def _strip_leading_comments(statement: str) -> str:
    """Drop leading ``/* … */`` comments (drivers tag statements with them), but not executable ``/*! … */`` ones."""
    while statement.startswith("/*") and not _EXEC_COMMENT.match(statement):
        end = statement.find("*/")
        if end < 0:
            return statement
        statement = statement[end + 2 :].lstrip()
    return statement


def _set_config_names(statement: str) -> list[tuple[str, str]]:
    return [((m.group(1) or "?").lower(), SESSION) for m in _SET_CONFIG.finditer(statement)]


def _set_names(body: str) -> list[tuple[str, str]]:
    """``(name, scope)`` for each assignment of a SET body (everything after the SET keyword)."""
    body = body.strip()
    lowered = body.lower()
    # Forms with their own grammar first.
    if _TRANSACTION_FORM.match(lowered):  # MySQL: applies to the next transaction only
        return [(_transaction_variable(lowered), NEXT_TRANSACTION)]
    scoped_transaction = re.match(r"(session|global)\s+transaction\s+(?:isolation|read)\b", lowered)
    if scoped_transaction:
        return [(_transaction_variable(lowered), scoped_transaction.group(1))]
    if lowered.startswith("session characteristics"):  # PostgreSQL
        return [("default_transaction_isolation", SESSION)]
    pairs: list[tuple[str, str]] = []
    default_scope = SESSION
    for part in _split_top_level(body, ","):
        item = part.strip()
        if not item:
            continue
        scope = default_scope
        scope_match = _SCOPE_WORD.match(item)
        if scope_match:
            scope = _scope(scope_match.group(1))
            # `SET GLOBAL a=1, b=2`: later items without a keyword keep the previous scope (MySQL).
            default_scope = scope
            item = item[scope_match.end() :]
        pair = _assignment(item, scope)
        if pair:
            pairs.append(pair)
    return pairs


def _assignment(item: str, scope: str) -> tuple[str, str] | None:
    lowered = item.lower()
    keyword = _KEYWORD_FORMS.match(lowered)
    if keyword:  # SET NAMES x, SET CHARACTER SET x, SET TIME ZONE x, SET SCHEMA 'x', …: no `=`
        return _KEYWORD_VARIABLES[re.sub(r"\s+", " ", keyword.group(1))], scope
    at_scope = _AT_SCOPE.match(item)
    if at_scope:
        if at_scope.group(1):
            scope = _scope(at_scope.group(1))
        item = item[at_scope.end() :]
    elif item.startswith("@"):
        user = _IDENTIFIER.match(item, 1)
        return (f"@{user.group(1).lower()}", USER) if user else None
    name = _IDENTIFIER.match(item)
    return (name.group(1).lower(), scope) if name else None


def _scope(word: str) -> str:
    word = word.lower()
    return GLOBAL if word.startswith("persist") else word


def _transaction_variable(lowered: str) -> str:
    return "transaction_read_only" if "read " in lowered and "isolation" not in lowered else "transaction_isolation"


def _variable(name: str, scope: str, engine: EngineFamily | None) -> SetVariable:
    if engine is EngineFamily.MYSQL:
        if scope == USER:
            return SetVariable(name, scope, tracked=False, pins=True)
        if scope == LOCAL:
            return SetVariable(name, scope, tracked=False, pins=False)  # AWS: SET LOCAL does not pin on MySQL
        tracked = scope == SESSION and name in MYSQL_TRACKED_VARIABLES
        return SetVariable(name, scope, tracked=tracked, pins=not tracked)
    # PostgreSQL and SQL Server track nothing: every SET pins.
    return SetVariable(name, scope, tracked=False, pins=True)


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split `text` on `separator` where it is not inside quotes, comments or parentheses."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"`":
            end = text.find(ch, i + 1)
            # A doubled quote is an escaped quote: keep scanning past it.
            while end >= 0 and end + 1 < n and text[end + 1] == ch:
                end = text.find(ch, end + 2)
            i = n if end < 0 else end + 1
            continue
        if ch == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if ch == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts
