"""Conversations: find, open, delete, export and import your saved conversations."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from memstore import MEMORY_TYPES, MemoryLabError
from memstore.forgotten import JOURNAL_PENDING_NOTE
from memstore.transfer import (
    compare_branches,
    export_conversations,
    fork_conversation,
    to_json,
    to_markdown,
)
from ui import resources, session, unsaved, words
from ui.importing import import_section
from ui.page import start_page
from ui.render import literal, plain_text, show_error
from ui.session import ConversationRef

page = start_page("Conversations · Memory Lab")
settings, store, client, USER = page.settings, page.store, page.client, page.user

st.title("Conversations")
if (waiting := unsaved.overview(page)) is not None:  # "Open" on a conversation holding unsaved items
    session.open_conversation(ConversationRef(waiting, temporary=False))
    st.switch_page("app_pages/chat.py")
search = st.text_input("Search titles", placeholder="Type part of a title")
conversations = store.list_conversations(USER, search=search or None, limit=500)
if not conversations:
    st.info(
        "No saved conversations match."
        if search
        else "No saved conversations yet. Temporary chats are never listed here."
    )
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "title": plain_text(c.title),
                    "memory type": words.memory_label(c.settings.memory_type),
                    "messages": c.message_count,
                    "tokens": c.token_total,
                    "last activity": c.updated_at,
                }
                for c in conversations
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={"last activity": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")},
    )
    by_id = {c.id: c for c in conversations}
    chosen = st.selectbox("Conversation", list(by_id), format_func=lambda i: f"{plain_text(by_id[i].title)} (#{i})")
    open_col, export_json_col, export_md_col = st.columns(3)
    if open_col.button("Open in chat", type="primary", width="stretch"):
        session.open_conversation(ConversationRef(chosen, temporary=False))
        st.switch_page("app_pages/chat.py")
    one = export_conversations(store, USER, [chosen])
    name = f"memorylab-conversation-{chosen}"
    export_json_col.download_button(
        "Export as JSON", to_json(one), f"{name}.json", "application/json", width="stretch", on_click="ignore"
    )
    export_md_col.download_button(
        "Export as Markdown", to_markdown(one), f"{name}.md", "text/markdown", width="stretch", on_click="ignore"
    )
    with st.expander("Fork: branch this conversation at a turn, with another memory type"):
        current = by_id[chosen]
        if current.last_turn == 0:
            st.caption("Nothing to fork yet: the conversation has no turns.")
        else:
            fork_turn = st.number_input(
                "Keep turns 1 to",
                min_value=1,
                max_value=current.last_turn,
                value=current.last_turn,
                step=1,
                key=f"fork_turn_{chosen}",
            )
            fork_type = st.selectbox(
                "Memory type of the branch",
                list(MEMORY_TYPES),
                format_func=words.memory_label,
                key=f"fork_type_{chosen}",
            )
            if st.button("Fork and open", key=f"fork_{chosen}"):
                try:
                    fork = fork_conversation(
                        store, USER, chosen, int(fork_turn), replace(current.settings, memory_type=fork_type)
                    )
                except MemoryLabError as exc:
                    show_error(exc, what="Not forked: ")
                else:
                    session.open_conversation(ConversationRef(fork.id, temporary=False))
                    st.switch_page("app_pages/chat.py")
    others = [c for c in conversations if c.id != chosen]
    if others:
        with st.expander("Compare with another conversation (for example its fork)"):
            other = st.selectbox(
                "Other conversation",
                [c.id for c in others],
                key=f"other_{chosen}",
                format_func=lambda i: f"{plain_text(by_id[i].title)} (#{i})",
            )
            rows = compare_branches(store, USER, chosen, other)
            if not rows:
                st.caption("Neither conversation has sent a turn yet.")
            else:
                chart = pd.DataFrame(
                    {"this conversation": [r.a_tokens for r in rows], "the other": [r.b_tokens for r in rows]},
                    index=[r.turn for r in rows],
                )
                chart.index.name = "turn"
                st.line_chart(chart, x_label="turn", y_label="prompt tokens sent")
                st.dataframe(
                    pd.DataFrame(
                        [
                            {
                                "turn": r.turn,
                                "tokens sent (this)": r.a_tokens,
                                "tokens sent (other)": r.b_tokens,
                                "reply (this)": r.a_reply,
                                "reply (other)": r.b_reply,
                            }
                            for r in rows
                        ]
                    ),
                    hide_index=True,
                    width="stretch",
                )
    with st.expander("Delete this conversation"):
        confirm = st.checkbox(
            f"Yes, delete “{literal(by_id[chosen].title)}”, its memory and its model calls", key=f"confirm_{chosen}"
        )
        if st.button("Delete", disabled=not confirm, key=f"delete_{chosen}"):
            store.delete_conversation(USER, chosen)
            ref = st.session_state.get("conversation_ref")
            if ref is not None and not ref.temporary and ref.id == chosen:
                del st.session_state["conversation_ref"]
            st.toast("Conversation deleted.")
            st.rerun()

st.subheader("Export everything")
everything = export_conversations(store, USER) if conversations else None
left, right = st.columns(2)
left.download_button(
    "All conversations as JSON",
    to_json(everything) if everything else "",
    "memorylab-all.json",
    "application/json",
    disabled=everything is None,
    width="stretch",
    on_click="ignore",
)
right.download_button(
    "All conversations as Markdown",
    to_markdown(everything) if everything else "",
    "memorylab-all.md",
    "text/markdown",
    disabled=everything is None,
    width="stretch",
    on_click="ignore",
)

import_section(page)

st.subheader("Forget everything about me")
# Counting reads every table, so it runs only when asked for, not on each visit to this page.
asked = st.checkbox("Show what Memory Lab holds about me, and the button that deletes it", key="forget_me_open")
held = store.user_data(USER) if asked else None
unsent = resources.outbox().items(USER) if asked else []
if held is None:
    pass
elif held.total == 0 and not unsent:
    st.caption("Memory Lab holds nothing about you.")
else:
    st.caption(
        "Deletes, for good, everything Memory Lab holds about you: "
        + literal(held.sentence())
        + (f", and {len(unsent):d} unsaved message{'s' if len(unsent) != 1 else ''} in the outbox" if unsent else "")
        + ". Nobody else's data is touched. Export first if you want a copy."
    )
    typed = st.text_input('Type "forget me" to confirm', key="forget_me_confirm")
    if st.button("Forget everything about me", type="primary", disabled=typed.strip().lower() != "forget me"):
        try:
            deleted = store.forget_user(USER)
            session.temporary_store().forget_user(USER)  # this session's temporary chats too
        except MemoryLabError as exc:
            show_error(exc, what="Nothing was deleted: ")
        else:
            for item in unsent:
                resources.outbox().remove(USER, item.id)
            for key in ("conversation_ref", "session_facts", "memory_notice", "forget_message_id"):
                st.session_state.pop(key, None)
            if store.journal_pending():  # deleted everywhere the app reads, not yet from the file's journal
                st.warning(
                    "Deleted everywhere the app reads: "
                    + literal(deleted.sentence())
                    + ". "
                    + literal(JOURNAL_PENDING_NOTE),
                    icon=":material/delete_forever:",
                )
            else:
                st.success("Forgotten: " + literal(deleted.sentence()) + ".", icon=":material/delete_forever:")
