"""The pinning reason catalog: what each reason code means and how to make it stop.

Pure data. Each :class:`ReasonEntry` says which engine families it applies to, why it pins, and
hints at three levels: general, per engine family, per driver/ORM (keys of :data:`DRIVERS`).
Engine-specific levers stay in ``engine_hints`` — e.g. the ``EXCLUDE_VARIABLE_SETS`` session
pinning filter exists only for the MySQL family and is never offered for PostgreSQL.

Every hint is an :class:`Advice`: its text and the pages it rests on (AWS or driver documentation,
or an issue thread where a maintainer or user showed the behaviour). What no source confirms is
marked "(unverified)" in the text itself, so readers see it wherever the hint is shown.

Informational entries (``pins=False``) describe statements that do *not* pin but still matter:
the classifier never files a pin under them, and ``pinwatch reasons`` shows them as notes.

To add a reason: add a :class:`ReasonEntry` to :data:`CATALOG` and a rule to
:data:`pinwatch.classify.REASON_RULES` (and/or ``DIGEST_RULES``); the catalog tests check the entry
is complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pinwatch.records import EngineFamily

MYSQL = EngineFamily.MYSQL
POSTGRESQL = EngineFamily.POSTGRESQL
SQLSERVER = EngineFamily.SQLSERVER
ALL_ENGINES = frozenset(EngineFamily)

# AWS pages.
PINNING_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-pinning.html"
POOL_CONFIG_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ConnectionPoolConfiguration.html"
# RDS Proxy multiplexes PostgreSQL extended-query-protocol prepared statements since 2023-11-10.
EXTENDED_QUERY_NEWS = (
    "https://aws.amazon.com/about-aws/whats-new/2023/11/amazon-rds-proxy-postgresql-extended-query-protocol/"
)
EXTENDED_QUERY_BLOG = "https://aws.amazon.com/blogs/database/amazon-rds-proxy-multiplexing-support-for-postgresql-extended-query-protocol/"
# Engine documentation.
PG_ALTER_ROLE_DOC = "https://www.postgresql.org/docs/current/sql-alterrole.html"
PG_ADVISORY_LOCK_DOC = "https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS"
# Driver and ORM sources (documentation, or the thread that shows the behaviour).
CONNECTOR_J_PREPARED_DOC = "https://dev.mysql.com/doc/connector-j/en/connector-j-connp-props-prepared-statements.html"
PGJDBC_DOC = "https://jdbc.postgresql.org/documentation/use/"
NPGSQL_DOC = "https://www.npgsql.org/doc/connection-string-parameters.html"
ASYNCPG_RESET_ISSUE = "https://github.com/MagicStack/asyncpg/issues/1153"
ASYNCPG_RESET_ARGUMENT = "https://github.com/MagicStack/asyncpg/pull/1146"
PSYCOPG_PREPARE_DOC = "https://www.psycopg.org/psycopg3/docs/advanced/prepare.html"
PSYCOPG_DEALLOCATE_ISSUE = "https://github.com/psycopg/psycopg/issues/1105"
SQLALCHEMY_PG_DOC = "https://docs.sqlalchemy.org/en/20/dialects/postgresql.html"
DJANGO_DB_DOC = "https://docs.djangoproject.com/en/stable/ref/databases/"
PRISMA_AWS_DOC = "https://www.prisma.io/docs/orm/v7/prisma-client/deployment/caveats-when-deploying-to-aws-platforms"
PRISMA_PGBOUNCER_RDS_PROXY = "https://github.com/prisma/prisma-engines/pull/5016"
PRISMA_DEALLOCATE_ALL_DOC = "https://github.com/prisma/web/pull/6346"
PRISMA_DEALLOCATE_ALL_MAINTAINER = "https://github.com/pgbouncer/pgbouncer/issues/974"
PRISMA_SET_ISSUE = "https://github.com/prisma/orm/issues/5866"
PRISMA_SEARCH_PATH_PR = "https://github.com/prisma/quaint/pull/298"
RAILS_DB_DOC = "https://guides.rubyonrails.org/configuring.html#configuring-a-postgresql-database"
RAILS_SET_ON_CONNECT_ISSUE = "https://github.com/rails-on-services/apartment/issues/438"
PDO_DOC = "https://www.php.net/manual/en/pdo.setattribute.php"
PDO_EMULATION_RFC = "https://wiki.php.net/rfc/debugging_pdo_prepared_statement_emulation"
PDO_PGSQL_DEALLOCATE_PR = "https://github.com/php/php-src/pull/21870"
MYSQL2_PREPARED_DOC = "https://github.com/circuitly/node-mysql2/blob/HEAD/documentation/en/Prepared-Statements.md"
PGX_DOC = "https://pkg.go.dev/github.com/jackc/pgx/v5"
PGX_CLOSE_PR = "https://github.com/jackc/pgx/pull/1797"

EXCLUDE_VARIABLE_SETS = "EXCLUDE_VARIABLE_SETS"
INIT_QUERY = "InitQuery"


@dataclass(frozen=True, init=False)
class Advice:
    """One hint and the pages it rests on, most authoritative first (at least one, each an https URL)."""

    text: str
    sources: tuple[str, ...]

    def __init__(self, text: str, *sources: str) -> None:
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "sources", sources)

    @property
    def source(self) -> str:
        """The page to link when only one fits (alerts, tables)."""
        return self.sources[0]


@dataclass(frozen=True)
class Driver:
    """A client library or ORM that hints can name."""

    name: str
    title: str
    engines: frozenset[EngineFamily]
    doc_url: str


@dataclass(frozen=True)
class ReasonEntry:
    code: str
    title: str
    engines: frozenset[EngineFamily]
    why: str
    hints: tuple[Advice, ...]
    engine_hints: Mapping[EngineFamily, tuple[Advice, ...]] = field(default_factory=dict)
    driver_hints: Mapping[str, tuple[Advice, ...]] = field(default_factory=dict)
    doc_url: str = PINNING_DOC
    # A driver's hints for this reason that apply on some engines only (default: every engine the driver supports).
    driver_hint_engines: Mapping[str, frozenset[EngineFamily]] = field(default_factory=dict)
    # False for notes about statements that do not pin (no pin line is ever filed under them).
    pins: bool = True

    def driver_applies(self, driver: str, engine: EngineFamily | None) -> bool:
        """Whether this reason's hints for `driver` are relevant on `engine` (None: any engine)."""
        if engine is None:
            return True
        engines = self.driver_hint_engines.get(driver) or (
            DRIVERS[driver].engines if driver in DRIVERS else ALL_ENGINES
        )
        return engine in engines

    def all_hints(self) -> tuple[Advice, ...]:
        """Every hint of the entry: general, then per engine, then per driver."""
        return (
            *self.hints,
            *(a for hints in self.engine_hints.values() for a in hints),
            *(a for hints in self.driver_hints.values() for a in hints),
        )


