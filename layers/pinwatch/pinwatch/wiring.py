"""The one place where pinwatch's objects are wired to AWS: clients, store, dispatcher, check.

Both functions build their module-level objects here once per cold start, and ``pinwatch check``
builds the same check from the CLI's clients, so the three run the same wiring. A Slack webhook
secret that cannot be read, or whose URL is not an https Slack webhook, fails here with a message
naming ``SLACK_WEBHOOK_SECRET_ARN`` — never with the URL.

Imports nothing from ``pinwatch.cli`` or ``pinwatch.local``: the Lambda layer leaves those out.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, cast

import boto3
from botocore.config import Config

from pinwatch.config import AccountRoute, CheckConfig, ConfigError, IngestConfig, StreamIngestConfig
from pinwatch.store.summary import SummaryStore

# The check's and the alerts' modules are imported where they are built, not here: the ingest
# function imports this module too, and its cold start should not load Slack, rendering or diagnosis.
if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_sns.client import SNSClient
    from mypy_boto3_sqs import SQSClient

    from pinwatch.alerts.dispatcher import AlertDispatcher
    from pinwatch.alerts.render import SlackMention
    from pinwatch.alerts.secrets import SecretProvider
    from pinwatch.alerts.slack import SlackWebhookUrl
    from pinwatch.capture_runner import LoggingSwitch, ReasonCapture
    from pinwatch.check import Check, ConnectionCheck, Dispatcher
    from pinwatch.members import MemberSessions
    from pinwatch.org import OrgCheck
    from pinwatch.parking import SqsParking
    from pinwatch.scope import Scope
    from pinwatch.store.hot_state import ContributorWatchStore

# botocore's standard retry mode (exponential backoff with jitter on throttling and 5xx) and
# timeouts well inside the functions' own, so one slow API cannot eat a whole run.
AWS_CLIENT_CONFIG = Config(retries={"mode": "standard"}, connect_timeout=3, read_timeout=10)
# SNS: fewer attempts and a shorter read, so an SNS outage leaves time for the other proxies.
SNS_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=5)
# Wall-clock limit of one SNS publish, botocore's retries included (its timeouts are per socket
# operation, so they alone do not bound a slow answer).
SNS_DEADLINE_S = 20.0
# Beyond the Slack budget: the budget ends a send cleanly; this ends one the peer keeps alive.
SLACK_DEADLINE_GRACE_S = 1.0
# The ingest function's table writes: more attempts, as a throttled batch is otherwise retried whole
# by Lambda; the store adds bounded retries for transaction conflicts between concurrent invocations.
INGEST_DYNAMODB_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=10)

_CLIENT_CONFIGS = {"sns": SNS_CLIENT_CONFIG}
# What the check calls in a member account, through the member role (organization mode).
MEMBER_SERVICES = ("rds", "cloudwatch")

# service name -> boto3 client (Any: the service is chosen at run time).
ClientFactory = Callable[[str], Any]


def aws_client(service: str, **settings: str) -> Any:
    """A boto3 client as the functions create them (region and endpoint from the environment, or ``settings``)."""
    factory: Any = boto3.client  # boto3's typed overloads need the service name as a literal
    return factory(service, config=_CLIENT_CONFIGS.get(service, AWS_CLIENT_CONFIG), **settings)


# boto3 names a service-specific endpoint variable after the service's *service id*, spaces as
# underscores ("Service-specific endpoints", Boto3 and AWS SDKs configuration guides), which is
# not always the client name. The services pinwatch creates clients for:
_SERVICE_IDS = {"secretsmanager": "Secrets Manager", "logs": "CloudWatch Logs"}


def environment_settings(service: str, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The region and endpoint boto3 would take from the environment for ``service``, read now.

    A cold start reads its environment once; a client made later from these settings talks to
    the same endpoint even if the process environment changed since (local harnesses restore it).
    The variables are boto3's own: ``AWS_ENDPOINT_URL_<SERVICE>`` before ``AWS_ENDPOINT_URL``.
    """
    settings: dict[str, str] = {}
    service_id = _SERVICE_IDS.get(service, service).upper().replace(" ", "_")
    endpoint = environ.get(f"AWS_ENDPOINT_URL_{service_id}") or environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        settings["endpoint_url"] = endpoint
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        settings["region_name"] = region
    return settings


