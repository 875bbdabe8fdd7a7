"""The client used when no model is configured: the app still works, and sending explains what to set."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..errors import LLMError
from ..records import ChatMessage
from ..tokens import CharEstimateCounter, TokenCounter
from .base import Completion, Stopwatch

NOT_CONFIGURED = (
    "No model is available. Set OPENAI_API_KEY for OpenAI, or OPENAI_BASE_URL (and OPENAI_MODEL) "
    "for a local OpenAI-compatible server such as Ollama, LM Studio, vLLM or llama.cpp; "
    "your message is saved and can be retried."
)


class _NoStream:
    def __init__(self, message: str) -> None:
        self.message = message
        self.text = ""
        self.completion: Completion | None = None
        self.stopwatch = Stopwatch()

    def __iter__(self) -> Iterator[str]:
        raise LLMError("not_configured", self.message)
        yield ""  # pragma: no cover - makes this a generator

    def close(self) -> None:
        pass


class UnconfiguredClient:
    """Stands in for a model so memory, preview and history work before one is set up."""

    provider = "none"
    host = "not configured"
    model = "none"
    context_tokens = 8_192
    default_params: dict[str, Any] = {}

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason
        self.message = f"{reason} {NOT_CONFIGURED}" if reason else NOT_CONFIGURED

    def counter(self) -> TokenCounter:
        return CharEstimateCounter()

    def stream_chat(self, messages: Sequence[ChatMessage], *, params: Mapping[str, Any]) -> _NoStream:
        return _NoStream(self.message)
