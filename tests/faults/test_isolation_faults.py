"""No channel waits on another: the real check function against a Slack that trickles its answer.

A socket timeout is per read, so a peer that sends one byte every 2 s never trips it; only a
wall-clock deadline ends such a send. The function's timeout is scaled down (6 s instead of 50 s)
so the test stays short; the deadlines it derives from the remaining time scale with it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.faults.test_alert_faults import REGION, CheckWorld, world  # noqa: F401  (the shared fixture)
from tests.integration.aws_proxies import clients
from tests.support.lambda_runtime import SCHEDULE_EVENT, FakeContext

pytestmark = pytest.mark.integration

SCALED_TIMEOUT_MS = 6_000  # the template's 50 s, scaled down
TRICKLE_INTERVAL_S = 2.0


@dataclass
class TimedContext(FakeContext):
    """A context whose remaining time runs down from ``timeout_ms`` like the real one."""

    timeout_ms: int = SCALED_TIMEOUT_MS
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int(self.timeout_ms - (time.monotonic() - self.started) * 1000)


@dataclass
class Trickle:
    url: str
    requests: list[float] = field(default_factory=list)  # monotonic arrival times


@contextmanager
def trickling_slack() -> Iterator[Trickle]:
    """A loopback webhook that answers ``200 ok`` one byte every 2 s (about 80 s for the whole answer)."""
    stop = threading.Event()
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
    trickle = Trickle("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            trickle.requests.append(time.monotonic())
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            for byte in answer:
                if stop.wait(TRICKLE_INTERVAL_S):
                    return
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    return

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    trickle.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/trickle"
    try:
        yield trickle
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


@contextmanager
def check_with_trickling_slack(
    check_world: CheckWorld, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, TimedContext, Trickle]]:
    """The check function cold-started with its Slack webhook secret pointing at a trickling endpoint."""
    (secrets,) = clients(moto_endpoint, "secretsmanager", region=REGION)
    with trickling_slack() as slack:
        arn = secrets.create_secret(Name=f"pinwatch/trickle-{uuid.uuid4().hex[:8]}", SecretString=slack.url)["ARN"]
        monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ARN", arn)
        app = check_world.cold_start()
        yield app, TimedContext("pinwatch-connection-check", memory_limit_in_mb=256, aws_request_id="check-1"), slack


def test_given_slack_trickling_one_byte_every_two_seconds_when_the_check_runs_then_sns_is_published_and_the_run_ends_in_time(
    world: CheckWorld,  # noqa: F811
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with check_with_trickling_slack(world, moto_endpoint, monkeypatch) as (app, context, slack):
        summary: dict[str, Any] = app.lambda_handler(SCHEDULE_EVENT, context)
        elapsed_s = time.monotonic() - context.started

        assert len(slack.requests) == 1  # Slack was tried, and never answered in full
        assert elapsed_s < SCALED_TIMEOUT_MS / 1000  # finished, state written, before the timeout
        assert (summary["alertsSent"], summary["alertDeliveryFailures"]) == (1, 1)
        [message] = world.sns_messages()
        assert world.proxy in message
        states = world.alert_states()
        assert states, "the alert state was written"
        for state in states.values():
            if state.active:
                # SNS counts as told; Slack stays owed and gets the alert on the next run.
                assert (state.accepted_channels, state.pending_channels) == (frozenset({"sns"}), frozenset({"slack"}))


def test_given_a_slow_slack_when_delivering_then_sns_does_not_wait_for_it(
    world: CheckWorld,  # noqa: F811
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Channels run side by side: SNS reaches its subscriber while Slack is still trickling."""
    with check_with_trickling_slack(world, moto_endpoint, monkeypatch) as (app, context, slack):
        done = threading.Event()
        runner = threading.Thread(target=lambda: (app.lambda_handler(SCHEDULE_EVENT, context), done.set()))
        runner.start()
        try:
            published_at = None
            while not done.is_set() and published_at is None:
                if world.sns_messages():
                    published_at = time.monotonic()
                time.sleep(0.05)
        finally:
            runner.join()
        assert slack.requests, "Slack was tried"
        assert published_at is not None, "SNS was published while the run was still waiting on Slack"
        # SNS went out within its own few seconds, long before Slack's answer (about 80 s) could come.
        assert published_at - slack.requests[0] < TRICKLE_INTERVAL_S