class LazyClient:
    """A boto3 client created at its first use, then kept: transparent to every caller.

    Creating a client loads its service model (tens of milliseconds each). Most check invocations
    between two sweeps find nothing hot and call DynamoDB alone, so RDS, CloudWatch and SNS
    clients made at cold start would often be made for nothing. Thread-safe: discovery reads
    target groups from several threads.
    """

    def __init__(self, service: str, factory: Callable[..., Any] = aws_client) -> None:
        self._service = service
        self._factory = factory
        # Where the client will talk to is decided now, from the environment of the cold start.
        self._settings = environment_settings(service)
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory(self._service, **self._settings)
                client = self._client
        return getattr(client, name)


def lazy_clients(factory: Callable[..., Any] = aws_client) -> ClientFactory:
    """One :class:`LazyClient` per service, shared by everything built from this factory."""
    made: dict[str, LazyClient] = {}

    def client(service: str) -> Any:
        if service not in made:
            made[service] = LazyClient(service, factory)
        return made[service]

    return client


# --------------------------------------------------------------------------------------------
# The ingest function


def ingest_dynamodb_client() -> DynamoDBClient:
    """The ingest function's DynamoDB client (its retry settings: :data:`INGEST_DYNAMODB_CONFIG`)."""
    return boto3.client("dynamodb", config=INGEST_DYNAMODB_CONFIG)


def summary_store(config: IngestConfig, dynamodb_client: DynamoDBClient) -> SummaryStore:
    """The store the ingest function writes batches to."""
    return SummaryStore(dynamodb_client, config.summary_table_name, ttl_days=config.ttl_days)


def stream_ingest(config: StreamIngestConfig) -> tuple[SummaryStore, SqsParking]:
    """The stream ingest function's store (the ingest's client settings) and where it parks bad records.

    The SQS client is made at the first parked record: most environments never park one.
    """
    from pinwatch.parking import SqsParking

    sqs: SQSClient = cast("SQSClient", LazyClient("sqs"))
    return summary_store(config.ingest, ingest_dynamodb_client()), SqsParking(sqs, config.parking_queue_url)


# --------------------------------------------------------------------------------------------
# The check function and ``pinwatch check``


def check_function(config: CheckConfig) -> Check:
    """The scheduled function's check: every client from the environment (made at first use), alerts always on.

    With ``ORG_MEMBER_STACK_SET`` set, the organization's check (:func:`org_check`); otherwise this
    account and Region's.
    """
    clients = lazy_clients()
    dispatcher = alert_dispatcher(config, clients, region=_region())
    if config.org_mode:
        return org_check(config, clients, dispatcher=dispatcher)
    return connection_check(config, clients, dispatcher=dispatcher)


def _region(environ: Mapping[str, str] = os.environ) -> str | None:
    # Lambda sets AWS_REGION; reading it spares creating a client just to ask for its region.
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None


def connection_check(
    config: CheckConfig, clients: ClientFactory = aws_client, *, dispatcher: Dispatcher | None = None
) -> ConnectionCheck:
    """The check on clients from ``clients``; without a table (CLI only) it runs on metrics alone."""
    return build_connection_check(
        config,
        rds_client=clients("rds"),
        cloudwatch_client=clients("cloudwatch"),
        dynamodb_client=clients("dynamodb") if config.summary_table_name else None,
        dispatcher=dispatcher,
    )


def build_connection_check(
    config: CheckConfig,
    *,
    rds_client: RDSClient,
    cloudwatch_client: CloudWatchClient,
    dynamodb_client: DynamoDBClient | None = None,
    dispatcher: Dispatcher | None = None,
    clock: Callable[[], float] | None = None,
    scope: Scope | None = None,
) -> ConnectionCheck:
    """The check wired to these AWS clients; without a table it runs on metrics alone.

    ``clock`` (seconds) ages the cached target-group settings; a simulated day passes its own.
    ``scope``: the member account and Region the RDS and CloudWatch clients read (organization
    mode); reports and stored state then use qualified keys.
    """
    from pinwatch.check import ConnectionCheck, catalog_hints
    from pinwatch.diagnose import caller_for
    from pinwatch.discovery import RdsProxyDiscovery
    from pinwatch.metrics import CloudWatchMetricsReader

    reasons: SummaryStore | None = None
    if dynamodb_client is not None and config.summary_table_name:
        reasons = SummaryStore(dynamodb_client, config.summary_table_name)
    capture = (
        reason_capture(config, rds_client, dynamodb_client, reasons, scoped=scope is not None)
        if reasons is not None
        else None
    )
    return ConnectionCheck(
        proxies=RdsProxyDiscovery(rds_client) if clock is None else RdsProxyDiscovery(rds_client, clock=clock),
        metrics=CloudWatchMetricsReader(cloudwatch_client, periodic_every_minutes=config.setup_failed_every_minutes),
        thresholds=config.thresholds,
        window_minutes=config.metrics_window_minutes,
        proxy_names=config.proxy_names,
        reasons=reasons,
        hints=catalog_hints,
        dispatcher=dispatcher,
        capture=capture,
        scope=scope,
        caller=caller_for(scope, config.org_member_role_name),
    )


