"""The pinning reason catalog: what each reason code means and how to make it stop.

Pure data. Each :class:`ReasonEntry` says which engine families it applies to, why it pins, and
hints at three levels: general, per engine family, per driver/ORM (keys of :data:`DRIVERS`).
Engine-specific levers stay in ``engine_hints`` — e.g. the ``EXCLUDE_VARIABLE_SETS`` session
pinning filter exists only for the MySQL family and is never offered for PostgreSQL.

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

PINNING_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-pinning.html"
POOL_CONFIG_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ConnectionPoolConfiguration.html"

EXCLUDE_VARIABLE_SETS = "EXCLUDE_VARIABLE_SETS"
INIT_QUERY = "InitQuery"


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
    hints: tuple[str, ...]
    engine_hints: Mapping[EngineFamily, tuple[str, ...]] = field(default_factory=dict)
    driver_hints: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    doc_url: str = PINNING_DOC
    # A driver's hints for this reason that apply on some engines only (default: every engine the driver supports).
    driver_hint_engines: Mapping[str, frozenset[EngineFamily]] = field(default_factory=dict)

    def driver_applies(self, driver: str, engine: EngineFamily | None) -> bool:
        """Whether this reason's hints for `driver` are relevant on `engine` (None: any engine)."""
        if engine is None:
            return True
        engines = self.driver_hint_engines.get(driver) or (
            DRIVERS[driver].engines if driver in DRIVERS else ALL_ENGINES
        )
        return engine in engines


def _drivers(*drivers: Driver) -> Mapping[str, Driver]:
    return MappingProxyType({d.name: d for d in drivers})


