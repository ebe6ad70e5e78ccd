"""Organization mode's AWS adapters: which members to check, and their clients through the member role.

- :class:`StackSetTargets`: the (account, Region) pairs of the member StackSet's stack instances
  (``ListStackInstances``, paginated), read at most every 15 minutes, plus the extra targets
  enrolled outside it (``ORG_EXTRA_TARGETS``: the management account, accounts outside its OUs).
- :class:`MemberSessions`: per member account, credentials of its read role
  (``arn:<partition>:iam::<account>:role/<MemberRoleName>``) from ``sts:AssumeRole``, reused until
  shortly before they expire; per (account, Region, service) a client made with them.

The boto3 clients (CloudFormation, STS) and the client factory are injected by :mod:`pinwatch.wiring`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pinwatch.findings import error_text
from pinwatch.org import TARGET_CACHE_TTL_S, MemberAccessError, TargetListing, error_code
from pinwatch.scope import Scope, split_key

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pinwatch.capture_runner import LoggingSwitch

logger = logging.getLogger(__name__)

DEFAULT_MEMBER_ROLE = "pinwatch-member-reader"
SESSION_NAME = "pinwatch-check"
# Credentials are renewed this long before they expire, so no call starts with ones about to lapse.
# AssumeRole's default duration is one hour (STS API Reference, AssumeRole, DurationSeconds).
REFRESH_MARGIN_S = 300.0

# Which stack instances lead to a usable member role, from the StackInstanceSummary fields
# (CloudFormation API Reference, StackInstanceSummary and StackInstanceComprehensiveStatus):
# - Status CURRENT: "The stack is currently up to date with the stack set": its role exists.
# - Status OUTDATED with a StackId: the stack exists but the last StackSet operation did not
#   update it (it "failed ... or was stopped"); the role of its earlier version normally still
#   does, and if not, member_unreachable says so. Without a StackId nothing was created yet
#   (e.g. PENDING in a newly added account): checking it would only raise a false alert.
# - Status INOPERABLE: "A DeleteStackInstances operation has failed and left the stack in an
#   unstable state": the member is being removed.
# - DetailedStatus SKIPPED_SUSPENDED_ACCOUNT: the account is suspended, its role unusable.
_USABLE_STATUSES = frozenset({"CURRENT", "OUTDATED"})
_SKIPPED_DETAILED = frozenset({"SKIPPED_SUSPENDED_ACCOUNT", "INOPERABLE"})


def usable(summary: Mapping[str, Any]) -> bool:
    """Whether a stack instance's member role can be expected to work (see the table above)."""
    status = summary.get("Status")
    detailed = summary.get("StackInstanceStatus", {}).get("DetailedStatus")
    if status not in _USABLE_STATUSES or detailed in _SKIPPED_DETAILED:
        return False
    return status == "CURRENT" or bool(summary.get("StackId"))