def reason_capture(
    config: CheckConfig,
    rds_client: RDSClient,
    dynamodb_client: DynamoDBClient | None,
    reasons: SummaryStore,
    *,
    scoped: bool = False,
) -> ReasonCapture | None:
    """Reason capture when switched on (its state lives in the summary table, so it needs one).

    ``reasons`` is the check's own store of the same table: capture reads its coverage there too.
    ``scoped``: a member's check hands capture keys; ``ModifyDBProxy`` goes through the member's
    RDS client by the bare name (the member role may call it only when capture is on).
    """
    from pinwatch.capture import CaptureMode, CaptureSettings
    from pinwatch.capture_runner import ReasonCapture
    from pinwatch.proxy_logging import RdsDebugLogging
    from pinwatch.store.capture_state import CaptureStateStore

    mode = CaptureMode(config.reason_capture)
    if mode is CaptureMode.OFF or dynamodb_client is None or not config.summary_table_name:
        return None
    settings = CaptureSettings(mode=mode, cap_minutes=round(config.reason_capture_max_hours * 60))
    switch: LoggingSwitch = RdsDebugLogging(rds_client)
    if scoped:
        from pinwatch.members import BareNameSwitch

        switch = BareNameSwitch(switch)
    return ReasonCapture(
        settings,
        CaptureStateStore(dynamodb_client, config.summary_table_name),
        switch,
        window_minutes=config.metrics_window_minutes,
        proxy_names=config.proxy_names,
        reasons=reasons,
    )


def org_check(
    config: CheckConfig,
    clients: ClientFactory = aws_client,
    *,
    dispatcher: Dispatcher | None = None,
    sessions: MemberSessions | None = None,
    clock: Callable[[], float] | None = None,
) -> OrgCheck:
    """The organization's check: members from the StackSet and ``ORG_EXTRA_TARGETS``, each read through its member role.

    The StackSet listing and ``sts:AssumeRole`` use the monitoring account's clients from
    ``clients``; the summary table and the alerts are the central ones. ``sessions`` replaces the
    member sessions built here (a local emulation passes its own endpoint). ``clock`` (seconds)
    ages the target list, the retry time of unreachable members and the target-group caches.
    """
    from pinwatch.members import StackSetTargets
    from pinwatch.org import OrgCheck

    if config.org_member_stack_set is None:
        raise ConfigError(["ORG_MEMBER_STACK_SET is not set; the organization's check needs the member StackSet"])
    if sessions is None:
        sessions = member_sessions(config, clients("sts"))
    table = clients("dynamodb") if config.summary_table_name else None

    def scoped(scope: Scope, shared: Dispatcher | None) -> ConnectionCheck:
        return build_connection_check(
            config,
            rds_client=sessions.lazy(scope, "rds"),
            cloudwatch_client=sessions.lazy(scope, "cloudwatch"),
            dynamodb_client=table,
            dispatcher=shared,
            clock=clock,
            scope=scope,
        )

    timed = clock or time.monotonic
    targets = StackSetTargets(
        clients("cloudformation"),
        config.org_member_stack_set,
        call_as=config.org_stack_set_call_as,
        extra=config.org_extra_targets,
        clock=timed,
    )
    return OrgCheck(
        targets=targets, factory=scoped, role_name=config.org_member_role_name, dispatcher=dispatcher, clock=timed
    )


def member_sessions(config: CheckConfig, sts_client: Any, environ: Mapping[str, str] = os.environ) -> MemberSessions:
    """Sessions through ``ORG_MEMBER_ROLE_NAME`` in each member, with the clients' usual retries and timeouts.

    The role ARN's partition is the monitoring account's (members share its partition); member
    clients talk to the endpoint the environment names, as every other client does.
    """
    from pinwatch.members import MemberSessions, partition_of

    region = _region(environ)
    partition = partition_of(region, boto3.session.Session().get_partition_for_region)

    # Endpoints are read now, at cold start, like every other client's (see environment_settings).
    endpoints = {service: environment_settings(service, environ).get("endpoint_url") for service in MEMBER_SERVICES}

    def make(service: str, **settings: str) -> Any:
        endpoint = endpoints.get(service)
        return aws_client(service, **settings, **({"endpoint_url": endpoint} if endpoint else {}))

    return MemberSessions(sts_client, config.org_member_role_name, make, partition=partition)


