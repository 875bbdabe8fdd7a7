"""After a turn: model calls that propose facts about the user and update entity summaries, all in the ledger."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from . import validation
from .config import Limits
from .errors import InvalidInput, LLMError
from .llm import ChatClient, complete
from .memory import TurnView
from .recall import mentions
from .records import CallDraft, ChatMessage, Entity, ModelCall, PreferenceChange, request_hash
from .store_api import PreferenceStore, TranscriptStore
from .summarizer import CallCache, transcript_lines
from .tokens import TokenCounter, payload_tokens

EXTRACTION_PARAMS = {"temperature": 0.0, "max_tokens": 300}
MAX_FACTS_PER_TURN = 10
MAX_ENTITIES_PER_TURN = 10
MAX_KNOWN_FACTS = 100  # newest enabled preferences shown to the facts call, so its prompt stays bounded
MESSAGE_CHARS = 4_000  # of each message, sent to an extraction call

FACTS_INSTRUCTIONS = (
    "You pick out lasting facts the user states about themselves: name, home, work, family, pets, diet, "
    "languages, likes and dislikes, plans. Reply with only a JSON object that maps short snake_case keys to short "
    'values, for example {"name": "Ada", "home_city": "Oslo"}. Reuse a known key when the user updates that fact. '
    "Leave out anything said about other people, questions, and facts that are already known unchanged. "
    "If there is nothing new, reply {}."
)
ENTITY_INSTRUCTIONS = (
    "You keep short notes on the people, places, organisations and things named in a conversation. For each one "
    "named in the new lines, write one or two sentences of what is known about it, rewriting its existing note to "
    "include anything new. Reply with only a JSON object that maps each name to its note, for example "
    '{"Oslo": "The city where the user lives."}. If nothing is named, reply {}.'
)


@dataclass(frozen=True)
class FactsUpdate:
    """What one extraction changed in the user's preferences, with the call; `error` when it failed."""

    changes: tuple[PreferenceChange, ...]
    call: ModelCall | None
    error: str | None = None
    skipped: tuple[str, ...] = ()  # proposals refused (bad keys or values), for the notice


@dataclass(frozen=True)
class EntitiesUpdate:
    """Entity summaries one turn wrote, with the call; `error` when it failed."""

    entities: tuple[Entity, ...]
    call: ModelCall | None
    error: str | None = None


def parse_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in a model's reply (models wrap JSON in prose or code fences)."""
    start = text.find("{")
    while start != -1:
        depth = 0
        for end in range(start, len(text)):
            if text[end] == "{":
                depth += 1
            elif text[end] == "}":
                depth -= 1
                if depth == 0:
                    try:
                        value = json.loads(text[start : end + 1])
                    except json.JSONDecodeError:
                        break
                    if isinstance(value, dict):
                        return value
                    break
        start = text.find("{", start + 1)
    raise InvalidInput("The reply held no JSON object.")


def flat_pairs(raw: Mapping[str, Any], limit: int) -> list[tuple[str, str]]:
    """Key/value pairs with text or number values; nested values are dropped."""
    pairs = []
    for key, value in raw.items():
        if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
            continue
        text = str(value).strip()
        if text:
            pairs.append((str(key).strip(), text))
    return pairs[:limit]


def facts_request(user_text: str, known: Mapping[str, str]) -> tuple[ChatMessage, ...]:
    known_lines = "\n".join(f"- {k}: {v}" for k, v in known.items()) or "(none)"
    body = f"Known facts:\n{known_lines}\n\nThe user's new message:\n{user_text[:MESSAGE_CHARS]}\n\nJSON:"
    return (ChatMessage("system", FACTS_INSTRUCTIONS), ChatMessage("user", body))


def entities_request(turn: TurnView, known: Sequence[Entity]) -> tuple[ChatMessage, ...]:
    known_lines = "\n".join(f"- {e.name}: {e.summary}" for e in known) or "(none)"
    body = f"Existing notes:\n{known_lines}\n\nNew lines:\n{transcript_lines([turn], MESSAGE_CHARS)}\n\nJSON:"
    return (ChatMessage("system", ENTITY_INSTRUCTIONS), ChatMessage("user", body))


