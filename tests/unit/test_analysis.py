"""Analysis: incremental, bounded per-reason summaries of parsed records."""

from __future__ import annotations

import pytest

from pinwatch import analysis as an
from pinwatch.analysis import Analysis
from pinwatch.records import EngineFamily, Kind, LogRecord
from tests.support.builders import analysis_of

SETTINGS = "SQL changed session settings that the proxy doesn't track."


def pin(reason: str, ts: int | None = None, digest: str | None = None, text: str = SETTINGS) -> LogRecord:
    return LogRecord(kind=Kind.PINNED, raw="x", timestamp_ms=ts, reason=reason, reason_text=text, digest=digest)


def test_given_mixed_records_when_added_then_totals_per_kind_add_up() -> None:
    a = Analysis()
    a.add(pin("session_settings", 1))
    a.add(LogRecord(kind=Kind.WOULD_PIN, raw="w", reason="prepared_statement"))
    a.add(LogRecord(kind=Kind.OTHER, raw="o"))
    a.add(LogRecord(kind=Kind.UNPARSED, raw="u"))
    a.add(LogRecord(kind=Kind.UNPARSED, raw="v"))

    assert (a.pin_count, a.would_pin_count, a.totals[Kind.OTHER], a.unparsed_count, a.lines) == (1, 1, 1, 2, 5)


def test_given_pins_when_summarised_then_reasons_rank_by_count_with_shares_and_time_range() -> None:
    a = Analysis()
    for ts in (300, 100, 200):
        a.add(pin("session_settings", ts, "set search_path = $1"))
    a.add(pin("large_statement", 50, text="exceeded the 16384 byte limit."))

    first, second = a.pins()

    assert (first.reason, first.count, first.share) == ("session_settings", 3, 0.75)
    assert (first.first_seen_ms, first.last_seen_ms) == (100, 300)
    assert (second.reason, second.count, second.share) == ("large_statement", 1, 0.25)
    assert (a.first_seen_ms, a.last_seen_ms) == (50, 300)


def test_given_ties_when_summarised_then_the_order_is_stable_by_code() -> None:
    a = Analysis()
    a.add(pin("lock"))
    a.add(pin("cursor"))

    assert [s.reason for s in a.pins()] == ["cursor", "lock"]


def test_given_several_digests_when_summarised_then_the_most_frequent_is_the_example_with_counts() -> None:
    a = Analysis()
    for digest in ["set names $1", "set search_path = $1", "set search_path = $1"]:
        a.add(pin("session_settings", digest=digest))

    (s,) = a.pins()

    assert s.example_digest == "set search_path = $1"
    assert s.top_digests == (("set search_path = $1", 2), ("set names $1", 1))
    assert s.distinct_digests == 2
    assert s.example_reason_text == SETTINGS


def test_given_dollar_placeholders_when_no_engine_is_given_then_postgresql_is_inferred_and_hinted() -> None:
    a = Analysis()
    a.add(pin("session_settings", digest="set search_path = $1"))
    a.add(pin("prepared_statement", text="A parse message was detected."))
    a.add(pin("large_statement", text="exceeded the 16384 byte limit."))

    summaries = {s.reason: s for s in a.pins()}

    assert summaries["session_settings"].engines == ("POSTGRESQL",)
    assert summaries["prepared_statement"].engines == ("POSTGRESQL",)  # a Parse message is PostgreSQL protocol
    assert summaries["large_statement"].engines == ("POSTGRESQL",)  # the one engine seen in this input
    assert "search_path" in (summaries["session_settings"].top_hint or "")


def test_given_an_explicit_engine_when_summarised_then_it_overrides_the_guess() -> None:
    a = Analysis(engine=EngineFamily.MYSQL)
    a.add(pin("session_settings", digest="set search_path = $1"))

    (s,) = a.pins()

    assert s.engines == ("MYSQL",)


