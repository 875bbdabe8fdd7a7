"""Folding turns into a running summary with a model call that goes through the ledger."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .errors import LLMError
from .llm import ChatClient, complete
from .memory import HistoryReader, MemoryView, TurnView
from .records import CallDraft, ChatMessage, ModelCall, Summary, request_hash
from .store_api import TranscriptStore
from .tokens import payload_tokens

SUMMARY_PARAMS = {"temperature": 0.2, "max_tokens": 300}
# The request's own labels. ScriptedClient._summary parses exactly this layout, so keep these three strings.
CURRENT_LABEL = "Current summary:"
LINES_LABEL = "New lines of conversation:"
NEW_LABEL = "New summary:"
EMPTY_SUMMARY = "(empty)"
# The labels are not named here: told "never repeat 'New summary:'", the bundled tiny model repeated them more often.
SUMMARY_INSTRUCTIONS = (
    "You keep a running summary of a conversation between a user and an AI assistant. "
    "Rewrite the current summary so that it also covers the new lines. Keep every name, number, "
    "preference, decision and open question; drop small talk. Write plain sentences in the third person, "
    "starting with 'The user', at most 150 words. Reply with the summary text only, with no heading."
)
SCAFFOLDING_LABELS = (CURRENT_LABEL, LINES_LABEL, NEW_LABEL)
_LABEL_ANYWHERE = re.compile("|".join(re.escape(label) for label in SCAFFOLDING_LABELS), re.IGNORECASE)
_LEADING_LABEL = re.compile(
    r"^[\s#*>_-]*(?:(?:updated|new|current|running)\s+)?summary\s*[:\uff1a][\s*_]*", re.IGNORECASE
)
_TRANSCRIPT_LINE = re.compile(r"^[\s#*>_-]*(?:user|assistant)\s*[:\uff1a]", re.IGNORECASE)
UNUSABLE_SUMMARY = "unusable_summary"


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
    """Turns as one 'User: …' / 'Assistant: …' line per message, cut at `max_chars`.

    A message is flattened to one line and any of the request's labels inside it are unquoted, so no
    message can pose as a section of the request (or end it early) and the reply has less to echo.
    """
    lines = []
    for turn in turns:
        for message in turn.chat_messages():
            content = message.content if len(message.content) <= max_chars else message.content[:max_chars] + " […]"
            content = _LABEL_ANYWHERE.sub(lambda m: m.group(0).rstrip(":"), " ".join(content.split()))
            lines.append(f"{message.role.capitalize()}: {content}")
    return "\n".join(lines)


def summary_request(previous: str, turns: Sequence[TurnView], *, max_chars: int) -> tuple[ChatMessage, ...]:
    """The exact messages of a summary call."""
    body = (
        f"{CURRENT_LABEL}\n{previous.strip() or EMPTY_SUMMARY}\n\n"
        f"{LINES_LABEL}\n{transcript_lines(turns, max_chars)}\n\n{NEW_LABEL}"
    )
    return (ChatMessage("system", SUMMARY_INSTRUCTIONS), ChatMessage("user", body))


def clean_summary(reply: str) -> str:
    """The reply without any echo of its own request: labels, transcript lines, the empty marker, loops.

    A reply that copied the request and then answered is cut to what follows its last 'New summary:'.
    Returns '' when nothing usable is left; the caller then keeps the old summary.
    """
    tails = re.split(re.escape(NEW_LABEL), reply, flags=re.IGNORECASE)
    if len(tails) > 1:
        answer = _cleaned(tails[-1])
        if answer:
            return answer
    return _cleaned(reply)


def _cleaned(text: str) -> str:
    kept: list[str] = []
    for raw in _LABEL_ANYWHERE.sub("\n", text).splitlines():
        line = _LEADING_LABEL.sub("", raw).strip()
        if not line or _TRANSCRIPT_LINE.match(line) or line.lower().startswith(EMPTY_SUMMARY[:-1]):
            continue
        if line not in kept:  # a small model looping on one line says it once
            kept.append(line)
    out = "\n".join(kept).strip()
    return out if re.search(r"\w", out) else ""


def summary_params(client: ChatClient) -> dict:
    """The client's own defaults under the summary's: a local model's repeat penalty stops it looping on the prompt."""
    return {**client.default_params, **SUMMARY_PARAMS}


def fold_pending(
    store: TranscriptStore,
    client: ChatClient,
    history: HistoryReader,
    view: MemoryView,
    *,
    budget_tokens: int,
    cache: CallCache | None = None,
) -> SummaryUpdate | None:
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
    params = summary_params(client)
    base: dict[str, Any] = dict(
        purpose="summary",
        conversation_id=history.conversation_id,
        turn=history.through_turn,
        memory_type=view.memory_type,
        model=client.model,
        provider=client.provider,
        host=client.host,
        params=params,
        request=request,
        counted_prompt_tokens=payload_tokens(counter, request),
        history_from_turn=turns[0].number,
        history_to_turn=turns[-1].number,
    )
    cached = cache.find_call(history.user_id, request_hash(client.model, request, params)) if cache else None
    if cached is not None:
        draft = CallDraft(
            **base, reply=cached.reply, finish_reason=cached.finish_reason, usage=cached.usage, latency_ms=0.0
        )
    else:
        try:
            result = complete(client, request, params=params)
        except LLMError as exc:
            call = store.record_call(history.user_id, CallDraft(**base, error_kind=exc.kind, error=exc.message))
            return SummaryUpdate(None, call, exc, None)
        draft = CallDraft(
            **base,
            reply=result.text,
            finish_reason=result.finish_reason,
            usage=result.usage,
            latency_ms=result.latency_ms,
            first_token_ms=result.first_token_ms,
        )
    text = clean_summary(draft.reply)
    unusable = (
        None
        if text
        else LLMError(
            UNUSABLE_SUMMARY,
            "The summarizer's reply only repeated its own request (its labels or the conversation "
            "lines), so the summary was not changed; the reply is kept with the call.",
        )
    )
    if unusable is not None:  # the ledger keeps the raw reply, marked failed; the old summary stays in use
        draft = replace(draft, error_kind=unusable.kind, error=unusable.message)
    if cached is None and cache is not None and cache is not store:
        cache.record_call(history.user_id, replace(draft, conversation_id=None))
    if unusable is not None:
        failed = store.record_call(history.user_id, draft)
        return SummaryUpdate(None, failed, unusable, None, cached=cached is not None)
    summary, stored_call = store.add_summary(
        history.user_id,
        history.conversation_id,
        view.memory_type,
        text,
        from_turn=from_turn,
        through_turn=turns[-1].number,
        tokens=counter.count(text),
        call=draft,
    )
    return SummaryUpdate(summary, stored_call, None, (turns[0].number, turns[-1].number), cached=cached is not None)
