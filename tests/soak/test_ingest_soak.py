"""Soak: thousands of deliveries through the ingest function under at-least-once delivery and failures.

Generated traffic (many proxies, every reason, 72 hours, seeded) goes through the real handler
with DynamoDB Local behind a fault proxy. Everything that happens to a subscription in production
happens here, at random:

- CloudWatch Logs redelivers some batches (at-least-once), sometimes long after the first delivery;
- DynamoDB throttles, answers 5xx, drops connections, cancels transactions for throttling, and
  loses the response of a write it applied (background rate), plus a few outages where it fails
  every request;
- the function dies mid-batch (before its first write, between two transaction chunks, or after
  the last), and the next invocation is a cold start;
- a few payloads are corrupt.

Lambda's asynchronous model retries a failed invocation twice, then the batch goes to the
dead-letter queue; at the end an operator re-drives the queue. The table must then hold exactly
the counts of the generated lines — hourly items, running totals, would-pins and unparsed lines —
and the queue exactly the corrupt payloads, each with its error.

Size: ``--soak-batches N`` (or ``PINWATCH_SOAK_BATCHES``; default 2000, about a minute on two
cores); seed: ``--soak-seed S`` (or ``PINWATCH_SOAK_SEED``). A failure names the seed to rerun.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from pinwatch.ingest import InvalidPayload
from pinwatch.timebase import HOUR_MS
from tests.support.fault_proxy import EVERY_FAULT, FaultProxy, fault_proxy, scale_botocore_backoff
from tests.support.ground_truth import T0, Traffic
from tests.support.lambda_runtime import AsyncLambda, IngestFunction, quiet
from tests.support.table import hourly_counts, proxies_seen, total_counts

pytestmark = [
    pytest.mark.integration,
    pytest.mark.soak,
    # A payload that cannot be decoded fails before the handler adds a metric; Powertools warns.
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

DEFAULT_BATCHES = 2000
DEFAULT_SEED = 20261125
PROXIES = tuple(f"soak-{name}" for name in ("orders", "billing", "search", "auth", "ledger", "cart", "users", "feed"))
HOURS = 72
DUPLICATE_RATE = 0.10  # deliveries CloudWatch Logs sends again
FAULT_RATE = 0.05  # DynamoDB requests answered with a fault
CRASH_RATE = 0.04  # invocations where the function dies
WIDE_RATE = 0.03  # deliveries spanning 14 hours: several transaction chunks
OUTAGES = 3  # stretches of 12 steps (deliveries) in which DynamoDB fails every request
CORRUPT = 3  # payloads that can never be read
MIN_BATCHES = 20


def setting(request: pytest.FixtureRequest, option: str, env: str, default: int) -> int:
    value = request.config.getoption(option)
    if value is None:
        value = int(os.environ.get(env) or default)
    return int(value)


@pytest.fixture
def table_proxy(dynamodb_endpoint: str, request: pytest.FixtureRequest) -> Iterator[FaultProxy]:
    with fault_proxy(dynamodb_endpoint, seed=setting(request, "--soak-seed", "PINWATCH_SOAK_SEED", DEFAULT_SEED)) as p:
        yield p


def test_given_thousands_of_redelivered_failing_batches_when_retried_and_redriven_then_the_table_equals_ground_truth(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    table_proxy: FaultProxy,
    dynamodb_client: Any,
    summary_table: str,
) -> None:
    batches = setting(request, "--soak-batches", "PINWATCH_SOAK_BATCHES", DEFAULT_BATCHES)
    seed = setting(request, "--soak-seed", "PINWATCH_SOAK_SEED", DEFAULT_SEED)
    if batches < MIN_BATCHES:
        pytest.fail(f"--soak-batches must be at least {MIN_BATCHES}")
    rnd = random.Random(seed)
    scale_botocore_backoff(monkeypatch)
    monkeypatch.setenv("SUMMARY_TABLE_NAME", summary_table)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", table_proxy.url)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "PinwatchSoak")

    # ---- the traffic and its ground truth
    traffic = Traffic(seed)
    events: list[tuple[str, dict[str, Any]]] = []
    for i in range(batches):
        proxy = rnd.choice(PROXIES)
        stream = f"{proxy}-{rnd.randrange(3)}"
        start = T0 + rnd.randrange(HOURS * HOUR_MS)
        if i == 0 or rnd.random() < WIDE_RATE:
            events.append((f"wide-{i}", traffic.wide_delivery(proxy, start, hours=14, stream=stream)))
        else:
            lines = min(400, 1 + int(rnd.expovariate(1 / 25)))
            spread = rnd.choice((1_000, 60_000, 600_000, 2 * HOUR_MS))
            events.append((f"batch-{i}", traffic.delivery(proxy, lines, start, spread, stream=stream)))
    corrupt = [traffic.corrupt() for _ in range(CORRUPT)]

    # ---- the function, dying now and then (a cold start follows)
    function = IngestFunction()
    # Planted so that every path is taken whatever the size: the first (wide) delivery dies between
    # its first and second transaction chunk, and the second delivery arrives twice.
    planted_crashes = {id(events[0][1]): 1}

    def invoke(event: dict[str, Any]) -> Any:
        planted = planted_crashes.pop(id(event), None)
        if planted is not None:
            function.switch.set(planted)
        else:
            function.switch.set(rnd.choice((0, 1, 2)) if rnd.random() < CRASH_RATE else None)
        return function.invoke(event)

    outage_starts = sorted(rnd.sample(range(batches // 10, batches), OUTAGES))
    outage_steps = {s for start in outage_starts for s in range(start, start + 12)}

    def before_step(step: int) -> None:
        if step in outage_steps:
            table_proxy.outage()
        else:
            table_proxy.end_outage()

    lam = AsyncLambda(invoke, before_step=before_step)
    for position, (tag, event) in enumerate(events):
        lam.submit(event, at=position, tag=tag)
        if position == 1 or rnd.random() < DUPLICATE_RATE:  # the same delivery again, soon or much later
            lam.submit(event, at=position + rnd.choice((1, 5, 50, 500)), tag=f"{tag}-again")
    for position, event in zip(rnd.sample(range(batches), CORRUPT), corrupt, strict=True):
        lam.submit(event, at=position, tag="corrupt")
    table_proxy.script(*EVERY_FAULT, service="dynamodb")  # each kind at least once, then at random
    table_proxy.inject(FAULT_RATE, *EVERY_FAULT, service="dynamodb")

    # ---- run, then re-drive the dead-letter queue as an operator would (background faults go on)
    started = time.monotonic()
    with quiet(function.app):
        lam.run()
        dead_before_redrive = list(lam.dead_letters)
        for _ in range(5):
            if all(letter.tag == "corrupt" for letter in lam.dead_letters):
                break
            lam.redrive()
    elapsed = time.monotonic() - started

    # ---- the table equals the ground truth, exactly
    reproduce = f"seed={seed} batches={batches}"
    hourly = hourly_counts(dynamodb_client, summary_table)
    assert hourly == traffic.expected_hourly, (
        f"hourly items differ ({reproduce}): {_diff(hourly, traffic.expected_hourly)}"
    )
    totals = total_counts(dynamodb_client, summary_table)
    assert totals == traffic.expected_totals, f"totals differ ({reproduce}): {_diff(totals, traffic.expected_totals)}"
    assert proxies_seen(dynamodb_client, summary_table) == traffic.proxies

    # ---- nothing was dropped: what is left in the queue is exactly the corrupt payloads, with their error
    assert sorted(letter.tag for letter in lam.dead_letters) == ["corrupt"] * CORRUPT, reproduce
    assert all(letter.error.startswith(InvalidPayload.__name__) for letter in lam.dead_letters)
    assert all(letter.attempts == AsyncLambda.MAX_ATTEMPTS for letter in lam.dead_letters)

    # ---- and the run did go through everything it claims to
    results = [a.result for a in lam.attempts if a.ok]
    injected = table_proxy.injected_counts()
    assert set(injected) == set(EVERY_FAULT), f"fault kinds never injected ({reproduce}): {injected}"
    assert function.switch.crashes > 0
    assert any(r["duplicateChunks"] and r["appliedChunks"] for r in results), "no retry resumed a partial batch"
    assert sum(1 for r in results if r["duplicateChunks"] and not r["appliedChunks"]) > 0, "no redelivery skipped"
    assert any(r["chunks"] > 1 for r in results), "no batch needed several transactions"
    assert sum(1 for letter in dead_before_redrive if letter.tag != "corrupt") > 0, "nothing reached the DLQ"
    print(
        f"\nsoak {reproduce}: {len(events)} deliveries, {traffic.lines} lines, {len(lam.attempts)} invocations "
        f"({len(lam.failures())} failed), {function.switch.crashes} crashes, {function.cold_starts} cold starts, "
        f"{len(dead_before_redrive)} dead letters before re-drive, faults {dict(injected)}, {elapsed:.1f} s"
    )


def _diff(actual: Counter[tuple[str, str]], expected: Counter[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    keys = set(actual) | set(expected)
    return {k: (actual.get(k), expected.get(k)) for k in sorted(keys) if actual.get(k) != expected.get(k)}
