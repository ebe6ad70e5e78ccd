"""`pinwatch analyze`: every input kind, every format, every error path — through pinwatch.cli.main."""

from __future__ import annotations

import gzip
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from pinwatch.cli import inputs, main
from pinwatch.parse import PIN_PHRASE

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "events" / "sample-proxy.log"
MYSQL_SAMPLE = ROOT / "events" / "sample-mysql-proxy.log"

PIN_TAIL = "for the remainder of the session. The proxy can't reuse this connection until the session ends. Reason: "
SETTINGS = "SQL changed session settings that the proxy doesn't track."


def pin(digest: str, stamp: str = "2024-05-01T10:00:00.000Z", reason: str = SETTINGS) -> str:
    return (
        f"{stamp} [WARN] [proxyEndpoint=default] [clientConnection=1] {PIN_PHRASE} [dbConnection=2] {PIN_TAIL}"
        f'{reason} Digest: "{digest}".'
    )


PARSE_PIN = (
    f"2024-05-01T10:05:00Z [WARN] [clientConnection=3] {PIN_PHRASE} [dbConnection=4] {PIN_TAIL}"
    "A parse message was detected."
)
CONNECT = "2024-05-01T10:01:00.000Z [INFO] [proxyEndpoint=default] [clientConnection=5] A new client connected from 10.0.0.1:5000."
CLOSED = "2024-05-01T10:02:00.000Z [INFO] [clientConnection=5] The client connection closed. Reason: The TCP channel was closed."
JUNK = "this is not a proxy line"
LINES = [
    pin("set search_path = $1"),
    CONNECT,
    pin("set search_path = $1"),
    JUNK,
    CLOSED,
    PARSE_PIN,
    "",
    pin("set names $1"),
]


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "proxy.log"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["analyze", *args])
    out, err = capsys.readouterr()
    return code, out, err


