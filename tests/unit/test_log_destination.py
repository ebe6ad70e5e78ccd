"""The local CloudWatch Logs destination's filter: the template's pin pattern, evaluated as CloudWatch Logs does."""

from __future__ import annotations

import pytest

from pinwatch.local.log_destination import destination_document, pattern_matches, pin_filter_pattern
from pinwatch.parse import PIN_PHRASE, WOULD_PIN_PHRASE
from tests.payloads import OTHER_LINES


@pytest.mark.parametrize("phrase", [PIN_PHRASE, WOULD_PIN_PHRASE])
def test_given_a_pin_or_would_pin_line_when_filtered_then_the_template_pattern_delivers_it(phrase: str) -> None:
    assert pattern_matches(pin_filter_pattern(), f"2026-11-25T10:00:00.000Z [WARN] {phrase} [dbConnection=1]")


@pytest.mark.parametrize("line", [*OTHER_LINES, PIN_PHRASE.upper(), ""])
def test_given_another_line_when_filtered_then_it_is_not_delivered(line: str) -> None:
    assert not pattern_matches(pin_filter_pattern(), line)


def test_given_required_terms_when_filtered_then_all_must_appear() -> None:
    assert pattern_matches('"a b" "c"', "x a b y c")
    assert not pattern_matches('"a b" "c"', "x a b y")


def test_given_syntax_the_emulation_does_not_know_when_filtered_then_it_refuses() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        pattern_matches('?"a" -"b"', "a")


def test_given_a_member_and_region_when_a_payload_is_built_then_it_names_them_as_cloudwatch_logs_does() -> None:
    document = destination_document("111111111111", "eu-west-1", "/aws/rds/proxy/x", "s", [])

    assert (document["owner"], document["subscriptionFilters"]) == ("111111111111", ["pinwatch-eu-west-1"])
    assert document["messageType"] == "DATA_MESSAGE"
