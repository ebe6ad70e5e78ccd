"""Where a proxy lives: its AWS account and Region, and the key it is stored and alerted under.

A single-account deployment keys everything by the proxy's name, as it always has. In
organization mode (docs/organization.md) proxies come from many accounts and Regions, and
RDS Proxy names are unique only within one account and Region ("DBProxyName ... must be
unique for all proxies owned by your AWS account in the specified AWS Region", RDS API
Reference, CreateDBProxy), so the key carries both: ``<account>:<region>:<name>``. A proxy
name cannot hold a colon (letters, digits and hyphens only), so the key splits back
unambiguously, and keys of one account sort together (``begins_with`` on ``<account>:``).

Pure data and text: no boto3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# AWS account IDs are 12 digits; Region codes are like us-east-1, ap-southeast-2, us-gov-west-1.
ACCOUNT_ID = re.compile(r"\d{12}")
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
SEPARATOR = ":"
# The name part of a scope's own key (`<account>:<region>:*`), for what concerns a whole member
# (its role cannot be assumed): never a proxy name, which holds only letters, digits and hyphens.
SCOPE_WIDE = "*"


@dataclass(frozen=True, slots=True, order=True)
class Scope:
    """One member account in one Region."""

    account: str
    region: str

    def __post_init__(self) -> None:
        if not ACCOUNT_ID.fullmatch(self.account):
            raise ValueError(f"account {self.account!r} is not a 12-digit AWS account ID")
        if not REGION.fullmatch(self.region):
            raise ValueError(f"region {self.region!r} is not an AWS Region code (e.g. eu-west-1)")

    def key(self, proxy: str) -> str:
        """The proxy's key in the summary table and in alert state."""
        return f"{self.account}{SEPARATOR}{self.region}{SEPARATOR}{proxy}"

    @property
    def prefix(self) -> str:
        """What every key of this scope starts with."""
        return f"{self.account}{SEPARATOR}{self.region}{SEPARATOR}"

    def __str__(self) -> str:
        return f"{self.account}/{self.region}"


def split_key(key: str) -> tuple[Scope | None, str]:
    """(scope, proxy name) of a key; a plain name (single-account mode) has no scope."""
    parts = key.split(SEPARATOR)
    if len(parts) == 3 and ACCOUNT_ID.fullmatch(parts[0]) and REGION.fullmatch(parts[1]):
        return Scope(parts[0], parts[1]), parts[2]
    return None, key


def proxy_key(scope: Scope | None, proxy: str) -> str:
    """``scope.key(proxy)``, or the plain name without a scope."""
    return proxy if scope is None else scope.key(proxy)
