"""Session facts (held by the browser session) and stored preferences, merged for the prompt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from . import validation
from .config import Limits
from .errors import InvalidInput, NotFound
from .records import Preference
from .tokens import TokenCounter

FactSource = Literal["session", "preference"]


@dataclass(frozen=True)
class Fact:
    """One key/value fact and where it came from."""

    source: FactSource
    key: str
    value: str


@dataclass(frozen=True)
class FactSet:
    """The facts injected into the system prompt, those left out with the reason, and the token budget."""

    injected: tuple[Fact, ...] = ()
    left_out: tuple[tuple[Fact, str], ...] = ()
    budget_tokens: int | None = None  # None: no budget
    used_tokens: int = 0


FACTS_HEADER = "Known facts about the user (from memory):"
MERGE_SLACK_TOKENS = 2  # joining lines can merge a token or two at the line breaks


def fact_line(fact: Fact) -> str:
    """A fact as it appears in the system prompt."""
    return f"- {fact.key}: {fact.value}"


def facts_lines(facts: Sequence[Fact]) -> str:
    """The block of facts appended to the system prompt ('' when there are none)."""
    if not facts:
        return ""
    return "\n\n" + FACTS_HEADER + "\n" + "\n".join(fact_line(f) for f in facts)


def facts_block(facts: FactSet) -> str:
    return facts_lines(facts.injected)


def select_facts(
    session_facts: Mapping[str, str],
    preferences: Sequence[Preference],
    *,
    counter: TokenCounter | None = None,
    budget_tokens: int | None = None,
) -> FactSet:
    """Enabled preferences then session facts; a session fact overrides a preference of the same key.

    With a budget, facts are admitted newest first (session facts, then preferences by last
    update) while the facts section, counted exactly as it will be sent, still fits; the oldest
    that do not fit are left out and say so. `used_tokens` is that section's exact cost.
    """
    if budget_tokens is not None and (isinstance(budget_tokens, bool) or budget_tokens < 0):
        raise InvalidInput("The facts budget must be 0 or more tokens.")
    candidates: list[tuple[Fact, object]] = []
    left_out: list[tuple[Fact, str]] = []
    for pref in preferences:
        fact = Fact("preference", pref.key, pref.value)
        if not pref.enabled:
            left_out.append((fact, "switched off"))
        elif pref.key in session_facts:
            left_out.append((fact, "overridden by a session fact"))
        else:
            candidates.append((fact, pref.updated_at))
    candidates.extend((Fact("session", key, value), None) for key, value in session_facts.items())
    if budget_tokens is None or counter is None:
        injected = [fact for fact, _ in candidates]
        used = counter.count(facts_lines(injected)) if counter is not None else 0
        return FactSet(tuple(injected), tuple(left_out), None, used)
    # Newest first: session facts (this session, newest typed last), then preferences by last update.
    newest_first = [c for c in reversed(candidates) if c[1] is None] + sorted(
        (c for c in candidates if c[1] is not None),
        key=lambda c: c[1],  # type: ignore[arg-type, return-value]
        reverse=True,
    )
    reason = f"over the {budget_tokens:,}-token budget (oldest left out first)"
    order = {id(f): i for i, (f, _) in enumerate(candidates)}
    admitted: list[Fact] = []
    exact = 0  # what the prompt's facts section costs with the facts admitted so far, exactly
    for fact, _ in newest_first:
        if exact + counter.count(fact_line(fact)) > budget_tokens + MERGE_SLACK_TOKENS:
            left_out.append((fact, reason))  # cannot fit even if joining saved a token or two
            continue
        trial = sorted([*admitted, fact], key=lambda f: order[id(f)])
        cost = counter.count(facts_lines(trial))
        if cost <= budget_tokens:
            admitted, exact = trial, cost
        else:
            left_out.append((fact, reason))
    return FactSet(tuple(admitted), tuple(left_out), budget_tokens, exact)


def with_session_fact(
    facts: Mapping[str, str], key: str, value: str, limits: Limits = Limits(), *, replacing: str | None = None
) -> dict[str, str]:
    """A new session-fact dict with `key` set (renaming `replacing` if given); validated first."""
    key = validation.fact_key(key, limits)
    value = validation.fact_value(value, limits)
    out = {k: v for k, v in facts.items() if k != replacing}
    out[key] = value
    return out


def without_session_fact(facts: Mapping[str, str], key: str) -> dict[str, str]:
    """A new session-fact dict without `key`."""
    if key not in facts:
        raise NotFound(f"No session fact named {key!r}.")
    return {k: v for k, v in facts.items() if k != key}


def _cell_text(value: object) -> str:
    """A table cell as text: empty cells (None, NaN) become empty strings."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return value if isinstance(value, str) else str(value)


def preference_rows(records: Sequence[Mapping[str, object]]) -> list[tuple[str, str, bool]]:
    """Rows from an edited table (key, value, enabled) as preferences to save; blank new rows are skipped."""
    rows = []
    for record in records:
        key, value = _cell_text(record.get("key")), _cell_text(record.get("value"))
        if not key.strip() and not value.strip():
            continue  # an added row the user left empty
        enabled = record.get("enabled")
        rows.append((key, value, True if enabled is None or enabled != enabled else bool(enabled)))
    return rows