class StackSetTargets:
    """The member StackSet's usable stack instances as scopes, listed at most every ``ttl_s``.

    ``call_as`` is ``SELF`` when the monitoring account is the organization's management account,
    ``DELEGATED_ADMIN`` when it is a delegated StackSets administrator (ListStackInstances, CallAs).
    A failed listing keeps the previous scopes (the next run lists again), marked not current;
    with none yet, it raises.

    ``extra``: scopes enrolled by deploying the member template as a plain stack, which no stack
    instance lists. "StackSets doesn't deploy stack instances to the organization management
    account, even if the organization management account is in your organization or in an OU in
    your organization" (CloudFormation API Reference, DeploymentTargets), so the management
    account can only be enrolled this way. They are added to
    every listing, sorted and without duplicates (one already listed is checked once).
    """

    def __init__(
        self,
        client: Any,  # boto3 CloudFormation client
        stack_set: str,
        *,
        call_as: str = "SELF",
        extra: Iterable[Scope] = (),
        ttl_s: float = TARGET_CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._stack_set = stack_set
        self._call_as = call_as
        self._extra = frozenset(extra)
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._listed: tuple[float, tuple[Scope, ...]] | None = None
        self.listings = 0  # ListStackInstances listings made (each one or more pages)

    def scopes(self) -> tuple[Scope, ...]:
        return self.listing().scopes

    def listing(self) -> TargetListing:
        """The scopes, and whether they come from a listing that succeeded (``current``).

        A listing kept after a failure is not current: a member missing from it may only be
        missing because the list is old, so nobody may conclude from it that a member left.
        """
        with self._lock:
            now = self._clock()
            if self._listed is not None and now - self._listed[0] < self._ttl_s:
                return TargetListing(self._listed[1], current=True)
            try:
                scopes = self._list()
            except Exception:
                if self._listed is None:
                    raise
                logger.warning("listing the member stack instances failed; using the previous list", exc_info=True)
                return TargetListing(self._listed[1], current=False)
            self._listed = (now, scopes)
            return TargetListing(scopes, current=True)

    def _list(self) -> tuple[Scope, ...]:
        self.listings += 1
        paginator = self._client.get_paginator("list_stack_instances")
        found: set[Scope] = set()
        for page in paginator.paginate(StackSetName=self._stack_set, CallAs=self._call_as):
            for summary in page.get("Summaries", []):
                account, region = summary.get("Account"), summary.get("Region")
                if not account or not region or not usable(summary):
                    continue
                try:
                    found.add(Scope(account, region))
                except ValueError:
                    logger.warning("stack instance %s/%s is not an account and Region; skipped", account, region)
        return tuple(sorted(found | self._extra))


# (service, region, access key id, secret, session token) -> boto3 client
MemberClientFactory = Callable[..., Any]


class MemberSessions:
    """Clients in member accounts through their read role, one assumed session per account.

    The role is created once per account by the member template (in the home Region) and is
    global, so one set of credentials serves every Region of the account. Thread-safe: members
    are checked concurrently.
    """

    def __init__(
        self,
        sts: Any,  # boto3 STS client
        role_name: str,
        make_client: MemberClientFactory,
        *,
        partition: str = "aws",
        session_name: str = SESSION_NAME,
        refresh_margin_s: float = REFRESH_MARGIN_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sts = sts
        self._role_name = role_name
        self._make_client = make_client
        self._partition = partition
        self._session_name = session_name
        self._margin_s = refresh_margin_s
        self._clock = clock
        self._lock = threading.Lock()
        self._account_locks: dict[str, threading.Lock] = {}
        # account -> (credentials, expires at epoch seconds, generation)
        self._credentials: dict[str, tuple[dict[str, str], float, int]] = {}
        # (account, region, service) -> (generation of its credentials, client)
        self._clients: dict[tuple[str, str, str], tuple[int, Any]] = {}
        self.assumed = 0  # AssumeRole calls made

    def role_arn(self, account: str) -> str:
        return f"arn:{self._partition}:iam::{account}:role/{self._role_name}"

    def client(self, scope: Scope, service: str) -> Any:
        """A client for ``service`` in the member's Region, on current credentials (assumed if needed).

        Raises :class:`~pinwatch.org.MemberAccessError` when the role cannot be assumed.
        """
        generation, credentials = self._current(scope.account)
        key = (scope.account, scope.region, service)
        with self._lock:
            made = self._clients.get(key)
            if made is not None and made[0] == generation:
                return made[1]
        client = self._make_client(
            service,
            region_name=scope.region,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        with self._lock:
            self._clients[key] = (generation, client)
        return client

    def lazy(self, scope: Scope, service: str) -> Any:
        """A client that assumes the role at its first call and follows renewed credentials."""
        return MemberClient(self, scope, service)

    def _current(self, account: str) -> tuple[int, dict[str, str]]:
        with self._lock:
            lock = self._account_locks.setdefault(account, threading.Lock())
        with lock:  # one AssumeRole per account at a time, however many Regions ask
            with self._lock:
                held = self._credentials.get(account)
            if held is not None and self._clock() < held[1] - self._margin_s:
                return held[2], held[0]
            credentials, expires = self._assume(account)
            generation = (held[2] + 1) if held is not None else 1
            with self._lock:
                self._credentials[account] = (credentials, expires, generation)
            return generation, credentials

    def _assume(self, account: str) -> tuple[dict[str, str], float]:
        arn = self.role_arn(account)
        self.assumed += 1
        try:
            response = self._sts.assume_role(RoleArn=arn, RoleSessionName=self._session_name)
        except Exception as exc:
            if not hasattr(exc, "response"):
                raise  # no credentials of our own, an endpoint down: not this member's problem
            raise MemberAccessError(account, arn, error_code(exc), error_text(exc, 300)) from exc
        given = response["Credentials"]
        expiration = given["Expiration"]
        expires = expiration.timestamp() if isinstance(expiration, datetime) else float(expiration)
        credentials = {
            "AccessKeyId": given["AccessKeyId"],
            "SecretAccessKey": given["SecretAccessKey"],
            "SessionToken": given["SessionToken"],
        }
        return credentials, expires


class MemberClient:
    """A member client resolved at each use: first use assumes the role, renewed credentials bring a new client.

    The scoped check keeps its clients for the life of the function instance (its target-group
    cache lives next to them), longer than one set of credentials lasts.
    """

    def __init__(self, sessions: MemberSessions, scope: Scope, service: str) -> None:
        self._sessions = sessions
        self._scope = scope
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sessions.client(self._scope, self._service), name)


class BareNameSwitch:
    """Reason capture's ``ModifyDBProxy`` switch for a scoped check: it is handed keys, RDS wants names."""

    def __init__(self, inner: LoggingSwitch) -> None:
        self._inner = inner

    def set_debug_logging(self, proxy: str, enabled: bool) -> None:
        self._inner.set_debug_logging(split_key(proxy)[1], enabled)


def partition_of(region: str | None, lookup: Callable[[str], str] | None = None) -> str:
    """The ARN partition of ``region`` (aws, aws-cn, aws-us-gov, …), ``aws`` when unknown."""
    if not region or lookup is None:
        return "aws"
    try:
        return lookup(region)
    except Exception:
        return "aws"
