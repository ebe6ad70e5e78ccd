"""Read exported proxy logs, whatever shape they come in, as a stream of messages.

Recognised by content, never by file name:

- gzip (magic bytes ``1f 8b``) around any of the below;
- the JSON printed by ``aws logs filter-log-events`` / ``get-log-events``
  (``{"events": [{"timestamp", "message", "logStreamName", ...}], ...}``), or a bare JSON array
  of such events — streamed event by event, never loaded whole;
- text: one message per line, with or without the proxy's prefix; ``aws logs tail`` output;
  JSON-lines of events (``{"timestamp": ..., "message": ...}`` per line); and
  ``aws logs ... --output text`` (``EVENTS<TAB>...`` rows).

Bytes that are not UTF-8 are replaced, lines longer than :data:`MAX_LINE_CHARS` are cut and
flagged, and malformed JSON ends the document with one flagged entry: nothing here raises on bad
content. Only an unreadable file raises :class:`InputError`.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import sys
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from pinwatch.parse import MAX_TIMESTAMP_MS

STDIN = "-"
MAX_LINE_CHARS = 1 << 20  # CloudWatch events are at most 256 KB; a longer line is not a proxy message
_HEAD_BYTES = 4096
_CHUNK_CHARS = 1 << 16
_MAX_VALUE_CHARS = 8 * MAX_LINE_CHARS
_GZIP_MAGIC = b"\x1f\x8b"
_AWS_DOCUMENT = re.compile(rb'^\s*\{\s*"(events|nextToken|nextForwardToken|nextBackwardToken|searchedLogStreams)"\s*:')
_JSON_ARRAY = re.compile(rb"^\s*\[\s*[\{\]]")
_BOM = b"\xef\xbb\xbf"


class InputError(Exception):
    """A source cannot be opened or read (missing, a directory, no permission, corrupt gzip)."""


@dataclass(frozen=True, slots=True)
class InputLine:
    """One message from a source.

    `line` is the 1-based line number for text input and the 1-based position of the event for
    JSON input. `broken` marks content that could not be read as a message (a cut over-long
    line, the rest of a malformed JSON document): count it as unparsed, never as a pin.
    """

    source: str
    line: int
    message: str
    timestamp_ms: int | None = None
    log_stream: str | None = None
    broken: bool = False


def check_readable(path: str) -> None:
    """Raise InputError now, before any output, if `path` cannot be read."""
    if path == STDIN:
        return
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied")


def read_messages(path: str, stdin: IO[Any] | None = None) -> Iterator[InputLine]:
    """Every message of one source, in order. `path` ``-`` reads `stdin` (default ``sys.stdin``)."""
    with ExitStack() as stack:
        if path == STDIN:
            binary = _stdin_binary(stdin if stdin is not None else sys.stdin)
        else:
            try:
                binary = stack.enter_context(open(path, "rb"))
            except OSError as exc:
                raise InputError(f"{path}: {exc.strerror or exc}") from exc
        try:
            yield from _read_binary(path, binary)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: not a readable gzip file ({exc or 'truncated'})") from exc
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror or exc}") from exc


def _stdin_binary(stdin: IO[Any] | None) -> BinaryIO:
    if stdin is None:
        raise InputError("-: no standard input")
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        return buffer  # type: ignore[no-any-return]
    # A text-only stdin (an embedding application's StringIO): it is already in memory.
    return io.BytesIO(stdin.read().encode("utf-8"))


def _read_binary(source: str, binary: BinaryIO) -> Iterator[InputLine]:
    head = _read_head(binary, len(_GZIP_MAGIC))
    stream: IO[bytes] | gzip.GzipFile = io.BufferedReader(_Prepended(head, binary))
    if head == _GZIP_MAGIC:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")
    head = _read_head(stream, _HEAD_BYTES)
    buffered = io.BufferedReader(_Prepended(head, stream), buffer_size=_CHUNK_CHARS)
    text = io.TextIOWrapper(buffered, encoding="utf-8-sig", errors="replace", newline="\n")
    start = head.removeprefix(_BOM)
    if _AWS_DOCUMENT.match(start) or _JSON_ARRAY.match(start):
        yield from _json_events(source, text)
    else:
        yield from _text_lines(source, text)


def _read_head(stream: IO[bytes] | gzip.GzipFile, size: int) -> bytes:
    """Up to `size` bytes (fewer only at end of input), even from a pipe that delivers less per read."""
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class _Prepended(io.RawIOBase):
    """A readable stream of `head` followed by the rest of `rest` (to look at a stream's start without seeking)."""

    def __init__(self, head: bytes, rest: IO[bytes] | gzip.GzipFile) -> None:
        super().__init__()
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        read1 = getattr(self._rest, "read1", None)
        data = read1(len(view)) if read1 is not None else self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def _text_lines(source: str, text: io.TextIOWrapper) -> Iterator[InputLine]:
    number = 0
    while True:
        raw = text.readline(MAX_LINE_CHARS)
        if not raw:
            return
        number += 1
        if len(raw) == MAX_LINE_CHARS and not raw.endswith("\n"):
            # Skip the rest of the over-long physical line without holding it in memory.
            while True:
                more = text.readline(MAX_LINE_CHARS)
                if not more or more.endswith("\n"):
                    break
            yield InputLine(source, number, raw, broken=True)
            continue
        line = raw.rstrip("\n").rstrip("\r")
        yield _text_message(source, number, line)


def _text_message(source: str, number: int, line: str) -> InputLine:
    if line.startswith("{") and '"message"' in line:
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict) and isinstance(event.get("message"), str):
            return _event_line(source, number, event)
    if line.startswith("EVENTS\t"):
        return _text_output_line(source, number, line)
    return InputLine(source, number, line)


