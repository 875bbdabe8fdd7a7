"""The chat page's sidebar: which conversation is open, its memory type and size, and this session's facts."""

from __future__ import annotations

import zlib

import streamlit as st

from memstore import (
    MEMORY_TYPES,
    MemoryLabError,
    MemorySettings,
    NotFound,
    with_session_fact,
    without_session_fact,
)
from memstore.validation import MAX_RECALL_TURNS
from ui import session, words
from ui.page import Page
from ui.render import literal, plain_text, show_error
from ui.session import ConversationRef, OpenChat


def draw(page: Page, view: OpenChat) -> bool:
    """The whole sidebar; returns whether the memory panel is shown."""
    conversations(page, view)
    memory(page, view)
    session_facts(page)
    return st.toggle("Show memory panel", value=True, key="show_panel")


def new_chat(page: Page, view: OpenChat) -> None:
    chat, conversation, ref = view.chat, view.conversation, view.ref
    try:
        if chat.store.get_conversation(page.user, ref.id).message_count == 0:
            return  # the open chat is still empty (read now: a turn since this button was drawn may have filled it)
    except NotFound:
        pass  # deleted meanwhile: a new one is what is wanted anyway
    created = chat.new_conversation(settings=conversation.settings)
    session.open_conversation(ConversationRef(created.id, ref.temporary))


def conversation_labels(titles: dict[int, str]) -> dict[int, str]:
    """A label per conversation id, unique even when titles repeat ("hi · #3", "hi · #7")."""
    titles = {i: plain_text(t) for i, t in titles.items()}
    counts: dict[str, int] = {}
    for title in titles.values():
        counts[title] = counts.get(title, 0) + 1
    labels = {i: f"{t} · #{i}" if counts[t] > 1 else t for i, t in titles.items()}
    if len(set(labels.values())) < len(labels):  # a title that reads like another's label: number them all
        labels = {i: f"{t} · #{i}" for i, t in titles.items()}
    return labels


def conversations(page: Page, view: OpenChat) -> None:
    chat, conversation, ref = view.chat, view.conversation, view.ref
    st.subheader("Conversations")
    temporary = st.toggle(
        "Temporary chat",
        value=ref.temporary,
        disabled=page.read_only is not None,
        help="A temporary chat is never written to the database and is gone when this "
        "browser session ends. Preferences still apply; nothing new is saved.",
    )
    if temporary != ref.temporary:
        session.open_conversation(session.first_conversation(page, temporary))
        st.rerun()
    st.button("New chat", icon=":material/add:", on_click=new_chat, args=(page, view), width="stretch")
    recent = chat.store.list_conversations(page.user, limit=50)
    ids = [c.id for c in recent]
    titles = {c.id: c.title for c in recent}
    if ref.id not in titles:
        ids.insert(0, ref.id)
        titles[ref.id] = conversation.title
    # Streamlit keeps a selectbox's choice by its label, so labels must be unique: a title two conversations share
    # gets each one's number. The key carries the labels, so a renamed conversation shows its new name at once.
    labels = conversation_labels(titles)
    listing = zlib.crc32(repr(sorted(labels.items())).encode())
    chosen = st.selectbox(
        "Open", ids, index=ids.index(ref.id), format_func=lambda i: labels[i], key=f"open_{ref.slug}_{listing}"
    )
    if chosen != ref.id:
        session.open_conversation(ConversationRef(chosen, ref.temporary))
        st.rerun()
    manage = st.expander("Rename or delete", key=f"manage_open_{ref.slug}", on_change="rerun")
    if not manage.open:
        return  # drawn only when open
    with manage:
        title = st.text_input("Title", value=conversation.title, key=f"title_{ref.slug}")
        if st.button("Rename", key=f"rename_{ref.slug}"):
            try:
                chat.store.rename_conversation(page.user, ref.id, title)
                st.rerun()
            except MemoryLabError as exc:
                show_error(exc)
        confirm = st.checkbox(
            "Yes, delete this conversation, its memory and its model calls", key=f"confirm_delete_{ref.slug}"
        )
        if st.button("Delete conversation", disabled=not confirm, type="primary", key=f"delete_{ref.slug}"):
            chat.store.delete_conversation(page.user, ref.id)
            session.open_conversation(session.first_conversation(page, ref.temporary))
            st.rerun()


