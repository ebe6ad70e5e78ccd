"""How findings and capture notes quote an error: one line, bounded, never empty."""

from __future__ import annotations

import pytest

from pinwatch.diagnose import NOT_CHECKED_ERROR_MAX, not_checked_finding
from pinwatch.findings import error_text


@pytest.mark.parametrize(
    ("error", "limit", "expected"),
    [
        ("AccessDenied:\n  not authorized\tto call", 100, "AccessDenied: not authorized to call"),
        (TimeoutError("read timed out"), 100, "read timed out"),
        (TimeoutError(), 100, "TimeoutError"),  # a bare exception is named by its type
        ("x" * 12, 10, "x" * 9 + "…"),
        ("x" * 10, 10, "x" * 10),
    ],
)
def test_given_an_error_when_quoted_then_it_is_one_bounded_line(
    error: Exception | str, limit: int, expected: str
) -> None:
    assert error_text(error, limit) == expected


def test_given_a_long_api_error_when_a_proxy_is_not_checked_then_the_summary_quotes_it_cut() -> None:
    finding = not_checked_finding("orders", "ThrottlingException: " + "slow down " * 100)

    quoted = finding.summary.removeprefix("orders was not checked: ")
    assert len(quoted) == NOT_CHECKED_ERROR_MAX
    assert quoted.endswith("…")
