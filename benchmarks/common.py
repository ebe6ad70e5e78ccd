"""Shared helpers for benchmark modules."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# What the handlers read at import time: a table name, a region, credentials (no request is signed
# for a real account: the benchmarks swap the store's client or point it at DynamoDB Local).
HANDLER_ENV = {
    "SUMMARY_TABLE_NAME": "pinwatch-bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "pinwatch",
    "POWERTOOLS_METRICS_NAMESPACE": "Pinwatch",
}


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    meaning: str
    digits: int = 2

    def formatted(self) -> str:
        if float(self.value).is_integer() and abs(self.value) >= 1:
            return str(int(self.value))
        return f"{self.value:.{self.digits}f}"

    def line(self) -> str:
        return f"{self.name}={self.formatted()}"


def best_cpu_seconds(fn: Callable[[], object], repeat: int = 5) -> float:
    """Minimum process CPU time of `repeat` calls: the least noisy estimate on a shared machine."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def interleaved_best_cpu(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Minimum process CPU seconds of each function, running them in turn `repeat` times.

    A figure that is a ratio of two timings is only as good as the conditions they share: taking
    them in turn lets a shared machine's load hit both sides alike.
    """
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], best_cpu_seconds(fn, 1))
    return best