def summary(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, _ = run([*args, "--format", "json"], capsys)
    assert code == 0
    loaded: dict[str, Any] = json.loads(out)
    return loaded


def aws_document(lines: list[str], start_ms: int = 1_714_557_600_000) -> dict[str, Any]:
    return {
        "events": [
            {
                "logStreamName": "prx-0123abcd",
                "timestamp": start_ms + i * 1000,
                "message": line,
                "ingestionTime": start_ms + i * 1000 + 50,
                "eventId": f"{37000000000000000000000000 + i}",
            }
            for i, line in enumerate(lines)
        ],
        "searchedLogStreams": [{"logStreamName": "prx-0123abcd", "searchedCompletely": True}],
        "nextToken": "Bxkq6kVGFtq2y_MoigeqscPOdhXVbhiVtLoAmXb5jCrI7fXLrZ9N8ySPhzIQaMk4iBQ",
    }


# --- plain text, formats -------------------------------------------------------------------------


def test_given_a_plain_log_when_analyzed_as_json_then_counts_follow_the_input(
    log_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = summary([str(log_file)], capsys)

    assert result["lines"] == len(LINES)
    assert result["totals"] == {"pinned": 4, "would_pin": 0, "other": 2, "unparsed": 2}
    reasons = {p["reason"]: p["count"] for p in result["pins"]}
    assert reasons == {"session_settings": 3, "prepared_statement": 1}
    top = result["pins"][0]
    assert top["example_digest"] == "set search_path = $1"
    assert top["first_seen"] == "2024-05-01T10:00:00.000Z"
    assert "search_path" in top["top_hint"]
    assert result["sources"] == [str(log_file)]


def test_given_a_plain_log_when_analyzed_as_a_table_then_reasons_hints_and_totals_are_shown(
    log_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([str(log_file), "--proxy", "orders-proxy"], capsys)

    assert code == 0
    assert err == ""
    assert "Pinning reasons: orders-proxy" in out
    assert out.index("session_settings") < out.index("prepared_statement")  # ranked by count
    assert "75%" in out
    assert "25%" in out
    assert "SET search_path" in out
    assert "pins 4 · would-pins 0 · other 2 · unparsed 2 · lines 8" in out


def test_given_a_log_without_pins_when_analyzed_as_a_table_then_it_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "quiet.log"
    path.write_text(f"{CONNECT}\n{CLOSED}\n")

    code, out, _ = run([str(path)], capsys)

    assert code == 0
    assert "No pinning found in 2 lines" in out


def test_given_a_plain_log_when_analyzed_as_jsonl_then_there_is_one_object_per_input_line(
    log_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run([str(log_file), "--format", "jsonl", "--proxy", "orders-proxy"], capsys)
    objects = [json.loads(line) for line in out.splitlines()]

    assert code == 0
    assert [o["line"] for o in objects] == list(range(1, len(LINES) + 1))
    assert [o["kind"] for o in objects] == [
        "pinned", "other", "pinned", "unparsed", "other", "pinned", "unparsed", "pinned",
    ]  # fmt: skip
    first = objects[0]
    assert first["reason"] == "session_settings"
    assert first["reason_text"] == SETTINGS
    assert first["digest"] == "set search_path = $1"
    assert first["timestamp"] == "2024-05-01T10:00:00.000Z"
    assert (first["endpoint"], first["client_connection"], first["db_connection"]) == ("default", "1", "2")
    assert first["proxy"] == "orders-proxy"
    assert objects[4]["reason"] is None
    assert objects[4]["reason_text"] == "The TCP channel was closed."
    assert objects[6]["timestamp"] is None


def test_given_a_plain_log_when_analyzed_as_markdown_then_a_ticket_ready_table_and_fixes_are_printed(
    log_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run([str(log_file), "--format", "markdown", "--proxy", "orders-proxy"], capsys)

    assert code == 0
    assert out.startswith("## RDS Proxy pinning: orders-proxy")
    assert "| Reason | Pins | Share |" in out
    assert "| Session settings changed (SET) (`session_settings`) | 3 | 75% |" in out
    assert "### How to fix" in out
    search_path = next(line for line in out.splitlines() if line.startswith("- `SET search_path` pins on PostgreSQL"))
    # Each fix links the page it rests on: for a role default, PostgreSQL's ALTER ROLE page.
    assert search_path.endswith("([docs](https://www.postgresql.org/docs/current/sql-alterrole.html))")


def test_given_a_digest_with_pipes_and_backticks_when_rendered_as_markdown_then_the_table_stays_intact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "odd.log"
    path.write_text(pin("SET `sql_mode` = ? | ?") + "\n")

    _, out, _ = run([str(path), "--format", "markdown"], capsys)

    row = next(line for line in out.splitlines() if "session_settings" in line and line.startswith("|"))
    assert "``SET `sql_mode` = ? \\| ?``" in row
    assert len(re.findall(r"(?<!\\)\|", row)) == 8  # seven cells: the digest's pipe is escaped


def test_given_top_n_when_analyzed_then_only_n_reasons_are_reported(
    log_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = summary([str(log_file), "--top", "1"], capsys)

    assert [p["reason"] for p in result["pins"]] == ["session_settings"]
    assert result["totals"]["pinned"] == 4  # totals are not cut


def test_given_fail_on_pins_when_pins_are_found_then_exit_1_and_otherwise_0(
    log_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = tmp_path / "quiet.log"
    quiet.write_text(CONNECT + "\n")

    assert run([str(log_file), "--fail-on-pins"], capsys)[0] == 1
    assert run([str(quiet), "--fail-on-pins"], capsys)[0] == 0
    assert run([str(log_file)], capsys)[0] == 0


def test_given_an_engine_and_driver_when_analyzed_then_hints_follow_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.log"
    path.write_text(PARSE_PIN + "\n")

    result = summary([str(path), "--engine", "mysql"], capsys)

    assert result["engine"] == "MYSQL"
    assert result["pins"][0]["engines"] == ["MYSQL"]
    assert result["pins"][0]["top_hint"].startswith("MySQL:")


# --- other input kinds ---------------------------------------------------------------------------


def test_given_aws_logs_json_when_analyzed_then_event_timestamps_are_the_authority(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(aws_document(LINES), indent=4))

    result = summary([str(path)], capsys)

    assert result["totals"] == {"pinned": 4, "would_pin": 0, "other": 2, "unparsed": 2}
    assert result["first_seen_ms"] == 1_714_557_600_000
    assert result["last_seen_ms"] == 1_714_557_600_000 + (len(LINES) - 1) * 1000


def test_given_aws_logs_json_when_analyzed_as_jsonl_then_line_is_the_event_position_and_stream_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "export"  # no extension: detected by content
    path.write_text(json.dumps(aws_document(LINES)))

    _, out, _ = run([str(path), "--format", "jsonl"], capsys)
    objects = [json.loads(line) for line in out.splitlines()]

    assert [o["line"] for o in objects] == list(range(1, len(LINES) + 1))
    assert objects[0]["timestamp"] == "2024-05-01T10:00:00.000Z"
    assert objects[1]["timestamp"] == "2024-05-01T10:00:01.000Z"  # the event's, not the text's 10:01:00
    assert {o["log_stream"] for o in objects} == {"prx-0123abcd"}


def test_given_get_log_events_output_with_tokens_first_when_analyzed_then_events_are_still_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = {"nextForwardToken": "f/1", "events": aws_document(LINES)["events"], "nextBackwardToken": "b/1"}
    path = tmp_path / "page.json"
    path.write_text(json.dumps(document, indent=2))

    assert summary([str(path)], capsys)["totals"]["pinned"] == 4


def test_given_concatenated_pages_and_a_bare_event_array_when_analyzed_then_all_events_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = tmp_path / "pages.json"
    pages.write_text(json.dumps(aws_document(LINES[:4])) + "\n" + json.dumps(aws_document(LINES[4:])))
    array = tmp_path / "events.json"
    array.write_text(json.dumps(aws_document(LINES)["events"]))

    assert summary([str(pages)], capsys)["lines"] == len(LINES)
    assert summary([str(array)], capsys)["totals"]["pinned"] == 4


def test_given_json_lines_of_events_when_analyzed_then_each_line_is_an_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in aws_document(LINES)["events"]) + "\n")

    result = summary([str(path)], capsys)

    assert result["totals"]["pinned"] == 4
    assert result["first_seen_ms"] == 1_714_557_600_000


def test_given_aws_text_output_when_analyzed_then_message_and_timestamp_are_taken_from_the_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "export.txt"
    path.write_text(f"EVENTS\t3700000001\t1714557600050\tprx-0123abcd\t{pin('set names $1')}\t1714557600000\n")

    _, out, _ = run([str(path), "--format", "jsonl"], capsys)
    (obj,) = [json.loads(line) for line in out.splitlines()]

    assert obj["digest"] == "set names $1"
    assert obj["timestamp"] == "2024-05-01T10:00:00.000Z"
    assert obj["log_stream"] == "prx-0123abcd"


@pytest.mark.parametrize("shape", ["text", "json"])
def test_given_a_gzipped_export_when_analyzed_then_it_matches_the_uncompressed_result(
    shape: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = "\n".join(LINES) + "\n" if shape == "text" else json.dumps(aws_document(LINES), indent=2)
    plain, packed = tmp_path / "plain", tmp_path / "packed.bin"
    plain.write_text(body)
    packed.write_bytes(gzip.compress(body.encode()))

    expected = summary([str(plain)], capsys)
    result = summary([str(packed)], capsys)

    assert result["totals"] == expected["totals"]
    assert result["pins"] == expected["pins"]


@pytest.mark.parametrize("args", [["-"], []])
def test_given_stdin_when_analyzed_then_piped_lines_are_read(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(("\n".join(LINES) + "\n").encode())))

    result = summary(args, capsys)

    assert result["totals"]["pinned"] == 4
    assert result["sources"] == ["-"]


def test_given_gzip_on_stdin_when_analyzed_then_it_is_decompressed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = gzip.compress(json.dumps(aws_document(LINES)).encode())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    assert summary(["-"], capsys)["totals"]["pinned"] == 4


def test_given_several_files_when_analyzed_as_jsonl_then_each_object_names_its_source(
    log_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "second.log"
    other.write_text(PARSE_PIN + "\n")

    _, out, _ = run([str(log_file), str(other), "--format", "jsonl"], capsys)
    objects = [json.loads(line) for line in out.splitlines()]

    assert len(objects) == len(LINES) + 1
    assert objects[-1] == {**objects[-1], "source": str(other), "line": 1, "reason": "prepared_statement"}


# --- bad input -----------------------------------------------------------------------------------


def test_given_hostile_content_when_analyzed_then_nothing_crashes_and_nothing_is_a_pin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "junk.log"
    content = b"\n".join(
        [
            b"\x00\x01\x02\xfe\xff binary",
            b"caf\xe9 invalid utf-8 \xc3\x28",
            b'{"level":"info","msg":"from another service"}',
            b"y" * 256 * 1024,
            b"",
            b"\r",
        ]
    )
    path.write_bytes(content + b"\n")

    result = summary([str(path)], capsys)

    assert result["totals"]["pinned"] == 0
    assert result["totals"]["unparsed"] == 6
    assert len(result["unparsed"]["samples"]) == 5
    assert "\ufffd" in result["unparsed"]["samples"][1]["text"]


def test_given_crlf_line_endings_when_analyzed_then_digests_are_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "windows.log"
    path.write_bytes(("\r\n".join(LINES) + "\r\n").encode())

    result = summary([str(path)], capsys)

    assert result["pins"][0]["example_digest"] == "set search_path = $1"


def test_given_a_line_longer_than_the_cap_when_analyzed_then_it_is_one_unparsed_line_and_reading_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(inputs, "MAX_LINE_CHARS", 1000)
    path = tmp_path / "long.log"
    path.write_text(pin("x" * 5000) + "\n" + PARSE_PIN + "\n")

    _, out, _ = run([str(path), "--format", "jsonl"], capsys)
    objects = [json.loads(line) for line in out.splitlines()]

    assert [(o["line"], o["kind"]) for o in objects] == [(1, "unparsed"), (2, "pinned")]


def test_given_truncated_aws_json_when_analyzed_then_complete_events_count_and_the_rest_is_unparsed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = json.dumps(aws_document(LINES), indent=2)
    path = tmp_path / "cut.json"
    path.write_text(text[: text.index(LINES[5][:40])])  # cut inside the sixth event

    result = summary([str(path)], capsys)

    assert result["lines"] == 6
    assert result["totals"]["pinned"] == 2
    assert result["totals"]["unparsed"] == 2  # the junk line and the cut-off rest


def test_given_events_with_odd_fields_when_analyzed_then_they_are_unparsed_or_untimed_never_crashing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [{"message": 42}, {"timestamp": "soon", "message": PARSE_PIN}, "not an object", {"timestamp": True}]
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"events": events}))

    _, out, _ = run([str(path), "--format", "jsonl"], capsys)
    objects = [json.loads(line) for line in out.splitlines()]

    assert [o["kind"] for o in objects] == ["unparsed", "pinned", "unparsed", "unparsed"]
    assert objects[1]["timestamp"] == "2024-05-01T10:05:00.000Z"  # falls back to the text


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", ["missing", "directory", "corrupt_gzip"])
def test_given_an_unreadable_file_when_analyzed_then_exit_2_with_a_one_line_message(
    make: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / make
    if make == "directory":
        path.mkdir()
    elif make == "corrupt_gzip":
        path.write_bytes(b"\x1f\x8b\x08\x00garbage that is not deflate")

    code, out, err = run([str(path), "--format", "json"], capsys)

    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("pinwatch analyze: error: ")
    assert str(path) in err


def test_given_a_missing_file_after_a_good_one_when_analyzed_then_nothing_is_printed_before_the_error(
    log_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([str(log_file), str(tmp_path / "nope.log"), "--format", "jsonl"], capsys)

    assert (code, out) == (2, "")
    assert "no such file" in err


def test_given_a_terminal_on_stdin_and_no_files_when_analyzed_then_exit_2_instead_of_waiting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty())

    code, _, err = run([], capsys)

    assert code == 2
    assert "no input" in err


@pytest.mark.parametrize(
    "args",
    [["--engine", "oracle"], ["--top", "0"], ["--top", "x"], ["--format", "xml"], ["--driver", "cobol"]],
)
def test_given_bad_arguments_when_parsed_then_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["analyze", *args, "-"])

    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


# --- the shipped samples -------------------------------------------------------------------------


def test_given_the_postgresql_sample_when_analyzed_then_every_pin_line_is_counted_and_hinted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = SAMPLE.read_text().splitlines()

    result = summary([str(SAMPLE)], capsys)

    assert result["totals"]["pinned"] == sum(PIN_PHRASE in line for line in lines)
    assert result["totals"]["would_pin"] == sum("will be pinned" in line for line in lines)
    assert result["totals"]["unparsed"] == 0
    assert {p["reason"] for p in result["pins"]} == {"session_settings", "prepared_statement", "large_statement"}
    assert all(p["engines"] == ["POSTGRESQL"] and p["top_hint"] for p in result["pins"])
    assert 0.10 <= result["totals"]["pinned"] / result["lines"] <= 0.20


def test_given_the_mysql_sample_when_analyzed_then_digest_refined_reasons_and_mysql_hints_appear(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = summary([str(MYSQL_SAMPLE)], capsys)
    by_reason = {p["reason"]: p for p in result["pins"]}

    assert {"session_settings", "user_variable", "lock", "executable_comment"} <= set(by_reason)
    assert "culprit is `optimizer_search_depth`" in by_reason["session_settings"]["top_hint"]
    assert all(p["engines"] == ["MYSQL"] for p in result["pins"])
