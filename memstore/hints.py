"""Short notes tied to the current settings, so a learner sees what a choice costs and forgets."""

from __future__ import annotations

from .memory import get_memory_type
from .payload import Payload
from .records import MemorySettings

FULL_CONTEXT_SHARE = 0.8


def hints(settings: MemorySettings, payload: Payload, *, last_turn: int) -> list[str]:
    """Notes for the panel: what is forgotten, what costs an extra call, how full the context is."""
    notes: list[str] = []
    view = payload.view
    kind = settings.memory_type
    if kind == "none" and last_turn:
        notes.append("No memory: the model sees none of the earlier turns, not even your name if you gave it.")
    if kind == "window":
        k = settings.window_turns
        if k == 0:
            notes.append("With k=0 no earlier turn is sent: the same as no memory.")
        elif last_turn > k:
            gone = last_turn - k
            first = "turn 1 is" if gone == 1 else f"turns 1–{gone} are"
            notes.append(
                f"With k={k}, {first} no longer sent: anything said there (a name, a preference) is "
                "forgotten unless it is in a preference or a session fact."
            )
    if kind in ("token_window", "summary_buffer") and view.dropped_count == 0 and view.summary is None:
        notes.append(
            f"Everything still fits the {settings.max_tokens:,}-token limit; older turns will drop out "
            "as the conversation grows."
        )
    if kind == "token_window" and view.dropped_count:
        notes.append(
            f"{view.dropped_count} older turn{'s' if view.dropped_count != 1 else ''} no longer fit the "
            f"{settings.max_tokens:,}-token limit and are not sent."
        )
    if get_memory_type(kind).uses_summary:
        notes.append(
            "Summary memory adds one model call per turn (see the Summary call tab): more tokens and "
            "latency, and the summary may drop details."
        )
    if payload.context_fill >= FULL_CONTEXT_SHARE:
        notes.append(f"This request fills {payload.context_fill:.0%} of the model's context window.")
    if kind == "buffer" and last_turn >= 10:
        notes.append("Buffer memory sends every turn: the request grows with each one, and so does its cost.")
    return notes