DRIVERS: Mapping[str, Driver] = _drivers(
    Driver(
        "mysql-connector-j",
        "MySQL Connector/J (JDBC)",
        frozenset({MYSQL}),
        "https://dev.mysql.com/doc/connector-j/en/connector-j-reference-configuration-properties.html",
    ),
    Driver(
        "pgjdbc", "PostgreSQL JDBC (pgjdbc)", frozenset({POSTGRESQL}), "https://jdbc.postgresql.org/documentation/use/"
    ),
    Driver("hibernate", "Hibernate / JPA", ALL_ENGINES, "https://hibernate.org/orm/documentation/"),
    Driver(
        "npgsql",
        "Npgsql (.NET)",
        frozenset({POSTGRESQL}),
        "https://www.npgsql.org/doc/connection-string-parameters.html",
    ),
    Driver(
        "asyncpg", "asyncpg", frozenset({POSTGRESQL}), "https://magicstack.github.io/asyncpg/current/api/index.html"
    ),
    Driver(
        "psycopg", "psycopg", frozenset({POSTGRESQL}), "https://www.psycopg.org/psycopg3/docs/advanced/prepare.html"
    ),
    Driver("sqlalchemy", "SQLAlchemy", ALL_ENGINES, "https://docs.sqlalchemy.org/en/20/dialects/"),
    Driver(
        "django", "Django", frozenset({MYSQL, POSTGRESQL}), "https://docs.djangoproject.com/en/stable/ref/databases/"
    ),
    Driver(
        "prisma",
        "Prisma",
        ALL_ENGINES,
        "https://www.prisma.io/docs/orm/prisma-client/setup-and-configuration/databases-connections/pgbouncer",
    ),
    Driver(
        "rails",
        "Rails (ActiveRecord)",
        frozenset({MYSQL, POSTGRESQL}),
        "https://guides.rubyonrails.org/configuring.html#configuring-a-database",
    ),
    Driver("mysql2", "mysql2 (Node.js)", frozenset({MYSQL}), "https://sidorares.github.io/node-mysql2/docs"),
    Driver(
        "pdo",
        "PHP PDO / Doctrine DBAL",
        frozenset({MYSQL, POSTGRESQL}),
        "https://www.php.net/manual/en/pdo.setattribute.php",
    ),
    Driver("pgx", "Go pgx", frozenset({POSTGRESQL}), "https://pkg.go.dev/github.com/jackc/pgx/v5"),
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


CATALOG: Mapping[str, ReasonEntry] = _entries(
    ReasonEntry(
        code="session_settings",
        title="Session settings changed (SET)",
        engines=ALL_ENGINES,
        why=(
            "The session changed a variable or configuration parameter the proxy does not track, so later "
            "statements depend on that one database connection. PostgreSQL: every SET and set_config() pins. "
            "MySQL: a SET pins unless every variable in it is on the proxy's tracked list (sql_mode, time_zone, "
            "NAMES, autocommit, ...). SQL Server: SET options such as ANSI_DEFAULTS, IDENTITY_INSERT, NOCOUNT, "
            "ROWCOUNT, XACT_ABORT and STATISTICS pin."
        ),
        hints=(
            "Move SETs that every connection runs identically into the target group's initialization query "
            "(InitQuery); the proxy runs it on each new database connection, then stop sending them from the client.",
            "Make the value a default instead of a per-session SET: the DB parameter group, or on PostgreSQL "
            "`ALTER ROLE <app_user> SET <name> = <value>` / `ALTER DATABASE ... SET ...`.",
        ),
        engine_hints={
            MYSQL: (
                "MySQL: only untracked variables pin, and one untracked variable in a multi-variable SET pins the "
                "whole session; keep connect-time SETs to tracked variables (sql_mode, time_zone, NAMES, "
                "autocommit, transaction_isolation, ...).",
                "MySQL family only: the EXCLUDE_VARIABLE_SETS session pinning filter (target group "
                "ConnectionPoolConfig.SessionPinningFilters) stops SETs from pinning; safe only when the SETs are "
                "no-ops or every transaction sets the state it relies on.",
            ),
            POSTGRESQL: (
                "PostgreSQL: every SET and set_config() pins (the proxy tracks none); set the value per role "
                "(`ALTER ROLE <app_user> SET <name> = <value>`), per database, in the parameter group, or in "
                "InitQuery, and remove the SET from the client.",
            ),
            SQLSERVER: (
                "SQL Server: avoid per-session SET options (ANSI_DEFAULTS, IDENTITY_INSERT, NOCOUNT, ROWCOUNT, "
                "XACT_ABORT, STATISTICS, ...); set database or login defaults, or put them in InitQuery.",
            ),
        },
        driver_hints={
            "mysql-connector-j": (
                "Connector/J: `sessionVariables=` makes the driver SET variables on connect; keep it to tracked "
                "variables or move the values to InitQuery. `useLocalSessionState=true` avoids redundant "
                "autocommit/isolation SETs.",
            ),
            "prisma": (
                "Prisma runs `SET search_path`/`SET NAMES` when it opens a connection, so each Prisma connection pins: "
                "keep Prisma's pool small (`connection_limit`) and long-lived rather than connecting per request.",
            ),
            "rails": (
                "ActiveRecord: `encoding`, `schema_search_path` and `variables` in database.yml become SETs on "
                "connect; drop the ones that match the database defaults and set the rest with `ALTER ROLE`.",
            ),
            "django": (
                "Django (PostgreSQL) runs `SET TIME ZONE` on each new connection when the server's zone differs "
                "from Django's (UTC with USE_TZ); `ALTER ROLE <app_user> SET timezone TO 'UTC'` removes it.",
            ),
            "sqlalchemy": (
                "SQLAlchemy: SETs issued from `connect` event listeners or an engine-level `isolation_level` run on "
                "every new connection; move them to InitQuery or the role's defaults.",
            ),
            "pdo": (
                "Doctrine DBAL / PDO (PostgreSQL): a `charset` option makes Doctrine run `SET NAMES`; drop it when "
                "the database encoding is already UTF8.",
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
            "A server-side prepared statement lives in one database connection, so the proxy pins the session to "
            "keep later executions on it. On PostgreSQL, older proxy versions pin on any extended-protocol Parse "
            "message ('A parse message was detected.'), which most drivers use for parameterised queries."
        ),
        hints=(
            "Make the driver use unnamed (one-shot) statements or client-side parameter interpolation instead of "
            "named server-side prepared statements.",
        ),
        engine_hints={
            MYSQL: (
                "MySQL: both text (`PREPARE`) and binary-protocol prepared statements pin; turn server-side prepares "
                "off in the driver.",
            ),
            POSTGRESQL: (
                "PostgreSQL: `PREPARE`/`EXECUTE`/`DEALLOCATE` and named extended-protocol statements pin; disable the "
                "driver's statement cache so it sends unnamed statements.",
            ),
            SQLSERVER: (
                "SQL Server: prepared statements (sp_prepare/sp_prepexec) pin; send parameterised batches "
                "(sp_executesql) instead.",
            ),
        },
        driver_hints={
            "mysql-connector-j": (
                "Connector/J: keep `useServerPrepStmts=false` (the default); with it off, `cachePrepStmts` caches "
                "client-side statements only.",
            ),
            "pgjdbc": (
                "pgjdbc: `prepareThreshold=0` keeps every statement unnamed, so none is prepared on the server.",
            ),
            "npgsql": (
                "Npgsql: don't call `NpgsqlCommand.Prepare()` and keep automatic preparation off "
                "(`Max Auto Prepare=0`, the default).",
            ),
            "asyncpg": (
                "asyncpg: pass `statement_cache_size=0` to `connect()`/`create_pool()` and avoid "
                "`Connection.prepare()`.",
            ),
            "psycopg": (
                "psycopg 3: `prepare_threshold=None` on the connection disables server-side prepared statements "
                "(by default a query is prepared after 5 executions).",
            ),
            "sqlalchemy": (
                "SQLAlchemy + asyncpg: add `prepared_statement_cache_size=0` to the URL and "
                "`connect_args={'statement_cache_size': 0}`.",
            ),
            "prisma": (
                "Prisma (PostgreSQL): add `pgbouncer=true` to the connection URL to stop named prepared statements.",
            ),
            "rails": ("ActiveRecord: `prepared_statements: false` in database.yml.",),
            "pdo": (
                "PDO: `PDO::ATTR_EMULATE_PREPARES => true` interpolates parameters client-side instead of "
                "server-side prepares.",
            ),
            "mysql2": (
                "mysql2 (Node.js): use `query()` (client-side escaping) instead of `execute()` (server-side prepare).",
            ),
            "pgx": (
                "pgx: set `default_query_exec_mode=simple_protocol` (or `exec`) in the connection string instead of "
                "the default statement cache.",
            ),
        },
        driver_hint_engines={"prisma": frozenset({POSTGRESQL}), "sqlalchemy": frozenset({POSTGRESQL})},
    ),
    ReasonEntry(
        code="large_statement",
        title="Statement over 16 KB",
        engines=ALL_ENGINES,
        why="The proxy pins any session that sends a statement longer than 16384 bytes, on every engine.",
        hints=(
            "Split huge `IN (...)` lists and multi-row INSERT/VALUES batches into chunks well under 16 KB.",
            "Load big value lists into a (regular) staging table, or pass them as one array parameter, instead of "
            "inlining them in the SQL text.",
        ),
        engine_hints={
            POSTGRESQL: ("PostgreSQL: `WHERE id = ANY($1)` with one array parameter keeps the statement text short.",),
            MYSQL: ("MySQL: cap multi-row INSERT batch sizes so each statement stays under 16 KB.",),
        },
        driver_hints={
            "mysql-connector-j": (
                "Connector/J: `rewriteBatchedStatements=true` merges a batch into one multi-row INSERT; cap the batch "
                "size so the rewritten statement stays under 16 KB.",
            ),
            "django": ("Django: pass `batch_size` to `bulk_create()`/`bulk_update()`.",),
            "rails": ("ActiveRecord: slice the input of `insert_all`/`upsert_all` (`each_slice`).",),
            "sqlalchemy": ("SQLAlchemy 2: lower `insertmanyvalues_page_size` on the engine.",),
            "hibernate": ("Hibernate: keep `hibernate.jdbc.batch_size` small when the driver rewrites batches.",),
        },
    ),
    ReasonEntry(
        code="temporary_table",
        title="Temporary table, sequence or view",
        engines=ALL_ENGINES,
        why="Temporary tables (and PostgreSQL temporary sequences and views) exist only in the session that created them.",
        hints=(
            "Replace temporary tables with CTEs (`WITH ... AS (...)`) or derived tables.",
            "When a scratch table is really needed, use a regular table keyed by a request id and delete the rows "
            "afterwards.",
        ),
        engine_hints={
            SQLSERVER: ("SQL Server: `#temp` tables pin; use CTEs or a regular table keyed by a request id.",),
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
        hints=("Hold locks only for a transaction: row locks with `SELECT ... FOR UPDATE` inside the transaction.",),
        engine_hints={
            POSTGRESQL: (
                "PostgreSQL: use `pg_advisory_xact_lock`/`pg_try_advisory_xact_lock` (released at commit; they do "
                "not pin) instead of `pg_advisory_lock`.",
            ),
            MYSQL: (
                "MySQL: replace `LOCK TABLES` and `GET_LOCK()` with transactions and `SELECT ... FOR UPDATE`; jobs "
                "that need named locks can connect to the database endpoint directly.",
            ),
        },
        driver_hints={
            "rails": (
                "ActiveRecord migrations take an advisory lock (`pg_advisory_lock` / `GET_LOCK`): run migrations "
                "against the database endpoint, or set `advisory_locks: false` in database.yml.",
            ),
        },
    ),
    ReasonEntry(
        code="user_variable",
        title="MySQL user variables",
        engines=frozenset({MYSQL}),
        why="`SET @x := ...` or `SELECT ... INTO @x` keeps a value in the session for later statements.",
        hints=(
            "Keep the value in the application and pass it as a query parameter, or compute it inside one "
            "statement (subquery or CTE).",
        ),
        engine_hints={
            MYSQL: (
                "MySQL 8: replace `@row := @row + 1` numbering with window functions (`ROW_NUMBER() OVER (...)`).",
            ),
        },
    ),
    ReasonEntry(
        code="cursor",
        title="Server-side cursors",
        engines=frozenset({POSTGRESQL, SQLSERVER}),
        why="`DECLARE ... CURSOR` (especially `WITH HOLD`) keeps a cursor open on one connection across statements.",
        hints=(
            "Page through results with keyset pagination (`WHERE id > $1 ORDER BY id LIMIT n`) instead of a "
            "server-side cursor.",
        ),
        engine_hints={
            SQLSERVER: ("SQL Server: server (API) cursors pin; read default result sets to the end instead.",),
        },
        driver_hints={
            "django": (
                "Django: `DISABLE_SERVER_SIDE_CURSORS: True` in the database settings (`.iterator()` then fetches "
                "client-side).",
            ),
            "psycopg": ("psycopg: use client-side cursors (`conn.cursor()` without a name) instead of named cursors.",),
            "sqlalchemy": (
                "SQLAlchemy: `stream_results=True` / `yield_per()` open named server-side cursors on PostgreSQL; "
                "page with keyset queries instead.",
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
            "Run listeners on a dedicated connection straight to the database endpoint (not the proxy); `NOTIFY` "
            "can keep going through the proxy.",
        ),
        driver_hints={
            "asyncpg": ("asyncpg: open the `add_listener()` connection to the database host, not the proxy.",),
        },
    ),
    ReasonEntry(
        code="sequence_function",
        title="Sequence functions (nextval/setval)",
        engines=frozenset({POSTGRESQL}),
        why="`nextval()`/`setval()` change session state that `currval()`/`lastval()` read later.",
        hints=(
            "Let the column default (identity/serial) assign ids and read them back with `INSERT ... RETURNING id` "
            "instead of calling `nextval()`/`currval()`.",
        ),
        driver_hints={
            "hibernate": (
                "Hibernate/JPA: `GenerationType.SEQUENCE` runs `select nextval(...)`; `GenerationType.IDENTITY` "
                "uses the column default instead.",
            ),
        },
    ),
    ReasonEntry(
        code="library_load",
        title="LOAD of a shared library",
        engines=frozenset({POSTGRESQL}),
        why="`LOAD 'auto_explain'` (or any library) changes only the current connection.",
        hints=(
            "Load libraries for all sessions through the DB parameter group (`shared_preload_libraries` or "
            "`session_preload_libraries`) instead of `LOAD`.",
        ),
    ),
    ReasonEntry(
        code="session_reset",
        title="Pool reset query (DISCARD ALL / RESET ALL)",
        engines=frozenset({POSTGRESQL}),
        why=(
            "Client-side pools that run `DISCARD ALL` or `RESET ALL` when a connection is returned pin the session; "
            "the proxy already isolates state between clients."
        ),
        hints=("Turn off the client pool's reset query when connecting through the proxy.",),
        driver_hints={
            "npgsql": (
                "Npgsql: `No Reset On Close=true` in the connection string stops `DISCARD ALL` on pooled connections.",
            ),
            "asyncpg": (
                "asyncpg: the pool resets released connections (including `RESET ALL`); pass your own `reset=` "
                "coroutine to `create_pool()` (asyncpg 0.29+).",
            ),
        },
    ),
    ReasonEntry(
        code="executable_comment",
        title="Executable comments (/*! ... */)",
        engines=frozenset({MYSQL}),
        why="MySQL and MariaDB run `/*! ... */` and `/*M! ... */` comments as SQL, so the proxy cannot tell what state they change.",
        hints=(
            "Strip version comments from statements the application sends (they usually come from mysqldump "
            "output or copied DDL).",
        ),
    ),
    ReasonEntry(
        code="multiple_active_result_sets",
        title="Multiple Active Result Sets (MARS)",
        engines=frozenset({SQLSERVER}),
        why="MARS interleaves several result sets on one connection.",
        hints=(
            "Set `MultipleActiveResultSets=False` in the connection string and read each result set to the end "
            "before starting the next.",
        ),
    ),
    ReasonEntry(
        code="distributed_transaction",
        title="Distributed transactions (DTC)",
        engines=frozenset({SQLSERVER}),
        why="A distributed (MSDTC) transaction is bound to one database connection.",
        hints=(
            "Use local transactions through the proxy; run work that needs MSDTC over a direct database connection.",
            "In .NET, use one connection per `TransactionScope` so it does not escalate to a distributed transaction.",
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
        hints=("Keep transactions short and explicit: commit or roll back before the request ends.",),
        engine_hints={
            SQLSERVER: (
                "SQL Server: don't leave transactions open across requests (`SET IMPLICIT_TRANSACTIONS ON`, "
                "`BEGIN TRAN` without a COMMIT).",
            ),
            MYSQL: (
                "MySQL: use `SET SESSION TRANSACTION ...` (tracked) or `START TRANSACTION READ ONLY` instead of "
                "`SET TRANSACTION ...` for the next transaction.",
            ),
        },
    ),
    ReasonEntry(
        code="unknown",
        title="Unrecognised reason",
        engines=ALL_ENGINES,
        why="pinwatch does not recognise this reason text (AWS may have changed the wording); it is kept verbatim.",
        hints=(
            "Read the verbatim reason text and the statement digest, and compare them with the conditions on the "
            "RDS Proxy pinning page.",
            "If the wording recurs, add a rule for it to pinwatch's classifier (README, 'Pinning reasons').",
        ),
    ),
)

UNKNOWN_ENTRY = CATALOG["unknown"]


def entry(code: str) -> ReasonEntry:
    """The catalog entry for a code; the ``unknown`` entry for codes the catalog does not have."""
    return CATALOG.get(code, UNKNOWN_ENTRY)
