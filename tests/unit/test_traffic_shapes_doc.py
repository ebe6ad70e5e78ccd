"""The "Traffic shapes" table in docs/connection-check.md is the traffic-shape suite's own data."""

from __future__ import annotations

from pathlib import Path

from pinwatch import diagnose as dx
from tests.integration.traffic_shapes import SHAPES, markdown_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "connection-check.md"
START, END = "<!-- traffic-shapes:start -->", "<!-- traffic-shapes:end -->"


def test_given_the_traffic_shape_suite_when_the_docs_are_read_then_their_table_is_the_suites_rendered_rows() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert table == markdown_table(), "docs table out of date: paste markdown_table() between the markers"


def test_given_the_shapes_when_listed_then_every_situation_the_check_must_judge_is_covered() -> None:
    names = {s.name for s in SHAPES}
    assert len(names) == len(SHAPES) >= 10
    # Every rule the suite promises something about exists, and every pinning-free shape's pinning rules stay quiet.
    promised = {r for s in SHAPES for r in (*s.raises, *s.quiet, *s.decided, *s.mentions)}
    assert promised <= set(dx.METRIC_RULES)


def test_given_the_docs_when_read_then_every_rule_the_check_runs_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [rule for rule in (*dx.METRIC_RULES, dx.PROXY_UNAVAILABLE, dx.PROXY_NOT_FOUND) if f"`{rule}`" not in text]
    assert missing == []
