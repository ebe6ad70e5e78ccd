"""Function settings, read once from environment variables at cold start.

Every variable the template passes is parsed and validated here, so a bad deployment fails at
the first invocation with a message naming the variable and what to set, instead of producing
wrong alerts later. Pure: no I/O beyond the mapping it is given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import urlparse

from pinwatch.scope import ACCOUNT_ID, Scope


class ConfigError(ValueError):
    """A setting is missing or invalid. The message names each variable and what to set."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid configuration: " + "; ".join(problems))


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_PROXY_NAME = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$")
_ARN = "arn:aws[a-z-]*:{service}:[a-z0-9-]+:\\d{{12}}:{resource}"
_SNS_TOPIC_ARN = re.compile(_ARN.format(service="sns", resource=r"[A-Za-z0-9_-]{1,256}(\.fifo)?") + "$")
_SECRET_ARN = re.compile(_ARN.format(service="secretsmanager", resource=r"secret:[A-Za-z0-9/_+=.@-]+") + "$")

# StackSet names: a letter, then letters, digits and hyphens, up to 128 (CreateStackSet); an id adds ":<uuid>".
_STACK_SET = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}(:[A-Za-z0-9-]+)?$")
# IAM role names: up to 64 of letters, digits and + = , . @ _ - (IAM API Reference, CreateRole).
_ROLE_NAME = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")
STACK_SET_CALL_AS = ("SELF", "DELEGATED_ADMIN")  # ListStackInstances CallAs
DEFAULT_MEMBER_ROLE_NAME = "pinwatch-member-reader"

SlackMention = Literal["here", "channel", "none"]
REASON_CAPTURE_MODES = ("off", "on-incident", "always")  # pinwatch.capture.CaptureMode values
# AWS switches enhanced logging off 24 h after it is enabled: a longer cap would mean nothing.
REASON_CAPTURE_MAX_HOURS_RANGE = (0.25, 24.0)


class _Reader:
    """Reads variables out of a mapping, collecting every problem so one error lists them all."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        # CloudFormation passes unset optional parameters as "": treat blank as unset.
        value = self._environ.get(name, "").strip()
        return value or None

    def text(self, name: str, pattern: re.Pattern[str], what: str, *, required: bool = False) -> str | None:
        value = self.raw(name)
        if value is None:
            if required:
                self.problems.append(f"{name} is not set; set it to {what}")
            return None
        if not pattern.match(value):
            self.problems.append(f"{name}={value!r} is not valid; set it to {what}")
            return None
        return value

    def number[N: (int, float)](self, name: str, default: N, low: N, high: N, kind: Callable[[str], N]) -> N:
        value = self.raw(name)
        if value is None:
            return default
        what = f"{'a whole number' if kind is int else 'a number'} from {low:g} to {high:g} (default {default:g})"
        try:
            parsed = kind(value)
        except ValueError:
            self.problems.append(f"{name}={value!r} is not a number; set {what}")
            return default
        if not low <= parsed <= high:
            self.problems.append(f"{name}={value!r} is out of range; set {what}")
            return default
        return parsed

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        self.problems.append(f"{name}={value!r} is not a boolean; set true or false (default {str(default).lower()})")
        return default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() not in choices:
            self.problems.append(f"{name}={value!r} is not valid; set one of {'|'.join(choices)} (default {default})")
            return default
        return value.lower()

    def ordered(self, lower: tuple[str, float], upper: tuple[str, float]) -> None:
        """Record a problem unless ``lower`` is strictly below ``upper`` (e.g. warning < critical)."""
        (low_name, low), (high_name, high) = lower, upper
        if not low < high:
            self.problems.append(f"{low_name} ({low:g}) must be below {high_name} ({high:g}); adjust one of them")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What the diagnosis rules compare against (see docs/connection-check.md)."""

    pinned_warning_pct: float = 10.0
    pinned_critical_pct: float = 50.0
    pinned_min_connections: int = 3
    multiplexing_max_ratio: float = 1.5
    multiplexing_min_clients: int = 20
    pool_warning_pct: float = 80.0
    pool_critical_pct: float = 95.0
    exhaustion_warning_minutes: float = 60.0
    exhaustion_critical_minutes: float = 15.0
    borrow_latency_warning_ms: float = 100.0
    # Not deployment settings. Severity by consequence: pins holding less than this share of the
    # pool's allowed connections cost no capacity worth waking anyone for (info, not warning).
    pinned_capacity_warning_pct: float = 10.0
    # Borrow latency against the proxy's ConnectionBorrowTimeout (the wait after which a client gets
    # a timeout error): warning at 1 %, critical at 10 % of it, never below the absolute floors
    # (borrow_latency_warning_ms, borrow_latency_critical_floor_ms), so noise on a 1 s timeout does
    # not page. 120 s is the documented default timeout when the proxy's own is unknown ("The default
    # is 120 seconds", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-connections.html).
    borrow_timeout_warning_pct: float = 1.0
    borrow_timeout_critical_pct: float = 10.0
    borrow_latency_critical_floor_ms: float = 500.0
    default_borrow_timeout_s: float = 120.0
    # A rising trend warns only once connections in use are at least this share of the limit: a
    # morning ramp far from the limit is traffic, not exhaustion (a critical ETA still pages).
    forecast_min_pool_pct: float = 50.0
    # Guards that keep the trend maths from reading noise as a trend.
    forecast_min_points: int = 5
    forecast_min_slope_per_minute: float = 0.1
    forecast_min_r_squared: float = 0.5
    open_transactions_min_correlation: float = 0.7


