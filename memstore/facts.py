"""Session facts (held by the browser session) and stored preferences, merged for the prompt."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

from . import validation
from .config import Limits
from .errors import NotFound
from .records import Preference

FactSource = Literal["session", "preference"]


@dataclass(frozen=True)
class Fact:
    """One key/value fact and where it came from."""

    source: FactSource
    key: str
    value: str


@dataclass(frozen=True)
class FactSet:
    """The facts injected into the system prompt, and those left out with the reason."""

    injected: tuple[Fact, ...] = ()
    left_out: tuple[tuple[Fact, str], ...] = ()


def select_facts(session_facts: Mapping[str, str], preferences: Sequence[Preference]) -> FactSet:
    """Enabled preferences then session facts; a session fact overrides a preference of the same key."""
    injected: list[Fact] = []
    left_out: list[tuple[Fact, str]] = []
    for pref in preferences:
        fact = Fact("preference", pref.key, pref.value)
        if not pref.enabled:
            left_out.append((fact, "switched off"))
        elif pref.key in session_facts:
            left_out.append((fact, "overridden by a session fact"))
        else:
            injected.append(fact)
    injected.extend(Fact("session", key, value) for key, value in session_facts.items())
    return FactSet(tuple(injected), tuple(left_out))


def with_session_fact(facts: Mapping[str, str], key: str, value: str, limits: Limits = Limits(),
                      *, replacing: str | None = None) -> dict[str, str]:
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