def _text_output_line(source: str, number: int, line: str) -> InputLine:
    """A row of ``aws logs filter-log-events|get-log-events --output text``.

    Fields are in key order: [eventId, ingestionTime, logStreamName,] message, timestamp. The
    numeric ids and ingestion time come first, the event timestamp last.
    """
    fields = line.split("\t")[1:]
    # isascii(): str.isdigit() also accepts "²", which int() refuses.
    timestamp = _timestamp(int(fields[-1])) if fields and fields[-1].isascii() and fields[-1].isdigit() else None
    body = fields[:-1] if timestamp is not None else fields
    while len(body) > 1 and body[0].isdigit():
        body = body[1:]
    stream = body[0] if len(body) > 1 else None
    message = "\t".join(body[1:] if stream is not None else body)
    return InputLine(source, number, message, timestamp, stream)


def _event_line(source: str, number: int, event: dict[str, Any]) -> InputLine:
    message = event.get("message")
    timestamp = event.get("timestamp")
    stream = event.get("logStreamName")
    if not isinstance(message, str):
        return InputLine(source, number, json.dumps(event)[:MAX_LINE_CHARS], broken=True)
    return InputLine(
        source,
        number,
        message,
        _timestamp(timestamp) if isinstance(timestamp, int) and not isinstance(timestamp, bool) else None,
        stream if isinstance(stream, str) else None,
    )


def _timestamp(ms: int) -> int | None:
    """Epoch milliseconds a datetime can hold (1970 to 9999); anything else is no timestamp."""
    return ms if 0 <= ms <= MAX_TIMESTAMP_MS else None


def _json_events(source: str, text: io.TextIOWrapper) -> Iterator[InputLine]:
    number = 0
    reader = _JsonReader(text)
    try:
        for event in reader.events():
            number += 1
            if isinstance(event, dict):
                yield _event_line(source, number, event)
            else:
                yield InputLine(source, number, json.dumps(event)[:MAX_LINE_CHARS], broken=True)
    except _MalformedJson as exc:
        yield InputLine(source, number + 1, str(exc), broken=True)


class _MalformedJson(Exception):
    pass


class _JsonReader:
    """Pull the events out of one or more concatenated AWS CLI JSON documents, one event at a time."""

    def __init__(self, text: io.TextIOWrapper) -> None:
        self._text = text
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._decoder = json.JSONDecoder()

    def events(self) -> Iterator[Any]:
        while True:
            ch = self._peek()
            if ch is None:
                return
            if ch == "[":
                yield from self._array()
            elif ch == "{":
                yield from self._document()
            else:
                raise self._error("expected '{' or '['")

    def _document(self) -> Iterator[Any]:
        self._pos += 1
        while True:
            ch = self._peek()
            if ch == "}":
                self._pos += 1
                return
            if ch == ",":
                self._pos += 1
                continue
            key = self._value()
            if self._peek() != ":":
                raise self._error("expected ':'")
            self._pos += 1
            if key == "events" and self._peek() == "[":
                yield from self._array()
            else:
                self._value()  # nextToken, searchedLogStreams, …: not needed

    def _array(self) -> Iterator[Any]:
        self._pos += 1
        while True:
            ch = self._peek()
            if ch == "]":
                self._pos += 1
                return
            if ch == ",":
                self._pos += 1
                continue
            yield self._value()

    def _peek(self) -> str | None:
        """The next non-whitespace character (not consumed), None at end of input."""
        while True:
            buf, pos = self._buf, self._pos
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            self._pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self._fill():
                return None

    def _value(self) -> Any:
        if self._peek() is None:
            raise self._error("unexpected end of input")
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError:
                # Read on while the value may just be incomplete; an event is far smaller than the cap,
                # so hitting it means the JSON is broken (and a corrupt GB file is not read into memory).
                if len(self._buf) - self._pos < _MAX_VALUE_CHARS and self._fill():
                    continue
                raise self._error("invalid JSON") from None
            # A number that ends exactly at the buffer's end may continue in the next chunk.
            if end == len(self._buf) and not self._eof and self._fill():
                continue
            self._pos = end
            return value

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self._text.read(_CHUNK_CHARS)
        if not chunk:
            self._eof = True
            return False
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        return True

    def _error(self, what: str) -> _MalformedJson:
        snippet = self._buf[self._pos : self._pos + 120]
        return _MalformedJson(f"{what} at: {snippet!r}")
