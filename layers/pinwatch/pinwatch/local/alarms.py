"""CloudWatch's side of the stack's Metrics Insights alarm, emulated: contributors, their states, their events.

moto stores alarms but never evaluates them and has no Metrics Insights, so tests, the benchmarks
and ``pinwatch demo`` evaluate the alarm here — from the series that were put — and hand the
EventBridge event CloudWatch would send to the real check handler. What is emulated, and where
CloudWatch documents it:

* the query ``SELECT SUM(<metric>) FROM SCHEMA("AWS/RDS", ProxyName) GROUP BY ProxyName``: one
  series per proxy, only series with exactly the ``ProxyName`` dimension ("Metrics Insights query
  components and syntax", SCHEMA); each returned series is a *contributor* with its own state
  ("Create a CloudWatch alarm based on a Metrics Insights query");
* a contributor exists only while its series has data, so it is only ever ALARM or OK, never
  INSUFFICIENT_DATA ("Acting on alarm changes");
* each state change sends a "CloudWatch Alarm Contributor State Change" event with the
  contributor's id and attributes and the new state ("Alarm events and EventBridge", multi time
  series example), which the stack's EventBridge rule delivers to the check function;
* ``DescribeAlarmContributors``: the contributors in ALARM (:meth:`MetricsInsightsAlarm.in_alarm`);
* an EventBridge rule's event pattern, for the exact-value patterns the templates use
  (:func:`pattern_matches`): which of those events a rule delivers.

A member account's alarm (organization mode) is the same alarm evaluated on that account's series
(:func:`cloudwatch_series` with a client holding the member's credentials), with ``account`` and
``region`` set to the member's: its events carry them at the top level, as EventBridge sets them
for the account and Region an event originated in, and keep them when a rule forwards the event
to another account's bus.

Billing follows the metrics the query analyzes (``metrics_analyzed``), counted per evaluation.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pinwatch.fleet import CONTRIBUTOR_STATE_CHANGE, PROXY_DIMENSION
from pinwatch.metrics import PINNED
from pinwatch.timebase import MINUTE_MS

ACCOUNT_ID = "123456789012"

# (metric name, start_ms, end_ms) -> proxy -> {minute start ms: value summed over the proxy's instances}
SeriesSource = Callable[[str, int, int], Mapping[str, Mapping[int, float]]]


def pinned_query(metric: str = PINNED) -> str:
    """The alarm's Metrics Insights query (the template's ``PinnedContributorsAlarm`` carries the same)."""
    # A fixed Metrics Insights query, not SQL sent to a database.
    return (
        f'SELECT SUM({metric}) FROM SCHEMA("AWS/RDS", {PROXY_DIMENSION}) GROUP BY {PROXY_DIMENSION} ORDER BY MAX() DESC'  # noqa: S608
    )


@dataclass
class MetricsInsightsAlarm:
    """One multi time series alarm: a contributor is in ALARM when its last datapoint is above ``threshold``."""

    name: str
    series: SeriesSource
    metric: str = PINNED
    threshold: float = 0.0
    region: str = "us-east-1"
    account: str = ACCOUNT_ID  # the account the alarm (and its metrics) belong to
    states: dict[str, str] = field(default_factory=dict)  # proxy -> ALARM / OK
    evaluations: int = 0
    metrics_analyzed: int = 0  # summed over evaluations: what the alarm is billed on

    def evaluate(self, now_ms: int) -> list[dict[str, Any]]:
        """Evaluate the last complete minute before ``now_ms``; the events of contributors that changed state."""
        minute = now_ms - now_ms % MINUTE_MS - MINUTE_MS
        data = self.series(self.metric, minute, minute + MINUTE_MS)
        self.evaluations += 1
        self.metrics_analyzed += len(data)
        events = []
        breaching = {proxy for proxy, points in data.items() if points.get(minute, 0.0) > self.threshold}
        for proxy in sorted(breaching | set(self.states)):
            new = "ALARM" if proxy in breaching else "OK"
            if self.states.get(proxy, "OK") != new:
                events.append(self._event(proxy, new, now_ms, data.get(proxy, {}).get(minute)))
            self.states[proxy] = new
        return events

    def in_alarm(self) -> frozenset[str]:
        """``DescribeAlarmContributors``: the proxies whose contributor is in ALARM."""
        return frozenset(proxy for proxy, state in self.states.items() if state == "ALARM")

    def _event(self, proxy: str, state: str, now_ms: int, value: float | None) -> dict[str, Any]:
        when = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
        reason = (
            f"Threshold Crossed: 1 datapoint [{value}] was greater than the threshold ({self.threshold})."
            if state == "ALARM"
            else f"Threshold Crossed: no datapoint was greater than the threshold ({self.threshold})."
        )
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": CONTRIBUTOR_STATE_CHANGE,
            "source": "aws.cloudwatch",
            "account": self.account,
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:cloudwatch:{self.region}:{self.account}:alarm:{self.name}"],
            "detail": {
                "alarmName": self.name,
                "alarmContributor": {"id": contributor_id(proxy), "attributes": {PROXY_DIMENSION: proxy}},
                "state": {"value": state, "reason": reason, "timestamp": when.isoformat(timespec="milliseconds")},
                "configuration": {
                    "metrics": [
                        {"id": "m1", "expression": pinned_query(self.metric), "returnData": True, "period": 60}
                    ],
                    "description": "pinwatch: proxies with pinned database connections",
                },
            },
        }


def pattern_matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether ``event`` matches an EventBridge event pattern of exact values ("Event patterns in EventBridge").

    Each pattern field must be in the event; a list of values matches when the event's value is one
    of them, a nested object matches the event's object field by field. Content filters (prefix,
    numeric, anything-but…) are not emulated: a pattern using one raises ValueError.
    """
    for name, expected in pattern.items():
        if name not in event:
            return False
        actual = event[name]
        if isinstance(expected, Mapping):
            if not isinstance(actual, Mapping) or not pattern_matches(expected, actual):
                return False
        elif isinstance(expected, list):
            if any(isinstance(v, Mapping) for v in expected):
                raise ValueError(f"content filters are not emulated: {name}: {expected}")
            if actual not in expected:
                return False
        else:
            raise ValueError(f"an event pattern's values are lists or objects: {name}: {expected!r}")
    return True


