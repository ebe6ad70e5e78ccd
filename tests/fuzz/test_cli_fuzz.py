"""Fuzzing ``pinwatch analyze``: any file ends in exit 0 with valid output, or exit 2 with a one-line error.

Exit 2 is only for input that cannot be read at all (here: a file that announces gzip and is not).
Whatever the bytes, a line is reported as a pin only if it holds the pin phrase.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pinwatch.cli import EXIT_OK, EXIT_USAGE, main
from pinwatch.parse import PIN_PHRASE

EXAMPLES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GZIP_MAGIC = b"\x1f\x8b"
PIN_TAIL = "for the remainder of the session. The proxy can't reuse this connection until the session ends. Reason: "


def pin_line(n: int) -> bytes:
    return (
        f"2026-11-25T10:00:{n % 60:02d}.000Z [WARN] [proxyEndpoint=default] [clientConnection={n}] {PIN_PHRASE} "
        f"[dbConnection={n + 1}] {PIN_TAIL}A parse message was detected."
    ).encode()


@contextmanager
def a_file(content: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.log"
        path.write_bytes(content)
        yield path


def analyze(path: Path, *options: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["analyze", str(path), *options])
    return code, out.getvalue(), err.getvalue()


def assert_exit_contract(content: bytes, code: int, err: str) -> None:
    if code == EXIT_USAGE:
        assert content.startswith(GZIP_MAGIC), f"exit 2 for readable input: {err!r}"
        assert err.startswith("pinwatch analyze: error: ")
        assert err.count("\n") == 1
    else:
        assert code == EXIT_OK


# Lines that steer the reader into each of its shapes (aws logs JSON, JSON lines, --output text rows).
structured = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda head, body: head + body,
        st.sampled_from([b"", b"EVENTS\t", b"{", b'{"message": ', b"[", b'{"events": [', b"\xef\xbb\xbf", b"\r"]),
        st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
    ),
    st.builds(
        lambda ts, msg: json.dumps({"timestamp": ts, "message": msg}).encode(),
        st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.none(),
        st.text(max_size=50),
    ),
    st.builds(
        lambda ts, msg: f"EVENTS\t1\tstream\t{msg}\t{ts}".encode(),
        st.text(alphabet="0123456789²³١٢", max_size=25),
        st.text(max_size=50),
    ),
)


@EXAMPLES
@given(st.lists(structured, max_size=8).map(b"\n".join))
@example(b"EVENTS\tstream\thello\t\xc2\xb2")
@example(b'{"timestamp": 99999999999999999999, "message": "x"}')
@example(b'{"timestamp": -99999999999999999, "message": "x"}')
@example(b'[{"timestamp": 99999999999999999999, "message": "x"}]')
@example(b"0001-01-01T00:00:00+14:00 [WARN] hello")
@example(b"9999-12-31T23:59:59-14:00 [WARN] hello")
@example(GZIP_MAGIC + b"\x00\x01")
def test_given_random_bytes_when_analyzed_then_exit_0_or_a_one_line_exit_2_and_no_pin_is_invented(
    content: bytes,
) -> None:
    with a_file(content) as path:
        for fmt in ("json", "table"):
            code, out, err = analyze(path, "--format", fmt)

            assert_exit_contract(content, code, err)
            if code == EXIT_OK and fmt == "json":
                assert json.loads(out)["totals"]["pinned"] <= content.count(PIN_PHRASE.encode())


@EXAMPLES
@given(st.lists(st.binary(max_size=200).filter(lambda b: b"\n" not in b), max_size=10), st.integers(1, 5))
def test_given_pin_lines_among_random_lines_when_analyzed_then_exactly_the_pin_lines_are_counted(
    junk: list[bytes], pins: int
) -> None:
    # A pin line first: the reader recognises a plain-text export by its start.
    lines = [pin_line(0), *junk, *(pin_line(n) for n in range(1, pins))]
    content = b"\n".join(lines) + b"\n"

    with a_file(content) as path:
        code, out, _ = analyze(path, "--format", "json")

    assert code == EXIT_OK
    expected = pins + sum(PIN_PHRASE.encode() in line for line in junk)
    assert json.loads(out)["totals"]["pinned"] == expected


@EXAMPLES
@given(st.lists(structured, max_size=8).map(b"\n".join))
def test_given_random_input_when_analyzed_as_jsonl_then_every_output_line_is_json_and_pins_hold_the_phrase(
    content: bytes,
) -> None:
    with a_file(content) as path:
        code, out, err = analyze(path, "--format", "jsonl")

    assert_exit_contract(content, code, err)
    objects = [json.loads(line) for line in out.splitlines()]
    assert sum(o["kind"] == "pinned" for o in objects) <= content.count(PIN_PHRASE.encode())


@EXAMPLES
@given(st.lists(st.binary(max_size=120).filter(lambda b: b"\n" not in b), max_size=6), st.integers(0, 400))
def test_given_a_gzipped_export_cut_short_when_analyzed_then_it_exits_2_or_counts_only_what_it_read(
    junk: list[bytes], cut: int
) -> None:
    plain = b"\n".join([pin_line(0), *junk, pin_line(1)]) + b"\n"
    compressed = gzip.compress(plain)
    content = compressed[: max(2, len(compressed) - cut)]

    with a_file(content) as path:
        code, out, err = analyze(path, "--format", "json")

    assert_exit_contract(content, code, err)
    if code == EXIT_OK:
        assert json.loads(out)["totals"]["pinned"] <= 2
