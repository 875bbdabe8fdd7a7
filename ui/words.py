"""Labels and one-line sentences the pages share: memory types, ledger rows, preference changes."""

from __future__ import annotations

from memstore import MEMORY_TYPES, ModelCall, get_memory_type
from memstore.records import PreferenceChange
from ui.render import literal

SECTION_NAMES = {
    "system": "system prompt",
    "facts": "facts",
    "summary": "summary",
    "entities": "entities",
    "recalled": "recalled turns",
    "history": "history",
    "new_message": "new message",
}


def memory_label(name: str) -> str:
    return MEMORY_TYPES[name].label if name in MEMORY_TYPES else name


def explain_type(name: str) -> str:
    return get_memory_type(name).explanation


def turn_preview(text: str, limit: int = 160) -> str:
    """One line of a message, shortened, for lists (shown through literal or st.text)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def change_sentence_md(change: PreferenceChange) -> str:
    """One line of Markdown for a preference change: what it was, what it became, from which turn."""
    key = f"**{literal(change.key)}**"
    old = literal(change.old_value or "")
    new = literal(change.new_value or "")
    where = " (by you)" if change.source == "user" else f" (turn {change.turn:d})" if change.turn else ""
    if change.kind == "added":
        return f"Saved {key}: {new}{where}"
    if change.kind == "removed":
        return f"Removed {key} (was {old}){where}"
    if change.kind == "undone":
        return f"Undid a change to {key}: back to {new or '(removed)'}"
    return f"Changed {key}: {old} → {new}{where}"


def call_summary(call: ModelCall) -> str:
    """One line about a ledger row: tokens counted and reported, latency, error."""
    reported = call.usage.prompt_tokens
    parts = [f"{call.counted_prompt_tokens or 0:,} prompt tokens counted"]
    if reported is not None:
        parts.append(f"{reported:,} reported by the server")
    if call.usage.completion_tokens is not None:
        parts.append(f"{call.usage.completion_tokens:,} completion tokens")
    if call.latency_ms is not None:
        parts.append(f"{call.latency_ms / 1000:.2f} s")
    if call.error:
        parts.append(f"error: {call.error}")
    return " · ".join(parts)


def details_lines(details: dict) -> list[str]:
    """A ledger row's memory details as short lines: which turns were recalled and why, entities, facts left out."""
    lines = []
    recall = details.get("recall")
    if recall:
        picked = ", ".join(
            f"turn {r['turn']}"
            + ("" if r["same_conversation"] else f" of “{r['conversation_title']}”")
            + f" ({r['score']:.2f}, #{r['rank']})"
            for r in recall.get("recalled", [])
        )
        lines.append(
            f"Recalled {picked or 'nothing'} · min {recall['min_score']:.2f} · searched {recall['searched']:,}"
        )
        if recall.get("missed"):
            lines.append("Just missed: " + ", ".join(f"turn {m['turn']} ({m['score']:.2f})" for m in recall["missed"]))
    entities = details.get("entities")
    if entities:
        names = ", ".join(e["name"] for e in entities.get("injected", []))
        lines.append(f"Entities injected: {names or 'none'} (of {entities.get('known', 0)} known)")
    for left in details.get("facts_left_out", []):
        lines.append(f"Fact left out: {left['key']} ({left['reason']})")
    return lines
