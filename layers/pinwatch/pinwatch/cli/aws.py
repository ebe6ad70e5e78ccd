"""AWS access for the CLI subcommands: shared options, lazily created clients, one-line errors.

Every subcommand that talks to AWS takes the same ``--region``/``--profile``/``--endpoint-url``
options and reports AWS failures the same way: one line saying what to fix, exit code 2.
boto3 is imported on first use, so ``pinwatch --help`` and the offline subcommands never pay for it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from pinwatch.cli import CliError


def add_aws_arguments(parser: argparse.ArgumentParser, endpoint_help: str | None = None) -> None:
    parser.add_argument("--region", help="AWS region (default: the AWS CLI's configuration)")
    parser.add_argument("--profile", help="AWS named profile")
    parser.add_argument(
        "--endpoint-url",
        help=endpoint_help or "endpoint for every AWS call, e.g. a local emulator (default: $AWS_ENDPOINT_URL)",
    )


class AwsClients:
    """boto3 clients for one CLI run, created on first use; AWS errors become :class:`CliError`.

    `table` names the DynamoDB table the command reads, so a missing table says which one.
    """

    def __init__(
        self, args: argparse.Namespace, table: str | None = None, retries: Mapping[str, Any] | None = None
    ) -> None:
        import boto3
        from botocore.config import Config

        self._endpoint_url: str | None = getattr(args, "endpoint_url", None)
        self._table = table
        # A CLI should fail fast on a wrong endpoint rather than retry for a minute; a long scan
        # (backfill) passes `retries` to ride out throttling instead.
        retry_config = dict(retries) if retries is not None else {"mode": "standard", "max_attempts": 3}
        self._config = Config(retries=retry_config, connect_timeout=5, read_timeout=20)  # type: ignore[arg-type]
        # Any: services are named at run time, which boto3's per-service overloads cannot type.
        self._session: Any = self.call(
            lambda: boto3.Session(
                profile_name=getattr(args, "profile", None), region_name=getattr(args, "region", None)
            )
        )
        self._clients: dict[str, Any] = {}

    def get(self, service: str) -> Any:
        if service not in self._clients:
            try:
                self._clients[service] = self.call(
                    lambda: self._session.client(service, endpoint_url=self._endpoint_url, config=self._config)
                )
            except ValueError as exc:
                # botocore validates the endpoint (from --endpoint-url or AWS_ENDPOINT_URL[_<SERVICE>])
                # when it creates the client, and says so with a bare ValueError.
                raise CliError(describe_endpoint_error(exc, service, self._endpoint_url)) from None
        return self._clients[service]

    def where(self, service: str) -> str:
        """ " in region R" (plus " at URL" for a non-AWS endpoint), for error messages."""
        meta = self.get(service).meta
        where = f" in region {meta.region_name}"
        if self._endpoint_url or meta.endpoint_url.startswith("http://"):
            where += f" at {meta.endpoint_url}"
        return where

    def call[T](self, fn: Callable[[], T], where: str = "") -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn()
        except (BotoCoreError, ClientError) as exc:
            raise CliError(describe_aws_error(exc, table=self._table, where=where)) from None


def describe_endpoint_error(exc: ValueError, service: str, endpoint_url: str | None) -> str:
    source = "--endpoint-url" if endpoint_url else f"AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_{service.upper()})"
    reason = " ".join(str(exc).split())
    return f"the {service} endpoint from {source} is not a usable URL ({reason}); give one like http://localhost:4566"


def describe_aws_error(exc: Exception, *, table: str | None = None, where: str = "") -> str:
    """One line that says what went wrong and what to fix."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if table and code == "ResourceNotFoundException":
            return f"table {table!r} not found{where}; pass the stack's SummaryTable name with --table"
        if code in ("UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"):
            return f"AWS rejected the credentials ({code}); refresh them or choose another --profile"
        if table and code == "AccessDeniedException":
            return f"access denied reading table {table!r}: the caller needs dynamodb:Query on it"
        operation = getattr(exc, "operation_name", "an AWS call")
        return f"{operation} failed{where}: {code or 'error'}: {error.get('Message', '')}".rstrip(": ")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials found; configure a profile (--profile) or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, NoRegionError):
        return "no AWS region configured; pass --region or set AWS_DEFAULT_REGION"
    if isinstance(exc, ProfileNotFound):
        return str(exc)
    if isinstance(exc, EndpointConnectionError):
        return (
            f"cannot reach the AWS endpoint {exc.kwargs.get('endpoint_url', '')}; "
            "check --endpoint-url, AWS_ENDPOINT_URL or the network"
        )
    return " ".join(str(exc).split())