def _drivers(*drivers: Driver) -> Mapping[str, Driver]:
    return MappingProxyType({d.name: d for d in drivers})


DRIVERS: Mapping[str, Driver] = _drivers(
    Driver(
        "mysql-connector-j",
        "MySQL Connector/J (JDBC)",
        frozenset({MYSQL}),
        CONNECTOR_J_PREPARED_DOC,
    ),
    Driver("pgjdbc", "PostgreSQL JDBC (pgjdbc)", frozenset({POSTGRESQL}), PGJDBC_DOC),
    Driver("hibernate", "Hibernate / JPA", ALL_ENGINES, "https://hibernate.org/orm/documentation/"),
    Driver("npgsql", "Npgsql (.NET)", frozenset({POSTGRESQL}), NPGSQL_DOC),
    Driver(
        "asyncpg", "asyncpg", frozenset({POSTGRESQL}), "https://magicstack.github.io/asyncpg/current/api/index.html"
    ),
    Driver("psycopg", "psycopg", frozenset({POSTGRESQL}), PSYCOPG_PREPARE_DOC),
    Driver("sqlalchemy", "SQLAlchemy", ALL_ENGINES, "https://docs.sqlalchemy.org/en/20/dialects/"),
    Driver("django", "Django", frozenset({MYSQL, POSTGRESQL}), DJANGO_DB_DOC),
    Driver("prisma", "Prisma", ALL_ENGINES, PRISMA_AWS_DOC),
    Driver("rails", "Rails (ActiveRecord)", frozenset({MYSQL, POSTGRESQL}), RAILS_DB_DOC),
    Driver("mysql2", "mysql2 (Node.js)", frozenset({MYSQL}), MYSQL2_PREPARED_DOC),
    Driver("pdo", "PHP PDO / Doctrine DBAL", frozenset({MYSQL, POSTGRESQL}), PDO_DOC),
    Driver("pgx", "Go pgx", frozenset({POSTGRESQL}), PGX_DOC),
)

DRIVER_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "connector/j": "mysql-connector-j",
        "connectorj": "mysql-connector-j",
        "connector-j": "mysql-connector-j",
        "mysql-jdbc": "mysql-connector-j",
        "jdbc-mysql": "mysql-connector-j",
        "postgresql-jdbc": "pgjdbc",
        "jdbc-postgresql": "pgjdbc",
        "jpa": "hibernate",
        "psycopg2": "psycopg",
        "psycopg3": "psycopg",
        "activerecord": "rails",
        "active_record": "rails",
        "ruby-pg": "rails",
        "doctrine": "pdo",
        "php": "pdo",
        "node-mysql2": "mysql2",
        "jackc/pgx": "pgx",
        "go-pgx": "pgx",
    }
)


def driver_name(name: str) -> str | None:
    """The catalog's name for a driver/ORM (case-insensitive, common aliases); None if unknown."""
    key = name.strip().lower()
    if key in DRIVERS:
        return key
    return DRIVER_ALIASES.get(key)


def _entries(*entries: ReasonEntry) -> Mapping[str, ReasonEntry]:
    return MappingProxyType({e.code: e for e in entries})