def test_given_would_pins_when_summarised_then_they_stay_apart_from_pins() -> None:
    a = Analysis()
    a.add(LogRecord(kind=Kind.WOULD_PIN, raw="w", reason="prepared_statement", digest="select $1"))
    a.add(pin("session_settings"))

    assert [s.reason for s in a.pins()] == ["session_settings"]
    assert [(s.reason, s.count, s.share) for s in a.would_pins()] == [("prepared_statement", 1, 1.0)]


def test_given_proxy_labels_when_added_then_each_reason_lists_its_proxies() -> None:
    a = Analysis()
    a.add(pin("lock"), proxy="orders-proxy")
    a.add(pin("lock"), proxy="orders-proxy")
    a.add(pin("lock"), proxy="billing-proxy")

    assert a.pins()[0].proxies == ("orders-proxy", "billing-proxy")


def test_given_many_unparsed_lines_when_added_then_only_a_few_truncated_samples_are_kept() -> None:
    a = Analysis(sample_limit=2)
    for i in range(5):
        a.add(LogRecord(kind=Kind.UNPARSED, raw=f"{i}" + "z" * 1000), line=i + 1, source="f.log")

    assert a.unparsed_count == 5
    assert [(s.line, s.source) for s in a.unparsed_samples] == [(1, "f.log"), (2, "f.log")]
    assert all(len(s.text) == an.SAMPLE_CHARS for s in a.unparsed_samples)


def test_given_endless_distinct_digests_when_added_then_memory_stays_bounded_and_counts_stay_exact() -> None:
    a = Analysis()
    for i in range(an.MAX_DISTINCT_EXAMPLES * 3):
        a.add(pin("session_settings", digest=f"set x{i} = $1"))

    (s,) = a.pins()

    assert s.count == an.MAX_DISTINCT_EXAMPLES * 3
    assert s.distinct_digests == an.MAX_DISTINCT_EXAMPLES


def test_given_top_n_when_summarised_then_only_the_n_most_frequent_are_returned() -> None:
    a = Analysis()
    for reason, n in (("lock", 3), ("cursor", 2), ("listen", 1)):
        for _ in range(n):
            a.add(pin(reason))

    assert [s.reason for s in a.pins(top=2)] == ["lock", "cursor"]


def test_given_two_analyses_when_merged_then_the_result_equals_one_analysis_of_everything() -> None:
    records = [pin("lock", 5, "SELECT GET_LOCK(?, ?)"), pin("lock", 1), pin("cursor", 9)]
    records += [LogRecord(kind=Kind.UNPARSED, raw="junk"), LogRecord(kind=Kind.OTHER, raw="o", timestamp_ms=20)]
    whole, left, right = analysis_of(records, "p"), analysis_of(records[:2], "p"), analysis_of(records[2:], "p")

    left.merge(right)

    assert left.to_dict() == whole.to_dict()


@pytest.mark.parametrize("kind", [Kind.PINNED, Kind.WOULD_PIN])
def test_given_a_pin_record_without_reason_when_added_then_it_counts_as_unknown(kind: Kind) -> None:
    a = Analysis()
    a.add(LogRecord(kind=kind, raw="x"))

    summaries = a.pins() if kind is Kind.PINNED else a.would_pins()
    assert [s.reason for s in summaries] == ["unknown"]


def test_given_an_analysis_when_serialised_then_the_dict_has_totals_pins_and_unparsed() -> None:
    a = Analysis()
    a.add(pin("lock", 7, "LOCK TABLES t WRITE"))
    a.add(LogRecord(kind=Kind.UNPARSED, raw="junk"), line=3, source="-")

    d = a.to_dict()

    assert d["totals"] == {"pinned": 1, "would_pin": 0, "other": 0, "unparsed": 1}
    assert d["pins"][0]["reason"] == "lock"
    assert d["pins"][0]["share"] == 1.0
    assert d["unparsed"] == {"count": 1, "samples": [{"line": 3, "source": "-", "text": "junk"}]}
