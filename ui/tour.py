"""The first-run tour on the chat page: five short steps, shown to a new user until dismissed (stored per user)."""

from __future__ import annotations

import streamlit as st

from memstore import MemoryLabError
from ui.page import Page
from ui.render import literal

DONE, SEEN = "tour_done", "tour_seen"
# (heading, text, page to link or None)
STEPS = (
    (
        "The chat",
        "Type in the box at the bottom and press Enter: the reply streams in. Saved chats are kept in the "
        "database; a temporary chat (sidebar) is never written.",
        None,
    ),
    (
        "The memory panel",
        "Beside the chat: what the memory holds right now, the exact next request with the tokens of each "
        "section, and the last request as it was sent. Nothing is hidden.",
        None,
    ),
    (
        "Memory type and k",
        "In the sidebar, pick how the chat remembers: buffer, a window of the last k turns, a token limit, "
        "summaries, retrieval… k counts turns (your message and its reply). The panel's next request changes "
        "before you send.",
        None,
    ),
    (
        "Preferences",
        "Facts about you (a name, a diet) that are sent with every request, whatever the memory type. Edit them, "
        "or switch one off without deleting it.",
        "app_pages/preferences.py",
    ),
    (
        "Compare",
        "Replay a conversation through every memory type side by side: what each sends, what it costs, and when "
        "a fact stops reaching the model. The Lessons page asks you to predict it first.",
        "app_pages/compare.py",
    ),
)


def wanted(page: Page) -> bool:
    """Whether to show the tour: to a user who has not dismissed it and started out on this database with it.

    Read before the chat page opens a conversation, so "no conversations yet" means a new user. Someone who already
    has conversations when the tour first comes (an older database) is not shown it.
    """
    if page.read_only or st.session_state.get("tour_hidden"):
        return False
    if st.session_state.get("tour_shown"):
        return True  # decided at this session's first page: no query on the chat page's later reruns
    try:
        if page.store.has_flag(page.user, DONE):
            st.session_state["tour_hidden"] = True
            return False
        if not page.store.has_flag(page.user, SEEN):
            if page.store.list_conversations(page.user, limit=1):
                page.store.set_flag(page.user, DONE)
                st.session_state["tour_hidden"] = True
                return False
            page.store.set_flag(page.user, SEEN)
    except MemoryLabError:
        return False  # the database refuses: the tour is not worth an error
    st.session_state["tour_shown"] = True
    return True


def _dismiss(page: Page) -> None:
    st.session_state["tour_hidden"] = True
    try:
        page.store.set_flag(page.user, DONE)
    except MemoryLabError:
        pass  # hidden for this session; it may come back once the database can be written


def draw(page: Page) -> None:
    step = min(int(st.session_state.get("tour_step", 0)), len(STEPS) - 1)
    heading, text, link = STEPS[step]
    with st.container(border=True, key="tour"):
        st.markdown(f"**Tour {step + 1:d} of {len(STEPS):d} · " + literal(heading) + "**")
        st.caption(literal(text))
        if link is not None:
            st.page_link(page=link, label="Open " + literal(heading), icon=":material/arrow_forward:")
        back, forward, skip = st.columns([1, 1, 2])
        if step > 0 and back.button("Back", key="tour_back"):
            st.session_state["tour_step"] = step - 1
            st.rerun()
        if step < len(STEPS) - 1:
            if forward.button("Next", type="primary", key="tour_next"):
                st.session_state["tour_step"] = step + 1
                st.rerun()
        elif forward.button("Done", type="primary", key="tour_done"):
            _dismiss(page)
            st.rerun()
        if skip.button("Skip the tour", key="tour_skip", type="tertiary"):
            _dismiss(page)
            st.rerun()