def _call(
    client: ChatClient,
    counter: TokenCounter,
    purpose: str,
    request: tuple[ChatMessage, ...],
    *,
    conversation_id: int,
    turn: int,
    memory_type: str,
    user_id: str,
    cache: CallCache | None = None,
    remember: bool = False,
) -> tuple[CallDraft, str | None]:
    """Run one extraction call (or reuse the same request's answer from `cache`, as replays do); the draft is
    ready for the ledger whether it worked or not."""
    base: dict[str, Any] = dict(
        purpose=purpose,
        conversation_id=conversation_id,
        turn=turn,
        memory_type=memory_type,
        model=client.model,
        provider=client.provider,
        host=client.host,
        params=dict(EXTRACTION_PARAMS),
        request=request,
        counted_prompt_tokens=payload_tokens(counter, request),
        history_from_turn=turn,
        history_to_turn=turn,
    )
    cached = cache.find_call(user_id, request_hash(client.model, request, base["params"])) if cache else None
    if cached is not None:
        return CallDraft(
            **base, reply=cached.reply, finish_reason=cached.finish_reason, usage=cached.usage, latency_ms=0.0
        ), None
    try:
        result = complete(client, request, params=EXTRACTION_PARAMS)
    except LLMError as exc:
        return CallDraft(**base, error_kind=exc.kind, error=exc.message), exc.message
    draft = CallDraft(
        **base,
        reply=result.text,
        finish_reason=result.finish_reason,
        usage=result.usage,
        latency_ms=result.latency_ms,
        first_token_ms=result.first_token_ms,
    )
    if cache is not None and remember:  # a replay's own store is thrown away after: keep the answer in the cache
        cache.record_call(user_id, replace(draft, conversation_id=None))
    return draft, None


def extract_facts(
    store: TranscriptStore,
    preferences: PreferenceStore,
    client: ChatClient,
    counter: TokenCounter,
    *,
    user_id: str,
    turn: TurnView,
    conversation_id: int,
    memory_type: str,
    limits: Limits = Limits(),
    cache: CallCache | None = None,
) -> FactsUpdate | None:
    """Ask the model for facts in the user's message; save new or changed ones, logging what they replaced."""
    if turn.user is None:
        return None
    enabled = sorted(
        (p for p in preferences.list_preferences(user_id) if p.enabled), key=lambda p: p.updated_at, reverse=True
    )[:MAX_KNOWN_FACTS]  # switched-off facts are not sent anywhere, this call included
    known = {p.key: p.value for p in enabled}
    draft, error = _call(
        client,
        counter,
        "facts",
        facts_request(turn.user.content, known),
        conversation_id=conversation_id,
        turn=turn.number,
        memory_type=memory_type,
        cache=cache,
        user_id=user_id,
        remember=cache is not store,
    )
    proposals: list[tuple[str, str]] = []
    if error is None:
        try:
            proposals = flat_pairs(parse_json_object(draft.reply), MAX_FACTS_PER_TURN)
        except InvalidInput as exc:
            error = f"The facts reply could not be read ({exc})"
    call = store.record_call(user_id, draft)
    if error is not None:
        return FactsUpdate((), call, error)
    valid, skipped = [], []
    for key, value in proposals:
        try:
            valid.append(
                (validation.fact_key(key.replace(" ", "_").lower(), limits), validation.fact_value(value, limits))
            )
        except InvalidInput:
            skipped.append(key)
    changes = (
        preferences.apply_fact_changes(
            user_id, valid, conversation_id=conversation_id, turn=turn.number, call_id=call.id
        )
        if valid
        else []
    )
    return FactsUpdate(tuple(changes), call, None, tuple(skipped))


def update_entities(
    store: TranscriptStore,
    client: ChatClient,
    counter: TokenCounter,
    *,
    user_id: str,
    turn: TurnView,
    conversation_id: int,
    memory_type: str,
    cache: CallCache | None = None,
) -> EntitiesUpdate:
    """Ask the model which entities the turn names and rewrite their notes; a new version per changed note."""
    every = store.list_entities(user_id, conversation_id)
    text = "\n".join(m.content for m in turn.chat_messages())
    known = [e for e in every if mentions(text, e.name)][:MAX_ENTITIES_PER_TURN]  # only the notes this turn can change
    draft, error = _call(
        client,
        counter,
        "entities",
        entities_request(turn, known),
        conversation_id=conversation_id,
        turn=turn.number,
        memory_type=memory_type,
        cache=cache,
        user_id=user_id,
        remember=cache is not store,
    )
    updates: list[tuple[str, str]] = []
    if error is None:
        try:
            current = {e.name.casefold(): e.summary for e in every}
            updates = []
            for name, summary in flat_pairs(parse_json_object(draft.reply), MAX_ENTITIES_PER_TURN):
                try:
                    name, summary = validation.entity_name(name), validation.entity_summary(summary)
                except InvalidInput:
                    continue
                if current.get(name.casefold()) != summary:
                    updates.append((name, summary))
        except InvalidInput as exc:
            error = f"The entities reply could not be read ({exc})"
    if error is not None or not updates:
        return EntitiesUpdate((), store.record_call(user_id, draft), error)
    entities, call = store.add_entity_versions(user_id, conversation_id, updates, turn=turn.number, call=draft)
    return EntitiesUpdate(tuple(entities), call, None)


__all__ = ["EntitiesUpdate", "FactsUpdate", "extract_facts", "parse_json_object", "update_entities"]