_T = Thresholds()


@dataclass(frozen=True, slots=True)
class AccountRoute:
    """Where one member account's alerts go besides the central channels (``ACCOUNT_ROUTES``, organization mode)."""

    account: str
    slack_webhook_secret_arn: str | None = None
    alert_topic_arn: str | None = None


@dataclass(frozen=True, slots=True)
class CheckConfig:
    """Settings of the scheduled connection check (and of ``pinwatch check``).

    ``summary_table_name`` is empty only when built with ``require_table=False`` (the CLI without
    a table: diagnosis from metrics alone, no top reasons, no alert state).
    """

    summary_table_name: str
    alert_topic_arn: str | None = None
    slack_webhook_secret_arn: str | None = None
    proxy_names: tuple[str, ...] = ()  # empty = every proxy in the region
    pinned_warning_pct: float = _T.pinned_warning_pct
    pinned_critical_pct: float = _T.pinned_critical_pct
    pinned_min_connections: int = _T.pinned_min_connections
    multiplexing_max_ratio: float = _T.multiplexing_max_ratio
    multiplexing_min_clients: int = _T.multiplexing_min_clients
    pool_warning_pct: float = _T.pool_warning_pct
    pool_critical_pct: float = _T.pool_critical_pct
    exhaustion_warning_minutes: float = _T.exhaustion_warning_minutes
    exhaustion_critical_minutes: float = _T.exhaustion_critical_minutes
    borrow_latency_warning_ms: float = _T.borrow_latency_warning_ms
    renotify_minutes: int = 60
    resolve_after_checks: int = 3
    metrics_window_minutes: int = 30
    setup_failed_every_minutes: int = 5  # how often the setup-failure metric is read (cost, see pinwatch.metrics)
    slack_mention_on_critical: SlackMention = "here"
    slack_allow_loopback: bool = False
    chat_notifications: bool = False
    dashboard_url: str | None = None
    # Reason capture (docs/reason-capture.md): off | on-incident | always, and the longest capture.
    reason_capture: str = "off"
    reason_capture_max_hours: float = 2.0
    # Unset: every scheduled run reads every proxy. The stack sets 15 and names its Metrics
    # Insights alarm, whose contributor events bring a pinning proxy in between (pinwatch.fleet).
    sweep_minutes: int = 1
    contributor_alarms: tuple[str, ...] = ()
    # Organization mode: a member account's alerts also go to its own channels (sorted by account).
    account_routes: tuple[AccountRoute, ...] = ()
    # Organization mode (docs/organization.md): on when the member StackSet is named.
    org_member_stack_set: str | None = None
    org_stack_set_call_as: str = "SELF"
    org_member_role_name: str = DEFAULT_MEMBER_ROLE_NAME
    # Accounts and Regions enrolled outside the StackSet (the management account, which a
    # service-managed StackSet never deploys to), checked like its stack instances.
    org_extra_targets: tuple[Scope, ...] = ()

    @property
    def org_mode(self) -> bool:
        return self.org_member_stack_set is not None

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(
            pinned_warning_pct=self.pinned_warning_pct,
            pinned_critical_pct=self.pinned_critical_pct,
            pinned_min_connections=self.pinned_min_connections,
            multiplexing_max_ratio=self.multiplexing_max_ratio,
            multiplexing_min_clients=self.multiplexing_min_clients,
            pool_warning_pct=self.pool_warning_pct,
            pool_critical_pct=self.pool_critical_pct,
            exhaustion_warning_minutes=self.exhaustion_warning_minutes,
            exhaustion_critical_minutes=self.exhaustion_critical_minutes,
            borrow_latency_warning_ms=self.borrow_latency_warning_ms,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, require_table: bool = True) -> CheckConfig:
        """Parse and validate every variable; raise :class:`ConfigError` listing all problems."""
        r = _Reader(environ)
        table = r.text(
            "SUMMARY_TABLE_NAME",
            _TABLE_NAME,
            "the summary table's name (3-255 characters: letters, digits, _ . -)",
            required=require_table,
        )
        topic = r.text("ALERT_TOPIC_ARN", _SNS_TOPIC_ARN, "an SNS topic ARN, or leave it empty for no SNS alerts")
        secret = r.text(
            "SLACK_WEBHOOK_SECRET_ARN",
            _SECRET_ARN,
            "a Secrets Manager secret ARN holding the webhook URL, or leave it empty for no Slack alerts",
        )
        proxies = _proxy_names(r)
        config = cls(
            summary_table_name=table or "",
            alert_topic_arn=topic,
            slack_webhook_secret_arn=secret,
            proxy_names=proxies,
            pinned_warning_pct=r.number("PINNED_WARNING_PCT", _T.pinned_warning_pct, 0.1, 100.0, float),
            pinned_critical_pct=r.number("PINNED_CRITICAL_PCT", _T.pinned_critical_pct, 0.1, 100.0, float),
            pinned_min_connections=r.number("PINNED_MIN_CONNECTIONS", _T.pinned_min_connections, 1, 100_000, int),
            multiplexing_max_ratio=r.number("MULTIPLEXING_MAX_RATIO", _T.multiplexing_max_ratio, 0.1, 1000.0, float),
            multiplexing_min_clients=r.number(
                "MULTIPLEXING_MIN_CLIENTS", _T.multiplexing_min_clients, 1, 1_000_000, int
            ),
            pool_warning_pct=r.number("POOL_WARNING_PCT", _T.pool_warning_pct, 1.0, 100.0, float),
            pool_critical_pct=r.number("POOL_CRITICAL_PCT", _T.pool_critical_pct, 1.0, 100.0, float),
            exhaustion_warning_minutes=r.number(
                "EXHAUSTION_WARNING_MINUTES", _T.exhaustion_warning_minutes, 1.0, 1440.0, float
            ),
            exhaustion_critical_minutes=r.number(
                "EXHAUSTION_CRITICAL_MINUTES", _T.exhaustion_critical_minutes, 1.0, 1440.0, float
            ),
            borrow_latency_warning_ms=r.number(
                "BORROW_LATENCY_WARNING_MS", _T.borrow_latency_warning_ms, 0.1, 600_000.0, float
            ),
            renotify_minutes=r.number("RENOTIFY_MINUTES", 60, 1, 10_080, int),
            resolve_after_checks=r.number("RESOLVE_AFTER_CHECKS", 3, 1, 1000, int),
            # A trend needs several points; 60 s data is kept 15 days, but a day is plenty.
            metrics_window_minutes=r.number("METRICS_WINDOW_MINUTES", 30, 5, 1440, int),
            setup_failed_every_minutes=r.number("SETUP_FAILED_EVERY_MINUTES", 5, 1, 60, int),
            slack_mention_on_critical=cast(
                SlackMention, r.choice("SLACK_MENTION_ON_CRITICAL", "here", ("here", "channel", "none"))
            ),
            slack_allow_loopback=r.boolean("SLACK_ALLOW_LOOPBACK", False),
            chat_notifications=r.boolean("CHAT_NOTIFICATIONS", False),
            dashboard_url=_dashboard_url(r),
            reason_capture=r.choice("REASON_CAPTURE", "off", REASON_CAPTURE_MODES),
            reason_capture_max_hours=r.number("REASON_CAPTURE_MAX_HOURS", 2.0, *REASON_CAPTURE_MAX_HOURS_RANGE, float),
            sweep_minutes=r.number("SWEEP_MINUTES", 1, 1, 60, int),
            contributor_alarms=tuple(n.strip() for n in (r.raw("CONTRIBUTOR_ALARMS") or "").split(",") if n.strip()),
            account_routes=_account_routes(r),
            org_member_stack_set=r.text(
                "ORG_MEMBER_STACK_SET",
                _STACK_SET,
                "the member StackSet's name (or id), or leave it empty to check this account only",
            ),
            org_stack_set_call_as=_call_as(r),
            org_member_role_name=r.text(
                "ORG_MEMBER_ROLE_NAME", _ROLE_NAME, f"an IAM role name (default {DEFAULT_MEMBER_ROLE_NAME})"
            )
            or DEFAULT_MEMBER_ROLE_NAME,
            org_extra_targets=_extra_targets(r),
        )
        if config.org_extra_targets and not config.org_mode:
            r.problems.append(
                "ORG_EXTRA_TARGETS adds accounts to an organization's check; set ORG_MEMBER_STACK_SET too, "
                "or leave it empty to check this account only"
            )
        if config.org_mode and config.proxy_names:
            # Names are unique only per account and Region: a bare name would mean a different proxy in each member.
            r.problems.append(
                "PROXY_NAMES is for a single account; leave it empty when ORG_MEMBER_STACK_SET is set "
                "(every proxy of every member account and Region is checked)"
            )
        r.ordered(
            ("PINNED_WARNING_PCT", config.pinned_warning_pct), ("PINNED_CRITICAL_PCT", config.pinned_critical_pct)
        )
        r.ordered(("POOL_WARNING_PCT", config.pool_warning_pct), ("POOL_CRITICAL_PCT", config.pool_critical_pct))
        # Minutes count down to exhaustion: the critical horizon is the shorter one.
        r.ordered(
            ("EXHAUSTION_CRITICAL_MINUTES", config.exhaustion_critical_minutes),
            ("EXHAUSTION_WARNING_MINUTES", config.exhaustion_warning_minutes),
        )
        if r.problems:
            raise ConfigError(r.problems)
        return config