def contributor_id(proxy: str) -> str:
    """A stable 16-character id per contributor (CloudWatch's ids are at most 16 characters)."""
    return hashlib.sha256(proxy.encode()).hexdigest()[:16]


def cloudwatch_series(client: Any, namespace: str = "AWS/RDS") -> SeriesSource:
    """A :data:`SeriesSource` reading what was put into an emulated CloudWatch (moto) with ``client``.

    Use a client that is not metered: these reads are CloudWatch's own evaluation, not pinwatch's.
    """

    def read(metric: str, start_ms: int, end_ms: int) -> dict[str, dict[int, float]]:
        proxies = [
            d["Value"]
            for page in client.get_paginator("list_metrics").paginate(Namespace=namespace, MetricName=metric)
            for m in page.get("Metrics", [])
            for d in m.get("Dimensions", [])
            if [x["Name"] for x in m.get("Dimensions", [])] == [PROXY_DIMENSION]
        ]
        out: dict[str, dict[int, float]] = {}
        for start in range(0, len(proxies), 500):
            chunk = proxies[start : start + 500]
            response = client.get_metric_data(
                MetricDataQueries=[
                    {
                        "Id": f"q{i}",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": namespace,
                                "MetricName": metric,
                                "Dimensions": [{"Name": PROXY_DIMENSION, "Value": proxy}],
                            },
                            "Period": 60,
                            "Stat": "Sum",
                        },
                    }
                    for i, proxy in enumerate(chunk)
                ],
                StartTime=datetime.fromtimestamp(start_ms / 1000, tz=UTC),
                EndTime=datetime.fromtimestamp(end_ms / 1000, tz=UTC),
            )
            for result in response.get("MetricDataResults", []):
                proxy = chunk[int(result["Id"][1:])]
                points = {
                    int(ts.timestamp() * 1000): float(v)
                    for ts, v in zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                }
                if points:
                    out[proxy] = points
        return out

    return read
