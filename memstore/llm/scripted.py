"""A scripted chat client for tests and benchmarks: each call takes the next scripted outcome."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import LLMError
from ..records import ChatMessage, Usage
from ..tokens import CharEstimateCounter, TokenCounter
from .base import StreamState


@dataclass(frozen=True)
class Cut:
    """A reply that streams `text` and then breaks with `error`."""

    text: str
    error: LLMError


class ScriptedStream(StreamState):
    """Streams a scripted outcome word by word: a reply, an error, or a reply cut by an error."""

    def __init__(
        self, outcome: Any, messages: Sequence[ChatMessage], params: Mapping[str, Any], *, whole: bool = False
    ):
        super().__init__(messages, params)
        self.outcome = outcome
        self.whole = whole
        self.closed = False

    def __iter__(self) -> Iterator[str]:
        outcome = self.outcome
        if isinstance(outcome, LLMError):
            raise outcome
        text = outcome.text if isinstance(outcome, Cut) else str(outcome)
        for piece in [text] if self.whole else text.split(" "):
            yield self._received(piece if not self.text else " " + piece)
        if isinstance(outcome, Cut):
            raise outcome.error
        words = len(self.text.split())
        self._finish("stop", Usage(11, words, 11 + words))

    def close(self) -> None:
        self.closed = True


class ScriptedClient:
    """Replies from a script; when the script runs out it echoes the last user message."""

    provider = "scripted"
    host = "in-process"

    def __init__(
        self,
        script: Sequence[Any] = (),
        *,
        model: str = "scripted",
        context_tokens: int = 8_192,
        counter: TokenCounter | None = None,
        whole_replies: bool = False,
    ):
        self.script = list(script)
        self.model = model
        self.context_tokens = context_tokens
        self._counter = counter or CharEstimateCounter()
        self.default_params: dict[str, Any] = {}
        self.whole_replies = whole_replies  # one chunk per reply: benchmarks measure memory, not streaming
        self.requests: list[list[ChatMessage]] = []
        self.params: list[dict] = []

    def counter(self) -> TokenCounter:
        return self._counter

    def stream_chat(self, messages: Sequence[ChatMessage], *, params: Mapping[str, Any]) -> ScriptedStream:
        self.requests.append(list(messages))
        self.params.append(dict(params))
        if self.script:
            outcome = self.script.pop(0)
        elif messages[0].role == "system" and "running summary" in messages[0].content:
            outcome = self._summary(messages[-1].content)
        else:
            outcome = f"echo: {messages[-1].content}"
        return ScriptedStream(outcome, messages, params, whole=self.whole_replies)

    @staticmethod
    def _summary(request: str) -> str:
        """A deterministic 'summary': the previous one plus the new lines, so nothing is forgotten."""
        previous, _, lines = request.partition("\n\nNew lines of conversation:\n")
        previous = previous.removeprefix("Current summary:\n")
        lines = lines.removesuffix("\n\nNew summary:").replace("\n", " ")
        kept = "" if previous.startswith("(empty") else previous.removeprefix("SUMMARY ") + " "
        return f"SUMMARY {kept}{lines}"

    @property
    def chat_requests(self) -> list[list[ChatMessage]]:
        return [r for r in self.requests if not (r[0].role == "system" and "running summary" in r[0].content)]
