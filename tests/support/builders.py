"""Building domain aggregates from plain records, for tests that seed or compare them."""

from __future__ import annotations

from collections.abc import Iterable

from pinwatch.analysis import Analysis
from pinwatch.records import LogRecord
from pinwatch.tally import Tally


def tally_records(proxy: str, records: Iterable[LogRecord], log_group: str | None = None) -> Tally:
    """One proxy's already-timestamped records folded into a tally (what ingest builds per batch)."""
    tally = Tally()
    for record in records:
        tally.add(proxy, record, log_group=log_group)
    return tally


def analysis_of(records: Iterable[LogRecord], proxy: str | None = None) -> Analysis:
    """Records of one proxy folded into an analysis (what the CLI builds per log stream)."""
    analysis = Analysis()
    for record in records:
        analysis.add(record, proxy)
    return analysis
