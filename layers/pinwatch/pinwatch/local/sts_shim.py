"""``sts:AssumeRole`` as AWS answers it for a role that does not exist: moto lets any ARN through.

moto maps the credentials of an assumed role to the role's account, so one moto server serves an
organization's member accounts; but it does not check that the role exists ("the role does not
need to exist", moto's ``STSBackend.assume_role``). AWS answers ``AccessDenied`` ("User: ... is not
authorized to perform: sts:AssumeRole on resource: ..."), the case organization mode reports as
``member_unreachable``. :func:`install` makes moto answer the same whenever the target account's
IAM has no role of that name.

``OrganizationAccountAccessRole`` is let through: AWS Organizations creates it in every account
it creates, and the local organization (:mod:`pinwatch.local.org`) sets up members with it, as an
administrator would.
"""

from __future__ import annotations

from typing import Any

from pinwatch.local.moto_server import patch_moto

ORGANIZATION_ACCESS_ROLE = "OrganizationAccountAccessRole"


def install() -> None:
    """Make moto's AssumeRole deny roles missing from the target account (idempotent)."""
    # STS's model names no AccessDenied shape: patch_moto silences moto's warning for it.
    patch_moto("sts:AssumeRole", _patch, client_error="STSClientError")


def _patch() -> None:
    from moto.sts.models import STSBackend

    original = STSBackend.assume_role

    def assume_role(self: Any, **kwargs: Any) -> Any:
        _require_role(str(kwargs.get("role_arn") or ""))
        return original(self, **kwargs)

    STSBackend.assume_role = assume_role  # type: ignore[method-assign,assignment]


def _require_role(role_arn: str) -> None:
    from moto.iam.models import iam_backends
    from moto.sts.exceptions import STSClientError

    # arn:<partition>:iam::<account>:role/<path/><name>
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or not parts[5].startswith("role/"):
        return  # moto validates the rest as it always does
    partition, account, name = parts[1], parts[4], parts[5].rsplit("/", 1)[-1]
    if name == ORGANIZATION_ACCESS_ROLE:
        return
    roles = iam_backends[account][partition].roles.values()
    if not any(role.name == name for role in roles):
        raise STSClientError(
            "AccessDenied",
            f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
        )
