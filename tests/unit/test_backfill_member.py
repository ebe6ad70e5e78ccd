"""A member account's backfill (organization mode): its keys, its batch ids, its checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pinwatch.backfill import Backfill, BackfillError, LogPage, LogPages, Span, page_batch_id
from pinwatch.cli import main
from pinwatch.scope import Scope
from pinwatch.store.summary import ApplyResult
from pinwatch.tally import Tally
from tests.payloads import PIN_BODIES, iso_ms

GROUP = "/aws/rds/proxy/orders-db"
A = Scope("111111111111", "eu-west-1")
B = Scope("222222222222", "eu-west-1")
HOUR = 3_600_000
SINCE = 1_795_600_800_000  # 2026-11-25T10:00Z


class OnePage(LogPages):
    """A log group of one page: two pin lines in two streams."""

    def __init__(self) -> None:
        self.events: list[Mapping[str, Any]] = [
            {
                "logStreamName": f"instance-{i}",
                "eventId": str(i),
                "timestamp": SINCE + i * 60_000,
                "message": f"{iso_ms(SINCE + i * 60_000)} [{PIN_BODIES[0][0]}] [clientConnection=1] {PIN_BODIES[2][1]}",
            }
            for i in range(2)
        ]

    def page(self, log_group: str, start_ms: int, end_ms: int, token: str | None) -> LogPage:
        return LogPage([e for e in self.events if start_ms <= e["timestamp"] < end_ms], None)


@dataclass
class Store:
    batches: list[tuple[str, Tally]] = field(default_factory=list)

    def apply_batch(self, batch_id: str, tally: Tally, now_ms: int, *, backfill_until_ms: int) -> ApplyResult:
        self.batches.append((batch_id, tally))
        return ApplyResult(batch_id, chunks=1, applied_chunks=1, duplicate_chunks=0, transactions=1, writes=1)


def test_given_the_same_page_when_ids_are_made_for_two_members_and_a_single_account_then_all_differ() -> None:
    events = [{"logStreamName": "instance-1", "eventId": "1"}, {"logStreamName": "instance-2", "eventId": "2"}]

    ids = {page_batch_id(GROUP, events), page_batch_id(GROUP, events, A), page_batch_id(GROUP, events, B)}

    assert len(ids) == 3
    assert page_batch_id(GROUP, events, A) == page_batch_id(GROUP, list(reversed(events)), A)


def test_given_a_member_when_its_log_group_is_backfilled_then_lines_are_counted_under_its_key_and_batch_id() -> None:
    pages, store = OnePage(), Store()

    result = Backfill(pages, "orders-db", store=store, scope=A).run(Span(SINCE, SINCE + HOUR))

    assert result.matched == 2
    ((batch_id, tally),) = store.batches
    assert batch_id == page_batch_id(GROUP, pages.events, A)
    assert {p.proxy for p in tally.proxies} == {A.key("orders-db")}
    assert {r.proxy for r in tally.reasons} == {A.key("orders-db")}


def test_given_no_member_when_backfilled_then_the_plain_name_and_single_account_id_as_before() -> None:
    pages, store = OnePage(), Store()

    Backfill(pages, "orders-db", store=store).run(Span(SINCE, SINCE + HOUR))

    ((batch_id, tally),) = store.batches
    assert batch_id == page_batch_id(GROUP, pages.events)
    assert {p.proxy for p in tally.proxies} == {"orders-db"}


@pytest.mark.parametrize(("first", "then"), [(A, B), (None, A), (A, None)])
def test_given_a_checkpoint_of_another_member_when_resumed_then_it_is_refused(
    first: Scope | None, then: Scope | None, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "cp.json"

    class Interrupted(OnePage):
        def page(self, log_group: str, start_ms: int, end_ms: int, token: str | None) -> LogPage:
            if token is None:
                return LogPage(self.events[:1], "next")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Backfill(Interrupted(), "orders-db", store=Store(), table="t-1", checkpoint=checkpoint, scope=first).run(
            Span(SINCE, SINCE + HOUR)
        )
    assert checkpoint.exists()
    with pytest.raises(BackfillError, match="belongs to another backfill"):
        Backfill(OnePage(), "orders-db", store=Store(), table="t-1", checkpoint=checkpoint, scope=then).resume_point()
    resumed = Backfill(OnePage(), "orders-db", store=Store(), table="t-1", checkpoint=checkpoint, scope=first)
    assert resumed.resume_point() is not None


@pytest.mark.parametrize("value", ["111111111111", "111111111111:EU", "eu-west-1:111111111111", "1:eu-west-1"])
def test_given_a_malformed_member_when_parsed_then_a_usage_error_names_the_form(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["backfill", "--proxy", "orders-db", "--since", "1h", "--member", value])
    assert exited.value.code == 2
    assert "ACCOUNT:REGION" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra",
    [
        ["--table-profile", "central"],  # no --member, no --write
        ["--member", "111111111111:eu-west-1", "--table-profile", "central"],  # no --write: no table
    ],
)
def test_given_a_table_profile_without_a_members_write_when_run_then_refused(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["backfill", "--proxy", "orders-db", "--since", "1h", *extra])
    assert code == 2
    assert "--table-profile" in capsys.readouterr().err