def memory(page: Page, view: OpenChat) -> None:
    chat, conversation, ref = view.chat, view.conversation, view.ref
    st.subheader("Memory")
    saved = conversation.settings
    names = list(MEMORY_TYPES)
    memory_type = st.selectbox(
        "Memory type",
        names,
        index=names.index(saved.memory_type),
        format_func=words.memory_label,
        key=f"memory_type_{ref.slug}",
    )
    st.caption(literal(words.explain_type(memory_type)))
    window_turns = st.number_input(
        "Window size k (turns)",
        min_value=0,
        max_value=page.settings.limits.max_window_turns,
        step=1,
        value=saved.window_turns,
        key=f"window_turns_{ref.slug}",
        disabled=memory_type not in ("window", "retrieval", "entity"),
        help="A turn is one message of yours and its reply, so k turns = 2k messages. Retrieval and entity memory "
        "use it for their short-term part.",
    )
    st.caption(f"k = {window_turns:d} turns = {2 * window_turns:d} messages")
    max_tokens = st.number_input(
        "Token limit (history)",
        min_value=1,
        max_value=page.settings.limits.max_token_limit,
        step=100,
        value=saved.max_tokens,
        key=f"max_tokens_{ref.slug}",
        disabled=memory_type not in ("token_window", "summary_buffer"),
        help="Token window and summary + buffer keep the newest whole turns that fit this many tokens.",
    )
    recall_turns, min_score, scope = saved.recall_turns, saved.recall_min_score, saved.recall_scope
    if memory_type == "retrieval":
        recall_turns = st.number_input(
            "Recall top k (old turns)",
            min_value=0,
            max_value=MAX_RECALL_TURNS,
            step=1,
            value=saved.recall_turns,
            key=f"recall_turns_{ref.slug}",
            help="How many older turns, most similar to your new message, are added.",
        )
        min_score = st.slider(
            "Minimum similarity",
            -1.0,
            1.0,
            float(saved.recall_min_score),
            0.05,
            key=f"recall_min_{ref.slug}",
            help="Cosine similarity a turn needs to be recalled; the panel shows near misses.",
        )
        scope = (
            "all"
            if st.toggle(
                "Recall from all my conversations", value=saved.recall_scope == "all", key=f"recall_scope_{ref.slug}"
            )
            else "conversation"
        )
    system_prompt = saved.system_prompt
    prompt_box = st.expander("System prompt", key=f"system_prompt_open_{ref.slug}", on_change="rerun")
    if prompt_box.open:  # drawn only when open: every element drawn costs each rerun in the browser
        with prompt_box:
            system_prompt = st.text_area(
                "System prompt",
                value=saved.system_prompt,
                key=f"system_prompt_{ref.slug}",
                label_visibility="collapsed",
            )
    clear_memory(page, view)
    # Widgets are drawn on this page only, and Streamlit drops a widget's state on other pages: the choices
    # live in plain session keys, copied from the widgets when they change.
    st.toggle(
        "Save facts about me automatically",
        key="auto_facts_widget",
        value=session.auto_facts_on(page.client),
        disabled=ref.temporary,
        on_change=session.keep_widget,
        args=("auto_facts_widget", "auto_facts"),
        help="After each turn a model call looks for facts you state about yourself and saves new or changed "
        "ones as preferences, with a notice and an undo. Never in a temporary chat. Off by default with "
        "the bundled tiny model, which invents facts.",
    )
    st.number_input(
        "Facts budget (tokens)",
        min_value=0,
        max_value=20_000,
        step=50,
        key="facts_budget_widget",
        value=session.facts_budget(),
        on_change=session.keep_widget,
        args=("facts_budget_widget", "facts_budget"),
        help="Preferences and session facts injected into the system prompt stop at this many tokens; "
        "the oldest are left out first.",
    )
    wanted = MemorySettings(
        memory_type, int(window_turns), int(max_tokens), system_prompt, int(recall_turns), float(min_score), scope
    )
    if wanted != saved:
        try:
            chat.update_settings(ref.id, wanted)
        except MemoryLabError as exc:
            show_error(exc, what="Settings not changed: ")


def session_facts(page: Page) -> None:
    st.subheader("Session facts")
    st.caption(
        "Key/value facts for this browser session only (never saved). Stored preferences live on the Preferences page."
    )
    facts = session.session_facts()
    for key, value in facts.items():
        left, right = st.columns([5, 1], vertical_alignment="center")
        left.markdown(f"**{literal(key)}**: {literal(value)}")
        if right.button("✕", key=f"remove_fact_{key}", help="Remove " + literal(key)):
            session.set_session_facts(without_session_fact(facts, key))
            st.rerun()
    with st.form("add_fact", clear_on_submit=True, border=False):
        key = st.text_input("Key", placeholder="e.g. name")
        value = st.text_input("Value", placeholder="e.g. Alice")
        if st.form_submit_button("Add or update fact"):
            try:
                session.set_session_facts(with_session_fact(facts, key, value, page.settings.limits))
                st.rerun()
            except MemoryLabError as exc:
                show_error(exc, what="Fact not saved: ")


def clear_memory(page: Page, view: OpenChat) -> None:
    """Start this conversation's memory over (the transcript stays), and undo that until the next turn."""
    conversation, ref, store = view.conversation, view.ref, view.chat.store
    nothing_since = conversation.last_turn < conversation.memory_from_turn
    if st.button(
        "Clear memory",
        key=f"clear_memory_{ref.slug}",
        icon=":material/mop:",
        disabled=nothing_since,
        help="The window, summaries, entity notes and recall start over from the next turn; the transcript and "
        "the ledger stay. You can undo it until the next turn.",
        width="stretch",
    ):
        try:
            store.clear_memory(page.user, ref.id)
            st.rerun()
        except MemoryLabError as exc:
            show_error(exc, what="Not cleared: ")
    if (
        conversation.memory_cleared
        and nothing_since
        and st.button("Undo clear", key=f"undo_clear_{ref.slug}", icon=":material/undo:", width="stretch")
    ):
        try:
            store.undo_clear_memory(page.user, ref.id)
            st.rerun()
        except MemoryLabError as exc:
            show_error(exc, what="Not undone: ")
