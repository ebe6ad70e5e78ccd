"""The generated figures block of docs/performance.md (`python -m benchmarks --write-docs`)."""

from __future__ import annotations

import datetime

import pytest
from benchmarks.common import DOCS_BEGIN, DOCS_END, Figure, Machine, figures_block, replace_figures_block

MACHINE = Machine(cpu="AMD EPYC 7B13", cores=2, arch="x86_64", python="3.13.0")
DAY = datetime.date(2026, 12, 6)
FIGURES = [
    Figure("ingest_vs_decode_floor", 1.4712, "handler / decode"),
    Figure("ingest_writes_per_batch", 10.0, "writes"),
    Figure("parse_lines_per_s", 345_831.4, "throughput", 0),
]
PAGE = f"""# Performance

Hand-written introduction: the figures sit between `{DOCS_BEGIN}` and `{DOCS_END}`.

{DOCS_BEGIN}
| figure | value |
|---|---:|
| `old_figure` | 1 |
{DOCS_END}

## What each figure means

Hand-written prose.
"""


def test_given_a_run_when_the_block_is_rendered_then_it_lists_every_figure_as_printed() -> None:
    block = figures_block(FIGURES, MACHINE, DAY)

    rows = [line for line in block.splitlines() if line.startswith("| `")]
    assert rows == [f"| `{f.name}` | {f.formatted()} |" for f in FIGURES]
    assert rows[0] == "| `ingest_vs_decode_floor` | 1.47 |"
    assert block.startswith(DOCS_BEGIN)
    assert block.endswith(DOCS_END)


def test_given_a_run_when_the_block_is_rendered_then_it_names_the_machine_and_the_date() -> None:
    block = figures_block(FIGURES, MACHINE, DAY)

    assert "Measured 2026-12-06 on AMD EPYC 7B13, 2 cores, x86_64, Python 3.13.0." in block


def test_given_a_page_when_the_block_is_replaced_then_only_the_text_between_the_markers_changes() -> None:
    block = figures_block(FIGURES, MACHINE, DAY)

    new_page = replace_figures_block(PAGE, block)

    before, after = PAGE.split(f"\n{DOCS_BEGIN}\n")[0], PAGE.split(f"\n{DOCS_END}\n")[1]
    assert new_page == f"{before}\n{block}\n{after}"
    assert "old_figure" not in new_page
    assert f"Hand-written introduction: the figures sit between `{DOCS_BEGIN}` and `{DOCS_END}`." in new_page
    assert new_page.endswith("## What each figure means\n\nHand-written prose.\n")


def test_given_a_rewritten_page_when_rewritten_again_then_the_new_figures_replace_the_old() -> None:
    first = replace_figures_block(PAGE, figures_block(FIGURES, MACHINE, DAY))
    later = [Figure("ingest_vs_decode_floor", 1.39, "handler / decode")]

    second = replace_figures_block(first, figures_block(later, MACHINE, DAY + datetime.timedelta(days=1)))

    assert "| `ingest_vs_decode_floor` | 1.39 |" in second
    assert "parse_lines_per_s" not in second
    assert "Measured 2026-12-07" in second
    assert second.count(f"\n{DOCS_BEGIN}\n") == second.count(f"\n{DOCS_END}\n") == 1


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        ("# Performance\n\nno markers\n", "found 0 and 0"),
        (f"# Performance\nonly mentioned: `{DOCS_BEGIN}` … `{DOCS_END}`\n", "found 0 and 0"),
        (f"# Performance\n{DOCS_BEGIN}\nno end\n", "found 1 and 0"),
        (f"# Performance\nno begin\n{DOCS_END}\n", "found 0 and 1"),
        (f"{DOCS_BEGIN}\n{DOCS_END}\n{DOCS_BEGIN}\n{DOCS_END}\n", "found 2 and 2"),
        (f"{DOCS_END}\ntext\n{DOCS_BEGIN}\n", "comes before"),
    ],
)
def test_given_a_page_without_one_pair_of_markers_when_replaced_then_a_clear_error_names_them(
    page: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem) as raised:
        replace_figures_block(page, figures_block(FIGURES, MACHINE, DAY))

    assert DOCS_BEGIN in str(raised.value) or DOCS_END in str(raised.value)
