"""Bounded reading of a JSON stream: a total byte cap, and no string or bare value read whole past its cap.

ijson (yajl) holds a string until its closing quote and re-reads it on every buffer it spans, so one long string
costs the square of its length (32 MB: 3.3 s; 128 MB: minutes and gigabytes). This filter sits between the file
and ijson: it passes JSON through unchanged, except that a string longer than `max_string_bytes` is cut a little
after its start, ends with CUT_MARK, and the rest of it is skipped unread by the parser. A bare value (a number,
true/false/null) longer than MAX_BARE_BYTES is refused: no export writes one, and yajl parses it in square time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import IO

from ..errors import InvalidInput

CUT_MARK = "\u2026\ufdd0[cut: longer than the limit]"  # U+FDD0 is a noncharacter: no export holds it
CUT_MARK_BYTES = CUT_MARK.encode("utf-8")
KEPT_BYTES = 2_000  # what a cut string keeps of its start, for Look inside
MAX_BARE_BYTES = 1_000  # a number or literal outside quotes; ChatGPT's longest are timestamps (about 20)
CHUNK_BYTES = 1 << 16  # the regex keeps a backtracking stack as long as its chunk (about 20 bytes a byte)

_BARE = rb"\-+.0-9A-Za-z"
# No possessive quantifiers: Python before 3.11.5 (Debian 12 has 3.11.2) matches some of them wrongly. Each pattern
# is anchored and ends where it stops matching, so it never backtracks into a loop it left; an unterminated string
# gives back at most its own length, once.
_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'  # a whole string
# Whole strings, bare values followed by their end, and everything else: what can be passed on as it is.
_PASSABLE = re.compile(
    rb'(?:[^"' + _BARE + rb"]+|[" + _BARE + rb"]{1,%d}(?=[^" % MAX_BARE_BYTES + _BARE + rb"])|" + _STRING + rb")*"
)
_BARE_RUN = re.compile(rb"[" + _BARE + rb"]*")
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*')  # a string's content up to its closing quote (or the end)
# One character of a string's content: an escape (a surrogate pair whole), a UTF-8 sequence, or a byte.
_CHARACTER = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[0-9a-fA-F]{4}|\\u(?![dD][89abAB])[0-9a-fA-F]{4}|\\[^u]"
    rb"|[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}|[\x00-\x5b\x5d-\x7f]"
)


class BoundedReader:
    """A stream that raises after `max_bytes`, whatever the file (or a zip's header) says its size is."""

    def __init__(self, raw: IO[bytes], max_bytes: int, too_big: str, close: Callable[[], object]) -> None:
        self._raw, self._left, self._too_big, self.close = raw, max_bytes, too_big, close

    def read(self, size: int = -1) -> bytes:
        want = self._left + 1 if size < 0 else min(size, self._left + 1)
        data = self._raw.read(want)
        self._left -= len(data)
        if self._left < 0:
            raise InvalidInput(self._too_big)
        return data


class LongStringCutter:
    """JSON bytes in, the same JSON out, with every string longer than `max_string_bytes` cut (see the module)."""

    def __init__(self, raw: BoundedReader, max_string_bytes: int) -> None:
        self._raw = raw
        self._max = max(max_string_bytes, KEPT_BYTES)
        self._pending = b""  # an unfinished string or bare value at the end of what was read
        self._skipping = False  # inside a cut string: its bytes are dropped up to its closing quote
        self._out = b""  # passed on, read from _at
        self._at = 0
        self._eof = False

    def read(self, size: int) -> bytes:
        """At most `size` bytes (ijson asks for 64 KB at a time); b"" only at the end."""
        while not self._eof and self._at >= len(self._out):
            self._out, self._at = self._next(), 0
        data = self._out[self._at : self._at + size]
        self._at += len(data)
        return data

    def close(self) -> None:
        self._raw.close()

    def _next(self) -> bytes:
        raw = self._raw.read(CHUNK_BYTES)
        if not raw:
            self._eof = True
            pending, self._pending = self._pending, b""
            return pending  # unfinished: the parser says the file is not valid JSON
        data = self._pending + raw
        self._pending = b""
        out = b""
        if self._skipping:
            end = _closing_quote(data)
            if end is None:  # still inside (a trailing backslash escapes what comes next)
                self._pending = b"\\" if (len(data) - len(data.rstrip(b"\\"))) % 2 else b""
                return b""
            self._skipping = False
            data = data[end + 1 :]
        end = _end(_PASSABLE, data)
        out, rest = data[:end], data[end:]
        if not rest:
            return out
        if rest[:1] != b'"':
            if _end(_BARE_RUN, rest) > MAX_BARE_BYTES:
                raise InvalidInput(
                    f"The file holds a value of more than {MAX_BARE_BYTES:,} characters outside quotes; "
                    "no ChatGPT export does, so nothing was imported."
                )
            self._pending = rest
            return out
        if len(rest) <= self._max:
            self._pending = rest  # an unfinished string, short so far
            return out
        self._skipping = True
        inside = _end(_STRING_REST, rest, 1)
        self._pending = rest[inside:]  # "" or a trailing backslash
        return out + b'"' + _kept(rest[1 : 1 + KEPT_BYTES + 16]) + CUT_MARK_BYTES + b'"'


def _end(pattern: re.Pattern[bytes], data: bytes, start: int = 0) -> int:
    """Where a pattern that also matches nothing stops matching."""
    match = pattern.match(data, start)
    return match.end() if match is not None else start


def _closing_quote(content: bytes) -> int | None:
    """Where a string's content ends: memchr speed when the first quote has no backslash before it."""
    quote = content.find(b'"')
    if quote == -1:
        return None
    if quote and content[quote - 1] == ord("\\"):
        quote = _end(_STRING_REST, content)  # escapes: read them in order
    return quote if content[quote : quote + 1] == b'"' else None


def _kept(start: bytes) -> bytes:
    """The start of a string's content, cut between characters (never inside an escape or a UTF-8 sequence)."""
    end = 0
    while (match := _CHARACTER.match(start, end)) is not None and match.end() <= KEPT_BYTES:
        end = match.end()
    return start[:end]
