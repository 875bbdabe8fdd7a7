"""The chat page: a conversation beside a live view of what its memory holds and sends."""

from __future__ import annotations

import streamlit as st

from memstore import Conversation
from ui import panel, session, sidebar, tour, transcript, words
from ui.page import start_page
from ui.render import literal

page = start_page("Memory Lab")
show_tour = tour.wanted(page)  # before a conversation is opened: a new user has none yet
view = session.open_chat(page)
with st.sidebar:
    show_panel = sidebar.draw(page, view)
view = session.open_chat(page)  # the sidebar may have changed the settings or opened another conversation


def draw_header(conversation: Conversation) -> None:
    kind = "Temporary chat · nothing is saved" if view.ref.temporary else "Saved conversation"
    memory = words.memory_label(conversation.settings.memory_type)
    with header.container():
        st.markdown("### " + literal(conversation.title))
        st.caption(f"{kind} · {literal(memory)} · {conversation.message_count:,} messages")


header = st.empty()
draw_header(view.conversation)
if show_tour:
    tour.draw(page)
chat_column, panel_column = st.columns([3, 2], gap="large") if show_panel else (st.container(), None)
# While a turn runs the box is disabled and its button stops the reply (what arrived is kept), so no message
# typed during a turn can silently replace another.
prompt = st.chat_input("Message Memory Lab", max_chars=page.settings.limits.max_message_chars, submit_mode="stop")
with chat_column:
    conversation = transcript.draw(page, view, prompt)
if panel_column is not None:
    with panel_column:
        panel.memory_panel(page, view.ref)
if conversation != view.conversation:
    draw_header(conversation)  # the turn's two messages, counted
