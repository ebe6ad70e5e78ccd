"""Lambda's invocation model around the in-process handlers of :mod:`pinwatch.local.lambda_harness`.

- Cold start and context: :func:`~pinwatch.local.lambda_harness.load_handler` and
  :class:`~pinwatch.local.lambda_harness.LambdaContext`, re-exported here for the suites.
- :class:`AsyncLambda`: Lambda's *asynchronous* invocation model, which is how CloudWatch Logs
  invokes the ingest function: an invocation that raises is retried up to twice, later rather than
  at once (other events run in between), and an event that failed three times goes to the
  on-failure destination (the stack's dead-letter queue) together with its error. An operator
  re-drives the queue with :meth:`AsyncLambda.redrive`.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from pinwatch.local.lambda_harness import (
    CONNECTION_CHECK_APP,
    PIN_INGEST_APP,
    LambdaContext,
    check_context,
    load_handler,
    schedule_event,
)

CONNECTION_CHECK = CONNECTION_CHECK_APP
PIN_INGEST = PIN_INGEST_APP
SCHEDULE_EVENT: dict[str, Any] = schedule_event()
# The names the benchmarks import.
FakeContext = LambdaContext
load_function = load_handler

__all__ = [
    "CONNECTION_CHECK",
    "PIN_INGEST",
    "SCHEDULE_EVENT",
    "FakeContext",
    "LambdaContext",
    "check_context",
    "load_function",
    "load_handler",
]


@contextlib.contextmanager
def quiet(app: ModuleType) -> Iterator[None]:
    """Send the handler's log lines and EMF documents to /dev/null (they are still produced)."""
    handler = app.logger.registered_handler
    # The service's stdlib logger also propagates to pytest's log capture, which would hold every line.
    stdlib_logger = logging.getLogger(app.logger.name)
    propagate = stdlib_logger.propagate
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        previous = handler.stream if isinstance(handler, logging.StreamHandler) else None
        if previous is not None:
            handler.stream = devnull
        stdlib_logger.propagate = False
        try:
            yield
        finally:
            stdlib_logger.propagate = propagate
            if previous is not None:
                handler.stream = previous


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What the on-failure destination keeps: the event, the last error and how often it was tried."""

    event: Any
    error: str
    attempts: int
    tag: str = ""


@dataclass(frozen=True, slots=True)
class Attempt:
    step: int
    tag: str
    attempt: int  # 1 = first delivery, 2 and 3 = Lambda's retries
    result: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(order=True)
class _Queued:
    due: int
    seq: int
    event: Any = field(compare=False)
    tag: str = field(compare=False)
    attempt: int = field(compare=False)


class AsyncLambda:
    """One function under Lambda's asynchronous invocation model (see the module docstring).

    Time runs in *steps* (think minutes). Events run in the order they are due, those due at the
    same step in the order they were queued; a failed attempt is queued again
    ``retry_delays[attempt - 1]`` steps later, behind what is already due then. ``before_step(step)``
    runs before each invocation (to open or close an outage); ``after_failure(error)`` runs after
    each failed one (e.g. a cold start after a crash).
    """

    MAX_ATTEMPTS = 3  # the first delivery and Lambda's two retries

    def __init__(
        self,
        invoke: Callable[[Any], Any],
        *,
        retry_delays: tuple[int, int] = (1, 2),
        before_step: Callable[[int], None] | None = None,
        after_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._invoke = invoke
        self._retry_delays = retry_delays
        self._before_step = before_step
        self._after_failure = after_failure
        self._queue: list[_Queued] = []
        self._seq = 0
        self.step = 0
        self.attempts: list[Attempt] = []
        self.dead_letters: list[DeadLetter] = []

    def submit(self, event: Any, *, at: int | None = None, tag: str = "") -> None:
        """Deliver `event` at step `at` (default: after everything already due)."""
        self._push(event, tag, 1, self.step if at is None else at)

    def _push(self, event: Any, tag: str, attempt: int, due: int) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Queued(due, self._seq, event, tag, attempt))

    def run(self) -> None:
        """Invoke until nothing is queued (retries included)."""
        while self._queue:
            item = heapq.heappop(self._queue)
            self.step = item.due
            if self._before_step is not None:
                self._before_step(self.step)
            try:
                result = self._invoke(item.event)
            except Exception as exc:  # what Lambda records as a function error
                self.attempts.append(Attempt(self.step, item.tag, item.attempt, error=exc))
                if self._after_failure is not None:
                    self._after_failure(exc)
                if item.attempt < self.MAX_ATTEMPTS:
                    delay = self._retry_delays[item.attempt - 1]
                    self._push(item.event, item.tag, item.attempt + 1, self.step + delay)
                else:
                    error = f"{type(exc).__name__}: {exc}"
                    self.dead_letters.append(DeadLetter(item.event, error, item.attempt, item.tag))
            else:
                self.attempts.append(Attempt(self.step, item.tag, item.attempt, result=result))

    def redrive(self) -> list[DeadLetter]:
        """Send every dead letter through the function again (each with fresh retries); run; return them."""
        letters, self.dead_letters = self.dead_letters, []
        for letter in letters:
            self.submit(letter.event, tag=letter.tag)
        self.run()
        return letters

    def failures(self) -> list[Attempt]:
        return [a for a in self.attempts if not a.ok]


class Crash(BaseException):
    """The function's execution environment dies (timeout, out of memory).

    A BaseException, so no ``except Exception`` in the code under test can catch it, as nothing
    can catch a killed process.
    """


class EnvironmentDied(RuntimeError):
    """How an invocation whose environment died is reported (Lambda: "Runtime exited", "Task timed out")."""


class CrashSwitch:
    """Kills the ingest function at a chosen point of one invocation, between its DynamoDB transactions.

    ``arm(app)`` hooks the handler's own client; ``set(n)`` makes the current invocation die right
    before its first ``TransactWriteItems`` (n = 0) or right after its n-th committed one.
    """

    def __init__(self) -> None:
        self.after: int | None = None
        self.committed = 0
        self.crashes = 0

    def arm(self, app: ModuleType) -> None:
        events = app._DYNAMODB.meta.events
        events.register("before-call.dynamodb.TransactWriteItems", self._before)
        events.register("after-call.dynamodb.TransactWriteItems", self._after)

    def set(self, after: int | None) -> None:
        self.after = after
        self.committed = 0

    def _before(self, **_: Any) -> None:
        if self.after == 0:
            self._die()

    def _after(self, http_response: Any, **_: Any) -> None:
        if http_response is not None and http_response.status_code == 200:
            self.committed += 1
            if self.after == self.committed:
                self._die()

    def _die(self) -> None:
        self.after = None
        self.crashes += 1
        raise Crash(f"the function died after {self.committed} committed transaction(s)")


class IngestFunction:
    """The ingest function's execution environment; a crash replaces it with a cold start.

    ``invoke`` is what :class:`AsyncLambda` calls: a crash surfaces as :class:`EnvironmentDied`.
    """

    def __init__(self) -> None:
        self.switch = CrashSwitch()
        self.cold_starts = 0
        self.app = self._cold_start()
        self.context = LambdaContext()

    def _cold_start(self) -> ModuleType:
        app = load_handler(PIN_INGEST_APP)
        self.switch.arm(app)
        self.cold_starts += 1
        return app

    def invoke(self, event: Any) -> Any:
        try:
            return self.app.lambda_handler(event, self.context)
        except Crash as crash:
            self.app = self._cold_start()
            raise EnvironmentDied(str(crash)) from None
