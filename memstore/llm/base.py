"""The model-client contract: stream a chat, report usage, fail with one domain error."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..records import ChatMessage, Usage
from ..tokens import TokenCounter


@dataclass(frozen=True)
class Completion:
    """A finished reply: text, why it stopped, usage as the server reported it, and timings."""

    text: str
    finish_reason: str | None
    usage: Usage
    latency_ms: float
    first_token_ms: float | None


class ReplyStream(Protocol):
    """Iterate for text deltas; afterwards `completion` holds the result.

    Iteration raises LLMError on failure; `text` then holds whatever arrived.
    A stream that ends without a finish reason raises LLMError(kind="truncated").
    """

    completion: Completion | None
    stopwatch: Stopwatch

    @property
    def text(self) -> str: ...
    def __iter__(self) -> Iterator[str]: ...
    def close(self) -> None: ...


class ChatClient(Protocol):
    """A chat model behind any provider."""

    provider: str
    host: str
    model: str
    context_tokens: int
    default_params: dict[str, Any]

    def counter(self) -> TokenCounter: ...
    def stream_chat(self, messages: Sequence[ChatMessage], *, params: Mapping[str, Any]) -> ReplyStream: ...


def complete(client: ChatClient, messages: Sequence[ChatMessage], *, params: Mapping[str, Any]) -> Completion:
    """Drain a stream into one Completion (summary calls use this)."""
    stream = client.stream_chat(messages, params=params)
    try:
        for _ in stream:
            pass
    finally:
        stream.close()
    assert stream.completion is not None
    return stream.completion


class StreamState:
    """What every reply stream keeps: the request, the text so far, the result, and timings.

    Text is kept as a list of pieces, so a reply of any length costs O(delta) per delta. A UTF-16
    surrogate half at the end of a delta (an emoji split across two chunks) waits for its other half.
    """

    def __init__(self, messages: Sequence[ChatMessage], params: Mapping[str, Any]):
        self._messages = [m.as_dict() for m in messages]
        self._params = dict(params)
        self._raw: Any = None
        self._pieces: list[str] = []
        self._joined = ""
        self._held = ""  # a high surrogate waiting for its low half
        self.completion: Completion | None = None
        self.stopwatch = Stopwatch()

    @property
    def text(self) -> str:
        """The reply so far (a lone surrogate half shown as U+FFFD)."""
        if self._pieces:
            self._joined += "".join(self._pieces)
            self._pieces.clear()
        return self._joined + ("\ufffd" if self._held else "")

    def _received(self, delta: str) -> str:
        """Keep a delta; returns the text ready to show (whole characters only)."""
        self.stopwatch.token()
        ready = join_surrogates(self._held + delta)
        self._held = ""
        if ready and "\ud800" <= ready[-1] <= "\udbff":
            ready, self._held = ready[:-1], ready[-1]
        ready = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in ready) if has_surrogates(ready) else ready
        if ready:
            self._pieces.append(ready)
        return ready

    def _finish(self, finish_reason: str, usage: Usage) -> None:
        self.completion = Completion(
            self.text, finish_reason, usage, self.stopwatch.elapsed_ms(), self.stopwatch.first_token_ms
        )

    def close(self) -> None:
        """Stop reading; the underlying HTTP response or generation ends with it."""
        if self._raw is not None and hasattr(self._raw, "close"):
            self._raw.close()


def has_surrogates(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def join_surrogates(text: str) -> str:
    """Pairs of surrogate halves (JSON's escape of one emoji) as the character they encode."""
    if not has_surrogates(text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")


class Stopwatch:
    """Latency and time to first token for one call, in milliseconds."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first_token_ms: float | None = None

    def token(self) -> None:
        if self.first_token_ms is None:
            self.first_token_ms = self.elapsed_ms()

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0
