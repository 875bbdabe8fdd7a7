"""What this browser session holds: the open conversation, its temporary chats, session facts and budgets."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from memstore import Chat, ChatClient, Conversation, FactSet, NotFound, SqlStore, select_facts
from ui import models, resources
from ui.page import Page

DEFAULT_FACTS_BUDGET_TOKENS = 500


@dataclass(frozen=True)
class ConversationRef:
    """Which conversation is open: a saved one, or one in the session's temporary store."""

    id: int
    temporary: bool

    @property
    def slug(self) -> str:
        """A short stable name for widget keys."""
        return f"{'temporary' if self.temporary else 'saved'}_{self.id}"


@dataclass(frozen=True)
class OpenChat:
    """The conversation on screen, the Chat that runs its turns, and its record as last read."""

    ref: ConversationRef
    chat: Chat
    conversation: Conversation


def temporary_store() -> SqlStore:
    """This session's temporary chats: a private in-memory database, gone with the session."""
    if "temporary_store" not in st.session_state:
        st.session_state.temporary_store = SqlStore.in_memory(limits=resources.load_settings().limits)
    return st.session_state.temporary_store


def chat_for(page: Page, ref: ConversationRef) -> Chat:
    """A Chat over the store the conversation lives in; preferences always come from the database."""
    target = temporary_store() if ref.temporary else page.store
    return Chat(target, page.client, user_id=page.user, embedder=resources.embedder(), preferences=page.store)


def open_conversation(ref: ConversationRef) -> None:
    st.session_state.conversation_ref = ref
    st.session_state.pages_shown = 1


def first_conversation(page: Page, temporary: bool) -> ConversationRef:
    """The most recent conversation of the chosen kind, or a new one."""
    target = temporary_store() if temporary else page.store
    recent = target.list_conversations(page.user, limit=1)
    conv = recent[0] if recent else Chat(target, page.client, user_id=page.user).new_conversation()
    return ConversationRef(conv.id, temporary)


def open_chat(page: Page) -> OpenChat:
    """The conversation this session has open (temporary while nothing can be saved), or the most recent one."""
    ref = st.session_state.get("conversation_ref")
    if ref is None or (page.read_only and not ref.temporary):
        ref = first_conversation(page, temporary=page.read_only is not None)
        open_conversation(ref)
    chat = chat_for(page, ref)
    try:
        return OpenChat(ref, chat, chat.store.get_conversation(page.user, ref.id))
    except NotFound:  # deleted elsewhere (another tab or page)
        ref = first_conversation(page, ref.temporary)
        open_conversation(ref)
        chat = chat_for(page, ref)
        return OpenChat(ref, chat, chat.store.get_conversation(page.user, ref.id))


def session_facts() -> dict[str, str]:
    return dict(st.session_state.get("session_facts", {}))


def set_session_facts(facts: dict[str, str]) -> None:
    st.session_state.session_facts = dict(facts)


def keep_widget(widget_key: str, state_key: str) -> None:
    """Copy a widget's value to a plain session key, which survives visits to other pages."""
    st.session_state[state_key] = st.session_state[widget_key]


def facts_budget() -> int:
    return int(st.session_state.get("facts_budget", DEFAULT_FACTS_BUDGET_TOKENS))


def current_facts(page: Page, client: ChatClient | None = None) -> FactSet:
    """Session facts and the user's stored preferences, merged as the next turn will see them, within the budget."""
    counter = client.counter() if client is not None else None
    return select_facts(
        session_facts(),
        page.store.list_preferences(page.user),
        counter=counter,
        budget_tokens=facts_budget() if counter is not None else None,
    )


def auto_facts_on(client: ChatClient) -> bool:
    """Automatic facts: on by default with a real model, off with the bundled tiny one (it invents facts)."""
    return bool(st.session_state.get("auto_facts", not models.is_bundled(client)))
