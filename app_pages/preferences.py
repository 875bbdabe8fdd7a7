"""Preferences: what Memory Lab remembers about you across conversations, editable as a table."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memstore import MemoryLabError
from memstore.facts import preference_rows
from ui import words
from ui.page import start_page
from ui.render import literal, show_code, show_error

page = start_page("Preferences · Memory Lab")
settings, store, client, USER = page.settings, page.store, page.client, page.user

st.title("Preferences")
st.caption(
    "Facts about you that every conversation injects into the system prompt (custom memory). "
    "Switch one off to leave it out of the next turns without deleting it. Keys are 1 to "
    f"{settings.limits.max_key_chars:d} characters; each key appears once."
)

preferences = store.list_preferences(USER)
table = pd.DataFrame(
    [{"key": p.key, "value": p.value, "enabled": p.enabled, "updated": p.updated_at} for p in preferences],
    columns=["key", "value", "enabled", "updated"],
)
edited = st.data_editor(
    table,
    key="preferences_editor",
    num_rows="dynamic",
    hide_index=True,
    width="stretch",
    column_config={
        "key": st.column_config.TextColumn("Key", required=True, max_chars=settings.limits.max_key_chars),
        "value": st.column_config.TextColumn("Value", max_chars=settings.limits.max_value_chars),
        "enabled": st.column_config.CheckboxColumn("Used in prompts", default=True),
        "updated": st.column_config.DatetimeColumn("Last changed", disabled=True, format="YYYY-MM-DD HH:mm"),
    },
)
rows = preference_rows(edited.to_dict("records"))
unsaved = rows != [(p.key, p.value, p.enabled) for p in preferences]
left, right = st.columns([1, 4], vertical_alignment="center")
if left.button("Save preferences", type="primary", disabled=not unsaved):
    try:
        saved = store.replace_preferences(USER, rows)
    except MemoryLabError as exc:
        show_error(exc, what="Not saved: ")
    else:
        st.session_state.pop("preferences_editor", None)
        st.toast(f"Saved {len(saved):d} preference{'s' if len(saved) != 1 else ''}.")
        st.rerun()
right.caption("You have unsaved changes." if unsaved else "Everything is saved.")

injected = [p for p in preferences if p.enabled]
st.subheader("What the next turn will inject")
if injected:
    show_code("\n".join(f"- {p.key}: {p.value}" for p in injected))
else:
    st.caption("No preference is switched on.")

st.subheader("History")
st.caption(
    "Every change: facts the model picked out of your messages (switch this on or off in the chat's sidebar), "
    "your own edits, and undos. Each keeps what it replaced and when; undo puts the old value back while the "
    "change is the newest for its key."
)
history = store.preference_history(USER, limit=50)
if not history:
    st.caption("No preference has changed yet.")


def undo(change_id: int) -> None:
    try:
        store.undo_preference_change(USER, change_id)
        st.session_state.pop("preferences_editor", None)
    except MemoryLabError as exc:
        st.session_state.undo_error = str(exc)


if error := st.session_state.pop("undo_error", None):
    st.error("Not undone: " + literal(error), icon=":material/error:")
newest: dict[str, int] = {}
for change in history:  # newest first: the first change seen for a key is its newest
    newest.setdefault(change.key, change.id)
for change in history:
    text, when, action = st.columns([5, 2, 1], vertical_alignment="center")
    text.markdown(words.change_sentence_md(change))
    when.caption(
        f"{change.created_at:%Y-%m-%d %H:%M}"
        + (f" · conversation {change.conversation_id:d}" if change.conversation_id else "")
    )
    if change.source == "auto" and newest[change.key] == change.id:  # older ones would overwrite what came after
        action.button("Undo", key=f"undo_pref_{change.id}", on_click=undo, args=(change.id,))