def _proxy_names(r: _Reader) -> tuple[str, ...]:
    value = r.raw("PROXY_NAMES")
    if value is None:
        return ()
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))  # dedupe, keep order
    bad = [n for n in names if not _PROXY_NAME.match(n)]
    if bad:
        r.problems.append(
            f"PROXY_NAMES contains invalid proxy names {', '.join(map(repr, bad))}; set comma-separated RDS Proxy "
            "names (a letter, then letters, digits or single hyphens), or leave it empty to check every proxy"
        )
        return ()
    return names


_EXTRA_TARGETS_EXAMPLE = "123456789012:us-east-1,123456789012:eu-west-1"


def _extra_targets(r: _Reader) -> tuple[Scope, ...]:
    """``ORG_EXTRA_TARGETS``: comma-separated ``ACCOUNT:REGION`` pairs, deduplicated and sorted."""
    value = r.raw("ORG_EXTRA_TARGETS")
    if value is None:
        return ()
    found: set[Scope] = set()
    bad: list[str] = []
    for item in (i.strip() for i in value.split(",")):
        if not item:
            continue
        account, sep, region = item.partition(":")
        try:
            if not sep:
                raise ValueError(item)
            found.add(Scope(account.strip(), region.strip()))
        except ValueError:
            bad.append(item)
    if bad:
        r.problems.append(
            f"ORG_EXTRA_TARGETS contains {', '.join(map(repr, bad))}, not ACCOUNT:REGION; set comma-separated "
            f"12-digit account IDs and Region codes, e.g. {_EXTRA_TARGETS_EXAMPLE}, or leave it empty"
        )
        return ()
    return tuple(sorted(found))


