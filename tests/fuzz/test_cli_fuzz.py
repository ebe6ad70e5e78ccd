"""Fuzzing the CLI: any file given to ``pinwatch analyze`` ends in exit 0 with valid output, or exit 2
with a one-line error; so does any option or environment value given to the AWS subcommands.

Exit 2 is only for input that cannot be read at all (here: a file that announces gzip and is not).
Whatever the bytes, a line is reported as a pin only if it holds the pin phrase.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pinwatch.cli import EXIT_OK, EXIT_USAGE, main
from pinwatch.local.lambda_harness import patched_environ
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


# ---------------------------------------------------------------------------------------------
# Options and environment variables of the AWS subcommands: any value ends in a one-line error.

# Values that stay off the network: malformed URLs and regions, or a loopback port nothing serves.
option_value = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "not a url",
            "http://",
            "http://127.0.0.1:1",
            "ftp://x",
            "http://[::1",
            "http://a b",
            "https://:80",
            "\x00",
            "",
        ]
    ),
)
ENV_VARS = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_RDS",
    "AWS_DEFAULT_REGION",
    "PINNED_WARNING_PCT",
    "PROXY_NAMES",
    "METRICS_WINDOW_MINUTES",
    "SLACK_WEBHOOK_SECRET_ARN",
)


def run_cli(argv: list[str]) -> tuple[int, str]:
    err = StringIO()
    with redirect_stdout(StringIO()), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own usage errors
            code = int(exc.code or 0)
    return code, err.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["report", "check"]),
    st.dictionaries(st.sampled_from(["--endpoint-url", "--region", "--profile"]), option_value, max_size=3),
    st.dictionaries(st.sampled_from(ENV_VARS), option_value.filter(lambda v: "\x00" not in v), max_size=3),
)
@example("report", {"--endpoint-url": "not a url"}, {})
@example("check", {"--endpoint-url": "not a url"}, {})
@example("report", {}, {"AWS_ENDPOINT_URL": "not a url"})
@example("check", {}, {"AWS_ENDPOINT_URL": "not a url"})
@example("check", {}, {"PINNED_WARNING_PCT": "lots"})
def test_given_any_option_or_environment_value_when_an_aws_command_runs_then_it_exits_2_with_one_line(
    command: str, options: dict[str, str], env: dict[str, str]
) -> None:
    argv = [command, *(["--table", "pins"] if command == "report" else []), "--format", "json"]
    for name, value in options.items():
        argv += [f"{name}={value}"]
    env.setdefault("AWS_MAX_ATTEMPTS", "1")
    with patched_environ(env):
        code, err = run_cli(argv)

    # Nothing listens and most values are malformed: the command cannot succeed, and says why in one line.
    assert code == EXIT_USAGE, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(("pinwatch ", "usage: pinwatch")) or ": error: " in last, err


# The installed console script does exactly this (pyproject's [project.scripts]).
PINWATCH = [sys.executable, "-c", "import sys; from pinwatch.cli import main; sys.exit(main())"]


def test_given_stdout_closed_when_a_command_runs_then_it_exits_quietly() -> None:
    with a_file(pin_line(0) + b"\n") as path:
        result = subprocess.run(
            [*PINWATCH, "analyze", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            preexec_fn=lambda: os.close(1),
        )
    assert (result.returncode, result.stderr) == (EXIT_OK, "")


@pytest.mark.parametrize("command", [["analyze", "--format", "jsonl"], ["reasons"], ["reasons", "--format", "json"]])
def test_given_a_reader_that_goes_away_when_a_command_writes_then_it_exits_quietly(command: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line (what `| head -0` does)
    with a_file(b"\n".join(pin_line(n) for n in range(2000)) + b"\n") as path:
        argv = [command[0], str(path), *command[1:]] if command[0] == "analyze" else command
        result = subprocess.run([*PINWATCH, *argv], stdout=write_end, stderr=subprocess.PIPE, text=True, check=False)
    os.close(write_end)
    assert (result.returncode, result.stderr) == (EXIT_OK, "")
