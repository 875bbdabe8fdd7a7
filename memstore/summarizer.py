"""Folding turns into a running summary with a model call that goes through the ledger."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, Sequence

from .errors import LLMError
from .llm import ChatClient, complete
from .memory import HistoryReader, MemoryView, TurnView
from .records import CallDraft, ChatMessage, ModelCall, Summary, request_hash
from .store_api import TranscriptStore
from .tokens import payload_tokens

SUMMARY_PARAMS = {"temperature": 0.2, "max_tokens": 300}
SUMMARY_INSTRUCTIONS = (
    "You keep a running summary of a conversation between a user and an AI assistant. "
    "Rewrite the current summary so that it also covers the new lines. Keep every name, number, "
    "preference, decision and open question; drop small talk. Write in the third person, at most "
    "150 words. Reply with the new summary only."
)


@dataclass(frozen=True)
class SummaryUpdate:
    """The outcome of one fold: the new summary version, or the error; the call is in the ledger."""

    summary: Summary | None
    call: ModelCall | None
    error: LLMError | None
    folded: tuple[int, int] | None
    cached: bool = False


class CallCache(Protocol):
    """A ledger that can answer 'was this exact request already made?' (replays reuse summaries)."""

    def find_call(self, user_id: str, request_hash: str) -> ModelCall | None: ...
    def record_call(self, user_id: str, call: CallDraft) -> ModelCall: ...


def transcript_lines(turns: Sequence[TurnView], max_chars: int) -> str:
    """Turns as 'User: …' / 'Assistant: …' lines, each message cut at `max_chars`."""
    lines = []
    for turn in turns:
        for message in turn.chat_messages():
            content = message.content if len(message.content) <= max_chars else message.content[:max_chars] + " […]"
            lines.append(f"{message.role.capitalize()}: {content}")
    return "\n".join(lines)


def summary_request(previous: str, turns: Sequence[TurnView], *, max_chars: int) -> tuple[ChatMessage, ...]:
    """The exact messages of a summary call."""
    body = (
        f"Current summary:\n{previous.strip() or '(empty: this is the start of the conversation)'}\n\n"
        f"New lines of conversation:\n{transcript_lines(turns, max_chars)}\n\nNew summary:"
    )
    return (ChatMessage("system", SUMMARY_INSTRUCTIONS), ChatMessage("user", body))


def fold_pending(store: TranscriptStore, client: ChatClient, history: HistoryReader, view: MemoryView,
                 *, budget_tokens: int, cache: CallCache | None = None) -> SummaryUpdate | None:
    """Fold the view's pending turns into a new summary version, reading at most `budget_tokens` of turns.

    If the pending turns do not fit the budget, only the newest that fit are folded and the
    summary restarts from them; the panel then says which turns were never summarized.
    """
    if view.summary_pending is None:
        return None
    first, last = view.summary_pending
    turns, _ = history.newest_within(budget_tokens, end_turn=last, start_turn=first)
    if not turns:  # a single turn larger than the budget: fold it, cut to size
        turns = history.turns(last, last)
    if not turns:
        return None
    previous = view.summary
    contiguous = previous is not None and turns[0].number == previous.through_turn + 1
    previous_text = previous.text if contiguous and previous is not None else ""
    from_turn = previous.from_turn if contiguous and previous is not None else turns[0].number
    counter = history.counter
    request = summary_request(previous_text, turns, max_chars=budget_tokens * 4)
    base = dict(
        purpose="summary", conversation_id=history.conversation_id, turn=history.through_turn,
        memory_type=view.memory_type, model=client.model, provider=client.provider, host=client.host,
        params=dict(SUMMARY_PARAMS), request=request, counted_prompt_tokens=payload_tokens(counter, request),
        history_from_turn=turns[0].number, history_to_turn=turns[-1].number,
    )
    cached = cache.find_call(history.user_id, request_hash(client.model, request, base["params"])) if cache else None
    if cached is not None:
        draft = CallDraft(**base, reply=cached.reply, finish_reason=cached.finish_reason, usage=cached.usage,
                          latency_ms=0.0)
    else:
        try:
            result = complete(client, request, params=SUMMARY_PARAMS)
        except LLMError as exc:
            call = store.record_call(history.user_id, CallDraft(**base, error_kind=exc.kind, error=exc.message))
            return SummaryUpdate(None, call, exc, None)
        draft = CallDraft(**base, reply=result.text, finish_reason=result.finish_reason, usage=result.usage,
                          latency_ms=result.latency_ms, first_token_ms=result.first_token_ms)
        if cache is not None and cache is not store:
            cache.record_call(history.user_id, replace(draft, conversation_id=None))
    text = draft.reply.strip()
    summary, call = store.add_summary(
        history.user_id, history.conversation_id, view.memory_type, text,
        from_turn=from_turn, through_turn=turns[-1].number, tokens=counter.count(text), call=draft,
    )
    return SummaryUpdate(summary, call, None, (turns[0].number, turns[-1].number), cached=cached is not None)