def _call_as(r: _Reader) -> str:
    value = r.raw("ORG_STACK_SET_CALL_AS")
    if value is None:
        return "SELF"
    if value.upper() not in STACK_SET_CALL_AS:
        r.problems.append(
            f"ORG_STACK_SET_CALL_AS={value!r} is not valid; set SELF (the management account) or "
            "DELEGATED_ADMIN (a delegated StackSets administrator), default SELF"
        )
        return "SELF"
    return value.upper()


def _dashboard_url(r: _Reader) -> str | None:
    value = r.raw("DASHBOARD_URL")
    if value is None:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        r.problems.append(f"DASHBOARD_URL={value!r} is not a URL; set an https:// link or leave it empty")
        return None
    return value


_ROUTE_CHANNELS = {
    "slack_webhook_secret_arn": (_SECRET_ARN, "a Secrets Manager secret ARN holding the account's Slack webhook URL"),
    "alert_topic_arn": (_SNS_TOPIC_ARN, "an SNS topic ARN"),
}
_ROUTES_EXAMPLE = (
    '{"111111111111": {"slack_webhook_secret_arn": "arn:aws:secretsmanager:...:secret:pinwatch/...", '
    '"alert_topic_arn": "arn:aws:sns:...:pinwatch-..."}}'
)


