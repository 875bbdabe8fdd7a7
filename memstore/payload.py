"""The exact request for a turn, split into sections with token counts."""

from __future__ import annotations

from dataclasses import dataclass

from .facts import FactSet, facts_block
from .memory import MemoryView
from .memory.turns import stored_message_tokens
from .records import ChatMessage, MemorySettings
from .tokens import TOKENS_PER_REPLY, TokenCounter, message_tokens

SUMMARY_HEADER = "Summary of the earlier conversation:"
RECALL_HEADER = "Earlier turns that may be relevant (recalled by similarity to the new message):"
ENTITY_HEADER = "Notes on people, places and things the user mentions:"
SECTION_LABELS = {
    "system": "System prompt",
    "facts": "Facts and preferences",
    "summary": "Summary",
    "entities": "Entities",
    "recalled": "Recalled turns",
    "history": "History",
    "new_message": "New message",
}


@dataclass(frozen=True)
class Section:
    """One part of the request and the tokens it costs (message framing included)."""

    name: str
    label: str
    tokens: int
    items: int


@dataclass(frozen=True)
class Payload:
    """Exactly what a turn sends, why, and what it costs."""

    messages: tuple[ChatMessage, ...]
    sections: tuple[Section, ...]
    tokenizer: str
    exact_tokens: bool
    context_tokens: int
    view: MemoryView
    facts: FactSet
    message_tokens: tuple[int, ...] = ()

    @property
    def total_tokens(self) -> int:
        return sum(s.tokens for s in self.sections)

    @property
    def context_fill(self) -> float:
        """Share of the model's context window this request takes (0.0 to 1.0 and beyond)."""
        return self.total_tokens / self.context_tokens if self.context_tokens else 0.0

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)

    def tokens_by_section(self) -> dict[str, int]:
        return {s.name: s.tokens for s in self.sections}

    def details(self) -> dict:
        """What memory chose beyond the history, as plain data for the ledger: recall, entities, facts left out."""
        out: dict = {}
        if self.view.recall is not None:
            out["recall"] = self.view.recall.details()
        if self.view.entities is not None:
            out["entities"] = self.view.entities.details()
        if self.facts.left_out:
            out["facts_left_out"] = [
                {"source": f.source, "key": f.key, "reason": why} for f, why in self.facts.left_out
            ]
        return out


def summary_block(view: MemoryView) -> str:
    if view.summary is None or not view.summary.text.strip():
        return ""
    return "\n\n" + SUMMARY_HEADER + "\n" + view.summary.text.strip()


def recall_block(view: MemoryView) -> str:
    if view.recall is None or not view.recall.recalled:
        return ""
    parts = []
    for recalled in view.recall.recalled:
        where = "" if recalled.same_conversation else f" of “{recalled.conversation_title}”"
        lines = "\n".join(f"{m.role}: {m.content}" for m in recalled.turn.chat_messages())
        parts.append(f"[turn {recalled.turn.number}{where}]\n{lines}")
    return "\n\n" + RECALL_HEADER + "\n" + "\n\n".join(parts)


def entity_block(view: MemoryView) -> str:
    if view.entities is None or not view.entities.injected:
        return ""
    return "\n\n" + ENTITY_HEADER + "\n" + "\n".join(f"- {e.name}: {e.summary}" for e in view.entities.injected)


def build_payload(
    settings: MemorySettings,
    view: MemoryView,
    facts: FactSet,
    new_message: str,
    counter: TokenCounter,
    *,
    context_tokens: int,
) -> Payload:
    """System prompt with facts and summary, then the history the memory chose, then the new message."""
    facts_text = facts_block(facts)
    summary_text = summary_block(view)
    entity_text = entity_block(view)
    recall_text = recall_block(view)
    system_text = (settings.system_prompt.strip() + facts_text + summary_text + entity_text + recall_text).strip()
    messages: list[ChatMessage] = []
    counts: list[int] = []
    if system_text:
        messages.append(ChatMessage("system", system_text))
        counts.append(message_tokens(counter, system_text))
    history: list[ChatMessage] = []
    history_counts: list[int] = []
    for turn in view.turns:  # stored counts where the tokenizer matches: history is not re-tokenized every turn
        for stored in (turn.user, turn.reply):
            if stored is not None:
                history.append(ChatMessage(stored.role, stored.content))
                history_counts.append(stored_message_tokens(stored, counter))
    messages.extend(history)
    counts.extend(history_counts)
    new_tokens = message_tokens(counter, new_message)
    messages.append(ChatMessage("user", new_message))
    counts.append(new_tokens)

    prompt = settings.system_prompt.strip()
    sections = (
        Section(
            "system",
            SECTION_LABELS["system"],
            message_tokens(counter, prompt) if system_text else 0,
            1 if prompt else 0,
        ),
        Section("facts", SECTION_LABELS["facts"], counter.count(facts_text), len(facts.injected)),
        Section("summary", SECTION_LABELS["summary"], counter.count(summary_text), 1 if summary_text else 0),
        Section(
            "entities",
            SECTION_LABELS["entities"],
            counter.count(entity_text),
            len(view.entities.injected) if entity_text and view.entities else 0,
        ),
        Section(
            "recalled",
            SECTION_LABELS["recalled"],
            counter.count(recall_text),
            len(view.recall.recalled) if recall_text and view.recall else 0,
        ),
        Section("history", SECTION_LABELS["history"], sum(history_counts), len(history)),
        Section("new_message", SECTION_LABELS["new_message"], new_tokens + TOKENS_PER_REPLY, 1),
    )
    return Payload(tuple(messages), sections, counter.name, counter.exact, context_tokens, view, facts, tuple(counts))
