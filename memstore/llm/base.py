"""The model-client contract: stream a chat, report usage, fail with one domain error."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Protocol, Sequence

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

    text: str
    completion: Completion | None
    stopwatch: "Stopwatch"

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
    """What every reply stream keeps: the request, the text so far, the result, and timings."""

    def __init__(self, messages: Sequence[ChatMessage], params: Mapping[str, Any]):
        self._messages = [m.as_dict() for m in messages]
        self._params = dict(params)
        self._raw: Any = None
        self.text = ""
        self.completion: Completion | None = None
        self.stopwatch = Stopwatch()

    def _received(self, delta: str) -> str:
        self.stopwatch.token()
        self.text += delta
        return delta

    def _finish(self, finish_reason: str, usage: Usage) -> None:
        self.completion = Completion(self.text, finish_reason, usage, self.stopwatch.elapsed_ms(),
                                     self.stopwatch.first_token_ms)

    def close(self) -> None:
        """Stop reading; the underlying HTTP response or generation ends with it."""
        if self._raw is not None and hasattr(self._raw, "close"):
            self._raw.close()


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