def _account_routes(r: _Reader) -> tuple[AccountRoute, ...]:
    """``ACCOUNT_ROUTES``: JSON object, account ID -> its Slack webhook secret and/or SNS topic (both optional)."""
    value = r.raw("ACCOUNT_ROUTES")
    if value is None:
        return ()
    what = f"set a JSON object of account ID -> channels, e.g. {_ROUTES_EXAMPLE}, or leave it empty for no routing"
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        r.problems.append(f"ACCOUNT_ROUTES is not JSON ({exc.msg} at character {exc.pos}); {what}")
        return ()
    if not isinstance(parsed, dict):
        r.problems.append(f"ACCOUNT_ROUTES is a JSON {type(parsed).__name__}, not an object; {what}")
        return ()
    problems: list[str] = []
    routes: list[AccountRoute] = []
    for account, route in sorted(parsed.items()):
        if not ACCOUNT_ID.fullmatch(account):
            problems.append(f"{account!r} is not a 12-digit AWS account ID")
            continue
        if not isinstance(route, dict):
            problems.append(f"{account}: the route is not an object")
            continue
        found = len(problems)
        unknown = sorted(set(route) - _ROUTE_CHANNELS.keys())
        if unknown:
            problems.append(
                f"{account}: unknown field {', '.join(map(repr, unknown))} (use {', '.join(_ROUTE_CHANNELS)})"
            )
        arns: dict[str, str | None] = {}
        for field_name, (pattern, kind) in _ROUTE_CHANNELS.items():
            arn = route.get(field_name)
            if arn is None or arn == "":
                arns[field_name] = None
            elif isinstance(arn, str) and pattern.match(arn.strip()):
                arns[field_name] = arn.strip()
            else:
                problems.append(f"{account}: {field_name}={arn!r} is not {kind}")
                arns[field_name] = None
        if not any(arns.values()) and len(problems) == found:
            problems.append(f"{account}: the route names no channel (set slack_webhook_secret_arn or alert_topic_arn)")
        routes.append(AccountRoute(account, arns["slack_webhook_secret_arn"], arns["alert_topic_arn"]))
    if problems:
        r.problems.append(f"ACCOUNT_ROUTES is not valid: {'; '.join(problems)}; {what}")
        return ()
    return tuple(routes)


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """Settings of the ingest function (subscription batches -> summary table + EMF metrics)."""

    summary_table_name: str
    ttl_days: int = 90  # hourly items expire this many days after their hour ends
    metrics_namespace: str = "Pinwatch"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> IngestConfig:
        """Parse and validate every variable; raise :class:`ConfigError` listing all problems."""
        r = _Reader(environ)
        config = cls._read(r)
        if r.problems:
            raise ConfigError(r.problems)
        return config

    @classmethod
    def _read(cls, r: _Reader) -> IngestConfig:
        table = r.text(
            "SUMMARY_TABLE_NAME",
            _TABLE_NAME,
            "the summary table's name (3-255 characters: letters, digits, _ . -)",
            required=True,
        )
        # DynamoDB TTL takes up to 10 years of epoch seconds comfortably; a day is the useful minimum.
        ttl_days = r.number("SUMMARY_TTL_DAYS", 90, 1, 3650, int)
        namespace = r.raw("POWERTOOLS_METRICS_NAMESPACE") or "Pinwatch"
        return cls(summary_table_name=table or "", ttl_days=ttl_days, metrics_namespace=namespace)


# An SQS queue URL's path: /<account ID>/<queue name> (1-80 letters, digits, - and _; .fifo for FIFO queues).
_QUEUE_PATH = re.compile(r"^/\d{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?$")


@dataclass(frozen=True, slots=True)
class StreamIngestConfig:
    """Settings of the stream ingest function (organization mode): the ingest's, and where bad records go."""

    ingest: IngestConfig
    parking_queue_url: str  # SQS queue for records that cannot be decoded (the stack's dead-letter queue)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StreamIngestConfig:
        """Parse and validate every variable; raise :class:`ConfigError` listing all problems."""
        r = _Reader(environ)
        ingest = IngestConfig._read(r)
        queue_url = r.raw("PARKING_QUEUE_URL")
        if queue_url is None:
            r.problems.append("PARKING_QUEUE_URL is not set; set it to the SQS queue URL that keeps unreadable records")
        else:
            parsed = urlparse(queue_url)
            if parsed.scheme not in ("https", "http") or not parsed.netloc or not _QUEUE_PATH.match(parsed.path):
                r.problems.append(
                    f"PARKING_QUEUE_URL={queue_url!r} is not an SQS queue URL; "
                    "set it to https://sqs.<region>.amazonaws.com/<account>/<queue>"
                )
        if r.problems:
            raise ConfigError(r.problems)
        return cls(ingest=ingest, parking_queue_url=queue_url or "")
