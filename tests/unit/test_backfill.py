"""Backfill's pure parts: windows and hour slices, page batch ids, the checkpoint file, resumable analysis state."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pinwatch.analysis import Analysis
from pinwatch.backfill import (
    FILTER_PATTERN,
    SETTLE_MS,
    BackfillError,
    Checkpoint,
    LiveHoursOnly,
    Span,
    guard,
    page_batch_id,
    whole_hours,
)
from pinwatch.local.template import load_template
from pinwatch.parse import parse_message
from pinwatch.records import EngineFamily
from pinwatch.timebase import HOUR_MS

H = 1_795_600_800_000  # a UTC hour boundary (2026-11-25T10:00Z)
MINUTE = 60_000
PIN = (
    "2026-11-25T10:00:01.000Z [WARN] [clientConnection=1] The client session was pinned to the database connection "
    "[dbConnection=2] for the remainder of the session. The proxy can't reuse this connection until the session ends. "
    "Reason: SQL changed session settings that the proxy doesn't track. Consider moving session configuration to the "
    'proxy\'s initialization query. Digest: "set search_path = $1".'
)
PARSE = (
    "2026-11-25T10:00:02.000Z [WARN] [clientConnection=3] The client session was pinned to the database connection "
    "[dbConnection=4] for the remainder of the session. The proxy can't reuse this connection until the session ends. "
    "Reason: A parse message was detected."
)
WOULD = (
    "2026-11-25T10:00:03.000Z [INFO] [clientConnection=5] If this prepared statement runs, the client session will be "
    'pinned to the database connection [dbConnection=6]. Reason: A parse message was detected. Digest: "select 1".'
)


def test_given_the_stacks_template_when_compared_then_backfill_filters_with_the_subscription_pattern() -> None:
    template = load_template()
    assert template["Mappings"]["Pins"]["Filter"]["Pattern"] == FILTER_PATTERN


def test_given_a_window_across_hours_when_sliced_then_slices_end_on_hour_boundaries_and_cover_it_exactly() -> None:
    window = Span(H + 20 * MINUTE, H + 2 * HOUR_MS + 5 * MINUTE)
    slices = window.slices()
    assert [(s.since_ms, s.until_ms) for s in slices] == [
        (H + 20 * MINUTE, H + HOUR_MS),
        (H + HOUR_MS, H + 2 * HOUR_MS),
        (H + 2 * HOUR_MS, H + 2 * HOUR_MS + 5 * MINUTE),
    ]


def test_given_an_empty_window_when_created_then_it_is_refused() -> None:
    with pytest.raises(BackfillError, match="window is empty"):
        Span(H, H)


def test_given_a_writing_backfill_when_the_window_is_planned_then_it_covers_whole_settled_hours() -> None:
    now = H + 5 * HOUR_MS + 2 * MINUTE  # 2 minutes into an hour: the previous hour has not settled yet
    window = whole_hours(H + 10 * MINUTE, now, now)
    assert (window.since_ms, window.until_ms) == (H, H + 4 * HOUR_MS)
    assert now - window.until_ms > SETTLE_MS


def test_given_two_runs_hours_apart_when_planned_then_their_overlapping_hours_are_the_same_slices() -> None:
    first = whole_hours(H - 3 * HOUR_MS + 7 * MINUTE, H + 3 * HOUR_MS, H + 3 * HOUR_MS + 30 * MINUTE)
    second = whole_hours(H - 1 * HOUR_MS + 41 * MINUTE, H + 5 * HOUR_MS, H + 5 * HOUR_MS + 30 * MINUTE)
    overlap = {(s.since_ms, s.until_ms) for s in first.slices()} & {(s.since_ms, s.until_ms) for s in second.slices()}
    assert overlap == {(H + i * HOUR_MS, H + (i + 1) * HOUR_MS) for i in range(-1, 3)}


def test_given_a_window_inside_the_current_hour_when_a_writing_backfill_is_planned_then_it_explains_why_not() -> None:
    now = H + 30 * MINUTE
    with pytest.raises(BackfillError, match="no complete UTC hour"):
        whole_hours(H + 5 * MINUTE, now, now)


def test_given_the_same_events_in_another_order_when_a_page_id_is_made_then_it_is_the_same() -> None:
    events = [{"logStreamName": f"s{i % 2}", "eventId": str(i)} for i in range(5)]
    assert page_batch_id("/aws/rds/proxy/a", events) == page_batch_id("/aws/rds/proxy/a", list(reversed(events)))
    assert page_batch_id("/aws/rds/proxy/a", events) != page_batch_id("/aws/rds/proxy/b", events)
    assert page_batch_id("/aws/rds/proxy/a", events) != page_batch_id("/aws/rds/proxy/a", events[:-1])


def test_given_the_same_event_id_in_two_streams_when_a_page_id_is_made_then_the_streams_tell_them_apart() -> None:
    one = [{"logStreamName": "a", "eventId": "1"}, {"logStreamName": "b", "eventId": "2"}]
    other = [{"logStreamName": "a", "eventId": "2"}, {"logStreamName": "b", "eventId": "1"}]
    assert page_batch_id("/aws/rds/proxy/a", one) != page_batch_id("/aws/rds/proxy/a", other)


def test_given_a_checkpoint_when_saved_and_loaded_then_it_round_trips_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "backfill.json"
    state = Checkpoint("/aws/rds/proxy/a", H, H + HOUR_MS, "table", H, "token-1", pages=3, events=30, matched=12)
    state.save(path)
    assert Checkpoint.load(path) == state
    assert sorted(p.name for p in path.parent.iterdir()) == ["backfill.json"]


def test_given_a_save_that_fails_midway_when_the_checkpoint_is_read_then_the_previous_one_is_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "backfill.json"
    before = Checkpoint("/aws/rds/proxy/a", H, H + HOUR_MS, None, H, "token-1", pages=1)
    before.save(path)

    def crash(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        Checkpoint("/aws/rds/proxy/a", H, H + HOUR_MS, None, H, "token-2", pages=2).save(path)
    assert Checkpoint.load(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backfill.json"]


def test_given_no_checkpoint_file_when_loaded_then_there_is_nothing_to_resume(tmp_path: Path) -> None:
    assert Checkpoint.load(tmp_path / "missing.json") is None


@pytest.mark.parametrize("content", ["{not json", json.dumps({"version": 99}), json.dumps({"version": 1})])
def test_given_an_unusable_checkpoint_file_when_loaded_then_the_error_says_to_remove_it_or_what_it_is(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "backfill.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BackfillError, match=r"checkpoint|not a pinwatch backfill"):
        Checkpoint.load(path)


def test_given_an_analysis_when_its_state_is_restored_and_continued_then_it_equals_one_uninterrupted_analysis() -> None:
    records = [parse_message(line, H + i * MINUTE) for i, line in enumerate([PIN, PARSE, WOULD, PIN, "junk", PARSE])]
    whole = Analysis(engine=EngineFamily.POSTGRESQL)
    for record in records:
        whole.add(record, "orders-db")

    first = Analysis(engine=EngineFamily.POSTGRESQL)
    for record in records[:3]:
        first.add(record, "orders-db")
    state = json.loads(json.dumps(first.to_state()))  # as it travels through the checkpoint file
    resumed = Analysis.from_state(state, engine=EngineFamily.POSTGRESQL)
    for record in records[3:]:
        resumed.add(record, "orders-db")

    assert resumed.to_dict() == whole.to_dict()


# ---------------------------------------------------------------- the live-start guard

WEEK = Span(H - 7 * 24 * HOUR_MS, H)


def test_given_no_live_start_when_guarded_then_the_whole_window_is_written() -> None:
    guarded = guard(WEEK, None)
    assert (guarded.window, guarded.live, guarded.unseen) == (WEEK, None, None)


def test_given_live_counting_began_mid_hour_when_guarded_then_that_whole_hour_is_left_to_the_ingest() -> None:
    live = H - 48 * HOUR_MS + 23 * MINUTE
    guarded = guard(WEEK, live)
    assert guarded.window == Span(WEEK.since_ms, H - 48 * HOUR_MS)  # stops at the start of the hour
    assert guarded.live == Span(H - 48 * HOUR_MS, H)  # that hour on: the ingest's
    assert guarded.unseen == Span(H - 48 * HOUR_MS, live)  # before its first line: neither writer's
    assert guarded.live_start_ms == live


def test_given_live_counting_began_on_an_hour_when_guarded_then_nothing_is_left_uncounted() -> None:
    guarded = guard(WEEK, H - 48 * HOUR_MS)
    assert guarded.window == Span(WEEK.since_ms, H - 48 * HOUR_MS)
    assert guarded.unseen is None


def test_given_live_counting_began_after_the_window_when_guarded_then_the_window_is_unchanged() -> None:
    for live in (WEEK.until_ms, WEEK.until_ms + 30 * MINUTE):
        guarded = guard(WEEK, live)
        assert (guarded.window, guarded.live, guarded.unseen) == (WEEK, None, None)


def test_given_a_window_inside_live_hours_when_guarded_then_it_is_refused_saying_when_live_counting_began() -> None:
    live = WEEK.since_ms + 10 * MINUTE  # the window's first hour is already the ingest's
    with pytest.raises(LiveHoursOnly, match=r"live counting began at 2026-11-18 10:10 UTC .* nothing to backfill"):
        guard(WEEK, live)
    with pytest.raises(LiveHoursOnly, match="--ignore-live-start"):
        guard(WEEK, WEEK.since_ms - 3 * HOUR_MS)