def alarm_contributors(config: CheckConfig, clients: ClientFactory | None = None) -> Callable[[], frozenset[str]]:
    """Proxies in ALARM on the configured Metrics Insights alarms (none configured: no call).

    Organization mode reads none: the alarms are the members' own, and their contributor events
    reach the check through the central event bus, which remembers them (:func:`contributor_watch`;
    a member's alarm state would cost an AssumeRole and a call per member every minute).
    """
    if not config.contributor_alarms or config.org_mode:
        return frozenset
    from pinwatch.fleet import AlarmContributors

    return AlarmContributors((clients or lazy_clients())("cloudwatch"), config.contributor_alarms).in_alarm


def contributor_watch(config: CheckConfig, clients: ClientFactory | None = None) -> ContributorWatchStore | None:
    """Organization mode's store of the member alarms' contributor states, in the summary table.

    None in single-account mode (its own alarm is read instead, :func:`alarm_contributors`) and
    without a table.
    """
    if not config.org_mode or not config.summary_table_name:
        return None
    from pinwatch.store.hot_state import ContributorWatchStore

    return ContributorWatchStore((clients or lazy_clients())("dynamodb"), config.summary_table_name)


def alert_dispatcher(
    config: CheckConfig, clients: ClientFactory = aws_client, *, region: str | None = None
) -> AlertDispatcher:
    """The dispatcher on clients from ``clients``: SNS and Secrets Manager only when configured."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from pinwatch.alerts.secrets import CachedSecretProvider

    routes = config.account_routes
    secrets = (
        CachedSecretProvider(SecretsProvider(boto3_client=clients("secretsmanager")))
        if config.slack_webhook_secret_arn or any(r.slack_webhook_secret_arn for r in routes)
        else CachedSecretProvider()
    )
    return build_dispatcher(
        config,
        clients("dynamodb") if config.summary_table_name else None,
        clients("sns") if config.alert_topic_arn or any(r.alert_topic_arn for r in routes) else None,
        secrets,
        region=region,
    )


class AlertConfig(Protocol):
    """The alert-related attributes of ``pinwatch.config.CheckConfig`` (read-only)."""

    @property
    def summary_table_name(self) -> str: ...
    @property
    def alert_topic_arn(self) -> str | None: ...
    @property
    def slack_webhook_secret_arn(self) -> str | None: ...
    @property
    def renotify_minutes(self) -> int: ...
    @property
    def resolve_after_checks(self) -> int: ...
    @property
    def slack_mention_on_critical(self) -> SlackMention: ...
    @property
    def chat_notifications(self) -> bool: ...
    @property
    def dashboard_url(self) -> str | None: ...


def build_dispatcher(
    config: AlertConfig,
    dynamodb_client: DynamoDBClient | None,
    sns_client: SNSClient | None,
    secret_provider: SecretProvider,
    *,
    region: str | None = None,
    slack_timeout_s: float = 5.0,
    slack_budget_s: float = 20.0,
) -> AlertDispatcher:
    """Channels from the config (Slack and SNS each optional), state in the summary table.

    Called once at cold start: the webhook secret is read and checked here, then re-read through
    ``secret_provider`` for each message (a rotated webhook is picked up without a redeploy).

    ``region`` is used for links to the RDS console; it defaults to the DynamoDB client's region.
    Raises :class:`pinwatch.config.ConfigError` for an unusable webhook secret or missing client.

    Each ``ACCOUNT_ROUTES`` entry adds ``slack:<account>`` and/or ``sns:<account>`` channels that
    carry only that account's proxies; their webhook secrets are read at the first alert (through
    the same ``secret_provider`` and its cache), so one account's broken secret fails only its channel.
    """
    from pinwatch.alerts.dispatcher import AlertDispatcher, ChannelSpec
    from pinwatch.alerts.policy import PolicySettings
    from pinwatch.alerts.render import RenderSettings, render_slack, render_sns
    from pinwatch.alerts.slack import SlackNotifier
    from pinwatch.alerts.sns import SnsPublisher
    from pinwatch.store.alert_state import AlertStateStore

    if region is None and dynamodb_client is not None:
        region = dynamodb_client.meta.region_name
    render_settings = RenderSettings(
        region=region,
        dashboard_url=config.dashboard_url,
        mention_on_critical=config.slack_mention_on_critical,
        chat_notifications=config.chat_notifications,
    )
    allow_loopback = bool(getattr(config, "slack_allow_loopback", False))

    slack_sender: SlackNotifier | None = None
    if config.slack_webhook_secret_arn:
        secret_arn = config.slack_webhook_secret_arn
        _webhook_url(secret_provider, secret_arn, allow_loopback)  # fail at cold start, not at the first alert
        slack_sender = SlackNotifier(
            partial(_webhook_url, secret_provider, secret_arn, allow_loopback),
            timeout_s=slack_timeout_s,
            budget_s=slack_budget_s,
        )
    sns_sender: SnsPublisher | None = None
    if config.alert_topic_arn:
        if sns_client is None:
            raise ConfigError(["ALERT_TOPIC_ARN is set but no SNS client was given; pass one to build_dispatcher"])
        sns_sender = SnsPublisher(sns_client, config.alert_topic_arn)

    store = (
        AlertStateStore(dynamodb_client, config.summary_table_name)
        if dynamodb_client and config.summary_table_name
        else None
    )
    channels = [
        ChannelSpec(
            "slack",
            partial(render_slack, settings=render_settings),
            slack_sender,
            deadline_s=slack_budget_s + SLACK_DEADLINE_GRACE_S,
        ),
        ChannelSpec("sns", partial(render_sns, settings=render_settings), sns_sender, deadline_s=SNS_DEADLINE_S),
    ]
    # Organization mode: a routed account's alerts also go to its own channels, each a channel of
    # its own (own deadline, own failures, own pending retries in the alert state).
    for route in getattr(config, "account_routes", ()):
        if route.slack_webhook_secret_arn:
            # Read at the first alert, not at cold start: one account's broken secret must not stop
            # the check for every account. A secret that cannot be read fails only this channel.
            url = partial(
                _webhook_url, secret_provider, route.slack_webhook_secret_arn, allow_loopback, _route_variable(route)
            )
            sender = SlackNotifier(url, timeout_s=slack_timeout_s, budget_s=slack_budget_s)
            channels.append(
                ChannelSpec(
                    f"slack:{route.account}",
                    partial(render_slack, settings=render_settings),
                    sender,
                    deadline_s=slack_budget_s + SLACK_DEADLINE_GRACE_S,
                    account=route.account,
                )
            )
        if route.alert_topic_arn:
            channels.append(
                ChannelSpec(
                    f"sns:{route.account}",
                    partial(render_sns, settings=render_settings),
                    SnsPublisher(_routed_sns_client(sns_client, route, region), route.alert_topic_arn),
                    deadline_s=SNS_DEADLINE_S,
                    account=route.account,
                )
            )
    settings = PolicySettings.from_minutes(config.renotify_minutes, config.resolve_after_checks)
    return AlertDispatcher(store, channels, settings)


def _route_variable(route: AccountRoute) -> str:
    return f"ACCOUNT_ROUTES[{route.account}].slack_webhook_secret_arn"


def _routed_sns_client(sns_client: SNSClient | None, route: AccountRoute, region: str | None) -> SNSClient:
    """The SNS client for a routed topic, which must live in the function's Region.

    SNS refuses a Publish to a topic of another Region ("Invalid parameter: TopicArn"), so a
    routed topic elsewhere is a configuration error at cold start, not a failure at every alert.
    """
    if sns_client is None:
        raise ConfigError(
            ["ACCOUNT_ROUTES names an SNS topic but no SNS client was given; pass one to build_dispatcher"]
        )
    topic_region = (route.alert_topic_arn or "").split(":")[3]
    if region is not None and topic_region != region:
        raise ConfigError(
            [
                f"ACCOUNT_ROUTES[{route.account}].alert_topic_arn is a topic in {topic_region}, but alerts are "
                f"published from {region}; create the account's topic in {region}"
            ]
        )
    return sns_client


def _webhook_url(
    provider: SecretProvider, secret_arn: str, allow_loopback: bool, variable: str = "SLACK_WEBHOOK_SECRET_ARN"
) -> SlackWebhookUrl:
    from pinwatch.alerts.slack import WebhookUrlError, parse_webhook_secret
    from pinwatch.findings import error_text

    try:
        secret = provider(secret_arn)
    except Exception as exc:
        raise ConfigError(
            [
                f"{variable}: the secret cannot be read ({error_text(exc, 200)}); check that it exists "
                "and the function may call secretsmanager:GetSecretValue on it, or leave it empty for no Slack alerts"
            ]
        ) from None
    try:
        return parse_webhook_secret(secret, allow_loopback=allow_loopback)
    except WebhookUrlError as exc:
        raise ConfigError(
            [
                f"{variable}: {exc}; store an incoming webhook URL (https://hooks.slack.com/services/...) "
                'or JSON {"url": "..."} in the secret'
            ]
        ) from None