# What still pins PostgreSQL sessions after the November 2023 change (AWS pinning page, PostgreSQL list).
_PG_STILL_PINS = "SQL-level `PREPARE`/`EXECUTE`/`DEALLOCATE`/`DISCARD`"

CATALOG: Mapping[str, ReasonEntry] = _entries(
    ReasonEntry(
        code="session_settings",
        title="Session settings changed (SET)",
        engines=ALL_ENGINES,
        why=(
            "The session changed a variable or configuration parameter the proxy does not track, so later "
            "statements depend on that one database connection. PostgreSQL: every SET and set_config() pins, and "
            "so does resetting a parameter to its default (`RESET <name>`). MySQL: a SET pins unless every "
            "variable in it is on the proxy's tracked list (sql_mode, time_zone, NAMES, autocommit, ...). SQL "
            "Server: SET options such as ANSI_DEFAULTS, IDENTITY_INSERT, NOCOUNT, ROWCOUNT, XACT_ABORT and "
            "STATISTICS pin; the tracked ones (ANSI_NULLS, QUOTED_IDENTIFIER, ...) do not (see `tracked_state`)."
        ),
        hints=(
            Advice(
                "Make the value a default instead of a per-session SET: the DB parameter group, or the role's or "
                "database's default (PostgreSQL `ALTER ROLE <app_user> SET <name> = <value>` / "
                "`ALTER DATABASE <db> SET ...`), then stop sending the SET from the client.",
                PINNING_DOC,
                PG_ALTER_ROLE_DOC,
            ),
            Advice(
                "Move SETs that every connection runs identically into the target group's initialization query "
                "(InitQuery), which the proxy runs on each new database connection, then stop sending them from "
                "the client (PostgreSQL: only where your proxy supports it — see the PostgreSQL hint).",
                POOL_CONFIG_DOC,
            ),
            Advice(
                "Don't move a SET into a stored procedure or function to dodge the pin: the proxy does not inspect "
                "routines, so the changed state goes undetected and can reach other clients on that connection "
                "(`pinwatch reasons stored_routine`).",
                PINNING_DOC,
            ),
        ),
        engine_hints={
            MYSQL: (
                Advice(
                    "MySQL: only untracked variables pin, and one untracked variable in a multi-variable SET pins "
                    "the whole session; keep connect-time SETs to tracked variables (sql_mode, time_zone, NAMES, "
                    "autocommit, transaction_isolation, ...).",
                    PINNING_DOC,
                ),
                Advice(
                    "MySQL family only: the EXCLUDE_VARIABLE_SETS session pinning filter (target group "
                    "ConnectionPoolConfig.SessionPinningFilters) stops SETs from pinning; safe only when the SETs "
                    "are no-ops or every transaction sets the state it relies on.",
                    POOL_CONFIG_DOC,
                ),
            ),
            POSTGRESQL: (
                Advice(
                    "PostgreSQL: every SET, set_config() and RESET pins (the proxy tracks none). Make the value the "
                    "role's or database's default (`ALTER ROLE <app_user> SET <name> = <value>`, "
                    "`ALTER DATABASE <db> SET ...`), which works on any proxy, or the proxy's InitQuery where your "
                    "proxy supports it on PostgreSQL (AWS's 2023 docs said it did not; current support "
                    "unverified); then remove the SET from the client.",
                    PG_ALTER_ROLE_DOC,
                    POOL_CONFIG_DOC,
                ),
            ),
            SQLSERVER: (
                Advice(
                    "SQL Server: avoid per-session SET options that pin (ANSI_DEFAULTS, IDENTITY_INSERT, NOCOUNT, "
                    "ROWCOUNT, XACT_ABORT, STATISTICS, ...); set database or login defaults, or put them in "
                    "InitQuery. The tracked ones (ANSI_NULLS, ANSI_PADDING, QUOTED_IDENTIFIER, TRANSACTION "
                    "ISOLATION LEVEL, ...) don't pin.",
                    PINNING_DOC,
                ),
            ),
        },
        driver_hints={
            "mysql-connector-j": (
                Advice(
                    "Connector/J: `sessionVariables=` makes the driver SET variables on connect; keep it to tracked "
                    "variables or move the values to InitQuery.",
                    "https://dev.mysql.com/doc/connector-j/en/connector-j-connp-props-session.html",
                    PINNING_DOC,
                ),
            ),
            "prisma": (
                Advice(
                    "Prisma (PostgreSQL): make the role's default what Prisma would SET — "
                    "`ALTER ROLE <app_user> SET search_path = <schema>` — and drop `schema=` from the URL: without it "
                    "Prisma leaves the search path alone. Older Prisma versions sent `SET search_path`/`SET NAMES` on "
                    "every new connection; move what remains into the proxy's InitQuery where your proxy supports it.",
                    PRISMA_SEARCH_PATH_PR,
                    PRISMA_SET_ISSUE,
                    PG_ALTER_ROLE_DOC,
                ),
            ),
            "rails": (
                Advice(
                    "ActiveRecord: `encoding`, `schema_search_path` and `variables` in database.yml become SETs on "
                    "connect; drop the ones that match the database defaults and set the rest with `ALTER ROLE`.",
                    RAILS_SET_ON_CONNECT_ISSUE,
                    RAILS_DB_DOC,
                ),
            ),
            "django": (
                Advice(
                    "Django (PostgreSQL) sets the time zone on each new connection when the database's differs from "
                    "Django's (UTC with USE_TZ); `ALTER ROLE <app_user> SET timezone TO 'UTC'` removes it.",
                    DJANGO_DB_DOC + "#optimizing-postgresql-s-configuration",
                ),
            ),
            "sqlalchemy": (
                Advice(
                    "SQLAlchemy: SETs issued from `connect` event listeners run on every new connection; make them "
                    "role defaults or move them to InitQuery.",
                    SQLALCHEMY_PG_DOC,
                ),
            ),
            "pdo": (
                Advice(
                    "Doctrine DBAL / PDO (PostgreSQL): a `charset` option makes Doctrine run `SET NAMES`; drop it "
                    "when the database encoding is already UTF8 (unverified for current Doctrine versions).",
                    PDO_DOC,
                ),
            ),
        },
        driver_hint_engines={
            "prisma": frozenset({POSTGRESQL}),
            "django": frozenset({POSTGRESQL}),
            "pdo": frozenset({POSTGRESQL}),
        },
    ),
    ReasonEntry(
        code="prepared_statement",
        title="Prepared statements",
        engines=ALL_ENGINES,
        why=(
            "A server-side prepared statement lives in one database connection. MySQL: prepared statements pin, "
            "whether SQL text (`PREPARE`) or the binary protocol. PostgreSQL: " + _PG_STILL_PINS + " pin; since "
            "November 2023 the proxy multiplexes extended-query-protocol (Parse/Bind) statements, which is how "
            "drivers prepare, so driver statement caches no longer pin. SQL Server: prepared statements pin."
        ),
        hints=(
            Advice(
                "Read the statement digest first: a SQL-level `PREPARE`/`EXECUTE`/`DEALLOCATE` comes from "
                "application code or from a driver's or ORM's cleanup (e.g. `DEALLOCATE ALL`), and that is what "
                "to remove.",
                PINNING_DOC,
            ),
            Advice(
                "Where protocol-level prepares still pin (MySQL, SQL Server), make the driver interpolate "
                "parameters client-side or send one-shot statements instead of server-side prepared statements.",
                PINNING_DOC,
            ),
        ),
        engine_hints={
            MYSQL: (
                Advice(
                    "MySQL: both text (`PREPARE`) and binary-protocol prepared statements pin; turn server-side "
                    "prepares off in the driver.",
                    PINNING_DOC,
                ),
            ),
            POSTGRESQL: (
                Advice(
                    "PostgreSQL: keep the driver's statement cache on — RDS Proxy multiplexes extended-query-protocol "
                    "prepared statements since November 2023, so turning the cache off costs performance for "
                    "nothing. What still pins is " + _PG_STILL_PINS + ", often sent by drivers and pools when "
                    "they clean up (`DEALLOCATE ALL`, `DISCARD ALL`).",
                    EXTENDED_QUERY_NEWS,
                    EXTENDED_QUERY_BLOG,
                    PINNING_DOC,
                ),
                Advice(
                    "PostgreSQL: the reason 'A parse message was detected.' comes from proxies before that change "
                    "(every public report of it predates November 2023 — pinwatch's observation, not an AWS "
                    "statement); AWS enabled the change for existing proxies by default, so look at when those "
                    "lines were written before changing driver settings.",
                    EXTENDED_QUERY_NEWS,
                ),
            ),
            SQLSERVER: (
                Advice(
                    "SQL Server: prepared statements pin; send parameterised batches (`sp_executesql`) instead of "
                    "`sp_prepare`/`sp_prepexec` (unverified which of these the proxy counts as prepared).",
                    PINNING_DOC,
                ),
            ),
        },
        driver_hints={
            "mysql-connector-j": (
                Advice(
                    "Connector/J: keep `useServerPrepStmts=false` (the default); with it off, `cachePrepStmts` "
                    "caches client-side statements only.",
                    CONNECTOR_J_PREPARED_DOC,
                ),
            ),
            "pgjdbc": (
                Advice(
                    "pgjdbc: keep the default `prepareThreshold` — its server-side statements use the extended "
                    "protocol, which current proxies multiplex; `prepareThreshold=0` was the workaround for proxies "
                    "before November 2023 ('A parse message was detected.').",
                    EXTENDED_QUERY_BLOG,
                    PGJDBC_DOC,
                ),
            ),
            "npgsql": (
                Advice(
                    "Npgsql: `Prepare()` and automatic preparation (`Max Auto Prepare`) prepare over the extended "
                    "protocol, which current proxies multiplex; what pins with Npgsql is the pool's reset on close "
                    "(`pinwatch reasons session_reset`).",
                    EXTENDED_QUERY_BLOG,
                    NPGSQL_DOC,
                ),
            ),
            "asyncpg": (
                Advice(
                    "asyncpg: keep `statement_cache_size` at its default — its statements use the extended protocol, "
                    "which current proxies multiplex (`statement_cache_size=0` was the workaround for older "
                    "proxies); what pins with asyncpg pools is the reset on release (`pinwatch reasons "
                    "session_reset`).",
                    EXTENDED_QUERY_BLOG,
                    ASYNCPG_RESET_ISSUE,
                ),
            ),
            "psycopg": (
                Advice(
                    "psycopg 3: preparing a query (after `prepare_threshold` executions) no longer pins, but psycopg "
                    "frees its prepared statements with SQL `DEALLOCATE` — `DEALLOCATE ALL` on rollback — which "
                    "does; if those show in digests, `prepare_threshold=None` stops preparing (and so deallocating).",
                    PSYCOPG_DEALLOCATE_ISSUE,
                    PSYCOPG_PREPARE_DOC,
                ),
            ),
            "sqlalchemy": (
                Advice(
                    "SQLAlchemy + asyncpg: keep the dialect's `prepared_statement_cache_size` at its default on "
                    "current proxies; setting it to 0 was the workaround for proxies before November 2023.",
                    EXTENDED_QUERY_BLOG,
                    SQLALCHEMY_PG_DOC,
                ),
            ),
            "prisma": (
                Advice(
                    "Prisma (PostgreSQL): don't add `pgbouncer=true` for RDS Proxy — it makes Prisma run "
                    "`DEALLOCATE ALL` before its prepared statements, which pins, and turns off its statement cache; "
                    "use the plain connection URL.",
                    PRISMA_PGBOUNCER_RDS_PROXY,
                    PRISMA_DEALLOCATE_ALL_DOC,
                    PRISMA_DEALLOCATE_ALL_MAINTAINER,
                ),
            ),
            "rails": (
                Advice(
                    "ActiveRecord (PostgreSQL): prepared statements are extended-protocol and no longer pin, but the "
                    "statement pool evicts old ones with SQL `DEALLOCATE` once it holds `statement_limit` statements "
                    "(unverified for current Rails); if `DEALLOCATE` digests show up, raise `statement_limit` or set "
                    "`prepared_statements: false`.",
                    RAILS_DB_DOC,
                    EXTENDED_QUERY_BLOG,
                ),
            ),
            "pdo": (
                Advice(
                    "PDO: `PDO::ATTR_EMULATE_PREPARES => true` (pdo_mysql's default) interpolates parameters "
                    "client-side instead of preparing on the server. pdo_pgsql frees server-side statements with "
                    "SQL `DEALLOCATE` (with libpq before 17), which pins on PostgreSQL; emulation avoids it too.",
                    PDO_DOC,
                    PDO_EMULATION_RFC,
                    PDO_PGSQL_DEALLOCATE_PR,
                ),
            ),
            "mysql2": (
                Advice(
                    "mysql2 (Node.js): use `query()` (client-side escaping) instead of `execute()` (server-side "
                    "prepare).",
                    MYSQL2_PREPARED_DOC,
                ),
            ),
            "pgx": (
                Advice(
                    "pgx v5: keep the default statement cache — it prepares over the extended protocol and, since "
                    "November 2023 (pgx#1797), deallocates with the protocol's Close message rather than SQL; "
                    "`simple_protocol` was the workaround for older proxies.",
                    PGX_CLOSE_PR,
                    EXTENDED_QUERY_BLOG,
                ),
            ),
        },
        driver_hint_engines={
            "prisma": frozenset({POSTGRESQL}),
            "sqlalchemy": frozenset({POSTGRESQL}),
            "rails": frozenset({POSTGRESQL}),
        },
    ),
    ReasonEntry(
        code="large_statement",
        title="Statement over 16 KB",
        engines=ALL_ENGINES,
        why="The proxy pins any session that sends a statement longer than 16384 bytes, on every engine.",
        hints=(
            Advice(
                "Split huge `IN (...)` lists and multi-row INSERT/VALUES batches into chunks well under 16 KB.",
                PINNING_DOC,
            ),
            Advice(
                "Load big value lists into a (regular) staging table, or pass them as one array parameter, instead "
                "of inlining them in the SQL text.",
                PINNING_DOC,
            ),
        ),
        engine_hints={
            POSTGRESQL: (
                Advice(
                    "PostgreSQL: `WHERE id = ANY($1)` with one array parameter keeps the statement text short.",
                    PINNING_DOC,
                ),
            ),
            MYSQL: (
                Advice("MySQL: cap multi-row INSERT batch sizes so each statement stays under 16 KB.", PINNING_DOC),
            ),
        },
        driver_hints={
            "mysql-connector-j": (
                Advice(
                    "Connector/J: `rewriteBatchedStatements=true` merges a batch into one multi-row INSERT; cap the "
                    "batch size so the rewritten statement stays under 16 KB.",
                    "https://dev.mysql.com/doc/connector-j/en/connector-j-connp-props-performance-extensions.html",
                ),
            ),
            "django": (
                Advice(
                    "Django: pass `batch_size` to `bulk_create()`/`bulk_update()`.",
                    "https://docs.djangoproject.com/en/stable/ref/models/querysets/#bulk-create",
                ),
            ),
            "rails": (
                Advice(
                    "ActiveRecord: slice the input of `insert_all`/`upsert_all` (`each_slice`).",
                    "https://api.rubyonrails.org/classes/ActiveRecord/Persistence/ClassMethods.html#method-i-insert_all",
                ),
            ),
            "sqlalchemy": (
                Advice(
                    "SQLAlchemy 2: lower `insertmanyvalues_page_size` on the engine.",
                    "https://docs.sqlalchemy.org/en/20/core/connections.html#engine-insertmanyvalues",
                ),
            ),
            "hibernate": (
                Advice(
                    "Hibernate: keep `hibernate.jdbc.batch_size` small when the driver rewrites batches.",
                    "https://hibernate.org/orm/documentation/",
                ),
            ),
        },
    ),
    ReasonEntry(
        code="temporary_table",
        title="Temporary table, sequence or view",
        engines=ALL_ENGINES,
        why="Temporary tables (and PostgreSQL temporary sequences and views) exist only in the session that created them.",
        hints=(
            Advice("Replace temporary tables with CTEs (`WITH ... AS (...)`) or derived tables.", PINNING_DOC),
            Advice(
                "When a scratch table is really needed, use a regular table keyed by a request id and delete the "
                "rows afterwards.",
                PINNING_DOC,
            ),
        ),
        engine_hints={
            SQLSERVER: (
                Advice(
                    "SQL Server: `#temp` tables pin; use CTEs or a regular table keyed by a request id.", PINNING_DOC
                ),
            ),
        },
    ),
    ReasonEntry(
        code="lock",
        title="Session-level locks",
        engines=frozenset({MYSQL, POSTGRESQL}),
        why=(
            "Session-level locks (`LOCK TABLES`, `GET_LOCK()`, `FLUSH TABLES WITH READ LOCK`, PostgreSQL "
            "`pg_advisory_lock`) belong to one connection and outlive the transaction."
        ),
        hints=(
            Advice(
                "Hold locks only for a transaction: row locks with `SELECT ... FOR UPDATE` inside the transaction.",
                PINNING_DOC,
            ),
        ),
        engine_hints={
            POSTGRESQL: (
                Advice(
                    "PostgreSQL: use `pg_advisory_xact_lock`/`pg_try_advisory_xact_lock` (released at commit; they "
                    "do not pin) instead of `pg_advisory_lock`.",
                    PINNING_DOC,
                    PG_ADVISORY_LOCK_DOC,
                ),
            ),
            MYSQL: (
                Advice(
                    "MySQL: replace `LOCK TABLES` and `GET_LOCK()` with transactions and `SELECT ... FOR UPDATE`; "
                    "jobs that need named locks can connect to the database endpoint directly.",
                    PINNING_DOC,
                ),
            ),
        },
        driver_hints={
            "rails": (
                Advice(
                    "ActiveRecord migrations take an advisory lock (`pg_advisory_lock` / `GET_LOCK`): run migrations "
                    "against the database endpoint, or set `advisory_locks: false` in database.yml.",
                    "https://guides.rubyonrails.org/configuring.html#configuring-a-database",
                ),
            ),
        },
    ),
    ReasonEntry(
        code="user_variable",
        title="MySQL user variables",
        engines=frozenset({MYSQL}),
        why="`SET @x := ...` or `SELECT ... INTO @x` keeps a value in the session for later statements.",
        hints=(
            Advice(
                "Keep the value in the application and pass it as a query parameter, or compute it inside one "
                "statement (subquery or CTE).",
                PINNING_DOC,
            ),
        ),
        engine_hints={
            MYSQL: (
                Advice(
                    "MySQL 8: replace `@row := @row + 1` numbering with window functions (`ROW_NUMBER() OVER (...)`).",
                    "https://dev.mysql.com/doc/refman/8.0/en/window-functions.html",
                ),
            ),
        },
    ),
    ReasonEntry(
        code="cursor",
        title="Server-side cursors",
        engines=frozenset({POSTGRESQL, SQLSERVER}),
        why="`DECLARE ... CURSOR` (especially `WITH HOLD`) keeps a cursor open on one connection across statements.",
        hints=(
            Advice(
                "Page through results with keyset pagination (`WHERE id > $1 ORDER BY id LIMIT n`) instead of a "
                "server-side cursor.",
                PINNING_DOC,
            ),
        ),
        engine_hints={
            SQLSERVER: (
                Advice(
                    "SQL Server: server (API) cursors pin; read default result sets to the end instead.", PINNING_DOC
                ),
            ),
        },
        driver_hints={
            "django": (
                Advice(
                    "Django: `DISABLE_SERVER_SIDE_CURSORS: True` in the database settings (`.iterator()` then "
                    "fetches client-side).",
                    DJANGO_DB_DOC + "#transaction-pooling-and-server-side-cursors",
                ),
            ),
            "psycopg": (
                Advice(
                    "psycopg: use client-side cursors (`conn.cursor()` without a name) instead of named cursors.",
                    "https://www.psycopg.org/psycopg3/docs/advanced/cursors.html",
                ),
            ),
            "sqlalchemy": (
                Advice(
                    "SQLAlchemy: `stream_results=True` / `yield_per()` open named server-side cursors on PostgreSQL; "
                    "page with keyset queries instead.",
                    SQLALCHEMY_PG_DOC,
                ),
            ),
        },
        driver_hint_engines={"django": frozenset({POSTGRESQL}), "sqlalchemy": frozenset({POSTGRESQL})},
    ),
    ReasonEntry(
        code="listen",
        title="LISTEN (PostgreSQL notifications)",
        engines=frozenset({POSTGRESQL}),
        why="`LISTEN` registers the channel on one database connection; notifications come back only on it.",
        hints=(
            Advice(
                "Run listeners on a dedicated connection straight to the database endpoint (not the proxy); "
                "`NOTIFY` can keep going through the proxy.",
                PINNING_DOC,
            ),
        ),
        driver_hints={
            "asyncpg": (
                Advice(
                    "asyncpg: open the `add_listener()` connection to the database host, not the proxy.",
                    "https://magicstack.github.io/asyncpg/current/api/index.html",
                ),
            ),
        },
    ),
    ReasonEntry(
        code="sequence_function",
        title="Sequence functions (nextval/setval)",
        engines=frozenset({POSTGRESQL}),
        why="`nextval()`/`setval()` change session state that `currval()`/`lastval()` read later.",
        hints=(
            Advice(
                "Let the column default (identity/serial) assign ids and read them back with "
                "`INSERT ... RETURNING id` instead of calling `nextval()`/`currval()`.",
                PINNING_DOC,
            ),
        ),
        driver_hints={
            "hibernate": (
                Advice(
                    "Hibernate/JPA: `GenerationType.SEQUENCE` runs `select nextval(...)`; `GenerationType.IDENTITY` "
                    "uses the column default instead.",
                    "https://hibernate.org/orm/documentation/",
                ),
            ),
        },
    ),
    ReasonEntry(
        code="library_load",
        title="LOAD of a shared library",
        engines=frozenset({POSTGRESQL}),
        why="`LOAD 'auto_explain'` (or any library) changes only the current connection.",
        hints=(
            Advice(
                "Load libraries for all sessions through the DB parameter group (`shared_preload_libraries` or "
                "`session_preload_libraries`) instead of `LOAD`.",
                PINNING_DOC,
            ),
        ),
    ),
    ReasonEntry(
        code="session_reset",
        title="Discarding session state (DISCARD, pool reset queries)",
        engines=frozenset({POSTGRESQL}),
        why=(
            "`DISCARD` in any form (ALL, TEMP, PLANS, SEQUENCES) discards session state, which pins; client-side "
            "pools that run `DISCARD ALL` or `RESET ALL` when a connection is returned pin it on release. The proxy "
            "already isolates state between clients."
        ),
        hints=(
            Advice(
                "Turn off the client pool's reset query (`DISCARD ALL`, `RESET ALL`, ...) when connecting through "
                "the proxy.",
                PINNING_DOC,
            ),
        ),
        driver_hints={
            "npgsql": (
                Advice(
                    "Npgsql: `No Reset On Close=true` in the connection string stops the reset (`DISCARD ALL`) on "
                    "pooled connections.",
                    NPGSQL_DOC,
                ),
            ),
            "asyncpg": (
                Advice(
                    "asyncpg: the pool resets released connections with `... RESET ALL`; pass your own `reset=` "
                    "coroutine to `create_pool()` (recent asyncpg versions) that skips it.",
                    ASYNCPG_RESET_ISSUE,
                    ASYNCPG_RESET_ARGUMENT,
                ),
            ),
        },
    ),
    ReasonEntry(
        code="executable_comment",
        title="Executable comments (/*! ... */)",
        engines=frozenset({MYSQL}),
        why="MySQL and MariaDB run `/*! ... */` and `/*M! ... */` comments as SQL, so the proxy cannot tell what state they change.",
        hints=(
            Advice(
                "Strip version comments from statements the application sends (they usually come from mysqldump "
                "output or copied DDL).",
                PINNING_DOC,
            ),
        ),
    ),
    ReasonEntry(
        code="multiple_active_result_sets",
        title="Multiple Active Result Sets (MARS)",
        engines=frozenset({SQLSERVER}),
        why="MARS interleaves several result sets on one connection.",
        hints=(
            Advice(
                "Set `MultipleActiveResultSets=False` in the connection string and read each result set to the end "
                "before starting the next.",
                PINNING_DOC,
            ),
        ),
    ),
    ReasonEntry(
        code="distributed_transaction",
        title="Distributed transactions (DTC)",
        engines=frozenset({SQLSERVER}),
        why="A distributed (MSDTC) transaction is bound to one database connection.",
        hints=(
            Advice(
                "Use local transactions through the proxy; run work that needs MSDTC over a direct database "
                "connection.",
                PINNING_DOC,
            ),
            Advice(
                "In .NET, use one connection per `TransactionScope` so it does not escalate to a distributed "
                "transaction.",
                "https://learn.microsoft.com/en-us/dotnet/framework/data/transactions/implementing-an-implicit-transaction-using-transaction-scope",
            ),
        ),
    ),
    ReasonEntry(
        code="transaction",
        title="Transaction state the proxy cannot move",
        engines=frozenset({SQLSERVER, MYSQL}),
        why=(
            "SQL Server transactions pin. On MySQL, isolation level or read-only mode set for the next transaction "
            "only (`SET TRANSACTION ...` without SESSION) pins."
        ),
        hints=(
            Advice("Keep transactions short and explicit: commit or roll back before the request ends.", PINNING_DOC),
        ),
        engine_hints={
            SQLSERVER: (
                Advice(
                    "SQL Server: don't leave transactions open across requests (`SET IMPLICIT_TRANSACTIONS ON`, "
                    "`BEGIN TRAN` without a COMMIT).",
                    PINNING_DOC,
                ),
            ),
            MYSQL: (
                Advice(
                    "MySQL: use `SET SESSION TRANSACTION ...` (tracked) or `START TRANSACTION READ ONLY` instead of "
                    "`SET TRANSACTION ...` for the next transaction.",
                    PINNING_DOC,
                ),
            ),
        },
    ),
    ReasonEntry(
        code="stored_routine",
        title="Stored procedures and functions (not inspected)",
        engines=ALL_ENGINES,
        why=(
            "Calling a stored procedure or function does not pin: the proxy does not look inside it, so any session "
            "state it changes (a SET, a temporary table, a user variable) goes undetected and the connection can "
            "then serve other clients with that state. A correctness risk, not a pin."
        ),
        hints=(
            Advice(
                "Keep session-state changes out of stored procedures and functions called through the proxy, or "
                "have the routine restore what it changed before returning.",
                PINNING_DOC,
            ),
            Advice(
                "Don't wrap a pinning SET in a routine to silence the pin: fix the SET itself "
                "(`pinwatch reasons session_settings`).",
                PINNING_DOC,
            ),
        ),
        pins=False,
    ),
    ReasonEntry(
        code="tracked_state",
        title="Tracked statements that restrict reuse",
        engines=frozenset({MYSQL, SQLSERVER}),
        why=(
            "Some statements don't pin because the proxy tracks them; it then reuses the database connection only "
            "for sessions with the same values. MySQL: `USE`, `DROP DATABASE`, `DROP SCHEMA` and the tracked "
            "variables. SQL Server: `USE`, `SET ANSI_NULLS`, `SET ANSI_PADDING`, `SET ANSI_WARNINGS`, "
            "`SET ARITHABORT`, `SET CONCAT_NULL_YIELDS_NULL`, `SET CURSOR_CLOSE_ON_COMMIT`, `SET DATEFIRST`, "
            "`SET DATEFORMAT`, `SET LANGUAGE`, `SET LOCK_TIMEOUT`, `SET NUMERIC_ROUNDABORT`, "
            "`SET QUOTED_IDENTIFIER`, `SET TEXTSIZE`, `SET TRANSACTION ISOLATION LEVEL`. Many distinct values "
            "split the pool into smaller ones."
        ),
        hints=(
            Advice(
                "Keep tracked settings uniform across clients (one database per proxy user, the same options in "
                "every connection string) so any pooled connection can serve any session.",
                PINNING_DOC,
            ),
        ),
        engine_hints={
            MYSQL: (
                Advice(
                    "MySQL: prefer fully qualified names (`db.table`) over switching databases with `USE` per request.",
                    PINNING_DOC,
                ),
            ),
            SQLSERVER: (
                Advice(
                    "SQL Server: set these options as database or login defaults rather than per session.",
                    PINNING_DOC,
                ),
            ),
        },
        pins=False,
    ),
    ReasonEntry(
        code="unknown",
        title="Unrecognised reason",
        engines=ALL_ENGINES,
        why="pinwatch does not recognise this reason text (AWS may have changed the wording); it is kept verbatim.",
        hints=(
            Advice(
                "Read the verbatim reason text and the statement digest, and compare them with the conditions on "
                "the RDS Proxy pinning page.",
                PINNING_DOC,
            ),
            Advice(
                "If the wording recurs, add a rule for it to pinwatch's classifier (docs/reasons.md, 'Adding a "
                "wording').",
                PINNING_DOC,
            ),
        ),
    ),
)

UNKNOWN_ENTRY = CATALOG["unknown"]


def entry(code: str) -> ReasonEntry:
    """The catalog entry for a code; the ``unknown`` entry for codes the catalog does not have."""
    return CATALOG.get(code, UNKNOWN_ENTRY)
